"""Scope 1 and 2, tce and the roll-ups: docs/methodology.md section 3, its worked examples with the same numbers.

The store-backed tests write 15-minute readings into a real EmbeddedStore (a DuckDB file in tmp_path) and read
them back through carbon.activity, as the portal does; the others use small activity frames.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from carbon.activity import load_activity
from carbon.emissions import compute_accounts
from carbon.errors import FactorNotFoundError, InputError
from carbon.factors import FactorPolicy, FactorRegistry
from carbon.regions import enterprise_regions
from park.model import Enterprise, Meter, Park, Workshop
from park.store.embedded import EmbeddedStore
from park.units import Carrier

TZ = "Asia/Shanghai"
REGISTRY = FactorRegistry.shipped()
MARCH = (pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-04-01", tz=TZ))


def example_park() -> Park:
    """Worked example A's enterprise E1 (Jiangsu, East China grid): two workshops with electricity meters,
    a gas meter and a steam meter at the enterprise's gate (hourly)."""
    return Park(
        "demo", "示范园区", province="Jiangsu", grid_region="east_china",
        enterprises=(Enterprise("E1", "江南钢构", industry="steel_structures"),
                     Enterprise("E2", "恒丰印染", industry="textile_dyeing")),
        workshops=(Workshop("E1-W1", "E1"), Workshop("E1-W2", "E1"), Workshop("E2-W1", "E2")),
        meters=(Meter("E1-W1-M1", Carrier.ELECTRICITY, "E1", "E1-W1"),
                Meter("E1-W2-M1", Carrier.ELECTRICITY, "E1", "E1-W2"),
                Meter("E1-GAS", Carrier.NATURAL_GAS, "E1", None, interval_s=3600),
                Meter("E1-STEAM", Carrier.STEAM, "E1", None, interval_s=3600),
                Meter("E1-WATER", Carrier.WATER, "E1", None, interval_s=3600),
                Meter("E2-W1-M1", Carrier.ELECTRICITY, "E2", "E2-W1")),
    )


def readings(series: str, start: pd.Timestamp, end: pd.Timestamp, total: float, freq: str) -> pd.DataFrame:
    """Equal interval readings over [start, end) adding up to `total`."""
    ts = pd.date_range(start, end, freq=freq, inclusive="left")
    return pd.DataFrame({"ts": ts, "series": series, "value": total / len(ts), "quality": "measured"})


def write_example_month(store: EmbeddedStore) -> None:
    """Worked example A: March 2024, 500 000 kWh (300 000 + 200 000), 20 000 m3 gas, 300 t steam."""
    store.write("energy", pd.concat([
        readings("E1-W1-M1", *MARCH, 300_000, "15min"),
        readings("E1-W2-M1", *MARCH, 200_000, "15min"),
        readings("E1-GAS", *MARCH, 20_000, "1h"),
        readings("E1-STEAM", *MARCH, 300, "1h"),
        readings("E1-WATER", *MARCH, 4_000, "1h"),
    ]))


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    park = example_park()
    s = EmbeddedStore(tmp_path_factory.mktemp("store") / "ts.duckdb", park.catalog(), TZ)
    write_example_month(s)
    yield s
    s.close()


def certificates(mwh: float, start: str = "2024-03-01", end: str = "2024-04-01", enterprise: str = "E1",
                 reference: str = "GEC-2024-0001", vintage: int | None = 2024):
    return pd.DataFrame([{"enterprise": enterprise, "kind": "gec", "quantity_mwh": mwh, "period_start": start,
                          "period_end": end, "reference": reference, "vintage": vintage}])


def e1(accounts, period: str = "2024-03"):
    t = accounts.totals_at("enterprise")
    return t[(t["enterprise"] == "E1") & (t["period"] == period)].iloc[0]


# ---- worked example A (methodology 3.7) ---------------------------------------------------------------------


def test_example_a_month_of_an_enterprise_location_and_market_based(store):
    activity = load_activity(store, *MARCH, "month")
    acc = compute_accounts(activity, REGISTRY, enterprise_regions(example_park()), instruments=certificates(100))
    r = e1(acc)
    # Scope 1: 20 000 m3 x 0.038931 GJ/m3 x 0.0153 tC/GJ x 0.99 x 44/12
    assert r["scope1_t_co2e"] == pytest.approx(43.24377618, rel=1e-9)
    # Scope 2 location: 500 MWh x 0.5617 (East China, data year 2022) + 808.008 GJ steam x 0.11
    assert r["scope2_location_t_co2e"] == pytest.approx(280.85 + 88.88088, rel=1e-9)
    # Scope 2 market: (500 - 100) MWh x 0.5856 (national residual, 2022) + the same steam
    assert r["scope2_market_t_co2e"] == pytest.approx(234.24 + 88.88088, rel=1e-9)
    assert r["total_location_t_co2e"] == pytest.approx(412.97465618, rel=1e-9)
    assert r["total_market_t_co2e"] == pytest.approx(366.36465618, rel=1e-9)
    # tce, equivalent value: 61.45 + 26.60 + steam 808.008 GJ x 0.03412 tce/GJ (the heat its emissions use)
    assert r["energy_tce"] == pytest.approx(61.45 + 26.6 + 808.008 * 0.03412, rel=1e-9)
    assert r["green_kwh"] == pytest.approx(100_000)
    assert r["coverage"] == pytest.approx(1.0)
    assert r["complete"]
    assert r["carriers"] == "electricity, natural_gas, steam"  # water is not energy


def test_example_a_names_every_factor_row_it_used(store):
    acc = compute_accounts(load_activity(store, *MARCH), REGISTRY, enterprise_regions(example_park()))
    assert {"grid/electricity/average/east_china/2022-01-01", "grid/electricity/residual/national/2022-01-01",
            "fuel/natural_gas/ncv/national/2015-01-01", "fuel/natural_gas/carbon_content/global/2006-01-01",
            "heat/heat/emission/national/2015-01-01", "heat/steam/enthalpy/national/2015-01-01",
            "tce/electricity/equivalent/national/2020-01-01"} <= set(acc.factors["id"])
    assert set(acc.factors.columns) >= {"value", "unit", "source", "publication", "verified"}


def test_example_a_says_where_it_fell_back_and_why(store):
    acc = compute_accounts(load_activity(store, *MARCH), REGISTRY, enterprise_regions(example_park()))
    fb = acc.fallbacks.set_index(["kind", "parameter"])
    grid = fb.loc[("grid", "average")]
    assert grid["wanted_region"] == "jiangsu" and grid["used_region"] == "east_china"
    residual = fb.loc[("grid", "residual")]
    assert residual["used_region"] == "national" and "no electricity/residual factor for jiangsu" in residual["reason"]
    assert "E1" in residual["enterprises"]
    assert "factor.unverified" in set(acc.issues["code"])  # the steam enthalpy is a project default


def test_example_a_per_workshop_and_park(store):
    acc = compute_accounts(load_activity(store, *MARCH), REGISTRY, enterprise_regions(example_park()),
                           instruments=certificates(100))
    ws = acc.totals_at("workshop").set_index("workshop")
    assert ws.loc["E1-W1", "scope2_location_t_co2e"] == pytest.approx(300 * 0.5617)
    # the certificates cover each workshop in proportion to its purchases: 60 and 40 MWh
    assert ws.loc["E1-W1", "scope2_market_t_co2e"] == pytest.approx((300 - 60) * 0.5856)
    assert ws.loc["E1-W2", "scope2_market_t_co2e"] == pytest.approx((200 - 40) * 0.5856)
    ent_level = acc.totals_at("workshop")
    gate = ent_level[(ent_level["enterprise"] == "E1") & ent_level["workshop"].isna()].iloc[0]
    assert gate["scope1_t_co2e"] == pytest.approx(43.24377618)
    park = acc.totals_at("park")
    march = park[park["period"] == "2024-03"].iloc[0]
    assert march["total_location_t_co2e"] == pytest.approx(412.97465618)  # E2 has no data: left out, flagged


def test_equal_value_basis_is_selectable_and_flags_the_prior_year(store):
    policy = FactorPolicy(energy_basis="equal")
    acc = compute_accounts(load_activity(store, *MARCH), REGISTRY, enterprise_regions(example_park()), policy)
    # electricity 500 000 kWh x 0.3007 kgce/kWh (data year 2022, the closest prior to 2024) + gas + steam
    assert e1(acc)["energy_tce"] == pytest.approx(150.35 + 26.6 + 808.008 * 0.03412)
    prior = acc.fallbacks[(acc.fallbacks["kind"] == "tce") & (acc.fallbacks["code"] == "factor.prior_year")]
    assert prior["key"].tolist() == ["electricity"]


# ---- missing data, missing factors -----------------------------------------------------------------------------


def test_a_period_with_no_data_is_missing_not_zero(store):
    feb, may = pd.Timestamp("2024-02-01", tz=TZ), pd.Timestamp("2024-05-01", tz=TZ)
    acc = compute_accounts(load_activity(store, feb, may), REGISTRY, enterprise_regions(example_park()))
    t = acc.totals_at("enterprise").set_index(["enterprise", "period"])
    assert np.isnan(t.loc[("E1", "2024-02"), "total_location_t_co2e"])
    assert np.isnan(t.loc[("E1", "2024-04"), "energy_tce"])
    assert t.loc[("E1", "2024-03"), "energy_tce"] > 0
    no_data = acc.issues[acc.issues["code"] == "activity.no_data"]
    assert {("E1", "2024-02"), ("E1", "2024-04"), ("E2", "2024-03")} <= set(zip(no_data["enterprise"],
                                                                                 no_data["period"], strict=True))
    assert (no_data["severity"] == "error").all()


def test_a_quarter_with_a_missing_month_shows_it_in_its_coverage(store):
    q1 = (pd.Timestamp("2024-01-01", tz=TZ), pd.Timestamp("2024-04-01", tz=TZ))
    acc = compute_accounts(load_activity(store, *q1), REGISTRY, enterprise_regions(example_park()),
                           period_kind="quarter")
    r = e1(acc, "2024Q1")
    assert r["total_location_t_co2e"] == pytest.approx(412.97465618)
    assert r["coverage"] == pytest.approx(31 / 91)  # only March of January-March is metered
    low = acc.issues[(acc.issues["code"] == "activity.low_coverage") & (acc.issues["enterprise"] == "E1")]
    assert set(low["carrier"]) == {"electricity", "natural_gas", "steam"}


def test_a_carrier_without_data_is_flagged_and_left_out(store):
    activity = load_activity(store, *MARCH)
    activity.loc[activity["carrier"] == "natural_gas", ["quantity", "measured"]] = [np.nan, 0]
    acc = compute_accounts(activity, REGISTRY, enterprise_regions(example_park()))
    r = e1(acc)
    assert not r["complete"] and r["missing_carriers"] == "natural_gas"
    assert r["scope1_t_co2e"] != r["scope1_t_co2e"] or r["scope1_t_co2e"] == 0.0
    assert r["scope2_location_t_co2e"] == pytest.approx(369.73088)
    assert "activity.carrier_missing" in set(acc.issues["code"])


def frame(carrier: str, quantity: float, unit: str, enterprise: str = "E1", flow: str = "import",
          workshop: str | None = None, month: str = "2024-03") -> dict:
    start = pd.Timestamp(f"{month}-01", tz=TZ)
    return {"enterprise": enterprise, "workshop": workshop, "carrier": carrier, "flow": flow, "period_start": start,
            "period_end": start + pd.DateOffset(months=1), "quantity": quantity, "unit": unit, "source": "test"}


REGIONS = enterprise_regions(example_park())


def test_a_fuel_without_a_factor_raises_a_specific_error():
    activity = pd.DataFrame([frame("fuel_oil", 1000.0, "kg")])  # NCV shipped, carbon content not
    with pytest.raises(FactorNotFoundError, match=r"fuel_oil/carbon_content.*jiangsu -> east_china -> national"):
        compute_accounts(activity, REGISTRY, REGIONS)


def test_a_missing_factor_can_be_flagged_instead():
    activity = pd.DataFrame([frame("fuel_oil", 1000.0, "kg"), frame("electricity", 1000.0, "kWh")])
    acc = compute_accounts(activity, REGISTRY, REGIONS, strict=False)
    assert np.isnan(acc.lines.set_index("carrier").loc["fuel_oil", "scope1_t_co2e"])
    assert "factor.missing" in set(acc.issues["code"])
    assert e1(acc)["scope2_location_t_co2e"] == pytest.approx(0.5617)


def test_a_grid_year_before_any_published_factor_raises():
    activity = pd.DataFrame([frame("electricity", 1000.0, "kWh")])
    with pytest.raises(FactorNotFoundError, match="grid factor electricity/average"):
        compute_accounts(activity, REGISTRY, REGIONS, FactorPolicy(grid_data_year=2015))


@pytest.mark.parametrize(("row", "message"), [
    (frame("electricity", -5.0, "kWh"), "negative"),
    (frame("electricity", 5.0, "furlongs"), "unknown unit"),
    (frame("natural_gas", 5.0, "m3", flow="export"), "can be exported"),
    (frame("electricity", 5.0, "kWh", enterprise="E9"), "no region for enterprise"),
])
def test_bad_activity_is_refused_with_the_reason(row, message):
    with pytest.raises(InputError, match=message):
        compute_accounts(pd.DataFrame([row]), REGISTRY, REGIONS)


# ---- exports, PV, biomass, instruments ----------------------------------------------------------------------


def test_exports_are_subtracted_and_pv_carries_no_scope2():
    activity = pd.DataFrame([
        frame("electricity", 100_000.0, "kWh"), frame("electricity", 20_000.0, "kWh", flow="export"),
        frame("pv", 30_000.0, "kWh"), frame("heat", 500.0, "GJ"), frame("heat", 100.0, "GJ", flow="export"),
    ])
    r = e1(compute_accounts(activity, REGISTRY, REGIONS))
    assert r["grid_net_kwh"] == pytest.approx(80_000)
    assert r["scope2_location_t_co2e"] == pytest.approx(80 * 0.5617 + 400 * 0.11)
    assert r["pv_kwh"] == pytest.approx(30_000)
    # tce: (100 000 - 20 000 + 30 000) kWh x 0.1229 + (500 - 100) GJ x 0.03412 tce/GJ
    assert r["energy_tce"] == pytest.approx(110_000 * 0.1229e-3 + 400 * 0.03412)
    assert r["renewable_tce"] == pytest.approx(30_000 * 0.1229e-3)


def test_net_exports_give_negative_scope2_and_say_so():
    activity = pd.DataFrame([frame("electricity", 10_000.0, "kWh"),
                             frame("electricity", 15_000.0, "kWh", flow="export")])
    r = e1(compute_accounts(activity, REGISTRY, REGIONS))
    assert r["scope2_location_t_co2e"] == pytest.approx(-5 * 0.5617)


def test_biomass_is_reported_outside_the_scopes():
    activity = pd.DataFrame([frame("wood", 10.0, "t")])
    r = e1(compute_accounts(activity, REGISTRY, REGIONS))
    assert r["scope1_t_co2e"] == pytest.approx(0.0)
    # 10 t x 15.6 GJ/t x 0.0305 tC/GJ x 1.0 x 44/12
    assert r["biogenic_t_co2"] == pytest.approx(10 * 15.6 * 0.0305 * 44 / 12)


def test_diesel_in_kg_uses_the_national_ncv_and_the_ipcc_carbon_content():
    r = e1(compute_accounts(pd.DataFrame([frame("diesel", 1000.0, "kg")]), REGISTRY, REGIONS))
    assert r["scope1_t_co2e"] == pytest.approx(1.0 * 42.652 * 0.0202 * 0.98 * 44 / 12)
    assert r["energy_tce"] == pytest.approx(1.4571)


def test_a_year_of_certificates_spreads_over_the_months_by_consumption():
    activity = pd.DataFrame([frame("electricity", kwh, "kWh", month=m)
                             for m, kwh in [("2024-01", 100_000.0), ("2024-02", 300_000.0)]])
    year = certificates(120, "2024-01-01", "2025-01-01")
    acc = compute_accounts(activity, REGISTRY, REGIONS, instruments=year)
    t = acc.totals_at("enterprise").set_index("period")
    # only 60 of the 366 days have known purchases: the rest of the year is estimated at their rate, so
    # 120 x (60 days / 366 days) MWh, spread 1 : 3 by consumption, and flagged as estimated
    in_range = 120 * 60 / 366
    assert t.loc["2024-01", "green_kwh"] == pytest.approx(in_range * 1000 / 4)
    assert t.loc["2024-02", "green_kwh"] == pytest.approx(in_range * 1000 * 3 / 4)
    assert "instrument.estimated_basis" in set(acc.issues["code"])
    assert not t.loc["2024-01", "complete"] and "instrument.estimated_basis" in t.loc["2024-01", "reasons"]


def test_certificates_beyond_consumption_are_not_carried_over():
    acc = compute_accounts(pd.DataFrame([frame("electricity", 50_000.0, "kWh")]), REGISTRY, REGIONS,
                           instruments=certificates(80))
    r = e1(acc)
    assert r["green_kwh"] == pytest.approx(50_000) and r["scope2_market_t_co2e"] == pytest.approx(0.0)
    assert "instrument.excess" in set(acc.issues["code"])


def test_monthly_figures_add_up_to_the_year():
    months = [frame("electricity", 1000.0 * m, "kWh", month=f"2024-{m:02d}") for m in range(1, 13)]
    activity = pd.DataFrame(months + [frame("natural_gas", 10.0, "m3", month=f"2024-{m:02d}") for m in range(1, 13)])
    monthly = compute_accounts(activity, REGISTRY, REGIONS, instruments=certificates(30, "2024-01-01", "2025-01-01"))
    yearly = compute_accounts(activity, REGISTRY, REGIONS, period_kind="year",
                              instruments=certificates(30, "2024-01-01", "2025-01-01"))
    for col in ("energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e"):
        assert monthly.totals_at("enterprise")[col].sum() == pytest.approx(e1(yearly, "2024")[col])


def test_daily_results_need_daily_activity(store):
    with pytest.raises(InputError, match="cannot report per day"):
        compute_accounts(load_activity(store, *MARCH), REGISTRY, REGIONS, period_kind="day")
    days = compute_accounts(load_activity(store, *MARCH, "day"), REGISTRY, REGIONS, period_kind="day")
    assert len(days.totals_at("enterprise").query("enterprise == 'E1'")) == 31
    assert days.totals_at("enterprise").query("enterprise == 'E1'")["scope1_t_co2e"].sum() == pytest.approx(
        43.24377618)


def test_the_ets_grid_series_applies_to_the_reporting_year_itself():
    acc = compute_accounts(pd.DataFrame([frame("electricity", 1_000_000.0, "kWh")]), REGISTRY, REGIONS,
                           FactorPolicy(location_basis="ets"))
    assert e1(acc)["scope2_location_t_co2e"] == pytest.approx(570.3)
    assert date(2024, 3, 1) in set(acc.fallbacks["on"])
