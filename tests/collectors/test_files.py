"""CSV and Excel imports: good rows in, bad rows quarantined with file, line and reason; dry runs change nothing."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import pytest

from collectors.pipeline import Pipeline
from collectors.sources.files import FileFormatError, FileImporter
from collectors.spool import Spool
from park.model import SeriesCatalog, SeriesInfo
from park.store.embedded import EmbeddedStore

TZ = "Asia/Shanghai"
CATALOG = SeriesCatalog([SeriesInfo("M1", "meter", "E1", "W1", "electricity", "kWh"),
                         SeriesInfo("GAS", "meter", "E1", None, "natural_gas", "m3", 3600)])
DAY = (pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-02", tz=TZ))
STEEL = Path(__file__).resolve().parents[2] / "park" / "data" / "steel_industry_2018.csv.gz"


@pytest.fixture
def importer(tmp_path):
    store = EmbeddedStore(tmp_path / "ts.duckdb", CATALOG, TZ)
    spool = Spool(tmp_path / "spool.db")
    yield FileImporter(Pipeline(CATALOG, spool, clock=lambda: pd.Timestamp("2030-01-01", tz="UTC")), store, TZ)
    store.close()
    spool.close()


def write(tmp_path, text: str, name="readings.csv", encoding="utf-8") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


def test_a_csv_with_mixed_good_and_bad_rows(importer, tmp_path):
    path = write(tmp_path, "ts,meter,value,unit\n"
                           "2024-03-01 00:00,M1,1.5,kWh\n"
                           "2024-03-01 00:15,M1,abc,kWh\n"
                           "2024-03-01 00:30,M9,2,kWh\n"
                           "yesterday,M1,2,kWh\n"
                           "2024-03-01 00:45,M1,0.002,MWh\n"
                           "2024-03-01 01:00,M1,3,m3\n"
                           "2024-03-01T01:15:00+08:00,M1,-1,kWh\n")
    report = importer.import_file(path)
    assert (report.rows, report.accepted, report.rejected) == (7, 2, 5)
    by_line = {r["line"]: r for r in report.rejects}
    assert {line: r["code"] for line, r in by_line.items()} == {
        3: "reading.not_a_number", 4: "series.unknown", 5: "reading.bad_timestamp", 7: "reading.unit_mismatch",
        8: "reading.negative"}
    assert "line 5" in by_line[5]["reason"] and "ISO 8601" in by_line[5]["reason"]
    assert any("read as Asia/Shanghai" in n for n in report.notes)
    assert importer.store.points("energy", *DAY)["value"].tolist() == [1.5, 2.0]
    q = importer.store.quarantined()
    assert sorted(q["line"].astype(int)) == [3, 4, 5, 7, 8] and set(q["source"]) == {"file:readings.csv"}


def test_dry_run_reports_and_writes_nothing(importer, tmp_path):
    path = write(tmp_path, "时间,表号,读数\n2024-03-01 00:00,M1,1\n2024-03-01 00:15,M1,x\n")
    report = importer.import_file(path, dry_run=True)
    assert (report.accepted, report.rejected, report.dry_run) == (1, 1, True)
    assert "would import 1" in report.summary()
    assert importer.store.points("energy", *DAY).empty and importer.store.quarantined().empty


def test_reimporting_a_file_changes_nothing(importer, tmp_path):
    path = write(tmp_path, "ts,meter,value\n2024-03-01 00:00,M1,1\n2024-03-01 00:15,M1,2\n")
    importer.import_file(path)
    importer.import_file(path)
    assert importer.store.points("energy", *DAY)["value"].tolist() == [1.0, 2.0]


def test_gbk_encoded_export_with_chinese_headers(importer, tmp_path):
    path = write(tmp_path, "采集时间,电表编号,用量,单位\n2024-03-01 00:00,M1,4.5,千瓦时\n", encoding="gbk")
    assert importer.import_file(path).accepted == 1


def test_a_bill_is_spread_over_its_period_as_substituted(importer, tmp_path):
    path = write(tmp_path, "meter,period_start,period_end,value,unit\n"
                           "GAS,2024-03-01 00:00,2024-03-02 00:00,2.4,10^4 m3\n"
                           "GAS,2024-03-05,2024-03-04,10,m3\n")
    report = importer.import_file(path)
    assert report.codes["file.bad_period"] == 1 and report.accepted == 24
    day = importer.store.aggregate("energy", *DAY, "day", where={"series": "GAS"})
    assert day["value"].iloc[0] == pytest.approx(24_000.0)
    assert set(importer.store.points("energy", *DAY)["quality"]) == {"substituted"}


def test_an_excel_workbook(importer, tmp_path):
    path = tmp_path / "readings.xlsx"
    pd.DataFrame({"ts": ["2024-03-01 00:00", "2024-03-01 00:15"], "meter": ["M1", "M1"],
                  "value": ["1", "oops"]}).to_excel(path, index=False)
    report = importer.import_file(path)
    assert report.accepted == 1 and report.rejects[0]["line"] == 3


def test_a_file_without_the_needed_columns_is_refused_whole(importer, tmp_path):
    with pytest.raises(FileFormatError, match="line 1: missing column.*ts: one of"):
        importer.import_file(write(tmp_path, "when,meter,value\n2024-03-01,M1,1\n"))


def test_cumulative_readings_in_a_file_become_interval_energy(importer, tmp_path):
    path = write(tmp_path, "ts,meter,value,kind\n" + "".join(
        f"2024-03-01 {h:02d}:{m:02d},M1,{1000 + (h * 60 + m) / 15 * 2.5},cumulative\n"
        for h in range(0, 2) for m in (0, 15, 30, 45)) + "2024-03-01 02:00,M1,1020,cumulative\n")
    report = importer.import_file(path)
    assert report.accepted == 8
    assert importer.store.points("energy", *DAY)["value"].tolist() == [2.5] * 8


def test_the_steel_plant_midnight_fault_is_detected_and_repaired_by_rule(importer, tmp_path):
    # The real data set dates every day's 00:00 row one day early (see park/data/README.md).
    with gzip.open(STEEL, "rt") as f:
        head = [next(f) for _ in range(200)]
    rows = ["ts,meter,value\n"] + [f"{ln.split(',')[0]},M1,{ln.split(',')[1]}\n" for ln in head[1:]]
    path = write(tmp_path, "".join(rows))
    strict = importer.import_file(path, dry_run=True, date_format="%d/%m/%Y %H:%M", timestamps="end")
    assert strict.codes["file.time_backwards"] == 2
    assert "--repair-midnight" in strict.rejects[0]["reason"]
    fixed = importer.import_file(path, date_format="%d/%m/%Y %H:%M", timestamps="end", repair_midnight=True)
    assert (fixed.rejected, fixed.codes["file.midnight_repaired"], fixed.accepted) == (0, 2, 199)
    day1 = importer.store.aggregate("energy", pd.Timestamp("2018-01-01", tz=TZ), pd.Timestamp("2018-01-02", tz=TZ),
                                    "day", where={"series": "M1"})
    expected = sum(float(ln.split(",")[1]) for ln in head[1:97])  # 00:15 .. 24:00 ends = the first local day
    assert day1["value"].iloc[0] == pytest.approx(expected) and day1["coverage"].iloc[0] == 1.0
