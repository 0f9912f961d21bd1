"""A receiver killed (SIGKILL) while messages stream in loses none: a batch is acknowledged, in one write, only
after its spool transaction committed, so whatever the kill interrupts is redelivered by the broker to the
restarted receiver (same client id, persistent session).  Real Mosquitto, real spool, real processes."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
import time

import pandas as pd

from bench.mqtt_load import RawPublisher, bracelet_packets
from tests.support.mosquitto import MosquittoServer, wait_until

DEVICES = [f"D{i:03d}" for i in range(50)]
N = 6000


def _receiver(port: int, spool_path: str) -> None:
    """A child process: one MqttSource on the real pipeline and spool, until killed."""
    from collectors.pipeline import Pipeline
    from collectors.sources.mqtt import MqttSettings, MqttSource
    from collectors.spool import Spool
    from park.model import Device, Enterprise, Park

    park = Park(id="p", name="p", enterprises=(Enterprise("E1", "E1"),),
                devices=tuple(Device(d, "E1") for d in DEVICES))
    settings = MqttSettings(port=port, client_id="killed-receiver", topic="parkcarbon/+/bracelet/+/telemetry",
                            batch_size=500, reconnect_min_s=0.2, reconnect_max_s=1.0)
    src = MqttSource(Pipeline(park.catalog(), Spool(spool_path)), settings).start()
    if src.wait_ready(120):
        open(spool_path + ".subscribed", "w").close()
    while True:
        time.sleep(1)


def _distinct(spool_path: str) -> int:
    con = sqlite3.connect(spool_path, timeout=10)
    try:
        return con.execute("SELECT count(*) FROM (SELECT DISTINCT series, ts_ns FROM queue)").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0
    finally:
        con.close()


def _missing(spool_path: str) -> str:
    """The numbers of the messages not spooled (bracelet_packets: message i is device i % 50, second i // 50), as
    ranges."""
    con = sqlite3.connect(spool_path, timeout=10)
    got = set(con.execute("SELECT DISTINCT series, ts_ns FROM queue").fetchall())
    con.close()
    t0 = pd.Timestamp("2026-01-05T08:00:00+08:00").value
    have = {(int(s[1:]) + len(DEVICES) * ((ts - t0) // 1_000_000_000)) for s, ts in got}
    missing = sorted(set(range(N)) - have)
    runs, start = [], None
    for i, m in enumerate(missing):
        if start is None:
            start = m
        if i + 1 == len(missing) or missing[i + 1] != m + 1:
            runs.append(f"{start}-{m}")
            start = None
    return ", ".join(runs[:20])


def test_a_receiver_killed_three_times_mid_stream_loses_no_message(tmp_path):
    broker = MosquittoServer(extra_config="max_inflight_messages 0\nmax_queued_messages 0\n").start()
    spool_path = str(tmp_path / "spool.db")
    ctx = mp.get_context("spawn")
    try:
        proc = ctx.Process(target=_receiver, args=(broker.port, spool_path), daemon=True)
        proc.start()
        wait_until((tmp_path / "spool.db.subscribed").exists, timeout_s=120,
                   what="the receiver subscribed (its persistent session exists from here on)")
        pub = RawPublisher(broker.port)
        sender = threading.Thread(target=pub.publish_paced, args=(bracelet_packets(DEVICES, N), 1500.0))
        sender.start()
        kills = []
        for _ in range(3):  # kill whenever the spool has grown: mid-stream, between or inside batches
            before = _distinct(spool_path)
            wait_until(lambda b=before: _distinct(spool_path) > b + 300, timeout_s=60,
                       what=f"more spooled messages after {before} (spooled at the kills so far: {kills})")
            proc.kill()
            proc.join(10)
            kills.append(_distinct(spool_path))
            proc = ctx.Process(target=_receiver, args=(broker.port, spool_path), daemon=True)
            proc.start()
        sender.join(120)
        pub.close()
        assert kills[-1] < N, f"every message was spooled before the last kill, so it tested nothing: {kills}"
        try:
            wait_until(lambda: _distinct(spool_path) == N, timeout_s=90, what=f"all {N} messages in the spool")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {_distinct(spool_path)} of {N} (spooled at the kills: {kills}); missing "
                                 f"messages {_missing(spool_path)}; broker log: {broker.log()[-1500:]}") from None
        proc.kill()
        proc.join(10)
    finally:
        broker.cleanup()
    con = sqlite3.connect(spool_path)
    rows = pd.read_sql("SELECT series, ts_ns FROM queue", con)
    con.close()
    assert rows.drop_duplicates().shape[0] == N and set(rows["series"]) == set(DEVICES)
