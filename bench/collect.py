"""Collector throughput, end to end, on real parts.

1. MQTT: a separate process publishes bracelet telemetry (QoS 1, one reading per message) at an offered rate to
   a real Mosquitto broker; our collector (MqttSource -> Pipeline -> Spool -> Writer -> embedded store) runs in
   this process.  Reported: the rate the publisher achieved, the rate at which readings reached the store
   (first publish to the last reading stored), the spool's peak depth, and whether every reading arrived.
2. CSV: one year of 15-minute readings for 500 meters (17.5 million rows, generated once and cached under
   bench/out/) imported with FileImporter into a fresh embedded store.

    python -m bench.collect [--rate 10000] [--messages 200000] [--csv-meters 500] [--skip-csv] [--skip-mqtt]

Goals (issue 3): keep up with 10 000 messages/s on this 2-core machine; CSV import of 17.5 million rows in under
2 minutes.  The broker needs `max_inflight_messages` above the default 20 for a collector that acknowledges
only after spooling (docs/bracelets.md); this benchmark sets 20 000.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench import OUT, machine_info, print_machine

TZ = "Asia/Shanghai"
T0 = pd.Timestamp("2026-01-05 08:00", tz=TZ)


def _publisher(port: int, devices: list[str], n: int, rate: float, ready, done) -> None:
    """Publish n messages round-robin over devices at `rate` per second (QoS 1); report the achieved rate."""
    from bench.mqtt_load import RawPublisher, bracelet_packets

    packets = bracelet_packets(devices, n, T0.isoformat())
    pub = RawPublisher(port)
    ready.set()
    seconds = pub.publish_paced(packets, rate)
    pub.close()
    done.put({"published": n, "seconds": seconds, "acked": pub.acked})


def bench_mqtt(rate: float, n: int, n_devices: int = 1000) -> dict:
    from collectors.pipeline import Pipeline
    from collectors.sources.mqtt import MqttSettings, MqttSource
    from collectors.spool import Spool
    from collectors.writer import Writer
    from park.model import SeriesCatalog, SeriesInfo
    from park.store.embedded import EmbeddedStore
    from tests.support.mosquitto import MosquittoServer

    devices = [f"D{i:05d}" for i in range(n_devices)]
    catalog = SeriesCatalog([SeriesInfo(d, "device", f"E{i // 10:03d}", None, None, "A", 60)
                             for i, d in enumerate(devices)])
    broker = MosquittoServer(extra_config="max_inflight_messages 0\nmax_queued_messages 0\n").start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    store = EmbeddedStore(tmp / "ts.duckdb", catalog, TZ)
    spool = Spool(tmp / "spool.db")
    pipeline = Pipeline(catalog, spool, clock=lambda: pd.Timestamp("2030-01-01", tz="UTC"))
    writer = Writer(spool, store, batch_size=50_000, min_rows=20_000, max_wait_s=5.0)
    stop = threading.Event()
    peak = [0]

    def drain():
        while not stop.is_set():
            peak[0] = max(peak[0], spool.stats().queued)
            writer.drain_if_due()
            stop.wait(0.5)

    source = MqttSource(pipeline, MqttSettings(port=broker.port, client_id="bench-collector", batch_size=5000,
                                               topic="parkcarbon/+/bracelet/+/telemetry")).start()
    try:
        assert source.wait_ready(30), "collector did not subscribe"
        drainer = threading.Thread(target=drain, daemon=True)
        drainer.start()
        ctx = mp.get_context("spawn")
        ready, done = ctx.Event(), ctx.Queue()
        pub = ctx.Process(target=_publisher, args=(broker.port, devices, n, rate, ready, done))
        pub.start()
        ready.wait(120)
        t0 = time.perf_counter()
        result = done.get(timeout=600)
        stored = 0
        deadline = time.perf_counter() + 300
        while time.perf_counter() < deadline:
            stored = int(store._cur.execute("SELECT count(*) FROM points").fetchone()[0])
            if stored >= n:
                break
            time.sleep(1.0)
        elapsed = time.perf_counter() - t0
        pub.join(30)
    finally:
        stop.set()
        source.stop()
        broker.cleanup()
        store.close()
        spool.close()
    return {"offered_per_s": rate, "messages": n, "published_per_s": n / result["seconds"],
            "stored": stored, "end_to_end_per_s": stored / elapsed, "seconds": elapsed,
            "spool_peak": peak[0], "complete": stored == n, "quarantined": 0}


def bench_csv(n_meters: int, days: int = 365) -> dict:
    from collectors.pipeline import Pipeline
    from collectors.sources.files import FileImporter
    from collectors.spool import Spool
    from park.model import SeriesCatalog, SeriesInfo
    from park.store.embedded import EmbeddedStore

    OUT.mkdir(exist_ok=True)
    path = OUT / f"collect_{n_meters}m_{days}d.csv"
    meters = [f"M{i:04d}" for i in range(n_meters)]
    n_t = days * 96
    if not path.exists():
        t = time.perf_counter()
        ts = pd.date_range("2025-01-01", periods=n_t, freq="15min").strftime("%Y-%m-%d %H:%M").to_numpy()
        rng = np.random.default_rng(1)
        with path.open("w") as f:
            f.write("ts,meter,value\n")
            for m in meters:
                vals = np.char.mod("%.2f", rng.gamma(2.0, 10.0, n_t))
                f.write("\n".join(np.char.add(np.char.add(np.char.add(ts, ","), m + ","), vals)) + "\n")
        print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s")
    catalog = SeriesCatalog([SeriesInfo(m, "meter", f"E{i // 10:03d}", None, "electricity", "kWh")
                             for i, m in enumerate(meters)])
    tmp = Path(tempfile.mkdtemp(prefix="bench-csv-"))
    store = EmbeddedStore(tmp / "ts.duckdb", catalog, TZ)
    spool = Spool(tmp / "spool.db")
    importer = FileImporter(Pipeline(catalog, spool, clock=lambda: pd.Timestamp("2030-01-01", tz="UTC")), store, TZ)
    t = time.perf_counter()
    report = importer.import_file(path, chunk_rows=1_000_000)
    seconds = time.perf_counter() - t
    store.close()
    spool.close()
    return {"rows": report.rows, "accepted": report.accepted, "rejected": report.rejected, "seconds": seconds,
            "rows_per_s": report.rows / seconds, "file_mb": path.stat().st_size / 1e6}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--csv-meters", type=int, default=500)
    ap.add_argument("--skip-csv", action="store_true")
    ap.add_argument("--skip-mqtt", action="store_true")
    args = ap.parse_args()
    info = machine_info()
    print_machine(info)
    out = {"machine": info}
    if not args.skip_mqtt:
        out["mqtt"] = r = bench_mqtt(args.rate, args.messages)
        print(f"MQTT: offered {r['offered_per_s']:,.0f}/s, published {r['published_per_s']:,.0f}/s, stored "
              f"{r['stored']:,}/{r['messages']:,} at {r['end_to_end_per_s']:,.0f} readings/s end to end "
              f"(spool peak {r['spool_peak']:,}); goal 10,000/s: "
              f"{'met' if r['end_to_end_per_s'] >= 10_000 else 'MISSED'}")
    if not args.skip_csv:
        out["csv"] = c = bench_csv(args.csv_meters)
        print(f"CSV: {c['rows']:,} rows ({c['file_mb']:.0f} MB) in {c['seconds']:.1f} s = "
              f"{c['rows_per_s']:,.0f} rows/s; goal < 120 s: {'met' if c['seconds'] < 120 else 'MISSED'}")
    OUT.mkdir(exist_ok=True)
    (OUT / "collect.json").write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
