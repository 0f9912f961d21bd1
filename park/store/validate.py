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

from park.model import SeriesCatalog, SeriesInfo
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
    registers are read at any time, and the intervals made from them lie on the grid.

    Cost: the series (and quality) column is factorised once and every per-series rule, tag and the duplicate
    check work on those integer codes; string columns of the result are taken from their few distinct values
    (pyarrow-backed), never rebuilt from Python objects row by row."""
    spec: MeasurementSpec | None = MEASUREMENTS.get(measurement)
    if spec is None:
        raise SchemaError(f"unknown measurement {measurement!r}; known: {', '.join(MEASUREMENTS)}")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise SchemaError(f"batch lacks column(s) {', '.join(missing)}; a batch needs {', '.join(REQUIRED)}")
    df = frame.reset_index(drop=True)
    n = len(df)
    code = np.zeros(n, dtype=np.int8)  # first failing rule per row: 1 + its index in _ORDER, 0 = none yet

    def mark(mask: pd.Series | np.ndarray, rule: str) -> None:
        m = np.asarray(mask, dtype=bool) & (code == 0)
        code[m] = _CODE[rule]

    ts, bad_ts, naive_ts = _timestamps(df["ts"])
    mark(bad_ts, "reading.bad_timestamp")
    mark(naive_ts, "reading.naive_timestamp")

    codes, uniq = _factorize_text(df["series"])  # a missing series gets code -1
    infos = _infos(catalog, uniq)  # one look-up per distinct series
    in_catalog = np.array([i is not None for i in infos], dtype=bool)
    right_kind = np.array([i is not None and i.kind == spec.kind for i in infos], dtype=bool)
    known = codes >= 0
    mark(~known | ~np.append(in_catalog, False)[codes], "series.unknown")
    mark(~np.append(right_kind, False)[codes], "series.wrong_kind")

    ts_ns = ts.to_numpy(dtype="datetime64[ns]").view("int64")
    if grid and spec.default_agg == "sum":  # interval values (energy): one per interval, starting on the grid
        mark(_off_grid_codes(ts_ns, ts.notna().to_numpy(), codes, infos), "reading.off_grid")

    value, not_number = _values(df["value"])
    mark(not_number, "reading.not_a_number")
    values = value.to_numpy(dtype="float64")
    mark(~np.isfinite(values), "reading.not_finite")

    if "unit" in df.columns:
        units = df["unit"]
        factor = np.ones(n)
        series_text = df["series"].astype(str)
        for (s, u), idx in df.groupby([series_text, units.astype(str)], sort=False).indices.items():
            if s not in catalog or pd.isna(units.iloc[idx[0]]) or catalog[s].kind != spec.kind:
                continue
            target = catalog[s].unit if spec.unit_from_series else spec.unit
            try:
                factor[idx] = conversion_factor(u, target)
            except UnitError as exc:
                rows = np.zeros(n, dtype=bool)
                rows[idx] = True
                mark(rows, "reading.unit_mismatch" if "convert" in str(exc) else "reading.unknown_unit")
        values = values * factor
    if spec.non_negative:
        mark(values < 0, "reading.negative")

    if "quality" in df.columns:
        qcodes, quniq = _factorize_text(df["quality"], fill=Quality.MEASURED.value)
        mark(~np.array([q in QUALITIES for q in quniq], dtype=bool)[qcodes], "reading.bad_quality")
    else:
        qcodes, quniq = np.zeros(n, dtype=np.intp), np.array([Quality.MEASURED.value], dtype=object)

    bad = code != 0
    rejected = _rejections(df, bad, _CODES[code], catalog) if bad.any() else []
    keep = np.flatnonzero(~bad)
    kept = codes[keep]

    # Idempotence inside a batch: the last reading of a (series, ts) wins.
    last = _last_of_each(kept, ts_ns[keep])
    if last is not None:
        keep, kept = keep[last], kept[last]

    def tag(name: str) -> np.ndarray | pd.api.extensions.ExtensionArray:
        return _take(np.array([getattr(i, name) if i is not None else None for i in infos], dtype=object), kept)

    out = pd.DataFrame(
        {
            "series": _take(uniq, kept),
            "enterprise": tag("enterprise"),
            "workshop": tag("workshop"),
            "carrier": tag("carrier"),
            "ts": ts.iloc[keep].reset_index(drop=True),
            "value": values[keep],
            "quality": _take(quniq, qcodes[keep]),
            "row": keep,  # position in the input batch, so callers can map rows back to their source
        }
    )
    return ValidBatch(out, rejected)


_ORDER = tuple(RULES)
_CODE = {rule: i + 1 for i, rule in enumerate(_ORDER)}
_CODES = np.array([None, *_ORDER], dtype=object)


def _factorize_text(raw: pd.Series, fill: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Codes and distinct values (an object array of str) of a column read as text, as `astype(str)` reads it.

    `fill` replaces missing values first; without it a missing value gets code -1.  A column of strings is
    factorised as it is (no conversion of every row); anything else goes through `astype(str)` first, so
    1, 1.0 and True stay three different texts."""
    if isinstance(raw.dtype, pd.StringDtype):
        codes, uniq = pd.factorize(raw.fillna(fill) if fill is not None else raw)
    elif pd.api.types.is_object_dtype(raw.dtype) and pd.api.types.infer_dtype(raw, skipna=False) == "string":
        codes, uniq = pd.factorize(raw.to_numpy())
    else:
        codes, uniq = pd.factorize((raw.fillna(fill) if fill is not None else raw).astype(str))
    return codes.astype(np.intp, copy=False), np.asarray(uniq, dtype=object)


def _take(uniq: np.ndarray, codes: np.ndarray) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """`uniq[codes]` as the column pandas would make of it, built from the distinct values present only."""
    if not len(codes):
        return np.array([], dtype=object)
    present = np.flatnonzero(np.bincount(codes, minlength=len(uniq)))
    small = pd.Series(uniq[present]).array  # pandas infers the column's dtype from the values present
    if not isinstance(small.dtype, pd.StringDtype):
        return uniq[codes]
    where = np.zeros(len(uniq), dtype=np.intp)
    where[present] = np.arange(len(present))
    return small.take(where[codes])


def _last_of_each(codes: np.ndarray, ts_ns: np.ndarray) -> np.ndarray | None:
    """Positions (ascending) of the last row of each (series code, time); None when every pair is unique."""
    if len(codes) < 2:
        return None
    lo, hi = int(ts_ns.min()), int(ts_ns.max())
    width = int(codes.max()) + 1
    if (hi - lo + 1) * width < 2**62:  # one int64 key per row, time-major
        key = (ts_ns - lo) * width + codes
        if bool(np.all(key[1:] > key[:-1])):  # the usual batch: in time order, series in a fixed order
            return None
        dup = pd.Index(key).duplicated(keep="last")
        return np.flatnonzero(~dup) if dup.any() else None
    order = np.lexsort((ts_ns, codes))  # stable: equal pairs stay in input order
    same = (codes[order[1:]] == codes[order[:-1]]) & (ts_ns[order[1:]] == ts_ns[order[:-1]])
    if not same.any():
        return None
    dup = np.zeros(len(codes), dtype=bool)
    dup[order[:-1][same]] = True
    return np.flatnonzero(~dup)


def off_grid(ts: pd.Series, series: pd.Series, catalog: SeriesCatalog) -> np.ndarray:
    """Mask of aware timestamps not on their (known) series' interval grid."""
    codes, uniq = pd.factorize(series.astype(str))
    ts_ns = ts.to_numpy(dtype="datetime64[ns]").view("int64")
    return _off_grid_codes(ts_ns, ts.notna().to_numpy(), codes, _infos(catalog, uniq))


def _infos(catalog: SeriesCatalog, uniq: np.ndarray | pd.Index) -> list[SeriesInfo | None]:
    """The catalog entry of each distinct series, None for one not in the catalog."""
    return [catalog[s] if s in catalog else None for s in uniq]  # noqa: SIM401 (a SeriesCatalog has no .get)


def _off_grid_codes(ts_ns: np.ndarray, present: np.ndarray, codes: np.ndarray, infos: list[SeriesInfo | None]
                    ) -> np.ndarray:
    """`off_grid` on factorised series: `infos[code]` is the series' SeriesInfo, None when unknown."""
    step_s = np.array([_grid_s(i.interval_s) if i is not None else 0 for i in infos], dtype="int64")
    step_ns = step_s[codes] * 1_000_000_000 if len(infos) else np.zeros(len(ts_ns), dtype="int64")
    return (step_ns > 0) & (ts_ns % np.maximum(step_ns, 1) != 0) & present


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
    cells = _cells(df, rows)
    out = []
    for k, i in enumerate(rows):
        r = {c: v[k] for c, v in cells.items()} if cells is not None else df.iloc[i]
        line = int(lines.iloc[i]) if lines is not None and pd.notna(lines.iloc[i]) else None
        where = f"line {line}" if line is not None else f"row {i}"
        c = code[i]
        ts_text, value_text = _describe(r["ts"]), _describe(r["value"])  # each described once
        if c in ("reading.bad_timestamp", "reading.naive_timestamp"):
            detail = f"timestamp {ts_text}"
        elif c in ("series.unknown", "series.wrong_kind"):
            detail = f"series {r['series']!r}"
        elif c == "reading.unknown_unit":
            detail = f"unit {r.get('unit')!r}"
        elif c == "reading.unit_mismatch":
            detail = f"unit {r.get('unit')!r} for series {r['series']!r}"
        elif c == "reading.bad_quality":
            detail = f"quality {r.get('quality')!r}"
        elif c == "reading.off_grid":
            detail = (f"time {ts_text} is not on the {_grid_name(catalog[r['series']].interval_s)} of "
                      f"series {r['series']!r}")
        else:
            detail = f"value {value_text}"
        out.append(Rejection(int(i), line, str(r["series"]), ts_text, value_text, c, f"{where}: {detail}: {RULES[c]}"))
    return out


def _cells(df: pd.DataFrame, rows: np.ndarray) -> dict[str, list | np.ndarray] | None:
    """The cells of the described columns at `rows`, each the very value `df.iloc[row][column]` gives, read
    column by column (a row Series per rejected row cost ~0.2 ms).  None, so the caller falls back to
    `df.iloc`, when a row of `df` is not an object row (its values would be converted to a common dtype)."""
    if not df.columns.is_unique or df.iloc[rows[0]].dtype != object:
        return None
    cells: dict[str, list | np.ndarray] = {}
    for c in ("ts", "series", "value", "unit", "quality"):
        if c in df.columns:
            col = df[c].iloc[rows]
            if isinstance(col.dtype, np.dtype) and col.dtype.kind in "fiubO":
                cells[c] = col.to_numpy()  # numpy scalars, as an object row holds them
            else:
                cells[c] = list(col)  # Timestamps, str, NaN, ... boxed as .iloc boxes them
    return cells
