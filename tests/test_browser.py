"""The portal in a real headless Chromium: log in, read the numbers on screen, switch language, download."""

from __future__ import annotations

import pandas as pd
import pytest

from park.metadata import create_engine_from_url, import_park
from park.parkfile import DEMO_PARK_FILE, load_park_file
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.synth import synth_readings
from portal import audit
from portal.app import create_app
from portal.auth import add_user
from portal.context import PortalContext
from tests.support.browser import ARTIFACTS, serve

TZ = "Asia/Shanghai"
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
PASSWORD = "browser-test-password"


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("portal")
    park = load_park_file(DEMO_PARK_FILE)
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, park)
    store = EmbeddedStore(tmp / "ts.duckdb", park.catalog(), TZ)
    for frame in synth_readings(park, pd.Timestamp("2024-02-01", tz=TZ), NOW, seed=7, gap_rate=0.002):
        store.write("energy", frame)
    add_user(engine, park.id, "admin", PASSWORD, "admin")
    add_user(engine, park.id, "e001", PASSWORD, "enterprise", "E001")
    ctx = PortalContext(Settings(data_dir=tmp), engine, park, store, clock=lambda: NOW)
    with serve(create_app(ctx, "s" * 32).server) as url:
        yield url, ctx
    store.close()


def login(page, url: str, username: str) -> None:
    page.goto(url + "/")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#nav", timeout=30_000)


def test_admin_sees_the_overview_with_the_stores_numbers(portal, chrome, tmp_path):
    url, ctx = portal
    page = chrome.new_page(viewport={"width": 1400, "height": 1000})
    login(page, url, "admin")
    page.wait_for_selector("#kpis .kpi", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "overview-zh.png"), full_page=True)
    today = NOW.floor("D")
    truth = ctx.store.aggregate("energy", today, today + pd.Timedelta("1D"), "day", where={"carrier": "electricity"})
    shown = page.locator(".kpi", has_text="今日能耗 · 电力").locator(".kpi-value").inner_text()
    assert float(shown.replace(",", "")) == pytest.approx(truth["value"].iloc[0], abs=0.05)
    assert "千瓦时" in page.content() or "kWh" in page.content()
    page.click("#lang-toggle")
    page.wait_for_selector("text=Energy today", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "overview-en.png"), full_page=True)
    assert "Jiangnan Steel Structures Co." in page.content()
    with page.expect_download() as dl:
        page.click("#overview-dl-csv")
    csv = tmp_path / "table.csv"
    dl.value.save_as(csv)
    table = pd.read_csv(csv)
    assert list(table.columns) == ["Enterprise", "Carrier", "Energy", "Unit", "Coverage"]
    assert table["Enterprise"].nunique() == len(ctx.park.enterprises) and set(table["Unit"]) >= {"kWh", "m3"}
    last = audit.events(ctx.engine).iloc[0]
    assert (last["user"], last["action"]) == ("admin", "download") and last["target"].endswith(".csv")
    page.close()


def test_an_enterprise_user_lands_on_its_page_and_is_refused_the_park_overview(portal, chrome):
    """After login an enterprise user lands on its enterprise page (no red refusal as a first screen); the park
    overview stays out of reach: "/" brings it back to its page, and the nav offers only its pages."""
    url, ctx = portal
    page = chrome.new_page()
    login(page, url, "e001")
    page.wait_for_selector("#ent-kpis .kpi", timeout=30_000)
    assert page.url == url + "/enterprise" and page.locator("#forbidden").count() == 0
    assert page.locator("#nav-overview").count() == 0 and page.locator("#carbon-kpis").count() == 0
    page.goto(url + "/")
    page.wait_for_selector("#ent-kpis .kpi", timeout=30_000)
    assert page.url == url + "/enterprise" and page.locator("#carbon-kpis").count() == 0
    others = [e.name for e in ctx.park.enterprises if e.id != "E001"]
    assert not any(name in page.locator("#page").inner_text() for name in others)
    page.goto(url + "/quality")
    page.wait_for_selector("#forbidden", timeout=30_000)
    assert not any(name in page.locator("#page").inner_text() for name in others)
    page.close()
