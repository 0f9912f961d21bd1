"""Simulated equipment-bracelet telemetry for a park's devices, published to an MQTT broker (the demo, tests).

Each machine follows the shift calendar: off outside the planned shifts, and within them cycles of running
(1.3-2.2 x its run threshold) and idling (between its thresholds).  Faults for the demo to show: a failing
bracelet that goes silent at a given time, and bracelets with a low battery (below 20 %, draining).  The same seed
gives the same telemetry.  Run ``python -m collectors.simulator.bracelets --help``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pandas as pd
from apscheduler.schedulers.blocking import BlockingScheduler
from paho.mqtt.enums import CallbackAPIVersion

from collectors.bracelet import DEFAULT_CALENDAR, ShiftCalendar
from collectors.converters.bracelet import topic_for
from park.model import Device
from park.parkfile import DEMO_PARK_FILE, load_park_file

log = logging.getLogger(__name__)
LOW_BATTERY_FROM, LOW_BATTERY_TO = 19.0, 5.0  # % at the start and at the end of the simulated period


@dataclass
class _Machine:
    """One device's simulated state."""

    device: Device
    rng: random.Random
    battery_pct: float
    battery_per_s: float  # drain
    rssi_dbm: float
    running: bool = False
    phase_end: datetime | None = None

    def current_a(self, ts: datetime, planned: bool) -> float:
        d = self.device
        if not planned:
            self.phase_end = None
            return round(self.rng.uniform(0.0, 0.3) * d.idle_current_a, 2)  # standby, below the idle threshold
        if self.phase_end is None or ts >= self.phase_end:
            self.running = not self.running if self.phase_end is not None else self.rng.random() < 0.7
            minutes = self.rng.uniform(20, 50) if self.running else self.rng.uniform(5, 15)
            self.phase_end = ts + timedelta(minutes=minutes)
        if self.running:
            return round(d.run_current_a * self.rng.uniform(1.3, 2.2), 2)
        return round(d.idle_current_a + (d.run_current_a - d.idle_current_a) * self.rng.uniform(0.2, 0.6), 2)


def telemetry(devices: Sequence[Device], start: datetime, end: datetime | None = None,
              calendar: ShiftCalendar = DEFAULT_CALENDAR, seed: int = 1, failing: Mapping[str, datetime] | None = None,
              low_battery: Collection[str] = ()) -> Iterator[dict]:
    """Telemetry payloads (docs/bracelets.md) of every device in time order, one per device interval, from
    `start` to `end` (endless when None).  A device in `failing` is silent from that time on."""
    failing = failing or {}
    span_s = (pd.Timestamp(end) - pd.Timestamp(start)).total_seconds() if end is not None else 7 * 86400.0
    machines = []
    for d in devices:
        rng = random.Random(f"{seed}:{d.id}")
        if d.id in low_battery:
            battery, drain = LOW_BATTERY_FROM, (LOW_BATTERY_FROM - LOW_BATTERY_TO) / span_s
        else:
            battery, drain = rng.uniform(70, 100), rng.uniform(1, 3) / 86400
        machines.append(_Machine(d, rng, battery, drain, rng.uniform(-95, -60)))
    tz = ZoneInfo(calendar.timezone)
    t0 = pd.Timestamp(start).tz_convert(tz).to_pydatetime()
    due = {m.device.id: t0 for m in machines}
    steps = {d.id: timedelta(seconds=d.interval_s) for d in devices}
    day, shifts = None, []
    while True:
        now = min(due.values())
        if end is not None and now >= end:
            return
        if now.date() != day:  # the planned shifts of each park-local day, looked up once
            day = now.date()
            midnight = datetime.combine(day, time(0), tz)
            shifts = [(a.to_pydatetime(), b.to_pydatetime())
                      for a, b in calendar.planned(midnight, midnight + timedelta(days=1))]
        planned = any(a <= now < b for a, b in shifts)
        for m in machines:
            d = m.device
            if due[d.id] != now:
                continue
            due[d.id] = now + steps[d.id]
            if d.id in failing and now >= failing[d.id]:
                continue
            elapsed_s = (now - t0).total_seconds()
            yield {"device": d.id, "ts": now.isoformat(), "current_a": m.current_a(now, planned),
                   "voltage_v": round(d.rated_voltage_v * m.rng.uniform(0.97, 1.03), 1),
                   "battery_pct": round(max(m.battery_pct - m.battery_per_s * elapsed_s, 0.0), 1),
                   "rssi_dbm": round(m.rssi_dbm + m.rng.uniform(-3, 3))}


def publish(client: mqtt.Client, park: str, payloads: Iterable[dict], batch: int = 1, timeout_s: float = 30.0) -> int:
    """Publish payloads with QoS 1, `batch` readings of a device per message (an array when > 1), and wait
    until the broker acknowledged every message.  Returns the number of readings published."""
    pending: dict[str, list[dict]] = {}
    infos: list[mqtt.MQTTMessageInfo] = []
    n = 0

    def send(device: str, items: list[dict]) -> None:
        body = items[0] if batch == 1 else items
        infos.append(client.publish(topic_for(park, device), json.dumps(body, ensure_ascii=False), qos=1))

    for p in payloads:
        n += 1
        items = pending.setdefault(p["device"], [])
        items.append(p)
        if len(items) >= batch:
            send(p["device"], pending.pop(p["device"]))
    for device, items in pending.items():
        send(device, items)
    for info in infos:
        info.wait_for_publish(timeout_s)
    return n


class _Stream:
    """An endless telemetry iterator handed out piece by piece, up to a time."""

    def __init__(self, items: Iterator[dict]) -> None:
        self._items = items
        self._next = next(items, None)

    def until(self, t: datetime) -> Iterator[dict]:
        while self._next is not None and datetime.fromisoformat(self._next["ts"]) <= t:
            yield self._next
            self._next = next(self._items, None)


def demo_faults(devices: Sequence[Device], start: datetime, end: datetime) -> tuple[dict[str, datetime], set[str]]:
    """The demo's faults: the last device goes silent two thirds into the period; the first has a low battery."""
    if len(devices) < 2:
        return {}, set()
    silent_from = pd.Timestamp(start) + (pd.Timestamp(end) - pd.Timestamp(start)) * 2 / 3
    return {devices[-1].id: silent_from}, {devices[0].id}


def main(argv: Sequence[str] | None = None) -> int:
    """Backfill the last hours of telemetry for a park's devices, then optionally keep publishing live.
    Returns the number of readings backfilled."""
    ap = argparse.ArgumentParser(prog="python -m collectors.simulator.bracelets", description=__doc__.split("\n")[0])
    ap.add_argument("--park", default=str(DEMO_PARK_FILE), help="park file (default: the demo park)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=1883)
    ap.add_argument("--hours", type=float, default=24.0, help="hours of history to publish first")
    ap.add_argument("--batch", type=int, default=60, help="readings per message while backfilling")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--live", action="store_true", help="then publish each reading when it is due")
    ap.add_argument("--no-faults", action="store_true", help="no silent device and no low battery")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    park = load_park_file(args.park)
    devices = list(park.devices)
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=args.hours)
    failing, low = ({}, set()) if args.no_faults else demo_faults(devices, start, now)
    stream = _Stream(telemetry(devices, start, None, seed=args.seed, failing=failing, low_battery=low))
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"parkcarbon-simulator-{park.id}")
    client.connect(args.host, args.port)
    client.loop_start()
    n = publish(client, park.id, stream.until(now), args.batch)
    log.info("published %d readings of %d devices (%s h) to %s:%s", n, len(devices), args.hours, args.host, args.port)
    if args.live:
        scheduler = BlockingScheduler()
        scheduler.add_job(lambda: publish(client, park.id, stream.until(datetime.now(UTC))), "interval",
                          seconds=min(d.interval_s for d in devices), max_instances=1, coalesce=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the simulation
            scheduler.start()
    client.disconnect()
    client.loop_stop()
    return n


if __name__ == "__main__":
    main()
