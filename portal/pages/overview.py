"""Park overview (admin, regulator): energy by carrier today and this month with units, periods and data
coverage; daily electricity with coverage; enterprises' energy and coverage this month."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
from dash import dash_table, dcc, html

from park.model import Park
from park.store import TimeSeriesStore
from park.units import canonical_unit
from portal import downloads
from portal.auth import Role, User
from portal.i18n import t

PATH = "/"
TITLE_KEY = "nav.overview"
ROLES = {Role.ADMIN, Role.REGULATOR}


@dataclass
class Overview:
    """What the overview shows, computed from the store for one moment."""

    today: pd.DataFrame  # carrier, value, unit, coverage
    month: pd.DataFrame  # carrier, value, unit, coverage
    daily: pd.DataFrame  # start, value, coverage (electricity, last 30 days)
    by_enterprise: pd.DataFrame  # enterprise, carrier, value, unit, coverage (this month)
    period_month: tuple[pd.Timestamp, pd.Timestamp]


def _by_carrier(read, start: pd.Timestamp, end: pd.Timestamp, by: list[str]) -> pd.DataFrame:
    agg = read("energy", start, end, "day", by=by)
    out = agg.groupby(by, dropna=False).agg(value=("value", lambda v: v.sum(min_count=1)),
                                            measured=("measured", "sum"), expected=("expected", "sum"))
    out["coverage"] = out["measured"] / out["expected"].where(out["expected"] > 0)
    out = out.reset_index()
    out["unit"] = out["carrier"].map(canonical_unit)
    return out


def compute_overview(store: TimeSeriesStore, park: Park, now: datetime, read=None) -> Overview:
    """`read` is the access layer's aggregate bound to the user (defaults to the store, for tests and tools)."""
    read = read or store.aggregate
    local_now = pd.Timestamp(now).tz_convert(park.tz)
    today = local_now.floor("D")
    # Periods run to now (the last complete quarter hour): intervals still to come are not "missing".
    tomorrow = local_now.floor("15min")
    month = pd.Timestamp(today.year, today.month, 1, tz=park.tz)
    daily = read("energy", today - pd.DateOffset(days=29), tomorrow, "day", where={"carrier": "electricity"})
    return Overview(
        today=_by_carrier(read, today, tomorrow, ["carrier"]),
        month=_by_carrier(read, month, tomorrow, ["carrier"]),
        daily=daily[["start", "value", "coverage"]],
        by_enterprise=_by_carrier(read, month, tomorrow, ["enterprise", "carrier"]),
        period_month=(month, tomorrow),
    )


def _fmt(value: float, digits: int = 1) -> str:
    return "—" if pd.isna(value) else f"{value:,.{digits}f}"


def _pct(value: float) -> str:
    return "—" if pd.isna(value) else f"{value:.1%}"


def _kpi(title: str, value: str, unit: str, note: str) -> html.Div:
    return html.Div(className="kpi", children=[
        html.Div(title, className="kpi-title"),
        html.Div([html.Span(value, className="kpi-value"), html.Span(" " + unit, className="kpi-unit")]),
        html.Div(note, className="kpi-note"),
    ])


def render_overview(ov: Overview, park: Park, lang: str) -> list:
    cov = t("kpi.coverage", lang)
    cards = []
    for label, frame in ((t("kpi.energy_today", lang), ov.today), (t("kpi.energy_month", lang), ov.month)):
        for row in frame.sort_values("carrier").itertuples():
            cards.append(_kpi(f"{label} · {t('carrier.' + row.carrier, lang)}", _fmt(row.value), row.unit,
                              f"{cov} {_pct(row.coverage)}"))
    fig = go.Figure()
    fig.add_bar(x=ov.daily["start"], y=ov.daily["value"], name=t("carrier.electricity", lang),
                hovertemplate="%{x|%Y-%m-%d}: %{y:,.0f} kWh<extra></extra>")
    fig.add_scatter(x=ov.daily["start"], y=ov.daily["coverage"] * 100, name=f"{cov} (%)", yaxis="y2",
                    mode="lines+markers", hovertemplate="%{y:.1f}%<extra></extra>")
    fig.update_layout(title=t("chart.daily_energy", lang), yaxis_title=t("chart.unit_kwh", lang),
                      yaxis2={"overlaying": "y", "side": "right", "range": [0, 105], "title": f"{cov} (%)"},
                      margin={"l": 60, "r": 60, "t": 50, "b": 40}, legend={"orientation": "h"}, height=380)
    table = enterprise_table(ov, park, lang)
    start, end = ov.period_month
    period = f"{t('period', lang)}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({park.timezone}); "
    return [
        html.Div(cards, className="kpis", id="kpis"),
        dcc.Graph(figure=fig, id="daily-energy", config={"displaylogo": False}),
        html.H3(t("table.enterprises", lang)),
        html.P(period + t("coverage.note", lang), className="note"),
        downloads.buttons("overview", lang),
        dash_table.DataTable(id="enterprise-table", data=table.to_dict("records"),
                             columns=[{"id": c, "name": c} for c in table.columns],
                             sort_action="native", page_size=20, style_cell={"textAlign": "left"}),
    ]


def enterprise_table(ov: Overview, park: Park, lang: str) -> pd.DataFrame:
    """The enterprises table as shown and downloaded: translated headers, units, coverage as a share."""
    names = {e.id: (e.name if lang == "zh-CN" else e.name_en or e.name) for e in park.enterprises}
    d = ov.by_enterprise
    return pd.DataFrame({
        t("col.enterprise", lang): d["enterprise"].map(names),
        t("col.carrier", lang): d["carrier"].map(lambda c: t("carrier." + c, lang)),
        t("col.energy", lang): d["value"].round(3),
        t("col.unit", lang): d["unit"],
        t("col.coverage", lang): d["coverage"].round(4),
    })


def layout(ctx, user: User, lang: str) -> html.Div:
    def read(*args, **kw):
        return ctx.access.aggregate(user, *args, **kw)

    ov = compute_overview(ctx.store, ctx.park, ctx.now(), read)
    return html.Div([dcc.Interval(id="overview-tick", interval=60_000), *render_overview(ov, ctx.park, lang)])


def register(app, ctx) -> None:
    def table(user: User, lang: str) -> pd.DataFrame:
        def read(*args, **kw):
            return ctx.access.aggregate(user, *args, **kw)

        return enterprise_table(compute_overview(ctx.store, ctx.park, ctx.now(), read), ctx.park, lang)

    downloads.register(app, ctx, "overview", "enterprises-month", table)
