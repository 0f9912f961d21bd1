"""Big-screen mode (驾驶舱) for the park's control-room display (admin, regulator): 1920 x 1080, dark, refreshing
itself every minute, nothing to click.  Live load today, today's energy and emissions, this month's emissions and
top emitters, quota warnings in colour, data completeness and the time it was last updated; every figure with its
unit, and a gap shown as "—", never as zero.  Figures: portal.overview_figures.compute_cockpit, through the
scope."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, dcc, html

from portal import theme
from portal.auth import Role
from portal.components import fmt, graph, pct
from portal.i18n import register as register_text
from portal.i18n import t
from portal.overview_figures import Cockpit

PATH = "/cockpit"
TITLE_KEY = "nav.cockpit"
ROLES = {Role.ADMIN, Role.REGULATOR}
REFRESH_MS = 60_000
WIDTH, HEIGHT = 1920, 1080

TEXT = {
    "nav.cockpit": {"zh-CN": "驾驶舱", "en": "Control-room screen"},
    "cockpit.title": {"zh-CN": "园区能源与碳排放驾驶舱", "en": "Park energy and carbon: control room"},
    "cockpit.live": {"zh-CN": "实时负荷", "en": "Live load"},
    "cockpit.energy_today": {"zh-CN": "今日用电量", "en": "Electricity today"},
    "cockpit.tce_today": {"zh-CN": "今日综合能耗", "en": "Energy today"},
    "cockpit.emissions_today": {"zh-CN": "今日碳排放", "en": "Emissions today"},
    "cockpit.emissions_month": {"zh-CN": "本月碳排放", "en": "Emissions this month"},
    "cockpit.coverage": {"zh-CN": "今日数据完整率", "en": "Data completeness today"},
    "cockpit.load_chart": {"zh-CN": "今日电力负荷 (kW，15 分钟平均)", "en": "Load today (kW, 15-minute averages)"},
    "cockpit.top": {"zh-CN": "本月碳排放前列企业 (tCO2e，基于位置)",
                    "en": "Top emitters this month (tCO2e, location-based)"},
    "cockpit.quota": {"zh-CN": "配额预警", "en": "Quota warnings"},
    "cockpit.quota.none": {"zh-CN": "暂无企业配额使用率达到 80%", "en": "No enterprise has used 80% of its allowances"},
    "cockpit.quota.used": {"zh-CN": "已用 {share}", "en": "{share} used"},
    "cockpit.updated": {"zh-CN": "数据截至 {to} · 更新于 {time}", "en": "data to {to} · updated {time}"},
    "cockpit.location": {"zh-CN": "基于位置", "en": "location-based"},
    "cockpit.incomplete": {"zh-CN": "部分数据不完整", "en": "some figures incomplete"},
    "cockpit.no_load": {"zh-CN": "今日尚无完整的计量区间", "en": "No complete metering interval today yet"},
}
register_text(TEXT)

INK, MUTED = theme.DARK_INK, "#9fb5aa"
PANEL = {"background": theme.DARK_PANEL, "borderRadius": "10px", "padding": "14px 18px", "overflow": "hidden"}


def _tile(tile_id: str, title: str, value: str, unit: str, note: str, colour: str = INK) -> html.Div:
    return html.Div(id=tile_id, className="cockpit-tile", style=PANEL, children=[
        html.Div(title, style={"fontSize": "22px", "color": MUTED}),
        html.Div([html.Span(value, className="cockpit-value",
                            style={"fontSize": "48px", "fontWeight": 700, "color": colour}),
                  html.Span(" " + unit, style={"fontSize": "22px", "color": MUTED})]),
        html.Div(note, style={"fontSize": "18px", "color": MUTED}),
    ])


def _coverage_colour(c: float, threshold: float) -> str:
    if pd.isna(c):
        return theme.NEUTRAL
    return theme.GOOD if c >= threshold else theme.WARN if c >= threshold / 2 else theme.BAD


def _names(scope, lang: str) -> dict[str, str]:
    return scope.names(lang)


def render(c: Cockpit, scope, lang: str) -> list:
    park = scope.park
    threshold = getattr(park, "coverage_threshold", 0.9)
    latest = c.load.dropna(subset=["kw"]).tail(1)
    live_note = (f"{latest['start'].iloc[0]:%H:%M}–{latest['start'].iloc[0] + pd.Timedelta('15min'):%H:%M} · "
                 f"{t('kpi.coverage', lang)} {pct(latest['coverage'].iloc[0])}") if len(latest) else t("no_data", lang)
    elec = c.energy_today[c.energy_today["carrier"] == "electricity"]
    elec_kwh = float(elec["value"].iloc[0]) if len(elec) else float("nan")
    elec_cov = float(elec["coverage"].iloc[0]) if len(elec) else float("nan")
    today_note = f"00:00–{c.to:%H:%M}"
    tiles = [
        _tile("cockpit-live", t("cockpit.live", lang), fmt(latest["kw"].iloc[0] if len(latest) else None, 0), "kW",
              live_note),
        _tile("cockpit-energy", t("cockpit.energy_today", lang), fmt(elec_kwh, 0), "kWh",
              f"{today_note} · {t('kpi.coverage', lang)} {pct(elec_cov)}"),
        _tile("cockpit-tce", t("cockpit.tce_today", lang), fmt(c.today.get("energy_tce"), 2), "tce", today_note),
        _tile("cockpit-emissions", t("cockpit.emissions_today", lang), fmt(c.today.get("total_location_t_co2e"), 2),
              "tCO2e", f"{today_note} · {t('cockpit.location', lang)}"),
        _tile("cockpit-month", t("cockpit.emissions_month", lang), fmt(c.month.get("total_location_t_co2e"), 1),
              "tCO2e", f"{c.to:%Y-%m-01}–{c.to:%m-%d %H:%M}"),
        _tile("cockpit-coverage", t("cockpit.coverage", lang), pct(c.coverage_today), "",
              "" if c.complete else t("cockpit.incomplete", lang), _coverage_colour(c.coverage_today, threshold)),
    ]
    load = go.Figure()
    if len(c.load):
        load.add_scatter(x=c.load["start"].dt.tz_localize(None), y=c.load["kw"], mode="lines", fill="tozeroy",
                         line={"shape": "hv", "width": 3, "color": theme.PALETTE[5]},
                         hovertemplate="%{x|%H:%M}: %{y:,.0f} kW<extra></extra>")
    day = c.to.floor("D").tz_localize(None)
    load.update_layout(xaxis={"range": [day, day + pd.Timedelta("1D")]}, yaxis_title="kW",
                       margin={"l": 80, "r": 30, "t": 60, "b": 50}, showlegend=False)
    names = _names(scope, lang)
    top = c.top.iloc[::-1]  # largest at the top of a horizontal bar chart
    top_fig = go.Figure(go.Bar(x=top["total_location_t_co2e"], y=[names.get(e, e) for e in top["enterprise"]],
                               orientation="h", marker={"color": theme.PALETTE[1]},
                               text=[fmt(v, 1) for v in top["total_location_t_co2e"]], textposition="auto",
                               hovertemplate="%{y}: %{x:,.1f} tCO2e<extra></extra>"))
    top_fig.update_layout(xaxis_title="tCO2e", margin={"l": 220, "r": 30, "t": 60, "b": 50}, showlegend=False)
    quota_rows = [html.Div(className="cockpit-quota-row", style={
        "display": "flex", "justifyContent": "space-between", "fontSize": "24px", "padding": "8px 0",
        "borderBottom": f"1px solid {theme.DARK_GRID}"}, children=[
            html.Span(names.get(r.enterprise, r.enterprise)),
            html.Span(t("cockpit.quota.used", lang).format(share=pct(r.used_share)),
                      style={"color": theme.BAD if r.used_share >= 1 else theme.WARN, "fontWeight": 700})])
        for r in c.quota.head(8).itertuples()]
    if not quota_rows:
        quota_rows = [html.Div(t("cockpit.quota.none", lang), style={"fontSize": "22px", "color": MUTED})]
    updated = t("cockpit.updated", lang).format(to=f"{c.to:%Y-%m-%d %H:%M}", time=f"{c.now:%H:%M:%S}")
    return [
        html.Div(style={"display": "flex", "justifyContent": "space-between", "alignItems": "baseline"}, children=[
            html.Div([html.Span(t("cockpit.title", lang), style={"fontSize": "40px", "fontWeight": 700}),
                      html.Span("  " + (park.name if lang == "zh-CN" else park.name_en or park.name),
                                style={"fontSize": "26px", "color": MUTED})]),
            html.Div(updated, id="cockpit-updated", style={"fontSize": "22px", "color": MUTED}),
        ]),
        html.Div(tiles, style={"display": "grid", "gridTemplateColumns": "repeat(6, 1fr)", "gap": "16px"}),
        html.Div(style={"display": "grid", "gridTemplateColumns": "2fr 1fr", "gap": "16px"}, children=[
            html.Div(graph(load, "cockpit-load", lang, title=t("cockpit.load_chart", lang), height=380, dark=True,
                           config={"staticPlot": True}), style=PANEL),
            html.Div(id="cockpit-quota", style=PANEL, children=[
                html.Div(t("cockpit.quota", lang), style={"fontSize": "24px", "color": MUTED}), *quota_rows]),
        ]),
        html.Div(graph(top_fig, "cockpit-top", lang, title=t("cockpit.top", lang), height=310, dark=True,
                       config={"staticPlot": True}), style=PANEL),
    ]


def layout(scope, lang: str) -> html.Div:
    c = scope.cockpit()
    # Fixed over the whole window (the portal's header and navigation included): a screen nobody clicks.
    return html.Div(id="cockpit", style={
        "position": "fixed", "inset": 0, "zIndex": 1000, "background": theme.DARK_BG, "color": INK,
        "fontFamily": theme.FONT, "padding": "20px 28px", "overflow": "hidden", "display": "flex",
        "flexDirection": "column", "gap": "16px"}, children=[
        dcc.Interval(id="cockpit-tick", interval=REFRESH_MS),
        html.Div(id="cockpit-body", style={"display": "flex", "flexDirection": "column", "gap": "16px"},
                 children=render(c, scope, lang)),
    ])


def register(callbacks) -> None:
    @callbacks.callback(Output("cockpit-body", "children"), Input("cockpit-tick", "n_intervals"),
                        prevent_initial_call=True, action="refresh")
    def refresh(scope, lang: str, _tick: int | None):
        return render(scope.cockpit(), scope, lang)
