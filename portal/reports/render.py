"""A report's files: an Excel workbook (a cover sheet, then one sheet per table with its title, park, period and
units above a frozen header row; fitted column widths), CSV files (one per table, UTF-8 with a byte-order mark)
and, for the human-readable kinds, a PDF (portal.pdf, with an embedded CJK font subset).

The conventions are the portal downloads' (portal.downloads): formula-like text neutralised, Excel text cells
written as text, CSV with BOM and CRLF, an empty table said to be empty.  Files are deterministic for the same
report and generation time.
"""

from __future__ import annotations

import io
from datetime import datetime

import pandas as pd

from portal.downloads import MAX_WIDTH, Export, _text, _width, neutralise, safe_frame, to_csv
from portal.reports.content import PARK_ROW, Report, Section

PDF_KINDS = ("monthly", "quarterly", "annual")  # key-units is data for upload, not for reading
SHEET_NAMES = {"emissions": "能耗与排放", "energy": "分品种能源", "intensity": "强度", "quota": "配额",
               "coverage": "数据完整率", "anomalies": "异常数据", "anomaly_cases": "异常预警",
               "units": "重点用能单位", "monthly": "月数据", "daily": "日数据", "output": "产值",
               "products": "产品单耗", "rules": "监测规则", "status": "能源利用状况", "compliance": "履约",
               "ets": "碳市场口径"}


def period_text(report: Report) -> str:
    start, end = report.period.bounds(report.timezone)
    last = end - pd.Timedelta(days=1)
    return f"{report.period.label} ({start:%Y-%m-%d} – {last:%Y-%m-%d}, {report.timezone})"


def summary_rows(report: Report, version: int, generated_at: datetime, content_hash: str) -> list[tuple[str, str]]:
    local = pd.Timestamp(generated_at).tz_convert(report.timezone)
    failures = len(report.failures)
    return [("园区 Park", f"{report.park_name} {report.park_name_en}".strip()),
            ("统计期 Period", period_text(report)),
            ("版本 Version", str(version)),
            ("生成时间 Generated", f"{local:%Y-%m-%d %H:%M} ({report.timezone})"),
            ("监测规则 Rules", "全部通过 all passed" if not failures else f"{failures} 项未通过 failed (见“规则”表)"),
            ("数据指纹 Content SHA-256", content_hash),
            ("单位 Units", "见各列标题 in the column headers"),
            ("数据完整 Completeness", "每行“数据完整”列标明数字是否完整，不完整的列出原因 Each row says whether its "
                                    "figures are complete, and why not"),
            *[("说明 Note", n) for n in report.notes]]


def failures_section(report: Report) -> Section:
    from portal.reports.content import ENT, NAME, Column

    frame = pd.DataFrame([{"enterprise": f.enterprise or "", "name": f.subject or "", "code": f.code,
                           "carrier": f.carrier or "", "message": f.message} for f in report.failures],
                         columns=["enterprise", "name", "code", "carrier", "message"])
    return Section("failures", "未通过的规则", "Rule failures",
                   [ENT, NAME, Column("code", "规则", "Rule", kind="text"),
                    Column("carrier", "能源品种", "Energy type", kind="text"),
                    Column("message", "说明", "Detail", kind="text")], frame, keys=("enterprise", "code", "carrier"))


def _sheet_name(section: Section, used: set[str]) -> str:
    base = SHEET_NAMES.get(section.key, section.key)[:28]
    name, n = base, 2
    while name in used:
        name, n = f"{base} {n}", n + 1
    used.add(name)
    return name


def to_xlsx(report: Report, version: int, generated_at: datetime, content_hash: str) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    cover = wb.active
    cover.title = "说明 About"
    title_zh, title_en = report.title
    _text(cover.cell(row=1, column=1), neutralise(f"{title_zh} {title_en}")).font = Font(bold=True, size=14)
    rows = summary_rows(report, version, generated_at, content_hash)
    rows += [("表 Table", f"{s.zh} {s.en}") for s in report.sections]
    for r, (k, v) in enumerate(rows, start=3):
        _text(cover.cell(row=r, column=1), neutralise(k)).font = Font(bold=True)
        _text(cover.cell(row=r, column=2), neutralise(v))
    cover.column_dimensions["A"].width = 28
    cover.column_dimensions["B"].width = MAX_WIDTH + 20
    fill = PatternFill("solid", fgColor="E6F2EF")
    used: set[str] = set()
    sections = list(report.sections) + ([failures_section(report)] if report.failures else [])
    for section in sections:
        ws = wb.create_sheet(_sheet_name(section, used) if section.key != "failures" else "规则 Failures")
        head = [f"{section.zh} {section.en}", f"园区 Park: {report.park_name}", f"统计期 Period: {period_text(report)}",
                "单位 Units: 见各列标题 in the column headers"]
        if section.note:
            head.append(f"说明 Note: {section.note}")
        for r, text in enumerate(head, start=1):
            cell = _text(ws.cell(row=r, column=1), neutralise(text))
            cell.font = Font(bold=True, size=13) if r == 1 else Font(italic=r > 2)
        header_row = len(head) + 2
        table = safe_frame(section.table())
        if table.empty:
            _text(ws.cell(row=header_row, column=1), "本期无数据 no data for this period").font = Font(bold=True)
            ws.column_dimensions["A"].width = 40
            continue
        kinds = [c.kind for c in section.columns]
        for c, name in enumerate(table.columns, start=1):
            cell = _text(ws.cell(row=header_row, column=c), name)
            cell.font, cell.fill = Font(bold=True), fill
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        for r, row in enumerate(table.itertuples(index=False, name=None), start=header_row + 1):
            for c, value in enumerate(row, start=1):
                if value is None or (not isinstance(value, str) and pd.isna(value)):
                    continue
                cell = ws.cell(row=r, column=c)
                if isinstance(value, str):
                    _text(cell, value)
                else:
                    cell.value = float(value)
                    cell.number_format = "0.0%" if kinds[c - 1] == "share" else "#,##0.00##"
        ws.freeze_panes = ws.cell(row=header_row + 1, column=3 if len(table.columns) > 3 else 1)
        for c, name in enumerate(table.columns, start=1):
            values = [v for v in table.iloc[:, c - 1].head(300).tolist()
                      if v is not None and not (not isinstance(v, str) and pd.isna(v))]
            widest = max([_width(v) for v in values] + [min(_width(name), 28)])
            ws.column_dimensions[get_column_letter(c)].width = min(MAX_WIDTH, max(10, widest + 2))
    buf = io.BytesIO()
    wb.properties.created = pd.Timestamp(generated_at).tz_convert("UTC").tz_localize(None).to_pydatetime()
    wb.properties.modified = wb.properties.created
    wb.save(buf)
    return buf.getvalue()


def to_csvs(report: Report) -> dict[str, bytes]:
    """One CSV per table (and one of the rule failures when any), by section key."""
    sections = list(report.sections) + ([failures_section(report)] if report.failures else [])
    return {s.key: to_csv(Export(frame=s.table(), title=f"{s.zh} {s.en}", period=report.period.label),
                          "zh-CN").encode("utf-8") for s in sections}


PDF_COLUMNS_LEFT_OUT = {"enterprise", "credit_code", "reasons", "measured", "expected", "industry"}
# The PDF is for reading: per-enterprise totals, quota and compliance, the park's energy by type; the detail
# (energy by type per enterprise, coverage counts, quarantined readings) is in the Excel and CSV files.
PDF_SECTIONS = {"monthly": ("emissions", "energy", "intensity", "quota"),
                "quarterly": ("status", "energy", "compliance"), "annual": ("status", "energy", "compliance", "ets")}
PDF_PARK_ROWS_ONLY = {"energy"}


def to_pdf(report: Report, version: int, generated_at: datetime, content_hash: str, font: str | None = None
           ) -> bytes:
    from portal.pdf import Column as PdfColumn
    from portal.pdf import PdfDocument

    title_zh, title_en = report.title
    doc = PdfDocument(title_zh, title_en, subtitle=f"{report.park_name} · {period_text(report)} · v{version}",
                      generated_at=pd.Timestamp(generated_at).to_pydatetime(), font=font, landscape=True)
    doc.kv([(k.split(" ", 1)[0], k.split(" ", 1)[1] if " " in k else "", v)
            for k, v in summary_rows(report, version, generated_at, content_hash)])
    _charts(doc, report)
    for section in report.sections:
        if section.key not in PDF_SECTIONS.get(report.kind, ()):
            continue
        table = section.table()
        if section.key in PDF_PARK_ROWS_ONLY:
            table = table[(section.frame["enterprise"] == PARK_ROW).to_numpy()]
            doc.heading(f"{section.zh} (园区合计)", f"{section.en} (park total)")
        else:
            doc.heading(section.zh, section.en)
        cols = [c for c in section.columns if c.key not in PDF_COLUMNS_LEFT_OUT]
        rows = []
        for r in table[[c.header for c in cols]].itertuples(index=False, name=None):
            rows.append([None if (not isinstance(v, str) and pd.isna(v)) else
                         (v * 100 if c.kind == "share" else v) for c, v in zip(cols, r, strict=True)])
        doc.table([PdfColumn(c.zh, c.en, c.unit, c.numeric, decimals=1 if c.kind == "share" else 2)
                   for c in cols], rows, note=section.note or None)
    doc.paragraph("各企业分品种能耗、数据完整率明细和异常数据见同版本的 Excel 与 CSV 文件。",
                  "Energy by type per enterprise, coverage detail and anomalies: see the Excel and CSV files of "
                  "this version.")
    if report.failures:
        doc.heading("未通过的规则", "Rule failures")
        doc.table([PdfColumn("企业", "Enterprise"), PdfColumn("规则", "Rule"), PdfColumn("说明", "Detail")],
                  [[f.subject or f.enterprise or "", f.code, f.message] for f in report.failures])
    return doc.to_bytes()


def _charts(doc, report: Report) -> None:
    """The park's energy by type (tce) and the ten largest emitters (location-based), as bar charts."""
    keys = {s.key for s in report.sections}
    if "energy" in keys:
        e = report.section("energy").frame
        e = e[(e["enterprise"] == PARK_ROW) & e["energy_tce"].notna()]
        if len(e):
            doc.bar_chart("园区分品种能耗", "Park energy by type", [str(c) for c in e["carrier"]],
                          [float(v) for v in e["energy_tce"]], "tce")
    totals = next((report.section(k).frame for k in ("emissions", "status") if k in keys), None)
    if totals is not None and "total_location_t_co2e" in totals.columns:
        top = totals[(totals["enterprise"] != PARK_ROW) & totals["total_location_t_co2e"].notna()].nlargest(
            10, "total_location_t_co2e")
        if len(top):
            doc.bar_chart("碳排放前十企业 (基于位置)", "Ten largest emitters (location-based)",
                          [str(n) for n in top["name"]], [float(v) for v in top["total_location_t_co2e"]], "tCO2e")
