"""Table downloads (CSV or Excel) built on the server from the user's own scoped data, each logged in the audit
log: who downloaded what, when, how many rows.  The one download mechanism of every page:

* **Safe to open**: every text cell (headers included) that a spreadsheet would read as a formula, i.e. that
  begins with ``= + - @``, a tab, CR or LF, is prefixed with ``'`` (OWASP "CSV injection"), and Excel cells are
  written as text, never as formulas.  Numbers stay numbers (a negative number in a numeric column is not text),
  and a text that is just a signed number ("-12.5") is left as it is.  Control characters Excel cannot store are
  replaced by U+FFFD, so a stray byte in a logged field cannot break the export.
* **Readable**: CSV is UTF-8 with a byte-order mark, so Excel on Windows shows the Chinese headers; Excel files
  carry a title block (title, park and subject, period, units, coverage, time of download) above the table, a
  frozen header row, column widths fitted to the content and thousands separators.
* **Named after what they hold**: ``<name>-<park>[-<label>][-<period>]-<download time>.csv|xlsx``.
* **Honest when empty**: a table with no rows is not sent as a header-only file; the file says that there is no
  data for the period (and pages show "no data" instead of an empty table, portal.components.data_table).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pandas as pd
from dash import Input, Output, State, dcc, html, no_update
from dash import ctx as dash_ctx

from portal.i18n import register as register_text
from portal.i18n import t

FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d[\d,]*(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?")
_EXCEL_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")  # what openpyxl refuses to write
MAX_WIDTH = 60

TEXT: dict[str, dict[str, str]] = {
    "download.no_data": {"zh-CN": "本期无数据", "en": "no data for this period"},
    "download.park": {"zh-CN": "园区", "en": "Park"},
    "download.subject": {"zh-CN": "对象", "en": "Of"},
    "download.period": {"zh-CN": "统计期", "en": "Period"},
    "download.as_of": {"zh-CN": "截至 {at}", "en": "as of {at}"},
    "download.units": {"zh-CN": "单位", "en": "Units"},
    "download.units_in_headers": {"zh-CN": "见各列标题或“单位”列", "en": "in the column headers or the Unit column"},
    "download.coverage_in_column": {"zh-CN": "逐行见“{col}”列", "en": "per row, in the column \u201c{col}\u201d"},
    "download.coverage": {"zh-CN": "数据完整率", "en": "Data coverage"},
    "download.note": {"zh-CN": "说明", "en": "Note"},
    "download.downloaded": {"zh-CN": "下载时间", "en": "Downloaded"},
    "download.title.enterprises-month":
        {"zh-CN": "企业本月能耗与数据完整率", "en": "Enterprises: energy and coverage this month"},
    "download.title.ranking":
        {"zh-CN": "企业碳排放与碳效率排名", "en": "Enterprise emissions and carbon-efficiency ranking"},
    "download.title.enterprise-carriers":
        {"zh-CN": "企业分能源品种能耗与碳排放", "en": "Enterprise energy and emissions by carrier"},
    "download.title.enterprise-workshops":
        {"zh-CN": "企业分车间能耗与碳排放", "en": "Enterprise energy and emissions by workshop"},
    "download.title.enterprise-intensities": {"zh-CN": "企业碳排放强度", "en": "Enterprise emission intensities"},
    "download.title.enterprise-costs": {"zh-CN": "企业能源与碳成本", "en": "Enterprise energy and carbon costs"},
    "download.title.equipment-devices": {"zh-CN": "设备状态", "en": "Equipment status"},
    "download.title.equipment-utilisation-by-day": {"zh-CN": "设备日利用率", "en": "Equipment utilisation by day"},
    "download.title.equipment-utilisation-by-shift":
        {"zh-CN": "设备分班次利用率", "en": "Equipment utilisation by shift"},
    "download.title.equipment-energy": {"zh-CN": "设备能耗估算", "en": "Equipment energy"},
    "download.title.coverage-enterprises": {"zh-CN": "企业数据完整率", "en": "Data coverage by enterprise"},
    "download.title.coverage-meters": {"zh-CN": "计量表数据完整率", "en": "Data coverage by meter"},
    "download.title.silent-meters": {"zh-CN": "无数据计量表", "en": "Silent meters"},
    "download.title.quarantined": {"zh-CN": "隔离数据", "en": "Quarantined readings"},
    "download.title.restatements": {"zh-CN": "数据重述", "en": "Restatements"},
    "download.title.warnings": {"zh-CN": "预警信息", "en": "Warnings"},
    "download.title.audit-log": {"zh-CN": "审计日志", "en": "Audit log"},
}
register_text(TEXT)


@dataclass(frozen=True)
class Export:
    """What a page's download function may return instead of a bare frame: the table and what it is of.
    `period` is shown in the file ("2024-03-01 – 2024-03-10, park local time"), `period_tag` goes into the file
    name ("202403" or "20240301-20240310"); `label` names the subject (an enterprise) in the file name."""

    frame: pd.DataFrame
    title: str | None = None
    label: str | None = None
    period: str | None = None
    period_tag: str | None = None
    units: str | None = None
    coverage: float | str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


Table = Callable[..., "pd.DataFrame | tuple[str, pd.DataFrame] | Export | None"]


def period(start: pd.Timestamp, end: pd.Timestamp, tz: str) -> dict[str, str]:
    """`period` and `period_tag` of an Export for [start, end), park-local: the text shown in the file and the tag
    in its name ("202403" for a whole month, "20240310" for one day, else "20240301-20240310")."""
    last = end - pd.Timedelta("1ns")
    if start == start.normalize() and start.day == 1 and end == start + pd.offsets.MonthBegin(1):
        tag = f"{start:%Y%m}"
    elif start.normalize() == last.normalize():
        tag = f"{start:%Y%m%d}"
    else:
        tag = f"{start:%Y%m%d}-{last:%Y%m%d}"
    return {"period": f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({tz})", "period_tag": tag}


def neutralise(value: object) -> object:
    """A cell value that no spreadsheet will evaluate: text beginning with a formula character gets a leading
    apostrophe; characters Excel cannot store become U+FFFD; anything that is not text is returned unchanged."""
    if not isinstance(value, str):
        return value
    value = _EXCEL_ILLEGAL.sub("\ufffd", value)
    if value.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with every text cell and header neutralised (numeric columns untouched), and time-zone-aware
    timestamps as park-local wall times (Excel has no time zones)."""
    out = frame.copy()
    out.columns = [neutralise(str(c)) for c in out.columns]
    for i in range(out.shape[1]):
        s = out.iloc[:, i]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            out.isetitem(i, s.dt.tz_localize(None))
        elif s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
            out.isetitem(i, s.map(neutralise).astype(object))
    return out


def to_csv(export: Export, lang: str) -> str:
    """UTF-8 CSV text with a byte-order mark; an empty table is a one-line file saying so."""
    buf = io.StringIO()
    buf.write("\ufeff")
    if export.frame.empty:
        csv.writer(buf).writerow([neutralise(no_data_text(export, lang))])
        return buf.getvalue()
    safe_frame(export.frame).to_csv(buf, index=False, lineterminator="\r\n")  # CRLF: a field with CR is quoted
    return buf.getvalue()


def no_data_text(export: Export, lang: str) -> str:
    title = export.title or ""
    period = f" ({export.period})" if export.period else ""
    return f"{title}{period}: {t('download.no_data', lang)}" if title else t("download.no_data", lang)


def _width(value: object) -> int:
    """Display width of a cell: East Asian wide characters count twice."""
    text = value if isinstance(value, str) else f"{value:,.2f}" if isinstance(value, float) else str(value)
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def to_xlsx(export: Export, lang: str, park: str, downloaded: str) -> bytes:
    """An Excel workbook: a title block, then the table with a frozen, bold header row, fitted column widths and
    thousands separators.  Text cells are written as text (never formulas)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook()
    ws = wb.active
    ws.title = "data"
    head: list[tuple[str, object]] = [("", export.title or ""), (t("download.park", lang), park)]
    if export.label:
        head.append((t("download.subject", lang), export.label))
    head.append((t("download.period", lang), export.period or t("download.as_of", lang).format(at=downloaded)))
    head.append((t("download.units", lang), export.units or t("download.units_in_headers", lang)))
    cov = export.coverage
    if cov is None:  # a table with a coverage column: say where it is
        col = next((c for c in export.frame.columns if c in (t("col.coverage", lang), t("kpi.coverage", lang))), None)
        cov = t("download.coverage_in_column", lang).format(col=col) if col else None
    if cov is not None:
        head.append((t("download.coverage", lang), f"{cov:.1%}" if isinstance(cov, float) else cov))
    head += [(t("download.note", lang), n) for n in export.notes]
    head.append((t("download.downloaded", lang), downloaded))
    for r, (key, value) in enumerate(head, start=1):
        if r == 1:
            _text(ws.cell(row=1, column=1), neutralise(value)).font = Font(bold=True, size=14)
            continue
        _text(ws.cell(row=r, column=1), neutralise(key)).font = Font(bold=True)
        _text(ws.cell(row=r, column=2), neutralise(str(value)))
    header_row = len(head) + 2
    frame = safe_frame(export.frame)
    if frame.empty:
        _text(ws.cell(row=header_row, column=1), neutralise(no_data_text(export, lang))).font = Font(bold=True)
        ws.column_dimensions["A"].width = 24
        ws.column_dimensions["B"].width = min(MAX_WIDTH, max(_width(str(v)) for _, v in head) + 2)
        return _save(wb)
    fill = PatternFill("solid", fgColor="E6F2EF")
    for c, name in enumerate(frame.columns, start=1):
        cell = _text(ws.cell(row=header_row, column=c), name)
        cell.font, cell.fill = Font(bold=True), fill
    for r, row in enumerate(frame.itertuples(index=False, name=None), start=header_row + 1):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                continue
            if isinstance(value, str):
                _text(cell, value)
            else:
                cell.value = value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
                if isinstance(value, int | float) and not isinstance(value, bool):
                    cell.number_format = "#,##0" if float(value).is_integer() else "#,##0.00##"
    ws.freeze_panes = ws.cell(row=header_row + 1, column=1)
    for c, name in enumerate(frame.columns, start=1):
        values = [name, *frame.iloc[:, c - 1].head(500).tolist()]
        if c <= 2:
            values += [v for _, v in head[1:]] if c == 2 else [k for k, _ in head[1:]]
        widest = max(_width(v) for v in values if v is not None and not (not isinstance(v, str) and pd.isna(v)))
        ws.column_dimensions[get_column_letter(c)].width = min(MAX_WIDTH, max(8, widest + 2))
    return _save(wb)


def _text(cell, value: str):
    """Write `value` as a text cell (openpyxl would take a leading "=" for a formula)."""
    cell.value = value
    cell.data_type = "s"
    return cell


def _save(wb) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def as_export(result, title: str) -> Export:
    """A page's answer (a frame, (label, frame) or an Export) as an Export with a title."""
    if isinstance(result, Export):
        return result if result.title else replace(result, title=title)
    label, frame = result if isinstance(result, tuple) else (None, result)
    return Export(frame=frame, title=title, label=label)


def filename(name: str, park: str, export: Export, at: str, fmt: str) -> str:
    """`<name>-<park>[-<label>][-<period tag>]-<download time>.<fmt>`, with characters unsafe in file names
    replaced."""
    parts = [name, park, *([export.label] if export.label else []),
             *([export.period_tag] if export.period_tag else []), at]
    return re.sub(r'[\\/:*?"<>|\x00-\x1f]', "_", "-".join(str(p) for p in parts)) + f".{fmt}"


def buttons(prefix: str, lang: str, frame: pd.DataFrame | None = None) -> html.Div:
    """The CSV and Excel buttons of a table.  Given the table and it has no rows, the buttons are hidden: nothing
    to download (the table, portal.components.data_table, says there is no data), no header-only files."""
    empty = frame is not None and frame.empty
    hidden = {"display": "none"} if empty else None
    return html.Div(className="downloads", children=[
        html.Button(t("download.csv", lang), id=f"{prefix}-dl-csv", className="dl", style=hidden),
        html.Button(t("download.xlsx", lang), id=f"{prefix}-dl-xlsx", className="dl", style=hidden),
        dcc.Download(id=f"{prefix}-download"),
    ])


def register(callbacks, prefix: str, name: str, table: Table, *controls: State) -> None:
    """A download callback of a page (portal.callbacks.PageCallbacks: refused for the roles the page refuses).
    `table(scope, lang, *values of controls)` builds the frame, or (label, frame) to name what it is of (an
    enterprise, a period) in the file name, or an `Export` with the period, units and coverage, or None when the
    request is refused (nothing is sent).  The title is the translation `download.title.<name>` when there is
    one, else the name."""

    @callbacks.callback(Output(f"{prefix}-download", "data"), Input(f"{prefix}-dl-csv", "n_clicks"),
                        Input(f"{prefix}-dl-xlsx", "n_clicks"), State("lang", "data"), *controls,
                        prevent_initial_call=True,
                        action=f"download {name}")
    def download(scope, lang, _csv, _xlsx, *values):
        result = table(scope, lang, *values)
        if result is None:
            return no_update
        key = f"download.title.{name}"
        try:
            title = t(key, lang)
        except KeyError:
            title = name
        export = as_export(result, title)
        fmt = "xlsx" if dash_ctx.triggered_id == f"{prefix}-dl-xlsx" else "csv"
        now = scope.now()
        file = filename(name, scope.park.id, export, now.strftime("%Y%m%d-%H%M"), fmt)
        scope.record("download", file, rows=len(export.frame), format=fmt)
        if fmt == "csv":
            return {"content": to_csv(export, lang), "filename": file, "type": "text/csv;charset=utf-8"}
        park = scope.park.name if lang == "zh-CN" else (scope.park.name_en or scope.park.name)
        return dcc.send_bytes(to_xlsx(export, lang, park, f"{now:%Y-%m-%d %H:%M} ({now.tzinfo})"), file)
