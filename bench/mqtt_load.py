"""A minimal MQTT 3.1.1 QoS 1 load generator on a raw socket, and the end-to-end bracelet benchmark built on it.

paho-mqtt's threaded publisher tops out near 1 000 messages/s here (one wake-up of its network loop per
publish), far below the 10 000/s the collector must be shown to keep up with; this one pre-encodes the PUBLISH
packets and writes them in paced slices, counting the broker's PUBACKs on a reader thread.

    python -m bench.mqtt_load [--rate 10000] [--messages 200000] [--receivers 2] [--devices 1000]

runs the collector service (`CollectorService`, `[collect.mqtt] receivers = N`: N receiver processes on a shared
subscription, a spool each, one writer into an embedded store) against a real Mosquitto, offers the messages at
`--rate` from a separate publisher process, and counts what reached the store: readings/s end to end (first
publish to last reading stored), lost (published minus stored), and doubled (must be none: the store keeps one
value per device and time, so a redelivered message cannot add a point; stored points are counted distinct).
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

    def publish_paced(self, packets: list[bytes], rate: float, slice_s: float = 0.01, max_unacked: int = 30_000
                      ) -> float:
        """Send the packets at `rate` per second; return the seconds until the last PUBACK."""
        started = time.perf_counter()
        per_slice = max(1, int(rate * slice_s))
        for i in range(0, len(packets), per_slice):
            while i - self.acked > max_unacked:
                time.sleep(0.001)
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.sock.sendall(b"".join(packets[i:i + per_slice]))
        while self.acked < len(packets) and time.perf_counter() - started < 600:
            time.sleep(0.005)
        return time.perf_counter() - started

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
    packets = []
    for i in range(n):
        dev = devices[i % len(devices)]
        ts = (t0 + pd.Timedelta(seconds=i // len(devices))).isoformat()
        body = json.dumps({"device": dev, "ts": ts, "current_a": round(5 + (i % 97) * 0.25, 2)}).encode()
        packets.append(publish_packet(f"parkcarbon/bench/bracelet/{dev}/telemetry", body, i % 65535 + 1))
    return packets


def _publish(port: int, devices: list[str], n: int, rate: float, ready, done) -> None:
    """Publisher process: n messages round-robin over the devices (one reading each, a second apart per device)."""
    packets = bracelet_packets(devices, n)
    pub = RawPublisher(port)
    ready.set()
    seconds = pub.publish_paced(packets, rate)
    pub.close()
    done.put({"seconds": seconds, "acked": pub.acked})


def _proc_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (0 when it is gone)."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(rate: float, n: int, receivers: int, n_devices: int) -> dict:
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
                       "topic": "parkcarbon/+/bracelet/+/telemetry", "receivers": receivers},
              "writer_min_rows": 20_000, "writer_max_wait_s": 2.0}
    service = CollectorService(park, store, tmp / "spool.db", config, writer_interval_s=0.5).start()
    stored = 0
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
        ready, done = ctx.Event(), ctx.Queue()
        pub = ctx.Process(target=_publish, args=(broker.port, devices, n, rate, ready, done))
        pub.start()
        ready.wait(300)
        import os

        pids = {"receivers": [p.pid for p in service.receivers], "broker": [broker.proc.pid],
                "publisher": [pub.pid], "collector (writer; also this benchmark's polling)": [os.getpid()]}
        cpu0 = {k: sum(_proc_cpu_s(p) for p in v) for k, v in pids.items()}
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        published = done.get(timeout=900)
        published_at = time.perf_counter() - t0
        last_change, last, spooled_at = time.perf_counter(), -1, None
        while time.perf_counter() - last_change < 60:  # until all arrived, or nothing new for a minute
            stored = int(store._cur.execute("SELECT count(*) FROM (SELECT DISTINCT series, ts FROM points "
                                            "WHERE measurement = 'current')").fetchone()[0])
            spooled = sum(s["readings"] for s in read_states(tmp) if s["kind"] == "mqtt")
            if spooled_at is None and spooled >= n:
                spooled_at = time.perf_counter() - t0  # every reading received and spooled (within 2 s)
            if stored != last:
                last, last_change = stored, time.perf_counter()
            if stored >= n:
                break
            time.sleep(0.5)
        elapsed = time.perf_counter() - t0
        cpu_us = {k: round(1e6 * (sum(_proc_cpu_s(p) for p in v) - cpu0[k]) / n, 1) for k, v in pids.items()}
        load1 = os.getloadavg()[0]
        pub.join(30)
        per_receiver = {s["source"]: s["readings"] for s in read_states(tmp) if s["kind"] == "mqtt"}
    finally:
        service.stop()
        broker.cleanup()
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"offered_per_s": rate, "messages": n, "receivers": receivers,
            "published_per_s": n / published["seconds"], "acked": published["acked"], "stored": stored,
            "lost": n - stored, "end_to_end_per_s": stored / elapsed, "seconds": elapsed,
            "readings_per_receiver": per_receiver, "complete": stored == n,
            "published_after_s": published_at, "all_spooled_after_s": spooled_at,
            "cpu_us_per_message": cpu_us, "load_1min_start_end": [round(load0, 2), round(load1, 2)]}


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
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--receivers", type=int, default=2, help="receiver processes (0: one in-process receiver)")
    ap.add_argument("--devices", type=int, default=1000)
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
    res = bench(args.rate, args.messages, args.receivers, args.devices)
    print(f"offered {res['offered_per_s']:,.0f}/s, published {res['published_per_s']:,.0f}/s; stored "
          f"{res['stored']:,} of {res['messages']:,} ({res['lost']:,} lost) in {res['seconds']:.1f} s: "
          f"{res['end_to_end_per_s']:,.0f} readings/s end to end with {res['receivers']} receiver(s); per receiver "
          f"{res['readings_per_receiver']}")
    print(f"timeline: all published after {res['published_after_s']:.1f} s, all received and spooled after "
          f"{res['all_spooled_after_s'] or float('nan'):.1f} s, all stored after {res['seconds']:.1f} s")
    print(f"CPU per message by process (us, /proc): {res['cpu_us_per_message']}; load average (1 min) at start / end "
          f"{res['load_1min_start_end']}")
    goal = res["complete"] and res["end_to_end_per_s"] >= 0.95 * args.rate
    print(f"goal: {args.rate:,.0f} readings/s stored, none lost -> {'met' if goal else 'MISSED'}")
    result = {"benchmark": "mqtt_load", "machine": info, "result": res, "goal_met": goal}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    main()
