"""portal.evidence.utilisation.samples (computed once per bracelet for the pack) is exactly the wing's
collectors.bracelet._samples, on readings in time order (its fast path) and on any others (the wing's own)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.bracelet import DEFAULT_PARAMS, _samples
from park.model import Device
from portal.evidence.utilisation import samples

DEVICE = Device("D1", "E1", None, "切割机")
T0 = pd.Timestamp("2024-03-01", tz="UTC")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4000), st.floats(0, 60, allow_nan=False)), max_size=60),
       st.booleans(), st.sampled_from(["UTC", "Asia/Shanghai"]))
def test_samples_are_the_wings(rows, ordered, tz):
    if ordered:  # what series_values gives: unique times, increasing
        rows = sorted({t: (t, v) for t, v in rows}.values())
    frame = pd.DataFrame({"ts": pd.to_datetime([T0 + pd.Timedelta(seconds=15 * t) for t, _ in rows], utc=True)
                          .tz_convert(tz) if rows else pd.Series([], dtype=f"datetime64[ns, {tz}]"),
                          "value": [v for _, v in rows]})
    got, want = samples(frame, DEVICE), _samples(frame, DEVICE, DEFAULT_PARAMS)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
