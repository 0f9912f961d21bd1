"""Park overview (admin, regulator): live load; the period's (this month by default, else the one chosen with the
date-range picker) comprehensive energy, emissions (location- and market-based) beside the previous period, the
same days last year and the year to date; energy mix; daily electricity; enterprise ranking by emissions and by
intensity with grades and quota status; energy by carrier with units, periods and data coverage everywhere."""

from __future__ import annotations

from urllib.parse import quote

import dash_mantine_components as dmc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html, no_update

from park.model import Park
from portal import downloads, forecast_figures, theme
from portal.auth import Role
from portal.components import (
    PeriodError,
    completeness_badge,
    coverage_text,
    data_table,
    fmt,
    graph,
    kpi,
    pct,
    period_picker,
    picked_period,
)
from portal.i18n import register as register_text
from portal.i18n import t
from portal.overview_figures import COMPARED, NO_QUOTA, CarbonOverview, Comparison, Overview, period_key

PATH = "/"
TITLE_KEY = "nav.overview"
ROLES = {Role.ADMIN, Role.REGULATOR}

TEXT = {
    "ov.live.gap": {"zh-CN": "{interval} 无读数", "en": "no readings {interval}"},
    "ov.live.partial": {"zh-CN": "仅部分表计上报", "en": "only some meters reported"},
    "ov.partial": {"zh-CN": "进行中（截至 {time}）", "en": "partial (to {time})"},
    "ov.kpi.energy": {"zh-CN": "所选期间能耗", "en": "Energy, chosen period"},
    "ov.kpi.energy_tce": {"zh-CN": "所选期间综合能耗", "en": "Comprehensive energy, chosen period"},
    "ov.kpi.emissions_location": {"zh-CN": "所选期间碳排放（基于位置）",
                                  "en": "Emissions, chosen period (location-based)"},
    "ov.kpi.emissions_market": {"zh-CN": "所选期间碳排放（基于市场）", "en": "Emissions, chosen period (market-based)"},
    "ov.chart.mix": {"zh-CN": "所选期间能源结构（吨标准煤）", "en": "Energy mix, chosen period (tce)"},
    "ov.chart.daily": {"zh-CN": "所选期间电力消耗（按日）", "en": "Electricity, chosen period (daily)"},
    "ov.table.enterprises": {"zh-CN": "企业所选期间能耗与数据完整率",
                             "en": "Enterprises: energy and coverage in the chosen period"},
    "ov.compare.title": {"zh-CN": "本期、上期、去年同期与本年累计", "en": "This period, previous period, last year "
                                                                      "and year to date"},
    "ov.compare.note": {"zh-CN": "同口径对比：上期 {previous}，去年同期 {last_year}；本年累计 {ytd}，对比去年同期 "
                                 "{ytd_last_year}（园区时间）",
                        "en": "like with like: previous period {previous}, the same days last year {last_year}; "
                              "year to date {ytd} against {ytd_last_year} (park time)"},
    "ov.compare.low_base": {"zh-CN": "{bases}的数据完整率低于园区阈值 {threshold}，不显示其变化率",
                            "en": "The data coverage of {bases} is below the park's threshold {threshold}: its change "
                                  "is not shown"},
    "ov.compare.previous": {"zh-CN": "上期", "en": "Previous period"},
    "ov.compare.last_year": {"zh-CN": "去年同期", "en": "Same days last year"},
    "ov.compare.ytd": {"zh-CN": "本年累计", "en": "Year to date"},
    "ov.compare.ytd_last_year": {"zh-CN": "去年同期累计", "en": "Year to date, last year"},
    "ov.compare.this_period": {"zh-CN": "本期", "en": "This period"},
    "ov.compare.change_previous": {"zh-CN": "较上期", "en": "vs previous"},
    "ov.compare.change": {"zh-CN": "较去年同期", "en": "vs last year"},
    "ov.compare.change_ytd": {"zh-CN": "累计较去年", "en": "YTD vs last year"},
    "ov.compare.metric": {"zh-CN": "指标", "en": "Figure"},
    "ov.metric.energy_tce": {"zh-CN": "综合能耗", "en": "Comprehensive energy"},
    "ov.metric.total_location_t_co2e": {"zh-CN": "碳排放（基于位置）", "en": "Emissions (location-based)"},
    "ov.metric.total_market_t_co2e": {"zh-CN": "碳排放（基于市场）", "en": "Emissions (market-based)"},
    "ov.metric.coverage": {"zh-CN": "数据完整率", "en": "Data coverage"},
    "ov.ranking.month": {"zh-CN": "期间结束前最后一个完整月", "en": "the last complete month up to the period's end"},
}
register_text(TEXT)


def render_overview(ov: Overview, park: Park, lang: str, picked: bool = False) -> list:
    cov = t("kpi.coverage", lang)
    cards = []
    for label, frame in ((t("kpi.energy_today", lang), ov.today),
                         (t("ov.kpi.energy" if picked else "kpi.energy_month", lang), ov.month)):
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
    fig.update_layout(title=t("ov.chart.daily" if picked else "chart.daily_energy", lang),
                      yaxis_title=t("chart.unit_kwh", lang),
                      yaxis2={"overlaying": "y", "side": "right", "range": [0, 105], "title": f"{cov} (%)"},
                      margin={"l": 60, "r": 60, "t": 50, "b": 40}, legend={"orientation": "h"}, height=380)
    table = enterprise_table(ov, park, lang)
    start, end = ov.period_month
    period = f"{t('period', lang)}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({park.timezone}); "
    return [
        html.Div(cards, className="kpis", id="kpis"),
        graph(fig, "daily-energy", lang),
        html.H3(t("ov.table.enterprises" if picked else "table.enterprises", lang)),
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


def render_carbon(co: CarbonOverview, park: Park, lang: str, now: pd.Timestamp | None = None,
                  picked: bool = False) -> list:
    m = co.month
    threshold = getattr(park, "coverage_threshold", 0.9)
    cov = t("kpi.coverage", lang)
    when = t("period.picked" if picked else "period.month_to_date", lang)
    note = f"{when} · {cov} {pct(m.get('coverage', float('nan')))}"
    alerts = int((co.quota["used_share"] >= 0.8).sum()) if len(co.quota) else 0  # NaN for enterprises without quota
    label = (lambda k: t("ov." + k, lang)) if picked else (lambda k: t(k, lang))
    cards = html.Div(className="kpis", id="carbon-kpis", children=[
        html.Div(id="live-power", children=_live_tile(co.live, lang, now, threshold)),
        kpi(label("kpi.energy_tce"), fmt(m.get("energy_tce", float("nan"))), "tce", note, "kpi-energy-tce"),
        kpi(label("kpi.emissions_location"), fmt(m.get("total_location_t_co2e", float("nan"))), "tCO2e", note,
            "kpi-location"),
        kpi(label("kpi.emissions_market"), fmt(m.get("total_market_t_co2e", float("nan"))), "tCO2e", note,
            "kpi-market"),
        kpi(t("kpi.quota_alerts", lang), str(alerts), t("unit.enterprises", lang),
             t("kpi.quota_alerts_note", lang)),
    ])
    mix = go.Figure(go.Bar(x=[t("carrier." + c, lang) for c in co.mix["carrier"]], y=co.mix["tce"],
                           customdata=co.mix["coverage"] * 100,
                           hovertemplate="%{x}: %{y:,.2f} tce · " + cov + " %{customdata:.1f}%<extra></extra>"))
    mix.update_layout(title=t("ov.chart.mix" if picked else "chart.mix", lang), yaxis_title="tce", height=320,
                      margin={"l": 60, "r": 20, "t": 50, "b": 40})
    table = ranking_table(co, park, co.quota, lang)
    start, end = co.period if co.period else (None, None)
    return [
        html.Div([coverage_text(start, end, m.get("coverage", float("nan")), park.timezone, lang) if start else "",
                  completeness_badge(co.accounts, lang, "carbon-complete")], className="note", id="ov-coverage"),
        cards,
        graph(mix, "energy-mix", lang),
        html.H3([t("table.ranking", lang), completeness_badge(co.ranking_accounts, lang, "ranking-complete")]),
        html.P(f"{t('period', lang)}: {co.ranking_period} ({park.timezone}"
               + (f", {t('ov.ranking.month', lang)}" if picked else "") + f"); {t('ranking.note', lang)}",
               className="note"),
        downloads.buttons("ranking", lang, table),
        data_table("ranking-table", table, percent=[t("col.coverage", lang), t("col.quota_used", lang)],
                   links={t("col.enterprise", lang): ranking_links(co)},
                   colours={t("col.quota_status", lang): quota_colours(lang)}),
    ]


UNITS = {"energy_tce": "tce", "total_location_t_co2e": "tCO2e", "total_market_t_co2e": "tCO2e", "coverage": "%"}


def comparison_table(co: Comparison, lang: str) -> pd.DataFrame:
    """The period beside the previous period, the same days last year and the year to date (with last year's),
    each change guarded by carbon.compare (NaN: hidden, its base covered below the park's threshold)."""
    c, y = co.comparison.set_index("metric"), co.ytd.set_index("metric")
    rows = [*COMPARED, "coverage"]
    scale = [100.0 if m == "coverage" else 1.0 for m in rows]  # coverage shown in %

    def col(frame: pd.DataFrame, name: str, digits: int = 2) -> list[float]:
        return [round(float(frame.loc[m, name]) * k, digits) for m, k in zip(rows, scale, strict=True)]

    def change(frame: pd.DataFrame, name: str) -> list[float]:
        return [float(frame.loc[m, name]) if m != "coverage" else float("nan") for m in rows]

    return pd.DataFrame({
        t("ov.compare.metric", lang): [t(f"ov.metric.{m}", lang) for m in rows],
        t("col.unit", lang): [UNITS[m] for m in rows],
        t("ov.compare.this_period", lang): col(c, "this_period"),
        t("ov.compare.previous", lang): col(c, "previous"),
        t("ov.compare.change_previous", lang): change(c, "change_previous"),
        t("ov.compare.last_year", lang): col(c, "last_year"),
        t("ov.compare.change", lang): change(c, "change"),
        t("ov.compare.ytd", lang): col(y, "this_period"),
        t("ov.compare.ytd_last_year", lang): col(y, "last_year"),
        t("ov.compare.change_ytd", lang): change(y, "change"),
    })


def _span(span: tuple[pd.Timestamp, pd.Timestamp]) -> str:
    a, b = span
    return f"{a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M}"


def render_comparison(co: Comparison, park: Park, lang: str) -> list:
    table = comparison_table(co, lang)
    threshold = getattr(park, "coverage_threshold", 0.9)
    low = [t(f"ov.compare.{k}", lang) for k in ("previous", "last_year", "ytd_last_year")
           if (co.flags or {}).get("ytd" if k == "ytd_last_year" else k)]
    changes = [t(f"ov.compare.{k}", lang) for k in ("change_previous", "change", "change_ytd")]
    return [
        html.H3(t("ov.compare.title", lang)),
        html.P(t("ov.compare.note", lang).format(**{k: _span(v) for k, v in co.bases.items()}), className="note"),
        *([dmc.Alert(t("ov.compare.low_base", lang).format(bases="、".join(low) if lang == "zh-CN" else ", ".join(low),
                                                           threshold=pct(threshold)),
                     color="yellow", id="ov-compare-low-base")] if low else []),
        downloads.buttons("ov-compare", lang, table),
        data_table("ov-compare-table", table, percent=changes, lang=lang),
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
    """The page, rendered once per scope, language, period and quarter hour of figures and shared for the
    figures' cache time (60 s): a warm load sends the components already built (figures, tables, badges) instead
    of rebuilding them from the cached figures.  The live tile's "updated" time is the render's, as old as the
    figures.  The page opens on this month; a period chosen with the picker re-renders the body (`body`)."""
    now = scope.now().tz_convert(scope.park.tz)
    return scope.memo(f"overview-page:{lang}@{now.floor('15min').isoformat()}:{period_key(None)}",
                      lambda: html.Div([dcc.Interval(id="overview-tick", interval=60_000),
                                        dmc.Group([period_picker("ov-range", now, scope.park.tz, lang)],
                                                  align="flex-end"),
                                        html.Div(id="ov-period-message"),
                                        *_slots(_render(scope, lang, now, None))]))


def _slots(rendered: tuple[list, list]) -> list:
    """The page's body around the comparison, which its own callback fills (`compared`): the accountings of the
    bases cost as much as the rest of the page, so the figures do not wait for them."""
    top, rest = rendered
    return [html.Div(id="ov-top", children=top), dcc.Loading(html.Div(id="ov-compare"), delay_show=300),
            html.Div(id="ov-rest", children=rest)]


def chosen(scope, picked) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """The period of the picker's value (portal.components.picked_period; PeriodError when it is not one); None
    for this month to now, also when the picker holds exactly that (the page's default, compared as a month)."""
    now = scope.now().tz_convert(scope.park.tz)
    period = picked_period(picked, now, scope.park.tz)
    month = pd.Timestamp(now.year, now.month, 1, tz=scope.park.tz)
    return None if period == (month, now.floor("15min")) else period


def _render(scope, lang: str, now: pd.Timestamp, period) -> tuple[list, list]:
    ov, co = scope.overview(period)
    picked = period is not None
    # enterprises heading for a deficit at the nightly forecasts (read from their cache)
    deficits = forecast_figures.deficits(scope.forecasts("quota_t_co2e", with_result=False), now.year,
                                         scope.park.tz)
    carbon = render_carbon(co, scope.park, lang, now, picked)
    # above the comparison: the period and coverage line and the KPI cards; below it, the rest
    return carbon[:2], [*carbon[2:], *forecast_figures.render_deficits(deficits, scope.names(lang), lang),
                        *render_overview(ov, scope.park, lang, picked)]


def register(callbacks) -> None:
    @callbacks.callback(Output("ov-top", "children"), Output("ov-rest", "children"),
                        Output("ov-period-message", "children"), Input("ov-range", "value"),
                        prevent_initial_call=True, action="period")
    def body(scope, lang: str, picked):
        """The page for the chosen period (rendered once per scope, language, period and quarter hour); a range
        that is not one keeps the figures shown and says why, in the page's language."""
        try:
            period = chosen(scope, picked)
        except PeriodError as exc:
            return no_update, no_update, dmc.Alert(exc.message(lang), color="red", id="ov-period-error")
        now = scope.now().tz_convert(scope.park.tz)
        top, rest = scope.memo(f"overview-body:{lang}@{now.floor('15min').isoformat()}:{period_key(period)}",
                               lambda: _render(scope, lang, now, period))
        return top, rest, []

    @callbacks.callback(Output("ov-compare", "children"), Input("ov-range", "value"), action="comparison")
    def compared_section(scope, lang: str, picked):
        """The period beside the previous period, the same days last year and the year to date (on load too)."""
        try:
            period = chosen(scope, picked)
        except PeriodError:
            return no_update  # the body's callback says why
        return render_comparison(scope.overview_comparison(period), scope.park, lang)

    def figures(scope, picked):
        try:
            period = chosen(scope, picked)
        except PeriodError:
            return None, None
        return period, scope.overview(period)

    def enterprises(scope, lang: str, picked=None) -> downloads.Export | None:
        period, figs = figures(scope, picked)
        if figs is None:
            return None
        ov = figs[0]
        return downloads.Export(enterprise_table(ov, scope.park, lang),
                                title=t("ov.table.enterprises", lang) if period else None,
                                **downloads.period(*ov.period_month, scope.park.timezone))

    callbacks.download("overview", "enterprises-month", enterprises, State("ov-range", "value"))

    def ranking(scope, lang: str, picked=None) -> downloads.Export | None:
        _, figs = figures(scope, picked)
        if figs is None:
            return None
        co = figs[1]
        return downloads.Export(ranking_table(co, scope.park, co.quota, lang),
                                period=f"{co.ranking_period} ({scope.park.timezone})",
                                period_tag=str(co.ranking_period).replace("-", ""))

    callbacks.download("ranking", "ranking", ranking, State("ov-range", "value"))

    def compared(scope, lang: str, picked=None) -> downloads.Export | None:
        try:
            co = scope.overview_comparison(chosen(scope, picked))
        except PeriodError:
            return None
        return downloads.Export(comparison_table(co, lang), title=t("ov.compare.title", lang),
                                coverage=None if pd.isna(co.coverage) else co.coverage,
                                **downloads.period(*co.period, scope.park.timezone))

    callbacks.download("ov-compare", "overview-comparison", compared, State("ov-range", "value"))

    @callbacks.callback(Output("live-power", "children"), Input("overview-tick", "n_intervals"),
                        prevent_initial_call=True, action="live load")
    def live(scope, lang: str, _tick: int | None):
        return _live_tile(scope.live_load(), lang, scope.now().tz_convert(scope.park.tz),
                          getattr(scope.park, "coverage_threshold", 0.9))
