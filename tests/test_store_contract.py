"""The store contract: every test here runs against both backends, the influx one on a real influxd."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from park.model import SeriesCatalog, SeriesInfo
from park.store import SchemaError, Window

TZ = "Asia/Shanghai"
_db_names = itertools.count()


def catalog() -> SeriesCatalog:
    return SeriesCatalog([
        SeriesInfo("E1-M1", "meter", "E1", "E1-W1", "electricity", "kWh"),
        SeriesInfo("E1-M2", "meter", "E1", "E1-W2", "electricity", "kWh"),
        SeriesInfo("E1-GAS", "meter", "E1", None, "natural_gas", "m3", 3600),
        SeriesInfo("E2-M1", "meter", "E2", "E2-W1", "electricity", "kWh"),
        SeriesInfo("E2-D1", "device", "E2", "E2-W1", None, "A", 60),
    ])


@pytest.fixture(params=["embedded", "influx"])
def store(request, tmp_path):
    if request.param == "embedded":
        from park.store.embedded import EmbeddedStore

        s = EmbeddedStore(tmp_path / "ts.duckdb", catalog(), TZ)
    else:
        from park.store.influx import InfluxConfig, InfluxStore

        server = request.getfixturevalue("influx_server")
        s = InfluxStore(InfluxConfig(url=server.url, database=f"contract_{next(_db_names)}"), catalog(), TZ)
    yield s
    s.close()


def local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ)


def readings(series: str, start: str, n: int, values, freq: str = "15min", quality: str = "measured"):
    ts = pd.date_range(local(start), periods=n, freq=freq)
    vals = np.broadcast_to(np.asarray(values, dtype=float), (n,))
    return pd.DataFrame({"ts": ts, "series": series, "value": vals, "quality": quality})


def test_written_readings_read_back_in_park_local_time(store):
    store.write("energy", readings("E1-M1", "2024-03-01 00:00", 4, [1.5, 2.0, 2.5, 3.0]))
    pts = store.points("energy", local("2024-03-01"), local("2024-03-02"))
    assert pts["value"].tolist() == [1.5, 2.0, 2.5, 3.0]
    assert str(pts["ts"].dt.tz) == TZ
    assert pts["ts"].iloc[0] == local("2024-03-01 00:00")
    assert set(pts["quality"]) == {"measured"}


def test_writing_the_same_readings_twice_holds_one_value_the_last(store):
    batch = readings("E1-M1", "2024-03-01 00:00", 8, 1.0)
    store.write("energy", batch)
    store.write("energy", batch.assign(value=2.0))
    day = store.aggregate("energy", local("2024-03-01"), local("2024-03-02"), "day", where={"series": "E1-M1"})
    assert day["value"].iloc[0] == pytest.approx(16.0)
    assert day["count"].iloc[0] == 8
    assert len(store.points("energy", local("2024-03-01"), local("2024-03-02"))) == 8


def test_duplicates_inside_one_batch_keep_the_last(store):
    batch = pd.concat([readings("E1-M1", "2024-03-01 00:00", 2, 1.0), readings("E1-M1", "2024-03-01 00:00", 2, 5.0)])
    assert store.write("energy", batch).written == 2
    assert store.points("energy", local("2024-03-01"), local("2024-03-02"))["value"].tolist() == [5.0, 5.0]


def test_hourly_and_quarter_hour_windows(store):
    store.write("energy", readings("E1-M1", "2024-03-01 00:00", 8, [1, 2, 3, 4, 5, 6, 7, 8]))
    q = store.aggregate("energy", local("2024-03-01 00:00"), local("2024-03-01 02:00"), Window.QUARTER_HOUR)
    assert q["value"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    h = store.aggregate("energy", local("2024-03-01 00:00"), local("2024-03-01 02:00"), "hour")
    assert h["value"].tolist() == [10, 26]
    assert h["start"].tolist() == [local("2024-03-01 00:00"), local("2024-03-01 01:00")]


@pytest.mark.parametrize("window", ["15min", "hour", "day", "month"])
def test_an_empty_range_has_no_row_and_a_reversed_one_is_refused(store, window):
    """[t, t) is a real period with nothing in it (the first quarter hour of a day or a month, when a page asks for
    "to now"): no row, the columns typed as usual; end before start is a caller's mistake and is refused."""
    store.write("energy", readings("E1-M1", "2024-03-01 00:00", 8, [1, 2, 3, 4, 5, 6, 7, 8]))
    t = local("2024-03-01 01:00")
    full = store.aggregate("energy", t, t + pd.Timedelta("1h"), window, by=["enterprise", "carrier"])
    empty = store.aggregate("energy", t, t, window, by=["enterprise", "carrier"])
    assert len(full) and empty.empty
    assert list(empty.columns) == list(full.columns)
    assert {c: str(empty[c].dtype) for c in empty.columns if c not in ("enterprise", "carrier")} == {
        c: str(full[c].dtype) for c in full.columns if c not in ("enterprise", "carrier")}
    with pytest.raises(ValueError, match="reversed range"):
        store.aggregate("energy", t, t - pd.Timedelta("15min"), window)


def test_days_are_park_local_days(store):
    # 23:45 local on 1 March is 15:45 UTC; 00:00 local on 2 March is 16:00 UTC of 1 March.
    store.write("energy", readings("E1-M1", "2024-03-01 23:45", 2, [1.0, 10.0]))
    days = store.aggregate("energy", local("2024-03-01"), local("2024-03-03"), "day", where={"series": "E1-M1"})
    assert days["start"].tolist() == [local("2024-03-01"), local("2024-03-02")]
    assert days["value"].tolist() == [1.0, 10.0]


def test_months_are_park_local_months(store):
    store.write("energy", readings("E1-M1", "2024-01-31 23:45", 2, [3.0, 4.0]))
    months = store.aggregate("energy", local("2024-01-01"), local("2024-03-01"), "month", where={"series": "E1-M1"})
    assert months["start"].tolist() == [local("2024-01-01"), local("2024-02-01")]
    assert months["value"].tolist() == [3.0, 4.0]


def test_group_by_enterprise_workshop_and_carrier(store):
    store.write("energy", pd.concat([
        readings("E1-M1", "2024-03-01 00:00", 4, 1.0), readings("E1-M2", "2024-03-01 00:00", 4, 2.0),
        readings("E2-M1", "2024-03-01 00:00", 4, 4.0)]))
    store.write("energy", readings("E1-GAS", "2024-03-01 00:00", 1, 7.0, freq="1h"))
    span = (local("2024-03-01 00:00"), local("2024-03-01 01:00"))
    by_ent = store.aggregate("energy", *span, "hour", by=["enterprise", "carrier"])
    got = {(r.enterprise, r.carrier): r.value for r in by_ent.itertuples()}
    assert got == {("E1", "electricity"): 12.0, ("E1", "natural_gas"): 7.0, ("E2", "electricity"): 16.0}
    by_ws = store.aggregate("energy", *span, "hour", by=["workshop"],
                            where={"enterprise": "E1", "carrier": "electricity"})
    assert dict(zip(by_ws["workshop"], by_ws["value"], strict=True)) == {"E1-W1": 4.0, "E1-W2": 8.0}


def test_gaps_stay_gaps_never_zero(store):
    store.write("energy", readings("E1-M1", "2024-03-01 00:00", 4, 1.0))  # hour 00 only
    h = store.aggregate("energy", local("2024-03-01 00:00"), local("2024-03-01 03:00"), "hour",
                        where={"series": "E1-M1"})
    assert h["value"].iloc[0] == 4.0
    assert h["value"].iloc[1:].isna().all()
    assert h["coverage"].tolist() == [1.0, 0.0, 0.0]
    assert h["expected"].tolist() == [4, 4, 4]


def test_coverage_counts_expected_present_and_measured(store):
    store.write("energy", readings("E1-M1", "2024-03-01 00:00", 80, 1.0))
    store.write("energy", readings("E1-M1", "2024-03-01 20:00", 8, 1.0, quality="estimated"))
    cov = store.coverage("energy", local("2024-03-01"), local("2024-03-02"), where={"enterprise": "E1"})
    row = cov.set_index("series").loc["E1-M1"]
    assert (row["expected"], row["present"], row["measured"]) == (96, 88, 80)
    assert row["coverage"] == pytest.approx(80 / 96)
    silent = cov.set_index("series").loc["E1-M2"]
    assert (silent["present"], silent["coverage"]) == (0, 0.0)
    assert cov.set_index("series").loc["E1-GAS", "expected"] == 24


def test_partial_range_uses_raw_data_and_expects_fewer_intervals(store):
    store.write("energy", readings("E1-M1", "2024-03-01 00:00", 8, 1.0))
    agg = store.aggregate("energy", local("2024-03-01 00:30"), local("2024-03-01 01:30"), "hour",
                          where={"series": "E1-M1"})
    assert agg["value"].tolist() == [2.0, 2.0]
    assert agg["expected"].tolist() == [2, 2]


def test_mean_of_bracelet_current(store):
    store.write("current", readings("E2-D1", "2024-03-01 08:00", 60, np.r_[np.full(30, 2.0), np.full(30, 10.0)],
                                    freq="1min"))
    h = store.aggregate("current", local("2024-03-01 08:00"), local("2024-03-01 09:00"), "hour")
    assert h["value"].iloc[0] == pytest.approx(6.0)
    mx = store.aggregate("current", local("2024-03-01 08:00"), local("2024-03-01 09:00"), "hour", agg="max")
    assert mx["value"].iloc[0] == 10.0


def test_latest_value_per_series(store):
    store.write("energy", readings("E1-M1", "2024-03-01 00:00", 4, [1, 2, 3, 4]))
    store.write("energy", readings("E2-M1", "2024-03-02 00:00", 2, [7, 9], quality="estimated"))
    latest = store.latest("energy").set_index("series")
    assert latest.loc["E1-M1", "value"] == 4 and latest.loc["E1-M1", "ts"] == local("2024-03-01 00:45")
    assert latest.loc["E2-M1", "value"] == 9 and latest.loc["E2-M1", "quality"] == "estimated"
    only = store.latest("energy", where={"enterprise": "E2"})
    assert only["series"].tolist() == ["E2-M1"]


def test_delete_range_updates_rollups_and_leaves_an_audit_record(store):
    store.write("energy", readings("E1-M1", "2024-03-01 00:00", 96, 1.0))
    store.write("energy", readings("E1-M2", "2024-03-01 00:00", 96, 1.0))
    n = store.delete("energy", "E1-M1", local("2024-03-01 06:00"), local("2024-03-01 12:00"), actor="admin",
                     reason="meter mis-wired")
    assert n == 24
    day = store.aggregate("energy", local("2024-03-01"), local("2024-03-02"), "day", by=["series"],
                          where={"enterprise": "E1"})
    assert dict(zip(day["series"], day["value"], strict=True))["E1-M1"] == 72.0
    assert dict(zip(day["series"], day["value"], strict=True))["E1-M2"] == 96.0
    audit = store.audit_log()
    assert audit["series"].tolist() == ["E1-M1"]
    assert (audit["actor"].iloc[0], int(audit["rows"].iloc[0]), audit["reason"].iloc[0]) == ("admin", 24,
                                                                                            "meter mis-wired")
    assert audit["start"].iloc[0] == local("2024-03-01 06:00")


def test_deletion_needs_a_reason_and_a_known_series(store):
    with pytest.raises(ValueError, match="reason"):
        store.delete("energy", "E1-M1", local("2024-03-01"), local("2024-03-02"), actor="a", reason=" ")
    with pytest.raises(KeyError, match="NOPE"):
        store.delete("energy", "NOPE", local("2024-03-01"), local("2024-03-02"), actor="a", reason="x")


def test_bad_rows_are_quarantined_with_reasons_and_good_rows_written(store):
    batch = pd.DataFrame({
        "ts": [local("2024-03-01 00:00"), "2024-03-01T00:15:00+08:00", "2024-03-01 00:30", "yesterday",
               local("2024-03-01 00:45"), local("2024-03-01 01:00"), local("2024-03-01 01:15"),
               local("2024-03-01 01:30"), local("2024-03-01 01:45"), local("2024-03-01 02:00")],
        "series": ["E1-M1", "E1-M1", "E1-M1", "E1-M1", "GHOST", "E1-M1", "E1-M1", "E1-M1", "E1-M1", "E2-D1"],
        "value": [1.0, "2.5", 3.0, 4.0, 5.0, float("nan"), float("inf"), "abc", -1.0, 2.0],
        "line": range(2, 12),
    })
    result = store.write("energy", batch, source="test.csv")
    assert result.written == 2
    codes = {r.line: r.code for r in result.rejected}
    assert codes == {4: "reading.naive_timestamp", 5: "reading.bad_timestamp", 6: "series.unknown",
                     7: "reading.not_finite", 8: "reading.not_finite", 9: "reading.not_a_number",
                     10: "reading.negative", 11: "series.wrong_kind"}
    q = store.quarantined("energy")
    assert sorted(q["line"].astype(int)) == list(range(4, 12))
    naive = q[q["code"] == "reading.naive_timestamp"].iloc[0]
    assert naive["source"] == "test.csv" and "line 4" in naive["reason"] and "2024-03-01 00:30" in naive["reason"]
    assert store.points("energy", local("2024-03-01"), local("2024-03-02"))["value"].tolist() == [1.0, 2.5]


def test_units_are_converted_or_refused(store):
    batch = pd.DataFrame({"ts": pd.date_range(local("2024-03-01"), periods=3, freq="15min"), "series": "E1-M1",
                          "value": [1.5, 500.0, 2.0], "unit": ["MWh", "Wh", "m3"]})
    result = store.write("energy", batch)
    assert [r.code for r in result.rejected] == ["reading.unit_mismatch"]
    assert "m3" in result.rejected[0].reason
    assert store.points("energy", local("2024-03-01"), local("2024-03-02"))["value"].tolist() == [1500.0, 0.5]
    unknown = store.write("energy", batch.iloc[:1].assign(unit="furlongs"))
    assert [r.code for r in unknown.rejected] == ["reading.unknown_unit"]


def test_a_batch_without_required_columns_is_refused_whole(store):
    with pytest.raises(SchemaError, match="lacks column"):
        store.write("energy", pd.DataFrame({"series": ["E1-M1"], "value": [1.0]}))
    with pytest.raises(SchemaError, match="unknown measurement"):
        store.write("temperature", readings("E1-M1", "2024-03-01", 1, 1.0))


def test_naive_query_bounds_are_refused(store):
    with pytest.raises(ValueError, match="no time zone"):
        store.aggregate("energy", pd.Timestamp("2024-03-01"), local("2024-03-02"), "day")


def test_late_data_updates_existing_rollups(store):
    store.write("energy", readings("E1-M1", "2024-03-01 00:00", 48, 1.0))
    first = store.aggregate("energy", local("2024-03-01"), local("2024-03-02"), "day", where={"series": "E1-M1"})
    assert first["value"].iloc[0] == 48.0
    store.write("energy", readings("E1-M1", "2024-03-01 12:00", 48, 2.0))  # the afternoon arrives late
    second = store.aggregate("energy", local("2024-03-01"), local("2024-03-02"), "day", where={"series": "E1-M1"})
    assert second["value"].iloc[0] == 144.0
    assert second["coverage"].iloc[0] == 1.0


def test_ragged_ranges_combine_rollups_and_finer_data_exactly(store):
    store.write("energy", readings("E1-M1", "2024-03-01 00:00", 288, 1.0))  # three whole days
    store.write("energy", readings("E1-M2", "2024-03-01 00:00", 288, 2.0))
    start, end = local("2024-03-01 06:15"), local("2024-03-03 18:00")  # ragged at both ends
    days = store.aggregate("energy", start, end, "day", by=["series"])
    got = {(r.start.day, r.series): (r.value, r.count, r.expected) for r in days.itertuples()}
    assert got[(1, "E1-M1")] == (71.0, 71, 71) and got[(1, "E1-M2")] == (142.0, 71, 71)
    assert got[(2, "E1-M1")] == (96.0, 96, 96)
    assert got[(3, "E1-M1")] == (72.0, 72, 72)
    whole = store.coverage("energy", start, end, by=["enterprise"])
    assert whole["present"].iloc[0] == 2 * (71 + 96 + 72)
    month = store.aggregate("energy", start, end, "month", where={"series": "E1-M2"})
    assert month["value"].iloc[0] == 2.0 * (71 + 96 + 72)
    hours = store.aggregate("energy", local("2024-03-01 06:15"), local("2024-03-01 08:00"), "hour",
                            where={"series": "E1-M1"})
    assert hours["value"].tolist() == [3.0, 4.0]


def test_ragged_ranges_keep_series_without_a_workshop(store):
    store.write("energy", readings("E1-GAS", "2024-03-01 00:00", 48, 2.0, freq="1h"))
    start, end = local("2024-03-01 06:00"), local("2024-03-02 12:00")
    got = store.aggregate("energy", start, end, "month", by=["enterprise", "workshop", "carrier"],
                          where={"series": "E1-GAS"})
    assert got["workshop"].tolist() == [None] and got["value"].tolist() == [2.0 * (18 + 12)]
