"""Factor lookups: split at validity boundaries inside a window, enterprise-specific tce coefficients, the ETS
series dated by its source, the geographic level policy, and the quota basis per plan (methodology 2, 3, 6)."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.emissions import compute_accounts
from carbon.factors import FactorPolicy, FactorRegistry, parse_factor_file
from carbon.quota import QUOTA_BASES, QuotaPlan, quota_basis_policy
from carbon.regions import enterprise_regions, region_chain
from park.model import Enterprise, Park

TZ = "Asia/Shanghai"
SHIPPED = FactorRegistry.shipped()
REGIONS = enterprise_regions(Park("p", "P", province="Jiangsu",
                                  enterprises=(Enterprise("E1", "a"), Enterprise("E2", "b"))))
HEADER = "kind,key,parameter,region,enterprise,value,unit,valid_from,valid_to,source,publication,verified\n"
# Example S: E1's supplier raises the steam condition to 1.0 MPa, 250 C from 16 March 2024
STEAM_FROM_16TH = "heat,steam,enthalpy,jiangsu,E1,2942.6,kJ/kg,2024-03-16,,supplier certificate,2024-03,true\n"


def registry(text: str) -> FactorRegistry:
    return SHIPPED.with_overrides(parse_factor_file((HEADER + text).encode(), "park.csv"))


def line(carrier: str, quantity: float, unit: str, start: str, end: str, enterprise: str = "E1") -> dict:
    return {"enterprise": enterprise, "workshop": None, "carrier": carrier, "flow": "import",
            "period_start": pd.Timestamp(start, tz=TZ), "period_end": pd.Timestamp(end, tz=TZ),
            "quantity": quantity, "unit": unit, "source": "test"}


def e1(acc, enterprise: str = "E1"):
    return acc.totals_at("enterprise").set_index("enterprise").loc[enterprise]


def test_example_s_a_factor_change_inside_a_month_splits_the_month():
    reg = registry(STEAM_FROM_16TH)
    acc = compute_accounts(pd.DataFrame([line("steam", 310.0, "t", "2024-03-01", "2024-04-01")]), reg, REGIONS)
    # 15 days at the default 2 777.1 kJ/kg, 16 days at 2 942.6 kJ/kg: 150 t and 160 t of the month's 310 t
    gj = 150 * (2777.1 - 83.74) / 1000 + 160 * (2942.6 - 83.74) / 1000
    assert e1(acc)["scope2_location_t_co2e"] == pytest.approx(gj * 0.11)
    assert e1(acc)["energy_tce"] == pytest.approx(gj * 0.03412)
    assert "factor.split" in set(acc.issues["code"])
    # E2 has no such row: its month is not split
    other = compute_accounts(pd.DataFrame([line("steam", 310.0, "t", "2024-03-01", "2024-04-01", "E2")]), reg,
                             REGIONS)
    assert e1(other, "E2")["scope2_location_t_co2e"] == pytest.approx(310 * (2777.1 - 83.74) / 1000 * 0.11)
    assert "factor.split" not in set(other.issues["code"])


@settings(max_examples=10, deadline=None)
@given(day=st.integers(2, 28), tonnes_per_day=st.floats(0.1, 50.0))
def test_a_month_equals_its_days_whatever_day_the_factor_changes(day, tonnes_per_day):
    reg = registry(f"heat,steam,enthalpy,jiangsu,E1,2942.6,kJ/kg,2024-03-{day:02d},,supplier,2024-03,true\n")
    month = compute_accounts(pd.DataFrame([line("steam", 31 * tonnes_per_day, "t", "2024-03-01", "2024-04-01")]),
                             reg, REGIONS)
    days = pd.date_range("2024-03-01", "2024-04-01", freq="D", inclusive="left")
    daily = compute_accounts(pd.DataFrame([line("steam", tonnes_per_day, "t", d.isoformat(),
                                                (d + pd.Timedelta(days=1)).isoformat()) for d in days]),
                             reg, REGIONS, period_kind="day")
    for col in ("scope2_location_t_co2e", "energy_tce"):
        assert e1(month)[col] == pytest.approx(daily.totals_at("enterprise")[col].sum())


def test_enterprise_specific_tce_coefficients_for_fuels_heat_and_steam_are_used():
    reg = registry("tce,natural_gas,all,jiangsu,E1,1.2143,kgce/m3,2024-01-01,,gas analysis,2024,true\n"
                   "tce,heat,all,jiangsu,E1,0.0300,kgce/MJ,2024-01-01,,heat supplier,2024,true\n")
    rows = [line("natural_gas", 1000.0, "m3", "2024-03-01", "2024-04-01"),
            line("heat", 100.0, "GJ", "2024-03-01", "2024-04-01"),
            line("steam", 1000.0, "GJ", "2024-03-01", "2024-04-01")]
    acc = compute_accounts(pd.DataFrame(rows + [{**r, "enterprise": "E2"} for r in rows]), reg, REGIONS)
    assert e1(acc)["energy_tce"] == pytest.approx(1.2143 + 100 * 0.0300 + 1000 * 0.0300)
    assert e1(acc, "E2")["energy_tce"] == pytest.approx(1.33 + 100 * 0.03412 + 1000 * 0.03412)  # park-wide rows


def test_a_tce_coefficient_of_its_own_for_steam_is_refused():
    with pytest.raises(Exception, match="steam has no tce coefficient of its own"):
        registry("tce,steam,all,jiangsu,E1,0.1286,kgce/kg,2024-01-01,,x,2024,true\n")


def test_the_ets_factor_is_dated_from_emission_year_2022_as_its_source_gives_it():
    res = SHIPPED.resolve("grid", "electricity", "ets", region_chain("Jiangsu", None), date(2022, 6, 1))
    assert res.row.value == 0.5703 and not res.prior_year and res.row.data_year == 2022
    # and later years keep it until MEE publishes an update
    assert SHIPPED.resolve("grid", "electricity", "ets", ("national",), date(2025, 6, 1)).row.value == 0.5703


def test_the_level_policy_keeps_a_province_on_one_level_across_years():
    hebei = region_chain("Hebei", None)

    def factor(year: int, **policy) -> float:
        return SHIPPED.resolve("grid", "electricity", "average", hebei, date(year, 3, 1), FactorPolicy(**policy)).row

    # most specific (default): provincial 2022 for 2024, then regional 2023 for 2025 - a jump between levels
    assert (factor(2024).region, factor(2025).region) == ("hebei", "north_china")
    # fixed at the regional level: North China both years, 0.6776 then 0.6361
    assert [factor(y, grid_level="regional").value for y in (2024, 2025)] == [0.6776, 0.6361]
    assert factor(2025, grid_level="national").value == 0.5306
    fixed = SHIPPED.resolve("grid", "electricity", "average", hebei, date(2025, 3, 1),
                            FactorPolicy(grid_level="provincial"))
    assert fixed.level_fallback and "fixed provincial level" in fixed.reason
    with pytest.raises(Exception, match="grid_level"):
        FactorPolicy(grid_level="county")


def test_a_quota_plan_compares_on_the_ets_basis_by_default():
    plan = QuotaPlan.absolute("E1", 2024, 500.0)
    assert plan.basis == "ets"
    policy, column = quota_basis_policy(plan.basis)
    assert policy.location_basis == "ets" and column == "total_location_t_co2e"
    assert set(QUOTA_BASES) == {"ets", "location", "market"}
    act = pd.DataFrame([line("electricity", 1_000_000.0, "kWh", "2024-03-01", "2024-04-01")])
    ets = compute_accounts(act, SHIPPED, REGIONS, policy)
    assert e1(ets)["total_location_t_co2e"] == pytest.approx(570.3)  # 0.5703, not East China's 0.5617
    with pytest.raises(Exception, match="quota basis"):
        QuotaPlan.absolute("E1", 2024, 500.0, basis="scope3")


def test_unpublished_grid_factors_are_missing_and_the_lookup_says_so():
    jiangsu = region_chain("Jiangsu", None)
    # reporting 2023 uses data year 2021: no regional or provincial 2021 factor is shipped, the national one is used
    res = SHIPPED.resolve("grid", "electricity", "average", jiangsu, date(2023, 5, 1))
    assert (res.row.region, res.row.value, res.region_fallback) == ("national", 0.5568, True)
    fixed = SHIPPED.resolve("grid", "electricity", "average", jiangsu, date(2023, 5, 1),
                            FactorPolicy(grid_level="regional"))
    assert fixed.level_fallback and fixed.row.region == "national"
    frame = SHIPPED.frame()
    grid = frame[frame["kind"] == "grid"]
    assert grid["source"].str.len().gt(0).all() and grid["publication"].str.len().gt(0).all()
    assert not ((grid["region"] == "jiangsu") | (grid["data_year"] == 2021) & (grid["region"] != "national")).any()
