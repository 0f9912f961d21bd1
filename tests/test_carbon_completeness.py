"""Incomplete is never shown as complete: every totals row says `complete` and why not (`reasons`, codes of
carbon.issues.INCOMPLETE) — low coverage, a missing factor, a fall-back (methodology 1.1, example C)."""

from __future__ import annotations

import pandas as pd
import pytest

from carbon.emissions import compute_accounts
from carbon.factors import FactorPolicy, FactorRegistry
from carbon.issues import INCOMPLETE, ISSUES
from carbon.regions import enterprise_regions
from park.model import Enterprise, Park

TZ = "Asia/Shanghai"
REGISTRY = FactorRegistry.shipped()
REGIONS = enterprise_regions(Park("p", "P", province="Jiangsu",
                                  enterprises=(Enterprise("E1", "a"), Enterprise("E2", "b"))))


def line(carrier: str, quantity: float, unit: str, month: str = "2024-03", enterprise: str = "E1",
         measured: float | None = None, expected: float | None = None, workshop: str | None = None) -> dict:
    start = pd.Timestamp(f"{month}-01", tz=TZ)
    return {"enterprise": enterprise, "workshop": workshop, "carrier": carrier, "flow": "import",
            "period_start": start, "period_end": start + pd.DateOffset(months=1), "quantity": quantity, "unit": unit,
            "measured": measured, "expected": expected, "source": "test"}


def row(acc, level: str = "enterprise", enterprise: str | None = "E1", period: str = "2024-03"):
    t = acc.totals_at(level)
    if enterprise is not None:
        t = t[t["enterprise"] == enterprise]
    if level == "workshop":
        t = t[t["workshop"].notna()]
    return t[t["period"] == period].iloc[0]


def test_example_c_low_electricity_coverage_is_flagged_at_every_level_and_period():
    # 64.5 % of the quarter hours of March metered: below the 90 % threshold
    acc = compute_accounts(pd.DataFrame([
        line("electricity", 100_000.0, "kWh", measured=1920, expected=2976, workshop="W1"),
        line("natural_gas", 1_000.0, "m3", measured=744, expected=744),
        line("electricity", 50_000.0, "kWh", enterprise="E2", measured=2976, expected=2976)]), REGISTRY, REGIONS)
    assert pytest.approx(0.645, abs=1e-3) == 1920 / 2976
    for level, enterprise in (("workshop", "E1"), ("enterprise", "E1"), ("park", None)):
        r = row(acc, level, enterprise)
        assert not r["complete"] and r["reasons"] == ("activity.low_coverage",), level
    assert row(acc, "enterprise", "E2")["complete"]
    assert not acc.complete
    assert set(acc.reasons("E1")["code"]) == {"activity.low_coverage"}
    # a year built on that month is incomplete too, and says why
    year = compute_accounts(pd.DataFrame([line("electricity", 100_000.0, "kWh", measured=1920, expected=2976)]),
                            REGISTRY, REGIONS, period_kind="year")
    assert row(year, period="2024")["reasons"] == ("activity.low_coverage",)


def test_the_threshold_is_the_parks():
    act = pd.DataFrame([line("electricity", 100_000.0, "kWh", measured=1920, expected=2976)])
    assert row(compute_accounts(act, REGISTRY, REGIONS, coverage_threshold=0.6))["complete"]


def test_a_missing_coal_carbon_content_is_flagged_not_complete():
    acc = compute_accounts(pd.DataFrame([line("raw_coal", 10.0, "t"), line("electricity", 1_000.0, "kWh")]),
                           REGISTRY, REGIONS, strict=False)
    r = row(acc)
    assert not r["complete"] and "factor.missing" in r["reasons"]
    assert not row(acc, "park", None)["complete"]
    assert "factor.missing" in set(acc.reasons("E1")["code"])


def test_no_grid_factor_for_the_year_is_a_fallback_that_makes_the_figure_incomplete():
    # 2026 reporting uses data year 2024, not published: the 2023 factors stand in, flagged
    acc = compute_accounts(pd.DataFrame([line("electricity", 1_000.0, "kWh", month="2026-03")]), REGISTRY, REGIONS)
    r = row(acc, period="2026-03")
    assert r["scope2_location_t_co2e"] == pytest.approx(0.55)  # East China 2023
    assert not r["complete"] and r["reasons"] == ("factor.prior_year",)


def test_a_region_fallback_alone_is_the_documented_chain_and_keeps_the_figure_complete():
    acc = compute_accounts(pd.DataFrame([line("electricity", 1_000.0, "kWh")]), REGISTRY, REGIONS)
    assert "factor.region_fallback" in set(acc.issues["code"])
    assert row(acc)["complete"] and row(acc)["reasons"] == ()


def test_the_level_policy_flags_a_wider_level_as_incomplete():
    acc = compute_accounts(pd.DataFrame([line("electricity", 1_000.0, "kWh")]), REGISTRY, REGIONS,
                           FactorPolicy(grid_level="provincial"))
    assert row(acc)["reasons"] == ("factor.level_fallback",)  # no Jiangsu factor: East China used


def test_every_incomplete_code_is_in_the_catalogue():
    assert set(ISSUES) >= INCOMPLETE


def test_the_flag_travels_to_intensities_footprints_and_the_quota_position():
    from carbon.footprint import product_footprints
    from carbon.intensity import intensities, unit_intensities
    from carbon.quota import position

    acc = compute_accounts(pd.DataFrame([line("electricity", 100_000.0, "kWh", measured=1920, expected=2976)]),
                           REGISTRY, REGIONS)
    out = pd.DataFrame({"enterprise": ["E1"], "month": ["2024-03-01"], "output_value_10k_cny": [100.0]})
    prod = pd.DataFrame({"enterprise": ["E1"], "month": ["2024-03-01"], "product": ["steel"], "quantity": [10.0],
                         "unit": ["t"]})
    for frame in (intensities(acc, out), unit_intensities(acc, prod), product_footprints(acc, prod)):
        assert not frame["complete"].iloc[0] and frame["reasons"].iloc[0] == ("activity.low_coverage",)
    ent = acc.totals_at("enterprise")
    emissions = ent[["enterprise", "complete", "reasons"]].assign(year=2024,
                                                                   emissions_t_co2e=ent["total_location_t_co2e"])
    ledger = pd.DataFrame([{"id": 1, "enterprise": "E1", "year": 2024, "kind": "allocation", "amount_t": 100.0}])
    pos = position(ledger, emissions, 97.49)
    assert not pos["complete"].iloc[0] and pos["reasons"].iloc[0] == ("activity.low_coverage",)


def test_every_test_the_methodology_names_exists():
    """The worked examples of docs/methodology.md are tests: each test it names is defined in tests/."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    named = set(re.findall(r"`(test_[a-z0-9_]+)", (root / "docs" / "methodology.md").read_text(encoding="utf-8")))
    defined = set()
    for path in (root / "tests").glob("test_carbon_*.py"):
        defined |= set(re.findall(r"^def (test_[a-z0-9_]+)", path.read_text(encoding="utf-8"), re.M))
    prefixes = {n for n in named if n.endswith("_")}  # `test_example_f1_*` names a family
    missing = {n for n in named - prefixes if n not in defined}
    missing |= {p for p in prefixes if not any(d.startswith(p) for d in defined)}
    assert not missing, f"docs/methodology.md names tests that do not exist: {sorted(missing)}"


def test_the_reasons_of_one_enterprise_and_period():
    acc = compute_accounts(pd.DataFrame([
        line("electricity", 1_000.0, "kWh", month="2024-02", measured=100, expected=2784),
        line("electricity", 1_000.0, "kWh", month="2024-03", measured=2976, expected=2976),
        line("electricity", 1_000.0, "kWh", month="2024-05", enterprise="E2", measured=10, expected=2976)]),
        REGISTRY, REGIONS)
    assert acc.reasons("E1", "2024-02")["code"].tolist() == ["activity.low_coverage"]
    assert acc.reasons("E1", "2024-03").empty and acc.reasons("E1", "2024Q2").empty
    assert acc.reasons("E2", "2024Q2")["period"].tolist() == ["2024-05"]
