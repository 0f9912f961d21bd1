"""carbon.costs: energy and carbon cost of a period, each carrier at its tariff, the emissions at the carbon price.

Worked example: 13 680 kWh of electricity at 0.70 CNY/kWh = 9 576 CNY; 912 m3 of gas at 3.60 = 3 283.20 CNY; 1 824
kWh of on-site PV: not bought, no cost (missing, not zero); 9.65 tCO2e at 97.49 CNY/t = 940.7785 CNY; total
13 799.9785 CNY, so carbon is 6.817 % of it.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.costs import CARBON_PRICE_CNY_PER_T, COST_COLUMNS, DEFAULT_TARIFFS, Tariff, cost_structure


def carriers(rows: list[tuple[str, float, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["carrier", "quantity", "unit", "coverage"])


def test_the_worked_example():
    cost = cost_structure(carriers([("electricity", 13_680.0, "kWh", 1.0), ("natural_gas", 912.0, "m3", 0.9),
                                    ("pv", 1_824.0, "kWh", 1.0)]), 9.65, 0.95).set_index("item")
    assert list(cost.reset_index().columns) == COST_COLUMNS
    assert cost.loc["electricity", "cost_cny"] == pytest.approx(9_576.0)
    assert cost.loc["natural_gas", "cost_cny"] == pytest.approx(3_283.2) and cost.loc["natural_gas", "coverage"] == 0.9
    assert math.isnan(cost.loc["pv", "cost_cny"]) and math.isnan(cost.loc["pv", "share"])
    assert cost.loc["carbon", "cost_cny"] == pytest.approx(9.65 * 97.49) and CARBON_PRICE_CNY_PER_T == 97.49
    assert cost.loc["carbon", "share"] == pytest.approx(940.7785 / 13_799.9785)
    assert cost.loc["carbon", ("unit", "price_unit")].tolist() == ["tCO2e", "CNY/t"]
    assert cost.loc["carbon", "coverage"] == 0.95


def test_tariffs_convert_the_stores_unit_to_the_tariffs():
    cost = cost_structure(carriers([("diesel", 2500.0, "kg", 0.5)]), 10.0, 0.5, DEFAULT_TARIFFS, 100.0)
    cost = cost.set_index("item")
    assert cost.loc["diesel", "quantity"] == 2.5 and cost.loc["diesel", "unit"] == "t"
    assert cost.loc["diesel", "cost_cny"] == pytest.approx(2.5 * 7800) and cost.loc["carbon", "cost_cny"] == 1000


def test_missing_quantities_and_emissions_stay_missing():
    cost = cost_structure(carriers([("electricity", float("nan"), "kWh", 0.0)]), float("nan"), 0.0).set_index("item")
    assert cost["cost_cny"].isna().all() and cost["share"].isna().all()  # nothing becomes a zero


@given(st.lists(st.tuples(st.sampled_from(["electricity", "natural_gas", "steam", "heat", "diesel", "pv"]),
                          st.floats(0, 1e7)), max_size=6, unique_by=lambda r: r[0]),
       st.floats(0, 1e5), st.floats(0.01, 1000))
def test_shares_of_the_priced_items_add_up_to_one(rows, emissions, price):
    units = {"electricity": "kWh", "natural_gas": "m3", "steam": "t", "heat": "GJ", "diesel": "t", "pv": "kWh"}
    frame = carriers([(c, q, units[c], 1.0) for c, q in rows])
    cost = cost_structure(frame, emissions, 1.0, {**DEFAULT_TARIFFS, "steam": Tariff(230.0, "t")}, price)
    priced = cost.dropna(subset=["cost_cny"])
    assert priced["cost_cny"].ge(0).all() and cost["item"].iloc[-1] == "carbon"
    if priced["cost_cny"].sum() > 0:
        assert priced["share"].sum() == pytest.approx(1.0)
    assert cost.loc[cost["item"] == "pv", "cost_cny"].isna().all()  # on-site PV is never bought
