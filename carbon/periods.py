"""Reporting periods: day, month, quarter and year, in park-local time."""

from __future__ import annotations

from enum import StrEnum

import pandas as pd

from carbon.errors import InputError


class Period(StrEnum):
    """Reporting periods (日 / 月 / 季 / 年)."""

    DAY = "day"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


_ORDER = [Period.DAY, Period.MONTH, Period.QUARTER, Period.YEAR]


def period(kind: Period | str) -> Period:
    try:
        return Period(kind)
    except ValueError:
        raise InputError(f"unknown period {kind!r}; use one of {', '.join(p.value for p in Period)}") from None


def coarser_or_equal(target: Period, native: Period) -> bool:
    return _ORDER.index(target) >= _ORDER.index(native)


def _per_unique(starts: pd.Series, fn) -> pd.Series:
    """`fn` of a series of timestamps, computed once per distinct value (activity repeats a few window starts
    across thousands of lines) and spread back; the same values, dtype, index and name as `fn(starts)`."""
    codes, uniques = pd.factorize(starts)
    if len(uniques) * 2 > len(starts) or (codes < 0).any():
        return fn(starts)
    out = fn(pd.Series(uniques, name=starts.name)).take(codes)
    out.index = starts.index
    return out


def period_start(starts: pd.Series, kind: Period) -> pd.Series:
    """The park-local start of the period holding each (park-local, aware) window start."""
    return _per_unique(starts, lambda s: _period_start(s, kind))


def _period_start(starts: pd.Series, kind: Period) -> pd.Series:
    if kind is Period.DAY:
        return starts.dt.normalize()
    local = starts.dt.tz_localize(None)
    floor = {Period.MONTH: "M", Period.QUARTER: "Q", Period.YEAR: "Y"}[kind]
    naive = local.dt.to_period(floor).dt.start_time
    return naive.dt.tz_localize(starts.dt.tz)


def period_end(starts: pd.Series, kind: Period) -> pd.Series:
    """The exclusive end of each period starting at `starts`."""
    return _per_unique(starts, lambda s: _period_end(s, kind))


def _period_end(starts: pd.Series, kind: Period) -> pd.Series:
    step = {Period.DAY: pd.DateOffset(days=1), Period.MONTH: pd.DateOffset(months=1),
            Period.QUARTER: pd.DateOffset(months=3), Period.YEAR: pd.DateOffset(years=1)}[kind]
    return starts + step


def period_label(starts: pd.Series, kind: Period) -> pd.Series:
    """'2024-03-05', '2024-03', '2024Q1' or '2024'."""
    return _per_unique(starts, lambda s: _period_label(s, kind))


def _period_label(starts: pd.Series, kind: Period) -> pd.Series:
    fmt = {Period.DAY: "%Y-%m-%d", Period.MONTH: "%Y-%m", Period.YEAR: "%Y"}
    if kind is Period.QUARTER:
        return starts.dt.year.astype(str) + "Q" + starts.dt.quarter.astype(str)
    return starts.dt.strftime(fmt[kind])


def native_period(starts: pd.Series, ends: pd.Series) -> Period:
    """The period kind of activity windows: day or month (what the store's roll-ups give)."""
    if starts.empty:
        return Period.MONTH
    spans = (ends - starts).dt.days
    if spans.max() <= 1:
        return Period.DAY
    if (starts.dt.day == 1).all() and spans.between(28, 31).all():
        return Period.MONTH
    raise InputError("activity windows must be whole park-local days or whole months; got spans of "
                     f"{sorted(set(spans.tolist()))[:5]} days")
