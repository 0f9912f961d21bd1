"""The MQTT bracelet source against a real Mosquitto broker: nothing lost across broker restarts, collector
restarts or a failing sink; malformed payloads quarantined with their topic and first bytes."""

from __future__ import annotations

import json
import threading

import pandas as pd

from collectors.converters.bracelet import topic_for
from collectors.pipeline import Pipeline
from collectors.readings import RawReading
from collectors.sources.mqtt import MqttSettings, MqttSource
from collectors.spool import Spool
from collectors.writer import Writer
from park.model import SeriesCatalog, SeriesInfo
from park.store.embedded import EmbeddedStore
from tests.support.mosquitto import MosquittoServer, Publisher, wait_until

TZ = "Asia/Shanghai"
T0 = pd.Timestamp("2024-03-01 08:00", tz=TZ)


class Recorder:
    """A sink that keeps what it is given (the source under test talks to a real broker)."""

    def __init__(self) -> None:
        self.readings: list[RawReading] = []
        self.rejects: list[dict] = []
        self.lock = threading.Lock()

    def submit(self, readings: list[RawReading]) -> None:
        with self.lock:
            self.readings += readings

    def reject(self, **kw) -> None:
        with self.lock:
            self.rejects.append(kw)

    def distinct(self) -> set[tuple[str, pd.Timestamp]]:
        with self.lock:
            return {(r.series, pd.Timestamp(r.ts)) for r in self.readings}


class BrokenSink(Recorder):
    """A sink whose spool write always fails (disk full, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def submit(self, readings: list[RawReading]) -> None:
        self.attempts += 1
        raise OSError("database or disk is full")


def telemetry(device: str, minute: int, current: float = 12.5) -> bytes:
    ts = (T0 + pd.Timedelta(minutes=minute)).isoformat()
    return json.dumps({"device": device, "ts": ts, "current_a": current, "voltage_v": 380, "battery_pct": 87,
                       "rssi_dbm": -71}).encode()


def publish(port: int, device: str, minutes: range) -> None:
    pub = Publisher(port, client_id=f"bracelet-{device}")
    try:
        for m in minutes:
            pub.publish(topic_for("demo", device), telemetry(device, m))
    finally:
        pub.close()


def source(sink, port: int, client_id: str = "collector-1", **kw) -> MqttSource:
    settings = MqttSettings(port=port, client_id=client_id, reconnect_min_s=kw.pop("reconnect_min_s", 0.2),
                            reconnect_max_s=2.0, **kw)
    src = MqttSource(sink, settings).start()
    assert src.wait_ready(10), "the source did not connect and subscribe"
    return src


def test_published_bracelet_messages_become_current_points_in_the_store(broker, tmp_path):
    catalog = SeriesCatalog([SeriesInfo("E001-W1-D1", "device", "E001", "E001-W1", None, "A", 60),
                             SeriesInfo("E001-W1-D2", "device", "E001", "E001-W1", None, "A", 60)])
    spool = Spool(tmp_path / "spool.db")
    store = EmbeddedStore(tmp_path / "ts.duckdb", catalog, TZ)
    src = source(Pipeline(catalog, spool), broker.port)
    try:
        publish(broker.port, "E001-W1-D1", range(0, 5))
        batch = [{"device": "E001-W1-D2", "ts": (T0 + pd.Timedelta(minutes=m)).isoformat(), "current_a": 3.0 + m}
                 for m in range(3)]  # a bracelet sending its buffered readings as one array
        naive = {"device": "E001-W1-D2", "ts": "2024-03-01T08:10:00", "current_a": 1.0}
        pub = Publisher(broker.port)
        pub.publish(topic_for("demo", "E001-W1-D2"), json.dumps(batch))
        pub.publish(topic_for("demo", "E001-W1-D2"), b"\x00\x01 not json at all")
        pub.publish(topic_for("demo", "E001-W1-D2"), json.dumps(naive))
        pub.close()
        wait_until(lambda: src.stats.submitted == 9 and src.stats.rejected == 1, what="9 readings and 1 rejection")
    finally:
        src.stop()
    Writer(spool, store).drain()
    pts = store.points("current", T0, T0 + pd.Timedelta("1h"))
    assert pts.groupby("series")["value"].apply(list).to_dict() == {"E001-W1-D1": [12.5] * 5,
                                                                      "E001-W1-D2": [3.0, 4.0, 5.0]}
    q = store.quarantined("current").sort_values("code")
    assert q["code"].tolist() == ["payload.malformed", "reading.naive_timestamp"]
    malformed = q.iloc[0]
    assert malformed["source"] == "mqtt:parkcarbon/demo/bracelet/E001-W1-D2/telemetry"
    assert "b'\\x00\\x01 not json at all'" in malformed["reason"]
    store.close()
    spool.close()


def test_a_malformed_payload_between_good_ones_is_rejected_and_the_good_ones_flow(broker):
    sink = Recorder()
    src = source(sink, broker.port)
    try:
        topic = topic_for("demo", "D1")
        pub = Publisher(broker.port)
        pub.publish(topic, telemetry("D1", 0, 10.0))
        pub.publish(topic, b'{"device": "D1", "ts": "2024-03-01T08:01:00+08:00", "current_a": ')  # cut short
        pub.publish(topic, telemetry("D1", 2, 11.0))
        pub.close()
        wait_until(lambda: len(sink.readings) == 2 and len(sink.rejects) == 1, what="2 readings and 1 rejection")
    finally:
        src.stop()
    assert [r.value for r in sink.readings] == [10.0, 11.0]
    assert src.stats.acked == 3  # the malformed message is acknowledged too: it is quarantined, not lost
    (rej,) = sink.rejects
    assert rej["code"] == "payload.malformed" and rej["source"] == f"mqtt:{topic}" and rej["measurement"] == "current"
    assert "b'{\"device\": \"D1\", \"ts\": \"2024-03-01T08:01:00+08:00\"" in rej["detail"]


def test_broker_restart_the_client_reconnects_and_loses_no_qos1_message(broker):
    sink = Recorder()
    # A first reconnect attempt 2 s after the loss: the messages below are published while the client is away.
    src = source(sink, broker.port, reconnect_min_s=2.0)
    try:
        publish(broker.port, "D1", range(0, 20))
        wait_until(lambda: len(sink.distinct()) == 20, what="the first 20 messages")
        broker.stop()
        wait_until(lambda: not src.connected, what="the client to notice the broker is gone")
        broker.start()  # same port, same persistence file: the persistent session and its subscription are back
        publish(broker.port, "D1", range(20, 50))
        assert not src.connected, "the 30 messages were meant to be published while our client was disconnected"
        wait_until(lambda: len(sink.distinct()) == 50, timeout_s=15, what="all 50 messages after the reconnect")
    finally:
        src.stop()
    assert src.connects == 2
    assert sorted(ts for _, ts in sink.distinct()) == [T0 + pd.Timedelta(minutes=m) for m in range(50)]


def test_messages_published_while_the_collector_was_stopped_survive_a_broker_restart(broker):
    first = Recorder()
    src = source(first, broker.port, client_id="collector-A")
    publish(broker.port, "D1", range(0, 10))
    wait_until(lambda: len(first.distinct()) == 10, what="the first 10 messages")
    src.stop()  # the collector goes away; its persistent session stays at the broker
    publish(broker.port, "D1", range(10, 40))  # queued for the session
    broker.restart()  # written to the persistence file and read back
    publish(broker.port, "D1", range(40, 50))
    second = Recorder()
    src = source(second, broker.port, client_id="collector-A")  # the collector is back, same client id
    try:
        wait_until(lambda: len(second.distinct()) == 40, what="the 40 queued messages")
    finally:
        src.stop()
    assert sorted(ts for _, ts in second.distinct()) == [T0 + pd.Timedelta(minutes=m) for m in range(10, 50)]


def test_a_batch_is_acknowledged_only_after_the_sink_accepted_it(broker):
    broken = BrokenSink()
    src = source(broken, broker.port, client_id="collector-B")
    publish(broker.port, "D1", range(0, 5))
    wait_until(lambda: broken.attempts >= 1 and src.stats.received == 5, what="a failed submit of 5 messages")
    src.stop()  # a collector that dies before its spool write: nothing was acknowledged
    assert src.stats.acked == 0 and src.stats.sink_failures >= 1
    sink = Recorder()
    src = source(sink, broker.port, client_id="collector-B")
    try:
        wait_until(lambda: len(sink.distinct()) == 5, what="the broker to redeliver the 5 messages")
    finally:
        src.stop()
    assert src.stats.acked >= 5


def test_the_collector_may_start_before_the_broker():
    server = MosquittoServer()  # configured, not yet running
    sink = Recorder()
    src = MqttSource(sink, MqttSettings(port=server.port, client_id="early", reconnect_min_s=0.1,
                                        reconnect_max_s=0.5)).start()
    try:
        assert not src.wait_ready(0.3)
        server.start()
        assert src.wait_ready(10), "the source did not connect once the broker was up"
        publish(server.port, "D1", range(3))
        wait_until(lambda: len(sink.distinct()) == 3, what="3 messages")
    finally:
        src.stop()
        server.cleanup()
