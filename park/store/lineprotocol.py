"""Line-protocol serialisation of validated batches, vectorised per series.

Escaping follows the InfluxDB line-protocol rules exactly as influxdb-client's `Point` applies them
(tests compare the two byte for byte); we serialise column-wise because building one `Point` object per
reading costs more than the server's own parsing of the line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

_TAG_ESCAPES = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\=", "\n": "\\n", "\r": "\\r",
                              "\t": "\\t"})
_MEASUREMENT_ESCAPES = str.maketrans({",": "\\,", " ": "\\ ", "\n": "\\n", "\r": "\\r", "\t": "\\t"})
TAG_COLUMNS = ("carrier", "enterprise", "series", "workshop")  # sorted: the server's preferred order


def escape_tag(value: str) -> str:
    return str(value).translate(_TAG_ESCAPES)


def escape_measurement(value: str) -> str:
    return str(value).translate(_MEASUREMENT_ESCAPES)


def escape_field_string(value: str) -> str:
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _empty(v: object) -> bool:
    return v is None or v == "" or (isinstance(v, float) and np.isnan(v))


def series_key(measurement: str, tags: dict[str, str | None]) -> str:
    """`measurement,tag=value,...` with tags sorted and empty tags left out (line protocol has no null tag)."""
    parts = [escape_measurement(measurement)]
    parts += [f"{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if not _empty(v)]
    return ",".join(parts)


def info_key(measurement: str, info) -> str:
    """`series_key` of a catalog series, spelled out (tags in sorted order: carrier, enterprise, series,
    workshop): 2 000 series a store, for each measurement and roll-up measurement."""
    parts = [escape_measurement(measurement)]
    for name, value in (("carrier", info.carrier), ("enterprise", info.enterprise), ("series", info.id),
                        ("workshop", info.workshop)):
        if not _empty(value):
            parts.append(name + "=" + str(value).translate(_TAG_ESCAPES))
    return ",".join(parts)


def series_keys(measurement: str, catalog) -> dict[str, str]:
    """The line-protocol prefix of every series of a catalog, built once per store and measurement."""
    return {info.id: info_key(measurement, info) for info in catalog.series}


class _Columns:
    """A validated frame's columns as Arrow pieces of its lines, prepared once for the whole frame: each row's
    series key and quality field (one string per series and quality), its value and its timestamp."""

    def __init__(self, frame: pd.DataFrame, keys: Mapping[str, str], precision: str) -> None:
        codes, uniq = pd.factorize(frame["series"])
        qcodes, quniq = pd.factorize(frame["quality"])
        heads = [f" quality={escape_field_string(q)},value=" for q in quniq]
        self.heads = pa.array([keys[s] + h for s in uniq for h in heads], pa.string())
        self.codes = pa.array(codes.astype("int64") * len(heads) + qcodes)
        divisor = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[precision]
        self.ts = pa.array(frame["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy() // divisor)
        self.values = pa.array(frame["value"].to_numpy(dtype="float64"))

    def lines(self, start: int = 0, stop: int | None = None) -> pa.Array:
        n = (len(self.codes) if stop is None else min(stop, len(self.codes))) - start
        return pc.binary_join_element_wise(pc.take(self.heads, self.codes.slice(start, n)),
                                           pc.cast(self.values.slice(start, n), pa.string()), " ",
                                           pc.cast(self.ts.slice(start, n), pa.string()), "")


def encode_lines(frame: pd.DataFrame, keys: Mapping[str, str], precision: str = "s") -> pa.Array:
    """One line per row of a validated frame (series, ts, value, quality), built column-wise in Arrow.

    Fields are in sorted order as influxdb-client writes them; floats are in their shortest round-trip form
    (Arrow's, e.g. `1e-7` where Python writes `1e-07`: the server reads both as the same double)."""
    return _Columns(frame, keys, precision).lines()


def encode_bodies(frame: pd.DataFrame, keys: Mapping[str, str], precision: str, size: int) -> Iterator[bytes]:
    """The request bodies of `size` lines each (the last shorter), the same bytes as `join_lines` of slices of
    `encode_lines`, each encoded only when asked for: the first can be posted while the next are encoded."""
    columns = _Columns(frame, keys, precision)
    for i in range(0, len(frame), size):
        yield join_lines(columns.lines(i, i + size))


def join_lines(lines: pa.Array) -> bytes:
    """A request body from encoded lines (or a slice of them): joined by newlines, never Python strings."""
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines), "\n")
    return joined[0].as_buffer().to_pybytes()


def encode_body(frame: pd.DataFrame, keys: Mapping[str, str], precision: str = "s") -> bytes:
    """A whole request body: the lines joined by newlines, never materialised as Python strings."""
    return join_lines(encode_lines(frame, keys, precision))


def serialise(measurement: str, frame: pd.DataFrame, precision: str = "s",
              keys: Mapping[str, str] | None = None) -> list[str]:
    """The lines as Python strings (for small batches and tests)."""
    if keys is None:
        first = frame.drop_duplicates("series")
        keys = {r.series: series_key(measurement, {"series": r.series, "enterprise": r.enterprise,
                                                   "workshop": r.workshop, "carrier": r.carrier})
                for r in first.itertuples(index=False)}
    return encode_lines(frame, keys, precision).to_pylist()


def best_precision(ts: pd.Series) -> str:
    """The coarsest precision that loses nothing: 's' for whole seconds (the usual case), else finer."""
    ns = ts.astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    for precision, div in (("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)):
        if not (ns % div).any():
            return precision
    return "ns"


def encode_rollups(frame: pd.DataFrame, keys: Mapping[str, str], with_last: bool) -> bytes:
    """Roll-up points (series, start in UTC ns, sum, count, measured, min, max[, last_ns]) as one request body,
    timestamps in seconds; counts and `last_ns` are integer fields (`i`), as InfluxQL's count() writes them."""
    if not len(frame):
        return b""
    codes, uniq = pd.factorize(frame["series"])
    parts = [pc.take(pa.array([keys[s] for s in uniq], pa.string()), pa.array(codes))]

    def num(col: str, integer: bool) -> pa.Array:
        values = frame[col].to_numpy(dtype="int64" if integer else "float64")
        return pc.cast(pa.array(values), pa.string())

    parts += [" count=", num("count", True), "i"]
    if with_last:
        parts += [",last_ns=", num("last_ns", True), "i"]
    parts += [",max=", num("max", False), ",measured=", num("measured", True), "i,min=", num("min", False),
              ",sum=", num("sum", False), " ",
              pc.cast(pa.array(frame["start"].to_numpy(dtype="int64") // 1_000_000_000), pa.string())]
    lines = pc.binary_join_element_wise(*parts, "")
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(lines)], pa.int32()), lines), "\n")
    return joined[0].as_buffer().to_pybytes()
