"""Fault tests against real parts: a store outage mid-stream, a collector killed and restarted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

from collectors.pipeline import Pipeline
from collectors.readings import Kind, RawReading
from collectors.spool import Spool
from collectors.writer import Writer
from park.model import SeriesCatalog, SeriesInfo
from park.store.embedded import EmbeddedStore
from park.store.influx import InfluxConfig, InfluxStore
from tests.support import collector_child as child
from tests.support.influx import InfluxServer

TZ = "Asia/Shanghai"
ROOT = Path(__file__).resolve().parents[2]


def test_influxdb_stopped_mid_stream_every_reading_arrives_exactly_once(tmp_path):
    catalog = SeriesCatalog([SeriesInfo(f"M{i}", "meter", "E1", "W1", "electricity", "kWh") for i in range(20)])
    server = InfluxServer().start()
    try:
        store = InfluxStore(InfluxConfig(url=server.url, database="outage", timeout_s=1, retries=1,
                                         backoff_s=0.05), catalog, TZ)
        spool = Spool(tmp_path / "spool.db")
        pipe = Pipeline(catalog, spool, clock=lambda: pd.Timestamp("2030-01-01", tz="UTC"))
        writer = Writer(spool, store, batch_size=500)
        t0 = pd.Timestamp("2024-03-01", tz=TZ)
        sent, outages = 0, 0
        for step in range(30):  # 30 rounds x 20 meters x 8 intervals
            batch = [RawReading(f"M{i}", t0 + pd.Timedelta(minutes=15 * (8 * step + j)), 1.0 + i, Kind.INTERVAL,
                                source="test") for i in range(20) for j in range(8)]
            pipe.submit(batch)
            sent += len(batch)
            if step == 10:
                server.stop()
            if step == 20:
                server.start()
            result = writer.drain()
            outages += result.store_down is not None
        assert outages == 10  # the writer saw the outage and kept the rows on disk meanwhile
        while spool.stats().queued:
            assert writer.drain().store_down is None
        span = (t0, t0 + pd.Timedelta(days=3))
        per_meter = store.aggregate("energy", *span, "day", by=["series"])
        counts = per_meter.groupby("series")["count"].sum()
        totals = per_meter.groupby("series")["value"].sum()
        assert counts.sum() == sent and (counts == 240).all()
        assert all(totals[f"M{i}"] == pytest.approx(240 * (1.0 + i)) for i in range(20))
        assert len(store.points("energy", *span)) == sent  # exactly once: no doubles
    finally:
        server.cleanup()


def test_collector_killed_and_restarted_loses_and_doubles_nothing(tmp_path):
    end_s = 6 * 3600
    cmd = [sys.executable, "-m", "tests.support.collector_child", str(tmp_path), str(end_s)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for kill_after in (40, 160):  # kill twice, at different points of the stream
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        progress = threading.Event()
        seen = []

        def watch(p=proc, s=seen, e=progress, n=kill_after):
            for line in p.stdout:
                s.append(line)
                if len(s) >= n:
                    e.set()

        threading.Thread(target=watch, daemon=True).start()
        assert progress.wait(60), f"the collector made no progress: {seen[-3:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert "done\n" not in seen
    final = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0 and final.stdout.strip().endswith("done"), final.stderr
    store = EmbeddedStore(tmp_path / "ts.duckdb", child.CATALOG, TZ)
    pts = store.points("energy", child.T0, child.T0 + pd.Timedelta(seconds=end_s))
    assert len(pts) == 3 * end_s // 900 and not pts.duplicated(["series", "ts"]).any()
    for k, meter in enumerate(child.METERS, 1):
        got = pts[pts["series"] == meter]
        starts = ((got["ts"] - child.T0).dt.total_seconds()).astype(int)
        want = [child.register(k, s + 900) - child.register(k, s) for s in starts]
        assert got["value"].tolist() == pytest.approx(want, abs=1e-9)
    assert store.quarantined().empty
    store.close()
