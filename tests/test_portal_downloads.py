"""Downloads people can open (issue 13): the files are opened as a user's spreadsheet would open them (csv with
the BOM, openpyxl) and checked for the BOM, the title block, frozen header, column widths, neutralised cells,
numbers that stay numbers, the period in the file name, and empty tables that say so."""

from __future__ import annotations

import base64
import csv
import io

import openpyxl
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal import audit
from portal.app import create_app
from portal.auth import add_user
from portal.context import PortalContext
from portal.downloads import FORMULA_START, Export, filename, neutralise, period, to_csv, to_xlsx
from tests.support import portal as support

TZ = "Asia/Shanghai"
FRAME = pd.DataFrame({"企业名称（全称）": ["江南钢构有限公司", "=1+1", "@SUM(A1)", "\tcmd", "\r=2"],
                      "排放变化 (tCO2e)": [-3.5, 1234567.25, -0.0, 2.0, float("nan")],
                      "备注": ["-12.5", "+86 21 5555", "-2+3+cmd|' /C calc'!A0", "ok", None]})


def workbook(data: bytes):
    return openpyxl.load_workbook(io.BytesIO(data)).active


def test_csv_has_a_bom_and_opens_with_the_chinese_headers():
    text = to_csv(Export(FRAME, title="t"), "zh-CN")
    raw = text.encode("utf-8")
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == ["企业名称（全称）", "排放变化 (tCO2e)", "备注"]
    assert [r[0] for r in rows[1:]] == ["江南钢构有限公司", "'=1+1", "'@SUM(A1)", "'\tcmd", "'\r=2"]
    assert [r[1] for r in rows[1:]] == ["-3.5", "1234567.25", "-0.0", "2.0", ""]  # numbers stay numbers
    assert [r[2] for r in rows[1:]] == ["-12.5", "'+86 21 5555", "'-2+3+cmd|' /C calc'!A0", "ok", ""]


def test_excel_has_a_title_block_a_frozen_header_widths_and_safe_cells():
    export = Export(FRAME, title="企业碳排放", label="E1", units="tCO2e", coverage=0.875,
                    **period(pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-04-01", tz=TZ), TZ))
    ws = workbook(to_xlsx(export, "zh-CN", "测试园区", "2024-03-10 12:00"))
    assert ws["A1"].value == "企业碳排放" and ws["A1"].font.bold
    block = {ws.cell(row=r, column=1).value: ws.cell(row=r, column=2).value for r in range(2, 9)}
    assert block["园区"] == "测试园区" and block["对象"] == "E1" and block["单位"] == "tCO2e"
    assert block["统计期"] == "2024-03-01 00:00 – 2024-04-01 00:00 (Asia/Shanghai)"
    assert block["数据完整率"] == "87.5%" and block["下载时间"] == "2024-03-10 12:00"
    header = next(r for r in range(1, 20) if ws.cell(row=r, column=1).value == "企业名称（全称）")
    assert ws.freeze_panes == f"A{header + 1}" and ws.cell(row=header, column=2).font.bold
    # widths fit the content, wide characters counting twice: 8 Chinese characters need at least 16
    assert ws.column_dimensions["A"].width >= 16 and ws.column_dimensions["C"].width >= len(FRAME.iloc[2, 2])
    cells = [ws.cell(row=header + 1 + i, column=1) for i in range(5)]
    # (XML stores a bare CR as a line break: the cell reads back with "\n", still behind the apostrophe)
    assert [c.value for c in cells] == ["江南钢构有限公司", "'=1+1", "'@SUM(A1)", "'\tcmd", "'\n=2"]
    assert all(c.data_type == "s" for c in cells)
    numbers = [ws.cell(row=header + 1 + i, column=2) for i in range(5)]
    assert [c.value for c in numbers[:4]] == [-3.5, 1234567.25, -0.0, 2.0] and numbers[4].value is None
    assert all(c.data_type == "n" for c in numbers[:4]) and "#,##0" in numbers[1].number_format
    assert not [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]


def test_excel_writes_time_zone_aware_times_as_park_local_and_survives_control_characters():
    frame = pd.DataFrame({"at": pd.to_datetime(["2024-03-10 04:00"]).tz_localize("UTC").tz_convert(TZ),
                          "who": ["E1\x00evil\x1b"]})
    ws = workbook(to_xlsx(Export(frame, title="x"), "en", "P", "now"))
    header = next(r for r in range(1, 20) if ws.cell(row=r, column=1).value == "at")
    assert ws.cell(row=header + 1, column=1).value == pd.Timestamp("2024-03-10 12:00").to_pydatetime()
    assert ws.cell(row=header + 1, column=2).value == "E1\ufffdevil\ufffd"


def test_an_empty_table_says_so_instead_of_a_header_only_file():
    empty = Export(FRAME.iloc[0:0], title="Silent meters", period="2024-03-10")
    text = to_csv(empty, "en")
    assert text == "\ufeffSilent meters (2024-03-10): no data for this period\r\n"
    assert "企业名称" not in text
    ws = workbook(to_xlsx(empty, "en", "P", "now"))
    values = [c.value for row in ws.iter_rows() for c in row if c.value is not None]
    assert "Silent meters (2024-03-10): no data for this period" in values and "备注" not in values


@pytest.mark.parametrize(("start", "end", "tag"), [
    ("2024-03-01", "2024-04-01", "202403"), ("2024-03-10", "2024-03-10 12:00", "20240310"),
    ("2024-03-01", "2024-03-11", "20240301-20240310"), ("2024-02-01", "2024-03-01", "202402")])
def test_period_tags(start, end, tag):
    assert period(pd.Timestamp(start, tz=TZ), pd.Timestamp(end, tz=TZ), TZ)["period_tag"] == tag


def test_file_names_carry_the_subject_and_the_period():
    export = Export(FRAME, label="E1", period_tag="202403")
    assert filename("enterprise-carriers", "p", export, "20240410-0915", "xlsx") == \
        "enterprise-carriers-p-E1-202403-20240410-0915.xlsx"
    assert filename("x", "p", Export(FRAME, label='a/b:"c"'), "t", "csv") == "x-p-a_b__c_-t.csv"


@given(st.text(max_size=30))
def test_no_neutralised_text_starts_a_formula(text):
    out = neutralise(text)
    assert isinstance(out, str) and "\x00" not in out
    if out.startswith(FORMULA_START):  # only a plain signed number may start so
        float(out.rstrip("%").replace(",", ""))


@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers())
def test_numbers_are_never_touched(number):
    assert neutralise(number) == number


# ---- through the portal --------------------------------------------------------------------------------------------

PARK = Park(id="p", name="测试园区", name_en="Test Park", enterprises=(Enterprise("E1", "甲公司", "Alpha Co."),),
            meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"),))
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
PASSWORD = "correct horse battery"


@pytest.fixture
def admin(tmp_path):
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp_path / "ts.duckdb", PARK.catalog(), TZ)
    day = pd.date_range(pd.Timestamp("2024-03-01", tz=TZ), NOW, freq="15min", inclusive="left")
    store.write("energy", pd.DataFrame({"ts": day, "series": "E1-M1", "value": 1.0}))
    add_user(engine, "p", "admin", PASSWORD, "admin")
    ctx = PortalContext(Settings(data_dir=tmp_path), engine, PARK, store, clock=lambda: NOW)
    client = create_app(ctx, "k" * 32).server.test_client()
    support.login(client, "admin", PASSWORD)
    yield client, ctx
    store.close()


def overview_download(client, fmt: str, lang: str) -> dict:
    other = "xlsx" if fmt == "csv" else "csv"
    body = support.callback_body(["overview-download.data"], {f"overview-dl-{fmt}.n_clicks": 1,
                                                              f"overview-dl-{other}.n_clicks": None},
                                 {"lang.data": lang, "ov-range.value": None})  # the period picker: this month
    resp = client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": support.session_csrf(client)})
    assert resp.status_code == 200, resp.get_data(as_text=True)[:300]
    return resp.json["response"]["overview-download"]["data"]


def test_the_overview_download_is_named_after_its_period_and_opens_in_excel(admin):
    client, ctx = admin
    data = overview_download(client, "csv", "zh-CN")
    assert data["filename"] == "enterprises-month-p-20240301-20240310-20240310-1200.csv"
    assert data["content"].startswith("\ufeff企业,能源品种,能耗,单位,数据完整率")
    data = overview_download(client, "xlsx", "en")
    assert data["filename"] == "enterprises-month-p-20240301-20240310-20240310-1200.xlsx"
    ws = workbook(base64.b64decode(data["content"]))
    assert ws["A1"].value == "Enterprises: energy and coverage this month"
    block = {ws.cell(row=r, column=1).value: ws.cell(row=r, column=2).value for r in range(2, 9)}
    assert block["Period"] == "2024-03-01 00:00 – 2024-03-10 12:00 (Asia/Shanghai)"
    assert block["Park"] == "Test Park" and "Coverage" in block["Data coverage"]
    header = next(r for r in range(1, 20) if ws.cell(row=r, column=1).value == "Enterprise")
    assert ws.cell(row=header + 1, column=1).value == "Alpha Co."
    energy = ws.cell(row=header + 1, column=3).value
    assert energy == pytest.approx(4 * 24 * 9 + 4 * 12)  # 1 kWh per quarter hour, 1 March 00:00 to 10 March 12:00
    assert audit.events(ctx.engine)["target"].iloc[0] == data["filename"]


def test_an_empty_table_offers_no_buttons_and_the_table_says_so():
    from portal.components import data_table
    from portal.downloads import buttons

    shown = buttons("x", "en", FRAME)
    assert all(getattr(c, "style", None) is None for c in shown.children if c.id in ("x-dl-csv", "x-dl-xlsx"))
    empty = buttons("x", "en", FRAME.iloc[0:0])
    assert [c.style for c in empty.children if c.id in ("x-dl-csv", "x-dl-xlsx")] == [{"display": "none"}] * 2
    assert data_table("x-table", FRAME.iloc[0:0], lang="en").children == "no data"
