"""Screenshots of every page for every role that may open it, in a real Chromium, into test-artifacts/screens/
(gitignored): one browser session per role.  Each page must render without an error or a refusal, and show no
developer-facing text (tracebacks, callback errors, Python reprs)."""

from __future__ import annotations

import pandas as pd
import pytest

from park.metadata import create_engine_from_url, import_park
from park.parkfile import DEMO_PARK_FILE, load_park_file
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.synth import synth_readings
from portal.app import create_app
from portal.auth import Role, add_user
from portal.context import PortalContext
from portal.demo import fill_currents, seed_carbon
from portal.pages import load_pages
from tests.support.browser import ARTIFACTS, serve

TZ = "Asia/Shanghai"
NOW = pd.Timestamp("2024-03-10 12:07", tz=TZ)
PASSWORD = "screens-test-password"
USERS = {Role.ADMIN: ("admin", None), Role.REGULATOR: ("regulator", None), Role.BANK: ("bank", None),
         Role.ENTERPRISE: ("e001", "E001")}
DEVELOPER_TEXT = ("Traceback", "Callback error", "callback error", "KeyError", "TypeError", "NaN", "nan%",
                  "None", "Timestamp(", "dtype", "DataFrame", "battery_pct", "_pct", "_t_co2e", "_kwh")


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("screens")
    park = load_park_file(DEMO_PARK_FILE)
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, park)
    store = EmbeddedStore(tmp / "ts.duckdb", park.catalog(), TZ)
    for frame in synth_readings(park, pd.Timestamp("2024-01-01", tz=TZ), NOW.floor("15min"), seed=7,
                                gap_rate=0.002):
        store.write("energy", frame)
    fill_currents(store, park, 2, NOW)
    seed_carbon(engine, store, park, NOW)
    for role, (name, enterprise) in USERS.items():
        add_user(engine, park.id, name, PASSWORD, role.value, enterprise)
    ctx = PortalContext(Settings(data_dir=tmp), engine, park, store, clock=lambda: NOW)
    with serve(create_app(ctx, "k" * 32).server) as url:
        yield url, ctx
    store.close()


@pytest.mark.parametrize("role", list(USERS), ids=lambda r: r.value)
def test_every_page_of_every_role_renders_and_is_captured(portal, chrome, role):
    url, _ = portal
    name, _ = USERS[role]
    out = ARTIFACTS / "screens"
    out.mkdir(parents=True, exist_ok=True)
    page = chrome.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(url + "/")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#nav", timeout=30_000)
    problems = []
    for module in load_pages():
        if role not in module.ROLES:
            continue
        slug = module.__name__.rsplit(".", 1)[1]
        # The big screen is made for a 1920 x 1080 display; every other page for a desktop window.
        page.set_viewport_size({"width": 1920, "height": 1080} if slug == "cockpit" else
                               {"width": 1440, "height": 1000})
        page.goto(url + module.PATH)
        page.wait_for_selector("#nav", timeout=30_000)
        page.wait_for_load_state("networkidle", timeout=60_000)
        page.wait_for_timeout(300)  # the last renders after the final response
        page.screenshot(path=str(out / f"{role.value}-{slug}.png"), full_page=True)
        text = page.locator("body").inner_text()
        problems += [f"{slug}: shows {word!r}" for word in DEVELOPER_TEXT if word in text]
        if page.locator(".dash-fe-error__title, #page-refused").count():
            problems.append(f"{slug}: an error or a refusal on screen")
    page.close()
    assert not problems, problems
