"""Client-side roll-ups (`park/store/rollup.py`): the vectorised `bucket_stats` and `fold` against the plain pandas
implementations they replaced (kept here verbatim as the reference), whatever the readings and stored buckets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from park.store import rollup
from park.store.rollup import COLUMNS, HOUR_NS, day_starts

TZ = "Asia/Shanghai"
T0 = pd.Timestamp("2024-03-01 20:00", tz=TZ).tz_convert("UTC")  # the slots cross a park-local midnight


# ---- the reference: rollup.py as of commit 1a9e92e (pandas groupby and merge) --------------------------------
def ref_bucket_stats(frame: pd.DataFrame, unit: str, timezone: str) -> pd.DataFrame:
    if not len(frame):
        return rollup._empty()
    ts = frame["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    start = ts - ts % HOUR_NS
    if unit != "hour":
        hours, inverse = np.unique(start, return_inverse=True)
        start = day_starts(hours, timezone)[inverse]
    codes, uniq = pd.factorize(frame["series"])
    buckets, slot = np.unique(start, return_inverse=True)
    work = pd.DataFrame({"value": frame["value"].to_numpy(dtype="float64"),
                         "measured": (frame["quality"] == "measured").to_numpy(dtype=bool).astype("int64"),
                         "ts": ts}, copy=False)
    g = work.groupby(codes.astype("int64") * len(buckets) + slot, sort=True)
    out = g.agg(sum=("value", "sum"), count=("value", "size"), measured=("measured", "sum"),
                min=("value", "min"), max=("value", "max"), first_ns=("ts", "min"), last_ns=("ts", "max"))
    key = out.index.to_numpy()
    out = out.reset_index(drop=True)
    out.insert(0, "start", buckets[key % len(buckets)])
    out.insert(0, "series", np.asarray(uniq, dtype=object)[key // len(buckets)])
    return out.astype({"count": "int64", "measured": "int64"})


def ref_combine(stored: pd.DataFrame, batch: pd.DataFrame) -> pd.DataFrame:
    both = pd.concat([stored[list(COLUMNS)], batch[list(COLUMNS)]], ignore_index=True)
    g = both.groupby(["series", "start"], sort=True)
    out = g.agg(sum=("sum", "sum"), count=("count", "sum"), measured=("measured", "sum"), min=("min", "min"),
                max=("max", "max"), first_ns=("first_ns", "min"), last_ns=("last_ns", "max"))
    return out.reset_index().astype({"count": "int64", "measured": "int64"})


def ref_fold(batch: pd.DataFrame, stored: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    stored = stored.reindex(columns=list(COLUMNS))
    joined = batch.merge(stored[["series", "start", "last_ns"]].rename(columns={"last_ns": "stored_last"}),
                         on=["series", "start"], how="left", indicator=True)
    absent = (joined["_merge"] == "left_only").to_numpy()
    after = (joined["stored_last"].notna() & (joined["first_ns"] > joined["stored_last"])).to_numpy()
    fresh = batch[absent]
    appended = batch[after & ~absent]
    if len(appended):
        fresh = pd.concat([fresh, ref_combine(stored.merge(appended[["series", "start"]], on=["series", "start"]),
                                              appended)], ignore_index=True)
    recompute = batch.loc[~(absent | after), ["series", "start"]]
    return fresh.reset_index(drop=True), recompute.reset_index(drop=True)


# ---- strategies ------------------------------------------------------------------------------------------------
_values = st.one_of(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), st.integers(-40, 40).map(float),
                    st.sampled_from([0.1, 0.2, 0.3, 1e-7, 1e20, -0.0]))


@st.composite
def readings(draw) -> pd.DataFrame:
    """Validated-looking readings: unique (series, ts), any order, over 30 quarter-hours around local midnight."""
    keys = draw(st.lists(st.tuples(st.sampled_from(["M1", "M2", "M3"]), st.integers(0, 29)), unique=True,
                         max_size=40))
    n = len(keys)
    return pd.DataFrame({"series": pd.Series([k[0] for k in keys], dtype="str"),
                         "ts": pd.DatetimeIndex([T0 + pd.Timedelta(minutes=15 * k[1]) for k in keys],
                                                dtype="datetime64[ns, UTC]"),
                         "value": draw(st.lists(_values, min_size=n, max_size=n)),
                         "quality": draw(st.lists(st.sampled_from(["measured", "estimated"]), min_size=n,
                                                  max_size=n))})


def _rows(frame: pd.DataFrame) -> list[tuple]:
    cols = [c for c in COLUMNS if c in frame]
    return sorted(tuple(None if isinstance(v, float) and np.isnan(v) else float(v) if not isinstance(v, str) else v
                        for v in row) for row in frame[cols].itertuples(index=False))


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    g, w = _rows(got), _rows(want)
    assert len(g) == len(w)
    for a, b in zip(g, w, strict=True):
        assert a[:2] == b[:2] and a[3:] == b[3:], (a, b)  # key, count, measured, min, max, first/last exactly
        assert a[2] == pytest.approx(b[2], rel=1e-12, abs=1e-9)  # sum: summation order may differ in last bits


@settings(max_examples=150, deadline=None)
@given(frame=readings(), unit=st.sampled_from(["hour", "day"]))
def test_bucket_stats_equals_the_pandas_groupby(frame, unit):
    got = rollup.bucket_stats(frame, unit, TZ)
    _assert_same(got, ref_bucket_stats(frame, unit, TZ))
    assert got["count"].dtype == "int64" and got["measured"].dtype == "int64"


@st.composite
def stored_buckets(draw, unit: str) -> pd.DataFrame:
    """Stored buckets as the store reads them back (float columns, first_ns NaN, last_ns NaN for an old point)."""
    base = rollup.bucket_stats(draw(readings()), unit, TZ)
    if not len(base):
        return base.assign(first_ns=np.nan)
    lasts = draw(st.lists(st.one_of(st.none(), st.integers(-2, 40)), min_size=len(base), max_size=len(base)))
    out = base.astype({c: "float64" for c in ("count", "measured", "last_ns")}).assign(first_ns=np.nan)
    out["last_ns"] = [np.nan if x is None else float(T0.value + x * 900_000_000_000) for x in lasts]
    return out


@settings(max_examples=150, deadline=None)
@given(data=st.data(), unit=st.sampled_from(["hour", "day"]))
def test_fold_equals_the_merge_and_groupby_fold(data, unit):
    batch = rollup.bucket_stats(data.draw(readings()), unit, TZ)
    stored = data.draw(stored_buckets(unit))
    fresh, recompute = rollup.fold(batch, stored)
    want_fresh, want_recompute = ref_fold(batch, stored)
    _assert_same(fresh, want_fresh)
    assert sorted(map(tuple, recompute.to_numpy().tolist())) == sorted(map(tuple, want_recompute.to_numpy().tolist()))
    assert fresh["count"].dtype == "int64" and fresh["measured"].dtype == "int64"


def test_fold_appends_only_after_the_stored_last_reading():
    """A worked example: M1's stored day ends at 01:00 and the batch starts at 01:15 (appended); M2's stored day
    has no `last_ns` (rebuilt); M3 has no stored day (written as it is)."""
    day = int(pd.Timestamp("2024-03-01", tz=TZ).value)
    batch = pd.DataFrame({"series": ["M1", "M2", "M3"], "start": [day] * 3, "sum": [2.0, 3.0, 4.0],
                          "count": [2, 3, 4], "measured": [1, 3, 4], "min": [0.5, 1.0, 1.0], "max": [1.5, 1.0, 1.0],
                          "first_ns": [day + 5 * 900 * 10**9] * 3, "last_ns": [day + 6 * 900 * 10**9] * 3})
    stored = pd.DataFrame({"series": ["M1", "M2"], "start": [day] * 2, "sum": [10.0, 1.0], "count": [5.0, 1.0],
                           "measured": [5.0, 1.0], "min": [0.25, 1.0], "max": [9.0, 1.0], "first_ns": np.nan,
                           "last_ns": [day + 4 * 900 * 10**9, np.nan]})
    fresh, recompute = rollup.fold(batch, stored)
    got = {r.series: (r.sum, r.count, r.measured, r.min, r.max, r.last_ns) for r in fresh.itertuples()}
    assert got == {"M1": (12.0, 7, 6, 0.25, 9.0, day + 6 * 900 * 10**9), "M3": (4.0, 4, 4, 1.0, 1.0,
                                                                                day + 6 * 900 * 10**9)}
    assert recompute.to_numpy().tolist() == [["M2", day]]
