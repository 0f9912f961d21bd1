"""The report archive: idempotent per (kind, period), a late reading gives version 2 with the changed figures,
the key energy-consuming units' completeness rule fails an enterprise by name, and the files hold the store's
numbers (Excel opened with openpyxl, CSV with its byte-order mark, PDF text extracted with pdftotext)."""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import subprocess

import openpyxl
import pandas as pd
import pytest

from portal.reports.archive import (
    DATA_QUALITY,
    UNCHANGED,
    files,
    read_file,
    run_report,
    runs,
    version_differences,
    versions,
)
from tests.reports.support import (
    E2_GAP,
    E3_GAP,
    ELECTRICITY_KGCE_PER_KWH,
    GAS_KGCE_PER_M3,
    NOW,
    PARK,
    build,
    readings,
)


@pytest.fixture
def park(tmp_path):
    # PDFs only where a test reads one (rendering the CJK font subset takes seconds)
    settings, engine, store = build(tmp_path, {"reports": {"key_units": ["E1", "E3"], "formats": ["xlsx", "csv"]}})
    yield settings, engine, store
    store.close()


def test_unchanged_data_gives_the_same_version_and_a_late_reading_version_2_with_the_difference(park):
    settings, engine, store = park
    first = run_report(settings, engine, PARK, store, "monthly", "2026-10", now=NOW)
    assert (first.version, first.created) == (1, True)
    again = run_report(settings, engine, PARK, store, "monthly", "2026-10", now=NOW + pd.Timedelta(days=1))
    assert (again.version, again.created, again.outcome) == (1, False, UNCHANGED)
    assert len(versions(engine, "p")) == 1

    store.write("energy", readings("E2-EL", *E2_GAP))  # the missing day of E2 arrives late: 96 x 7 kWh
    late = run_report(settings, engine, PARK, store, "monthly", "2026-10", now=NOW + pd.Timedelta(days=2))
    assert (late.version, late.created) == (2, True)
    v = versions(engine, "p")
    assert sorted(v["version"]) == [1, 2]  # version 1 kept
    diffs = version_differences(engine, late.version_id)
    tce = diffs[(diffs["section"] == "emissions") & (diffs["enterprise"] == "E2") &
                (diffs["indicator"] == "energy_tce")]
    assert len(tce) == 1
    added_tce = 96 * 7.0 * ELECTRICITY_KGCE_PER_KWH / 1000
    assert tce["new_value"].iloc[0] - tce["old_value"].iloc[0] == pytest.approx(added_tce, rel=1e-9)
    kwh = diffs[(diffs["section"] == "energy") & (diffs["enterprise"] == "E2") & (diffs["indicator"] == "quantity")]
    assert kwh["new_value"].iloc[0] - kwh["old_value"].iloc[0] == pytest.approx(96 * 7.0)
    assert (diffs["enterprise"] == "E1").sum() == 0  # E1's figures did not change: none listed
    # The park totals changed by the same amount.
    park_tce = diffs[(diffs["section"] == "emissions") & (diffs["enterprise"] == "PARK") &
                     (diffs["indicator"] == "energy_tce")]
    assert park_tce["new_value"].iloc[0] - park_tce["old_value"].iloc[0] == pytest.approx(added_tce, rel=1e-9)
    assert list(runs(engine, "p")["outcome"]) == [DATA_QUALITY, UNCHANGED, DATA_QUALITY]  # E3 below 90 % each time
    # Both versions' files are kept and match their SHA-256.
    for vid in v["id"]:
        for f in files(engine, int(vid)).itertuples():
            name, data = read_file(settings, engine, int(f.id))
            assert hashlib.sha256(data).hexdigest() == f.sha256


def test_key_units_enterprise_below_90_percent_fails_the_completeness_rule_by_name(park):
    settings, engine, store = park
    result = run_report(settings, engine, PARK, store, "key-units", "2026-10", now=NOW)
    assert result.outcome == DATA_QUALITY
    assert len(result.failures) == 1 and result.failures[0].startswith("丙公司: data completeness 85.0%")
    xlsx = _file(settings, engine, result.version_id, "xlsx")
    rules = _sheet(xlsx, "监测规则")
    by = {(r["企业名称 Enterprise"], r["规则 Rule"]): r for r in rules}
    assert by[("丙公司", "report.completeness")]["通过 Passed"] == "否 no"
    e3_coverage = len(readings("E3-EL", gap=E3_GAP)) / len(readings("E3-EL"))  # 2 529 of 2 976 quarter hours
    assert by[("丙公司", "report.completeness")]["实际值 Value (%)"] == pytest.approx(e3_coverage, rel=1e-12)
    assert by[("甲公司", "report.completeness")]["通过 Passed"] == "是 yes"
    # E2 is not a key unit (not designated, far below 10 000 tce): not in the report.
    assert "乙公司" not in {r["企业名称 Enterprise"] for r in _sheet(xlsx, "重点用能单位")}
    # Daily values sum to the monthly ones: the 5 % rule passes for every energy type.
    assert all(r["通过 Passed"] == "是 yes" for r in rules if r["规则 Rule"] == "report.daily_monthly")
    assert {r["能源品种 Energy type"] for r in rules if r["企业名称 Enterprise"] == "甲公司"} >= {
        "电力 electricity", "天然气 natural gas"}


def test_excel_numbers_are_the_stores(park):
    """Energy per enterprise recomputed from the store's points with the GB/T 2589 coefficients."""
    settings, engine, store = park
    result = run_report(settings, engine, PARK, store, "monthly", "2026-10", now=NOW)
    points = store.points("energy", pd.Timestamp("2026-10-01", tz="Asia/Shanghai"),
                          pd.Timestamp("2026-11-01", tz="Asia/Shanghai"))
    kwh = points.groupby("series")["value"].sum()
    expected_tce = {"E1": (kwh["E1-EL"] * ELECTRICITY_KGCE_PER_KWH + kwh["E1-GAS"] * GAS_KGCE_PER_M3) / 1000,
                    "E2": kwh["E2-EL"] * ELECTRICITY_KGCE_PER_KWH / 1000,
                    "E3": kwh["E3-EL"] * ELECTRICITY_KGCE_PER_KWH / 1000}
    xlsx = _file(settings, engine, result.version_id, "xlsx")
    rows = {r["企业编号 Enterprise ID"]: r for r in _sheet(xlsx, "能耗与排放")}
    for e, tce in expected_tce.items():
        assert rows[e]["折标煤 Energy (tce)"] == pytest.approx(tce, rel=1e-9)
    assert rows["PARK"]["折标煤 Energy (tce)"] == pytest.approx(sum(expected_tce.values()), rel=1e-9)
    assert rows["E3"]["数据完整 Complete"] == "否 no" and "activity.low_coverage" in rows["E3"][
        "不完整原因 Why incomplete"]
    # E1 is fully metered; its figures are still flagged, as the accounts flag them: the 2024 grid factor a
    # 2026 report should use is not published, the closest prior year's is used.
    assert "activity.low_coverage" not in rows["E1"]["不完整原因 Why incomplete"]
    assert rows["E1"]["不完整原因 Why incomplete"] == "factor.prior_year"
    energy = {(r["企业编号 Enterprise ID"], r["能源品种 Energy type"]): r for r in _sheet(xlsx, "分品种能源")}
    assert energy[("E1", "天然气 natural gas")]["实物量 Quantity"] == pytest.approx(kwh["E1-GAS"])
    assert energy[("E1", "天然气 natural gas")]["计量单位 Unit"] == "m3"
    assert energy[("E3", "电力 electricity")]["实物量 Quantity"] == pytest.approx(kwh["E3-EL"])
    assert energy[("E1", "天然气 natural gas")]["折标煤 Energy (tce)"] == pytest.approx(
        kwh["E1-GAS"] * GAS_KGCE_PER_M3 / 1000, rel=1e-9)
    assert energy[("E1", "电力 electricity")]["折标煤 Energy (tce)"] == pytest.approx(
        kwh["E1-EL"] * ELECTRICITY_KGCE_PER_KWH / 1000, rel=1e-9)
    assert energy[("PARK", "电力 electricity")]["实物量 Quantity"] == pytest.approx(
        kwh["E1-EL"] + kwh["E2-EL"] + kwh["E3-EL"])
    # The title block names the report, park and period; the header row is frozen.
    wb = openpyxl.load_workbook(io.BytesIO(xlsx))
    ws = wb["能耗与排放"]
    assert "2026-10" in ws["A3"].value and ws.freeze_panes is not None
    assert wb["说明 About"]["A1"].value.startswith("园区及企业月度能源消费与碳排放报表")


def test_csv_has_a_bom_bilingual_headers_and_the_same_numbers(park):
    settings, engine, store = park
    result = run_report(settings, engine, PARK, store, "monthly", "2026-10", now=NOW)
    stored = files(engine, result.version_id)
    name = next(n for n in stored["name"] if n.endswith("-emissions.csv"))
    fid = int(stored.loc[stored["name"] == name, "id"].iloc[0])
    _, data = read_file(settings, engine, fid)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    sheet = _sheet(_file(settings, engine, result.version_id, "xlsx"), "能耗与排放")
    xlsx = {r["企业编号 Enterprise ID"]: r["折标煤 Energy (tce)"] for r in sheet}
    assert len(rows) == len(xlsx) == 4  # three enterprises and the park
    for r in rows:
        assert float(r["折标煤 Energy (tce)"]) == pytest.approx(xlsx[r["企业编号 Enterprise ID"]], rel=1e-12)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_pdf_names_the_enterprises_and_the_failed_rule(park):
    settings, engine, store = park
    settings.reports["formats"] = ["pdf"]
    result = run_report(settings, engine, PARK, store, "monthly", "2026-10", now=NOW)
    pdf = _file(settings, engine, result.version_id, "pdf")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert "甲公司" in text and "丙公司" in text and "report.completeness" in text
    assert "园区分品种能耗" in text and "Ten largest emitters" in text
    annual = run_report(settings, engine, PARK, store, "annual", "2026", now=NOW + pd.Timedelta(days=60))
    text = subprocess.run(["pdftotext", "-", "-"], input=_file(settings, engine, annual.version_id, "pdf"),
                          capture_output=True, check=True).stdout.decode()
    assert "能源利用状况" in text and "ETS" in text and "91320000AAAA" not in text  # credit codes: Excel only


def _file(settings, engine, version_id: int, fmt: str) -> bytes:
    stored = files(engine, version_id)
    return read_file(settings, engine, int(stored.loc[stored["format"] == fmt, "id"].iloc[0]))[1]


def _sheet(xlsx: bytes, name: str) -> list[dict]:
    """The rows of a report sheet under its header row (the first row whose first cell is the ID column)."""
    ws = openpyxl.load_workbook(io.BytesIO(xlsx))[name]
    rows = list(ws.iter_rows(values_only=True))
    h = next(i for i, r in enumerate(rows) if r[0] == "企业编号 Enterprise ID")
    return [dict(zip(rows[h], r, strict=True)) for r in rows[h + 1:]]


def test_a_billed_month_fails_the_daily_monthly_rule_for_that_energy_type(park):
    """A month's electricity bill on top of E1's meter: the monthly total has it, the days cannot (bills are
    monthly): the daily sums fall short by the bill's share, more than 5 %, and the rule fails for E1's
    electricity only, by name; the daily data is the metered part, and the report says so."""
    settings, engine, store = park
    from carbon import records

    metered = len(readings("E1-EL")) * 2.5
    bill = 0.1 * metered  # 10 % more than metered: the daily sums are 1/1.1 of the month, 9.1 % short
    records.record_activity(engine, "p", pd.DataFrame([{
        "enterprise": "E1", "carrier": "electricity", "flow": "import", "period_start": "2026-10-01",
        "period_end": "2026-11-01", "quantity": bill, "unit": "kWh"}]), actor="test")
    result = run_report(settings, engine, PARK, store, "key-units", "2026-10", now=NOW)
    monthly_rule = [f for f in result.failures if "daily totals" in f]
    assert len(monthly_rule) == 1 and monthly_rule[0].startswith("甲公司: electricity daily totals")
    rules = {(r["企业名称 Enterprise"], r["规则 Rule"], r["能源品种 Energy type"]): r
             for r in _sheet(_file(settings, engine, result.version_id, "xlsx"), "监测规则")}
    row = rules[("甲公司", "report.daily_monthly", "电力 electricity")]
    assert row["通过 Passed"] == "否 no"
    assert row["实际值 Value (%)"] == pytest.approx(bill / (metered + bill), rel=1e-9)
    assert rules[("甲公司", "report.daily_monthly", "天然气 natural gas")]["通过 Passed"] == "是 yes"
    about = openpyxl.load_workbook(io.BytesIO(_file(settings, engine, result.version_id, "xlsx")))["说明 About"]
    assert any("daily data is the metered part only" in str(c.value) for c in about["B"])
