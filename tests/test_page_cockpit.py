"""The big screen (驾驶舱): every figure checked against figures computed independently from the readings written
(tests/test_alerts.build_ctx: now is 10 March 2024 12:00; E1-M1 2 kWh, E1-M2 1 kWh (silent since 09:00), E2-M1
4 kWh and E3-M1 1 kWh per quarter hour; E2's hourly gas meter never reported)."""

from __future__ import annotations

import pytest

from portal.auth import load_user
from portal.pages import cockpit
from portal.scope import scope_for
from tests.test_alerts import GRID_T_PER_KWH, build_ctx


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    c = build_ctx(tmp_path_factory.mktemp("cockpit"))
    yield c
    c.store.close()


def find(node, node_id: str):
    if getattr(node, "id", None) == node_id:
        return node
    children = getattr(node, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            hit = find(child, node_id)
            if hit is not None:
                return hit
    return None


def text(node) -> str:
    if node is None:
        return ""
    if isinstance(node, str | int | float):
        return str(node)
    children = getattr(node, "children", None)
    return " ".join(text(c) for c in (children if isinstance(children, list | tuple) else [children]))


def value(page, tile_id: str) -> str:
    tile = find(page, tile_id)
    return text(tile.children[1].children[0])


@pytest.fixture(scope="module")
def page(ctx):
    return cockpit.layout(scope_for(ctx, load_user(ctx.engine, "admin"), cockpit.PATH), "en")


def test_todays_electricity_load_and_emissions_are_the_readings(page, ctx):
    # Today 00:00-12:00: 48 quarter hours of E1-M1, E2-M1, E3-M1 and 36 of E1-M2.
    kwh = 2 * 48 + 1 * 36 + 4 * 48 + 1 * 48
    assert value(page, "cockpit-energy") == f"{kwh:,.0f}"  # 372
    # The last complete quarter hour, 11:45-12:00: 2 + 4 + 1 kWh in 0.25 h; E1-M2 silent (coverage 3/4).
    assert value(page, "cockpit-live") == "28"
    assert "11:45–12:00" in text(find(page, "cockpit-live")) and "75.0%" in text(find(page, "cockpit-live"))
    assert value(page, "cockpit-emissions") == f"{kwh * GRID_T_PER_KWH:,.2f}"
    # Completeness: 180 of 192 electricity quarter hours and none of the gas meter's 12 hours.
    assert value(page, "cockpit-coverage") == f"{180 / (192 + 12):.1%}"
    assert "2024-03-10 12:00" in text(find(page, "cockpit-updated"))


def test_top_emitters_are_in_order_of_this_months_emissions(page):
    fig = find(page, "cockpit-top").figure
    # 1-10 March 12:00: E2 4 x 912 = 3648 kWh, E1 2 x 912 + 900 = 2724 kWh, E3 912 kWh; the largest at the top.
    assert list(fig.data[0].y) == ["Gamma Co.", "Alpha Co.", "Beta Co."]
    assert list(fig.data[0].x) == pytest.approx([kwh * GRID_T_PER_KWH for kwh in (912, 2724, 3648)])


def test_quota_warnings_in_colour_most_used_first(page):
    rows = find(page, "cockpit-quota").children[1:]
    assert [text(r.children[0]) for r in rows] == ["Beta Co.", "Alpha Co."]  # 138.7 % and 91.4 % used
    colours = [r.children[1].style["color"] for r in rows]
    assert colours == [cockpit.theme.BAD, cockpit.theme.WARN]


def test_the_screen_refreshes_itself_and_is_dark(page):
    tick = find(page, "cockpit-tick")
    assert tick.interval == cockpit.REFRESH_MS
    assert page.style["position"] == "fixed" and page.style["background"] == cockpit.theme.DARK_BG
    assert find(page, "cockpit-load").figure.layout.template.layout.paper_bgcolor == cockpit.theme.DARK_PANEL
