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
