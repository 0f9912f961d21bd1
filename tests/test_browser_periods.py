"""Browser test (Chromium) of the overview's date-range picker: choosing 5-7 February 2024 in the calendar re-renders
the page for that period, and the location-based KPI read off the screen equals the figure computed here from the
store's raw readings and the published factor (tests/test_browser_figures' park and helpers)."""

from __future__ import annotations

import pandas as pd
import pytest

from portal.i18n import TEXT
from tests.test_browser_figures import PASSWORD, TZ, location_t, number, portal, raw  # noqa: F401  (its fixture)


def test_a_period_picked_in_the_calendar_drives_the_overviews_kpi(portal, chrome):  # noqa: F811
    url, ctx = portal
    page = chrome.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(url + "/")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORD)
        page.click("#login-submit")
        page.wait_for_selector("#carbon-kpis .kpi", timeout=30_000)
        page.click("#ov-range")
        page.locator(".mantine-DatePickerInput-calendarHeaderControl[data-direction='previous']").click()
        days = page.locator(".mantine-DatePickerInput-day:not([data-outside])")
        days.filter(has_text="5").first.click()  # the first "5" not of another month: 5 February
        days.filter(has_text="7").first.click()
        title = TEXT["ov.kpi.emissions_location"]["zh-CN"]
        card = page.locator("#carbon-kpis .kpi", has_text=title)
        card.wait_for(timeout=60_000)
        truth = location_t(raw(ctx, pd.Timestamp("2024-02-05", tz=TZ), pd.Timestamp("2024-02-08", tz=TZ)))
        assert number(card.locator(".kpi-value").inner_text()) == pytest.approx(truth, abs=0.05)
        assert "2024-02-05 00:00 – 2024-02-08 00:00" in page.locator("#ov-coverage").inner_text()
        # the comparison (its own callback) is of the same period: the previous one is 2-5 February
        page.wait_for_selector("#ov-compare-table .ag-row", timeout=60_000)
        assert "2024-02-02 00:00 – 2024-02-05 00:00" in page.locator("#ov-compare").inner_text()
    except Exception:
        page.screenshot(path="/tmp/pp/periods.png")
        raise
    finally:
        page.close()
