"""Intensities, grades, ranking and product footprints (methodology 4 and 5, examples I, G and P)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from carbon.emissions import compute_accounts
from carbon.errors import InputError, NegativeOutputError
from carbon.footprint import BOUNDARY, product_footprints
from carbon.intensity import grade_enterprises, intensities, unit_intensities, year_on_year
from tests.test_carbon_accounting import REGIONS, REGISTRY, frame


def example_a(month: str = "2024-03", scale: float = 1.0) -> pd.DataFrame:
    """Worked example A as activity frames: workshops W1 (300 000 kWh) and W2 (200 000 kWh), gas and steam."""
    return pd.DataFrame([
        frame("electricity", 300_000.0 * scale, "kWh", workshop="E1-W1", month=month),
        frame("electricity", 200_000.0 * scale, "kWh", workshop="E1-W2", month=month),
        frame("natural_gas", 20_000.0 * scale, "m3", month=month),
        frame("steam", 300.0 * scale, "t", month=month),
    ])


ACCOUNTS = compute_accounts(example_a(), REGISTRY, REGIONS)
OUTPUT = pd.DataFrame({"enterprise": ["E1"], "month": ["2024-03-01"], "output_value_10k_cny": [1_250.0]})
PRODUCTS = pd.DataFrame({"enterprise": ["E1", "E1"], "month": ["2024-03-01"] * 2, "product": ["beam", "column"],
                         "quantity": [500.0, 300.0], "unit": ["t", "t"], "workshop": ["E1-W1", "E1-W2"]})


def test_example_i_intensity_per_output_value():
    r = intensities(ACCOUNTS, OUTPUT).iloc[0]
    assert r["t_co2e_per_10k_cny"] == pytest.approx(412.97465618 / 1_250)  # 0.3304 tCO2e per 10k CNY
    assert r["tce_per_10k_cny"] == pytest.approx(115.61923296 / 1_250)  # 0.0925 tce per 10k CNY
    assert r["flag"] == ""
    market = intensities(ACCOUNTS, OUTPUT, method="market").iloc[0]
    assert market["t_co2e_per_10k_cny"] == pytest.approx((43.24377618 + 500 * 0.5856 + 88.88088) / 1_250)


def test_example_i_energy_per_unit_of_product():
    one = PRODUCTS.iloc[:1].assign(quantity=800.0, product="steel structures", workshop=None)
    r = unit_intensities(ACCOUNTS, one).iloc[0]
    assert r["tce_per_unit"] == pytest.approx(115.61923296 / 800)  # 0.1445 tce per t
    assert r["t_co2e_per_unit"] == pytest.approx(412.97465618 / 800)


def test_a_negative_output_value_is_refused():
    with pytest.raises(NegativeOutputError, match="output value \\(10k CNY\\) -5.0 at row 0, enterprise E1"):
        intensities(ACCOUNTS, OUTPUT.assign(output_value_10k_cny=-5.0))


def test_missing_or_zero_output_gives_no_intensity_and_says_why():
    q = compute_accounts(pd.concat([example_a("2024-01"), example_a("2024-02"), example_a("2024-03")]), REGISTRY,
                         REGIONS, period_kind="quarter")
    two_months = pd.DataFrame({"enterprise": ["E1"] * 2, "month": ["2024-01-01", "2024-02-01"],
                               "output_value_10k_cny": [1_000.0, 1_100.0]})
    r = intensities(q, two_months).iloc[0]
    assert r["flag"] == "output.missing" and np.isnan(r["t_co2e_per_10k_cny"]) and r["output_months"] == 2
    zero = intensities(ACCOUNTS, OUTPUT.assign(output_value_10k_cny=0.0)).iloc[0]
    assert zero["flag"] == "output.zero" and np.isnan(zero["tce_per_10k_cny"])


def test_trend_against_the_same_period_last_year():
    both = pd.concat([example_a("2023-03", scale=1.1), example_a("2024-03")])
    acc = compute_accounts(both, REGISTRY, REGIONS)
    out = pd.DataFrame({"enterprise": ["E1", "E1"], "month": ["2023-03-01", "2024-03-01"],
                        "output_value_10k_cny": [1_100.0, 1_250.0]})
    yoy = year_on_year(intensities(acc, out), ["t_co2e_per_10k_cny", "emissions_t_co2e"])
    r = yoy[yoy["period"] == "2024-03"].iloc[0]
    # 2023-03 is computed with data year 2021 (0.5568, residual 0.5942): intensities compare as reported
    last = (1.1 * 43.24377618 + 1.1 * 500 * 0.5568 + 1.1 * 88.88088) / 1_100
    assert r["t_co2e_per_10k_cny_last_year"] == pytest.approx(last)
    assert r["t_co2e_per_10k_cny_yoy"] == pytest.approx(412.97465618 / 1_250 / last - 1)
    assert np.isnan(yoy[yoy["period"] == "2023-03"]["t_co2e_per_10k_cny_yoy"].iloc[0])


def test_example_g_grade_and_ranking_against_the_industry():
    inten = pd.DataFrame({
        "enterprise": ["A", "B", "C", "D", "X"], "period": "2024", "period_start": pd.Timestamp("2024-01-01",
                                                                                                tz="Asia/Shanghai"),
        "industry": ["textiles"] * 4 + ["logistics"], "emissions_t_co2e": [100.0, 200.0, 300.0, 800.0, 50.0],
        "output_value_10k_cny": [500.0] * 5, "flag": ""})
    inten["t_co2e_per_10k_cny"] = inten["emissions_t_co2e"] / inten["output_value_10k_cny"]
    g = grade_enterprises(inten).set_index("enterprise")
    # textiles: 1 400 t / 2 000 (10k CNY) = 0.7; index 0.29, 0.57, 0.86, 2.29 -> grades 1, 2, 3, 5
    assert g.loc["A", "group_t_co2e_per_10k_cny"] == pytest.approx(0.7)
    assert g.loc[["A", "B", "C", "D"], "efficiency_index"].tolist() == pytest.approx([0.2 / 0.7, 0.4 / 0.7,
                                                                                       0.6 / 0.7, 1.6 / 0.7])
    assert g.loc[["A", "B", "C", "D"], "grade"].tolist() == [1, 2, 3, 5]
    assert g.loc["D", "grade_zh"] == "落后"
    # X is alone in its industry: graded against the whole park (1 450 / 2 500 = 0.58): 0.1 / 0.58 -> grade 1
    assert g.loc["X", "group"] == "park" and g.loc["X", "grade"] == 1
    assert g.loc[["X", "A", "B", "C", "D"], "rank"].tolist() == [1, 2, 3, 4, 5]


def test_an_enterprise_without_output_is_neither_graded_nor_ranked():
    inten = intensities(ACCOUNTS, OUTPUT.assign(output_value_10k_cny=0.0))
    g = grade_enterprises(inten).iloc[0]
    assert pd.isna(g["grade"]) and pd.isna(g["rank"]) and g["flag"] == "output.zero"


def test_example_p_footprint_by_metered_workshop():
    fp = product_footprints(ACCOUNTS, PRODUCTS, by="workshop").set_index("product")
    # W1 168.51 t + 60 % of the gate's 132.12465618 t; W2 112.34 t + 40 %
    assert fp.loc["beam", "t_co2e_location"] == pytest.approx(247.78479371)
    assert fp.loc["column", "t_co2e_location"] == pytest.approx(165.18986247)
    assert fp.loc["beam", "kg_co2e_per_unit_location"] == pytest.approx(495.56958742)
    assert fp["t_co2e_location"].sum() == pytest.approx(412.97465618)
    assert fp.loc["beam", "boundary"] == BOUNDARY


def test_example_p_footprint_by_output():
    fp = product_footprints(ACCOUNTS, PRODUCTS, by="output").set_index("product")
    assert fp.loc["beam", "share"] == pytest.approx(0.625)
    assert fp.loc["beam", "t_co2e_location"] == pytest.approx(258.10916011)
    assert fp.loc["column", "kg_co2e_per_unit_location"] == pytest.approx(412.97465618 * 0.375 * 1000 / 300)


def test_allocation_by_output_needs_one_unit():
    mixed = PRODUCTS.assign(unit=["t", "pieces"])
    with pytest.raises(InputError, match="several units"):
        product_footprints(ACCOUNTS, mixed, by="output")
