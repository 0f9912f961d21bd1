"""`parkcarbon import --correct` never leaves a corrected range empty.

A correction replaces the stored values of each differing series in the file's range.  A failure half-way (the
store refusing a write, the process dying, InfluxDB going away between its statements) must leave every stored
value of the range readable: the old one, or on InfluxDB possibly already the file's new one, never nothing.
On the embedded store the whole correction of a file (clearing, writing, the audit record) is one DuckDB
transaction; on InfluxDB the file's points are written first (same series and time overwrite in place) and only
then are the points of the range that the file does not hold deleted."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.pipeline import Pipeline
from collectors.sources.files import FileImporter
from collectors.spool import Spool
from park.model import SeriesCatalog, SeriesInfo
from park.store import Correction
from park.store.embedded import EmbeddedStore

TZ = "Asia/Shanghai"
CATALOG = SeriesCatalog([SeriesInfo("M1", "meter", "E1", "W1", "electricity", "kWh"),
                         SeriesInfo("M2", "meter", "E1", "W1", "electricity", "kWh")])
DAY = (pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-03", tz=TZ))
NOW = pd.Timestamp("2026-01-01", tz="UTC")
OLD = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


class Boom(RuntimeError):
    pass


def csv(tmp_path, name: str, rows: list[tuple[str, str, float]]):
    path = tmp_path / name
    path.write_text("ts,meter,value\n" + "".join(f"2024-03-01 {t},{m},{v}\n" for t, m, v in rows))
    return path


TIMES = ["00:00", "00:15", "00:30", "00:45", "01:00", "01:15"]


@pytest.fixture(params=["embedded", "influx"])
def store(request, tmp_path):
    if request.param == "embedded":
        s = EmbeddedStore(tmp_path / "ts.duckdb", CATALOG, TZ)
    else:
        from park.store.influx import InfluxConfig, InfluxStore

        server = request.getfixturevalue("influx_server")
        db = f"correct_atomic_{abs(hash(request.node.name)) % 10**8}"
        s = InfluxStore(InfluxConfig(url=server.url, database=db), CATALOG, TZ)
        s.query(f'DROP DATABASE "{db}"', db=False)
        s.query(f'CREATE DATABASE "{db}"', db=False)
    yield s
    s.close()


@pytest.fixture
def importer(store, tmp_path):
    spool = Spool(tmp_path / "spool.db")
    imp = FileImporter(Pipeline(CATALOG, spool, clock=lambda: NOW), store, TZ)
    # M1 and M2, six quarter-hours each
    imp.import_file(csv(tmp_path, "first.csv", [(t, m, v * (10 if m == "M2" else 1)) for m in ("M1", "M2")
                                                for t, v in zip(TIMES, OLD, strict=True)]))
    yield imp
    spool.close()


def values(store, series: str) -> dict[str, float]:
    pts = store.points("energy", *DAY, where={"series": series})
    return {f"{t:%H:%M}": v for t, v in zip(pts["ts"].dt.tz_convert(TZ), pts["value"], strict=True)}


def day_total(store, series: str) -> float:
    frame = store.aggregate("energy", *DAY, window="day", where={"series": series})
    return float(frame["value"].sum())


def fixed_file(tmp_path):
    # M1 corrected over 00:00-01:00 with a gap at 00:30 (the stored 00:30 value goes), 01:15 untouched;
    # M2 differs nowhere, so only M1 is a correction.
    rows = [("00:00", "M1", 11.0), ("00:15", "M1", 12.0), ("00:45", "M1", 14.0), ("01:00", "M1", 15.0),
            ("00:00", "M2", 10.0)]
    return csv(tmp_path, "fixed.csv", rows)


def test_a_correction_replaces_the_range_the_same_way_on_both_backends(importer, store, tmp_path):
    report = importer.import_file(fixed_file(tmp_path), correct=True, actor="operator")
    assert report.corrected == {"M1": 4}
    assert values(store, "M1") == {"00:00": 11.0, "00:15": 12.0, "00:45": 14.0, "01:00": 15.0, "01:15": 6.0}
    assert day_total(store, "M1") == pytest.approx(58.0)
    assert values(store, "M2") == {t: v * 10 for t, v in zip(TIMES, OLD, strict=True)}
    audit = store.audit_log()
    assert audit["action"].tolist() == ["correct"] and audit["series"].tolist() == ["M1"]
    assert "old total 15 kWh" in audit["reason"].iloc[0] and "new total 52 kWh" in audit["reason"].iloc[0]


def test_a_failing_write_after_the_clearing_leaves_the_old_values(importer, store, tmp_path, monkeypatch):
    """The failure the issue names: the range is cleared, then writing the staged rows fails."""
    def failing_write(*a, **k):
        raise Boom("injected: the store failed while writing the corrected rows")

    monkeypatch.setattr(store, "write", failing_write)
    with pytest.raises(Boom):
        importer.import_file(fixed_file(tmp_path), correct=True, actor="operator")
    monkeypatch.undo()
    # nothing was written, so every old value must still be there (and the roll-ups agree)
    assert values(store, "M1") == dict(zip(TIMES, OLD, strict=True))
    assert day_total(store, "M1") == pytest.approx(sum(OLD))
    assert store.audit_log().empty
    # and the correction can simply be run again
    importer.import_file(fixed_file(tmp_path), correct=True, actor="operator")
    assert values(store, "M1") == {"00:00": 11.0, "00:15": 12.0, "00:45": 14.0, "01:00": 15.0, "01:15": 6.0}


def test_a_failure_half_way_never_leaves_a_value_missing(importer, store, tmp_path, monkeypatch):
    """A failure after part of the correction ran: each time of the range holds its old or its new value."""
    real_valid = type(store)._write_valid
    calls = []

    def write_then_fail(self, measurement, frame):
        calls.append(len(frame))
        real_valid(self, measurement, frame)
        raise Boom("injected: failure after the first write of the correction")

    monkeypatch.setattr(type(store), "_write_valid", write_then_fail)
    with pytest.raises(Boom):
        importer.import_file(fixed_file(tmp_path), correct=True, actor="operator")
    monkeypatch.undo()
    assert calls
    got = values(store, "M1")
    new = {"00:00": 11.0, "00:15": 12.0, "00:45": 14.0, "01:00": 15.0}
    for t, old in zip(TIMES, OLD, strict=True):
        assert t in got, f"{t} lost: the correction left the range without a value"
        assert got[t] in (old, new.get(t, old))
    if store.backend == "embedded":  # one transaction: all or nothing
        assert got == dict(zip(TIMES, OLD, strict=True)) and store.audit_log().empty


@pytest.mark.parametrize("store", ["influx"], indirect=True)  # the embedded store has one transaction instead
def test_influx_a_failure_in_the_deletions_keeps_the_new_values_and_the_refresh_finishes(importer, store, tmp_path,
                                                                                        monkeypatch):
    real_query = store.query

    def no_delete(q, **k):
        if q.lstrip().upper().startswith("DELETE"):
            raise Boom("injected: the server went away before the deletions")
        return real_query(q, **k)

    monkeypatch.setattr(store, "query", no_delete)
    with pytest.raises(Boom):
        importer.import_file(fixed_file(tmp_path), correct=True, actor="operator")
    monkeypatch.undo()
    # the file's values are in; the one time the file leaves out still holds its old value
    assert values(store, "M1") == {"00:00": 11.0, "00:15": 12.0, "00:30": 3.0, "00:45": 14.0, "01:00": 15.0,
                                   "01:15": 6.0}
    assert day_total(store, "M1") == pytest.approx(61.0)
    # a re-import sees no difference (the file has nothing at 00:30): the pending record is what finishes it,
    # on the next roll-up refresh (the collector service runs one every few minutes)
    store.refresh_rollups(grace_s=0)
    assert values(store, "M1") == {"00:00": 11.0, "00:15": 12.0, "00:45": 14.0, "01:00": 15.0, "01:15": 6.0}
    assert day_total(store, "M1") == pytest.approx(58.0)
    assert store.audit_log()["action"].tolist() == ["correct"]
    store.refresh_rollups(grace_s=0)  # finished records are not redone
    assert values(store, "M1") == {"00:00": 11.0, "00:15": 12.0, "00:45": 14.0, "01:00": 15.0, "01:15": 6.0}


SLOTS = pd.date_range("2024-03-01 00:00", periods=8, freq="15min", tz=TZ)


@settings(max_examples=25, deadline=None)
@given(old=st.dictionaries(st.integers(0, 7), st.floats(0, 100, allow_nan=False), max_size=8),
       new=st.dictionaries(st.integers(0, 7), st.floats(0, 100, allow_nan=False), min_size=1, max_size=8),
       chunk=st.integers(1, 4), fail_at=st.one_of(st.none(), st.integers(0, 7)))
def test_an_embedded_correction_is_all_or_nothing(old, new, chunk, fail_at):
    """Property: whichever write of the block fails, the embedded store holds exactly the old readings; if none
    fails, the new readings in the range and the old ones outside it, with roll-ups that agree."""
    lo, hi = min(new), max(new) + 1
    with EmbeddedStore(":memory:", CATALOG, TZ) as s:
        if old:
            s.write("energy", pd.DataFrame({"ts": SLOTS[list(old)], "series": "M1", "value": list(old.values())}))
        keys = sorted(new)
        chunks = [keys[i:i + chunk] for i in range(0, len(keys), chunk)]
        failed = False
        try:
            with s.correction("energy", [Correction("M1", SLOTS[lo], SLOTS[lo] + pd.Timedelta(minutes=15 * (hi - lo)),
                                                    "property test")], actor="test"):
                for n, part in enumerate(chunks):
                    if n == fail_at:
                        raise Boom("injected")
                    s.write("energy", pd.DataFrame({"ts": SLOTS[part], "series": "M1",
                                                    "value": [new[k] for k in part]}))
        except Boom:
            failed = True
        expect = dict(old) if failed else {**{k: v for k, v in old.items() if not lo <= k < hi}, **new}
        pts = s.points("energy", *DAY)
        got = {int((t - SLOTS[0]) / pd.Timedelta(minutes=15)): v for t, v in zip(pts["ts"], pts["value"], strict=True)}
        assert got == expect
        assert day_total(s, "M1") == pytest.approx(sum(expect.values()))
        assert len(s.audit_log()) == (0 if failed else 1)
