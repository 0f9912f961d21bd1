"""park.store.validate: the vectorised validator gives exactly the outcomes of the one it replaced.

The reference below is the validator as it was at commit 8e0d955 (before issue 11), copied verbatim apart from
its names (old_validate, old_off_grid, OldValidBatch).  Hypothesis draws batches with duplicates, NaN and
infinite values, naive and aware timestamps, unknown series and mixed dtypes; both must accept the same rows
(the same frame, dtypes included), reject the same rows with the same codes and reasons in the same order, and
raise the same errors.  One intended difference: a missing series is rejected (series.unknown); the old one
looked it up with code -1 and so took the last distinct series of the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from park.model import SeriesCatalog, SeriesInfo
from park.store.errors import SchemaError
from park.store.schema import MEASUREMENTS, QUALITIES, MeasurementSpec, Quality, Rejection
from park.store.validate import RULES, ValidBatch, off_grid, validate
from park.units import UnitError, conversion_factor

# ---- the reference: park/store/validate.py at 8e0d955 -------------------------------------------------------

REQUIRED = ("ts", "series", "value")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Rule catalogue of the store's own checks (the collectors add theirs): code -> sentence.
_OLD_RULES = {
    "reading.bad_timestamp": "timestamp cannot be read as a date and time",
    "reading.naive_timestamp": "timestamp has no time zone; give an offset (e.g. +08:00) or UTC",
    "series.unknown": "series is not a meter or device of this park",
    "series.wrong_kind": "series is of another kind than the measurement",
    "reading.not_a_number": "value is not a number",
    "reading.not_finite": "value is NaN or infinite; a missing interval is left out, not written",
    "reading.negative": "value is negative where only non-negative values are possible",
    "reading.bad_quality": f"quality must be one of {', '.join(sorted(QUALITIES))}",
    "reading.unknown_unit": "unit is not known",
    "reading.unit_mismatch": "unit is of another dimension than the series' unit",
    "reading.off_grid": "an interval value must start on its series' interval grid",
}


@dataclass
class OldValidBatch:
    """The rows that passed, with their tags resolved, ready for a backend."""

    frame: pd.DataFrame  # series, enterprise, workshop, carrier, ts (datetime64[ns, UTC]), value, quality, row
    rejected: list[Rejection]


def _timestamps(raw: pd.Series) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Parse timestamps to UTC; return (ts, bad_mask, naive_mask)."""
    n = len(raw)
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        ts = raw.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
        return ts, raw.isna(), pd.Series(False, index=raw.index)
    if pd.api.types.is_datetime64_dtype(raw.dtype):
        return pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]"), raw.isna(), ~raw.isna()
    values = raw.to_numpy(dtype=object)
    if len(values) and all(isinstance(v, datetime) and v.tzinfo is not None for v in values):
        # Aware datetimes from a source (the common case): exact integer microseconds, then one conversion.
        micros = np.fromiter(((v - _EPOCH) // _MICROSECOND for v in values), dtype="int64", count=len(values))
        ts = pd.Series(pd.to_datetime(micros, unit="us", utc=True), index=raw.index).astype("datetime64[ns, UTC]")
        return ts, pd.Series(False, index=raw.index), pd.Series(False, index=raw.index)
    # Mixed objects or strings: decide row by row whether a zone is given.
    out = np.empty(n, dtype="datetime64[ns]")
    bad = np.zeros(n, dtype=bool)
    naive = np.zeros(n, dtype=bool)
    for i, v in enumerate(values):
        try:
            t = pd.Timestamp(v.strip() if isinstance(v, str) else v)
        except (ValueError, TypeError, OverflowError):
            bad[i] = True
            continue
        if t is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            bad[i] = True
        elif t.tzinfo is None:
            naive[i] = True
        else:
            out[i] = t.tz_convert("UTC").tz_localize(None).to_datetime64()
    ts = pd.Series(out, index=raw.index).dt.tz_localize("UTC")
    return ts, pd.Series(bad, index=raw.index), pd.Series(naive, index=raw.index)


def _values(raw: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Values as float64; return (values, not_a_number_mask)."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        return pd.Series(np.nan, index=raw.index), pd.Series(True, index=raw.index)
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.astype("float64"), pd.Series(False, index=raw.index)
    if pd.api.types.is_string_dtype(raw.dtype) and not pd.api.types.is_object_dtype(raw.dtype):
        # Text from a file: a fast vectorised parse; "nan"/"inf" parse as floats and fail the finiteness rule.
        num = pd.to_numeric(raw.str.strip(), errors="coerce").astype("float64")
        spelled_nan = raw.str.strip().str.lower().isin(["nan", "+nan", "-nan"])
        return num, (num.isna() & ~spelled_nan).fillna(True)
    as_obj = raw.astype(object)
    is_bool = as_obj.map(lambda v: isinstance(v, bool | np.bool_))
    num = pd.to_numeric(as_obj.where(~is_bool), errors="coerce").astype("float64")
    looks_nan = as_obj.map(lambda v: isinstance(v, float) and math.isnan(v)) | as_obj.isna()
    not_number = (num.isna() & ~looks_nan) | is_bool
    return num, not_number


def old_validate(
    frame: pd.DataFrame, measurement: str, catalog: SeriesCatalog, *, grid: bool = False
) -> OldValidBatch:
    """Check a batch of readings of one measurement against the catalog.

    `grid=True` (what the store's `write` asks): interval values (energy) must start on their series' interval
    grid (`reading.off_grid`).  A collector validating raw register readings before normalisation leaves it off:
    registers are read at any time, and the intervals made from them lie on the grid."""
    spec: MeasurementSpec | None = MEASUREMENTS.get(measurement)
    if spec is None:
        raise SchemaError(f"unknown measurement {measurement!r}; known: {', '.join(MEASUREMENTS)}")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise SchemaError(f"batch lacks column(s) {', '.join(missing)}; a batch needs {', '.join(REQUIRED)}")
    df = frame.reset_index(drop=True)
    n = len(df)
    code = np.full(n, None, dtype=object)  # first failing rule per row

    def mark(mask: pd.Series | np.ndarray, rule: str) -> None:
        m = np.asarray(mask, dtype=bool) & (code == None)  # noqa: E711 (elementwise)
        code[m] = rule

    ts, bad_ts, naive_ts = _timestamps(df["ts"])
    mark(bad_ts, "reading.bad_timestamp")
    mark(naive_ts, "reading.naive_timestamp")

    series = df["series"].astype(str)
    codes, uniq = pd.factorize(series)
    in_catalog = np.array([s in catalog for s in uniq], dtype=bool)
    right_kind = np.array([s in catalog and catalog[s].kind == spec.kind for s in uniq], dtype=bool)
    mark(~in_catalog[codes], "series.unknown")
    mark(~right_kind[codes], "series.wrong_kind")

    if grid and spec.default_agg == "sum":  # interval values (energy): one per interval, starting on the grid
        mark(old_off_grid(ts, series, catalog), "reading.off_grid")

    value, not_number = _values(df["value"])
    mark(not_number, "reading.not_a_number")
    mark(~np.isfinite(value.to_numpy()), "reading.not_finite")

    if "unit" in df.columns:
        units = df["unit"]
        factor = np.ones(n)
        for (s, u), idx in df.groupby([series, units.astype(str)], sort=False).indices.items():
            if s not in catalog or pd.isna(units.iloc[idx[0]]) or catalog[s].kind != spec.kind:
                continue
            target = catalog[s].unit if spec.unit_from_series else spec.unit
            try:
                factor[idx] = conversion_factor(u, target)
            except UnitError as exc:
                mark(pd.Series(np.isin(np.arange(n), idx)),
                     "reading.unit_mismatch" if "convert" in str(exc) else "reading.unknown_unit")
        value = value * factor
    if spec.non_negative:
        mark(value.to_numpy() < 0, "reading.negative")

    if "quality" in df.columns:
        quality = df["quality"].fillna(Quality.MEASURED.value).astype(str)
        qcodes, quniq = pd.factorize(quality)
        mark(~np.isin(np.array([q in QUALITIES for q in quniq], dtype=bool)[qcodes], True), "reading.bad_quality")
    else:
        quality = pd.Series(Quality.MEASURED.value, index=df.index)

    bad = code != None  # noqa: E711
    rejected = _rejections(df, bad, code, catalog) if bad.any() else []
    good = ~bad
    keep = np.flatnonzero(good)
    uniq_list = list(uniq)

    def tag(name: str) -> np.ndarray:
        per_series = np.array([getattr(catalog[s], name) if s in catalog else None for s in uniq_list], dtype=object)
        return per_series[codes[keep]] if len(uniq_list) else np.array([], dtype=object)

    out = pd.DataFrame(
        {
            "series": series.iloc[keep].to_numpy(dtype=object),
            "enterprise": tag("enterprise"),
            "workshop": tag("workshop"),
            "carrier": tag("carrier"),
            "ts": ts.iloc[keep].reset_index(drop=True),
            "value": value.to_numpy()[keep],
            "quality": quality.iloc[keep].to_numpy(dtype=object),
            "row": keep,  # position in the input batch, so callers can map rows back to their source
        }
    )
    # Idempotence inside a batch: the last reading of a (series, ts) wins.
    if out.duplicated(["series", "ts"], keep="last").any():
        out = out.drop_duplicates(["series", "ts"], keep="last").reset_index(drop=True)
    return OldValidBatch(out, rejected)


def old_off_grid(ts: pd.Series, series: pd.Series, catalog: SeriesCatalog) -> np.ndarray:
    """Mask of aware timestamps not on their (known) series' interval grid."""
    codes, uniq = pd.factorize(series.astype(str))
    step_s = np.array([_grid_s(catalog[s].interval_s) if s in catalog else 0 for s in uniq], dtype="int64")
    step_ns = step_s[codes] * 1_000_000_000 if len(uniq) else np.zeros(len(ts), dtype="int64")
    ts_ns = ts.to_numpy(dtype="datetime64[ns]").view("int64")
    return (step_ns > 0) & (ts_ns % np.maximum(step_ns, 1) != 0) & ts.notna().to_numpy()


def _grid_s(interval_s: int) -> int:
    """The grid an interval of this length starts on: multiples of it from the hour when it divides an hour
    (whole-hour offsets make that the park-local grid too), else whole hours."""
    return interval_s if 3600 % interval_s == 0 else math.gcd(interval_s, 3600)


def _grid_name(interval_s: int) -> str:
    step = _grid_s(interval_s)
    if step == 3600:
        return "hourly grid (on the hour)"
    if step % 60 == 0:
        marks = ", ".join(f":{m:02d}" for m in range(0, 60, step // 60))
        return f"{step // 60}-minute grid ({marks})" if len(marks) < 60 else f"{step // 60}-minute grid"
    return f"{step}-second grid"


def _describe(v: object) -> str:
    if isinstance(v, datetime | pd.Timestamp):
        return v.isoformat()
    return repr(v) if isinstance(v, str) else str(v)


def _rejections(df: pd.DataFrame, bad: np.ndarray, code: np.ndarray, catalog: SeriesCatalog) -> list[Rejection]:
    rows = np.flatnonzero(bad)
    lines = df["line"] if "line" in df.columns else None
    out = []
    for i in rows:
        r = df.iloc[i]
        line = int(lines.iloc[i]) if lines is not None and pd.notna(lines.iloc[i]) else None
        where = f"line {line}" if line is not None else f"row {i}"
        c = code[i]
        detail = {
            "reading.bad_timestamp": f"timestamp {_describe(r['ts'])}",
            "reading.naive_timestamp": f"timestamp {_describe(r['ts'])}",
            "series.unknown": f"series {r['series']!r}",
            "series.wrong_kind": f"series {r['series']!r}",
            "reading.unknown_unit": f"unit {r.get('unit')!r}",
            "reading.unit_mismatch": f"unit {r.get('unit')!r} for series {r['series']!r}",
            "reading.bad_quality": f"quality {r.get('quality')!r}",
        }.get(c, f"value {_describe(r['value'])}")
        if c == "reading.off_grid":
            detail = (f"time {_describe(r['ts'])} is not on the {_grid_name(catalog[r['series']].interval_s)} of "
                      f"series {r['series']!r}")
        out.append(
            Rejection(int(i), line, str(r["series"]), _describe(r["ts"]), _describe(r["value"]), c,
                      f"{where}: {detail}: {_OLD_RULES[c]}")
        )
    return out


# ---- the comparison ----------------------------------------------------------------------------------------

CATALOG = SeriesCatalog([
    SeriesInfo("E1-M1", "meter", "E1", "E1-W1", "electricity", "kWh"),
    SeriesInfo("E1-M2", "meter", "E1", "E1-W2", "electricity", "kWh"),
    SeriesInfo("E1-GAS", "meter", "E1", None, "natural_gas", "m3", 3600),
    SeriesInfo("E1-STEAM", "meter", "E1", None, "steam", "GJ", 1800),
    SeriesInfo("E2-M1", "meter", "E2", "E2-W1", "electricity", "kWh", 300),
    SeriesInfo("E2-D1", "device", "E2", "E2-W1", None, "A", 60),
])
KNOWN = [s.id for s in CATALOG.series]
BASE = datetime(2024, 3, 4, tzinfo=UTC)
# A few instants, most on the 5/15/30/60-minute grids, so (series, time) pairs repeat within a batch.
OFFSETS_S = [0, 300, 900, 1800, 3600, 3600, 60, 7]
ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]


def instant(draw, offsets=OFFSETS_S) -> datetime:
    return BASE + timedelta(seconds=draw(st.sampled_from(offsets))) + timedelta(
        microseconds=draw(st.sampled_from([0, 0, 0, 1])))


@st.composite
def ts_column(draw, n: int) -> pd.Series:
    mode = draw(st.sampled_from(["aware64"] * 3 + ["aware_objects"] * 2 + ["naive64", "mixed", "text"]))
    zone = draw(st.sampled_from(ZONES))
    times = [instant(draw).astimezone(zone) for _ in range(n)]
    if mode == "aware64":
        col = pd.Series(pd.to_datetime(times, utc=True)).dt.tz_convert(draw(st.sampled_from(["UTC", "Asia/Shanghai"])))
        if n and draw(st.booleans()):
            col.iloc[draw(st.integers(0, n - 1))] = pd.NaT
        return col
    if mode == "naive64":
        return pd.Series(pd.to_datetime([t.replace(tzinfo=None) for t in times]))
    if mode == "aware_objects":
        return pd.Series(times, dtype=object)
    if mode == "text":
        return pd.Series([t.isoformat() if draw(st.booleans()) else t.replace(tzinfo=None).isoformat()
                          for t in times], dtype=draw(st.sampled_from([object, "str"])))
    choices = [lambda t: t, lambda t: t.replace(tzinfo=None), lambda t: " " + t.isoformat() + " ",
               lambda t: t.replace(tzinfo=None).isoformat(), lambda t: pd.Timestamp(t), lambda t: None,
               lambda t: float("nan"), lambda t: "not a time", lambda t: 17, lambda t: "2024-02-30T00:00+08:00"]
    return pd.Series([draw(st.sampled_from(choices))(t) for t in times], dtype=object)


@st.composite
def series_column(draw, n: int) -> pd.Series:
    pool = KNOWN * 3 + ["E9-NOPE", "e1-m1", " E1-M1"]
    mode = draw(st.sampled_from(["object", "object", "str", "category", "mixed"]))
    if mode == "mixed":
        pool = pool + [1, 1.0, True, "1", "1.0", "True", np.str_("E1-M2"), 2.5]  # astype(str) merges some
    names = [draw(st.sampled_from(pool)) for _ in range(n)]
    if mode == "category":
        return pd.Series(names, dtype="category")
    return pd.Series(names, dtype="str" if mode == "str" else object)


@st.composite
def value_column(draw, n: int) -> pd.Series:
    floats = st.one_of(st.sampled_from([0.0, 1.5, -2.0, 1e308, float("nan"), float("inf"), float("-inf")]),
                       st.floats(-1e6, 1e6))
    mode = draw(st.sampled_from(["float"] * 4 + ["int", "bool", "object", "text"]))
    if mode == "float":
        return pd.Series([draw(floats) for _ in range(n)], dtype="float64")
    if mode == "int":
        return pd.Series([draw(st.integers(-5, 5)) for _ in range(n)], dtype="int64")
    if mode == "bool":
        return pd.Series([draw(st.booleans()) for _ in range(n)], dtype=bool)
    objects = st.one_of(floats, st.integers(-5, 5), st.booleans(), st.none(),
                        st.sampled_from(["1.5", " 2 ", "nan", "-NaN", "inf", "abc", "", "-3"]))
    if mode == "object":
        return pd.Series([draw(objects) for _ in range(n)], dtype=object)
    texts = st.sampled_from(["1.5", " 2 ", "nan", "-NaN", "inf", "abc", "", "-3", "0.25", None])
    return pd.Series([draw(texts) for _ in range(n)], dtype="str")


@st.composite
def batches(draw) -> tuple[pd.DataFrame, str, bool]:
    n = draw(st.integers(0, 24))
    frame = pd.DataFrame({"ts": draw(ts_column(n)), "series": draw(series_column(n)), "value": draw(value_column(n))})
    if draw(st.booleans()):
        qualities = sorted(QUALITIES) + ["bogus", None, float("nan")]
        frame["quality"] = pd.Series([draw(st.sampled_from(qualities)) for _ in range(n)],
                                     dtype=draw(st.sampled_from([object, "str"])))
    if draw(st.integers(0, 3)) == 0:
        frame["unit"] = pd.Series([draw(st.sampled_from(["kWh", "MWh", "Wh", "m3", "GJ", "A", "kW", "furlong",
                                                          None])) for _ in range(n)], dtype=object)
    if draw(st.booleans()):
        frame["line"] = pd.Series([draw(st.one_of(st.integers(1, 99), st.none())) for _ in range(n)], dtype=object)
    if n and draw(st.booleans()):  # an index that is not 0..n-1
        frame.index = pd.Index(draw(st.permutations(range(100, 100 + n))))
    return frame, draw(st.sampled_from(list(MEASUREMENTS) + ["energy", "energy"])), draw(st.booleans())


def outcome(fn, frame: pd.DataFrame, measurement: str, grid: bool):
    try:
        return fn(frame.copy(), measurement, CATALOG, grid=grid)
    except Exception as exc:  # noqa: BLE001 - the comparison is of the errors too
        return exc


def assert_same(old, new) -> None:
    if isinstance(old, Exception) or isinstance(new, Exception):
        assert type(new) is type(old) and str(new) == str(old), (old, new)
        return
    assert isinstance(new, ValidBatch)
    assert new.rejected == old.rejected
    pd.testing.assert_frame_equal(new.frame, old.frame, check_exact=True)


@settings(max_examples=300)
@given(batches())
def test_the_vectorised_validator_gives_the_old_outcomes(case):
    frame, measurement, grid = case
    assert_same(outcome(old_validate, frame, measurement, grid), outcome(validate, frame, measurement, grid))


@given(st.integers(1, 400), st.data())
def test_duplicates_keep_the_last_reading_of_each_series_and_time_like_before(n, data):
    """Bigger clean batches, many (series, ts) repeats: only the duplicate rule is at work."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    frame = pd.DataFrame({
        "ts": pd.to_datetime(BASE) + pd.to_timedelta(rng.integers(0, 6, n) * 900, unit="s"),
        "series": pd.Series(rng.choice(KNOWN[:4], n), dtype=data.draw(st.sampled_from([object, "str"]))),
        "value": rng.random(n).round(3),
    })
    assert_same(outcome(old_validate, frame, "energy", True), outcome(validate, frame, "energy", True))


def test_duplicates_far_apart_in_time_use_the_sorted_path():
    """Times spanning centuries overflow the one-integer key; the lexsort path must agree."""
    ts = pd.to_datetime(["1700-01-01T00:00Z", "2250-01-01T00:00Z", "1700-01-01T00:00Z", "2250-01-01T00:00Z"])
    frame = pd.DataFrame({"ts": ts, "series": ["E1-M1", "E1-M1", "E1-M1", "E1-M2"], "value": [1.0, 2.0, 3.0, 4.0]})
    new = validate(frame, "energy", CATALOG)
    assert new.frame["value"].tolist() == [2.0, 3.0, 4.0]
    assert_same(old_validate(frame, "energy", CATALOG), new)


def test_errors_are_the_same():
    frame = pd.DataFrame({"ts": [BASE], "series": ["E1-M1"], "value": [1.0]})
    for bad in (frame.drop(columns=["value"]), frame):
        measurement = "energy" if "value" not in bad else "heat"
        with pytest.raises(SchemaError) as old:
            old_validate(bad, measurement, CATALOG)
        with pytest.raises(SchemaError) as new:
            validate(bad, measurement, CATALOG)
        assert str(new.value) == str(old.value)


def test_rule_catalogue_unchanged():
    assert RULES == _OLD_RULES


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_a_missing_series_is_unknown_even_after_a_known_one(missing):
    """The old validator looked a missing series up as the batch's last distinct series (code -1) and wrote
    the reading under no series with that series' tags.  Now it is quarantined as series.unknown."""
    frame = pd.DataFrame({"ts": [BASE, BASE], "series": pd.Series([missing, "E1-M1"], dtype=object),
                          "value": [1.0, 2.0]})
    assert len(old_validate(frame, "energy", CATALOG).frame) == 2  # the old fault, kept here as the record
    new = validate(frame, "energy", CATALOG)
    assert new.frame["series"].tolist() == ["E1-M1"]
    assert [(r.row, r.code) for r in new.rejected] == [(0, "series.unknown")]


def test_off_grid_is_unchanged_for_callers():
    ts = pd.Series(pd.to_datetime([BASE, BASE + timedelta(minutes=7), BASE + timedelta(minutes=30)]))
    series = pd.Series(["E1-M1", "E1-GAS", "nope"])
    assert off_grid(ts, series, CATALOG).tolist() == old_off_grid(ts, series, CATALOG).tolist() == [
        False, True, False]
