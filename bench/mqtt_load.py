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
            "published_after_s": published_at, "all_spooled_after_s": spooled_at}


def main(argv: list[str] | None = None) -> dict:
    from bench import OUT, machine_info, print_machine

    ap = argparse.ArgumentParser(prog="python -m bench.mqtt_load", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=10_000)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--receivers", type=int, default=2, help="receiver processes (0: one in-process receiver)")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=OUT / "mqtt_load.json")
    args = ap.parse_args(argv)
    info = machine_info()
    print_machine(info)
    res = bench(args.rate, args.messages, args.receivers, args.devices)
    print(f"offered {res['offered_per_s']:,.0f}/s, published {res['published_per_s']:,.0f}/s; stored "
          f"{res['stored']:,} of {res['messages']:,} ({res['lost']:,} lost) in {res['seconds']:.1f} s: "
          f"{res['end_to_end_per_s']:,.0f} readings/s end to end with {res['receivers']} receiver(s); per receiver "
          f"{res['readings_per_receiver']}")
    print(f"timeline: all published after {res['published_after_s']:.1f} s, all received and spooled after "
          f"{res['all_spooled_after_s'] or float('nan'):.1f} s, all stored after {res['seconds']:.1f} s")
    goal = res["complete"] and res["end_to_end_per_s"] >= 0.95 * args.rate
    print(f"goal: {args.rate:,.0f} readings/s stored, none lost -> {'met' if goal else 'MISSED'}")
    result = {"benchmark": "mqtt_load", "machine": info, "result": res, "goal_met": goal}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return result


if __name__ == "__main__":
    main()
