"""Validation of a batch of readings before either backend writes it.

Vectorised over the whole batch: each rule marks the rows it rejects with a stable code and a
sentence naming the row, the series and the offending value.  Good rows go on; bad rows come back as
`Rejection`s for quarantine.  Validation never alters a value except to convert a known unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from park.model import SeriesCatalog
from park.store.errors import SchemaError
from park.store.schema import MEASUREMENTS, QUALITIES, MeasurementSpec, Quality, Rejection
from park.units import UnitError, conversion_factor

REQUIRED = ("ts", "series", "value")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

# Rule catalogue of the store's own checks (the collectors add theirs): code -> sentence.
RULES = {
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
class ValidBatch:
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


def validate(
    frame: pd.DataFrame, measurement: str, catalog: SeriesCatalog, *, grid: bool = False
) -> ValidBatch:
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
        mark(off_grid(ts, series, catalog), "reading.off_grid")

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
    return ValidBatch(out, rejected)


def off_grid(ts: pd.Series, series: pd.Series, catalog: SeriesCatalog) -> np.ndarray:
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
                      f"{where}: {detail}: {RULES[c]}")
        )
    return out
