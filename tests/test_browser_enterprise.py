"""The enterprise and equipment pages in a real headless Chromium (tests/support/browser.py): the numbers on screen
equal the store's and the accounts' for the same period, language switch, CSV downloads, both roles.

The demo park with synthetic readings since 1 January, its demo carbon records (portal.demo.seed_carbon), and
three days of simulated bracelet telemetry of E001's machines, converted as the MQTT collector converts it.
Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from collectors.bracelet import utilisation
from collectors.converters.bracelet import convert_mqtt, topic_for
from collectors.simulator.bracelets import telemetry
from park.metadata import create_engine_from_url, import_park
from park.parkfile import DEMO_PARK_FILE, load_park_file
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.synth import synth_readings
from portal import audit
from portal.app import create_app
from portal.auth import add_user, load_user
from portal.context import PortalContext
from portal.demo import seed_carbon
from tests.support.browser import ARTIFACTS, serve

TZ = "Asia/Shanghai"
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)  # a Sunday: no shifts planned
FRIDAY = "2024-03-08"
PASSWORD = "browser-test-password"


def bracelet_frame(park, enterprise: str) -> pd.DataFrame:
    """Three days of simulated telemetry of the enterprise's bracelets through the MQTT converter."""
    devices = [d for d in park.devices if d.enterprise == enterprise]
    rows = []
    for payload in telemetry(devices, NOW - pd.Timedelta("3D"), NOW, seed=5,
                             failing={devices[-1].id: NOW - pd.Timedelta("3h")}):
        conv = convert_mqtt(json.dumps(payload).encode(), topic_for(park.id, payload["device"]))
        rows += [(r.ts, r.series, r.value) for r in conv.readings]
    return pd.DataFrame(rows, columns=["ts", "series", "value"])


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("portal-enterprise")
    park = load_park_file(DEMO_PARK_FILE)
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, park)
    store = EmbeddedStore(tmp / "ts.duckdb", park.catalog(), TZ)
    for frame in synth_readings(park, pd.Timestamp("2024-01-01", tz=TZ), NOW, seed=7, gap_rate=0.002):
        store.write("energy", frame)
    seed_carbon(engine, store, park, NOW)
    store.write("current", bracelet_frame(park, "E001"))
    add_user(engine, park.id, "admin", PASSWORD, "admin")
    add_user(engine, park.id, "e001", PASSWORD, "enterprise", "E001")
    ctx = PortalContext(Settings(data_dir=tmp), engine, park, store, clock=lambda: NOW)
    with serve(create_app(ctx, "s" * 32).server) as url:
        yield url, ctx
    store.close()


def login(page, url: str, username: str, path: str) -> None:
    """Log in on the way to `path` (the login page sends the user on to it)."""
    page.goto(url + path)
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#nav", timeout=30_000)


def number(page, selector: str) -> float:
    return float(page.locator(selector).inner_text().replace(",", "").rstrip("%"))


def enterprise_totals(ctx, enterprise: str, start: pd.Timestamp) -> pd.Series:
    """The accounts' figures of one enterprise from `start` to the last complete quarter hour."""
    acc = ctx.access.accounts(load_user(ctx.engine, "admin"), start, NOW, "month").totals_at("enterprise")
    return acc[acc["enterprise"] == enterprise][["energy_tce", "total_location_t_co2e", "total_market_t_co2e"]].sum()


def test_admin_reads_an_enterprises_figures_switches_enterprise_period_and_language(portal, chrome, tmp_path):
    url, ctx = portal
    page = chrome.new_page(viewport={"width": 1400, "height": 1000})
    login(page, url, "admin", "/enterprise")
    page.wait_for_selector("#ent-kpis .kpi", timeout=30_000)
    page.wait_for_selector("#ent-quota-allowances", timeout=30_000)
    month = enterprise_totals(ctx, "E001", pd.Timestamp("2024-03-01", tz=TZ))
    assert number(page, "#ent-kpi-total_location_t_co2e .kpi-value") == pytest.approx(
        month["total_location_t_co2e"], abs=0.005)
    assert number(page, "#ent-kpi-energy_tce .kpi-value") == pytest.approx(month["energy_tce"], abs=0.005)
    assert "江南钢构有限公司" in page.locator("#ent-name").inner_text()
    ledger = ctx.access.ledger(load_user(ctx.engine, "admin"), 2024).set_index("enterprise")
    assert number(page, "#ent-quota-allowances .kpi-value") == pytest.approx(ledger.loc["E001", "amount_t"], abs=0.05)
    last = ctx.store.aggregate("energy", NOW - pd.Timedelta("15min"), NOW, "15min",
                               where={"enterprise": "E001", "carrier": "electricity"})
    assert number(page, "#ent-power-electricity .kpi-value") == pytest.approx(last["value"].iloc[0] * 4, abs=0.05)
    page.wait_for_selector("#ent-carrier-table", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "enterprise-admin-zh.png"), full_page=True)

    # E004 (on-site PV and green certificates), this year, in English
    page.click("#ent-enterprise")
    page.get_by_role("option", name="芯联电子科技有限公司").click()
    page.get_by_text("本年", exact=True).click()
    page.wait_for_function("document.querySelector('#ent-name').innerText.includes('芯联')", timeout=30_000)
    page.wait_for_function("document.querySelector('#ent-period-text').innerText.includes('2024-01-01 00:00')",
                           timeout=30_000)
    page.click("#lang-toggle")
    page.wait_for_selector("text=Total emissions (location-based)", timeout=30_000)
    page.wait_for_function("document.querySelector('#ent-period-text') && "
                           "document.querySelector('#ent-period-text').innerText.includes('2024-01-01 00:00')",
                           timeout=30_000)
    year = enterprise_totals(ctx, "E004", pd.Timestamp("2024-01-01", tz=TZ))
    assert "Xinlian" in page.locator("#ent-name").inner_text()  # the selection survived the language switch
    assert number(page, "#ent-kpi-total_market_t_co2e .kpi-value") == pytest.approx(
        year["total_market_t_co2e"], abs=0.005)
    assert number(page, "#ent-kpi-total_location_t_co2e .kpi-value") == pytest.approx(
        year["total_location_t_co2e"], abs=0.005)
    page.wait_for_selector("#ent-cost-table", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "enterprise-admin-en.png"), full_page=True)
    with page.expect_download() as dl:
        page.click("#ent-carrier-dl-csv")
    csv = tmp_path / "carriers.csv"
    dl.value.save_as(csv)
    assert "-E004-" in dl.value.suggested_filename
    table = pd.read_csv(csv).set_index("Carrier")
    store_kwh = ctx.store.aggregate("energy", pd.Timestamp("2024-01-01", tz=TZ), NOW, "month",
                                    where={"enterprise": "E004", "carrier": "electricity"})["value"].sum()
    assert table.loc["Electricity", "Quantity"] == pytest.approx(store_kwh, abs=0.001)
    assert table.loc["Electricity", "Unit"] == "kWh" and "Coverage" in table.columns
    last = audit.events(ctx.engine).iloc[0]
    assert (last["user"], last["action"]) == ("admin", "download") and "-E004-" in last["target"]
    page.close()


def test_admin_sees_the_bracelets_utilisation_of_a_day(portal, chrome, tmp_path):
    url, ctx = portal
    page = chrome.new_page(viewport={"width": 1400, "height": 1000})
    login(page, url, "admin", "/equipment")
    page.wait_for_selector("#eq-devices-table", timeout=30_000)
    page.click("#eq-day")
    page.get_by_role("option", name=FRIDAY).click()
    page.wait_for_selector("#eq-timeline", timeout=30_000)
    page.wait_for_function(f"document.querySelector('#eq-shift-table') && "
                           f"document.querySelector('#eq-body').innerText.includes('{FRIDAY} 00:00 – 2024-03-09')",
                           timeout=30_000)
    device = ctx.park.devices[0]
    day = pd.Timestamp(FRIDAY, tz=TZ)
    readings = ctx.store.points("current", day - pd.Timedelta("10min"), day + pd.Timedelta("1D"),
                                where={"series": device.id})
    truth = utilisation(readings, device, day, day + pd.Timedelta("1D"))
    row = page.locator("#eq-day-table [role=row]", has_text=FRIDAY).filter(has_text=device.id)  # an AG Grid row
    assert f"{truth.utilisation:.1%}" in row.inner_text()
    metered = ctx.store.aggregate("energy", day, day + pd.Timedelta("1D"), "day",
                                  where={"enterprise": "E001", "carrier": "electricity"})["value"].iloc[0]
    assert number(page, "#eq-metered .kpi-value") == pytest.approx(metered, abs=0.05)
    assert page.locator(".eq-warning").count() == 1  # the failing bracelet went silent three hours ago
    page.screenshot(path=str(ARTIFACTS / "equipment-admin-zh.png"), full_page=True)
    with page.expect_download() as dl:
        page.click("#eq-util-day-dl-csv")
    csv = tmp_path / "utilisation.csv"
    dl.value.save_as(csv)
    table = pd.read_csv(csv)
    friday = table[(table["日期"] == FRIDAY) & table["设备编号"].str.startswith(device.id)].iloc[0]
    assert friday["开工率"] == pytest.approx(truth.utilisation, abs=1e-4)
    page.close()


def test_an_enterprise_user_sees_its_own_enterprise_and_devices_only(portal, chrome):
    url, ctx = portal
    page = chrome.new_page(viewport={"width": 1400, "height": 1000})
    login(page, url, "e001", "/enterprise")
    assert page.locator("#nav-enterprise").count() == 1 and page.locator("#nav-overview").count() == 0
    page.wait_for_selector("#ent-kpis .kpi", timeout=30_000)
    page.wait_for_selector("#ent-quota-allowances", timeout=30_000)
    assert page.locator("#ent-enterprise").get_attribute("type") == "hidden"  # no selector
    month = enterprise_totals(ctx, "E001", pd.Timestamp("2024-03-01", tz=TZ))
    assert number(page, "#ent-kpi-total_location_t_co2e .kpi-value") == pytest.approx(
        month["total_location_t_co2e"], abs=0.005)
    others = [e.name for e in ctx.park.enterprises if e.id != "E001"]
    assert not any(name in page.content() for name in others)
    page.wait_for_selector("#ent-cost-table", timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "enterprise-e001-zh.png"), full_page=True)
    page.click("#lang-toggle")
    page.wait_for_selector("text=Energy consumption", timeout=30_000)
    page.click("#nav-equipment")
    page.wait_for_selector("#eq-devices-table", timeout=30_000)
    page.wait_for_selector("#eq-timeline", timeout=30_000)
    text = page.locator("#page").inner_text()
    assert "E001-W1-D1" in text and "E002" not in text and "E007" not in text
    assert "No low-battery warnings yet" in text
    page.screenshot(path=str(ARTIFACTS / "equipment-e001-en.png"), full_page=True)
    page.close()
