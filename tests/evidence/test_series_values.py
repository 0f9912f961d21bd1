"""The pack reads a bracelet's year of currents through TimeSeriesStore.series_values (ts, value only): the same
readings as `points`, in time order, through the scope's access filter."""

from __future__ import annotations

import pandas as pd
import pytest

from park.store.base import TimeSeriesStore, to_utc
from portal.access import Forbidden
from tests.evidence.conftest import TZ, bank_scope

START, END = pd.Timestamp("2024-03-02 23:00", tz=TZ), pd.Timestamp("2024-03-20", tz=TZ)


def test_series_values_are_the_points_of_the_series_in_time_order(ctx):
    store = ctx.store
    want = store.points("current", START, END, where={"series": ["E1-D1"]})
    got = store.series_values("current", "E1-D1", START, END)
    assert list(got.columns) == ["ts", "value"] and len(got) == len(want) > 1000
    assert str(got["ts"].dt.tz) == "UTC" and got["ts"].is_monotonic_increasing
    pd.testing.assert_series_equal(got["ts"], want["ts"].dt.tz_convert("UTC"), check_names=False)
    pd.testing.assert_series_equal(got["value"], want["value"], check_exact=True)
    # the generic path (a backend without its own two-column query, e.g. InfluxDB) selects the same readings
    lo, hi, where = to_utc(START, "start"), to_utc(END, "end"), {"series": ["E1-D1"]}
    generic = TimeSeriesStore._series_values(store, "current", lo, hi, where)
    own = store._series_values("current", lo, hi, where)
    assert list(generic.columns) == ["ts", "value"]
    pd.testing.assert_frame_equal(generic.sort_values("ts").reset_index(drop=True), own.reset_index(drop=True))


def test_series_values_narrowed_by_where_and_another_series(ctx):
    store = ctx.store
    assert store.series_values("current", "E1-D1", START, END, where={"enterprise": ["E2"]}).empty
    assert store.series_values("current", "E1-D1", START, END, where={"series": ["E2-M1"]}).empty
    assert len(store.series_values("current", "E1-D1", START, END, where={"enterprise": ["E1"]})) > 1000


def test_the_scope_refuses_a_series_outside_it(granted):
    scope = bank_scope(granted)  # consent to E1 only
    assert len(scope.series_values("current", "E1-D1", START, END)) > 1000
    with pytest.raises(Forbidden):
        scope.series_values("energy", "E2-M1", START, END)
