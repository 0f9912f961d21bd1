"""Drill down and the big screen in Chromium, every number read off the screen checked against figures computed
here from the store's raw readings (the park and factors of tests/test_browser_figures.py: E1 10 kWh, E2 40 kWh,
E3 25 kWh of grid electricity per quarter hour, E3 4 m3 of gas per hour; now 2024-03-10 12:00)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.test_browser_figures import (  # noqa: F401  (the portal fixture)
    NOW,
    PARK,
    PASSWORD,
    TZ,
    location_t,
    number,
    portal,
    raw,
)


@pytest.fixture(scope="module")
def page(portal, chrome):  # noqa: F811
    url, _ = portal
    p = chrome.new_page(viewport={"width": 1920, "height": 1080})
    p.goto(url + "/")
    p.fill("#username", "admin")
    p.fill("#password", PASSWORD)
    p.click("#login-submit")
    p.wait_for_selector("#ranking-table .ag-row", timeout=30_000)
    yield p
    p.close()


def test_clicking_the_top_emitter_in_the_ranking_opens_its_enterprise_page(portal, page):  # noqa: F811
    _, ctx = portal
    feb = raw(ctx, pd.Timestamp("2024-02-01", tz=TZ), pd.Timestamp("2024-03-01", tz=TZ))
    emissions = {e: location_t(g) for e, g in feb.groupby("enterprise")}
    top = max(emissions, key=emissions.get)
    name = next(e.name for e in PARK.enterprises if e.id == top)
    page.locator('#ranking-table .ag-center-cols-container .ag-row[row-index="0"] a').click()
    page.wait_for_url(f"**/enterprise?e={top}", timeout=30_000)
    page.wait_for_selector("#ent-name", timeout=30_000)
    page.wait_for_function(f"document.querySelector('#ent-name').innerText === {name!r}", timeout=30_000)


def test_the_meter_view_shows_the_meters_readings_over_the_picked_range(portal, page):  # noqa: F811
    url, ctx = portal
    page.goto(url + "/meters?e=E3&m=E3-GAS")
    page.wait_for_selector("#mt-kpi-value", timeout=30_000)
    # The default range: the last 7 days, 4 March 00:00 to now.
    start = pd.Timestamp("2024-03-04", tz=TZ)
    truth = ctx.store.points("energy", start, NOW, where={"series": ["E3-GAS"]})["value"].sum()
    assert truth == pytest.approx(4.0 * (6 * 24 + 12))
    assert number(page.locator("#mt-kpi-value .kpi-value").inner_text()) == pytest.approx(truth, abs=0.005)
    assert "m3" in page.locator("#mt-kpi-value").inner_text()
    page.wait_for_selector("#mt-list-table .ag-row", timeout=30_000)
    assert page.locator("#mt-list-table .ag-center-cols-container .ag-row").count() == 2  # E3's two meters


def test_the_big_screen_shows_todays_figures_from_the_readings(portal, page):  # noqa: F811
    url, ctx = portal
    page.goto(url + "/cockpit")
    page.wait_for_selector("#cockpit-energy", timeout=30_000)
    today = raw(ctx, pd.Timestamp("2024-03-10", tz=TZ), NOW)
    kwh = today.loc[today["carrier"] == "electricity", "value"].sum()
    assert number(page.locator("#cockpit-energy .cockpit-value").inner_text()) == pytest.approx(kwh, abs=0.5)
    assert number(page.locator("#cockpit-emissions .cockpit-value").inner_text()) == pytest.approx(
        location_t(today), abs=0.005)
    last = raw(ctx, NOW - pd.Timedelta("15min"), NOW)
    assert number(page.locator("#cockpit-live .cockpit-value").inner_text()) == pytest.approx(
        last.loc[last["carrier"] == "electricity", "value"].sum() / 0.25, abs=0.5)
    month = raw(ctx, pd.Timestamp("2024-03-01", tz=TZ), NOW)
    by_emissions = sorted(PARK.enterprises, key=lambda e: location_t(month[month["enterprise"] == e.id]))
    page.wait_for_selector("#cockpit-top .js-plotly-plot", timeout=30_000)
    shown = page.evaluate("document.querySelector('#cockpit-top .js-plotly-plot').data[0].y")
    assert list(shown) == [e.name for e in by_emissions]  # the largest at the top: last in a horizontal bar
