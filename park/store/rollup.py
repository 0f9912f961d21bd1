"""Hourly and daily roll-ups computed on the client from the batch being written (pure functions, no I/O).

A roll-up bucket holds, per series and hour (or park-local day): `sum`, `count`, `measured`, `min`, `max`, and
for hours `last_ns`, the time of its newest reading.  A batch is folded into the stored buckets without reading
raw data back whenever that is exact:

- a bucket with no stored roll-up gets the batch's part as it is;
- a bucket whose stored readings all lie before the batch's first reading in it (`last_ns` < batch first: fresh
  data appended to a partly filled hour) gets the stored stats combined with the batch's part (sums and counts
  added, min of mins, max of maxes);
- any other bucket (the batch rewrites or interleaves with stored readings: a correction, a re-import, late
  data inside a filled hour, or an old roll-up without `last_ns`) is **recomputed from the raw readings** after
  the batch is written; adding the batch's part would count an overwritten reading twice.

A day is combined the same way when none of the batch's hours in it needed a recompute (then no reading of the
batch replaced a stored one, so adding is exact); otherwise it is rebuilt from its hourly roll-ups.  Days are
built from hours, which needs a time zone with whole-hour UTC offsets (all of China).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

STATS = ("sum", "count", "measured", "min", "max")
KEY = ("series", "start")  # start: the bucket's start, UTC nanoseconds
COLUMNS = (*KEY, *STATS, "first_ns", "last_ns")
HOUR_NS = 3_600_000_000_000


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c == "series" else "int64" if c in (
        "start", "count", "measured", "first_ns", "last_ns") else "float64") for c in COLUMNS})


def day_starts(ts_ns: np.ndarray, timezone: str) -> np.ndarray:
    """Park-local midnight (as UTC ns) of each instant."""
    if not len(ts_ns):
        return np.asarray(ts_ns, dtype="int64")
    local = pd.DatetimeIndex(pd.to_datetime(ts_ns, unit="ns", utc=True)).tz_convert(timezone)
    return np.asarray(local.normalize().tz_convert("UTC").asi8, dtype="int64")


def bucket_stats(frame: pd.DataFrame, unit: str, timezone: str) -> pd.DataFrame:
    """Stats per (series, hour) or (series, park-local day) of readings (series, ts, value, quality)."""
    if not len(frame):
        return _empty()
    ts = pd.to_datetime(frame["ts"], utc=True).astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    start = ts - ts % HOUR_NS if unit == "hour" else day_starts(ts, timezone)
    codes, uniq = pd.factorize(frame["series"])  # group on integers: far cheaper than on strings
    work = pd.DataFrame({"code": codes, "start": start, "value": frame["value"].to_numpy(dtype="float64"),
                         "measured": (frame["quality"] == "measured").to_numpy(dtype=bool).astype("int64"),
                         "ts": ts})
    g = work.groupby(["code", "start"], sort=True)
    out = g.agg(sum=("value", "sum"), count=("value", "size"), measured=("measured", "sum"),
                min=("value", "min"), max=("value", "max"), first_ns=("ts", "min"), last_ns=("ts", "max"))
    out = out.reset_index()
    out.insert(0, "series", np.asarray(uniq, dtype=object)[out.pop("code").to_numpy()])
    return out.astype({"count": "int64", "measured": "int64"})


def days_from_hours(hours: pd.DataFrame, timezone: str) -> pd.DataFrame:
    """Daily stats from hourly ones (whole-hour offsets: each hour lies in one local day)."""
    if not len(hours):
        return _empty()
    work = hours.assign(start=day_starts(hours["start"].to_numpy(dtype="int64"), timezone))
    g = work.groupby(["series", "start"], sort=True)
    out = g.agg(sum=("sum", "sum"), count=("count", "sum"), measured=("measured", "sum"), min=("min", "min"),
                max=("max", "max"), first_ns=("first_ns", "min"), last_ns=("last_ns", "max"))
    return out.reset_index().astype({"count": "int64", "measured": "int64"})


def combine(stored: pd.DataFrame, batch: pd.DataFrame) -> pd.DataFrame:
    """Stored stats plus a batch's part of the same buckets, where no reading of one is in the other."""
    both = pd.concat([stored[list(COLUMNS)], batch[list(COLUMNS)]], ignore_index=True)
    g = both.groupby(["series", "start"], sort=True)
    out = g.agg(sum=("sum", "sum"), count=("count", "sum"), measured=("measured", "sum"), min=("min", "min"),
                max=("max", "max"), first_ns=("first_ns", "min"), last_ns=("last_ns", "max"))
    return out.reset_index().astype({"count": "int64", "measured": "int64"})


@dataclass
class Plan:
    """What a write does to the roll-ups."""

    hours: pd.DataFrame  # hour buckets computed on the client, to write as they are
    days: pd.DataFrame  # day buckets computed on the client, to write as they are
    recompute_hours: pd.DataFrame  # (series, start) of hours to rebuild from raw readings after the write
    recompute_days: pd.DataFrame  # (series, start) of days to rebuild from their hourly roll-ups after that


def plan(batch: pd.DataFrame, stored_hours: pd.DataFrame, stored_days: pd.DataFrame, timezone: str) -> Plan:
    """Fold a validated batch (series, ts, value, quality; one reading per series and ts) into the stored
    roll-ups of the buckets it touches (`stored_*`: COLUMNS, `last_ns` NaN when unknown)."""
    b_hours = bucket_stats(batch, "hour", timezone)
    stored_h = stored_hours.reindex(columns=list(COLUMNS))
    joined = b_hours.merge(stored_h[["series", "start", "last_ns"]].rename(columns={"last_ns": "stored_last"}),
                           on=["series", "start"], how="left", indicator=True)
    absent = (joined["_merge"] == "left_only").to_numpy()
    after = (joined["stored_last"].notna() & (joined["first_ns"] > joined["stored_last"])).to_numpy()
    append = absent | after
    fresh = b_hours[absent]
    appended = b_hours[after & ~absent]
    stored_appended = stored_h.merge(appended[["series", "start"]], on=["series", "start"])
    hours = pd.concat([fresh, combine(stored_appended, appended)], ignore_index=True) if len(appended) else fresh
    recompute_h = b_hours.loc[~append, ["series", "start"]].reset_index(drop=True)

    b_days = days_from_hours(b_hours, timezone)
    dirty = days_from_hours(b_hours[~append], timezone)[["series", "start"]]
    clean = b_days.merge(dirty, on=["series", "start"], how="left", indicator=True)
    clean = b_days[(clean["_merge"] == "left_only").to_numpy()]
    stored_d = stored_days.reindex(columns=list(COLUMNS)).merge(clean[["series", "start"]], on=["series", "start"])
    days = combine(stored_d, clean) if len(stored_d) else clean
    return Plan(hours.reset_index(drop=True), days.reset_index(drop=True), recompute_h, dirty.reset_index(drop=True))


__all__ = ["STATS", "COLUMNS", "Plan", "plan", "bucket_stats", "days_from_hours", "combine", "day_starts"]
