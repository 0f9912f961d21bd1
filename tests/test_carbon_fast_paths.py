"""The accounting's short cuts for small calls (issue 13: one enterprise's page pays the fixed cost per call, not
the rows) give what the general path gives:

- without instruments, the market-based path skips the allocation (no basis, no windows): the same accounts as
  the general allocation with an instrument that reaches none of the windows;
- check_activity converts each distinct (carrier, unit) pair once: q_base and dimension as the unit of each row;
- the low-coverage issues group lines by their reporting period's start: the same groups, figures and order as a
  group-by on the period's label.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbon.emissions import compute_accounts
from carbon.factors import FactorRegistry
from carbon.inputs import check_activity
from carbon.periods import Period, period_label, period_start
from carbon.regions import enterprise_regions
from park.model import Enterprise, Park, Workshop
from park.units import carrier_unit

TZ = "Asia/Shanghai"
SHIPPED = FactorRegistry.shipped()
PARK = Park("fp", "Fast path park", province="Jiangsu", grid_region="east_china",
            enterprises=(Enterprise("E1", "steel"), Enterprise("E2", "textiles"), Enterprise("E3", "food")),
            workshops=(Workshop("E1-W1", "E1"), Workshop("E2-W1", "E2")))
REGIONS = enterprise_regions(PARK)
# carrier -> units it may be given in, and whether it can be exported
CARRIERS = {"electricity": (["kWh", "MWh"], True), "pv": (["kWh"], False), "natural_gas": (["m3"], False),
            "steam": (["t", "GJ"], True), "heat": (["GJ"], True), "diesel": (["t"], False), "water": (["m3"], False)}
WORKSHOP = {"E1": "E1-W1", "E2": "E2-W1", "E3": None}

row = st.fixed_dictionaries({
    "enterprise": st.sampled_from(["E1", "E2", "E3"]),
    "in_workshop": st.booleans(),
    "carrier": st.sampled_from(sorted(CARRIERS)),
    "unit_pick": st.integers(0, 1),
    "export": st.booleans(),
    "window": st.integers(0, 5),  # which window of the span
    "quantity": st.one_of(st.none(), st.floats(0.0, 1e6, allow_nan=False)),
    "coverage": st.sampled_from([0.0, 0.5, 0.85, 1.0]),
})


def activity(rows: list[dict], daily: bool) -> pd.DataFrame:
    out = []
    for r in rows:
        units, exportable = CARRIERS[r["carrier"]]
        if daily:
            s = pd.Timestamp("2024-03-28", tz=TZ) + pd.DateOffset(days=r["window"])
            e = s + pd.DateOffset(days=1)
        else:
            s = pd.Timestamp("2024-01-01", tz=TZ) + pd.DateOffset(months=r["window"])
            e = s + pd.DateOffset(months=1)
        expected = int((e - s) / pd.Timedelta("15min"))
        measured = round(expected * r["coverage"])
        out.append({"enterprise": r["enterprise"], "workshop": WORKSHOP[r["enterprise"]] if r["in_workshop"] else None,
                    "carrier": r["carrier"], "flow": "export" if r["export"] and exportable else "import",
                    "period_start": s, "period_end": e,
                    "quantity": math.nan if r["quantity"] is None else r["quantity"],
                    "unit": units[r["unit_pick"] % len(units)], "count": measured, "measured": measured,
                    "expected": expected, "coverage": measured / expected, "source": "store"})
    return pd.DataFrame(out)


def assert_same_accounts(a, b) -> None:
    for part in ("lines", "totals", "factors", "fallbacks", "issues"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part), check_exact=True, obj=part)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=14), daily=st.booleans(),
       kind=st.sampled_from(["month", "quarter", "year"]))
def test_no_instruments_equals_an_allocation_that_reaches_no_window(rows, daily, kind):
    act = activity(rows, daily)
    kind = "day" if daily and kind == "month" else kind
    # A certificate of an enterprise without activity here: the general path runs, allocates 0 kWh everywhere
    foreign = pd.DataFrame([{"enterprise": "E9", "kind": "gec", "quantity_mwh": 50.0, "period_start": "2024-01-01",
                             "period_end": "2025-01-01", "reference": "GEC-E9-1", "vintage": 2024}])
    for instruments in (None, foreign.iloc[:0]):
        fast = compute_accounts(act, SHIPPED, REGIONS, period_kind=kind, instruments=instruments, strict=False)
        general = compute_accounts(act, SHIPPED, REGIONS, period_kind=kind, instruments=foreign, strict=False)
        assert_same_accounts(fast, general)


def test_an_empty_instrument_frame_is_still_checked_for_its_columns():
    act = activity([{"enterprise": "E1", "in_workshop": False, "carrier": "electricity", "unit_pick": 0,
                     "export": False, "window": 0, "quantity": 10.0, "coverage": 1.0}], daily=False)
    from carbon.errors import InputError

    with pytest.raises(InputError, match="instrument frame lacks"):
        compute_accounts(act, SHIPPED, REGIONS, instruments=pd.DataFrame({"enterprise": []}))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(row, min_size=0, max_size=20), daily=st.booleans())
def test_check_activity_converts_each_row_in_its_own_unit(rows, daily):
    act = activity(rows, daily) if rows else activity([], daily).reindex(
        columns=["enterprise", "workshop", "carrier", "flow", "period_start", "period_end", "quantity", "unit"])
    if not rows:
        act = act.astype({"period_start": f"datetime64[ns, {TZ}]", "period_end": f"datetime64[ns, {TZ}]"})
    out = check_activity(act)
    units = [carrier_unit(c, u) for c, u in zip(act["carrier"], act["unit"], strict=True)]
    want = np.array([q * u.to_base for q, u in zip(act["quantity"], units, strict=True)], dtype=float)
    np.testing.assert_array_equal(out["q_base"].to_numpy(dtype=float), want)
    assert out["dimension"].tolist() == [u.dimension for u in units]


def test_check_activity_names_the_first_row_of_a_bad_unit():
    act = activity([{"enterprise": e, "in_workshop": False, "carrier": c, "unit_pick": 0, "export": False,
                     "window": 0, "quantity": 1.0, "coverage": 1.0} for e, c in (("E1", "pv"), ("E2", "heat"),
                                                                                   ("E3", "heat"))], daily=False)
    act.loc[2, "unit"] = "kWh"  # heat in kWh: not a heat unit the carrier takes
    from carbon.errors import InputError

    with pytest.raises(InputError, match=r"row 2, enterprise E3.*unit 'kWh'"):
        check_activity(act)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(row, min_size=1, max_size=20), daily=st.booleans(),
       kind=st.sampled_from(["day", "month", "quarter", "year"]), threshold=st.sampled_from([0.5, 0.9, 1.0]))
def test_low_coverage_issues_equal_a_group_by_on_the_periods_label(rows, daily, kind, threshold):
    if kind == "day" and not daily:
        kind = "month"
    act = activity(rows, daily)
    acc = compute_accounts(act, SHIPPED, REGIONS, period_kind=kind, strict=False, coverage_threshold=threshold)
    got = acc.issues[acc.issues["code"] == "activity.low_coverage"][["enterprise", "carrier", "period", "message"]]
    lines = acc.lines
    labels = period_label(period_start(lines["period_start"], Period(kind)), Period(kind))
    sums = lines.assign(label=labels).groupby(["enterprise", "carrier", "label"], sort=True)[
        ["measured", "expected"]].sum()
    rows_ = []
    for (enterprise, carrier, label), s in sums.iterrows():
        cov = s["measured"] / s["expected"] if s["expected"] else math.nan
        if cov < threshold:
            rows_.append({"enterprise": enterprise, "carrier": carrier, "period": label,
                          "message": f"{carrier} data of {enterprise} in {label} covers {cov:.1%} of the expected "
                                     f"intervals (threshold {threshold:.0%})"})
    want = pd.DataFrame(rows_, columns=["enterprise", "carrier", "period", "message"])
    # issue_frame orders by code, enterprise and period, stably: within those, in the order they were found
    want = want.sort_values(["enterprise", "period"], kind="stable")
    assert got.astype(object).values.tolist() == want.astype(object).values.tolist()
