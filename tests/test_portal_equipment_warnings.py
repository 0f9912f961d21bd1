"""Equipment warnings on the Warnings page (issue 13): silent bracelets and machines running outside their shifts,
computed from a real EmbeddedStore through the access layer, in the user's scope, with their catalogue codes."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from collectors.bracelet_analytics import off_shift_runs
from park.model import Device
from portal.alerts import current_alerts
from portal.auth import load_user
from tests.test_alerts import NOW, PARK, TZ, build_ctx

DEVICES = (Device("D1", "E1", name="Press 1"), Device("D2", "E1", name="Lathe 2"), Device("D3", "E2", name="Kiln"))


def minutes(start: str, end: str, amps: float, series: str) -> pd.DataFrame:
    ts = pd.date_range(pd.Timestamp(start, tz=TZ), pd.Timestamp(end, tz=TZ), freq="1min", inclusive="left")
    return pd.DataFrame({"ts": ts, "series": series, "value": amps})


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    import tests.test_alerts as base

    monkeypatch.setattr(base, "PARK", dataclasses.replace(PARK, devices=DEVICES))
    c = build_ctx(tmp_path)
    # NOW is Sunday 10 March 2024 12:00; the default shifts run 08:00-24:00 Monday to Saturday.
    # D1 runs (20 A) from Sunday 00:00 to now: 12 h outside shifts, still reporting.
    c.store.write("current", minutes("2024-03-10 00:00", "2024-03-10 12:00", 20.0, "D1"))
    # D2 runs Saturday 22:00 to Sunday 01:00 (1 h of it outside shifts), then says nothing for 11 h.
    c.store.write("current", minutes("2024-03-09 22:00", "2024-03-10 01:00", 20.0, "D2"))
    # D3 (E2) never reported.
    yield c
    c.store.close()


def equipment(alerts):
    return {a.key: a for a in alerts if a.kind in ("bracelet_silent", "off_shift")}


def test_silent_bracelets_and_running_outside_shifts_are_warnings(ctx):
    got = equipment(current_alerts(ctx.access, load_user(ctx.engine, "admin"), NOW))
    assert set(got) == {"off_shift|D1|2024-03-10", "off_shift|D2|2024-03-10",
                        "bracelet_silent|D2|2024-03-10T00:59:00+08:00", "bracelet_silent|D3|never"}
    d1 = got["off_shift|D1|2024-03-10"]
    assert (d1.code, d1.severity, d1.enterprise) == ("warning.off_shift", "warning", "E1")
    assert d1.detail["hours"] == pytest.approx(12.0)
    assert d1.since == pd.Timestamp("2024-03-10 00:00", tz=TZ)
    assert d1.what("en") == "D1 (Press 1) ran 12.0 h outside its shifts (00:00–12:00)"
    # Saturday 22:00-24:00 is a planned shift: only Sunday's hour counts.
    assert got["off_shift|D2|2024-03-10"].detail["hours"] == pytest.approx(1.0)
    silent = got["bracelet_silent|D2|2024-03-10T00:59:00+08:00"]
    assert silent.detail["minutes"] == pytest.approx(661.0)  # last reading 00:59, now 12:00
    assert silent.what("zh-CN") == "D2（Lathe 2）已 661 分钟无读数"
    assert got["bracelet_silent|D3|never"].since is None


def test_an_enterprise_user_gets_only_its_own_equipment_warnings(ctx):
    mine = equipment(current_alerts(ctx.access, load_user(ctx.engine, "beta"), NOW))
    assert set(mine) == {"bracelet_silent|D3|never"}


def test_off_shift_runs_leave_out_planned_shifts_short_runs_and_unknown_time():
    d = Device("D", "E", interval_s=60)
    start, end = pd.Timestamp("2024-03-08 00:00", tz=TZ), pd.Timestamp("2024-03-09 00:00", tz=TZ)  # a Friday
    points = pd.concat([minutes("2024-03-08 06:00", "2024-03-08 09:00", 20.0, "D"),  # 2 h before 08:00
                        minutes("2024-03-08 03:00", "2024-03-08 03:10", 20.0, "D")])  # 10 min: too short
    runs = off_shift_runs(points.sort_values("ts"), [d], start, end)
    assert runs[["start", "end"]].values.tolist() == [[pd.Timestamp("2024-03-08 06:00", tz=TZ),
                                                      pd.Timestamp("2024-03-08 08:00", tz=TZ)]]
