"""What the store holds: measurements, quality codes, aggregation windows and result types."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import pandas as pd


class Quality(StrEnum):
    """Provenance of an interval value.  A missing interval is not stored: it is an absent row,
    and coverage reports it (expected minus present)."""

    MEASURED = "measured"  # read from the meter or sensor
    ESTIMATED = "estimated"  # interpolated or modelled
    SUBSTITUTED = "substituted"  # entered by hand (bill, manual reading)


QUALITIES = frozenset(q.value for q in Quality)


@dataclass(frozen=True)
class MeasurementSpec:
    name: str
    kind: str  # which series kind it belongs to: "meter" or "device"
    non_negative: bool
    default_agg: str  # "sum" for energy in an interval, "mean" for a level such as current
    unit_from_series: bool  # True: values are in the series' canonical unit (energy)
    unit: str | None = None  # fixed unit when not from the series


MEASUREMENTS: dict[str, MeasurementSpec] = {
    m.name: m
    for m in [
        MeasurementSpec("energy", "meter", True, "sum", True),
        MeasurementSpec("power", "meter", False, "mean", False, "kW"),
        MeasurementSpec("current", "device", True, "mean", False, "A"),
    ]
}

AGGS = ("sum", "mean", "min", "max", "count")
TAGS = ("series", "enterprise", "workshop", "carrier")


class Window(StrEnum):
    """Aggregation windows.  Days and months are park-local (Asia/Shanghai by default)."""

    QUARTER_HOUR = "15min"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True)
class Rejection:
    """One input row that was not written, and why.  Kept in quarantine for review."""

    row: int  # 0-based position in the batch
    line: int | None  # line in the source file, when the batch came from one
    series: str
    ts: str
    value: str
    code: str  # stable rule code, e.g. "reading.naive_timestamp"
    reason: str


@dataclass
class WriteResult:
    written: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def rejected_frame(self) -> pd.DataFrame:
        return pd.DataFrame([r.__dict__ for r in self.rejected], columns=list(Rejection.__annotations__))
