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
`batch_s` seconds (the pipeline's cost is per call), rejections at once.  Decoding is the converter's job
(collectors/converters/modbus.py); this module only talks the protocol.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from pymodbus import ModbusException
from pymodbus.client import ModbusTcpClient
from pymodbus.constants import ExcCodes

from collectors.converters.modbus import ConversionError, ReadBlock, decode, read_blocks, to_readings
from collectors.normalise import MeterLimits
from collectors.readings import RawReading
from collectors.registermaps import RegisterMap, load_register_map
from collectors.sources import Sink
from park.model import Meter

log = logging.getLogger(__name__)

DEFAULT_PORT = 502
READ_ERROR = "register.read_error"
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


@dataclass
class _Target:
    meter: Meter
    address: ModbusAddress
    register_map: RegisterMap
    blocks: list[ReadBlock]
    status: MeterStatus
    lock: threading.Lock
    client: ModbusTcpClient | None = None


class ModbusSource:
    """Polls Modbus TCP meters on an APScheduler BackgroundScheduler, one job per meter; see the module doc."""

    def __init__(self, meters: Iterable[Meter], sink: Sink, *, interval_s: float = 60.0, timeout_s: float = 3.0,
                 max_backoff_s: float = 600.0, batch_s: float = 5.0, max_pending: int = 100_000,
                 max_workers: int | None = None) -> None:
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
        self._pending: list[RawReading] = []
        self._pending_lock = threading.Lock()
        maps: dict[str, RegisterMap] = {}
        self._targets: dict[str, _Target] = {}
        for meter in meters:
            if meter.id in self._targets:
                raise ModbusConfigError(f"meter {meter.id} is given twice")
            self._targets[meter.id] = self._target(meter, maps)
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
    def _target(meter: Meter, maps: dict[str, RegisterMap]) -> _Target:
        register_map = _register_map(meter, maps)
        try:
            address = ModbusAddress.parse(meter.address or "")
        except ModbusConfigError as exc:
            raise ModbusConfigError(f"meter {meter.id}: {exc}") from None
        return _Target(meter, address, register_map, read_blocks(register_map),
                       MeterStatus(meter.id, str(address)), threading.Lock())

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
        with self._pending_lock:
            self._pending.extend(readings)
        return readings

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


def _exception_name(code: int | None) -> str:
    try:
        return ExcCodes(code).name
    except ValueError:
        return "not a standard exception code"
