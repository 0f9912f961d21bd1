"""What a source hands to the pipeline: raw readings, before validation and normalisation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class Kind(StrEnum):
    """How a raw value relates to time."""

    CUMULATIVE = "cumulative"  # a meter register (total kWh): interval energy is the difference
    INTERVAL = "interval"  # already an interval value (a 15-minute load-profile entry, a CSV row, a bill)
    LEVEL = "level"  # an instantaneous level (current in A, power in kW)


@dataclass(frozen=True)
class RawReading:
    """One value from a source.  `ts` must be timezone-aware; `unit` is the source's unit."""

    series: str
    ts: datetime
    value: float
    kind: Kind
    measurement: str = "energy"  # "energy" (cumulative/interval), "power" or "current" (level)
    unit: str | None = None
    source: str = ""  # e.g. "modbus://10.0.0.5:502/1", "mqtt:park/E001/bracelet/D1", "file:bills.csv"
    line: int | None = None  # line in the source file
    quality: str | None = None  # a source may vouch for "estimated" or "substituted" (manual) values
    extra: dict = field(default_factory=dict)  # voltage, battery, signal, ...
