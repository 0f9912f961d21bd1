"""CSV numbers in a pack read back to the very float the pack computed with (so recomputation is exact), and an
empty cell is no data, never 0."""

from __future__ import annotations

import csv
import io
import math

from hypothesis import given
from hypothesis import strategies as st

from portal.evidence.pack import number, to_csv


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_reads_back_exactly(x):
    assert float(number(x)) == x


def test_missing_is_empty_and_zero_is_zero():
    assert number(float("nan")) == "" and number(None) == "" and number(0.0) == "0.0"


@given(st.lists(st.tuples(st.text(max_size=20), st.floats(allow_infinity=False)), max_size=20))
def test_rows_read_back(rows):
    data = to_csv(["name", "value"], rows)
    assert data.startswith(b"\xef\xbb\xbf")
    back = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert back[0] == ["name", "value"] and len(back) == len(rows) + 1
    for (name, value), (n, v) in zip(rows, back[1:], strict=True):
        assert n == name
        assert (v == "" and math.isnan(value)) or float(v) == value
