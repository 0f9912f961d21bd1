"""Line-protocol serialisation of validated batches, vectorised per series.

Escaping follows the InfluxDB line-protocol rules exactly as influxdb-client's `Point` applies them
(tests compare the two byte for byte); we serialise column-wise because building one `Point` object per
reading costs more than the server's own parsing of the line.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

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


def format_floats(values: np.ndarray) -> list[str]:
    """Shortest round-trip text of each float, a trailing '.0' trimmed as influxdb-client does (the server
    still reads '3' as a float: integers need an 'i' suffix)."""
    out = [repr(v) for v in values.tolist()]
    return [t[:-2] if t.endswith(".0") else t for t in out]


def serialise(measurement: str, frame: pd.DataFrame, precision: str = "s") -> list[str]:
    """One line per row of a validated frame (series, tags, ts, value, quality)."""
    codes, uniq = pd.factorize(frame["series"])
    first = frame.drop_duplicates("series").set_index("series")
    keys = np.array(
        [series_key(measurement, {"series": s, **{t: first.at[s, t] for t in TAG_COLUMNS if t != "series"}})
         for s in uniq], dtype=object)
    prefix = keys[codes].tolist()
    divisor = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[precision]
    ts = (frame["ts"].astype("datetime64[ns, UTC]").astype("int64").to_numpy() // divisor).tolist()
    values = format_floats(frame["value"].to_numpy(dtype="float64"))
    qcodes, quniq = pd.factorize(frame["quality"])
    qual = np.array([escape_field_string(q) for q in quniq], dtype=object)[qcodes].tolist()
    # Fields in sorted order, as influxdb-client writes them, so both give the same bytes.
    return [f"{p} quality={q},value={v} {t}" for p, v, q, t in zip(prefix, values, qual, ts, strict=True)]


def best_precision(ts: pd.Series) -> str:
    """The coarsest precision that loses nothing: 's' for whole seconds (the usual case), else finer."""
    ns = ts.astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    for precision, div in (("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000)):
        if not (ns % div).any():
            return precision
    return "ns"
