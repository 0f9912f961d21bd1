"""The demo keeps its bracelets live over the real MQTT path when a broker runs (a real Mosquitto here): the demo
publishes their telemetry, the collector's MQTT source subscribes, and the readings reach the store through the
spool and the writer, never through the feed's direct write.  Without a broker (or with MQTT off) the demo still
starts and says which path it took."""

from __future__ import annotations

import logging
import threading
import time

import paho.mqtt.client as mqtt
import pandas as pd
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collectors.converters.bracelet import TOPIC_FILTER
from park.parkfile import DEMO_PARK_FILE, load_park_file
from park.store.embedded import EmbeddedStore
from portal import demo
from tests.support.servers import free_port


@pytest.fixture
def park():
    return load_park_file(DEMO_PARK_FILE)


@pytest.fixture
def store(tmp_path, park):
    s = EmbeddedStore(tmp_path / "demo.duckdb", park.catalog(), park.timezone)
    yield s
    s.close()


def listen(port: int) -> tuple[mqtt.Client, set[str]]:
    """A plain subscriber beside the collector: which bracelets' telemetry crossed the broker."""
    seen: set[str] = set()
    lock = threading.Lock()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-listener")

    def on_message(_c, _u, msg):
        with lock:
            seen.add(msg.topic.split("/")[3])

    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(TOPIC_FILTER, qos=1)
    client.loop_start()
    return client, seen


def test_the_demo_bracelets_reach_the_store_through_mqtt_when_a_broker_runs(broker, park, store, tmp_path, caplog,
                                                                               monkeypatch):
    now = pd.Timestamp.now(tz="UTC")
    history_end = (now - pd.Timedelta("10min")).floor("1min")
    demo.fill_currents(store, park, 1, history_end)  # the history, written directly like the demo's
    assert (store.latest("current")["ts"] < history_end).all()
    direct = []
    real_write = store.write
    monkeypatch.setattr(store, "write", lambda m, frame, **kw: (direct.append(kw.get("source")) if m == "current"
                                                                 else None) or real_write(m, frame, **kw))
    listener, seen = listen(broker.port)
    with caplog.at_level(logging.INFO, "parkcarbon.demo"):
        stop = demo.start_live(park, store, tmp_path, interval_s=0.5, mqtt=f"127.0.0.1:{broker.port}")
    try:
        assert f"publish over MQTT to the broker at 127.0.0.1:{broker.port}" in caplog.text
        assert "over MQTT" in stop.description
        devices = {d.id for d in park.devices}
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            latest = store.latest("current").set_index("series")["ts"]
            if set(latest.index) == devices and (latest >= history_end).all():
                break
            time.sleep(0.5)
        latest = store.latest("current").set_index("series")["ts"]
        assert set(latest.index) == devices
        # every bracelet has readings after the history, up to the last complete minutes (one may be a gap)
        assert (latest >= now.floor("1min") - pd.Timedelta("3min")).all(), latest.sort_values().head()
        assert seen == devices  # ... and each crossed the broker
        assert "demo-live" not in direct  # the feed wrote no current directly: they came through the MQTT source
    finally:
        stop()
        listener.loop_stop()
        listener.disconnect()


@pytest.mark.parametrize("setting,said", [("off", "MQTT off"), (None, "no MQTT broker reachable")])
def test_without_a_broker_the_demo_writes_its_bracelets_through_the_store_and_says_so(park, store, tmp_path, caplog,
                                                                                     setting, said):
    setting = setting or f"127.0.0.1:{free_port()}"  # nothing listens there
    demo.fill_currents(store, park, 1, (pd.Timestamp.now(tz="UTC") - pd.Timedelta("5min")).floor("1min"))
    with caplog.at_level(logging.INFO, "parkcarbon.demo"):
        stop = demo.start_live(park, store, tmp_path, interval_s=0.5, mqtt=setting)
    try:
        assert said in caplog.text and "bracelets simulated live through the store writer" in caplog.text
        assert said in stop.description
        before = store.latest("current")["ts"].max()
        deadline = time.monotonic() + 30
        while store.latest("current")["ts"].max() <= before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.latest("current")["ts"].max() > before
    finally:
        stop()


@pytest.mark.parametrize("value,expected", [("off", None), ("", None), ("broker.local:1884", ("broker.local", 1884)),
                                            ("broker.local", ("broker.local", 1883))])
def test_the_broker_address_setting(value, expected, monkeypatch):
    assert demo.mqtt_address(value) == expected
    monkeypatch.setenv(demo.DEMO_MQTT_ENV, value)
    assert demo.mqtt_address() == expected
    with pytest.raises(ValueError, match=demo.DEMO_MQTT_ENV):
        demo.mqtt_address("host:port")
