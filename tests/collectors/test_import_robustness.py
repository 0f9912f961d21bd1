"""File imports that must not fail half-way: encodings, delimiters, broken files, future rows, re-imports and
corrections.  Each broken file is refused whole with one clear message, and the store is as it was before."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors.pipeline import Pipeline
from collectors.sources.files import FileFormatError, FileImporter, ValuesDiffer
from collectors.spool import Spool
from park.model import SeriesCatalog, SeriesInfo
from park.store.embedded import EmbeddedStore

TZ = "Asia/Shanghai"
CATALOG = SeriesCatalog([SeriesInfo("M1", "meter", "E1", "W1", "electricity", "kWh"),
                         SeriesInfo("M2", "meter", "E1", "W1", "electricity", "kWh"),
                         SeriesInfo("GAS", "meter", "E1", None, "natural_gas", "m3", 3600)])
DAY = (pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-03", tz=TZ))
NOW = pd.Timestamp("2026-01-01", tz="UTC")
STEEL = Path(__file__).resolve().parents[2] / "park" / "data" / "steel_industry_2018.csv.gz"


@pytest.fixture
def importer(tmp_path):
    store = EmbeddedStore(tmp_path / "ts.duckdb", CATALOG, TZ)
    spool = Spool(tmp_path / "spool.db")
    yield FileImporter(Pipeline(CATALOG, spool, clock=lambda: NOW), store, TZ)
    store.close()
    spool.close()


def rows(n: int, meter: str = "M1", start: str = "2024-03-01 00:00", value=lambda i: 1.0 + i) -> list[str]:
    t0 = pd.Timestamp(start)
    return [f"{(t0 + pd.Timedelta(minutes=15 * i)):%Y-%m-%d %H:%M},{meter},{value(i)}\n" for i in range(n)]


def write(tmp_path: Path, text: str, name="readings.csv", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def unchanged(importer) -> bool:
    return importer.store.points("energy", *DAY).empty and importer.store.quarantined().empty


# ---- a future row, events, accounting -------------------------------------------------------------------
def test_a_future_row_does_not_poison_the_rest_of_its_meter(importer, tmp_path):
    lines = ["ts,meter,value\n", *rows(2), "2099-01-01 00:00,M1,9\n", *rows(3, start="2024-03-01 00:30")]
    report = importer.import_file(write(tmp_path, "".join(lines)))
    assert report.codes == {"reading.future": 1}
    assert (report.rows, report.rejected, report.accepted) == (6, 1, 5)
    reason = report.rejects[0]["reason"]
    assert reason.startswith("line 4: ") and "2099-01-01 00:00" in reason and "+08:00" in reason
    assert "collector" not in reason and "UTC" not in reason


def test_a_rejected_row_is_not_the_reference_for_going_backwards(importer, tmp_path):
    # line 3: a bad value with a late time must not become M1's reference
    lines = ["ts,meter,value\n", *rows(1), "2024-03-01 10:00,M1,abc\n", *rows(2, start="2024-03-01 00:15")]
    report = importer.import_file(write(tmp_path, "".join(lines)))
    assert report.codes == {"reading.not_a_number": 1} and report.accepted == 3


def test_going_backwards_is_said_the_right_way_round(importer, tmp_path):
    lines = ["ts,meter,value\n", *rows(3), "2024-03-01 00:00,M1,9\n"]
    report = importer.import_file(write(tmp_path, "".join(lines)))
    reason = report.rejects[0]["reason"]
    assert report.rejects[0]["code"] == "file.time_backwards"
    assert "2024-03-01 00:00:00+08:00 is earlier than 2024-03-01 00:30:00+08:00 on line 4" in reason


def test_events_of_a_cumulative_file_are_reported_with_their_lines(importer, tmp_path):
    values = [1000, 1002, 1004, 1006, 3, 5, 7]  # a counter reset at line 6
    text = "ts,meter,value,kind\n" + "".join(r.rstrip("\n") + ",cumulative\n"
                                             for r in rows(7, value=lambda i: values[i]))
    report = importer.import_file(write(tmp_path, text))
    assert report.event_codes["meter.reset"] == 1
    summary = report.summary()
    assert "meter.reset: 1" in summary and "line 6" in summary
    assert report.rows == report.rows_accepted + report.rejected + report.rows_reported
    assert "7 rows read = 7 accepted + 0 rejected + 0 reported" in summary


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(["good", "bad_value", "unknown", "future", "repeat", "bad_time"]), min_size=1,
                max_size=30))
def test_rows_read_are_accepted_rejected_or_reported(tmp_path_factory, kinds):
    tmp = tmp_path_factory.mktemp("prop")
    store = EmbeddedStore(tmp / "ts.duckdb", CATALOG, TZ)
    spool = Spool(tmp / "spool.db")
    importer = FileImporter(Pipeline(CATALOG, spool, clock=lambda: NOW), store, TZ)
    t, lines, last = pd.Timestamp("2024-03-01 00:00"), [], None
    expect = {"accepted": 0, "rejected": 0, "reported": 0}
    for k in kinds:
        stamp = f"{t:%Y-%m-%d %H:%M}"
        if k == "repeat" and last is not None:
            lines.append(last)  # the same row again: nothing changes, reported
            expect["reported"] += 1
            continue
        row = {"good": f"{stamp},M1,1.5", "repeat": f"{stamp},M1,1.5", "bad_value": f"{stamp},M1,x",
               "unknown": f"{stamp},M9,1", "future": f"{2099 + len(lines)}-01-01 00:00,M1,1",
               "bad_time": "soon,M1,1"}[k]
        lines.append(row)
        if k in ("good", "repeat"):
            expect["accepted"] += 1
            last = row
        else:
            expect["rejected"] += 1
        t += pd.Timedelta("15min")
    report = importer.import_file(write(tmp, "ts,meter,value\n" + "\n".join(lines) + "\n"), dry_run=True)
    store.close()
    spool.close()
    assert (report.rows_accepted, report.rejected, report.rows_reported) == (
        expect["accepted"], expect["rejected"], expect["reported"])
    assert report.rows == len(kinds)


# ---- re-import and correction ---------------------------------------------------------------------------
def cumulative(tmp_path, values, name="reg.csv") -> Path:
    return write(tmp_path, "ts,meter,value,kind\n" + "".join(
        r.rstrip("\n") + ",cumulative\n" for r in rows(len(values), value=lambda i: values[i])), name)


def test_reimporting_a_cumulative_file_changes_nothing(importer, tmp_path):
    path = cumulative(tmp_path, [1000 + 2.5 * i for i in range(32)])
    first = importer.import_file(path)
    before = importer.store.points("energy", *DAY)
    again = importer.import_file(path)
    assert (first.rejected, again.rejected, again.accepted) == (0, 0, 31)
    assert importer.store.quarantined().empty
    pd.testing.assert_frame_equal(importer.store.points("energy", *DAY), before)


def test_a_corrected_file_is_refused_unless_asked_to_correct(importer, tmp_path):
    importer.import_file(cumulative(tmp_path, [1000 + 2.5 * i for i in range(9)]))
    fixed = cumulative(tmp_path, [1000 + 3.0 * i for i in range(9)], "fixed.csv")
    with pytest.raises(ValuesDiffer, match=r"8 values of M1 differ.*--correct") as refused:
        importer.import_file(fixed)
    assert "would import 8 interval values" in refused.value.report.summary()
    assert importer.store.points("energy", *DAY)["value"].tolist() == [2.5] * 8
    report = importer.import_file(fixed, correct=True, actor="operator")
    assert report.corrected == {"M1": 8}
    assert importer.store.points("energy", *DAY)["value"].tolist() == [3.0] * 8
    audit = importer.store.audit_log()
    assert audit["action"].tolist() == ["correct"] and audit["actor"].tolist() == ["operator"]
    row = audit.iloc[0]
    assert row["series"] == "M1" and row["rows"] == 8
    assert row["start"] == pd.Timestamp("2024-03-01 00:00", tz=TZ) and row["end"] == pd.Timestamp(
        "2024-03-01 02:00", tz=TZ)
    assert "fixed.csv" in row["reason"] and "old total 20 kWh" in row["reason"] and "new total 24 kWh" in row[
        "reason"]


def test_an_interval_file_with_other_values_is_refused_too(importer, tmp_path):
    importer.import_file(write(tmp_path, "ts,meter,value\n" + "".join(rows(4))))
    with pytest.raises(ValuesDiffer):
        importer.import_file(write(tmp_path, "ts,meter,value\n" + "".join(rows(4, value=lambda i: 7)), "b.csv"))
    assert importer.store.points("energy", *DAY)["value"].tolist() == [1.0, 2.0, 3.0, 4.0]


# ---- encodings, delimiters, broken files ----------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])  # with a BOM, and without
def test_text_encodings_are_detected(importer, tmp_path, encoding):
    text = "时间,表号,读数,单位\n" + "".join(r.rstrip("\n") + ",千瓦时\n" for r in rows(3))
    assert importer.import_file(write(tmp_path, text, encoding=encoding)).accepted == 3


def test_a_gbk_file_whose_chinese_starts_late_is_imported_whole(importer, tmp_path):
    # beyond the first megabyte, so that a reader that guesses from the start of the file has written rows
    text = "ts,meter,value,unit\n" + "".join(r.rstrip("\n") + ",kWh\n" for r in rows(40_000)) + \
        "2025-06-01 10:00,M1,1,千瓦时\n"
    path = write(tmp_path, text, encoding="gbk")
    assert path.stat().st_size > 1 << 20
    report = importer.import_file(path, chunk_rows=10_000)
    assert (report.accepted, report.rejected) == (40_001, 0)


@pytest.mark.parametrize("sep", ["\t", ";", "|"])
def test_the_delimiter_is_sniffed(importer, tmp_path, sep):
    text = f"ts{sep}meter{sep}value\n" + "".join(r.replace(",", sep) for r in rows(3))
    assert importer.import_file(write(tmp_path, text)).accepted == 3


def broken_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    fake = tmp_path / "fake.xlsx"
    fake.write_text("ts,meter,value\n")
    truncated = tmp_path / "trunc.xlsx"
    with zipfile.ZipFile(truncated, "w") as z:
        z.writestr("hello.txt", "not a workbook")
    binary = tmp_path / "corrupt.csv"
    binary.write_bytes(bytes(range(256)) * 20)
    badgz = tmp_path / "bad.csv.gz"
    badgz.write_bytes(gzip.compress(("ts,meter,value\n" + "".join(rows(50))).encode())[:60])
    extra = write(tmp_path, "ts,meter,value\n" + "".join(rows(25)) + "2024-03-02 00:00,M1,1,2\n" + "".join(
        rows(5, start="2024-03-02 00:15")), "extra.csv")
    late_garbage = write(tmp_path, "ts,meter,value\n" + "".join(rows(30)), "late.csv")
    late_garbage.write_bytes(late_garbage.read_bytes() + b"2024-03-02 00:00,M1,\xff\x81\n")
    return {
        "empty": (write(tmp_path, "", "empty.csv"), "empty"),
        "directory": (tmp_path, "is a directory"),
        "fake xlsx": (fake, "not an Excel workbook"),
        "zip that is not a workbook": (truncated, "not an Excel workbook"),
        "binary": (binary, "not a text"),
        "truncated gzip": (badgz, "gzip"),
        "extra field": (extra, "line 27: 4 fields"),
        "undecodable late": (late_garbage, "cannot be decoded"),
    }


@pytest.mark.parametrize("case", ["empty", "directory", "fake xlsx", "zip that is not a workbook", "binary",
                                  "truncated gzip", "extra field", "undecodable late"])
def test_a_broken_file_is_refused_whole_with_one_clear_line(importer, tmp_path, case):
    path, words = broken_files(tmp_path)[case]
    with pytest.raises(FileFormatError) as info:
        importer.import_file(path, chunk_rows=10)
    message = str(info.value)
    assert words in message and "\n" not in message and str(path.name) in message
    assert unchanged(importer)


def test_a_bad_timestamp_is_quoted_with_a_hint(importer, tmp_path):
    report = importer.import_file(write(tmp_path, "ts,meter,value\n01/03/2024 00:00,M1,1\n"))
    reason = report.rejects[0]["reason"]
    assert "'01/03/2024 00:00'" in reason and "--date-format" in reason


def test_no_line_number_is_said_twice_and_pipeline_rejections_carry_one(importer, tmp_path):
    values = [1000, 1002, 1e9, 1006]  # line 4 implies an impossible power: a spike
    text = "ts,meter,value,kind\n" + "".join(r.rstrip("\n") + ",cumulative\n"
                                             for r in rows(4, value=lambda i: values[i]))
    report = importer.import_file(write(tmp_path, text + "2024-03-01 02:00,M1,abc,cumulative\n"))
    summary = report.summary()
    assert "line 6: line 6" not in summary and "line 6: value 'abc'" in summary
    assert all(r["reason"].startswith(f"line {r['line']}: ") for r in report.rejects)


# ---- single-meter files ---------------------------------------------------------------------------------
def test_meter_option_names_the_meter_of_a_single_meter_file(importer, tmp_path):
    text = "ts,value\n" + "".join(",".join(r.split(",")[::2]) for r in rows(3))
    assert importer.import_file(write(tmp_path, text), meter="M1").accepted == 3
    with pytest.raises(FileFormatError, match="already has a meter column"):
        importer.import_file(write(tmp_path, "ts,meter,value\n" + "".join(rows(1)), "b.csv"), meter="M2")


def test_the_steel_data_set_imports_as_is_with_meter(importer):
    report = importer.import_file(STEEL, meter="M1", date_format="%d/%m/%Y %H:%M", timestamps="end",
                                  repair_midnight=True, dry_run=True)
    assert report.rows == 35040 and report.rejected == 0 and report.accepted == 35040
    assert report.codes["file.midnight_repaired"] == 365


# ---- off-grid timestamps -------------------------------------------------------------------------------
def test_off_grid_times_are_rejected_naming_the_grid(importer, tmp_path):
    text = "ts,meter,value\n2024-03-01 00:00,M1,1\n2024-03-01 00:07,M1,1\n2024-03-01 00:22:30,M1,1\n" \
           "2024-03-01 00:30,GAS,1\n2024-03-01 01:00,GAS,1\n"
    report = importer.import_file(write(tmp_path, text))
    assert report.codes == {"reading.off_grid": 3} and report.accepted == 2
    assert "15-minute grid" in report.rejects[0]["reason"] and "hourly grid" in report.rejects[2]["reason"]


def test_the_store_refuses_off_grid_interval_values_from_any_path(tmp_path):
    with EmbeddedStore(tmp_path / "s.duckdb", CATALOG, TZ) as store:
        frame = pd.DataFrame({"ts": pd.to_datetime(["2024-03-01 00:00", "2024-03-01 00:07"]).tz_localize(TZ),
                              "series": ["M1", "M1"], "value": [1.0, 2.0]})
        result = store.write("energy", frame)
        assert [r.code for r in result.rejected] == ["reading.off_grid"] and result.written == 1
        assert "not on the 15-minute grid (:00, :15, :30, :45) of series 'M1'" in result.rejected[0].reason


def test_a_correction_on_influxdb_replaces_and_audits_too(influx_server, tmp_path):
    from park.store.influx import InfluxConfig, InfluxStore

    store = InfluxStore(InfluxConfig(url=influx_server.url, database="import_correct"), CATALOG, TZ)
    spool = Spool(tmp_path / "spool.db")
    try:
        importer = FileImporter(Pipeline(CATALOG, spool, clock=lambda: NOW), store, TZ)
        importer.import_file(write(tmp_path, "ts,meter,value\n" + "".join(rows(4))))
        fixed = write(tmp_path, "ts,meter,value\n" + "".join(rows(3, value=lambda i: 5.0)), "fixed.csv")
        with pytest.raises(ValuesDiffer):
            importer.import_file(fixed)
        importer.import_file(fixed, correct=True, actor="operator")
        # the file's range is its three intervals: the fourth stored value stays
        assert store.points("energy", *DAY)["value"].tolist() == [5.0, 5.0, 5.0, 4.0]
        audit = store.audit_log()
        assert audit["action"].tolist() == ["correct"] and audit["rows"].tolist() == [3]
        assert "old total 6 kWh, new total 15 kWh" in audit["reason"].iloc[0]
    finally:
        store.close()
        spool.close()
