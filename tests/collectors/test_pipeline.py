"""The pipeline and spool: validate -> normalise -> spool -> store, losing and doubling nothing."""

from __future__ import annotations

import pandas as pd
import pytest

from collectors.pipeline import Pipeline
from collectors.readings import Kind, RawReading
from collectors.spool import Spool
from collectors.writer import Writer
from park.model import SeriesCatalog, SeriesInfo
from park.store.embedded import EmbeddedStore

TZ = "Asia/Shanghai"
CATALOG = SeriesCatalog([SeriesInfo("M1", "meter", "E1", "W1", "electricity", "kWh"),
                         SeriesInfo("M2", "meter", "E1", "W1", "electricity", "kWh"),
                         SeriesInfo("D1", "device", "E1", "W1", None, "A", 60)])
T0 = pd.Timestamp("2024-03-01 00:00", tz=TZ)
CLOCK = lambda: pd.Timestamp("2024-03-02", tz=TZ)  # noqa: E731


def register(series: str, minutes: float, kwh: float, **kw) -> RawReading:
    return RawReading(series, T0 + pd.Timedelta(minutes=minutes), kwh, Kind.CUMULATIVE, source="test", **kw)


@pytest.fixture
def parts(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    store = EmbeddedStore(tmp_path / "ts.duckdb", CATALOG, TZ)
    yield spool, store, Pipeline(CATALOG, spool, clock=CLOCK), Writer(spool, store)
    store.close()
    spool.close()


def day_total(store, series="M1") -> float:
    return store.aggregate("energy", T0, T0 + pd.Timedelta("1D"), "day", where={"series": series})["value"].iloc[0]


def test_register_polls_become_interval_energy_in_the_store(parts):
    spool, store, pipe, writer = parts
    pipe.submit([register("M1", m, 1000 + m * 0.5) for m in range(0, 61)])  # 30 kW for an hour, every minute
    assert writer.drain().written == 4
    pts = store.points("energy", T0, T0 + pd.Timedelta("1h"))
    assert pts["value"].round(9).tolist() == [7.5] * 4
    assert set(pts["quality"]) == {"measured"}
    assert spool.stats().queued == 0


def test_counter_state_survives_a_restart_of_the_pipeline(parts, tmp_path):
    spool, store, pipe, writer = parts
    pipe.submit([register("M1", m, 1000 + m) for m in (0, 5, 10, 15)])
    spool.close()
    spool2 = Spool(tmp_path / "spool.db")  # a new process: state comes back from disk
    pipe2 = Pipeline(CATALOG, spool2, clock=CLOCK)
    pipe2.submit([register("M1", m, 1000 + m) for m in (20, 25, 30)])
    Writer(spool2, store).drain()
    assert store.points("energy", T0, T0 + pd.Timedelta("1h"))["value"].tolist() == [15.0, 15.0]
    spool2.close()


def test_bad_readings_are_quarantined_with_reasons_and_good_ones_flow(parts):
    spool, store, pipe, writer = parts
    res = pipe.submit([register("M1", 0, 10.0), register("M1", 15, float("nan")), register("GHOST", 15, 1.0),
                       register("M1", 15, 20.0), RawReading("M1", T0.tz_localize(None) + pd.Timedelta("30min"),
                                                            30.0, Kind.CUMULATIVE, source="test"),
                       register("M1", 60 * 48, 40.0)])  # two days ahead of the clock
    assert res.rejected == 4
    pipe.reject(source="mqtt:x", code="payload.malformed", detail="not JSON: b'{oops'", measurement="current")
    writer.drain()
    q = store.quarantined()
    assert sorted(q["code"]) == ["payload.malformed", "reading.future", "reading.naive_timestamp",
                                 "reading.not_finite", "series.unknown"]
    assert day_total(store) == pytest.approx(10.0)


def test_duplicates_and_late_register_readings_are_harmless(parts):
    spool, store, pipe, writer = parts
    readings = [register("M1", m, float(m)) for m in range(0, 31, 5)]
    pipe.submit(readings)
    pipe.submit(readings[4:])  # the same readings again (a re-sent MQTT batch, a re-polled register)
    writer.drain()
    assert day_total(store) == pytest.approx(30.0)
    assert set(store.quarantined()["code"]) == {"reading.duplicate", "reading.out_of_order"}


def test_interval_and_level_readings_pass_through(parts):
    spool, store, pipe, writer = parts
    pipe.submit([RawReading("M2", T0, 2.5, Kind.INTERVAL, unit="kWh", source="file:bills.csv", line=2),
                 RawReading("M2", T0 + pd.Timedelta("15min"), 0.004, Kind.INTERVAL, unit="MWh", source="f", line=3),
                 RawReading("D1", T0, 12.5, Kind.LEVEL, measurement="current", source="mqtt")])
    writer.drain()
    assert store.points("energy", T0, T0 + pd.Timedelta("1h"))["value"].tolist() == [2.5, 4.0]
    assert store.points("current", T0, T0 + pd.Timedelta("1h"))["value"].tolist() == [12.5]


def test_every_rule_code_is_documented_and_the_store_uses_catalogued_codes():
    from pathlib import Path

    from collectors.rules import RULES
    from park.store.validate import RULES as STORE_RULES

    doc = (Path(__file__).resolve().parents[2] / "docs" / "quality-rules.md").read_text(encoding="utf-8")
    assert all(f"`{code}`" in doc for code in RULES)
    assert set(STORE_RULES) <= set(RULES)


def test_a_counter_reset_is_reported_as_an_event_and_energy_kept(parts):
    spool, store, pipe, writer = parts
    res = pipe.submit([register("M1", 0, 500.0), register("M1", 15, 510.0), register("M1", 30, 4.0),
                       register("M1", 45, 8.0)])
    assert [e["code"] for e in res.events] == ["meter.reset"]
    writer.drain()
    pts = store.points("energy", T0, T0 + pd.Timedelta("1h"))
    assert pts["value"].tolist() == [10.0, 4.0, 4.0]
    assert pts["quality"].tolist() == ["measured", "estimated", "measured"]


def test_the_writer_waits_for_a_worthwhile_batch_or_its_deadline(parts):
    spool, store, pipe, _ = parts
    writer = Writer(spool, store, min_rows=10, max_wait_s=3600)
    pipe.submit([RawReading("M2", T0 + pd.Timedelta(minutes=15 * i), 1.0, Kind.INTERVAL, source="t")
                 for i in range(5)])
    assert writer.drain_if_due() is None and spool.stats().queued == 5  # a trickle waits ...
    pipe.submit([RawReading("M2", T0 + pd.Timedelta(minutes=15 * i), 1.0, Kind.INTERVAL, source="t")
                 for i in range(5, 10)])
    assert writer.drain_if_due().written == 10 and spool.stats().queued == 0  # ... until the batch is worth it
    pipe.submit([RawReading("M2", T0 + pd.Timedelta(hours=5), 1.0, Kind.INTERVAL, source="t")])
    assert Writer(spool, store, min_rows=10, max_wait_s=0).drain_if_due().written == 1  # or the deadline passed


def register_frame(minutes, kwh, series="M1") -> pd.DataFrame:
    return pd.DataFrame({"ts": [T0 + pd.Timedelta(minutes=m) for m in minutes], "series": series,
                         "value": kwh, "source": "file:m1.csv", "line": range(2, 2 + len(minutes))})


def test_an_isolated_file_is_normalised_from_its_own_history_every_time(parts):
    spool, store, pipe, writer = parts
    pipe.submit([register("M1", m, 5000.0 + m) for m in (120, 135)])  # live polls, later than the file
    live = dict(pipe._state)
    frame = register_frame(range(0, 61, 15), [100.0, 110.0, 125.0, 126.5, 130.0])
    first = pipe.process([("energy", Kind.CUMULATIVE, frame)], isolated=True)
    again = pipe.process([("energy", Kind.CUMULATIVE, frame)], isolated=True)
    for done in (first, again):
        assert done.rows["value"].tolist() == [10.0, 15.0, 1.5, 3.5] and done.rejects == []
        assert done.state == {} and done.events == []
    assert pipe._state == live  # the live counter state is neither used nor changed
    res = pipe.submit_frames([("energy", Kind.CUMULATIVE, frame)], isolated=True)
    assert (res.queued, res.rejected) == (4, 0) and pipe._state == live
    assert spool.load_state()["M1"] == live["M1"].to_json()


def test_an_isolated_file_in_chunks_continues_from_the_previous_chunk(parts):
    spool, store, pipe, writer = parts
    one = pipe.process([("energy", Kind.CUMULATIVE, register_frame([0, 15, 30], [100.0, 110.0, 125.0]))],
                       isolated=True)
    two = pipe.process([("energy", Kind.CUMULATIVE, register_frame([45, 60], [126.5, 130.0]))], isolated=True,
                       carry=one.isolated_state)
    assert one.rows["value"].tolist() + two.rows["value"].tolist() == [10.0, 15.0, 1.5, 3.5]
