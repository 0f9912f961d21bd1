"""Trust tiers of figures (carbon.trust): 自证 declared, 互证 cross-checked, 他证 measured; the cross-checks."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from carbon.trust import (
    TrustError,
    check_rows,
    classify_figures,
    meter_vs_bill,
    meter_vs_bracelets,
    summary_figures,
)

TZ = "Asia/Shanghai"
M = [pd.Timestamp(f"2025-0{i}-01", tz=TZ) for i in (1, 2, 3, 4)]


def test_meter_against_bill_differences_and_tolerance():
    metered = pd.DataFrame({"period_start": M[:3], "metered": [10_150.0, 9_000.0, 5_000.0],
                            "coverage": [1.0, 1.0, 0.8]})
    billed = pd.DataFrame({"period_start": [M[0], M[1], M[2], M[3]], "billed": [10_000.0, 9_500.0, 5_400.0, 7.0]})
    out = meter_vs_bill(metered, billed, tolerance=0.02)
    assert list(out["difference"].iloc[:3]) == [150.0, -500.0, -400.0]
    assert out["relative_difference"].iloc[0] == pytest.approx(0.015)
    assert out["relative_difference"].iloc[1] == pytest.approx(-500 / 9500)
    assert list(out["status"]) == ["agree", "differ", "incomplete_meter", "no_meter"]
    assert out["within_tolerance"].iloc[0] is True or out["within_tolerance"].iloc[0] == 1
    assert not out["within_tolerance"].iloc[1]
    assert pd.isna(out["within_tolerance"].iloc[3])
    row = check_rows("electricity_kwh", "meter_vs_bill", "utility bill", out).iloc[0]
    assert row["difference"] == pytest.approx(150 - 500 - 400)  # compared periods only: no bill-only month
    assert row["relative_difference"] == pytest.approx(-750 / (10_000 + 9_500 + 5_400))
    assert not row["within_tolerance"]


def test_meter_against_bracelets_may_be_below_not_above():
    metered = pd.DataFrame({"period_start": M[:3], "metered_kwh": [1000.0, 1000.0, 1000.0]})
    est = pd.DataFrame({"period_start": [M[0], M[0], M[1], M[2]], "device": ["a", "b", "a", "a"],
                        "estimated_kwh": [300.0, 400.0, 1040.0, 1200.0]})
    out = meter_vs_bracelets(metered, est, tolerance=0.05)
    assert list(out["estimated_kwh"]) == [700.0, 1040.0, 1200.0]
    assert list(out["difference_kwh"]) == [300.0, -40.0, -200.0]
    assert list(out["ratio"]) == [0.7, 1.04, 1.2]
    assert list(out["status"]) == ["agree", "agree", "estimate_exceeds_meter"]
    assert list(out["within_tolerance"]) == [True, True, False]


def test_classify_tiers_and_derived_figures_take_the_weakest_input():
    figures = pd.DataFrame([
        {"figure": "energy_tce", "value": 120.0, "unit": "tce", "source": "store", "derived_from": []},
        {"figure": "gas_m3", "value": 5000.0, "unit": "m3", "source": "utility_bill", "derived_from": []},
        {"figure": "diesel_kg", "value": 800.0, "unit": "kg", "source": "input", "derived_from": []},
        {"figure": "output_value_10k_cny", "value": 300.0, "unit": "10k_cny", "source": "declared",
         "derived_from": []},
        {"figure": "tce_per_10k_cny", "value": 0.4, "unit": "tce/10k_cny", "source": "",
         "derived_from": ["energy_tce", "output_value_10k_cny"]},
        {"figure": "gas_share", "value": 0.1, "unit": "fraction", "source": "",
         "derived_from": ["energy_tce", "gas_m3"]},
    ])
    checks = pd.DataFrame([{"figure": "gas_m3", "check": "meter_vs_bill", "reference": "enterprise gas meter",
                            "difference": 40.0, "relative_difference": 0.008, "tolerance": 0.02,
                            "within_tolerance": True}])
    out = classify_figures(figures, checks).set_index("figure")
    assert out.loc["energy_tce", "tier"] == "measured" and out.loc["energy_tce", "tier_zh"] == "他证"
    assert out.loc["gas_m3", "tier"] == "cross_checked" and out.loc["gas_m3", "tier_zh"] == "互证"
    assert "difference 40.0 (+0.8%), within 2%" in out.loc["gas_m3", "reason"]
    assert out.loc["diesel_kg", "tier_zh"] == "自证"
    assert out.loc["output_value_10k_cny", "tier_zh"] == "自证"
    assert out.loc["tce_per_10k_cny", "tier"] == "declared"
    assert "weakest input output_value_10k_cny" in out.loc["tce_per_10k_cny", "reason"]
    assert out.loc["gas_share", "tier"] == "cross_checked"


def test_failed_cross_check_keeps_the_figure_declared_and_says_why():
    figures = pd.DataFrame([{"figure": "gas_m3", "value": 5000.0, "unit": "m3", "source": "utility_bill",
                             "derived_from": []}])
    checks = pd.DataFrame([{"figure": "gas_m3", "check": "meter_vs_bill", "reference": "gas meter",
                            "difference": -600.0, "relative_difference": -0.12, "tolerance": 0.02,
                            "within_tolerance": False}])
    out = classify_figures(figures, checks).iloc[0]
    assert out["tier"] == "declared" and "cross-check failed" in out["reason"] and "outside 2%" in out["reason"]


def test_measured_figure_stays_measured_and_mentions_its_check():
    figures = pd.DataFrame([{"figure": "e", "value": 1.0, "unit": "kWh", "source": "park_meter", "derived_from": []}])
    checks = pd.DataFrame([{"figure": "e", "check": "meter_vs_bill", "reference": "bill", "difference": -900.0,
                            "relative_difference": -0.3, "tolerance": 0.02, "within_tolerance": False}])
    out = classify_figures(figures, checks).iloc[0]
    assert out["tier"] == "measured" and "also checked" in out["reason"]


def test_unknown_source_missing_input_and_cycles_are_refused():
    with pytest.raises(TrustError, match="unknown source 'guess'"):
        classify_figures(pd.DataFrame([{"figure": "a", "value": 1, "unit": "", "source": "guess",
                                        "derived_from": []}]))
    with pytest.raises(TrustError, match="derived from 'b', which is not among the figures"):
        classify_figures(pd.DataFrame([{"figure": "a", "value": 1, "unit": "", "source": "", "derived_from": ["b"]}]))
    with pytest.raises(TrustError, match="derived from itself"):
        classify_figures(pd.DataFrame([
            {"figure": "a", "value": 1, "unit": "", "source": "", "derived_from": ["b"]},
            {"figure": "b", "value": 1, "unit": "", "source": "", "derived_from": ["a"]}]))


def test_summary_figures_of_an_enterprise_summary():
    totals = {"energy_tce": 100.0, "scope1_t_co2e": 20.0, "total_location_t_co2e": 250.0, "coverage": 0.97}
    f = summary_figures(totals, {"scope1_t_co2e": "input"}, output_value_10k_cny=500.0)
    out = classify_figures(f).set_index("figure")
    assert "coverage" not in out.index
    assert out.loc["energy_tce", "tier_zh"] == "他证"
    assert out.loc["scope1_t_co2e", "tier_zh"] == "自证"
    assert out.loc["tce_per_10k_cny", "value"] == pytest.approx(0.2)
    assert out.loc["t_co2e_per_10k_cny", "value"] == pytest.approx(0.5)
    assert out.loc["t_co2e_per_10k_cny", "tier_zh"] == "自证"
    zero = summary_figures(totals, output_value_10k_cny=0.0).set_index("figure")
    assert math.isnan(zero.loc["tce_per_10k_cny", "value"])
