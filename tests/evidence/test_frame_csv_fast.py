"""pack.frame_csv converts a column at a time; its bytes are exactly to_csv of the frame's rows (cell by cell), for
float, int, bool, text, date, timestamp and mixed columns, NaN and None included."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.evidence.pack import frame_csv, to_csv

floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.1, -0.0, 1e-300, 1e16, math.nan]))


@st.composite
def frames(draw):
    n = draw(st.integers(0, 12))
    cols = {
        "f": draw(st.lists(floats, min_size=n, max_size=n)),
        "i": draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n)),
        "b": draw(st.lists(st.booleans(), min_size=n, max_size=n)),
        "s": draw(st.lists(st.one_of(st.none(), st.text(max_size=5)), min_size=n, max_size=n)),
        "o": draw(st.lists(st.one_of(st.none(), floats, st.integers(-5, 5), st.text(max_size=3)), min_size=n,
                           max_size=n)),
        "t": [pd.Timestamp("2024-01-01", tz="Asia/Shanghai") + pd.Timedelta(minutes=15 * k) for k in range(n)],
    }
    frame = pd.DataFrame({k: pd.Series(v, dtype=object if k in "so" else None) for k, v in cols.items()})
    with np.errstate(over="ignore"):  # floats beyond float32's range become ±inf on purpose (a case to write)
        frame["f32"] = frame["f"].astype(np.float32) if n else pd.Series([], dtype=np.float32)
    frame["str"] = frame["s"].astype("string")
    return frame


@settings(max_examples=200, deadline=None)
@given(frames(), st.permutations(["f", "i", "b", "s", "o", "t", "f32", "str"]))
def test_frame_csv_is_to_csv_of_the_rows(frame, columns):
    want = to_csv(columns, frame[columns].itertuples(index=False, name=None) if len(frame) else [])
    assert frame_csv(frame, columns) == want
