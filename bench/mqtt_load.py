"""A minimal MQTT 3.1.1 QoS 1 load generator on a raw socket, and the end-to-end bracelet benchmark built on it.

paho-mqtt's threaded publisher tops out near 1 000 messages/s here (one wake-up of its network loop per
publish), far below the 10 000/s the collector must be shown to keep up with; this one pre-encodes the PUBLISH
packets and writes them in paced slices, counting the broker's PUBACKs on a reader thread.

    python -m bench.mqtt_load [--rate 10000] [--messages 400000] [--receivers 2] [--devices 1000]

runs the collector service (`CollectorService`, `[collect.mqtt] receivers = N`: N receiver processes on a shared
subscription, a spool each, one writer into an embedded store) against a real Mosquitto, offers the messages at
`--rate` from a separate publisher process, and counts what reached the store: lost (published minus stored,
counted distinct at the end) and doubled (stored rows minus distinct (device, time): must be none).

Throughput is judged in steady state, not from "first publish to last stored" alone (with a fixed number of
messages any latency at all puts that figure below the offered rate; it is still reported as end_to_end_per_s).
During the run the benchmark samples, every 0.1 s and without querying the store, the messages the broker has
acknowledged to the publisher (shared counters) and the readings stored (each writer's drains are timed and
counted as they return), and reports:

- the steady-state stored rate over the publishing window after its first quarter (25-100 %): per writer, the
  least-squares slope of its cumulative stored count at the end of each of its drains in that window, summed
  over the writers (a writer stores in batches, so the stored count is a staircase; fitted through its corners
  the rate does not depend on where the window cuts a step), against the published rate over the same window.
  Its scatter comes from the drains' varying length (about +-1 % between identical runs with 20 000-row batches
  every 4 s): quote the median of several runs.  Beside it, for diagnosis, the same fit at the drains' starts
  (a drain stores all that waited when it began, so this is the rate the writer takes readings in, steadier)
  and each writer's trend of drain length (lengthening drains: a writer falling behind);
- the backlog (published minus stored) over time, its maximum, at the last publish and at the end, and whether
  it stayed bounded: its peak over the second half of that window at most 1.25 x its peak over the first half
  (batching makes it a sawtooth whose peaks repeat while the writer keeps up; a writer 10 % short adds 1 000
  readings/s to them at 10 000/s; finer shortfalls are the rate's to catch), its trend for the reader;
- the writer's busy fraction over that window (its drains run one after another in one thread): headroom;
- the tail: seconds from the last PUBACK to the last reading stored.

goal_met: none lost, none doubled, the publisher kept >= 99 % of the offered rate, the steady-state stored rate
>= 99 % of the published rate, and the backlog bounded.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import socket
import struct
import tempfile
import threading
import time
from pathlib import Path


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def connect_packet(client_id: str, keepalive: int = 60) -> bytes:
    body = _string("MQTT") + bytes([4, 0x02]) + struct.pack("!H", keepalive) + _string(client_id)
    return bytes([0x10]) + _remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    body = _string(topic) + struct.pack("!H", packet_id) + payload
    return bytes([0x32]) + _remaining_length(len(body)) + body  # PUBLISH, QoS 1


class RawPublisher:
    def __init__(self, port: int, client_id: str = "bench-load", host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id))
        ack = self.sock.recv(4)
        if len(ack) < 4 or ack[0] != 0x20 or ack[3] != 0:
            raise ConnectionError(f"broker refused the connection: {ack!r}")
        self.acked = 0
        self.started = self.last_sent = self.all_acked = None  # time.monotonic() (one clock for every process)
        self._stop = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while not self._stop:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            n = len(buf) // 4  # PUBACK: 0x40 0x02 id id
            self.acked += n
            buf = buf[n * 4:]

    def publish_paced(self, packets: list[bytes], rate: float, slice_s: float = 0.01, max_unacked: int = 30_000,
                      progress=None) -> float:
        """Send the packets at `rate` per second; return the seconds until the last PUBACK.  `progress`: a shared
        counter (multiprocessing Value) kept at the number of PUBACKs received, for a sampler elsewhere."""
        started = self.started = time.monotonic()
        per_slice = max(1, int(rate * slice_s))
        for i in range(0, len(packets), per_slice):
            while i - self.acked > max_unacked:
                time.sleep(0.001)
            due = started + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.sock.sendall(b"".join(packets[i:i + per_slice]))
            if progress is not None:
                progress.value = self.acked
        self.last_sent = time.monotonic()
        while self.acked < len(packets) and time.monotonic() - started < 600:
            if progress is not None:
                progress.value = self.acked
            time.sleep(0.005)
        self.all_acked = time.monotonic()
        if progress is not None:
            progress.value = self.acked
        return self.all_acked - started

    def close(self) -> None:
        self._stop = True
        try:
            self.sock.sendall(bytes([0xE0, 0]))  # DISCONNECT
        finally:
            self.sock.close()


TZ = "Asia/Shanghai"
T0_ISO = "2026-01-05T08:00:00+08:00"


def bracelet_packets(devices: list[str], n: int, t0_iso: str = T0_ISO) -> list[bytes]:
    """n QoS 1 PUBLISH packets of bracelet telemetry, round-robin over the devices (one reading each, a second
    apart per device); bench.collect's MQTT run publishes the same."""
    import pandas as pd

    t0 = pd.Timestamp(t0_iso)
    stamps = [(t0 + pd.Timedelta(seconds=s)).isoformat() for s in range(n // len(devices) + 1)]  # one per second
    packets = []
    for i in range(n):
        dev = devices[i % len(devices)]
        ts = stamps[i // len(devices)]
        body = json.dumps({"device": dev, "ts": ts, "current_a": round(5 + (i % 97) * 0.25, 2)}).encode()
        packets.append(publish_packet(f"parkcarbon/bench/bracelet/{dev}/telemetry", body, i % 65535 + 1))
    return packets


def _publish(port: int, devices: list[str], n: int, rate: float, ready, done, progress=None) -> None:
    """Publisher process: n messages round-robin over the devices (one reading each, a second apart per device)."""
    packets = bracelet_packets(devices, n)
    pub = RawPublisher(port)
    ready.set()
    seconds = pub.publish_paced(packets, rate, progress=progress)
    pub.close()
    done.put({"seconds": seconds, "acked": pub.acked, "started": pub.started, "last_sent": pub.last_sent,
              "all_acked": pub.all_acked})


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (0 when it is gone)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _time_drains(writers: list) -> list[tuple[int, float, float, int]]:
    """Wrap each writer's `drain` so every drain that stored rows is recorded as (writer index, start, end,
    readings stored), times from time.monotonic(): the stored count over time, without querying the store."""
    events: list[tuple[int, float, float, int]] = []
    for index, writer in enumerate(writers):
        def timed(*args, _drain=writer.drain, _index=index, **kwargs):
            start = time.monotonic()
            result = _drain(*args, **kwargs)
            if result.written:
                events.append((_index, start, time.monotonic(), result.written))  # list.append: thread-safe
            return result

        writer.drain = timed
    return events


def _slope(t, y) -> float | None:
    """Least-squares slope of y over t (None with fewer than two distinct times)."""
    import numpy as np

    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    if len(t) < 2 or np.ptp(t) == 0:
        return None
    return float(np.polyfit(t - t.mean(), y, 1)[0])


def analyse(samples: list[tuple[float, int, int]], drains: list[tuple[int, float, float, int]], started: float,
            published_at: float, n: int, window: tuple[float, float] = (0.25, 1.0)) -> dict:
    """Steady-state rates, backlog and tail from a run's samples: `samples` (time, published, stored) every
    0.1 s, `drains` as `_time_drains` records them, `started` the first publish and `published_at` the last
    PUBACK (all time.monotonic()).  See the module docstring for the definitions."""
    import numpy as np

    span = published_at - started
    w0, w1 = started + window[0] * span, started + window[1] * span
    t = np.array([s[0] for s in samples])
    published = np.array([s[1] for s in samples], dtype=float)
    stored = np.array([s[2] for s in samples], dtype=float)
    inside = (t >= w0) & (t <= w1)
    published_rate = _slope(t[inside], published[inside])
    rates: dict[int, float | None] = {}
    taken: dict[int, float | None] = {}
    lag_trends: dict[int, float | None] = {}
    for index in sorted({d[0] for d in drains}):
        mine = [d for d in drains if d[0] == index]
        cumulative = np.cumsum([d[3] for d in mine])
        starts, ends = np.array([d[1] for d in mine]), np.array([d[2] for d in mine])
        corners = (ends >= w0) & (ends <= w1)
        rates[index] = _slope(ends[corners], cumulative[corners])  # None unless two drains ended in the window
        # a drain stores what waited when it began: fitted at the starts, the rate the writer takes readings in
        # (less scattered by the drains' varying length); equal to the stored rate while drains do not lengthen
        taken[index] = _slope(starts[corners], cumulative[corners])
        lag_trends[index] = _slope(starts[corners], (ends - starts)[corners])
    stored_rate = None if not rates or None in rates.values() else sum(rates.values())
    taken_rate = None if not taken or None in taken.values() else sum(taken.values())
    backlog = published - stored
    mid = (w0 + published_at) / 2
    early = backlog[(t >= w0) & (t < mid)]
    late = backlog[(t >= mid) & (t <= published_at)]
    peak_early = float(early.max()) if len(early) else None
    peak_late = float(late.max()) if len(late) else None
    trend = _slope(t[inside], backlog[inside])
    bounded = peak_early is not None and peak_late is not None and peak_late <= 1.25 * peak_early
    total, last_stored = 0, None
    for d in sorted(drains, key=lambda d: d[2]):
        total += d[3]
        if total >= n:
            last_stored = d[2]
            break
    timeline = [[round(float(tt - started), 2), int(p), int(s), int(p - s)]
                for tt, p, s in zip(t[::5], published[::5], stored[::5], strict=True)]  # every 0.5 s
    return {
        "window_s": [round(w0 - started, 2), round(w1 - started, 2)],
        "published_per_s_steady": published_rate,
        "stored_per_s_steady": stored_rate,
        "stored_per_s_steady_per_writer": {str(k): v for k, v in rates.items()},
        "stored_per_s_steady_samples": _slope(t[inside], stored[inside]),  # the staircase fitted: a cross-check
        "taken_per_s_steady": taken_rate,
        "drain_seconds_trend_per_writer": {str(k): v for k, v in lag_trends.items()},  # s per s: > 0 lengthening
        "stored_to_published_steady": (stored_rate / published_rate) if stored_rate and published_rate else None,
        # the writer thread's share of the window spent draining (its drains run one after another): headroom
        "writer_busy_fraction": sum(max(0.0, min(d[2], w1) - max(d[1], w0)) for d in drains) / (w1 - w0),
        "backlog_max": int(backlog.max()) if len(backlog) else None,
        "backlog_at_last_publish": int(np.interp(published_at, t, backlog)) if len(t) else None,
        "backlog_at_end": int(backlog[-1]) if len(backlog) else None,
        "backlog_peak_first_half": peak_early, "backlog_peak_second_half": peak_late, "backlog_bounded": bounded,
        "backlog_trend_per_s": trend,
        "last_stored_after_s": None if last_stored is None else last_stored - started,
        "tail_s": None if last_stored is None else last_stored - published_at,
        "end_to_end_per_s": None if last_stored is None else n / (last_stored - started),
        "timeline_s_published_stored_backlog": timeline,
        "drains_writer_start_s_end_s_rows": [[d[0], round(d[1] - started, 2), round(d[2] - started, 2), d[3]]
                                             for d in drains],
    }


def bench(rate: float, n: int, receivers: int, n_devices: int, writer_interval_s: float | None = None) -> dict:
    import os

    from collectors.service import CollectorService
    from collectors.status import read_states
    from park.model import Device, Enterprise, Park
    from park.store.embedded import EmbeddedStore
    from tests.support.mosquitto import MosquittoServer

    devices = [f"D{i:05d}" for i in range(n_devices)]
    park = Park(id="bench", name="bench", enterprises=tuple(Enterprise(f"E{i:03d}", f"E{i:03d}")
                                                            for i in range(n_devices // 10 + 1)),
                devices=tuple(Device(d, f"E{i // 10:03d}") for i, d in enumerate(devices)))
    broker = MosquittoServer(extra_config="max_inflight_messages 0\nmax_queued_messages 0\n").start()
    tmp = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    store = EmbeddedStore(tmp / "ts.duckdb", park.catalog(), TZ)
    config = {"mqtt": {"port": broker.port, "client_id": "bench-collector", "batch_size": 5000,
                       "topic": "parkcarbon/+/bracelet/+/telemetry", "receivers": receivers}}
    # the writer as configured by default (20 000 rows or 5 s under a steady flow, its tick), unless told the tick
    tick = {} if writer_interval_s is None else {"writer_interval_s": writer_interval_s}
    service = CollectorService(park, store, tmp / "spool.db", config, **tick).start()
    drains = _time_drains([service.writer, *service.receiver_writers])  # the receivers' writers exist once started
    stored = rows = 0
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = [s for s in read_states(tmp) if s["kind"] == "mqtt"]
            if len(states) == max(receivers, 1) and all(s["state"] == "connected" for s in states):
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"the receivers did not connect: {read_states(tmp)}")
        ctx = mp.get_context("spawn")
        ready, done, progress = ctx.Event(), ctx.Queue(), ctx.Value("q", 0, lock=False)
        pub = ctx.Process(target=_publish, args=(broker.port, devices, n, rate, ready, done, progress))
        pub.start()
        ready.wait(300)
        pids = {"receivers": [p.pid for p in service.receivers], "broker": [broker.proc.pid],
                "publisher": [pub.pid], "collector (writer; also this benchmark's sampling)": [os.getpid()]}
        cpu0 = {k: sum(_proc_cpu_s(p) for p in v) for k, v in pids.items()}
        load0 = os.getloadavg()[0]
        samples: list[tuple[float, int, int]] = []
        published, spooled_at, total = None, None, 0
        last_change = time.monotonic()
        while True:  # every 0.1 s until all are stored, or nothing new for a minute after the last publish
            now = time.monotonic()
            total_now = sum(e[3] for e in list(drains))
            if total_now != total:
                total, last_change = total_now, now
            samples.append((now, progress.value, total))
            if published is None and not done.empty():
                published = done.get()
            if spooled_at is None and len(samples) % 5 == 0 and sum(
                    s["readings"] for s in read_states(tmp) if s["kind"] == "mqtt") >= n:
                spooled_at = now  # every reading received and spooled (status files: within 2 s)
            if published is not None and (total >= n or now - last_change > 60):
                break
            if now - last_change > 900:
                raise RuntimeError("nothing was stored for 15 minutes")
            time.sleep(0.1)
        cpu_us = {k: round(1e6 * (sum(_proc_cpu_s(p) for p in v) - cpu0[k]) / n, 1) for k, v in pids.items()}
        load1 = os.getloadavg()[0]
        pub.join(30)
        per_receiver = {s["source"]: s["readings"] for s in read_states(tmp) if s["kind"] == "mqtt"}
        # counted once, at the end: distinct (device, time) stored, and rows (more rows than that: doubled)
        stored, rows = (int(v) for v in store._cur.execute(
            "SELECT (SELECT count(*) FROM (SELECT DISTINCT series, ts FROM points WHERE measurement = 'current')), "
            "count(*) FROM points WHERE measurement = 'current'").fetchone())
        steady = analyse(samples, list(drains), published["started"], published["all_acked"], n)
    finally:
        service.stop()
        broker.cleanup()
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    started = published["started"]
    return {"offered_per_s": rate, "messages": n, "receivers": receivers,
            "writer": {"interval_s": service.writer_interval_s, "min_rows": service.writer.min_rows,
                       "max_wait_s": service.writer.max_wait_s, "quiet_s": getattr(service.writer, "quiet_s", None)},
            "published_per_s": n / published["seconds"], "acked": published["acked"], "stored": stored,
            "lost": n - stored, "doubled": rows - stored, "complete": stored == n,
            "readings_per_receiver": per_receiver,
            "last_sent_after_s": published["last_sent"] - started, "published_after_s": published["seconds"],
            "all_spooled_after_s": None if spooled_at is None else spooled_at - started,
            **steady,
            "cpu_us_per_message": cpu_us, "load_1min_start_end": [round(load0, 2), round(load1, 2)]}


def goal(res: dict, rate: float) -> dict:
    """The MQTT goal's conditions, each with its verdict (see the module docstring)."""
    stored_rate, published_rate = res["stored_per_s_steady"], res["published_per_s_steady"]
    checks = {"none_lost": res["lost"] == 0, "none_doubled": res["doubled"] == 0,
              "offered_rate_kept": published_rate is not None and published_rate >= 0.99 * rate,
              "steady_stored_ge_99pct_published": bool(stored_rate and published_rate
                                                       and stored_rate >= 0.99 * published_rate),
              "backlog_bounded": bool(res["backlog_bounded"])}
    return {**checks, "met": all(checks.values())}


# ---- CPU per message, per stage (--cpu) ------------------------------------------------------------------------
CPU_TOPIC = "parkcarbon/+/bracelet/+/telemetry"


def _bench_park(n_devices: int):
    from park.model import Device, Enterprise, Park

    devices = [f"D{i:05d}" for i in range(n_devices)]
    park = Park(id="bench", name="bench", enterprises=tuple(Enterprise(f"E{i:03d}", f"E{i:03d}")
                                                            for i in range(n_devices // 10 + 1)),
                devices=tuple(Device(d, f"E{i // 10:03d}") for i, d in enumerate(devices)))
    return park, devices


class _NullSink:
    """Accepts and forgets: what the source costs without the pipeline."""

    def submit(self, readings) -> None:
        pass

    def submit_payloads(self, batch) -> None:
        pass

    def reject(self, **kw) -> None:
        pass


def _cpu_child(port: int, n: int, n_devices: int, stage: str, workdir: str) -> None:
    """One measured receiver in its own process (run by `cpu_stages` with the code tree under test first on
    sys.path).  Prints READY once subscribed, then a JSON line: CPU seconds of this process while it received
    `n` messages (time.process_time, all threads), and for stage "full" also while its writer drained them."""
    import sys

    import collectors
    from collectors.sources.mqtt import MqttSettings, MqttSource

    park, _ = _bench_park(n_devices)
    work = Path(workdir)
    settings = MqttSettings(port=port, client_id=f"cpu-{stage}-{work.name}", topic=CPU_TOPIC, batch_size=5000)
    spool = store = None
    if stage == "null":
        sink = _NullSink()
    else:
        from collectors.pipeline import Pipeline
        from collectors.spool import Spool

        spool = Spool(work / "spool.db")
        sink = Pipeline(park.catalog(), spool)
    src = MqttSource(sink, settings).start()
    if not src.wait_ready(60):
        raise RuntimeError("the receiver did not connect")
    time.sleep(0.5)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    print("READY", flush=True)
    deadline = time.monotonic() + 600
    while src.stats.acked < n and time.monotonic() < deadline:
        time.sleep(0.01)
    cpu1, wall1 = time.process_time(), time.perf_counter()
    out = {"tree": str(Path(collectors.__file__).parent.parent), "stage": stage, "messages": n,
           "acked": src.stats.acked, "received": src.stats.received, "receiver_cpu_s": cpu1 - cpu0,
           "receiver_wall_s": wall1 - wall0}
    out.update({k: v for k, v in vars(src.stats).items() if k.startswith("cpu_")})
    src.stop()
    if spool is not None:
        from collectors.writer import Writer
        from park.store.embedded import EmbeddedStore

        out["spooled"] = spool.stats().queued
        store = EmbeddedStore(work / "ts.duckdb", park.catalog(), TZ)
        w0 = time.process_time()
        res = Writer(spool, store).drain()
        out["writer_cpu_s"] = time.process_time() - w0
        out["written"] = res.written
        store.close()
        spool.close()
    print(json.dumps(out), flush=True)
    sys.stdout.flush()


def _baseline_tree(rev: str) -> Path:
    """`collectors/` as it was at `rev` (git archive into a scratch folder), to measure old and new side by side
    on the same machine at the same time; everything else (park/, the store) is the current code."""
    import subprocess

    root = Path(tempfile.mkdtemp(prefix="bench-mqtt-base-"))
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(["git", "-C", str(repo), "archive", rev, "collectors"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root


def cpu_stages(n: int, rate: float, reps: int, baseline: str | None, n_devices: int = 1000) -> list[dict]:
    """CPU microseconds per message for each stage, per code tree, alternating trees so both see the same load:
    "null" = paho network loop + on_message + acknowledgement with a sink that does nothing; "full" = the real
    receiver (decode, validation, spool append) and then its writer draining the spool into an embedded store."""
    import os
    import subprocess
    import sys

    from tests.support.mosquitto import MosquittoServer

    repo = Path(__file__).resolve().parent.parent
    trees = ([("before", _baseline_tree(baseline))] if baseline else []) + [("after", repo)]
    broker = MosquittoServer(extra_config="max_inflight_messages 0\nmax_queued_messages 0\n").start()
    _, devices = _bench_park(n_devices)
    rows = []
    try:
        for rep in range(reps):
            for stage in ("null", "full"):
                for label, tree in trees:
                    work = Path(tempfile.mkdtemp(prefix=f"bench-mqtt-cpu-{label}-{stage}-{rep}-"))
                    code = (f"import sys; sys.path.insert(0, {str(tree)!r}); from bench.mqtt_load import _cpu_child; "
                            f"_cpu_child({broker.port}, {n}, {n_devices}, {stage!r}, {str(work)!r})")
                    env = dict(os.environ, PYTHONPATH=str(repo))
                    child = subprocess.Popen([sys.executable, "-c", code], cwd=str(repo), env=env,
                                             stdout=subprocess.PIPE, text=True)
                    assert child.stdout is not None
                    line = child.stdout.readline()
                    if line.strip() != "READY":
                        raise RuntimeError(f"{label} {stage}: the receiver did not start: {line!r}")
                    load = os.getloadavg()[0]
                    ctx = mp.get_context("spawn")
                    ready, done = ctx.Event(), ctx.Queue()
                    pub = ctx.Process(target=_publish, args=(broker.port, devices, n, rate, ready, done))
                    pub.start()
                    published = done.get(timeout=900)
                    pub.join(30)
                    res = json.loads(child.stdout.readline())
                    child.wait(120)
                    shutil.rmtree(work, ignore_errors=True)
                    res.update(label=label, rep=rep, load_1min=load, published_per_s=n / published["seconds"],
                               receiver_us_per_msg=1e6 * res["receiver_cpu_s"] / n)
                    if "writer_cpu_s" in res:
                        res["writer_us_per_msg"] = 1e6 * res["writer_cpu_s"] / n
                    print(f"  {label:6} {stage:4} rep {rep}: receiver {res['receiver_us_per_msg']:6.1f} us/msg"
                          + (f", writer {res['writer_us_per_msg']:5.1f} us/msg" if "writer_us_per_msg" in res else "")
                          + f" (load {load:.1f})", flush=True)
                    rows.append(res)
    finally:
        broker.cleanup()
        for label, tree in trees:
            if label == "before":
                shutil.rmtree(tree, ignore_errors=True)
    return rows


def summarise_cpu(rows: list[dict]) -> dict:
    """Median CPU µs per message per tree: the receiver with a null sink (paho network loop, on_message, decoding,
    acknowledgement), the pipeline's share (full - null: validation and the spool append), the whole receiver and
    the writer (spool read, store write, spool delete).  A tree that reports its flush thread's CPU per step
    (MqttStats.cpu_*) also gets the network thread (receiver - flush steps), decode, submit and acknowledgement."""
    import statistics

    def med(values) -> float | None:
        values = [v for v in values if v is not None]
        return statistics.median(values) if values else None

    out: dict[str, dict] = {}
    for label in dict.fromkeys(r["label"] for r in rows):
        mine = [r for r in rows if r["label"] == label]
        null = med(r["receiver_us_per_msg"] for r in mine if r["stage"] == "null")
        full = med(r["receiver_us_per_msg"] for r in mine if r["stage"] == "full")
        writer = med(r["writer_us_per_msg"] for r in mine if r["stage"] == "full")
        out[label] = {"receive_decode_ack_us": null, "validate_spool_us": full - null, "receiver_us": full,
                      "writer_us": writer, "total_us": full + writer,
                      "load_1min": [round(r["load_1min"], 1) for r in mine]}
        fulls = [r for r in mine if r["stage"] == "full" and "cpu_convert_s" in r]
        if fulls:
            steps = {name: med(1e6 * r[key] / r["messages"] for r in fulls) for name, key in
                     (("decode_us", "cpu_convert_s"), ("submit_us", "cpu_submit_s"), ("ack_us", "cpu_ack_s"))}
            steps["network_thread_us"] = full - sum(steps.values())
            out[label]["full_receiver_steps"] = steps
    return out


def main(argv: list[str] | None = None) -> dict:
    from bench import OUT, machine_info, print_machine

    ap = argparse.ArgumentParser(prog="python -m bench.mqtt_load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--messages", type=int, default=400_000, help="40 s at 10 000/s: a steady state to measure")
    ap.add_argument("--receivers", type=int, default=2, help="receiver processes (0: one in-process receiver)")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--writer-interval-s", type=float, help="the store writer's tick (default: the service's)")
    ap.add_argument("--out", type=Path, default=OUT / "mqtt_load.json")
    ap.add_argument("--cpu", action="store_true", help="measure CPU per message per stage instead (one receiver)")
    ap.add_argument("--baseline", help="with --cpu: also measure collectors/ as of this git revision, alternating")
    ap.add_argument("--reps", type=int, default=2, help="with --cpu: repetitions per tree and stage")
    args = ap.parse_args(argv)
    info = machine_info()
    print_machine(info)
    if args.cpu:
        rows = cpu_stages(args.messages, args.rate, args.reps, args.baseline, args.devices)
        summary = summarise_cpu(rows)
        print(f"CPU per message (median of {args.reps}), {args.messages:,} messages offered at {args.rate:,.0f}/s:")
        print(f"  {'tree':8}{'receive+decode+ack':>20}{'validate+spool':>16}{'receiver':>10}{'writer':>8}{'total':>8}"
              "  us/message")
        for label, s in summary.items():
            print(f"  {label:8}{s['receive_decode_ack_us']:20.1f}{s['validate_spool_us']:16.1f}{s['receiver_us']:10.1f}"
                  f"{s['writer_us']:8.1f}{s['total_us']:8.1f}   load {s['load_1min']}")
            if "full_receiver_steps" in s:
                print("  " + " " * 8 + ", ".join(f"{k} {v:.1f}" for k, v in s["full_receiver_steps"].items()))
        result = {"benchmark": "mqtt_load --cpu", "machine": info, "baseline": args.baseline, "runs": rows,
                  "summary": summary}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_name("mqtt_cpu.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        return result
    res = bench(args.rate, args.messages, args.receivers, args.devices, args.writer_interval_s)

    def num(v, fmt=",.0f"):
        return "n/a" if v is None else format(v, fmt)

    print(f"offered {res['offered_per_s']:,.0f}/s, published {res['published_per_s']:,.0f}/s with "
          f"{res['receivers']} receiver(s); stored {res['stored']:,} of {res['messages']:,} ({res['lost']:,} lost, "
          f"{res['doubled']:,} doubled); per receiver {res['readings_per_receiver']}")
    print(f"steady state ({res['window_s'][0]:.1f}-{res['window_s'][1]:.1f} s): published "
          f"{num(res['published_per_s_steady'])}/s, stored {num(res['stored_per_s_steady'])}/s "
          f"(ratio {num(res['stored_to_published_steady'], '.4f')}; per writer "
          f"{ {k: num(v) for k, v in res['stored_per_s_steady_per_writer'].items()} }); taken in at drain starts "
          f"{num(res['taken_per_s_steady'])}/s; writer busy {num(res['writer_busy_fraction'], '.0%')} of the time")
    print(f"backlog (published - stored): max {num(res['backlog_max'])}, peaks first / second half "
          f"{num(res['backlog_peak_first_half'])} / {num(res['backlog_peak_second_half'])} "
          f"({'bounded' if res['backlog_bounded'] else 'GROWING'}), at the last publish "
          f"{num(res['backlog_at_last_publish'])}, at the end {num(res['backlog_at_end'])}")
    print(f"timeline: all published after {res['published_after_s']:.2f} s, all received and spooled after "
          f"{num(res['all_spooled_after_s'], '.1f')} s, all stored after {num(res['last_stored_after_s'], '.2f')} s: "
          f"tail {num(res['tail_s'], '.2f')} s; end to end (first publish to last stored) "
          f"{num(res['end_to_end_per_s'])} readings/s")
    print(f"CPU per message by process (us, /proc): {res['cpu_us_per_message']}; load average (1 min) at start / end "
          f"{res['load_1min_start_end']}")
    verdict = goal(res, args.rate)
    print(f"goal: {args.rate:,.0f} messages/s offered, stored at that rate in steady state, none lost -> "
          f"{'met' if verdict['met'] else 'MISSED'} {verdict}")
    result = {"benchmark": "mqtt_load", "machine": info, "result": res, "goal": verdict, "goal_met": verdict["met"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result

if __name__ == "__main__":
    main()
