"""Calendar features for forecasting: hour of day, weekday, and the Chinese public holidays with their make-up
working days (调休), from the maintained `chinesecalendar` package (State Council notices, one year at a time).

A date in a year the package has no data for is NOT treated as a normal day silently: its row has
`calendar_known = False` and `uncovered_years()` names the years, which every forecast result repeats as a note.
"""

from __future__ import annotations

import datetime as dt

import chinese_calendar
import numpy as np
import pandas as pd

LOCAL_TZ = "Asia/Shanghai"
SOURCE = f"chinesecalendar {getattr(chinese_calendar, '__version__', '?')} (State Council holiday notices)"

# Days the package lists as statutory days off (including the weekend days inside a holiday span) and the
# weekend days it lists as working days (调休 make-up days).
_HOLIDAYS: dict[dt.date, str] = dict(chinese_calendar.holidays)
_MAKEUP: dict[dt.date, str] = dict(chinese_calendar.workdays)
FIRST_YEAR = min(_HOLIDAYS).year
LAST_YEAR = max(max(_HOLIDAYS).year, max(_MAKEUP).year)

_HOLIDAY_DAYS = np.array(sorted(_HOLIDAYS), dtype="datetime64[D]")
_MAKEUP_DAYS = np.array(sorted(_MAKEUP), dtype="datetime64[D]")

FEATURES = ["hour", "weekday", "weekend", "holiday", "makeup_workday", "day_off", "calendar_known"]


def covered(year: int) -> bool:
    """Whether the holiday source has the official arrangement for this year."""
    return FIRST_YEAR <= year <= LAST_YEAR


def uncovered_years(index: pd.DatetimeIndex) -> list[int]:
    """The years of `index` (local time) for which holidays and make-up days are unknown."""
    years = sorted(set(_local(index).year))
    return [int(y) for y in years if not covered(int(y))]


def coverage_note(index: pd.DatetimeIndex) -> str | None:
    """A sentence for the result when part of `index` lies outside the holiday source's years, else None."""
    missing = uncovered_years(index)
    if not missing:
        return None
    return (f"holiday calendar ({SOURCE}) has no data for {', '.join(map(str, missing))}: those days are "
            f"classed by weekday only (holidays and make-up working days unknown)")


def _local(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Local wall-clock times: tz-aware indexes are converted to Asia/Shanghai; naive ones are taken as local."""
    index = pd.DatetimeIndex(index)
    return index.tz_convert(LOCAL_TZ) if index.tz is not None else index


def day_table(days: pd.DatetimeIndex) -> pd.DataFrame:
    """Per local calendar day: weekday (0 = Monday), weekend, holiday, makeup_workday, day_off, calendar_known."""
    index = pd.DatetimeIndex(days)
    naive = index.tz_localize(None) if index.tz is not None else index
    d = naive.to_numpy().astype("datetime64[D]")  # vectorised: the nightly job classes days for every series
    weekday = ((d.astype(np.int64) + 3) % 7).astype(np.int8)  # 1970-01-01 was a Thursday
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    known = (year >= FIRST_YEAR) & (year <= LAST_YEAR)
    holiday = np.isin(d, _HOLIDAY_DAYS) & known
    makeup = np.isin(d, _MAKEUP_DAYS) & known
    weekend = weekday >= 5
    day_off = holiday | (weekend & ~makeup)
    return pd.DataFrame({"weekday": weekday, "weekend": weekend, "holiday": holiday, "makeup_workday": makeup,
                         "day_off": day_off, "calendar_known": known}, index=days)


def calendar_features(index: pd.DatetimeIndex) -> pd.DataFrame:
    """One row per timestamp of `index` with the columns FEATURES (integers; booleans as 0/1).

    `day_off` is what a plant's load follows: a statutory holiday, or a weekend that is not a make-up working
    day. Outside the covered years `holiday` and `makeup_workday` are 0 and `calendar_known` is 0.
    """
    local = _local(index)
    days = local.normalize()
    unique = days.unique()
    table = day_table(unique)
    pos = unique.get_indexer(days)
    out = pd.DataFrame({"hour": local.hour.to_numpy(dtype=np.int16)}, index=index)
    for col in FEATURES[1:]:
        out[col] = table[col].to_numpy()[pos].astype(np.int16)
    return out


def day_class(index: pd.DatetimeIndex) -> np.ndarray:
    """1 for a day off (holiday or non-working weekend), 0 for a working day, per timestamp."""
    return calendar_features(index)["day_off"].to_numpy()
