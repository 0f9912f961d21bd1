"""Browser tests that guard the overview's figures: each number read off the screen in Chromium is checked against
a figure computed here, independently, from the store's raw readings and the published factors (not through the
portal's or carbon's functions).  Swapping market- for location-based emissions, reversing the ranking or taking
x3 for the quarter hour's kWh-to-kW conversion makes these tests fail (tried on purpose).

Park (Jiangsu, East China grid): E1 10 kWh, E2 40 kWh, E3 25 kWh of grid electricity per quarter hour and E3 a gas
boiler (4 m3 per hour), from 1 January 2024 to now, 2024-03-10 12:00.  Factors as the shipped data give them for
2024 activity (grid data year 2022, see docs/methodology.md and tests/test_page_enterprise.py): location-based
0.5617 tCO2/MWh (East China), market-based residual mix 0.5856 tCO2/MWh (national), natural gas
0.0021621888 tCO2/m3.
"""

from __future__ import annotations

import pandas as pd
import pytest

from carbon import records
from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal.app import create_app
from portal.auth import add_user
from portal.context import PortalContext
from portal.i18n import TEXT
from tests.support.browser import serve

TZ = "Asia/Shanghai"
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
PASSWORD = "figures-test-password"
LOCATION_T_PER_MWH, MARKET_T_PER_MWH, GAS_T_PER_M3 = 0.5617, 0.5856, 43.24377618 / 20_000
PARK = Park(
    id="p", name="测试园区", name_en="Test Park", province="Jiangsu", grid_region="east_china",
    enterprises=(Enterprise("E1", "甲公司", "Alpha Co.", industry="steel_structures"),
                 Enterprise("E2", "乙公司", "Beta Co.", industry="textile_dyeing"),
                 Enterprise("E3", "丙公司", "Gamma Co.", industry="food_processing")),
    meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"), Meter("E2-M1", Carrier.ELECTRICITY, "E2"),
            Meter("E3-M1", Carrier.ELECTRICITY, "E3"), Meter("E3-GAS", Carrier.NATURAL_GAS, "E3", interval_s=3600)),
)
LOAD_KWH = {"E1-M1": 10.0, "E2-M1": 40.0, "E3-M1": 25.0}


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("figures")
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp / "ts.duckdb", PARK.catalog(), TZ)
    qh = pd.date_range(pd.Timestamp("2024-01-01", tz=TZ), NOW, freq="15min", inclusive="left")
    hours = pd.date_range(pd.Timestamp("2024-01-01", tz=TZ), NOW, freq="1h", inclusive="left")
    store.write("energy", pd.concat([*(pd.DataFrame({"ts": qh, "series": s, "value": v}) for s, v in LOAD_KWH.items()),
                                     pd.DataFrame({"ts": hours, "series": "E3-GAS", "value": 4.0})]))
    months = pd.to_datetime(["2024-02-01", "2024-03-01"]).date
    records.record_output_values(engine, "p", pd.DataFrame({
        "enterprise": ["E1", "E1", "E2", "E2", "E3", "E3"], "month": [*months] * 3,
        "output_value_10k_cny": [90.0, 80.0, 100.0, 95.0, 300.0, 280.0]}), actor="test")
    add_user(engine, "p", "admin", PASSWORD, "admin")
    ctx = PortalContext(Settings(data_dir=tmp), engine, PARK, store, clock=lambda: NOW)
    with serve(create_app(ctx, "f" * 32).server) as url:
        yield url, ctx
    store.close()


@pytest.fixture(scope="module")
def overview(portal, chrome):
    url, _ = portal
    page = chrome.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(url + "/")
    page.fill("#username", "admin")
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#carbon-kpis .kpi", timeout=30_000)
    page.wait_for_selector("#ranking-table .ag-row", timeout=30_000)
    yield page
    page.close()


def raw(ctx, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The store's raw readings over [start, end) with each meter's enterprise and carrier (from the park)."""
    points = ctx.store.points("energy", start, end)
    meters = {m.id: m for m in PARK.meters}
    return points.assign(enterprise=points["series"].map(lambda s: meters[s].enterprise),
                         carrier=points["series"].map(lambda s: meters[s].carrier.value))


def location_t(frame: pd.DataFrame, grid_t_per_mwh: float = LOCATION_T_PER_MWH) -> float:
    kwh = frame.loc[frame["carrier"] == "electricity", "value"].sum()
    m3 = frame.loc[frame["carrier"] == "natural_gas", "value"].sum()
    return kwh / 1000 * grid_t_per_mwh + m3 * GAS_T_PER_M3


def number(text: str) -> float:
    return float(text.replace(",", "").strip())


def test_the_location_based_kpi_is_the_stores_readings_at_the_location_factor(portal, overview):
    _, ctx = portal
    month = raw(ctx, pd.Timestamp("2024-03-01", tz=TZ), NOW)
    truth, market = location_t(month), location_t(month, MARKET_T_PER_MWH)
    assert abs(truth - market) > 1.0  # the two methods are far enough apart to tell on screen
    card = overview.locator("#carbon-kpis .kpi", has_text=TEXT["kpi.emissions_location"]["zh-CN"])
    assert number(card.locator(".kpi-value").inner_text()) == pytest.approx(truth, abs=0.05)
    card = overview.locator("#carbon-kpis .kpi", has_text=TEXT["kpi.emissions_market"]["zh-CN"])
    assert number(card.locator(".kpi-value").inner_text()) == pytest.approx(market, abs=0.05)


def test_the_ranking_lists_the_largest_emitter_first(portal, overview):
    """February 2024 (the last complete month): emissions per enterprise from the raw readings, largest first."""
    _, ctx = portal
    feb = raw(ctx, pd.Timestamp("2024-02-01", tz=TZ), pd.Timestamp("2024-03-01", tz=TZ))
    emissions = {e: location_t(g) for e, g in feb.groupby("enterprise")}
    names = {e.id: e.name for e in PARK.enterprises}
    expected = [names[e] for e in sorted(emissions, key=emissions.get, reverse=True)]
    column = TEXT["col.enterprise"]["zh-CN"]
    rows = overview.locator("#ranking-table .ag-center-cols-container .ag-row")
    shown = sorted((int(r.get_attribute("row-index")), r.locator(f'[col-id="{column}"]').inner_text())
                    for r in rows.all())
    assert [name for _, name in shown] == expected
    top = overview.locator('#ranking-table .ag-center-cols-container .ag-row[row-index="0"]')
    col = TEXT["col.emissions_t"]["zh-CN"]
    assert number(top.locator(f'[col-id="{col}"]').inner_text()) == pytest.approx(max(emissions.values()), abs=0.01)


def test_the_live_tile_is_the_last_quarter_hours_kwh_over_a_quarter_hour(portal, overview):
    _, ctx = portal
    last = raw(ctx, NOW - pd.Timedelta("15min"), NOW)
    kw = last.loc[last["carrier"] == "electricity", "value"].sum() / 0.25
    assert kw == pytest.approx(300.0)
    tile = overview.locator("#live-power .kpi")
    assert number(tile.locator(".kpi-value").inner_text()) == pytest.approx(kw, abs=0.5)
    assert "11:45–12:00" in tile.inner_text()
