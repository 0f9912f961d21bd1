"""Modbus TCP electricity meters: poll each meter's registers on its own schedule and hand readings to a sink.

Each meter (park.model.Meter with `address` modbus://host:port/unit and `model` = a register map name or a
map file path) gets one APScheduler interval job (max_instances=1, coalesce) and its own TCP connection, so a
slow or dead meter only ever holds its own job: every request has a timeout and pymodbus' own retries are off.
A failed poll becomes a rejection with rule code `register.read_error` (meter, address, error) and pushes the
meter's next poll back exponentially (2x, 4x, 8x ... the interval, capped at `max_backoff_s`); the first good
poll puts it back on its normal cadence.

A good poll gives the total-energy register as a cumulative reading (the pipeline turns register readings into
interval energy, reset- and rollover-safe) and active power as a level in kW; voltages, currents, power factor
and frequency ride along in the energy reading's `extra`.  Readings are handed to the sink in one batch every
`batch_s` seconds (the pipeline's cost is per call), rejections at once.

An energy register that stays flat while the meter draws power is the symptom of a map reading the wrong
address (a CHINT DTSU666 of the 0x401E kind read at 0x101E shows 0 kWh for ever).  `EnergyFlatCheck` watches
each meter: energy readings that are flat while active power is above a floor are held back; if the register
moves again they go on to the pipeline in order, but once the flat span reaches the window (15 min and 3 polls
by default) with the energy the power implies well above the register's resolution, the held readings and every
flat one after them are rejected with rule code `register.energy_flat` and a warning naming the likely fix (the
map's `variants`) is logged and shown in the meter's status.  So no false 0 kWh is stored as measured: coverage
shows the gap, and when the register moves again the next reading spans it.  Decoding is the converter's job
(collectors/converters/modbus.py); this module only talks the protocol.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import numpy as np
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from pymodbus import ModbusException
from pymodbus.client import ModbusTcpClient
from pymodbus.constants import ExcCodes

from collectors.converters.modbus import ConversionError, ReadBlock, decode, read_blocks, to_readings
from collectors.limits import plausible_max
from collectors.normalise import MeterLimits
from collectors.readings import RawReading
from collectors.registermaps import POWER, RegisterMap, RegisterMapError, load_register_map
from collectors.sources import Sink
from park.model import Meter
from park.units import conversion_factor

log = logging.getLogger(__name__)

DEFAULT_PORT = 502
READ_ERROR = "register.read_error"
ENERGY_FLAT = "register.energy_flat"
_FLUSH_JOB = "modbus-flush"  # meters' jobs are "modbus-poll:<meter id>"


class ModbusConfigError(ValueError):
    """A meter that cannot be polled as configured (address, register map, settings)."""


class RegisterReadError(Exception):
    """The meter answered a read with a Modbus exception or with the wrong number of registers."""


@dataclass(frozen=True)
class ModbusAddress:
    """Where a meter answers: a TCP host and port, and its unit id (the RS485 address behind a gateway)."""

    host: str
    port: int
    unit: int

    @classmethod
    def parse(cls, text: str) -> ModbusAddress:
        """Parse modbus://host[:port]/unit (port 502 when left out)."""
        parts = urlsplit(text)
        if parts.scheme != "modbus" or not parts.hostname:
            raise ModbusConfigError(f"address {text!r} is not modbus://host:port/unit")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise ModbusConfigError(f"address {text!r}: the port must be a number 1..65535") from None
        unit_text = parts.path.strip("/")
        if not unit_text.isdigit() or not 0 <= int(unit_text) <= 255:
            raise ModbusConfigError(f"address {text!r}: the unit id after the last '/' must be 0..255, "
                                    f"e.g. modbus://{parts.hostname}:{port}/1")
        return cls(parts.hostname, port, int(unit_text))

    def __str__(self) -> str:
        return f"modbus://{self.host}:{self.port}/{self.unit}"


@dataclass(frozen=True)
class MeterStatus:
    """How polling a meter goes."""

    meter_id: str
    address: str
    polls: int = 0  # good polls so far
    failures: int = 0  # failed polls in a row
    last_success: datetime | None = None
    last_error: str | None = None
    retry_in_s: float | None = None  # the back-off in force; None: normal cadence
    warning: str | None = None  # register.energy_flat in force: what was seen and the likely fix


@dataclass(frozen=True)
class EnergyFlatCheck:
    """When an energy register that does not move while the meter draws power counts as read at the wrong
    address: flat for at least `window_s` and `min_polls` polls while active power stays at or above the floor
    (`min_kw`, or `share_of_max` x the meter's plausible maximum from the park file when that is higher), and the
    energy that power implies over the span at least `min_steps` x the register's resolution (so a coarse
    register, e.g. 0.1 kWh at 1 kW, is not taken for a stuck one)."""

    window_s: float = 900.0
    min_polls: int = 3
    min_kw: float = 1.0
    share_of_max: float = 0.05
    min_steps: float = 10.0


@dataclass
class FlatVerdict:
    """What becomes of a poll's energy reading (and of readings held back before it)."""

    release: list[RawReading] = field(default_factory=list)  # on to the pipeline, in order
    reject: list[RawReading] = field(default_factory=list)  # quarantined with register.energy_flat
    detail: str = ""  # the rejection's detail
    warning: str | None = None  # newly detected: log it
    cleared: str | None = None  # the register moves again: log it


class EnergyFlatDetector:
    """One meter's energy register against its active power; pure (no I/O), see `EnergyFlatCheck`."""

    def __init__(self, meter_id: str, register_map: RegisterMap, floor_kw: float, check: EnergyFlatCheck,
                 fix: str) -> None:
        self.meter_id = meter_id
        self.register_map = register_map
        self.floor_kw = floor_kw
        self.check = check
        self.fix = fix
        self.warning: str | None = None  # in force since it tripped, until the register moves
        self._held: list[RawReading] = []
        self._last: RawReading | None = None  # the newest energy reading seen
        self._last_kw: float | None = None
        self._since: datetime | None = None  # the flat span starts at this reading's time
        self._expected_kwh = 0.0
        self._kw_seen: list[float] = []

    def step(self, energy: RawReading, power_kw: float | None) -> FlatVerdict:
        """The verdict on a poll's energy reading, given the same poll's active power (kW; None if not read)."""
        flat = self._last is not None and energy.value == self._last.value
        if self.warning is not None:
            if flat:
                kw = "?" if power_kw is None else f"{power_kw:.3g}"
                return FlatVerdict(reject=[energy], detail=f"meter {self.meter_id}: energy register still flat at "
                                   f"{energy.value:g} {energy.unit} (power {kw} kW) since the warning: {self.warning}")
            cleared = (f"meter {self.meter_id}: energy register moves again ({self._last.value:g} -> "
                       f"{energy.value:g} {energy.unit}); its readings go to the pipeline again")
            self.warning = None
            return FlatVerdict(release=self._settle(energy, power_kw), cleared=cleared)
        if not (flat and power_kw is not None and power_kw >= self.floor_kw):
            return FlatVerdict(release=self._settle(energy, power_kw))
        assert self._last is not None and self._since is not None
        hours = (energy.ts - self._last.ts).total_seconds() / 3600
        self._expected_kwh += min(power_kw, self._last_kw if self._last_kw is not None else power_kw) * hours
        self._kw_seen.append(power_kw)
        self._held.append(energy)
        self._last, self._last_kw = energy, power_kw
        span_s = (energy.ts - self._since).total_seconds()
        expected = self._expected_kwh * conversion_factor("kWh", energy.unit)
        if (span_s < self.check.window_s or len(self._held) < self.check.min_polls
                or expected < self.check.min_steps * self._resolution(energy.value)):
            return FlatVerdict()
        r = self.register_map.energy
        low, high = f"{min(self._kw_seen):.3g}", f"{max(self._kw_seen):.3g}"
        self.warning = (
            f"meter {self.meter_id}: energy register ({r.table} 0x{r.address:04X} of map {self.register_map.name}) "
            f"flat at {energy.value:g} {energy.unit} for {span_s / 60:.0f} min ({len(self._held)} polls) while "
            f"active power is {low if low == high else f'{low}-{high}'} kW (about {self._expected_kwh:.3g} kWh "
            f"expected): {self.fix}")
        held, self._held = self._held, []
        return FlatVerdict(reject=held, detail=self.warning, warning=self.warning)

    def pending(self) -> list[RawReading]:
        """Readings held back and not yet judged (handed to the pipeline when the source stops)."""
        held, self._held = self._held, []
        return held

    def _settle(self, energy: RawReading, power_kw: float | None) -> list[RawReading]:
        """The register moved, power is low or the warning cleared: the held readings and this one go on."""
        released = [*self._held, energy]
        self._held, self._kw_seen, self._expected_kwh = [], [], 0.0
        self._last, self._last_kw, self._since = energy, power_kw, energy.ts
        return released

    def _resolution(self, value: float) -> float:
        """The register's smallest step near `value`, in its unit."""
        r = self.register_map.energy
        if r.type != "float32":
            return abs(r.scale)
        raw = np.float32(value / r.scale) if math.isfinite(value) else np.float32(0)
        return float(np.spacing(np.abs(raw))) * abs(r.scale)


@dataclass
class _Target:
    meter: Meter
    address: ModbusAddress
    register_map: RegisterMap
    blocks: list[ReadBlock]
    status: MeterStatus
    lock: threading.Lock
    client: ModbusTcpClient | None = None
    flat: EnergyFlatDetector | None = None  # None: the map has no active power register, or the check is off


class ModbusSource:
    """Polls Modbus TCP meters on an APScheduler BackgroundScheduler, one job per meter; see the module doc."""

    def __init__(self, meters: Iterable[Meter], sink: Sink, *, interval_s: float = 60.0, timeout_s: float = 3.0,
                 max_backoff_s: float = 600.0, batch_s: float = 5.0, max_pending: int = 100_000,
                 max_workers: int | None = None, flat_check: EnergyFlatCheck | None = EnergyFlatCheck()) -> None:
        if min(interval_s, timeout_s, batch_s) <= 0:
            raise ModbusConfigError(f"interval_s ({interval_s}), timeout_s ({timeout_s}) and batch_s ({batch_s}) "
                                    "must be positive")
        if max_backoff_s < interval_s:
            raise ModbusConfigError(f"max_backoff_s ({max_backoff_s}) must be at least interval_s ({interval_s})")
        self.sink = sink
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.max_backoff_s = max_backoff_s
        self.batch_s = batch_s
        self.max_pending = max_pending
        self.flat_check = flat_check
        self._pending: list[RawReading] = []
        self._pending_lock = threading.Lock()
        maps: dict[str, RegisterMap] = {}
        self._targets: dict[str, _Target] = {}
        for meter in meters:
            if meter.id in self._targets:
                raise ModbusConfigError(f"meter {meter.id} is given twice")
            self._targets[meter.id] = self._target(meter, maps, flat_check)
        for register_map in maps.values():
            if register_map.unverified:
                which = ("none of its registers is" if len(register_map.unverified) == len(register_map.registers)
                         else f"register(s) {', '.join(register_map.unverified)} are not")
                log.warning("register map %s (%s): %s verified against the manufacturer's manual; compare a "
                            "meter's readings with its display before trusting them", register_map.name,
                            register_map.path, which)
        workers = max_workers or min(32, max(2, len(self._targets)))
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None}, timezone=UTC)

    @staticmethod
    def _target(meter: Meter, maps: dict[str, RegisterMap], flat_check: EnergyFlatCheck | None) -> _Target:
        register_map = _register_map(meter, maps)
        try:
            address = ModbusAddress.parse(meter.address or "")
        except ModbusConfigError as exc:
            raise ModbusConfigError(f"meter {meter.id}: {exc}") from None
        flat = None
        if flat_check is not None and POWER in register_map:
            max_kw, _ = plausible_max(meter)
            floor_kw = max(flat_check.min_kw, flat_check.share_of_max * max_kw if max_kw else 0.0)
            flat = EnergyFlatDetector(meter.id, register_map, floor_kw, flat_check, _likely_fix(meter, register_map))
        return _Target(meter, address, register_map, read_blocks(register_map),
                       MeterStatus(meter.id, str(address)), threading.Lock(), flat=flat)

    # ---- lifecycle ----
    def start(self) -> None:
        """Schedule every meter's job (first polls spread over the first interval) and the batch job."""
        now = datetime.now(UTC)
        n = len(self._targets)
        for i, meter_id in enumerate(self._targets):
            self._scheduler.add_job(self.poll, "interval", seconds=self.interval_s, args=[meter_id],
                                    id=f"modbus-poll:{meter_id}",
                                    name=f"modbus poll {meter_id}",
                                    next_run_time=now + timedelta(seconds=self.interval_s * i / n))
        self._scheduler.add_job(self.flush, "interval", seconds=self.batch_s, id=_FLUSH_JOB,
                                name="modbus readings to the sink")
        self._scheduler.start()

    def stop(self, wait: bool = True) -> None:
        """Stop polling (waiting for polls in flight, each bounded by the timeout), hand the last readings to
        the sink and close the connections."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=wait)
        for t in self._targets.values():  # readings held back by the flat check, not judged yet
            with t.lock:
                held = t.flat.pending() if t.flat is not None else []
            with self._pending_lock:
                self._pending.extend(held)
        self.flush()
        for t in self._targets.values():
            with t.lock:
                if t.client is not None:
                    t.client.close()
                    t.client = None

    def __enter__(self) -> ModbusSource:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- polling ----
    def status(self) -> dict[str, MeterStatus]:
        return {meter_id: t.status for meter_id, t in self._targets.items()}

    def poll(self, meter_id: str) -> list[RawReading]:
        """Read one meter now and queue its readings for the next `flush`; a failure is rejected at once and backs
        the meter off.  Returns the readings (none when the read failed)."""
        t = self._targets[meter_id]
        with t.lock:
            try:
                words, sampled = self._read(t)
                values = decode(t.register_map, words)
            except (ModbusException, OSError, RegisterReadError, ConversionError) as exc:
                self._failed(t, exc)
                return []
            readings = to_readings(t.register_map, values, series=meter_id, ts=sampled, source=str(t.address))
            t.status = replace(t.status, polls=t.status.polls + 1, failures=0, last_success=sampled,
                               retry_in_s=None)
            queued = self._check_flat(t, readings)
        with self._pending_lock:
            self._pending.extend(queued)
        return readings

    def _check_flat(self, t: _Target, readings: list[RawReading]) -> list[RawReading]:
        """The poll's readings that go to the pipeline now: a suspect energy reading is held back or rejected
        (`register.energy_flat`); power and the readings released from hold go on."""
        if t.flat is None:
            return readings
        energy = next(r for r in readings if r.measurement == "energy")
        power = next((r.value for r in readings if r.measurement == "power"), None)
        verdict = t.flat.step(energy, power)
        if verdict.warning:
            log.warning("%s", verdict.warning)
        if verdict.cleared:
            log.info("%s", verdict.cleared)
        for r in verdict.reject:
            self.sink.reject(source=r.source, code=ENERGY_FLAT, series=r.series, ts=r.ts.isoformat(),
                             value=repr(r.value), detail=verdict.detail)
        t.status = replace(t.status, warning=t.flat.warning)
        return [*verdict.release, *(r for r in readings if r is not energy)]

    def flush(self) -> int:
        """Hand the queued readings to the sink in one batch (the pipeline's cost is per call, not per reading).
        If the sink raises, the batch is kept for the next flush, up to `max_pending` readings; beyond that the
        oldest are dropped with an error in the log (energy is not lost: the next register reading spans the
        gap).  Returns how many readings the sink took."""
        with self._pending_lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        try:
            self.sink.submit(batch)
        except Exception:
            with self._pending_lock:
                self._pending[:0] = batch
                dropped = len(self._pending) - self.max_pending
                if dropped > 0:
                    del self._pending[:dropped]
            log.exception("the sink refused %d readings; kept for the next try%s", len(batch),
                          f", {dropped} oldest dropped" if dropped > 0 else "")
            return 0
        return len(batch)

    def _read(self, t: _Target) -> tuple[dict[str, dict[int, int]], datetime]:
        """All the map's registers, and when the energy register was sampled: the middle of its request's
        round trip (its block is read first), so slow gateways and the other blocks do not skew the time."""
        if t.client is None:
            t.client = ModbusTcpClient(t.address.host, port=t.address.port, timeout=self.timeout_s, retries=0)
        words: dict[str, dict[int, int]] = {}
        sampled: datetime | None = None
        for b in t.blocks:
            read = t.client.read_holding_registers if b.table == "holding" else t.client.read_input_registers
            sent = datetime.now(UTC)
            response = read(b.address, count=b.count, device_id=t.address.unit)
            sampled = sampled or sent + (datetime.now(UTC) - sent) / 2
            span = f"{b.table} registers {b.address}..{b.address + b.count - 1} (0x{b.address:04X})"
            if response.isError():
                code = getattr(response, "exception_code", None)
                raise RegisterReadError(f"{span}: the meter answered with Modbus exception {code} "
                                        f"({_exception_name(code)})")
            if len(response.registers) != b.count:
                raise RegisterReadError(f"{span}: the meter sent {len(response.registers)} registers, "
                                        f"not {b.count}")
            words.setdefault(b.table, {}).update(zip(range(b.address, b.address + b.count), response.registers,
                                                     strict=True))
        assert sampled is not None  # a register map has at least the energy register
        return words, sampled

    def _failed(self, t: _Target, exc: Exception) -> None:
        if t.client is not None:  # a late answer must not be taken for the next request's
            t.client.close()
            t.client = None
        failures = t.status.failures + 1
        delay = min(self.interval_s * 2 ** failures, self.max_backoff_s)
        error = f"{type(exc).__name__}: {exc}"
        t.status = replace(t.status, failures=failures, last_error=error, retry_in_s=delay)
        now = datetime.now(UTC)
        self.sink.reject(source=str(t.address), code=READ_ERROR, series=t.meter.id, ts=now.isoformat(),
                         detail=f"meter {t.meter.id} at {t.address} (register map {t.register_map.name}): {error}; "
                                f"failure {failures} in a row, next try in {delay:g} s")
        log.warning("meter %s at %s: %s; next try in %g s", t.meter.id, t.address, error, delay)
        if self._scheduler.running:
            with suppress(JobLookupError):  # stop() removed the job while this poll ran
                self._scheduler.modify_job(f"modbus-poll:{t.meter.id}", next_run_time=now + timedelta(seconds=delay))


def meter_limits(meters: Iterable[Meter]) -> dict[str, MeterLimits]:
    """Pipeline limits (register wrap, plausible maximum) of meters: moved to collectors/limits.py, which every
    path uses; kept here for existing callers."""
    from collectors.limits import meter_limits as limits

    return limits(meters)


def _register_map(meter: Meter, maps: dict[str, RegisterMap]) -> RegisterMap:
    """The meter's register map, loaded once per model into `maps`."""
    if not meter.address or not meter.model:
        raise ModbusConfigError(f"meter {meter.id}: a Modbus meter needs an address (modbus://host:port/unit) "
                                "and a model (a register map name or map file)")
    if meter.model not in maps:
        try:
            maps[meter.model] = load_register_map(meter.model)
        except ValueError as exc:
            raise ModbusConfigError(f"meter {meter.id}: {exc}") from None
    return maps[meter.model]


def _likely_fix(meter: Meter, register_map: RegisterMap) -> str:
    """What to try when the meter's energy register stays flat under load: its map's variants, if any."""
    fixes = []
    for name in register_map.variants:
        try:
            r = load_register_map(name).energy
        except RegisterMapError:
            continue
        fixes.append((f"the {r.table} 0x{r.address:04X} variant", f"model: {name}"))
    if not fixes:
        return (f"the register map {register_map.name} may read the wrong energy address for this meter, or its "
                "counter is stuck; compare the map with the meter's manual and display")
    kinds = " or ".join(k for k, _ in fixes)
    models = " or ".join(m for _, m in fixes)
    return f"the meter may be {kinds}; set {models} for meter {meter.id} in the park file"


def _exception_name(code: int | None) -> str:
    try:
        return ExcCodes(code).name
    except ValueError:
        return "not a standard exception code"
