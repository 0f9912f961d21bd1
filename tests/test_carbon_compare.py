"""Compare like with like (carbon.compare): the same local days shifted one year or one period; low-coverage
bases hide the change."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.compare import LOW_BASE, base_period, change, guard, prorate_output, shift
from carbon.summary import period_bounds

TZ = "Asia/Shanghai"


def test_a_month_to_date_compares_with_the_same_days_last_year_not_the_whole_month():
    """3 December 2026 10:00: 1-3 December 2025 until 10:00, not all of December 2025 (the +240 % of the issue)."""
    start, end = period_bounds("month", pd.Timestamp("2026-12-03 10:07", tz=TZ), TZ)
    assert base_period(start, end, "month") == (pd.Timestamp("2025-12-01", tz=TZ),
                                                pd.Timestamp("2025-12-03 10:00", tz=TZ))
    assert base_period(start, end, "month", "previous") == (pd.Timestamp("2026-11-01", tz=TZ),
                                                            pd.Timestamp("2026-11-03 10:00", tz=TZ))


@settings(max_examples=200, deadline=None)
@given(now=st.datetimes(min_value=pd.Timestamp("2001-01-01").to_pydatetime(),
                        max_value=pd.Timestamp("2040-12-31").to_pydatetime()),
       kind=st.sampled_from(["month", "year", "12m"]), against=st.sampled_from(["last_year", "previous"]),
       tz=st.sampled_from([TZ, "Europe/Berlin", "UTC"]))
def test_the_base_spans_the_same_local_days_shifted(now, kind, against, tz):
    start, end = period_bounds(kind, pd.Timestamp(now).tz_localize(tz, nonexistent="shift_forward",
                                                                   ambiguous=False), tz)
    if end <= start:
        return
    b_start, b_end = base_period(start, end, kind, against)
    months = 1 if (kind, against) == ("month", "previous") else 12
    assert b_start < b_end <= start
    for current, base in ((start, b_start), (end, b_end)):
        earlier = (current.year * 12 + current.month - 1) - months
        assert (base.year, base.month) == (earlier // 12, earlier % 12 + 1)
        # same local day (clipped to the end of a shorter month) and the same wall time
        assert base.day == min(current.day, base.days_in_month)
        assert (base.hour, base.minute) == (current.hour, current.minute) or tz != TZ
    # every local day of the current period has its shifted day in the base, and the base holds no other day but a
    # leap day (1 Jan - 1 Mar 2001 compares with 1 Jan - 1 Mar 2000, 29 February included)
    days = pd.date_range(start.tz_localize(None).floor("D"), (end - pd.Timedelta("1ns")).tz_localize(None).floor("D"))
    shifted = {d - pd.DateOffset(months=months) for d in days}
    base_days = set(pd.date_range(b_start.tz_localize(None).floor("D"),
                                  (b_end - pd.Timedelta("1ns")).tz_localize(None).floor("D")))
    assert shifted <= base_days
    assert all((d.month, d.day) == (2, 29) for d in base_days - shifted)


def test_shift_clips_to_the_end_of_a_shorter_month():
    assert shift(pd.Timestamp("2024-03-31 09:00", tz=TZ), 1) == pd.Timestamp("2024-02-29 09:00", tz=TZ)
    assert shift(pd.Timestamp("2024-02-29 09:00", tz=TZ), 12) == pd.Timestamp("2023-02-28 09:00", tz=TZ)


def test_a_change_on_a_thinly_covered_base_is_hidden_and_flagged():
    assert change(340.0, 100.0, 0.03, 0.9) == (pytest.approx(math.nan, nan_ok=True), LOW_BASE)
    assert change(120.0, 100.0, 0.95, 0.9) == (pytest.approx(0.2), "")
    value, why = change(120.0, 0.0, 1.0, 0.9)
    assert math.isnan(value) and why == ""
    frame = pd.DataFrame({"metric": ["emissions_t_co2e", "coverage"], "this_period": [340.0, 1.0],
                          "last_year": [100.0, 0.03], "change": [2.4, math.nan]})
    out, flag = guard(frame, "last_year", "change", 0.9)
    assert flag == LOW_BASE and out["change"].isna().all()


def test_a_partial_months_output_value_is_prorated_by_its_hours():
    ov = pd.DataFrame({"enterprise": ["E1", "E1"], "month": [pd.Timestamp("2025-11-01").date(),
                                                             pd.Timestamp("2025-12-01").date()],
                       "output_value_10k_cny": [300.0, 310.0]})
    out = prorate_output(ov, pd.Timestamp("2025-12-01", tz=TZ), pd.Timestamp("2025-12-04", tz=TZ))
    assert len(out) == 1 and out["output_value_10k_cny"].iloc[0] == pytest.approx(310.0 * 3 / 31)
