"""The pipeline and spool: validate -> normalise -> spool -> store, losing and doubling nothing."""

from __future__ import annotations

import re

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


def test_duplicates_and_late_register_readings_are_reported_not_quarantined(parts):
    spool, store, pipe, writer = parts
    readings = [register("M1", m, float(m)) for m in range(0, 31, 5)]
    pipe.submit(readings)
    res = pipe.submit(readings[4:])  # the same readings again (a re-sent MQTT batch, a re-polled register)
    writer.drain()
    assert day_total(store) == pytest.approx(30.0)
    assert store.quarantined().empty  # info findings are harmless: reported, not quarantined
    assert (res.read, res.accepted, res.rejected, res.reported) == (3, 0, 0, 3)
    assert sorted(e["code"] for e in res.events) == ["reading.duplicate", "reading.out_of_order",
                                                     "reading.out_of_order"]
    assert all(e["severity"] == "info" and "accepted" not in e["detail"] for e in res.events)


def test_a_conflicting_duplicate_is_quarantined_and_every_row_is_accounted_for(parts):
    spool, store, pipe, writer = parts
    res = pipe.submit([register("M1", 0, 10.0, line=2), register("M1", 15, 20.0, line=3),
                       register("M1", 15, 25.0, line=4),  # same time, another value: which is true is unknown
                       register("M1", 15, 20.0, line=5),  # same time, same value: harmless
                       register("M1", 30, 30.0, line=6), register("M1", 30, float("nan"), line=7)])
    assert (res.read, res.accepted, res.rejected, res.reported) == (6, 3, 2, 1)
    assert res.read == res.accepted + res.rejected + res.reported
    writer.drain()
    q = store.quarantined()
    assert sorted(q["code"]) == ["reading.conflict", "reading.not_finite"]
    conflict = q.loc[q["code"] == "reading.conflict"].iloc[0]
    assert conflict["line"] == 4 and "25 at a time given again later in the batch with 20 (line 5)" in \
        conflict["reason"]
    assert day_total(store) == pytest.approx(20.0)  # 10 -> 20 -> 30
    dup = next(e for e in res.events if e["code"] == "reading.duplicate")
    assert (dup["series"], dup["line"], dup["ts"], dup["severity"]) == ("M1", 3, T0 + pd.Timedelta("15min"), "info")


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

    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "quality-rules.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", doc, flags=re.M))
    assert documented == set(RULES)  # every code documented, every documented code in the catalogue
    assert set(STORE_RULES) <= set(RULES)
    code = "\n".join(p.read_text(encoding="utf-8") for d in ("collectors", "park", "portal", "carbon")
                     for p in (root / d).rglob("*.py") if p.name not in ("rules.py", "findings.py"))
    never = sorted(c for c in RULES if f'"{c}"' not in code)
    assert never == [], f"catalogued but never emitted: {never}"


def test_a_counter_reset_is_reported_as_an_event_and_energy_kept(parts):
    spool, store, pipe, writer = parts
    res = pipe.submit([register("M1", 0, 500.0), register("M1", 15, 510.0), register("M1", 30, 4.0),
                       register("M1", 45, 8.0)])
    assert [e["code"] for e in res.events] == ["meter.reset"]
    reset = res.events[0]
    assert (reset["line"], reset["since"], reset["estimated"], reset["unit"]) == (
        None, T0 + pd.Timedelta("15min"), pytest.approx(6.0), "kWh")  # 40 kW recent: 10 kWh, 4 counted
    writer.drain()
    pts = store.points("energy", T0, T0 + pd.Timedelta("1h"))
    assert pts["value"].tolist() == [10.0, 10.0, 4.0]
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


PARK_YAML = """
park: {id: p, name: 测试}
enterprises:
  - id: E1
    name: 甲
    meters:
      - {id: WRAP, carrier: electricity, register_digits: 5}
      - {id: JITTER, carrier: electricity}
      - {id: SPIKE, carrier: electricity, max_kw: 500}
"""


def test_a_pipeline_built_from_the_park_uses_its_meters_limits(tmp_path):
    """The issue's examples through the importer's way of building a pipeline: Pipeline(park.catalog(), spool)."""
    from park.parkfile import parse_park

    park = parse_park(PARK_YAML)
    spool = Spool(tmp_path / "spool.db")
    pipe = Pipeline(park.catalog(), spool, clock=CLOCK)
    t = [T0 + pd.Timedelta(minutes=15 * i) for i in range(4)]
    frame = pd.DataFrame({
        "ts": [t[0], t[1], t[2], t[0], t[1], t[2], t[0], t[1], t[2], t[3]],
        "series": ["WRAP"] * 3 + ["JITTER"] * 3 + ["SPIKE"] * 4,
        "value": [99_985.0, 99_995.0, 5.0, 1000.0, 1020.0, 1019.8, 995.0, 1005.0, 100_500.0, 1015.0],
        "source": "file:x.csv", "line": range(2, 12)})
    done = pipe.process([("energy", Kind.CUMULATIVE, frame)])
    assert (done.read, done.accepted, len(done.rejects), done.reported) == (10, 8, 2, 0)
    energy = done.rows.groupby("series")["value"].sum()
    assert energy.to_dict() == {"WRAP": pytest.approx(20.0), "JITTER": pytest.approx(20.0),
                                "SPIKE": pytest.approx(20.0)}  # 99 995 -> 5 is 10 kWh, not 5 lost
    assert set(done.rows["quality"]) == {"measured"}
    assert sorted((r["series"], r["code"], r["line"]) for r in done.rejects) == [
        ("JITTER", "reading.backward", 7), ("SPIKE", "reading.spike", 10)]
    assert "max_kw 500 of the park file" in next(r["reason"] for r in done.rejects if r["series"] == "SPIKE")
    assert [(e["series"], e["code"], e["line"]) for e in done.events if e["severity"] == "flag"] == [
        ("WRAP", "meter.rollover", 4)]
    spool.close()


def test_a_meter_whose_register_map_cannot_be_loaded_keeps_its_park_file_limits(tmp_path, caplog):
    from collectors.limits import meter_limits
    from park.model import Meter
    from park.units import Carrier

    broken = Meter("M1", Carrier.ELECTRICITY, "E1", model="no-such-map", max_kw=100.0)
    with pytest.raises(ValueError, match="meter M1: no shipped register map 'no-such-map'"):
        meter_limits([broken])
    with caplog.at_level("WARNING", logger="collectors.limits"):
        limits = meter_limits([broken], strict=False)
    assert (limits["M1"].max_per_h, limits["M1"].register_max) == (100.0, None)
    assert "meter M1: no shipped register map" in caplog.text
