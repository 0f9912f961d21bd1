"""Simulated Modbus TCP electricity meters, for the demo and the tests.

One pymodbus TCP server hosts many meters, **one unit id per meter**, the way meters on an RS485 bus sit behind
a serial-to-Ethernet gateway (串口服务器) in a park: `modbus://host:port/unit`.  Unit ids run 1..247, so a
larger park needs one simulator per 247 meters (each on its own port).

Each meter's registers follow its register map (collectors/registermaps/).  Its total-energy register
advances with a load shape: kW as a function of time, integrated whenever the meter is read (so the counter is
exact at the moment of every read, with no background thread).  The default shape is the real 15-minute load of
the steel plant shipped with park.synth (`steel_shape`); `daily_shape` is the documented fall-back when
park.synth is not installed.  Faults can be injected while it runs: a dead meter (`kill`: the unit stops
answering, requests time out), a counter reset (`reset`), a rollover (`rollover`: the counter starts just below
the register's maximum) and a spike (`spike`: the next energy read jumps ahead once).

A meter can also serve, besides its own map, the energy register of other maps frozen at a value
(`frozen_energy_at`): a CHINT DTSU666 of the 0x401E kind (map chint-dtsu666-401e) that answers 0x101E with 0.0,
so a collector configured with the other map (chint-dtsu666) reads a register that never moves.

Run ``python -m collectors.simulator.modbus_meters PARK_FILE`` to serve a park's Modbus meters (those with a
modbus:// address and a model) until Ctrl-C, e.g. the demo park's on 127.0.0.1:5020.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import threading
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial

import numpy as np
import pandas as pd
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from collectors.converters.modbus import ConversionError, encode
from collectors.registermaps import RegisterMap, load_register_map
from collectors.sources.modbus import ModbusAddress
from park.model import Meter, Park
from park.parkfile import load_park_file
from park.units import conversion_factor

try:
    from park.synth import load_steel_profile
except ImportError:  # a checkout without park.synth: meters follow `daily_shape`
    load_steel_profile = None

log = logging.getLogger(__name__)

LoadShape = Callable[[datetime], float]  # kW at an instant
Clock = Callable[[], datetime]
Words = Mapping[str, Mapping[int, int]]  # table -> address -> word

_READ_TABLES = {3: "holding", 4: "input"}  # function code -> table
_INTEGRATION_STEP = timedelta(seconds=60)
_SERVER_START_TIMEOUT_S = 10.0


def utc_now() -> datetime:
    return datetime.now(UTC)


# ---- load shapes ----------------------------------------------------------------------------------------


def series_shape(kw: pd.Series) -> LoadShape:
    """A load shape from kW per time: each value holds from its timestamp to the next, and the series repeats
    after its span (last timestamp - first + the last step)."""
    if not isinstance(kw.index, pd.DatetimeIndex) or kw.index.tz is None:
        raise ValueError("a load shape series needs a timezone-aware DatetimeIndex")
    if len(kw) < 2 or not kw.index.is_monotonic_increasing or kw.index.has_duplicates:
        raise ValueError("a load shape series needs at least two strictly increasing timestamps")
    values = kw.to_numpy(dtype="float64")
    if not np.isfinite(values).all():
        raise ValueError("a load shape series has missing or infinite values")
    ns = kw.index.as_unit("ns").asi8
    offsets = ns - ns[0]
    period = int(offsets[-1] + (ns[-1] - ns[-2]))

    def shape(t: datetime) -> float:
        offset = (int(pd.Timestamp(t).as_unit("ns").value) - int(ns[0])) % period
        return float(values[np.searchsorted(offsets, offset, side="right") - 1])

    return shape


def steel_shape(scale: float = 1.0) -> LoadShape:
    """The shipped steel plant's load (park/data, CC BY 4.0) in kW x `scale`, repeating every 52 weeks from
    its first day (a Monday) so weekdays stay weekdays.  Its mean is about 110 kW."""
    base = _steel_kw()
    return lambda t: scale * base(t)


@lru_cache(maxsize=1)
def _steel_kw() -> LoadShape:
    if load_steel_profile is None:
        raise RuntimeError("park.synth is not installed: use daily_shape() instead")
    kwh = load_steel_profile()
    return series_shape(kwh.iloc[: 364 * 96] * 4.0)  # 52 weeks of 15-minute slots; kWh per 15 min -> kW


def daily_shape(base_kw: float = 40.0, peak_kw: float = 110.0, tz: str = "Asia/Shanghai") -> LoadShape:
    """A plain working-day shape: `peak_kw` 08:00-12:00 and 13:00-17:00 park-local time on Monday to Friday,
    the mean of base and peak in the lunch hour and on Saturday daytime, `base_kw` otherwise."""
    mid = (base_kw + peak_kw) / 2

    def shape(t: datetime) -> float:
        local = pd.Timestamp(t).tz_convert(tz)
        hour, weekday = local.hour + local.minute / 60, local.weekday()
        if weekday == 6 or not 8 <= hour < 17:
            return base_kw
        if weekday == 5 or 12 <= hour < 13:
            return mid
        return peak_kw

    return shape


def default_shape(scale: float = 1.0) -> LoadShape:
    """The steel plant's load when park.synth is available, else `daily_shape` scaled alike."""
    return steel_shape(scale) if load_steel_profile is not None else daily_shape(40.0 * scale, 110.0 * scale)


# ---- the register server --------------------------------------------------------------------------------


class RegisterServer:
    """A pymodbus Modbus TCP server in a background thread, serving register words for several unit ids.

    Words can be changed and units silenced while it runs; every address a unit serves must be given at
    construction (a read touching any other address is answered with exception 02, ILLEGAL ADDRESS, as real
    meters do).  `on_read(unit, table, address, count)` runs before each read is answered, in the server's
    thread, so a simulator can bring the words up to date.  Port 0 picks a free port.
    """

    def __init__(self, units: Mapping[int, Words], host: str = "127.0.0.1", port: int = 0,
                 on_read: Callable[[int, str, int, int], None] | None = None) -> None:
        for unit in units:
            if not 1 <= unit <= 247:
                raise ValueError(f"unit id {unit} is outside 1..247")
        self.host = host
        self.port = port
        self._words = {u: {t: dict(units[u].get(t, {})) for t in ("holding", "input")} for u in units}
        self._on_read = on_read
        self._silent: set[int] = set()
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def address(self, unit: int) -> str:
        return f"modbus://{self.host}:{self.port}/{unit}"

    def start(self) -> RegisterServer:
        """Start serving; returns once the server listens (its `port` is then set)."""
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True,
                                        name=f"modbus-server-{self.host}:{self.port}")
        self._thread.start()
        if not self._ready.wait(_SERVER_START_TIMEOUT_S):
            raise TimeoutError(f"Modbus server on {self.host}:{self.port} did not start within "
                               f"{_SERVER_START_TIMEOUT_S} s")
        if self._error is not None:
            raise RuntimeError(f"Modbus server on {self.host}:{self.port} failed to start: {self._error}")
        return self

    def stop(self) -> None:
        """Stop serving and close every client connection."""
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(_SERVER_START_TIMEOUT_S)
        self._loop = None

    def __enter__(self) -> RegisterServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_words(self, unit: int, table: str, words: Mapping[int, int]) -> None:
        """Change words of a unit (addresses it already serves)."""
        served = self._words[unit][table]
        unknown = sorted(set(words) - set(served))
        if unknown:
            raise KeyError(f"unit {unit} does not serve {table} address(es) {unknown}")
        with self._lock:
            served.update(words)

    def words(self, unit: int, table: str, address: int, count: int) -> list[int]:
        """The words a read of `count` registers at `address` would return now (without `on_read`)."""
        with self._lock:
            return [self._words[unit][table][a] for a in range(address, address + count)]

    def silence(self, unit: int) -> None:
        """The unit stops answering: requests to it get no response and time out."""
        with self._lock:
            self._silent.add(unit)

    def revive(self, unit: int) -> None:
        with self._lock:
            self._silent.discard(unit)

    async def _serve(self) -> None:
        try:
            server = ModbusTcpServer([self._device(u) for u in self._words], address=(self.host, self.port),
                                     ignore_missing_devices=True)
            await server.serve_forever(background=True)
            self.port = server.transport.sockets[0].getsockname()[1]  # asyncio.Server of the listener
        except Exception as exc:  # reported by start() in the caller's thread
            self._error = exc
            self._ready.set()
            return
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._ready.set()
        await self._stopping.wait()
        await server.shutdown()

    def _device(self, unit: int) -> SimDevice:
        coils = [SimData(0, values=False, datatype=DataType.BITS)]
        blocks = [_sim_blocks(self._words[unit][t]) for t in ("holding", "input")]
        return SimDevice(unit, simdata=(coils, list(coils), blocks[0], blocks[1]),
                         action=partial(self._action, unit))

    async def _action(self, unit: int, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], set_values: list[int] | list[bool] | None) -> None:
        """pymodbus' hook on every access: answer from the current words, or not at all if silenced."""
        if unit in self._silent:
            raise NoSuchIdException(f"unit {unit} is silenced")  # ignore_missing_devices: no response
        table = _READ_TABLES.get(function_code)
        if table is None or set_values is not None:
            return
        if self._on_read is not None:
            self._on_read(unit, table, address, count)
        with self._lock:
            words = self._words[unit][table]
            for i in range(count):
                registers[address - start_address + i] = words[address + i]


def _sim_blocks(words: Mapping[int, int]) -> list[SimData]:
    """Read-only SimData runs of adjacent addresses; an INVALID placeholder when the table is empty."""
    if not words:
        return [SimData(0, datatype=DataType.INVALID)]
    runs: list[list[int]] = []
    for a in sorted(words):
        if runs and runs[-1][-1] == a - 1:
            runs[-1].append(a)
        else:
            runs.append([a])
    return [SimData(run[0], values=[words[a] for a in run], datatype=DataType.REGISTERS, readonly=True)
            for run in runs]


# ---- simulated meters -----------------------------------------------------------------------------------


@dataclass
class SimulatedMeter:
    """One meter: its unit id, register map and load shape (a function of time or a Series, in kW)."""

    unit: int
    register_map: RegisterMap
    load: LoadShape | pd.Series = field(default_factory=default_shape)
    energy_kwh: float = 0.0  # the counter at start
    voltage_v: float = 230.0  # phase voltage
    power_factor: float = 0.95
    frequency_hz: float = 50.0
    # Other maps whose energy register this meter also serves, never moving from `frozen_kwh` (a meter of one
    # variant as a collector with the other variant's map sees it).
    frozen_energy_at: tuple[RegisterMap, ...] = ()
    frozen_kwh: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.load, pd.Series):
            self.load = series_shape(self.load)
        self.frozen_energy_at = tuple(self.frozen_energy_at)
        own = {(r.table, a) for r in self.register_map.registers for a in range(r.address, r.address + r.words)}
        for other in self.frozen_energy_at:
            e = other.energy
            if any((e.table, a) in own for a in range(e.address, e.address + e.words)):
                raise ValueError(f"unit {self.unit}: the {other.name} energy register ({e.table} 0x{e.address:04X}) "
                                 f"overlaps a register of {self.register_map.name}")


@dataclass
class _Counter:
    meter: SimulatedMeter
    energy_kwh: float
    last: datetime
    spike_kwh: float = 0.0
    kwh_to_unit: float = 1.0
    wrap_kwh: float | None = None  # where the register wraps, in kWh


class MeterSimulator:
    """Simulated meters on one Modbus TCP server (one unit id per meter); see the module docstring."""

    def __init__(self, meters: Iterable[SimulatedMeter], host: str = "127.0.0.1", port: int = 0,
                 clock: Clock = utc_now) -> None:
        self.clock = clock
        now = clock()
        self._counters: dict[int, _Counter] = {}
        for m in meters:
            if m.unit in self._counters:
                raise ValueError(f"unit id {m.unit} is given to two simulated meters")
            energy = m.register_map.energy
            factor = conversion_factor("kWh", energy.unit)
            wrap = m.register_map.energy_register_max
            self._counters[m.unit] = _Counter(m, m.energy_kwh, now, kwh_to_unit=factor,
                                              wrap_kwh=None if wrap is None else wrap / factor)
        self._lock = threading.Lock()
        self._server = RegisterServer({u: self._registers(c, now) for u, c in self._counters.items()}, host, port,
                                      on_read=self._on_read)

    @property
    def port(self) -> int:
        return self._server.port

    def address(self, unit: int) -> str:
        """The meter's address as a park file gives it: modbus://host:port/unit."""
        return self._server.address(unit)

    def start(self) -> MeterSimulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> MeterSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def energy_kwh(self, unit: int) -> float:
        """The meter's counter now (what its register shows, before wrapping), in kWh."""
        with self._lock:
            c = self._counters[unit]
            self._advance(c, self.clock())
            return c.energy_kwh

    # ---- faults ----
    def kill(self, unit: int) -> None:
        """The meter stops answering (a dead meter or a broken RS485 line): requests time out."""
        self._server.silence(unit)

    def revive(self, unit: int) -> None:
        self._server.revive(unit)

    def reset(self, unit: int) -> None:
        """The counter goes back to 0 (a meter cleared or replaced)."""
        with self._lock:
            c = self._counters[unit]
            self._advance(c, self.clock())
            c.energy_kwh = 0.0

    def rollover(self, unit: int, kwh_before_wrap: float = 1.0) -> None:
        """The counter jumps to `kwh_before_wrap` below the register's maximum, so it soon wraps to 0."""
        with self._lock:
            c = self._counters[unit]
            if c.wrap_kwh is None:
                raise ValueError(f"unit {unit}: the {c.meter.register_map.name} energy register is a float32, "
                                 "which does not roll over")
            self._advance(c, self.clock())
            c.energy_kwh = c.wrap_kwh - kwh_before_wrap

    def spike(self, unit: int, kwh: float) -> None:
        """The next read of the energy register shows the counter `kwh` ahead (once: a glitch)."""
        with self._lock:
            self._counters[unit].spike_kwh = kwh

    # ---- register updates ----
    def _on_read(self, unit: int, table: str, address: int, count: int) -> None:
        energy = self._counters[unit].meter.register_map.energy
        reads_energy = table == energy.table and address <= energy.address < address + count
        with self._lock:
            c = self._counters[unit]
            words = self._registers(c, self.clock(), with_spike=reads_energy)
            if reads_energy:
                c.spike_kwh = 0.0
        for t, w in words.items():
            self._server.set_words(unit, t, w)

    def _advance(self, c: _Counter, now: datetime) -> None:
        """Add the energy of the load shape from the last update to `now` (midpoint rule, 60 s steps)."""
        span = now - c.last
        if span <= timedelta(0):
            return
        steps = max(1, math.ceil(span / _INTEGRATION_STEP))
        dt = span / steps
        kwh = sum(c.meter.load(c.last + dt * (i + 0.5)) for i in range(steps)) * (dt.total_seconds() / 3600)
        c.energy_kwh += kwh
        c.last = now

    def _registers(self, c: _Counter, now: datetime, with_spike: bool = False) -> Words:
        self._advance(c, now)
        m = c.meter
        kwh = c.energy_kwh + (c.spike_kwh if with_spike else 0.0)
        if c.wrap_kwh is not None:
            kwh %= c.wrap_kwh
        power_kw = m.load(now)
        amps = power_kw * 1000 / (3 * m.voltage_v * m.power_factor)
        values = {"total_active_energy": kwh * c.kwh_to_unit, "active_power": power_kw,
                  "voltage_a": m.voltage_v, "voltage_b": m.voltage_v, "voltage_c": m.voltage_v,
                  "current_a": amps, "current_b": amps, "current_c": amps,
                  "power_factor": m.power_factor, "frequency": m.frequency_hz}
        try:
            words = encode(m.register_map, {k: v for k, v in values.items() if k in m.register_map})
            for other in m.frozen_energy_at:
                frozen = m.frozen_kwh * conversion_factor("kWh", other.energy.unit)
                for table, w in encode(other, {"total_active_energy": frozen}).items():
                    words.setdefault(table, {}).update(w)
            return words
        except ConversionError as exc:
            raise ValueError(f"unit {m.unit}: {exc}") from None


def simulated_meters(meters: Iterable[Meter], seed: int = 0) -> list[SimulatedMeter]:
    """Simulated meters for a park's Modbus meters: unit ids from their addresses, register maps from their
    models, and the default load shape scaled by a size drawn per meter (log-normal, reproducible from
    `seed` and the meter id), with a counter starting where half a year to three years of that load would
    leave it."""
    out = []
    for m in meters:
        if not m.address or not m.model:
            raise ValueError(f"meter {m.id}: a simulated Modbus meter needs an address and a model (register map)")
        unit = ModbusAddress.parse(m.address).unit
        rng = np.random.default_rng([seed, zlib.crc32(m.id.encode())])
        scale = float(rng.lognormal(0.0, 0.5))
        out.append(SimulatedMeter(unit, load_register_map(m.model), default_shape(scale),
                                  energy_kwh=round(scale * 110.0 * 8760 * rng.uniform(0.5, 3.0), 2)))
    return out


def serve_park(park: Park, seed: int = 0) -> list[MeterSimulator]:
    """Start simulators for the park's Modbus meters (those with a modbus:// address and a model), one per
    host:port their addresses name; the caller stops them."""
    groups: dict[tuple[str, int], list[Meter]] = {}
    for m in park.meters:
        if m.model and m.address and m.address.startswith("modbus://"):
            address = ModbusAddress.parse(m.address)
            groups.setdefault((address.host, address.port), []).append(m)
    simulators: list[MeterSimulator] = []
    try:
        for (host, port), meters in groups.items():
            simulators.append(MeterSimulator(simulated_meters(meters, seed), host, port).start())
            log.info("serving %d simulated meters on modbus://%s:%d", len(meters), host, port)
    except BaseException:
        for sim in simulators:
            sim.stop()
        raise
    return simulators


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m collectors.simulator.modbus_meters",
                                     description="Serve a park's Modbus meters as simulated meters until Ctrl-C "
                                                 "or SIGTERM.")
    parser.add_argument("park_file", help="park file (YAML); meters with a modbus:// address and a model are served")
    parser.add_argument("--seed", type=int, default=0, help="seed of the meters' sizes and counters (default 0)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    simulators = serve_park(load_park_file(args.park_file), args.seed)
    if not simulators:
        parser.exit(1, f"{args.park_file}: no meter has a modbus:// address and a model\n")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:  # Ctrl-C
        pass
    finally:
        for sim in simulators:
            sim.stop()
        log.info("stopped")


if __name__ == "__main__":
    main()
