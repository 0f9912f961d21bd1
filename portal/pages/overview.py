"""Park overview (admin, regulator): live load; this month's comprehensive energy, emissions (location- and
market-based) and intensity; energy mix; daily electricity; enterprise ranking by emissions and by intensity with
grades and quota status; energy by carrier with units, periods and data coverage everywhere."""

from __future__ import annotations

from urllib.parse import quote

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from park.model import Park
from portal import downloads, forecast_figures, theme
from portal.auth import Role
from portal.components import completeness_badge, data_table, fmt, graph, kpi, pct
from portal.i18n import register as register_text
from portal.i18n import t
from portal.overview_figures import NO_QUOTA, CarbonOverview, Overview

PATH = "/"
TITLE_KEY = "nav.overview"
ROLES = {Role.ADMIN, Role.REGULATOR}

TEXT = {
    "ov.live.gap": {"zh-CN": "{interval} 无读数", "en": "no readings {interval}"},
    "ov.live.partial": {"zh-CN": "仅部分表计上报", "en": "only some meters reported"},
    "ov.partial": {"zh-CN": "进行中（截至 {time}）", "en": "partial (to {time})"},
}
register_text(TEXT)


def render_overview(ov: Overview, park: Park, lang: str) -> list:
    cov = t("kpi.coverage", lang)
    cards = []
    for label, frame in ((t("kpi.energy_today", lang), ov.today), (t("kpi.energy_month", lang), ov.month)):
        for row in frame.sort_values("carrier").itertuples():
            cards.append(kpi(f"{label} · {t('carrier.' + row.carrier, lang)}", fmt(row.value), row.unit,
                              f"{cov} {pct(row.coverage)}"))
    fig = go.Figure()
    partial = ov.daily["partial"] if "partial" in ov.daily else pd.Series(False, index=ov.daily.index)
    note = t("ov.partial", lang).format(time=f"{ov.period_month[1]:%H:%M}")
    fig.add_bar(x=ov.daily["start"], y=ov.daily["value"], name=t("carrier.electricity", lang),
                customdata=[note if p else "" for p in partial],
                marker={"pattern": {"shape": ["/" if p else "" for p in partial]},
                        "opacity": [0.55 if p else 1.0 for p in partial]},
                hovertemplate="%{x|%Y-%m-%d}: %{y:,.0f} kWh %{customdata}<extra></extra>")
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
        graph(fig, "daily-energy", lang),
        html.H3(t("table.enterprises", lang)),
        html.P(period + t("coverage.note", lang), className="note"),
        downloads.buttons("overview", lang, table),
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


def _live_tile(live: pd.DataFrame, lang: str, now: pd.Timestamp | None = None, threshold: float = 0.9) -> html.Div:
    """The latest complete quarter hour's load, never an older one shown as current: a quarter hour without
    readings is "—" (a gap); one that only some meters reported says so.  With the time it was updated."""
    updated = t("updated", lang).format(time=f"{now:%H:%M:%S}") if now is not None else ""
    if live.empty:
        return kpi(t("kpi.live_power", lang), "—", "kW", " · ".join(x for x in (t("no_data", lang), updated) if x),
                   "live-power-tile")
    row = live.iloc[-1]
    interval = f"{row['start']:%H:%M}–{row['start'] + pd.Timedelta('15min'):%H:%M}"
    if not row["coverage"] > 0 or pd.isna(row["kw"]):
        return kpi(t("kpi.live_power", lang), "—", "kW",
                   " · ".join(x for x in (t("ov.live.gap", lang).format(interval=interval), updated) if x),
                   "live-power-tile")
    parts = [interval, f"{t('kpi.coverage', lang)} {pct(row['coverage'])}"]
    if row["coverage"] < threshold:
        parts.append(t("ov.live.partial", lang))
    return kpi(t("kpi.live_power", lang), fmt(row["kw"], 0), "kW", " · ".join(parts + ([updated] if updated else [])),
               "live-power-tile")


def ranking_table(co: CarbonOverview, park: Park, quota: pd.DataFrame, lang: str) -> pd.DataFrame:
    """Enterprises ranked by emissions (last complete month), with intensity, grade and this year's quota use."""
    names = {e.id: (e.name if lang == "zh-CN" else e.name_en or e.name) for e in park.enterprises}
    if co.ranking.empty:
        return pd.DataFrame(columns=[t(k, lang) for k in RANK_COLUMNS])
    r = co.ranking.sort_values("emissions_t_co2e", ascending=False)
    q = quota.set_index("enterprise") if len(quota) else pd.DataFrame()
    used = r["enterprise"].map(q["used_share"]) if "used_share" in q else pd.Series(float("nan"), index=r.index)
    # An enterprise without a row of positions has no plan and no allowances: no quota, not a deficit.
    status = (r["enterprise"].map(q["status"]) if "status" in q else pd.Series(NO_QUOTA, index=r.index)).fillna(
        NO_QUOTA)
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


def render_carbon(co: CarbonOverview, park: Park, lang: str, now: pd.Timestamp | None = None) -> list:
    m = co.month
    threshold = getattr(park, "coverage_threshold", 0.9)
    cov = t("kpi.coverage", lang)
    note = f"{t('period.month_to_date', lang)} · {cov} {pct(m.get('coverage', float('nan')))}"
    alerts = int((co.quota["used_share"] >= 0.8).sum()) if len(co.quota) else 0  # NaN for enterprises without quota
    cards = html.Div(className="kpis", id="carbon-kpis", children=[
        html.Div(id="live-power", children=_live_tile(co.live, lang, now, threshold)),
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
        html.Div(completeness_badge(co.accounts, lang, "carbon-complete"), className="note"),
        cards,
        graph(mix, "energy-mix", lang),
        html.H3([t("table.ranking", lang), completeness_badge(co.ranking_accounts, lang, "ranking-complete")]),
        html.P(f"{t('period', lang)}: {co.ranking_period} ({park.timezone}); {t('ranking.note', lang)}",
               className="note"),
        downloads.buttons("ranking", lang, table),
        data_table("ranking-table", table, percent=[t("col.coverage", lang), t("col.quota_used", lang)],
                   links={t("col.enterprise", lang): ranking_links(co)},
                   colours={t("col.quota_status", lang): quota_colours(lang)}),
    ]


def ranking_links(co: CarbonOverview) -> list[str]:
    """Each ranked enterprise's page, in the ranking table's order (drill down: click an enterprise)."""
    if co.ranking.empty:
        return []
    r = co.ranking.sort_values("emissions_t_co2e", ascending=False)
    return [f"/enterprise?e={quote(str(e))}" for e in r["enterprise"]]


def quota_colours(lang: str) -> dict[str, str]:
    """Quota status in colour: a deficit red, a surplus green, no quota grey."""
    return {t("quota.deficit", lang): theme.BAD, t("quota.surplus", lang): theme.GOOD,
            t("quota.none", lang): theme.NEUTRAL, t("quota.unknown", lang): theme.NEUTRAL}


def layout(scope, lang: str) -> html.Div:
    """The page, rendered once per scope, language and quarter hour of figures and shared for the figures' cache
    time (60 s): a warm load sends the components already built (figures, tables, badges) instead of rebuilding
    them from the cached figures.  The live tile's "updated" time is the render's, as old as the figures."""
    now = scope.now().tz_convert(scope.park.tz)
    return scope.memo(f"overview-page:{lang}@{now.floor('15min').isoformat()}", lambda: _render(scope, lang, now))


def _render(scope, lang: str, now: pd.Timestamp) -> html.Div:
    ov, co = scope.overview()
    # enterprises heading for a deficit at the nightly forecasts (read from their cache)
    deficits = forecast_figures.deficits(scope.forecasts("quota_t_co2e", with_result=False), now.year,
                                         scope.park.tz)
    return html.Div([dcc.Interval(id="overview-tick", interval=60_000), *render_carbon(co, scope.park, lang, now),
                     *forecast_figures.render_deficits(deficits, scope.names(lang), lang),
                     *render_overview(ov, scope.park, lang)])


def register(callbacks) -> None:
    def enterprises(scope, lang: str) -> downloads.Export:
        ov = scope.overview()[0]
        return downloads.Export(enterprise_table(ov, scope.park, lang),
                                **downloads.period(*ov.period_month, scope.park.timezone))

    callbacks.download("overview", "enterprises-month", enterprises)

    def ranking(scope, lang: str) -> downloads.Export:
        co = scope.overview()[1]
        return downloads.Export(ranking_table(co, scope.park, co.quota, lang),
                                period=f"{co.ranking_period} ({scope.park.timezone})",
                                period_tag=str(co.ranking_period).replace("-", ""))

    callbacks.download("ranking", "ranking", ranking)

    @callbacks.callback(Output("live-power", "children"), Input("overview-tick", "n_intervals"),
                        prevent_initial_call=True, action="live load")
    def live(scope, lang: str, _tick: int | None):
        return _live_tile(scope.live_load(), lang, scope.now().tz_convert(scope.park.tz),
                          getattr(scope.park, "coverage_threshold", 0.9))
