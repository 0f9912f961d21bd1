"""The park model: park -> enterprise -> workshop -> meter / device.

Plain frozen dataclasses, independent of how they are stored (park file, metadata database).
Identifiers are park-wide unique strings chosen by the operator (for example the meter's asset tag),
because they become series keys in the time-series store and must never change meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from park.units import Carrier, canonical_unit


@dataclass(frozen=True)
class Meter:
    """An energy or water meter; its readings are interval values in the carrier's canonical unit."""

    id: str
    carrier: Carrier
    enterprise: str
    workshop: str | None = None  # None: an enterprise-level (incoming) meter
    name: str = ""
    interval_s: int = 900  # expected reading interval, for coverage
    model: str | None = None  # register-map name for Modbus meters, e.g. "acrel-adl400"
    address: str | None = None  # protocol address, e.g. "modbus://10.0.0.5:502/1"
    # Plausibility limits (collectors/limits.py): where the register wraps, and how fast it can plausibly rise.
    register_max: float | None = None  # the register wraps to 0 here, in the canonical unit (99 999.9 -> 100000)
    max_kw: float | None = None  # stated plausible maximum power (electricity, pv)
    rated_kw: float | None = None  # rated power of the load behind the meter (electricity, pv)
    transformer_kva: float | None = None  # size of the transformer feeding the meter (electricity, pv)
    breaker_a: float | None = None  # rated current of its three-phase 380 V breaker (electricity, pv)
    max_per_h: float | None = None  # stated plausible maximum flow per hour in the canonical unit (other carriers)

    @property
    def unit(self) -> str:
        return canonical_unit(self.carrier)


@dataclass(frozen=True)
class Device:
    """A machine with an equipment bracelet (设备手环): a clip-on current sensor."""

    id: str
    enterprise: str
    workshop: str | None = None
    name: str = ""
    rated_voltage_v: float = 380.0
    power_factor: float = 0.85
    idle_current_a: float = 1.0  # below: off
    run_current_a: float = 5.0  # above: running; between: idle
    interval_s: int = 60


@dataclass(frozen=True)
class Workshop:
    id: str
    enterprise: str
    name: str = ""
    name_en: str = ""


@dataclass(frozen=True)
class Enterprise:
    id: str
    name: str
    name_en: str = ""
    industry: str = ""
    credit_code: str = ""  # 统一社会信用代码
    province: str | None = None  # overrides the park's province for factor look-up


@dataclass(frozen=True)
class Park:
    id: str
    name: str
    name_en: str = ""
    timezone: str = "Asia/Shanghai"
    province: str | None = None
    grid_region: str | None = None
    enterprises: tuple[Enterprise, ...] = ()
    workshops: tuple[Workshop, ...] = ()
    meters: tuple[Meter, ...] = ()
    devices: tuple[Device, ...] = ()
    # Below this share of expected intervals a figure is flagged incomplete and a comparison against it hidden.
    coverage_threshold: float = 0.9

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def catalog(self) -> SeriesCatalog:
        """The series the time-series store accepts: every meter and every device."""
        series = [
            SeriesInfo(m.id, "meter", m.enterprise, m.workshop, m.carrier.value, m.unit, m.interval_s)
            for m in self.meters
        ] + [SeriesInfo(d.id, "device", d.enterprise, d.workshop, None, "A", d.interval_s) for d in self.devices]
        return SeriesCatalog(series, meters={m.id: m for m in self.meters})


@dataclass(frozen=True)
class SeriesInfo:
    """What the store needs to know of one series: its tags and its canonical unit."""

    id: str
    kind: str  # "meter" or "device"
    enterprise: str
    workshop: str | None
    carrier: str | None
    unit: str
    interval_s: int = 900


@dataclass
class SeriesCatalog:
    """Known series by id; the store rejects readings of series not in it."""

    series: list[SeriesInfo] = field(default_factory=list)

    meters: dict[str, Meter] = field(default_factory=dict)  # the park's meters (plausibility limits), if known

    def __post_init__(self) -> None:
        self.by_id: dict[str, SeriesInfo] = {s.id: s for s in self.series}

    def __contains__(self, series_id: object) -> bool:
        return series_id in self.by_id

    def __getitem__(self, series_id: str) -> SeriesInfo:
        return self.by_id[series_id]

    def __len__(self) -> int:
        return len(self.by_id)

    def add(self, info: SeriesInfo) -> None:
        self.series.append(info)
        self.by_id[info.id] = info
