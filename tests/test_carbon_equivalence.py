"""Regression guard of the accounting's figures: every path of `compute_accounts` on a synthetic park, compared with
a snapshot made before the accounting was optimised (tests/data/carbon_equivalence.json.gz).

The park covers fuels (by mass and volume, one without a standard-coal coefficient, one biogenic, one without a
carbon content), grid electricity in kWh and MWh with exports, green certificates with and without a vintage, a
PPA whose claim period runs past the data (estimated basis), certificates beyond the purchases (excess), on-site
PV, heat in GJ, steam by mass and by heat, water (not energy), missing windows, low coverage, a missing carrier,
factor changes inside a month (an enterprise's steam condition, a park's grid factor), an enterprise-specific
tce coefficient, prior-year and level fall-backs, daily windows, months, quarters and years, strict and lenient
lookups, and a restatement between two registries.  Figures must agree to 1e-9 relative; everything else (text,
ids, reasons, dates, column order and dtypes) exactly.

Regenerate the snapshot only when a figure is meant to change (or, for a new case, from a checkout of the code before
the change: a `git worktree` of that commit, PYTHONPATH pointing at it):
CARBON_SNAPSHOT_UPDATE=1 .venv/bin/python -m pytest tests/test_carbon_equivalence.py
"""

from __future__ import annotations

import gzip
import json
import math
import os
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from carbon.emissions import Accounts, compute_accounts, grid_purchases
from carbon.factors import FactorPolicy, FactorRegistry, parse_factor_file
from carbon.regions import enterprise_regions
from carbon.restatement import diff_accounts
from park.model import Enterprise, Park, Workshop

SNAPSHOT = Path(__file__).parent / "data" / "carbon_equivalence.json.gz"
TZ = "Asia/Shanghai"
REL = 1e-9
SHIPPED = FactorRegistry.shipped()
PARK = Park("eq", "Equivalence park", province="Jiangsu", grid_region="east_china",
            enterprises=(Enterprise("E1", "steel"), Enterprise("E2", "textiles"), Enterprise("E3", "chemicals"),
                         Enterprise("E4", "food"), Enterprise("E5", "paper", province="Sichuan"),
                         Enterprise("E6", "empty")),
            workshops=(Workshop("E1-W1", "E1"), Workshop("E1-W2", "E1"), Workshop("E2-W1", "E2"),
                       Workshop("E3-W1", "E3")))
REGIONS = enterprise_regions(PARK)
HEADER = "kind,key,parameter,region,enterprise,value,unit,valid_from,valid_to,source,publication,verified\n"
OVERRIDES = (
    # E1's supplier raises the steam condition from 16 March 2024 (a split inside the month)
    "heat,steam,enthalpy,jiangsu,E1,2942.6,kJ/kg,2024-03-16,,supplier certificate,2024-03,true\n"
    # a park grid factor for Jiangsu from 10 July of data year 2022 (reporting 2024 lags two years: splits July)
    "grid,electricity,average,jiangsu,,0.5702,tCO2/MWh,2022-07-10,2022-12-31,park study,2023-05,false\n"
    # E3's own electricity coefficient
    "tce,electricity,equivalent,jiangsu,E3,0.1300,kgce/kWh,2024-01-01,,E3 energy audit,2024-01,true\n"
)
# The same with a corrected park grid factor: the restatement case
RESTATED = OVERRIDES.replace("0.5702,tCO2/MWh", "0.5810,tCO2/MWh")


def registry(text: str) -> FactorRegistry:
    return SHIPPED.with_overrides(parse_factor_file((HEADER + text).encode(), "park.csv"))


def month_start(year: int, m: int) -> pd.Timestamp:
    return pd.Timestamp(year, m, 1, tz=TZ)


def monthly_activity(year: int = 2024) -> pd.DataFrame:
    """A year of monthly windows for the park, seeded: the same frame every run."""
    rng = np.random.default_rng(20241203)
    rows = []

    def add(enterprise, carrier, quantity, unit, m, workshop=None, flow="import", coverage=1.0):
        s = month_start(year, m)
        e = s + pd.DateOffset(months=1)
        expected = (e - s) / pd.Timedelta("15min")
        measured = round(expected * coverage)
        rows.append({"enterprise": enterprise, "workshop": workshop, "carrier": carrier, "flow": flow,
                     "period_start": s, "period_end": e, "quantity": quantity, "unit": unit, "count": measured,
                     "measured": measured, "expected": expected, "coverage": measured / expected,
                     "source": "store"})

    for m in range(1, 13):
        q = lambda lo, hi: float(np.round(rng.uniform(lo, hi), 3))  # noqa: E731
        # E1: two workshops' electricity, gas by volume, steam by mass (split in March), PV, exports, water
        add("E1", "electricity", q(2e5, 4e5), "kWh", m, "E1-W1")
        add("E1", "electricity", q(1e5, 2e5), "kWh", m, "E1-W2", coverage=0.8 if m == 5 else 1.0)
        add("E1", "natural_gas", q(1e4, 3e4), "m3", m)
        add("E1", "steam", q(200, 400), "t", m)
        add("E1", "pv", q(1e4, 5e4), "kWh", m)
        if m in (4, 5, 6, 7, 8):
            add("E1", "electricity", q(1e3, 8e3), "kWh", m, flow="export")
            add("E1", "steam", q(5, 20), "t", m, flow="export")
        add("E1", "water", q(1e3, 2e3), "m3", m)
        # E2: heat in GJ, diesel, wood (biogenic), electricity in MWh; no data in February; low coverage in June
        add("E2", "electricity", math.nan if m == 2 else q(80, 160), "MWh", m, "E2-W1",
            coverage=0.0 if m == 2 else (0.5 if m == 6 else 1.0))
        add("E2", "heat", q(300, 900), "GJ", m)
        add("E2", "diesel", q(1, 5), "t", m)
        add("E2", "wood", q(10, 30), "t", m)
        # E3: electricity beyond its certificates' reach (excess), steam by heat, LPG and fuel oil (NCV path),
        # gas missing in September
        add("E3", "electricity", q(1e4, 3e4), "kWh", m, "E3-W1")
        add("E3", "steam", q(100, 300), "GJ", m)
        add("E3", "lpg", q(0.5, 2), "t", m)
        add("E3", "fuel_oil", q(0.5, 2), "t", m)
        add("E3", "natural_gas", math.nan if m == 9 else q(1e3, 5e3), "m3", m, coverage=0.0 if m == 9 else 1.0)
        # E4: raw coal (no carbon content shipped: missing factor when lenient), gasoline, electricity in MWh
        add("E4", "electricity", q(50, 90), "MWh", m)
        add("E4", "raw_coal", q(5, 10), "t", m)
        add("E4", "gasoline", q(0.2, 1), "t", m)
        # E5: Sichuan (its own province and grid), electricity and heat export
        add("E5", "electricity", q(3e4, 6e4), "kWh", m)
        add("E5", "heat", q(100, 200), "GJ", m)
        if m % 3 == 0:
            add("E5", "heat", q(10, 30), "GJ", m, flow="export")
        # E6: metered but no readings at all
        add("E6", "electricity", math.nan, "kWh", m, coverage=0.0)
    return pd.DataFrame(rows)


def daily_activity() -> pd.DataFrame:
    """March 2024 in days for E1 and E2 (the steam change on the 16th falls between days)."""
    rng = np.random.default_rng(7)
    rows = []
    for d in range(31):
        s = pd.Timestamp(2024, 3, 1, tz=TZ) + pd.Timedelta(days=d)
        base = {"flow": "import", "period_start": s, "period_end": s + pd.Timedelta(days=1), "count": 96,
                "measured": 96 if d != 10 else 40, "expected": 96, "source": "store"}
        rows.append({**base, "enterprise": "E1", "workshop": "E1-W1", "carrier": "electricity",
                     "quantity": float(rng.uniform(5e3, 1e4)), "unit": "kWh"})
        rows.append({**base, "enterprise": "E1", "workshop": None, "carrier": "steam",
                     "quantity": float(rng.uniform(5, 15)), "unit": "t"})
        rows.append({**base, "enterprise": "E2", "workshop": "E2-W1", "carrier": "electricity",
                     "quantity": math.nan if d in (3, 4) else float(rng.uniform(2, 4)), "unit": "MWh"})
    return pd.DataFrame(rows)


def instruments(year: int = 2024) -> pd.DataFrame:
    return pd.DataFrame([
        {"enterprise": "E1", "kind": "gec", "quantity_mwh": 900.0, "period_start": date(year, 1, 1),
         "period_end": date(year + 1, 1, 1), "reference": "GEC-E1", "vintage": year},
        {"enterprise": "E1", "kind": "gec", "quantity_mwh": 120.0, "period_start": date(year, 4, 1),
         "period_end": date(year, 7, 1), "reference": "GEC-E1-Q2", "vintage": year},
        {"enterprise": "E2", "kind": "gec", "quantity_mwh": 300.0, "period_start": date(year, 1, 1),
         "period_end": date(year + 1, 1, 1), "reference": "GEC-E2-NOVINTAGE", "vintage": None},
        {"enterprise": "E2", "kind": "ppa", "quantity_mwh": 400.0, "period_start": date(year, 7, 1),
         "period_end": date(year + 1, 7, 1), "reference": "PPA-E2", "vintage": year},
        {"enterprise": "E3", "kind": "gec", "quantity_mwh": 5000.0, "period_start": date(year, 1, 1),
         "period_end": date(year + 1, 1, 1), "reference": "GEC-E3-TOO-MANY", "vintage": year},
        {"enterprise": "E4", "kind": "gec", "quantity_mwh": 50.0, "period_start": date(year - 1, 1, 1),
         "period_end": date(year - 1, 6, 1), "reference": "GEC-E4-NO-PURCHASES", "vintage": year - 1},
        {"enterprise": "E5", "kind": "ppa", "quantity_mwh": 60.0, "period_start": date(year, 3, 1),
         "period_end": date(year, 5, 1), "reference": "PPA-E5", "vintage": year},
    ])


def cases() -> dict[str, Accounts]:
    """Every computation the snapshot holds, by name."""
    act = monthly_activity()
    reg, inst = registry(OVERRIDES), instruments()
    wider = pd.concat([monthly_activity(2023), act], ignore_index=True)
    out: dict[str, Accounts] = {}
    for kind in ("month", "quarter", "year"):
        out[f"lenient_{kind}"] = compute_accounts(act, reg, REGIONS, period_kind=kind, instruments=inst, strict=False)
    strict_act = act[~act["carrier"].isin(["raw_coal", "fuel_oil"])]  # no shipped carbon content
    out["strict_month"] = compute_accounts(strict_act, reg, REGIONS, period_kind="month", instruments=inst)
    out["basis_month"] = compute_accounts(act, reg, REGIONS, period_kind="month", instruments=inst, strict=False,
                                          instrument_basis=grid_purchases(wider))
    out["ets_equal_provincial"] = compute_accounts(
        act, reg, REGIONS, FactorPolicy(location_basis="ets", energy_basis="equal", grid_level="provincial"),
        period_kind="month", instruments=inst, strict=False, coverage_threshold=0.75)
    out["pinned_as_of"] = compute_accounts(act, reg, REGIONS, FactorPolicy(grid_data_year=2023,
                                                                           as_of=date(2024, 1, 1)),
                                           period_kind="quarter", instruments=inst, strict=False)
    out["shipped_no_instruments"] = compute_accounts(act, SHIPPED, REGIONS, period_kind="month", strict=False)
    late = act.assign(period_start=act["period_start"] + pd.DateOffset(years=3),
                      period_end=act["period_end"] + pd.DateOffset(years=3))  # 2027: grid data year 2025 unknown
    out["prior_year_2027"] = compute_accounts(late, reg, REGIONS, period_kind="month", strict=False)
    fuels = act[act["carrier"].isin(["diesel", "wood", "natural_gas", "heat"])]  # no grid electricity at all
    out["no_grid"] = compute_accounts(fuels, reg, REGIONS, period_kind="month", instruments=inst, strict=False)
    empty = act.iloc[:0]
    out["empty"] = compute_accounts(empty, reg, REGIONS, period_kind="month", instruments=inst)
    daily = daily_activity()
    for kind in ("day", "month"):
        out[f"daily_{kind}"] = compute_accounts(daily, reg, REGIONS, period_kind=kind, instruments=inst)
    return out


def restatement() -> pd.DataFrame:
    act, inst = monthly_activity(), instruments()
    before = compute_accounts(act, registry(OVERRIDES), REGIONS, instruments=inst, strict=False)
    after = compute_accounts(act, registry(RESTATED), REGIONS, instruments=inst, strict=False)
    return diff_accounts(before, after)


# ---- snapshot encoding -----------------------------------------------------------------------------------------
def _encode(v):
    if v is None:
        return None
    if v is pd.NaT:
        return "__nat__"
    if v is pd.NA:
        return "__na__"
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return "__nan__" if math.isnan(v) else float(v)
    if isinstance(v, (pd.Timestamp, datetime, date)):
        return {"t": v.isoformat()}
    if isinstance(v, (tuple, list)):
        return {"seq": [_encode(x) for x in v]}
    if isinstance(v, (set, frozenset)):
        return {"set": sorted(_encode(x) for x in v)}
    return str(v)


def frame_snapshot(frame: pd.DataFrame) -> dict:
    return {"columns": [str(c) for c in frame.columns], "dtypes": [str(t) for t in frame.dtypes],
            "index": [_encode(i) for i in frame.index],
            "data": {str(c): [_encode(v) for v in frame[c].tolist()] for c in frame.columns}}


def accounts_snapshot(acc: Accounts) -> dict:
    return {"period": acc.period.value, "registry": acc.registry_fingerprint,
            **{name: frame_snapshot(getattr(acc, name)) for name in ("lines", "totals", "factors", "fallbacks",
                                                                      "issues")}}


def current() -> dict:
    return {**{name: accounts_snapshot(acc) for name, acc in cases().items()},
            "restatement": {"diff": frame_snapshot(restatement())}}


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= REL * max(abs(a), abs(b)) or abs(a - b) < 1e-300
    return a == b


def differences(want: dict, got: dict, where: str = "") -> list[str]:
    """Where two snapshots disagree (at most a few per column)."""
    out: list[str] = []
    if isinstance(want, dict) and "data" in want and "columns" in want:
        for part in ("columns", "dtypes", "index"):
            if want[part] != got[part]:
                out.append(f"{where}.{part}: {want[part][:20]} != {got[part][:20]}")
        if out:
            return out
        for c in want["columns"]:
            bad = [i for i, (a, b) in enumerate(zip(want["data"][c], got["data"][c], strict=True)) if not _same(a, b)]
            out += [f"{where}.{c}[{i}]: {want['data'][c][i]!r} != {got['data'][c][i]!r}" for i in bad[:3]]
        return out
    if isinstance(want, dict):
        if set(want) != set(got):
            return [f"{where}: keys {sorted(set(want) ^ set(got))} differ"]
        for k in want:
            out += differences(want[k], got[k], f"{where}.{k}" if where else k)
        return out
    return [] if _same(want, got) else [f"{where}: {want!r} != {got!r}"]


def stored() -> dict:
    return json.loads(gzip.decompress(SNAPSHOT.read_bytes()).decode("utf-8"))


@pytest.fixture(scope="module")
def now() -> dict:
    return json.loads(json.dumps(current()))


def test_the_park_covers_every_path(now):
    codes = set().union(*(set(now[c]["issues"]["data"]["code"]) for c in now if c != "restatement"))
    for code in ("activity.no_data", "activity.carrier_missing", "activity.low_coverage", "activity.not_energy",
                 "factor.split", "factor.missing", "factor.prior_year", "factor.level_fallback",
                 "factor.region_fallback", "factor.unverified", "instrument.excess", "instrument.estimated_basis",
                 "instrument.no_vintage"):
        assert code in codes, code
    lines = now["lenient_month"]["lines"]["data"]
    assert {"electricity", "pv", "natural_gas", "steam", "heat", "diesel", "wood", "lpg", "fuel_oil", "raw_coal",
            "gasoline"} <= set(lines["carrier"])
    assert "export" in set(lines["flow"])
    assert len(now["restatement"]["diff"]["data"]["metric"]) > 0


def test_figures_equal_the_snapshot(now):
    if os.environ.get("CARBON_SNAPSHOT_UPDATE"):
        text = json.dumps(now, ensure_ascii=False, separators=(",", ":")) + "\n"
        SNAPSHOT.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    want = stored()
    diff = differences(want, now)
    assert not diff, f"{len(diff)} difference(s) from the snapshot, first: " + "\n".join(diff[:30])


def test_the_comparison_catches_a_changed_figure(now):
    want = stored()
    data = want["lenient_month"]["totals"]["data"]["scope2_market_t_co2e"]
    i = next(i for i, v in enumerate(data) if isinstance(v, float) and v > 0)
    data[i] *= 1 + 1e-8
    assert differences(want, now)
