"""Display pieces every page uses: number and share formatting (a gap is "—", never 0), KPI cards and tables."""

from __future__ import annotations

import json
import re
import unicodedata

import dash_ag_grid as dag
import numpy as np
import pandas as pd
from dash import html

from portal import theme  # noqa: F401  (sets the park chart template as plotly's default before any figure is made)


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:,.{digits}f}"


def pct(value: float | None) -> str:
    return "—" if value is None or pd.isna(value) else f"{value:.1%}"


def kpi(title: str, value: str, unit: str, note: str, kpi_id: str | None = None) -> html.Div:
    """A card: title, value with its unit, and a note (period, coverage)."""
    return html.Div(className="kpi", **({"id": kpi_id} if kpi_id else {}), children=[
        html.Div(title, className="kpi-title"),
        html.Div([html.Span(value, className="kpi-value"), html.Span(" " + unit, className="kpi-unit")]),
        html.Div(note, className="kpi-note"),
    ])


_CJK = re.compile(r"[\u3000-\u9fff\uff00-\uffef]")
GRID_TEXT = ("page", "of", "to", "more", "next", "previous", "first", "last", "noRowsToShow", "loadingOoo",
             "pageSizeSelectorLabel", "ariaPageSizeSelectorLabel")


def grid_locale(lang: str) -> dict[str, str]:
    """AG Grid's own words (pagination, empty grid) in `lang`, from the one translation table."""
    from portal.i18n import t

    return {key: t(f"grid.{key}", lang) for key in GRID_TEXT}


def _digits(values: pd.Series) -> int:
    """Decimals a numeric column needs as shown (at most 4; the pages round their figures)."""
    v = values.to_numpy(dtype=float, na_value=np.nan)  # arrays, not Series: a page shows some 25 columns
    v = v[np.abs(v) < 1e15]  # (NaN and infinities fail the test too)
    for d in range(5):
        if (np.round(v * 10**d, 6) % 1 == 0).all():
            return d
    return 4


def _chars(text: str) -> int:
    """Display width in characters: East Asian wide characters count twice."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _shown_width(name: str, texts) -> int:
    """A column's width in pixels for its header and its longest shown value (13 px font, room for the sort and
    filter icons), so a grid is readable even where AG Grid cannot measure it (a hidden tab)."""
    longest = max([_chars(name) + 3, *(_chars(x) for x in texts)])
    return min(360, max(72, int(longest * 7.5) + 36))


def _is_year(name: str, values: pd.Series) -> bool:
    return bool(re.search(r"年|year", name, re.I)) and values.dropna().between(1900, 2200).all()


def data_table(table_id: str, frame: pd.DataFrame, percent: tuple[str, ...] | list[str] = (),
               lang: str | None = None, page_size: int = 20, percent_digits: int = 1,
               wrap: tuple[str, ...] | list[str] | set[str] = (), empty: str | None = None,
               links: dict[str, list[str | None]] | None = None,
               colours: dict[str, dict[str, str]] | None = None) -> dag.AgGrid | html.P:
    """A sortable grid (dash-ag-grid) whose wide tables scroll instead of being cut off: numbers right-aligned
    with thousands separators (gaps "—", never 0), shares as percentages (the download keeps the numbers), column
    widths fitted to the content, AG Grid's own words in the page's language (`lang`, else the language of the
    headers, which the pages have translated).  Text columns in `wrap` wrap at a wider width; a long table is
    paged (`page_size`) and filterable.  A table without rows is a note (`empty`, else "no data"), not an empty
    grid.  `links`: column -> one path per row (None: no link), shown as links (drill down: an enterprise to its
    page, a workshop to its meters); `colours`: column -> {shown value: colour} (quota status in colour)."""
    from portal.i18n import t

    lang = lang or ("zh-CN" if any(_CJK.search(str(c)) for c in frame.columns) else "en")
    if frame.empty:
        return html.P(empty or t("no_data", lang), id=table_id, className="note empty-table")
    columns = []
    for name in frame.columns:
        values = frame[name]
        col: dict = {"field": str(name), "headerName": str(name), "colId": str(name)}
        sample = values.dropna().head(500)
        if name in percent:
            fmt = f"d3.format('.{percent_digits}%')(params.value)"
            texts = [f"{v:.{percent_digits}%}" for v in sample]
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            year, digits = _is_year(str(name), values), _digits(values)
            fmt = "String(params.value)" if year else f"d3.format(',.{digits}f')(params.value)"
            texts = [str(v) if year else f"{v:,.{digits}f}" for v in sample]
        else:
            fmt, texts = None, [str(v) for v in sample]
        if fmt:
            gap = "params.value == null || !Number.isFinite(params.value)"  # a gap is "—", never 0
            col.update(type="rightAligned", cellClass=["ag-right-aligned-cell", "num"],  # keep the type's class
                       valueFormatter={"function": f"{gap} ? '\u2014' : {fmt}"},
                       minWidth=_shown_width(str(name), texts))
        elif name in wrap:  # long text: a wide column whose rows grow
            col.update(wrapText=True, autoHeight=True, minWidth=240, width=320, maxWidth=480)
        else:
            col.update(minWidth=_shown_width(str(name), texts), maxWidth=480)
        if links and name in links:
            col.update(cellRenderer="markdown")
        if colours and name in colours:
            col["cellStyle"] = {"styleConditions": [
                {"condition": f"params.value === {json.dumps(v)}", "style": {"color": c, "fontWeight": 600}}
                for v, c in colours[name].items() if v in set(values.dropna())]}  # only values shown
        columns.append(col)
    shown = frame
    if links:
        shown = frame.copy()
        for name, hrefs in links.items():
            shown[name] = [f"[{_md(v)}]({h})" if h and isinstance(v, str) else v
                           for v, h in zip(frame[name], hrefs, strict=True)]
    rows = shown.astype(object).where(shown.notna(), None).to_dict("records")  # a gap is null, not NaN
    return dag.AgGrid(
        id=table_id, rowData=rows, columnDefs=columns, columnSize="autoSize",
        defaultColDef={"sortable": True, "resizable": True, "minWidth": 72, "filter": len(frame) > page_size},
        dashGridOptions={"suppressFieldDotNotation": True, "suppressColumnVirtualisation": True,
                         "domLayout": "autoHeight", "pagination": len(frame) > page_size,
                         "paginationPageSize": page_size, "paginationPageSizeSelector": False,
                         "enableCellTextSelection": True,
                         "ensureDomOrder": True, "localeText": grid_locale(lang)},
        className="data-grid", style={"width": "100%"})


def _md(text: str) -> str:
    """Text safe inside a markdown link's label."""
    return re.sub(r"([\\\[\]()*_`<>])", r"\\\1", text)


def completeness(result) -> tuple[bool, list[str]]:
    """Whether a carbon result is complete, and why not: its `complete` flag and the messages of its `reasons()`
    (carbon.emissions.Accounts: the issues that make figures incomplete), else of its error and warning issues."""
    reasons_of = getattr(result, "reasons", None)
    issues = reasons_of() if callable(reasons_of) else getattr(result, "issues", None)
    reasons: list[str] = []
    if isinstance(issues, pd.DataFrame) and len(issues):
        if not callable(reasons_of) and "severity" in issues.columns:
            issues = issues[issues["severity"].isin(["error", "warning"])]
        text = issues["message"] if "message" in issues.columns else issues.astype(str).agg(" ".join, axis=1)
        reasons = list(dict.fromkeys(str(m) for m in text))
    elif isinstance(issues, list | tuple):
        reasons = list(dict.fromkeys(str(getattr(i, "message", i)) for i in issues))
    flag = getattr(result, "complete", None)
    complete = (not reasons) if flag is None else bool(flag)
    return complete, reasons


def completeness_badge(result, lang: str, badge_id: str | None = None):
    """A visible badge 不完整 / incomplete with the reasons in its tooltip (title) when the result is incomplete;
    nothing (an empty span) when it is complete."""
    from portal.i18n import t

    complete, reasons = completeness(result) if result is not None else (True, [])
    extra = {"id": badge_id} if badge_id else {}
    if complete:
        return html.Span(**extra)
    title = "\n".join(reasons[:20]) + ("\n…" if len(reasons) > 20 else "")
    return html.Span(t("badge.incomplete", lang), className="badge-incomplete", title=title, style=BADGE_STYLE,
                     **extra)


BADGE_STYLE = {"display": "inline-block", "background": "#fff4e5", "color": "#8a4b00", "border": "1px solid #e0a526",
               "borderRadius": "4px", "padding": "0 6px", "fontSize": "12px", "marginLeft": "8px", "cursor": "help"}


def graph(fig, graph_id: str, lang: str | None = None, title: str | None = None, height: int | None = None,
          dark: bool = False, **kwargs):
    """A figure themed the portal's one way (portal.theme: park palette, readable axes, thousands separators,
    date labels in the page's language), as a dcc.Graph.  `lang` defaults to the title's script."""
    from dash import dcc

    if title is not None:
        fig.update_layout(title=title)
    if height is not None:
        fig.update_layout(height=height)
    shown = title if title is not None else str(fig.layout.title.text or "")
    theme.apply(fig, lang or ("zh-CN" if _CJK.search(shown) else "en"), dark=dark)
    return dcc.Graph(figure=fig, id=graph_id, config={"displaylogo": False, **kwargs.pop("config", {})}, **kwargs)


COMPLETE_STYLE = {**BADGE_STYLE, "background": "#e8f3ec", "color": "#1f5e3a", "border": "1px solid #2e7d4f"}


def coverage_findings(coverages: dict[str, float], threshold: float, lang: str) -> list[str]:
    """'name: 64.5%' for each subject whose data coverage is below the park's threshold (a gap counts as 0)."""
    return [f"{name}: {pct(c)}" for name, c in coverages.items() if not (pd.notna(c) and c >= threshold)]


def coverage_badge(coverages: dict[str, float], threshold: float, lang: str, badge_id: str | None = None):
    """Data completeness at a glance: 完整 / complete (green) when every subject's coverage reaches the park's
    threshold, else 不完整 / incomplete with the subjects below it in its tooltip; nothing without subjects."""
    from portal.i18n import t

    extra = {"id": badge_id} if badge_id else {}
    if not coverages:
        return html.Span(**extra)
    below = coverage_findings(coverages, threshold, lang)
    limit = t("badge.threshold", lang).format(threshold=pct(threshold))
    if not below:
        return html.Span(t("badge.complete", lang), className="badge-complete", title=limit, style=COMPLETE_STYLE,
                         **extra)
    title = limit + "\n" + "\n".join(below[:20]) + ("\n…" if len(below) > 20 else "")
    return html.Span(t("badge.incomplete", lang), className="badge-incomplete", title=title, style=BADGE_STYLE,
                     **extra)


def completeness_notes(coverages: dict[str, float], threshold: float, lang: str) -> tuple[str, ...]:
    """The same as a download's note: which subjects are below the threshold (none: complete)."""
    from portal.i18n import t

    below = coverage_findings(coverages, threshold, lang)
    limit = t("badge.threshold", lang).format(threshold=pct(threshold))
    return (f"{t('badge.incomplete', lang)} ({limit}): " + "; ".join(below),) if below else (
        f"{t('badge.complete', lang)} ({limit})",)


# ---- a chosen period (the date-range picker of every page that shows a period) -----------------------------------
MAX_PERIOD_DAYS = 366  # the longest range a picker accepts: a year (leap day included)
PERIOD_TEXT = {
    "period.picker": {"zh-CN": "统计期", "en": "Period"},
    "period.bad": {"zh-CN": "日期无法识别：{value}（格式 YYYY-MM-DD）",
                   "en": "Not a date: {value} (format YYYY-MM-DD)"},
    "period.order": {"zh-CN": "开始日期 {start} 晚于结束日期 {end}", "en": "The start {start} is after the end {end}"},
    "period.future": {"zh-CN": "日期 {day} 晚于今天 {today}：请选择今天或以前的日期",
                      "en": "{day} is after today ({today}): choose today or an earlier day"},
    "period.too_long": {"zh-CN": "所选期间 {days} 天，超过上限 {max} 天", "en": "The range is {days} days, longer "
                                                                        "than the {max} days allowed"},
    "period.empty": {"zh-CN": "所选期间尚无完整的 15 分钟区间", "en": "The range has no complete quarter hour yet"},
    "period.default": {"zh-CN": "本月至今", "en": "month to date"},
    "period.picked": {"zh-CN": "所选期间", "en": "chosen period"},
}


class PeriodError(ValueError):
    """A picked range the page refuses, with the reason as a translation key and its values."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(f"{key}: {values}")
        self.key, self.values = key, values

    def message(self, lang: str) -> str:
        from portal.i18n import t

        return t(self.key, lang).format(**self.values)


def picked_period(values, now: pd.Timestamp, tz, max_days: int = MAX_PERIOD_DAYS
                  ) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The park-local [first day 00:00, day after the last day 00:00) of a date-range picker's value, clipped to
    the last complete quarter hour; None when nothing (or only one end) is picked: the page's default period.
    PeriodError when the range is not one: an unreadable date, start after end, a day after today, more than
    `max_days` days, or nothing complete yet."""
    if not isinstance(values, list | tuple) or len(values) != 2 or not all(values):
        return None
    local_now = pd.Timestamp(now).tz_convert(tz)
    days = []
    for v in values:
        try:
            days.append(pd.Timestamp(str(v)[:10]).tz_localize(tz))
        except ValueError:
            raise PeriodError("period.bad", value=str(v)) from None
    a, b = days
    if a > b:
        raise PeriodError("period.order", start=f"{a:%Y-%m-%d}", end=f"{b:%Y-%m-%d}")
    today = local_now.floor("D")
    if b > today:
        raise PeriodError("period.future", day=f"{b:%Y-%m-%d}", today=f"{today:%Y-%m-%d}")
    n = (b - a).days + 1
    if n > max_days:
        raise PeriodError("period.too_long", days=n, max=max_days)
    end = min(b + pd.DateOffset(days=1), local_now.floor("15min"))
    if end <= a:
        raise PeriodError("period.empty")
    return a, end


def period_picker(picker_id: str, now: pd.Timestamp, tz, lang: str, value=None):
    """The date-range picker: the current month to today by default, no day after today selectable."""
    import dash_mantine_components as dmc

    from portal.i18n import t

    today = pd.Timestamp(now).tz_convert(tz)
    value = value or [f"{today:%Y-%m-01}", today.date().isoformat()]
    return dmc.DatePickerInput(id=picker_id, type="range", label=t("period.picker", lang), valueFormat="YYYY-MM-DD",
                               value=value, maxDate=today.date().isoformat(), w=260, allowSingleDateInRange=True)


def coverage_text(start: pd.Timestamp, end: pd.Timestamp, coverage: float, tz_name: str, lang: str) -> str:
    """'Period: 2024-03-02 00:00 – 2024-03-05 00:00 (Asia/Shanghai) · Data coverage 98.2%'."""
    from portal.i18n import t

    return (f"{t('period', lang)}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({tz_name}) · "
            f"{t('kpi.coverage', lang)} {pct(coverage)}")


def _register_period_text() -> None:
    from portal.i18n import register

    register(PERIOD_TEXT)


_register_period_text()
