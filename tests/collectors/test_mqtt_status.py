"""An unreachable broker is not silent: `parkcarbon collect`'s service logs every failed attempt and keeps each
source's state (connected / retrying with the last error / last message time / readings counted) in the status
file that the portal reads with `collectors.status.read_states`.  Against a real Mosquitto, stopped and started."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pandas as pd

from collectors.converters.bracelet import topic_for
from collectors.service import CollectorService
from collectors.status import StatusBoard, read_states, status_path
from park.model import Device, Enterprise, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from tests.support.mosquitto import MosquittoServer, Publisher, wait_until

TZ = "Asia/Shanghai"
T0 = pd.Timestamp("2024-03-01 08:00", tz=TZ)
NAME_PREFIX = "mqtt 127.0.0.1:"


def telemetry(minute: int) -> bytes:
    return json.dumps({"device": "E1-D1", "ts": (T0 + pd.Timedelta(minutes=minute)).isoformat(),
                       "current_a": 12.5}).encode()


def mqtt_state(settings: Settings) -> dict:
    states = [s for s in read_states(settings) if s["kind"] == "mqtt"]
    assert len(states) == 1, states
    return states[0]


def test_an_unreachable_broker_is_logged_retried_and_shown_in_the_status_file(tmp_path, caplog):
    broker = MosquittoServer()  # configured, not started: nothing listens on its port yet
    park = Park(id="p", name="测试", enterprises=(Enterprise("E1", "甲"),), devices=(Device("E1-D1", "E1"),))
    store = EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), TZ)
    settings = Settings(data_dir=tmp_path)
    config = {"mqtt": {"port": broker.port, "client_id": "status-test", "reconnect_min_s": 0.2,
                       "reconnect_max_s": 0.5}}
    caplog.set_level(logging.INFO, logger="collectors")
    service = CollectorService(park, store, tmp_path / "spool.db", config, writer_interval_s=0.2)
    service.status_interval_s = 0.2
    service.start()
    try:
        wait_until(lambda: mqtt_state(settings)["retries"] >= 2, timeout_s=15, what="two failed attempts")
        state = mqtt_state(settings)
        assert state["source"] == f"{NAME_PREFIX}{broker.port}"
        assert state["state"] == "retrying" and "refused" in state["last_error"].lower()
        assert state["last_error_at"] and not state["stale"] and state["readings"] == 0
        failures = [r for r in caplog.records if "cannot reach MQTT broker" in r.getMessage()]
        assert len(failures) >= 2 and all(r.levelno == logging.WARNING for r in failures)
        assert f"127.0.0.1:{broker.port}" in failures[0].getMessage()

        broker.start()  # the broker comes up: the source connects by itself
        wait_until(lambda: mqtt_state(settings)["state"] == "connected", timeout_s=15, what="connected")
        pub = Publisher(broker.port)
        for m in range(5):
            pub.publish(topic_for("demo", "E1-D1"), telemetry(m))
        pub.close()
        wait_until(lambda: mqtt_state(settings)["readings"] == 5, timeout_s=15, what="5 readings counted")
        state = mqtt_state(settings)
        assert state["messages"] == 5 and state["connects"] == 1
        heard = datetime.fromisoformat(state["last_message_at"])
        assert datetime.now(UTC) - heard < timedelta(seconds=30)

        broker.stop()  # lost: retrying, with the loss and then the refusals as the last error
        wait_until(lambda: mqtt_state(settings)["state"] == "retrying", timeout_s=15, what="retrying after a loss")
        assert any("lost the MQTT broker" in r.getMessage() or "cannot reach" in r.getMessage()
                   for r in caplog.records if r.levelno == logging.WARNING)
        broker.start()
        wait_until(lambda: mqtt_state(settings)["state"] == "connected", timeout_s=15, what="connected again")
        assert mqtt_state(settings)["connects"] == 2
    finally:
        service.stop()
        broker.cleanup()
        store.close()
    assert mqtt_state(settings)["state"] == "stopped"
    assert len(store_points(tmp_path, park)) == 5  # counted readings reached the store


def store_points(tmp_path, park: Park) -> pd.DataFrame:
    with EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), TZ) as store:
        return store.points("current", T0, T0 + pd.Timedelta(hours=1))


def test_the_status_file_is_replaced_whole_and_a_silent_collector_shows_as_stale(tmp_path):
    board = StatusBoard(status_path(tmp_path))
    board.add("mqtt 10.0.0.1:1883", "mqtt")
    board.error("mqtt 10.0.0.1:1883", "cannot connect: ConnectionRefusedError: Connection refused")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["collect_status.json"]  # no temporary file left
    settings = Settings(data_dir=tmp_path)
    (state,) = read_states(settings)
    assert (state["state"], state["retries"], state["stale"]) == ("retrying", 1, False)
    later = datetime.now(UTC) + timedelta(minutes=5)
    assert read_states(settings, now=later)[0]["stale"] is True
    assert read_states(Settings(data_dir=tmp_path / "nothing-here")) == []
