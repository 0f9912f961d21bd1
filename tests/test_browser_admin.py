"""The data-quality, warnings and administration pages in a real headless Chromium: the numbers on screen equal
the store's, a warning is acknowledged, a ledger movement is added (and an oversale refused), the language is
switched and a CSV downloaded.  Screenshots go to test-artifacts/."""

from __future__ import annotations

import pandas as pd
import pytest

from carbon import records
from carbon.pipeline import account_park
from carbon.quota import QuotaPlan
from park.metadata import create_engine_from_url, import_park
from park.parkfile import DEMO_PARK_FILE, load_park_file
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.synth import synth_readings
from portal import audit
from portal.alerts import acknowledgements, current_alerts
from portal.app import create_app
from portal.auth import add_user, load_user
from portal.context import PortalContext
from tests.support.browser import ARTIFACTS, serve

TZ = "Asia/Shanghai"
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
MONTH = pd.Timestamp("2024-03-01", tz=TZ)
PASSWORD = "browser-test-password"
SILENT = "E001-W1-M1"
# Allowances as a share of the emissions to date: E001 over its allowances, E002 past 80 %, the others well below.
ALLOWANCE_SHARE = {"E001": 0.9, "E002": 1 / 0.85}


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("portal-admin")
    park = load_park_file(DEMO_PARK_FILE)
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, park)
    store = EmbeddedStore(tmp / "ts.duckdb", park.catalog(), TZ)
    for frame in synth_readings(park, MONTH, NOW, seed=11, gap_rate=0.002):
        store.write("energy", frame)
    store.delete("energy", SILENT, pd.Timestamp("2024-03-10 08:00", tz=TZ), NOW, actor="test", reason="silent meter")
    store.write("energy", pd.DataFrame({"ts": [NOW - pd.Timedelta("30min"), NOW - pd.Timedelta("15min")],
                                        "series": "E002-W1-M1", "value": [-3.0, -4.0], "line": [41, 42]}),
                source="bills-march.csv")
    emissions = account_park(store, engine, park, pd.Timestamp("2024-01-01", tz=TZ), NOW, "month", strict=False)
    per_enterprise = emissions.totals_at("enterprise").groupby("enterprise")["total_location_t_co2e"].sum()
    for e, t_co2e in per_enterprise.items():
        allowances = round(t_co2e * ALLOWANCE_SHARE.get(e, 3.0), 3)
        records.record_quota_plan(engine, park.id, QuotaPlan.absolute(e, 2024, allowances), actor="test")
        records.record_movement(engine, park.id, e, 2024, "allocation", allowances, actor="test")
    add_user(engine, park.id, "admin", PASSWORD, "admin")
    ctx = PortalContext(Settings(data_dir=tmp), engine, park, store, clock=lambda: NOW)
    with serve(create_app(ctx, "s" * 32).server) as url:
        yield url, ctx
    store.close()


@pytest.fixture(scope="module")
def page(portal, chrome):
    url, _ = portal
    p = chrome.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    p.goto(url + "/")
    p.fill("#username", "admin")
    p.fill("#password", PASSWORD)
    p.click("#login-submit")
    p.wait_for_selector("#nav", timeout=30_000)
    ARTIFACTS.mkdir(exist_ok=True)
    yield p
    p.close()


def open_page(page, name: str, ready: str) -> None:
    page.click(f"#nav-{name}")
    page.wait_for_selector(ready, timeout=30_000)


def cell(page, table: str, column: str, row: int = 0) -> str:
    """The text shown in a cell of an AG Grid table (portal.components.data_table), rows in display order."""
    return page.locator(f'#{table} .ag-cell[col-id="{column}"]').nth(row).inner_text()


def share(text: str) -> float:
    """A share shown in per cent with two decimals, as the fraction it stands for."""
    return round(float(text.rstrip("%")) / 100, 4)


def test_quality_shows_the_stores_coverage_and_downloads_a_csv(portal, page, tmp_path):
    _, ctx = portal
    open_page(page, "quality", "#quality-enterprises-table")
    truth = ctx.store.coverage("energy", MONTH, NOW, by=["enterprise"]).set_index("enterprise")
    assert share(cell(page, "quality-enterprises-table", "数据完整率")) == round(truth.loc["E001", "coverage"], 4)
    assert cell(page, "quality-enterprises-table", "应有区间数") == f"{truth.loc['E001', 'expected']:,}"
    assert cell(page, "quality-silent-table", "计量表") == SILENT
    assert cell(page, "quality-quarantine-table", "规则编号") == "reading.negative"
    page.screenshot(path=str(ARTIFACTS / "quality-zh.png"), full_page=True)
    page.get_by_text("今日", exact=True).click()
    today = ctx.store.coverage("energy", NOW.floor("D"), NOW, by=["enterprise"]).set_index("enterprise")
    expected = f"{today.loc['E001', 'expected']:,}"
    page.wait_for_function(
        "e => document.querySelector('#quality-enterprises-table .ag-cell[col-id=\"应有区间数\"]')"
        ".innerText === e", arg=expected, timeout=15_000)
    assert share(cell(page, "quality-enterprises-table", "数据完整率")) == round(today.loc["E001", "coverage"], 4)
    with page.expect_download() as dl:
        page.click("#quality-quarantine-dl-csv")
    path = tmp_path / "quarantine.csv"
    dl.value.save_as(path)
    csv = pd.read_csv(path)
    assert csv[["行号", "计量表", "规则编号"]].values.tolist() == [[41, "E002-W1-M1", "reading.negative"],
                                                                [42, "E002-W1-M1", "reading.negative"]]
    last = audit.events(ctx.engine).iloc[0]
    assert (last["user"], last["action"]) == ("admin", "download") and last["target"].startswith("quarantined-")


def test_warnings_are_listed_and_one_is_acknowledged(portal, page):
    _, ctx = portal
    admin = load_user(ctx.engine, "admin")
    open_page(page, "warnings", "#warnings-table")
    alerts = current_alerts(ctx.access, admin, NOW)
    assert page.locator("tr.warning-row").count() == len(alerts)
    position = ctx.access.quota_positions(admin, 2024, NOW, 0.0).set_index("enterprise")
    row = page.locator('tr[data-key="quota_100|E001|2024"]')
    assert f"{position.loc['E001', 'used_share']:.1%}" in row.inner_text()
    assert "严重" in row.inner_text() and page.locator('tr[data-key="quota_80|E002|2024"]').count() == 1
    assert page.locator(f'tr[data-key^="meter_silent|{SILENT}|"]').count() == 1
    page.screenshot(path=str(ARTIFACTS / "warnings-zh.png"), full_page=True)
    row.locator("button.warning-ack").click()
    page.wait_for_selector('tr[data-key="quota_100|E001|2024"] .warning-acked', timeout=15_000)
    assert "admin 已确认" in page.locator('tr[data-key="quota_100|E001|2024"]').inner_text()
    assert acknowledgements(ctx.engine, ctx.park.id)["quota_100|E001|2024"].by == "admin"
    assert audit.events(ctx.engine).iloc[0]["action"] == "ack_warning"
    page.screenshot(path=str(ARTIFACTS / "warnings-acknowledged-zh.png"), full_page=True)


def choose(page, select_id: str, option: str) -> None:
    page.click(f"#{select_id}")
    page.get_by_role("option", name=option, exact=True).click()


def test_admin_adds_a_ledger_movement_refuses_an_oversale_and_switches_language(portal, page):
    _, ctx = portal
    open_page(page, "admin", "#admin-users-table")
    page.screenshot(path=str(ARTIFACTS / "admin-users-zh.png"), full_page=True)
    page.click("#admin-tab-quotas")
    page.wait_for_selector("#admin-ledger-table", timeout=15_000)
    before = len(records.load_ledger(ctx.engine, ctx.park.id, 2024, "E001"))
    page.fill("#admin-ledger-amount", "25")
    page.fill("#admin-ledger-reference", "trade 2024-031")
    page.click("#admin-ledger-save")
    page.wait_for_selector("#admin-ledger-message >> text=已记录台账", timeout=15_000)
    ledger = records.load_ledger(ctx.engine, ctx.park.id, 2024, "E001")
    assert len(ledger) == before + 1 and ledger.iloc[-1][["kind", "amount_t", "actor"]].tolist() == [
        "purchase", 25.0, "admin"]
    assert page.locator("#admin-ledger-table .ag-cell", has_text="trade 2024-031").count() == 1
    choose(page, "admin-ledger-kind", "卖出")
    page.fill("#admin-ledger-amount", "1000000")
    page.click("#admin-ledger-save")
    page.wait_for_selector("#admin-ledger-message >> text=未记录", timeout=15_000)
    assert len(records.load_ledger(ctx.engine, ctx.park.id, 2024, "E001")) == before + 1
    page.screenshot(path=str(ARTIFACTS / "admin-quotas-zh.png"), full_page=True)
    page.click("#lang-toggle")
    page.wait_for_selector("text=Append a movement", timeout=15_000)
    page.click("#admin-tab-factors")
    page.wait_for_selector("#admin-factors-table", timeout=15_000)
    assert page.locator("#admin-factors-table .ag-header-cell", has_text="Verified").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "admin-factors-en.png"), full_page=True)
    page.click("#admin-tab-park")
    page.wait_for_selector("#admin-meters-table", timeout=15_000)
    assert "Jiangnan Steel Structures Co." in page.locator("#admin-enterprises-table").inner_text()
    page.screenshot(path=str(ARTIFACTS / "admin-park-en.png"), full_page=True)
    page.click("#admin-tab-audit")
    page.wait_for_selector("#admin-audit-table", timeout=15_000)
    assert page.locator("#admin-audit-table .ag-cell", has_text="ledger_movement").count() >= 1
    page.screenshot(path=str(ARTIFACTS / "admin-audit-en.png"), full_page=True)
