"""Units checked against the carrier (park.units, the one dimension-aware unit table) in the accounting."""

from __future__ import annotations

import pandas as pd
import pytest

from carbon.emissions import compute_accounts
from carbon.errors import InputError
from carbon.factors import FactorRegistry
from carbon.regions import enterprise_regions
from park.model import Enterprise, Park
from park.units import UnitError, conversion_factor, lookup_unit

TZ = "Asia/Shanghai"
REGISTRY = FactorRegistry.shipped()
REGIONS = enterprise_regions(Park("p", "P", province="Jiangsu", enterprises=(Enterprise("E1", "a"),)))


def line(carrier: str, quantity: float, unit: str, month: str = "2024-03") -> dict:
    start = pd.Timestamp(f"{month}-01", tz=TZ)
    return {"enterprise": "E1", "workshop": None, "carrier": carrier, "flow": "import", "period_start": start,
            "period_end": start + pd.DateOffset(months=1), "quantity": quantity, "unit": unit, "source": "bill"}


def e1(acc):
    return acc.totals_at("enterprise").iloc[0]


def test_steam_entered_in_gj_is_heat_not_kilograms():
    # the example: 2 000 GJ of steam x 0.11 t/GJ = 220 t (it was taken as 2 000 kg: 0.59 t)
    r = e1(compute_accounts(pd.DataFrame([line("steam", 2000.0, "GJ")]), REGISTRY, REGIONS))
    assert r["scope2_location_t_co2e"] == pytest.approx(220.0)
    assert r["energy_tce"] == pytest.approx(2000 * 0.03412)


def test_steam_by_mass_and_by_heat_agree_through_the_enthalpy():
    tonnes = 100.0
    gj = tonnes * (2777.1 - 83.74) / 1000  # the shipped enthalpy above feedwater
    by_mass = e1(compute_accounts(pd.DataFrame([line("steam", tonnes, "t")]), REGISTRY, REGIONS))
    by_heat = e1(compute_accounts(pd.DataFrame([line("steam", gj, "GJ")]), REGISTRY, REGIONS))
    for col in ("scope2_location_t_co2e", "scope2_market_t_co2e", "energy_tce"):
        assert by_mass[col] == pytest.approx(by_heat[col])


@pytest.mark.parametrize(("carrier", "unit"), [("electricity", "m3"), ("natural_gas", "kWh"), ("heat", "t"),
                                               ("steam", "m3"), ("diesel", "L"), ("pv", "GJ")])
def test_an_impossible_unit_is_refused_with_the_row(carrier, unit):
    rows = [line("electricity", 10.0, "kWh"), line(carrier, 5.0, unit)]
    with pytest.raises(InputError, match=rf"row 1, enterprise E1, carrier {carrier}.*{unit}.*cannot be measured in"):
        compute_accounts(pd.DataFrame(rows), REGISTRY, REGIONS)


def test_a_fuel_in_volume_against_an_ncv_per_mass_is_refused():
    # diesel has an NCV per tonne: litres cannot be turned into GJ without a density (diesel takes mass only),
    # and an unlisted fuel in m3 against a per-mass NCV is refused by the factor's denominator
    with pytest.raises(InputError, match="bituminous_coal.*volume.*per mass"):
        compute_accounts(pd.DataFrame([line("bituminous_coal", 5.0, "m3")]), REGISTRY, REGIONS)


def test_bill_units_convert_within_their_dimension():
    a = e1(compute_accounts(pd.DataFrame([line("electricity", 50.0, "万千瓦时")]), REGISTRY, REGIONS))
    b = e1(compute_accounts(pd.DataFrame([line("electricity", 500.0, "MWh")]), REGISTRY, REGIONS))
    assert a["scope2_location_t_co2e"] == pytest.approx(b["scope2_location_t_co2e"]) == pytest.approx(500 * 0.5617)


def test_the_unit_table_knows_each_carriers_dimensions():
    from park.units import carrier_unit

    assert carrier_unit("steam", "GJ").dimension == "heat"
    assert carrier_unit("steam", "吨").dimension == "mass"
    assert carrier_unit("natural_gas", "万立方米").to_base == 1e4
    assert carrier_unit("coke", "t").dimension == "mass"  # a fuel the table does not list: mass or volume
    with pytest.raises(UnitError, match="electricity cannot be measured in m3.*electric_energy"):
        carrier_unit("electricity", "m3")
    with pytest.raises(UnitError, match="unknown unit"):
        carrier_unit("electricity", "furlongs")
    assert conversion_factor("kJ", "GJ") == pytest.approx(1e-6)
    assert lookup_unit("MWh").to_base == 1e3  # existing names keep working (park.store.validate uses them)
