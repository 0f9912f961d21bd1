"""The equipment page: states, utilisation by day and shift, estimated energy and its reconciliation, health, from
known bracelet readings (exact values, worked out below); honest "no data"; isolation of crafted requests.

Devices (idle 1 A, run 5 A, 380 V, PF 0.85, a reading a minute; docs/bracelets.md): on Friday 2024-03-08, D1 reads
10 A 08:00-12:00, 3 A 12:00-13:00, 10 A 13:00-16:00, 0.2 A 16:00-17:00, then nothing; D2 reads 10 A 08:00-10:00,
then nothing until now (2024-03-10 12:00); D1 also reads 0.5 A on Sunday 11:00-12:00; D3 never reports.  E1's
electricity meter reads 15 kWh a quarter hour.  E2's device reads 37.7 A (its current must never reach E1's user)
against a meter of 2 kWh a quarter hour; E3's device never reports.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from plotly.utils import PlotlyJSONEncoder

from park.metadata import create_engine_from_url, import_park
from park.model import Device, Enterprise, Meter, Park, Workshop
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal import audit
from portal.app import create_app
from portal.auth import add_user, load_user
from portal.context import PortalContext
from portal.enterprise_scope import EnterpriseScope
from portal.i18n import LANGUAGES, TEXT
from portal.pages import equipment as page
from portal.scope import scope_for
from tests.test_page_enterprise import callback, login

TZ = "Asia/Shanghai"
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
DAY = "2024-03-08"
PASSWORD = "correct horse battery"
PARK = Park(
    id="p", name="测试园区", name_en="Test Park", province="Jiangsu",
    enterprises=(Enterprise("E1", "甲公司", "Alpha Co."), Enterprise("E2", "乙公司", "Beta Co."),
                 Enterprise("E3", "丙公司", "Gamma Co.")),
    workshops=(Workshop("E1-W1", "E1", "一车间", "Shop 1"),),
    meters=(Meter("E1-W1-M1", Carrier.ELECTRICITY, "E1", "E1-W1"), Meter("E2-M1", Carrier.ELECTRICITY, "E2"),
            Meter("E3-M1", Carrier.ELECTRICITY, "E3")),
    devices=(Device("E1-W1-D1", "E1", "E1-W1", "切割机 1"), Device("E1-W1-D2", "E1", "E1-W1", "切割机 2"),
             Device("E1-W1-D3", "E1", "E1-W1", "切割机 3"), Device("E2-D1", "E2", None, "染色机"),
             Device("E3-D1", "E3", None, "空压机")),
)
KW_PER_A = math.sqrt(3) * 380 * 0.85 / 1000  # kW per ampere of a three-phase load at 380 V, PF 0.85


def minutes(series: str, start: str, end: str, amps: float) -> pd.DataFrame:
    ts = pd.date_range(pd.Timestamp(start, tz=TZ), pd.Timestamp(end, tz=TZ), freq="1min", inclusive="left")
    return pd.DataFrame({"ts": ts, "series": series, "value": amps})


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("equipment")
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp / "ts.duckdb", PARK.catalog(), TZ)
    quarter_hours = pd.date_range(pd.Timestamp("2024-03-01", tz=TZ), NOW, freq="15min", inclusive="left")
    store.write("energy", pd.concat([pd.DataFrame({"ts": quarter_hours, "series": s, "value": v})
                                     for s, v in (("E1-W1-M1", 15.0), ("E2-M1", 2.0), ("E3-M1", 1.0))]))
    store.write("current", pd.concat([
        minutes("E1-W1-D1", f"{DAY} 08:00", f"{DAY} 12:00", 10.0),
        minutes("E1-W1-D1", f"{DAY} 12:00", f"{DAY} 13:00", 3.0),
        minutes("E1-W1-D1", f"{DAY} 13:00", f"{DAY} 16:00", 10.0),
        minutes("E1-W1-D1", f"{DAY} 16:00", f"{DAY} 17:00", 0.2),
        minutes("E1-W1-D1", "2024-03-10 11:00", "2024-03-10 12:00", 0.5),
        minutes("E1-W1-D2", f"{DAY} 08:00", f"{DAY} 10:00", 10.0),
        minutes("E2-D1", f"{DAY} 00:00", "2024-03-10 12:00", 37.7)]))
    for name, role, ent in (("admin", "admin", None), ("alpha", "enterprise", "E1"), ("gamma", "enterprise", "E3")):
        add_user(engine, "p", name, PASSWORD, role, ent)
    yield PortalContext(Settings(data_dir=tmp), engine, PARK, store, clock=lambda: NOW)
    store.close()


def scope(ctx, user: str = "alpha", enterprise: str = "E1") -> EnterpriseScope:
    """The request scope of `user` bound to `enterprise` (which it must be allowed to read)."""
    bound = scope_for(ctx, load_user(ctx.engine, user), page.PATH).enterprise(enterprise)
    assert bound is not None
    return bound


@pytest.fixture(scope="module")
def friday(ctx):
    return scope(ctx).equipment_day(DAY, NOW)


def shown(components) -> str:
    return json.dumps(json.loads(json.dumps(components, cls=PlotlyJSONEncoder)), ensure_ascii=False)


# ---- figures ---------------------------------------------------------------------------------------------------
def test_device_status_last_seen_current_state_and_silence(ctx):
    s = scope(ctx).device_status(NOW).set_index("device")
    d1, d2, d3 = s.loc["E1-W1-D1"], s.loc["E1-W1-D2"], s.loc["E1-W1-D3"]
    assert d1["last_seen"] == pd.Timestamp("2024-03-10 11:59", tz=TZ) and d1["current_a"] == 0.5
    assert d1["state"] == "off" and not d1["silent"]  # 0.5 A is below the idle threshold of 1 A
    # D2's last reading was Friday 09:59: silent for 2 days, 2 hours and 1 minute (> 3 intervals)
    assert d2["silent"] and d2["state"] == "unknown" and d2["silent_min"] == 2 * 1440 + 121
    assert d3["silent"] and pd.isna(d3["last_seen"]) and pd.isna(d3["current_a"])


def test_state_timeline_of_the_day(friday):
    runs = friday.timeline[friday.timeline["device"] == "E1-W1-D1"]
    spans = [(f"{r.start:%H:%M}", f"{r.end:%H:%M}", r.state) for r in runs.itertuples()]
    assert spans == [("00:00", "08:00", "unknown"), ("08:00", "12:00", "running"), ("12:00", "13:00", "idle"),
                     ("13:00", "16:00", "running"), ("16:00", "17:00", "off"), ("17:00", "00:00", "unknown")]
    assert friday.has_readings and (friday.start, friday.end) == (pd.Timestamp(DAY, tz=TZ),
                                                                   pd.Timestamp("2024-03-09", tz=TZ))


def test_utilisation_by_day_is_running_in_shifts_over_planned_time(friday):
    d = friday.by_day.set_index(["device", friday.by_day["day"].dt.strftime("%Y-%m-%d")])
    d1 = d.loc[("E1-W1-D1", DAY)]
    assert d1["running_h"] == pytest.approx(7) and d1["idle_h"] == pytest.approx(1) and d1["off_h"] == pytest.approx(1)
    assert d1["planned_h"] == 16 and d1["utilisation"] == pytest.approx(7 / 16)  # 开工率
    assert d1["running_share"] == pytest.approx(7 / 24) and d1["coverage"] == pytest.approx(9 / 24)
    assert sorted(set(friday.by_day["day"].dt.strftime("%Y-%m-%d"))) == [f"2024-03-0{i}" for i in range(2, 9)]
    assert (d.loc[("E1-W1-D1", "2024-03-05"), "coverage"]) == 0  # nothing seen that Tuesday
    assert d.loc[("E1-W1-D2", DAY), "utilisation"] == pytest.approx(2 / 16)


def test_utilisation_by_shift(friday):
    s = friday.by_shift[friday.by_shift["device"] == "E1-W1-D1"]
    early, late = s.iloc[0], s.iloc[1]
    assert (early["shift_start"].hour, early["shift_end"].hour) == (8, 16) and early["planned_h"] == 8
    assert early["utilisation"] == pytest.approx(7 / 8) and early["coverage"] == pytest.approx(1.0)
    assert late["utilisation"] == 0 and late["off_h"] == pytest.approx(1) and late["coverage"] == pytest.approx(1 / 8)


def test_estimated_energy_and_the_reconciliation_with_the_meter(friday):
    e = friday.energy.set_index("device")
    d1 = KW_PER_A * (10 * 7 + 3 * 1 + 0.2 * 1)  # ampere-hours x kW per ampere
    d2 = KW_PER_A * 10 * 2
    assert e.loc["E1-W1-D1", "estimated_kwh"] == pytest.approx(d1)
    assert e.loc["E1-W1-D2", "estimated_kwh"] == pytest.approx(d2) and e.loc["E1-W1-D3", "estimated_kwh"] == 0
    assert friday.metered_kwh == 15 * 96 and friday.metered_coverage == 1.0
    rec = friday.reconciliation
    assert rec.ratio == pytest.approx((d1 + d2) / 1440) and rec.scale == 1.0  # the estimates stay under the meter
    assert rec.unattributed_kwh == pytest.approx(1440 - d1 - d2)


def test_estimates_above_the_meter_are_scaled_down_to_it(ctx):
    e2 = scope(ctx, "admin", "E2").equipment_day(DAY, NOW)
    estimate = KW_PER_A * 37.7 * 24  # 37.7 A all day: 351.4 kWh against 2 kWh x 96 = 192 kWh metered
    e = e2.energy.iloc[0]
    assert e["estimated_kwh"] == pytest.approx(estimate) and e["factor"] == pytest.approx(192 / estimate)
    assert e["reconciled_kwh"] == pytest.approx(192) and e2.reconciliation.unattributed_kwh == pytest.approx(0)
    e3 = scope(ctx, "admin", "E3").equipment_day(DAY, NOW)  # 96 kWh metered, no readings
    assert not e3.has_readings and e3.reconciliation.scale == 1.0 and e3.reconciliation.unattributed_kwh == 96


def test_a_day_without_readings_is_no_data_not_zero(ctx):
    e = scope(ctx).equipment_day("2024-03-05", NOW)
    assert not e.has_readings and set(e.timeline["state"]) == {"unknown"}
    table = page.day_table(e, PARK, "en")
    tuesday = table[table["Day"] == "2024-03-05"]
    assert tuesday["Utilisation"].isna().all() and tuesday["Running (h)"].isna().all()  # not zero
    assert (tuesday["No data (h)"] == 24).all() and (tuesday["Coverage"] == 0).all()
    text = shown(page.render_day(e, PARK, "en"))
    assert "No bracelet readings on this day" in text and "eq-timeline" not in text and "eq-shift-table" not in text


def test_an_enterprise_without_any_reading_says_so(ctx):
    status = scope(ctx, "gamma", "E3").device_status(NOW)
    text = shown(page.render_status(status, PARK, NOW, "en"))
    assert TEXT["eq.no_readings"]["en"] in text and "E3-D1 空压机: no reading ever" in text
    assert TEXT["eq.health.battery"]["en"] in text


def test_a_day_without_planned_shifts_says_so(ctx):
    sunday = scope(ctx).equipment_day("2024-03-10", NOW)
    assert sunday.by_shift.empty and sunday.end == NOW
    d1 = sunday.by_day[(sunday.by_day["device"] == "E1-W1-D1") & (sunday.by_day["day"] == sunday.start)].iloc[0]
    assert d1["planned_h"] == 0 and math.isnan(d1["utilisation"]) and d1["off_h"] == pytest.approx(1)
    assert "No shift planned on this day" in shown(page.render_day(sunday, PARK, "en"))


def test_today_before_its_first_quarter_hour_has_no_figures(ctx):
    assert scope(ctx).equipment_day("2024-03-10", pd.Timestamp("2024-03-10 00:10", tz=TZ)) is None


# ---- rendering ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_label_is_translated_and_figures_carry_units_periods_and_coverage(ctx, friday, lang):
    assert set(page.TEXT) <= set(TEXT) and all(set(v) == set(LANGUAGES) for v in page.TEXT.values())
    status = scope(ctx).device_status(NOW)
    text = shown(page.render_status(status, PARK, NOW, lang)) + shown(page.render_day(friday, PARK, lang))
    assert "2024-03-08 00:00 – 2024-03-09 00:00 (Asia/Shanghai" in text and "kWh" in text
    assert TEXT["eq.col.utilisation"][lang] in text and TEXT["col.coverage"][lang] in text
    assert TEXT["eq.state.running"][lang] in text and "E1-W1-D2 切割机 2" in text
    assert f"{15 * 96:,.1f}" in text  # the metered electricity of the day


def test_tables_as_downloaded(ctx, friday):
    days = page.day_table(friday, PARK, "en")
    row = days[(days["Day"] == DAY) & (days["Device"] == "E1-W1-D1 切割机 1")].iloc[0]
    assert row["Utilisation"] == 0.4375 and row["Running (h)"] == 7 and row["Coverage"] == 0.375
    shifts = page.shift_table(friday, PARK, "zh-CN")
    assert list(shifts["班次"][:2]) == ["08:00–16:00", "16:00–00:00"] and shifts["开工率"].iloc[0] == 0.875
    devices = page.device_table(scope(ctx).device_status(NOW), PARK, "en")
    assert list(devices["Health"]) == ["OK", "3,001 min", "never"]


# ---- isolation ----------------------------------------------------------------------------------------------------
E2_SECRETS = ("Beta Co.", "乙公司", "E2", "染色机", "37.7")


@pytest.fixture(scope="module")
def app(ctx):
    return create_app(ctx, "k" * 32)


@pytest.mark.parametrize("outputs,inputs", [
    (["eq-status.children"], {"eq-enterprise.value": "E2", "eq-tick.n_intervals": 3}),
    (["eq-body.children"], {"eq-enterprise.value": "E2", "eq-day.value": DAY}),
])
def test_an_enterprise_user_asking_for_another_enterprises_devices_gets_nothing(app, ctx, outputs, inputs):
    client = app.server.test_client()
    token = login(client, "alpha")
    resp = callback(client, token, outputs, inputs, {"lang.data": "en"})
    text = json.dumps(resp.json, ensure_ascii=False)
    assert resp.status_code == 200 and TEXT["ent.refused"]["en"] in text
    assert not any(s in text for s in E2_SECRETS)
    last = audit.events(ctx.engine).iloc[0]
    assert (last["user"], last["action"], last["target"]) == ("alpha", "access_denied", "/equipment:E2")
    admin = app.server.test_client()
    seen = callback(admin, login(admin, "admin"), outputs, inputs, {"lang.data": "en"})
    assert "E2-D1" in json.dumps(seen.json, ensure_ascii=False)  # the same request works for the administrator


@pytest.mark.parametrize("prefix", ["eq-devices", "eq-util-day", "eq-util-shift", "eq-energy"])
def test_a_crafted_download_of_another_enterprises_devices_sends_nothing(app, ctx, prefix):
    client = app.server.test_client()
    token = login(client, "alpha")
    state = {"lang.data": "en", "eq-enterprise.value": "E2"}
    if prefix != "eq-devices":
        state["eq-day.value"] = DAY
    resp = callback(client, token, [f"{prefix}-download.data"],
                    {f"{prefix}-dl-csv.n_clicks": 1, f"{prefix}-dl-xlsx.n_clicks": None}, state)
    assert resp.status_code == 200 and resp.json["response"] == {}


def test_an_enterprise_user_sees_only_its_own_devices(app, ctx):
    client = app.server.test_client()
    token = login(client, "alpha")
    shell = callback(client, token, ["app-title.children", "park-name.children", "user-name.children",
                                     "lang-toggle.children", "logout.children", "nav.children", "page.children"],
                     {"url.pathname": "/equipment", "lang.data": "en"})
    text = json.dumps(shell.json, ensure_ascii=False)
    assert '"type": "hidden"' in text and not any(s in text for s in E2_SECRETS)
    body = callback(client, token, ["eq-body.children"], {"eq-enterprise.value": "E1", "eq-day.value": "1999-01-01"},
                    {"lang.data": "en"})
    text = json.dumps(body.json, ensure_ascii=False)
    assert "2024-03-10 00:00" in text and not any(s in text for s in E2_SECRETS)  # an unknown day: today
