"""`[collect.mqtt] receivers = N`: N receiver processes on one MQTT shared subscription, a spool each, one writer.
Against a real Mosquitto 2: every message is stored exactly once, and the broker spreads them over the receivers."""

from __future__ import annotations

import json

import pandas as pd

from collectors.converters.bracelet import topic_for
from collectors.service import CollectorService
from collectors.status import read_states
from park.model import Device, Enterprise, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from tests.support.mosquitto import MosquittoServer, Publisher, wait_until

TZ = "Asia/Shanghai"
T0 = pd.Timestamp("2024-03-01 08:00", tz=TZ)
DEVICES = [f"E1-D{i}" for i in range(1, 5)]


def test_receiver_processes_share_the_subscription_and_lose_nothing(tmp_path):
    broker = MosquittoServer().start()
    park = Park(id="p", name="测试", enterprises=(Enterprise("E1", "甲"),),
                devices=tuple(Device(d, "E1") for d in DEVICES))
    store = EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), TZ)
    settings = Settings(data_dir=tmp_path)
    config = {"mqtt": {"port": broker.port, "client_id": "receivers-test", "receivers": 2, "reconnect_min_s": 0.2,
                       "reconnect_max_s": 1.0}, "writer_min_rows": 1, "writer_max_wait_s": 0}
    service = CollectorService(park, store, tmp_path / "spool.db", config, writer_interval_s=0.2).start()
    try:
        def receivers() -> list[dict]:
            return [s for s in read_states(settings) if "receiver" in s["source"]]

        wait_until(lambda: len(receivers()) == 2 and all(s["state"] == "connected" for s in receivers()),
                   timeout_s=60, what="two connected receivers")
        pub = Publisher(broker.port)
        for m in range(50):
            for d in DEVICES:
                body = {"device": d, "ts": (T0 + pd.Timedelta(minutes=m)).isoformat(), "current_a": 1.0 + m}
                pub.publish(topic_for("demo", d), json.dumps(body))
        pub.close()
        wait_until(lambda: sum(s["readings"] for s in receivers()) == 200, timeout_s=60, what="200 readings")
        wait_until(lambda: len(store.points("current", T0, T0 + pd.Timedelta(hours=2))) == 200, timeout_s=60,
                   what="200 points in the store")
        counts = sorted(s["readings"] for s in receivers())
        assert all(c > 0 for c in counts), f"the broker gave every message to one receiver: {counts}"
    finally:
        service.stop()
        broker.cleanup()
    pts = store.points("current", T0, T0 + pd.Timedelta(hours=2))
    assert len(pts) == 200 and not pts.duplicated(["series", "ts"]).any()
    assert pts.groupby("series")["value"].sum().to_dict() == {d: sum(1.0 + m for m in range(50)) for d in DEVICES}
    assert {s["state"] for s in read_states(settings) if "receiver" in s["source"]} == {"stopped"}
    assert all(not p.is_alive() for p in service.receivers)
    store.close()


def test_the_writer_writes_many_bracelets_in_one_store_write_per_measurement(tmp_path, monkeypatch):
    """A write per MQTT topic (one per bracelet) kept the collector near 1 000 readings/s: one per measurement."""
    from collectors.spool import Spool
    from collectors.writer import Writer

    devices = [f"E1-D{i}" for i in range(1, 101)]
    park = Park(id="p", name="测试", enterprises=(Enterprise("E1", "甲"),),
                devices=tuple(Device(d, "E1") for d in devices))
    store = EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), TZ)
    spool = Spool(tmp_path / "spool.db")
    rows = pd.DataFrame({"measurement": "current", "series": devices * 10 + ["GHOST"],
                         "ts": [T0 + pd.Timedelta(minutes=m) for m in range(10) for _ in devices] + [T0],
                         "value": 2.5, "quality": "measured"})
    rows["source"] = "mqtt:" + rows["series"].map(lambda d: topic_for("demo", d))
    spool.append(rows)
    calls = []
    real = store.write
    monkeypatch.setattr(store, "write", lambda m, frame, source: calls.append(source) or real(m, frame, source=source))
    result = Writer(spool, store).drain()
    assert calls == ["mqtt:*"] and result.written == 1000 and result.quarantined == 1
    assert store.quarantined("current")["source"].tolist() == ["mqtt:*"]  # the unknown device, named by scheme
    spool.close()
    store.close()
