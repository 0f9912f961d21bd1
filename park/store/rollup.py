"""Hourly and daily roll-ups computed on the client from the batch being written (pure functions, no I/O).

A roll-up bucket holds, per series and hour (or park-local day): `sum`, `count`, `measured`, `min`, `max` and
`last_ns`, the time of its newest reading.  A batch is folded into the stored buckets without reading raw data
back whenever that is exact, hours and days alike and each on its own:

- a bucket with no stored roll-up gets the batch's part as it is;
- a bucket whose stored readings all lie before the batch's first reading in it (`last_ns` < batch first: fresh
  data appended to a partly filled hour or day) gets the stored stats combined with the batch's part (sums and
  counts added, min of mins, max of maxes);
- any other bucket (the batch rewrites or interleaves with stored readings: a correction, a re-import, late
  data inside a filled bucket, or an old roll-up without `last_ns`) is **recomputed from the raw readings**
  after the batch is written; adding the batch's part would count an overwritten reading twice.

Hourly roll-ups are optional per measurement (`plan(..., stored_hours=None)`): the InfluxDB backend keeps them
only where readings are much denser than hourly (see `park/store/influx.py`).  Days need a time zone with
whole-hour UTC offsets (all of China) so that every hour lies in one local day.
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
    """Stats per (series, hour) or (series, park-local day) of readings (series, ts, value, quality; values
    finite, as validation leaves them).  Sorted by series (first appearance) and start."""
    if not len(frame):
        return _empty()
    ts = frame["ts"]
    ts = (ts.astype("datetime64[ns, UTC]").astype("int64").to_numpy() if isinstance(ts.dtype, pd.DatetimeTZDtype)
          else pd.to_datetime(ts, utc=True).astype("datetime64[ns, UTC]").astype("int64").to_numpy())
    start = ts - ts % HOUR_NS
    if unit != "hour":  # whole-hour offsets: the local day of an hour's start is the day of all of the hour
        hours, inverse = np.unique(start, return_inverse=True)  # a batch spans few hours: convert those only
        start = day_starts(hours, timezone)[inverse]
    codes, uniq = pd.factorize(frame["series"])  # group on integers: far cheaper than on strings
    buckets, slot = np.unique(start, return_inverse=True)
    key = codes.astype("int64") * len(buckets) + slot  # one integer key per bucket
    order = np.argsort(key, kind="stable")
    key = key[order]
    first = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1])))  # each bucket's first row in `order`
    value = frame["value"].to_numpy(dtype="float64")[order]
    measured = (frame["quality"] == "measured").to_numpy(dtype=bool)[order].astype("int64")
    ts = ts[order]
    key = key[first]
    return pd.DataFrame({
        "series": np.asarray(uniq, dtype=object)[key // len(buckets)], "start": buckets[key % len(buckets)],
        "sum": np.add.reduceat(value, first), "count": np.diff(np.append(first, len(order))).astype("int64"),
        "measured": np.add.reduceat(measured, first), "min": np.minimum.reduceat(value, first),
        "max": np.maximum.reduceat(value, first), "first_ns": np.minimum.reduceat(ts, first),
        "last_ns": np.maximum.reduceat(ts, first)})


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


def fold(batch: pd.DataFrame, stored: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The batch's buckets folded into the stored ones of the same unit: (buckets to write as they are,
    (series, start) of buckets to recompute from raw readings after the write).  Keys are unique in each."""
    stored = stored.reindex(columns=list(COLUMNS))
    if not len(batch):
        return batch.reset_index(drop=True), batch[["series", "start"]].reset_index(drop=True)
    # Match each batch bucket to its stored bucket on integer keys (series code, start code), not strings.
    codes, _ = pd.factorize(np.concatenate([np.asarray(batch["series"], dtype=object),
                                            np.asarray(stored["series"], dtype=object)]))
    starts = np.concatenate([batch["start"].to_numpy(dtype="int64"), stored["start"].to_numpy(dtype="int64")])
    scodes, suniq = pd.factorize(starts)
    key = codes.astype("int64") * max(len(suniq), 1) + scodes
    bkey, skey = key[:len(batch)], key[len(batch):]
    order = np.argsort(skey, kind="stable")
    pos = np.searchsorted(skey[order], bkey).clip(0, max(len(skey) - 1, 0))
    match = order[pos] if len(skey) else np.zeros(len(bkey), dtype="int64")
    found = (skey[match] == bkey) if len(skey) else np.zeros(len(bkey), dtype=bool)
    stored_last = stored["last_ns"].to_numpy(dtype="float64")[match] if len(skey) else np.full(len(bkey), np.nan)
    first_ns = batch["first_ns"].to_numpy(dtype="float64")
    after = found & ~np.isnan(stored_last) & (first_ns > stored_last)
    fresh = batch[~found]
    if after.any():  # stored stats plus the batch's part: no reading of one is in the other
        b, s = batch[after], stored.iloc[match[after]]
        appended = pd.DataFrame({
            "series": b["series"].to_numpy(), "start": b["start"].to_numpy(dtype="int64"),
            "sum": s["sum"].to_numpy(dtype="float64") + b["sum"].to_numpy(dtype="float64"),
            "count": s["count"].to_numpy(dtype="float64").astype("int64") + b["count"].to_numpy(dtype="int64"),
            "measured": (s["measured"].to_numpy(dtype="float64").astype("int64")
                         + b["measured"].to_numpy(dtype="int64")),
            "min": np.fmin(s["min"].to_numpy(dtype="float64"), b["min"].to_numpy(dtype="float64")),
            "max": np.fmax(s["max"].to_numpy(dtype="float64"), b["max"].to_numpy(dtype="float64")),
            "first_ns": np.fmin(s["first_ns"].to_numpy(dtype="float64"), b["first_ns"].to_numpy(dtype="float64")),
            "last_ns": b["last_ns"].to_numpy(dtype="int64")})  # > the stored last, by `after`
        fresh = pd.concat([fresh, appended], ignore_index=True)
    recompute = batch.loc[found & ~after, ["series", "start"]]
    return fresh.reset_index(drop=True), recompute.reset_index(drop=True)


@dataclass
class Plan:
    """What a write does to the roll-ups."""

    hours: pd.DataFrame  # hour buckets computed on the client, to write as they are
    days: pd.DataFrame  # day buckets computed on the client, to write as they are
    recompute_hours: pd.DataFrame  # (series, start) of hours to rebuild from raw readings after the write
    recompute_days: pd.DataFrame  # (series, start) of days to rebuild from raw readings after the write


def plan(batch: pd.DataFrame, stored_hours: pd.DataFrame | None, stored_days: pd.DataFrame, timezone: str) -> Plan:
    """Fold a validated batch (series, ts, value, quality; one reading per series and ts) into the stored
    roll-ups of the buckets it touches (`stored_*`: COLUMNS, `last_ns` NaN when unknown).  `stored_hours`
    None: the measurement keeps no hourly roll-ups (none are planned)."""
    if stored_hours is None:
        hours, recompute_h = _empty(), _empty()[["series", "start"]]
    else:
        hours, recompute_h = fold(bucket_stats(batch, "hour", timezone), stored_hours)
    days, recompute_d = fold(bucket_stats(batch, "day", timezone), stored_days)
    return Plan(hours, days, recompute_h, recompute_d)


__all__ = ["STATS", "COLUMNS", "Plan", "plan", "fold", "bucket_stats", "days_from_hours", "combine", "day_starts"]
