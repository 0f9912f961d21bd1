"""The bracelet simulator: machines follow the shifts, the faults show, and its telemetry travels through a real
Mosquitto broker and the collector into the store."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collectors.bracelet import DEFAULT_CALENDAR, utilisation
from collectors.pipeline import Pipeline
from collectors.readings import RawReading
from collectors.simulator.bracelets import main, publish, telemetry
from collectors.sources.mqtt import MqttSettings, MqttSource
from collectors.spool import Spool
from collectors.writer import Writer
from park.model import Device
from park.parkfile import DEMO_PARK_FILE, load_park_file
from park.store.embedded import EmbeddedStore
from tests.support.mosquitto import wait_until

TZ = "Asia/Shanghai"
FRIDAY = pd.Timestamp("2024-03-01", tz=TZ)
DEVICES = [Device("E1-D1", "E1", "E1-W1", run_current_a=8.0), Device("E1-D2", "E1", "E1-W1"),
           Device("E1-D3", "E1", "E1-W1", idle_current_a=0.5, run_current_a=6.0, interval_s=120)]


def frame(items: list[dict], device: str) -> pd.DataFrame:
    mine = [i for i in items if i["device"] == device]
    return pd.DataFrame({"ts": pd.to_datetime([i["ts"] for i in mine]), "value": [i["current_a"] for i in mine]})


def test_simulated_machines_are_off_outside_the_shifts_and_cycle_within_them():
    day = list(telemetry(DEVICES, FRIDAY, FRIDAY + pd.Timedelta("1D"), seed=3))
    assert len(day) == 1440 + 1440 + 720
    assert [i["ts"] for i in day] == sorted(i["ts"] for i in day)  # in time order
    for d in DEVICES:
        u = utilisation(frame(day, d.id), d, FRIDAY, FRIDAY + pd.Timedelta("1D"), DEFAULT_CALENDAR)
        assert u.off_h == pytest.approx(8.0)  # 00:00-08:00; the shifts run 08:00-24:00 on a Friday
        assert u.overtime_h == 0.0 and u.coverage == 1.0
        assert 0.5 < u.utilisation < 0.95 and u.idle_h > 1.0


def test_a_failing_bracelet_goes_silent_and_a_low_battery_shows():
    silent_from = FRIDAY + pd.Timedelta("10h")
    day = list(telemetry(DEVICES, FRIDAY, FRIDAY + pd.Timedelta("1D"), failing={"E1-D2": silent_from},
                         low_battery={"E1-D3"}))
    assert max(pd.Timestamp(i["ts"]) for i in day if i["device"] == "E1-D2") == silent_from - pd.Timedelta("60s")
    last = {i["device"]: i for i in day}
    assert last["E1-D3"]["battery_pct"] < 6 and last["E1-D1"]["battery_pct"] > 60


def test_the_same_seed_gives_the_same_telemetry():
    hour = FRIDAY + pd.Timedelta("9h"), FRIDAY + pd.Timedelta("10h")
    assert list(telemetry(DEVICES, *hour, seed=5)) == list(telemetry(DEVICES, *hour, seed=5))
    assert list(telemetry(DEVICES, *hour, seed=5)) != list(telemetry(DEVICES, *hour, seed=6))


def test_simulated_telemetry_reaches_the_store_through_a_real_broker(broker, tmp_path):
    catalog = load_park_file(DEMO_PARK_FILE).catalog()
    devices = [Device(s.id, s.enterprise, s.workshop) for s in catalog.series if s.kind == "device"][:3]
    spool = Spool(tmp_path / "spool.db")
    store = EmbeddedStore(tmp_path / "ts.duckdb", catalog, TZ)
    src = MqttSource(Pipeline(catalog, spool), MqttSettings(port=broker.port, client_id="collector-sim")).start()
    assert src.wait_ready(10)
    start, end = FRIDAY + pd.Timedelta("7h"), FRIDAY + pd.Timedelta("9h")
    items = list(telemetry(devices, start, end, failing={devices[1].id: FRIDAY + pd.Timedelta("8h")},
                           low_battery={devices[2].id}))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="simulator")
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        assert publish(client, "demo", items, batch=20) == len(items) == 120 + 60 + 120
        wait_until(lambda: src.stats.submitted == len(items), what=f"{len(items)} readings")
    finally:
        client.disconnect()
        client.loop_stop()
        src.stop()
    Writer(spool, store).drain()
    counts = store.points("current", start, end).groupby("series").size().to_dict()
    assert counts == {devices[0].id: 120, devices[1].id: 60, devices[2].id: 120}
    status = src.devices
    assert status[devices[2].id].battery_pct < 20
    assert status[devices[1].id].ts < status[devices[0].id].ts  # the failing bracelet fell silent
    store.close()
    spool.close()


class Collected:
    """A sink that keeps the readings."""

    def __init__(self) -> None:
        self.readings: list[RawReading] = []

    def submit(self, readings: list[RawReading]) -> None:
        self.readings += readings

    def reject(self, **kw) -> None:
        raise AssertionError(f"the simulator published something unreadable: {kw}")


def test_the_command_line_backfills_the_demo_park(broker):
    sink = Collected()
    src = MqttSource(sink, MqttSettings(port=broker.port, client_id="collector-cli")).start()
    assert src.wait_ready(10)
    try:
        n = main(["--port", str(broker.port), "--hours", "0.25", "--batch", "15"])
        wait_until(lambda: len(sink.readings) == n, what=f"the {n} backfilled readings")
    finally:
        src.stop()
    devices = {d.id for d in load_park_file(DEMO_PARK_FILE).devices}
    assert {r.series for r in sink.readings} == devices
    assert n >= 15 * len(devices)
