"""The park overview seed page: its numbers equal the store's, with units, periods and coverage."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from plotly.utils import PlotlyJSONEncoder

from park.model import Enterprise, Meter, Park
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal.i18n import LANGUAGES, TEXT
from portal.overview_figures import compute_overview
from portal.pages.overview import render_overview

TZ = "Asia/Shanghai"
PARK = Park(
    id="p", name="测试园区", name_en="Test Park",
    enterprises=(Enterprise("E1", "甲公司", "Alpha Co."), Enterprise("E2", "乙公司", "Beta Co.")),
    meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"), Meter("E2-M1", Carrier.ELECTRICITY, "E2"),
            Meter("E2-GAS", Carrier.NATURAL_GAS, "E2", interval_s=3600)),
)
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)


@pytest.fixture
def store(tmp_path):
    s = EmbeddedStore(tmp_path / "ts.duckdb", PARK.catalog(), TZ)
    month = pd.date_range(pd.Timestamp("2024-03-01", tz=TZ), NOW, freq="15min", inclusive="left")
    s.write("energy", pd.DataFrame({"ts": month, "series": "E1-M1", "value": 2.0}))
    s.write("energy", pd.DataFrame({"ts": month[::2], "series": "E2-M1", "value": 1.0}))  # half the intervals
    hours = pd.date_range(pd.Timestamp("2024-03-10", tz=TZ), NOW, freq="1h", inclusive="left")
    s.write("energy", pd.DataFrame({"ts": hours, "series": "E2-GAS", "value": 10.0}))
    yield s
    s.close()


def test_today_and_month_totals_with_coverage(store):
    ov = compute_overview(store.aggregate, PARK, NOW)
    today = ov.today.set_index("carrier")
    # Today until noon: E1 48 x 2 kWh, E2 24 x 1 kWh; coverage counts the intervals expected until now only.
    assert today.loc["electricity", "value"] == pytest.approx(96 + 24)
    assert today.loc["electricity", "unit"] == "kWh"
    assert today.loc["electricity", "coverage"] == pytest.approx((48 + 24) / (2 * 48))
    assert today.loc["natural_gas", "value"] == pytest.approx(120.0)
    assert today.loc["natural_gas", "unit"] == "m3"
    month = ov.by_enterprise.set_index(["enterprise", "carrier"])
    intervals = 9 * 96 + 48
    assert month.loc[("E1", "electricity"), "value"] == pytest.approx(2.0 * intervals)
    assert ov.period_month[0] == pd.Timestamp("2024-03-01", tz=TZ)


def test_days_without_data_are_gaps_not_zero(store):
    ov = compute_overview(store.aggregate, PARK, NOW)
    february = ov.daily[ov.daily["start"] < pd.Timestamp("2024-03-01", tz=TZ)]
    assert len(february) == 20 and february["value"].isna().all() and (february["coverage"] == 0).all()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_label_is_translated_and_rendered(store, lang):
    assert all(set(v) == set(LANGUAGES) and all(v.values()) for v in TEXT.values())
    page = json.dumps(render_overview(compute_overview(store.aggregate, PARK, NOW), PARK, lang), cls=PlotlyJSONEncoder,
                      ensure_ascii=False)
    assert ("Alpha Co." in page) == (lang == "en") and ("甲公司" in page) == (lang == "zh-CN")
    assert "kWh" in page


# ---- the demo stays live ---------------------------------------------------------------------------------------
def test_the_demo_live_feed_keeps_every_meter_and_bracelet_live(tmp_path):
    """After the history is filled, each tick writes the quarter hours (and bracelet minutes) that became complete
    for every meter no collector polls and every bracelet: 15 minutes later nothing is 'no data'."""
    from park.parkfile import DEMO_PARK_FILE, load_park_file
    from portal.demo import LiveFeed, fill_readings

    park = load_park_file(DEMO_PARK_FILE)
    s = EmbeddedStore(tmp_path / "demo.duckdb", park.catalog(), park.timezone)
    start = pd.Timestamp("2024-03-10 08:00", tz=park.timezone)
    fill_readings(s, park, 1, start)
    modbus = {m.id for m in park.meters if (m.address or "").startswith("modbus://")}
    feed = LiveFeed(park, s, modbus, interval_s=15.0, clock=lambda: start)
    later = start + pd.Timedelta("47min")
    assert feed.tick(later) > 0
    latest = s.latest("energy").set_index("series")["ts"]
    others = [m.id for m in park.meters if m.id not in modbus]
    # The last complete quarter hour at 08:47 is 08:30-08:45 (gap_rate may drop a reading: allow one earlier).
    assert (latest[others] >= later.floor("15min") - pd.Timedelta("30min")).all()
    assert (latest[others] < later.floor("15min")).all()  # nothing of the running quarter hour
    currents = s.latest("current").set_index("series")["ts"]
    assert set(currents.index) == {d.id for d in park.devices}
    assert (currents >= later.floor("1min") - pd.Timedelta("5min")).all()
    assert feed.tick(later) == 0  # nothing new became complete
    s.close()


def test_the_demo_starts_when_its_modbus_port_is_taken(tmp_path, caplog):
    """The Modbus simulators' port is taken: the demo serves them on a free port, polls them there and says so."""
    import logging
    import socket

    from collectors.simulator.modbus_meters import serve_park
    from park.parkfile import DEMO_PARK_FILE, load_park_file
    from portal.demo import serve_modbus

    park = load_park_file(DEMO_PARK_FILE)
    taken = {m.address.rsplit(":", 1)[1].split("/")[0] for m in park.meters if (m.address or "").startswith("modbus")}
    with socket.socket() as blocker:
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            blocker.bind(("127.0.0.1", int(taken.pop())))
        except OSError:
            pytest.skip("the demo's Modbus port is already in use by something else")
        blocker.listen()
        with pytest.raises((OSError, RuntimeError)):
            for sim in serve_park(park):  # what the demo used to call, unguarded for RuntimeError
                sim.stop()
        with caplog.at_level(logging.WARNING, "parkcarbon.demo"):
            polled, simulators = serve_modbus(park, logging.getLogger("parkcarbon.demo"))
        try:
            assert simulators and "instead" in caplog.text
            port = simulators[0].port if hasattr(simulators[0], "port") else None
            moved = {m.address for m in polled.meters if (m.address or "").startswith("modbus")}
            assert moved and all(f":{blocker.getsockname()[1]}/" not in a for a in moved)
            if port:
                assert all(f":{port}/" in a for a in moved)
        finally:
            for sim in simulators:
                sim.stop()


# ---- honest live -----------------------------------------------------------------------------------------------
def _tile_text(tile) -> str:
    return json.dumps(tile.to_plotly_json(), cls=PlotlyJSONEncoder, ensure_ascii=False)


def test_the_live_tile_never_shows_an_older_quarter_hour_as_current():
    """The latest complete quarter hour has no reading: the tile shows a gap (—) with its interval and the update
    time, not the last quarter hour that had data (the tile that stayed at one value for 40 minutes)."""
    from portal.overview_figures import live_load
    from portal.pages.overview import _live_tile

    frame = pd.DataFrame({"start": pd.date_range(NOW - pd.Timedelta("1h"), periods=4, freq="15min"),
                          "value": [100.0, 120.0, 0.0, float("nan")], "coverage": [1.0, 1.0, 0.0, 0.0]})
    live = live_load(frame)
    assert live["kw"].iloc[:2].tolist() == [400.0, 480.0] and live["kw"].iloc[2:].isna().all()
    text = _tile_text(_live_tile(live, "en", NOW + pd.Timedelta("3min")))
    assert "480" not in text and "—" in text and "11:45–12:00" in text and "12:03:00" in text
    partial = _live_tile(live_load(frame.assign(coverage=[1.0, 1.0, 1.0, 0.5], value=[1.0, 1.0, 1.0, 50.0])),
                         "en", NOW)
    text = _tile_text(partial)
    assert "200" in text and "50.0%" in text and "only some meters reported" in text


def test_days_without_readings_are_gaps_and_today_is_partial(store):
    ov = compute_overview(store.aggregate, PARK, NOW)
    assert ov.daily["partial"].tolist() == [False] * 29 + [True]
    fig = render_overview(ov, PARK, "en")[1].figure
    assert list(fig.data[0].marker.pattern.shape)[-1] == "/" and "partial (to 12:00)" in fig.data[0].customdata[-1]


def _portal(store, tmp_path, clock=lambda: NOW):
    """A portal context on `store` with an administrator and a regulator (password "correct horse battery")."""
    import carbon.records  # noqa: F401  (the carbon tables)
    from park.metadata import create_engine_from_url, import_park
    from park.settings import Settings
    from portal.auth import add_user
    from portal.context import PortalContext

    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    import_park(engine, PARK)
    for name, role in (("admin", "admin"), ("reg", "regulator")):
        add_user(engine, "p", name, "correct horse battery", role, None)
    return engine, PortalContext(Settings(data_dir=tmp_path), engine, PARK, store, clock=clock)


def _count_renders(monkeypatch) -> list[str]:
    """The languages the overview's figures are rendered in, one entry per render."""
    from portal.pages import overview as page

    built, real = [], page.render_carbon
    monkeypatch.setattr(page, "render_carbon", lambda co, park, lang, now=None, picked=False: built.append(lang) or
                        real(co, park, lang, now, picked))
    return built


def test_a_warm_overview_sends_the_page_it_rendered_within_the_cache_time(store, tmp_path, monkeypatch):
    """Users of one scope (administrator, regulator) within the figures' cache time get the components rendered
    once per language; another language is rendered on its own; with the cache off every load renders."""
    from portal.auth import load_user
    from portal.pages import overview as page
    from portal.scope import scope_for

    engine, ctx = _portal(store, tmp_path)
    built = _count_renders(monkeypatch)

    def shown(user: str, lang: str) -> str:
        return json.dumps(page.layout(scope_for(ctx, load_user(engine, user), "/"), lang), cls=PlotlyJSONEncoder,
                          ensure_ascii=False)

    zh = shown("admin", "zh-CN")
    assert shown("reg", "zh-CN") == zh and built == ["zh-CN"]
    en = shown("admin", "en")
    assert built == ["zh-CN", "en"] and "Alpha Co." in en and "Alpha Co." not in zh and "甲公司" in zh
    ctx.access._cache.ttl_s = 0
    assert shown("admin", "zh-CN") == zh and built == ["zh-CN", "en", "zh-CN"]


@pytest.mark.parametrize("local", ["2024-03-10 00:05", "2024-04-01 00:10"])
def test_the_first_quarter_hour_of_a_day_and_of_a_month_renders_with_nothing_complete_yet(store, tmp_path, local):
    """Between local midnight and 00:15 no interval of today is complete (on the 1st, none of the month either):
    the page renders, today's and the month's figures are empty (no data, never 0), and yesterday stays a full
    day.  (It used to answer 500: the store refuses the empty range [00:00, 00:00).)"""
    from portal.auth import load_user
    from portal.pages import overview as page
    from portal.scope import scope_for

    now = pd.Timestamp(local, tz=TZ)
    ov = compute_overview(store.aggregate, PARK, now)
    assert ov.today.empty
    assert ov.month.empty == (now.day == 1)
    if now.day == 1:
        assert ov.by_enterprise.empty
    engine, ctx = _portal(store, tmp_path, clock=lambda: now)
    shown = json.dumps(page.layout(scope_for(ctx, load_user(engine, "admin"), "/"), "en"), cls=PlotlyJSONEncoder)
    assert "Alpha Co." in shown or now.day == 1


def test_a_warm_load_sends_the_same_bytes_as_encoding_the_page_anew(store, tmp_path):
    """The router sends a shared page body's JSON made once (portal.web.SerialisedTrees): a warm load's answer is
    byte for byte what Dash's encoder makes of the same page rendered anew, the same for two users of one scope,
    and a new render (the figures' cache time over) is sent as itself, never the old JSON."""
    from dash._utils import to_json

    from portal.app import create_app
    from tests.support.portal import login_token, render_body

    clock = {"now": NOW}
    engine, ctx = _portal(store, tmp_path, clock=lambda: clock["now"])
    app = create_app(ctx, "k" * 32)

    def page_of(user: str) -> dict:
        client = app.server.test_client()
        csrf = login_token(client, user, "correct horse battery")
        resp = client.post("/_dash-update-component", json=render_body("/", "zh-CN"), headers={"X-CSRFToken": csrf})
        assert resp.status_code == 200
        return resp.get_json()["response"]["page"]["children"]

    first, again, other = page_of("admin"), page_of("admin"), page_of("reg")
    assert first == again == other
    # what Dash's own encoder makes of the page rendered from scratch (nothing shared)
    from portal.auth import load_user
    from portal.pages import overview
    from portal.scope import scope_for

    ctx.access._cache.ttl_s = 0

    fresh = json.loads(to_json(overview.layout(scope_for(ctx, load_user(engine, "admin"), "/"), "zh-CN")))
    assert first == fresh
    # a new quarter hour of figures: a new render, and its JSON, not the old one
    store.write("energy", pd.DataFrame({"ts": [NOW], "series": "E1-M1", "value": 1000.0}))
    clock["now"] = NOW + pd.Timedelta("15min")
    later = page_of("admin")
    assert later != first
    assert later == json.loads(to_json(overview.layout(scope_for(ctx, load_user(engine, "admin"), "/"), "zh-CN")))


def test_a_warmed_worker_serves_the_overview_without_computing_it(store, tmp_path, monkeypatch):
    """portal.warm: a worker's warm-up renders the park-wide overview (body and comparison) as a signed-in
    administrator's first load would; the administrator's and the regulator's loads then compute nothing, and
    what they are sent is the page the warm-up rendered; /healthz says the worker is warm."""
    from portal.app import create_app
    from portal.warm import Warmer
    from tests.support.portal import login_token, render_body

    _, ctx = _portal(store, tmp_path)
    built = _count_renders(monkeypatch)
    ctx.warmer = Warmer(ctx, ("zh-CN",))
    assert ctx.warmer.once() >= 0 and built == ["zh-CN"]
    app = create_app(ctx, "k" * 32)
    for user in ("admin", "reg"):
        client = app.server.test_client()
        csrf = login_token(client, user, "correct horse battery")
        resp = client.post("/_dash-update-component", json=render_body("/", "zh-CN"), headers={"X-CSRFToken": csrf})
        assert resp.status_code == 200 and "甲公司" in resp.get_data(as_text=True)
    assert built == ["zh-CN"]  # nothing rendered again
    ctx.warmer.warm = True
    health = app.server.test_client().get("/healthz").get_json()
    assert health["warm"]["done"] is True
