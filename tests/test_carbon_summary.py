"""carbon.summary: an enterprise's period figures from its accounts — periods in park-local time, coverage, sums
that keep a gap a gap, and the daily burn-down."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.summary import coverage, daily_burn, last_year, month_end, period_bounds, sums

TZ = "Asia/Shanghai"


def test_periods_end_at_the_last_complete_quarter_hour_in_park_time():
    now = pd.Timestamp("2024-03-10 04:07:30", tz="UTC")  # 12:07:30 in Shanghai
    noon = pd.Timestamp("2024-03-10 12:00", tz=TZ)
    assert period_bounds("month", now, TZ) == (pd.Timestamp("2024-03-01", tz=TZ), noon)
    assert period_bounds("year", now, TZ)[0] == pd.Timestamp("2024-01-01", tz=TZ)
    assert period_bounds("12m", now, TZ)[0] == pd.Timestamp("2023-04-01", tz=TZ)
    first = pd.Timestamp("2024-04-01 00:10", tz=TZ)
    assert period_bounds("month", first, TZ) == (pd.Timestamp("2024-04-01", tz=TZ),) * 2  # empty, not negative
    with pytest.raises(ValueError, match="month, year, 12m"):
        period_bounds("week", now, TZ)


def test_last_year_compares_whole_months():
    start, end = pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-10 12:00", tz=TZ)
    assert last_year(start, end) == (pd.Timestamp("2023-03-01", tz=TZ), pd.Timestamp("2023-04-01", tz=TZ))
    assert month_end(pd.Timestamp("2024-04-01", tz=TZ)) == pd.Timestamp("2024-04-01", tz=TZ)
    assert month_end(pd.Timestamp("2024-12-31 23:45", tz=TZ)) == pd.Timestamp("2025-01-01", tz=TZ)


def test_sums_keep_a_group_without_data_missing_and_report_its_coverage():
    frame = pd.DataFrame({"workshop": ["W1", "W1", "W2"], "t": [1.0, 2.0, math.nan], "measured": [4, 2, 0],
                          "expected": [4, 4, 4]})
    out = sums(frame, ["workshop"], ["t"]).set_index("workshop")
    assert out.loc["W1", "t"] == 3.0 and out.loc["W1", "coverage"] == 0.75
    assert math.isnan(out.loc["W2", "t"]) and out.loc["W2", "coverage"] == 0.0  # a gap, not a zero
    assert math.isnan(coverage(pd.Series([0]), pd.Series([0])))


def test_the_daily_burn_down_cumulates_and_keeps_its_coverage():
    days = pd.date_range("2024-01-01", periods=3, freq="D", tz=TZ)
    burn = daily_burn(pd.DataFrame({"period_start": days, "total_location_t_co2e": [1.5, 2.0, 0.5],
                                    "coverage": [1.0, 0.5, 1.0]}))
    assert burn["cumulative_t_co2e"].tolist() == [1.5, 3.5, 4.0] and burn["coverage"].tolist() == [1.0, 0.5, 1.0]
    assert burn["day"].tolist() == list(days)


@given(st.lists(st.tuples(st.integers(0, 96), st.integers(0, 96)), min_size=1, max_size=20))
def test_coverage_is_a_share(counts):
    measured = pd.Series([min(m, e) for m, e in counts])
    expected = pd.Series([e for _, e in counts])
    c = coverage(measured, expected)
    assert (math.isnan(c) and expected.sum() == 0) or 0.0 <= c <= 1.0
