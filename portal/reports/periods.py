"""Report periods in park-local time: a month ("2026-10"), a quarter ("2026-Q3") or a year ("2026"), and the
moment each report of a period is due (a configurable day of the month after the period ends)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pandas as pd

GRAIN = {"monthly": "month", "key-units": "month", "quarterly": "quarter", "annual": "year"}
_FORMS = {"month": (re.compile(r"(\d{4})-(\d{2})"), "YYYY-MM, e.g. 2026-10"),
          "quarter": (re.compile(r"(\d{4})-?Q([1-4])", re.IGNORECASE), "YYYY-Qn, e.g. 2026-Q3"),
          "year": (re.compile(r"(\d{4})"), "YYYY, e.g. 2026")}
_MONTHS = {"month": 1, "quarter": 3, "year": 12}


class PeriodError(ValueError):
    """A period text that does not name a period of the report's kind."""


@dataclass(frozen=True, order=True)
class ReportPeriod:
    """One month, quarter or year: `index` is the month (1-12), the quarter (1-4) or 1 for a year."""

    grain: str
    year: int
    index: int = 1

    @classmethod
    def parse(cls, text: str, grain: str) -> ReportPeriod:
        pattern, form = _FORMS[grain]
        m = pattern.fullmatch(text.strip())
        if not m:
            raise PeriodError(f"period {text!r} is not a {grain}: write {form}")
        year, index = int(m.group(1)), int(m.group(2)) if grain != "year" else 1
        if grain == "month" and not 1 <= index <= 12:
            raise PeriodError(f"period {text!r}: month {index} is not 01-12")
        return cls(grain, year, index)

    @classmethod
    def containing(cls, t: pd.Timestamp, grain: str) -> ReportPeriod:
        """The period holding the park-local time `t`."""
        index = {"month": t.month, "quarter": (t.month - 1) // 3 + 1, "year": 1}[grain]
        return cls(grain, t.year, index)

    @property
    def label(self) -> str:
        if self.grain == "month":
            return f"{self.year}-{self.index:02d}"
        if self.grain == "quarter":
            return f"{self.year}-Q{self.index}"
        return f"{self.year}"

    def __str__(self) -> str:
        return self.label

    @property
    def first_month(self) -> int:
        return {"month": self.index, "quarter": 3 * self.index - 2, "year": 1}[self.grain]

    def bounds(self, tz) -> tuple[pd.Timestamp, pd.Timestamp]:
        """[start, end) at park-local midnights."""
        start = pd.Timestamp(self.year, self.first_month, 1, tz=tz)
        return start, start + pd.DateOffset(months=_MONTHS[self.grain])

    def shift(self, n: int) -> ReportPeriod:
        """The period `n` periods later (earlier when negative)."""
        months = self.year * 12 + self.first_month - 1 + n * _MONTHS[self.grain]
        year, month = divmod(months, 12)
        return ReportPeriod.containing(pd.Timestamp(year, month + 1, 1), self.grain)

    def months(self) -> list[ReportPeriod]:
        return [ReportPeriod("month", self.year, self.first_month + i) for i in range(_MONTHS[self.grain])]


def due_at(p: ReportPeriod, day: int, hour: int, minute: int, tz) -> pd.Timestamp:
    """When the report of `p` is due: `day` of the month after the period ends, at hour:minute, park-local."""
    _, end = p.bounds(tz)
    return pd.Timestamp(end.year, end.month, day, hour, minute, tz=tz)


def latest_due(grain: str, at: pd.Timestamp, day: int, hour: int, minute: int, tz) -> ReportPeriod:
    """The newest period whose report is due at or before `at`."""
    local = pd.Timestamp(at).tz_convert(tz)
    p = ReportPeriod.containing(local, grain).shift(-1)
    while due_at(p, day, hour, minute, tz) > local:
        p = p.shift(-1)
    return p
