"""Display pieces every page uses: number and share formatting (a gap is "—", never 0), KPI cards and tables."""

from __future__ import annotations

import pandas as pd
from dash import dash_table, html


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


def data_table(table_id: str, frame: pd.DataFrame, percent: tuple[str, ...] | list[str] = ()) -> dash_table.DataTable:
    """A sortable table; shares shown as percentages (the download keeps the numbers)."""
    share = dash_table.FormatTemplate.percentage(1)
    columns = [{"id": c, "name": c, **({"type": "numeric", "format": share} if c in percent else {})}
               for c in frame.columns]
    return dash_table.DataTable(id=table_id, data=frame.to_dict("records"), columns=columns, sort_action="native",
                                page_size=20, style_table={"overflowX": "auto"},
                                style_cell={"textAlign": "left", "fontFamily": "inherit", "fontSize": 13})


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
