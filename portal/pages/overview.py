"""Park overview (admin, regulator): live load; this month's comprehensive energy, emissions (location- and
market-based) and intensity; energy mix; daily electricity; enterprise ranking by emissions and by intensity with
grades and quota status; energy by carrier with units, periods and data coverage everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html
from flask_login import current_user

from park.model import Park
from park.store import TimeSeriesStore
from park.units import canonical_unit
from portal import downloads
from portal.auth import Role, User
from portal.components import data_table, fmt, kpi, pct
from portal.enterprise_data import CARBON_PRICE_CNY_PER_T
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
    grouped = agg.groupby(by, dropna=False)
    out = grouped[["measured", "expected"]].sum()
    out["value"] = grouped["value"].sum(min_count=1)  # no data stays NaN, never 0
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


def render_overview(ov: Overview, park: Park, lang: str) -> list:
    cov = t("kpi.coverage", lang)
    cards = []
    for label, frame in ((t("kpi.energy_today", lang), ov.today), (t("kpi.energy_month", lang), ov.month)):
        for row in frame.sort_values("carrier").itertuples():
            cards.append(kpi(f"{label} · {t('carrier.' + row.carrier, lang)}", fmt(row.value), row.unit,
                              f"{cov} {pct(row.coverage)}"))
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
        data_table("enterprise-table", table, percent=[t("col.coverage", lang)]),
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


@dataclass
class CarbonOverview:
    """Carbon figures of the overview: this month to date, the last complete month's ranking, the year's quotas."""

    month: pd.Series  # the park's totals row (energy_tce, scope1/2, totals, coverage)
    mix: pd.DataFrame  # carrier, tce, coverage
    ranking: pd.DataFrame  # enterprise, emissions_t_co2e, energy_tce, output_value_10k_cny, intensity, grade, rank
    ranking_period: str
    quota: pd.DataFrame  # enterprise, used_share, remaining_t, status, warning
    live: pd.DataFrame  # ts, kw (park electricity, the latest complete quarter hours)


def compute_carbon(ctx, user: User) -> CarbonOverview:
    from carbon.intensity import grade_enterprises, intensities

    now = ctx.now()
    to_now = now.floor("15min")
    month = pd.Timestamp(now.year, now.month, 1, tz=ctx.park.tz)
    acc = ctx.access.accounts(user, month, to_now, "month")
    park = acc.totals_at("park")
    month_row = park.iloc[0] if len(park) else pd.Series(dtype=object)
    lines = acc.lines
    if len(lines):
        grouped = lines.groupby("carrier")
        mix = grouped[["measured", "expected"]].sum()
        mix["tce"] = grouped["tce"].sum(min_count=1)
        mix = mix.reset_index()
    else:
        mix = pd.DataFrame(columns=["carrier", "tce", "measured", "expected"])
    mix["coverage"] = mix["measured"] / mix["expected"].where(mix["expected"] > 0)
    last_start = month - pd.DateOffset(months=1)
    last = ctx.access.accounts(user, last_start, month, "month")
    outputs = ctx.access.output_values(user, last_start, month)
    industries = {e.id: e.industry for e in ctx.park.enterprises}
    ranked = grade_enterprises(intensities(last, outputs, "location", industries)) if len(
        last.totals_at("enterprise")) else pd.DataFrame()
    quota = ctx.access.quota_positions(user, now.year, now, CARBON_PRICE_CNY_PER_T)
    live = ctx.access.aggregate(user, "energy", to_now - pd.Timedelta("2h"), to_now, "15min",
                                where={"carrier": "electricity"})
    live = live.assign(kw=live["value"] * 4.0)[["start", "kw", "coverage"]]
    return CarbonOverview(month_row, mix[["carrier", "tce", "coverage"]], ranked, f"{last_start:%Y-%m}", quota, live)


def _live_tile(live: pd.DataFrame, lang: str) -> html.Div:
    done = live[live["coverage"] > 0]
    if done.empty:
        return kpi(t("kpi.live_power", lang), "—", "kW", t("no_data", lang))
    row = done.iloc[-1]
    return kpi(t("kpi.live_power", lang), fmt(row["kw"], 0), "kW",
                f"{row['start']:%H:%M}–{row['start'] + pd.Timedelta('15min'):%H:%M} · {t('kpi.coverage', lang)} "
                f"{pct(row['coverage'])}")


def ranking_table(co: CarbonOverview, park: Park, quota: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Enterprises ranked by emissions (last complete month), with intensity, grade and this year's quota use."""
    names = {e.id: (e.name if lang == "zh-CN" else e.name_en or e.name) for e in park.enterprises}
    if co.ranking.empty:
        return pd.DataFrame(columns=[t(k, lang) for k in RANK_COLUMNS])
    r = co.ranking.sort_values("emissions_t_co2e", ascending=False)
    q = quota.set_index("enterprise") if len(quota) else pd.DataFrame()
    used = r["enterprise"].map(q["used_share"]) if "used_share" in q else pd.Series(float("nan"), index=r.index)
    status = r["enterprise"].map(q["status"]) if "status" in q else pd.Series("", index=r.index)
    grade = r["grade_zh"] if lang == "zh-CN" else r["grade_en"]
    return pd.DataFrame({
        t("col.enterprise", lang): r["enterprise"].map(names),
        t("col.emissions_t", lang): r["emissions_t_co2e"].round(2),
        t("col.energy_tce", lang): r["energy_tce"].round(2),
        t("col.output_value", lang): r["output_value_10k_cny"].round(2),
        t("col.intensity", lang): r["t_co2e_per_10k_cny"].round(4),
        t("col.grade", lang): grade,
        t("col.rank", lang): r["rank"],
        t("col.coverage", lang): r["coverage"].round(4),
        t("col.quota_used", lang): used.round(4),
        t("col.quota_status", lang): status.map(lambda v: t(f"quota.{v}", lang) if isinstance(v, str) and v else ""),
    })


RANK_COLUMNS = ["col.enterprise", "col.emissions_t", "col.energy_tce", "col.output_value", "col.intensity",
                "col.grade", "col.rank", "col.coverage", "col.quota_used", "col.quota_status"]


def render_carbon(co: CarbonOverview, park: Park, lang: str) -> list:
    m = co.month
    cov = t("kpi.coverage", lang)
    note = f"{t('period.month_to_date', lang)} · {cov} {pct(m.get('coverage', float('nan')))}"
    alerts = int((co.quota["used_share"] >= 0.8).sum()) if len(co.quota) else 0
    cards = html.Div(className="kpis", id="carbon-kpis", children=[
        html.Div(id="live-power", children=_live_tile(co.live, lang)),
        kpi(t("kpi.energy_tce", lang), fmt(m.get("energy_tce", float("nan"))), "tce", note),
        kpi(t("kpi.emissions_location", lang), fmt(m.get("total_location_t_co2e", float("nan"))), "tCO2e", note),
        kpi(t("kpi.emissions_market", lang), fmt(m.get("total_market_t_co2e", float("nan"))), "tCO2e", note),
        kpi(t("kpi.quota_alerts", lang), str(alerts), t("unit.enterprises", lang),
             t("kpi.quota_alerts_note", lang)),
    ])
    mix = go.Figure(go.Bar(x=[t("carrier." + c, lang) for c in co.mix["carrier"]], y=co.mix["tce"],
                           customdata=co.mix["coverage"] * 100,
                           hovertemplate="%{x}: %{y:,.2f} tce · " + cov + " %{customdata:.1f}%<extra></extra>"))
    mix.update_layout(title=t("chart.mix", lang), yaxis_title="tce", height=320,
                      margin={"l": 60, "r": 20, "t": 50, "b": 40})
    table = ranking_table(co, park, co.quota, lang)
    return [
        cards,
        dcc.Graph(figure=mix, id="energy-mix", config={"displaylogo": False}),
        html.H3(t("table.ranking", lang)),
        html.P(f"{t('period', lang)}: {co.ranking_period} ({park.timezone}); {t('ranking.note', lang)}",
               className="note"),
        downloads.buttons("ranking", lang),
        data_table("ranking-table", table, percent=[t("col.coverage", lang), t("col.quota_used", lang)]),
    ]


def figures(ctx, user: User) -> tuple[Overview, CarbonOverview]:
    """The overview's figures at the current quarter hour, shared briefly by users of the same scope."""
    now = ctx.now()

    def compute() -> tuple[Overview, CarbonOverview]:
        def read(*args, **kw):
            return ctx.access.aggregate(user, *args, **kw)

        return compute_overview(ctx.store, ctx.park, now, read), compute_carbon(ctx, user)

    return ctx.access.memo(user, f"overview@{now.floor('15min').isoformat()}", compute)


def layout(ctx, user: User, lang: str) -> html.Div:
    ov, co = figures(ctx, user)
    return html.Div([dcc.Interval(id="overview-tick", interval=60_000), *render_carbon(co, ctx.park, lang),
                     *render_overview(ov, ctx.park, lang)])


def register(app, ctx) -> None:
    def table(user: User, lang: str) -> pd.DataFrame:
        return enterprise_table(figures(ctx, user)[0], ctx.park, lang)

    downloads.register(app, ctx, "overview", "enterprises-month", table)
    def ranking(user: User, lang: str) -> pd.DataFrame:
        co = figures(ctx, user)[1]
        return ranking_table(co, ctx.park, co.quota, lang)

    downloads.register(app, ctx, "ranking", "ranking", ranking)

    @app.callback(Output("live-power", "children"), Input("overview-tick", "n_intervals"), State("lang", "data"),
                  prevent_initial_call=True)
    def live(_: int, lang: str):
        now = ctx.now().floor("15min")
        frame = ctx.access.aggregate(current_user, "energy", now - pd.Timedelta("2h"), now, "15min",
                                     where={"carrier": "electricity"})
        return _live_tile(frame.assign(kw=frame["value"] * 4.0), lang or "zh-CN")
