"""Enterprise energy and carbon (admin: any enterprise, chosen in a selector; enterprise user: its own only).

Energy and emissions by scope (Scope 2 location- and market-based side by side), by carrier and by workshop for
this month, this year or the last 12 months; real-time power of today; the year's quota burn-down with the
position at the carbon price; intensities against the same months last year; energy and carbon cost.  Every
figure with its unit, period and data coverage, and a badge when the carbon accounts are incomplete; tables
downloadable.  The enterprise a request names is checked on the server (portal.scope.Scope.enterprise): an
enterprise user asking for another one gets a refusal, recorded in the audit log, and nothing of it.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, quote

import dash_mantine_components as dmc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html

from carbon.costs import CARBON_PRICE_CNY_PER_T
from carbon.summary import PERIODS, SCOPE_COLUMNS
from park.model import Park
from portal import downloads, forecast_figures
from portal.auth import Role
from portal.components import completeness, completeness_badge, data_table, fmt, graph, kpi, pct
from portal.enterprise_scope import EnterpriseFigures, QuotaView
from portal.i18n import register as register_text
from portal.i18n import t

PATH = "/enterprise"
RANGE = "range"  # the period selector's fourth choice: the date range picked beside it
TITLE_KEY = "nav.enterprise"
ROLES = {Role.ADMIN, Role.ENTERPRISE}

TEXT = {
    "nav.enterprise": {"zh-CN": "企业能耗与碳排放", "en": "Enterprise energy and carbon"},
    "ent.select": {"zh-CN": "选择企业", "en": "Enterprise"},
    "ent.period.month": {"zh-CN": "本月", "en": "This month"},
    "ent.period.year": {"zh-CN": "本年", "en": "This year"},
    "ent.period.12m": {"zh-CN": "近 12 个月", "en": "Last 12 months"},
    "ent.period.range": {"zh-CN": "自选日期", "en": "Picked dates"},
    "ent.range": {"zh-CN": "日期范围（选“自选日期”时）", "en": "Date range (with “Picked dates”)"},
    "ent.refused": {"zh-CN": "无权查看该企业的数据", "en": "You may not see this enterprise's data"},
    "ent.none": {"zh-CN": "没有可查看的企业", "en": "No enterprise to show"},
    "ent.no_data": {"zh-CN": "本统计期无该企业的计量或录入能耗数据：数值缺失，并非为零",
                    "en": "No metered or recorded energy of this enterprise in this period: the figures are missing, "
                          "not zero"},
    "ent.empty_period": {"zh-CN": "本统计期尚无完整的计量区间",
                         "en": "No complete metering interval in this period yet"},
    "ent.kpi.energy_tce": {"zh-CN": "综合能耗", "en": "Energy consumption"},
    "ent.kpi.scope1_t_co2e": {"zh-CN": "直接排放（范围一）", "en": "Direct emissions (Scope 1)"},
    "ent.kpi.scope2_location_t_co2e": {"zh-CN": "间接排放（范围二，基于位置）",
                                       "en": "Indirect emissions (Scope 2, location-based)"},
    "ent.kpi.scope2_market_t_co2e": {"zh-CN": "间接排放（范围二，基于市场）",
                                     "en": "Indirect emissions (Scope 2, market-based)"},
    "ent.kpi.total_location_t_co2e": {"zh-CN": "碳排放合计（基于位置）", "en": "Total emissions (location-based)"},
    "ent.kpi.total_market_t_co2e": {"zh-CN": "碳排放合计（基于市场）", "en": "Total emissions (market-based)"},
    "ent.scope1": {"zh-CN": "范围一", "en": "Scope 1"},
    "ent.scope2": {"zh-CN": "范围二", "en": "Scope 2"},
    "ent.method.location": {"zh-CN": "基于位置", "en": "Location-based"},
    "ent.method.market": {"zh-CN": "基于市场", "en": "Market-based"},
    "ent.chart.scopes": {"zh-CN": "按范围的碳排放 (tCO2e)", "en": "Emissions by scope (tCO2e)"},
    "ent.scopes.note": {"zh-CN": "基于市场的范围二扣除绿证/绿电覆盖的电量，其余按剩余排放因子计",
                        "en": "market-based Scope 2: electricity covered by green certificates or PPAs at zero, the "
                              "rest at the residual factor"},
    "ent.power.title": {"zh-CN": "实时功率（今日，15 分钟平均）", "en": "Real-time power (today, 15-minute averages)"},
    "ent.power.latest": {"zh-CN": "最新功率", "en": "Latest power"},
    "ent.power.note": {"zh-CN": "功率 = 每 15 分钟计量电量 ÷ 0.25 小时；每分钟刷新",
                       "en": "power = metered energy per 15 minutes ÷ 0.25 h; refreshed every minute"},
    "ent.power.none": {"zh-CN": "今日尚无计量数据", "en": "No metered data today yet"},
    "ent.chart.power": {"zh-CN": "今日功率 (kW)", "en": "Power today (kW)"},
    "ent.quota.title": {"zh-CN": "碳配额使用", "en": "Carbon allowances"},
    "ent.quota.allowances": {"zh-CN": "配额", "en": "Allowances"},
    "ent.quota.emitted": {"zh-CN": "年初至今碳排放", "en": "Emitted this year"},
    "ent.quota.used_share": {"zh-CN": "配额使用率", "en": "Allowances used"},
    "ent.quota.remaining": {"zh-CN": "剩余配额", "en": "Remaining allowances"},
    "ent.quota.value": {"zh-CN": "按碳价计价值", "en": "Value at the carbon price"},
    "ent.quota.status": {"zh-CN": "状态", "en": "Status"},
    "ent.quota.warn_used": {"zh-CN": "已使用 {share} 的配额", "en": "{share} of the allowances used"},
    "ent.quota.warn_deficit": {"zh-CN": "缺口 {t} 吨", "en": "deficit {t} t"},
    "ent.quota.warn_none": {"zh-CN": "有排放但没有配额", "en": "emissions without any allowances"},
    "ent.quota.no_ledger": {"zh-CN": "{year} 年未登记配额分配", "en": "No allocation recorded for {year}"},
    "ent.quota.cumulative": {"zh-CN": "累计碳排放", "en": "Cumulative emissions"},
    "ent.trend.title": {"zh-CN": "月度趋势（近 12 个月）", "en": "Monthly trend (last 12 months)"},
    "ent.chart.trend": {"zh-CN": "每月碳排放与综合能耗", "en": "Emissions and energy per month"},
    "ent.trend.emissions": {"zh-CN": "碳排放（基于位置，tCO2e）", "en": "Emissions (location-based, tCO2e)"},
    "ent.trend.energy": {"zh-CN": "综合能耗 (tce)", "en": "Energy (tce)"},
    "ent.trend.partial": {"zh-CN": "（本月进行中）", "en": "(month in progress)"},
    "ent.trend.note": {"zh-CN": "本月柱为斜纹：截至最近完整的 15 分钟，并非整月",
                       "en": "this month's bar is hatched: to the last complete quarter hour, not a whole month"},
    "ent.trend.none": {"zh-CN": "近 12 个月无该企业的数据", "en": "No data of this enterprise in the last 12 months"},
    "ent.chart.quota": {"zh-CN": "累计碳排放与配额 (tCO2e)", "en": "Cumulative emissions and allowances (tCO2e)"},
    "ent.quota.threshold": {"zh-CN": "预警线 {share}", "en": "Warning at {share}"},
    "ent.quota.note": {"zh-CN": "碳排放为范围一 + 范围二（基于位置）；曲线为每日计量数据（不含手工录入账单）；"
                                "碳价 {price} 元/吨（全国碳市场 2024 年末收盘价，示范值）",
                       "en": "emissions: Scope 1 + 2, location-based; the daily curve is metered data (bills entered "
                             "by hand are not in it); carbon price {price} CNY/t (national ETS close at the end of "
                             "2024, a demo value)"},
    "ent.carrier.title": {"zh-CN": "按能源品种", "en": "By energy carrier"},
    "ent.chart.mix": {"zh-CN": "能源结构 (tce)", "en": "Energy mix (tce)"},
    "ent.workshop.title": {"zh-CN": "按车间", "en": "By workshop"},
    "ent.workshop.none": {"zh-CN": "企业总表（不属于车间）", "en": "Enterprise-level meters (no workshop)"},
    "ent.chart.workshops": {"zh-CN": "各车间碳排放 (tCO2e)", "en": "Emissions by workshop (tCO2e)"},
    "ent.intensity.title": {"zh-CN": "强度指标（与去年同期比较）",
                            "en": "Intensities against the same period last year"},
    "ent.intensity.note": {"zh-CN": "同样的日期相比：去年同期 {start} – {end}，上期 {prev_start} – {prev_end}；"
                                    "碳排放为基于位置；产值按月登记，不满一月的按小时折算",
                           "en": "the same days compared: last year {start} – {end}, previous period "
                                 "{prev_start} – {prev_end}; emissions location-based; output value is recorded per "
                                 "month and prorated by hours for part of a month"},
    "ent.compare.low_base": {"zh-CN": "对比期数据覆盖率低于园区阈值 {threshold}，不显示变化率",
                             "en": "the comparison period's data coverage is below the park's threshold "
                                   "({threshold}): its change is not shown"},
    "ent.metric.emissions_t_co2e": {"zh-CN": "碳排放 (tCO2e)", "en": "Emissions (tCO2e)"},
    "ent.metric.energy_tce": {"zh-CN": "综合能耗 (tce)", "en": "Energy (tce)"},
    "ent.metric.output_value_10k_cny": {"zh-CN": "产值（万元）", "en": "Output value (10k CNY)"},
    "ent.metric.t_co2e_per_10k_cny": {"zh-CN": "单位产值碳排放 (tCO2e/万元)",
                                      "en": "Emissions per output value (tCO2e per 10k CNY)"},
    "ent.metric.tce_per_10k_cny": {"zh-CN": "单位产值能耗 (tce/万元)",
                                   "en": "Energy per output value (tce per 10k CNY)"},
    "ent.flag.output.missing": {"zh-CN": "部分月份未登记产值", "en": "output value not recorded for every month"},
    "ent.flag.output.zero": {"zh-CN": "产值为零", "en": "output value is zero"},
    "ent.flag.activity.no_data": {"zh-CN": "无能耗数据", "en": "no energy data"},
    "ent.flag.this": {"zh-CN": "本期", "en": "this period"},
    "ent.flag.last": {"zh-CN": "去年同期", "en": "last year"},
    "ent.unit.title": {"zh-CN": "单位产品能耗与碳排放（按产量分摊）", "en": "Per product unit (allocated by output)"},
    "ent.unit.none": {"zh-CN": "本期未登记产品产量", "en": "No product output recorded for this period"},
    "ent.unit.problem": {"zh-CN": "无法按产量分摊", "en": "Cannot allocate by output"},
    "ent.cost.title": {"zh-CN": "能耗及碳排放成本结构", "en": "Energy and carbon cost structure"},
    "ent.cost.carbon": {"zh-CN": "碳排放（按碳价）", "en": "Carbon (at the carbon price)"},
    "ent.cost.note": {"zh-CN": "能源价格为示范默认值（非合同价、不分峰谷）；碳成本 = 碳排放（基于位置）× 碳价；"
                               "无价格的品种（如自发自用光伏）不计成本",
                      "en": "energy prices are demo defaults (not contract prices, no time-of-use periods); carbon "
                            "cost = location-based emissions × carbon price; carriers without a price (on-site PV) "
                            "carry no cost"},
    "ent.chart.cost": {"zh-CN": "成本结构（元）", "en": "Cost structure (CNY)"},
    "ent.col.workshop": {"zh-CN": "车间", "en": "Workshop"},
    "ent.col.quantity": {"zh-CN": "用量", "en": "Quantity"},
    "ent.col.energy_tce": {"zh-CN": "综合能耗 (tce)", "en": "Energy (tce)"},
    "ent.col.scope1_t_co2e": {"zh-CN": "范围一 (tCO2e)", "en": "Scope 1 (tCO2e)"},
    "ent.col.scope2_location_t_co2e": {"zh-CN": "范围二 基于位置 (tCO2e)", "en": "Scope 2 location (tCO2e)"},
    "ent.col.scope2_market_t_co2e": {"zh-CN": "范围二 基于市场 (tCO2e)", "en": "Scope 2 market (tCO2e)"},
    "ent.col.total_location_t_co2e": {"zh-CN": "合计 基于位置 (tCO2e)", "en": "Total location (tCO2e)"},
    "ent.col.total_market_t_co2e": {"zh-CN": "合计 基于市场 (tCO2e)", "en": "Total market (tCO2e)"},
    "ent.col.metric": {"zh-CN": "指标", "en": "Indicator"},
    "ent.col.this_period": {"zh-CN": "本期", "en": "This period"},
    "ent.col.last_year": {"zh-CN": "去年同期", "en": "Same period last year"},
    "ent.col.change": {"zh-CN": "同比变化", "en": "Change"},
    "ent.col.previous": {"zh-CN": "上期同期", "en": "Previous period"},
    "ent.col.change_previous": {"zh-CN": "环比变化", "en": "Change on previous"},
    "ent.col.unit_change": {"zh-CN": "单位产品碳排放同比变化", "en": "Change in emissions per unit"},
    "ent.col.product": {"zh-CN": "产品", "en": "Product"},
    "ent.col.months": {"zh-CN": "有产量的月数", "en": "Months with output"},
    "ent.col.tce_per_unit": {"zh-CN": "单位产品能耗 (tce)", "en": "Energy per unit (tce)"},
    "ent.col.t_co2e_per_unit": {"zh-CN": "单位产品碳排放 (tCO2e)", "en": "Emissions per unit (tCO2e)"},
    "ent.col.last_year_suffix": {"zh-CN": "（去年同期）", "en": " (last year)"},
    "ent.col.item": {"zh-CN": "项目", "en": "Item"},
    "ent.col.price": {"zh-CN": "单价", "en": "Price"},
    "ent.col.price_unit": {"zh-CN": "价格单位", "en": "Price unit"},
    "ent.col.cost": {"zh-CN": "成本（元）", "en": "Cost (CNY)"},
    "ent.col.share": {"zh-CN": "占比", "en": "Share"},
}
register_text(TEXT)


# ---- shared by the enterprise and equipment pages ------------------------------------------------------------
def period_text(start: pd.Timestamp, end: pd.Timestamp, park: Park, lang: str) -> str:
    return (f"{t('period', lang)}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({park.timezone}, "
            f"{t('tz.note', lang)})")


def name_of(items, item_id: str | None, lang: str) -> str:
    """The name of an enterprise or workshop in `lang` (the id when it has none)."""
    for item in items:
        if item.id == item_id:
            return (item.name if lang == "zh-CN" else item.name_en or item.name) or item.id
    return item_id or ""


def local(ts: pd.Series | pd.Timestamp):
    """Park-local wall time without the offset, for charts (plotly shows a date's wall time)."""
    if isinstance(ts, pd.Series):
        return ts.dt.tz_localize(None)
    return ts.tz_localize(None)


def enterprise_control(control_id: str, scope, enterprises: list, lang: str):
    """The enterprise selector for the park administrator; an enterprise user gets no selector, only its own id in
    a hidden input (the server checks it on every request anyway)."""
    if scope.role is Role.ENTERPRISE:
        return dcc.Input(id=control_id, type="hidden", value=enterprises[0].id)
    return dmc.Select(id=control_id, label=t("ent.select", lang), value=enterprises[0].id, allowDeselect=False,
                      searchable=True, persistence=True, persistence_type="session", w=360,
                      data=[{"value": e.id, "label": name_of(enterprises, e.id, lang)} for e in enterprises])


def refused(lang: str, element_id: str) -> dmc.Alert:
    return dmc.Alert(t("ent.refused", lang), color="red", id=element_id)


# ---- tables (as shown and downloaded) ------------------------------------------------------------------------
def _scope_columns(frame: pd.DataFrame, lang: str) -> dict:
    cols = {t(f"ent.col.{c}", lang): frame[c].round(3) for c in SCOPE_COLUMNS}
    cols[t("col.coverage", lang)] = frame["coverage"].round(4)
    return cols


def carrier_table(f: EnterpriseFigures, lang: str) -> pd.DataFrame:
    d = f.by_carrier
    return pd.DataFrame({t("col.carrier", lang): d["carrier"].map(lambda c: t("carrier." + c, lang)),
                         t("ent.col.quantity", lang): d["quantity"].round(3), t("col.unit", lang): d["unit"],
                         **_scope_columns(d, lang)})


def workshop_table(f: EnterpriseFigures, park: Park, lang: str) -> pd.DataFrame:
    d = f.by_workshop
    names = d["workshop"].map(lambda w: name_of(park.workshops, w, lang) if isinstance(w, str)
                              else t("ent.workshop.none", lang))
    return pd.DataFrame({t("ent.col.workshop", lang): names, **_scope_columns(d, lang)})


def workshop_links(f: EnterpriseFigures) -> list[str]:
    """Each workshop's meters (drill down), in the workshop table's order; enterprise-level meters: all meters."""
    e = quote(f.enterprise)
    return [f"/meters?e={e}&w={quote(w)}" if isinstance(w, str) else f"/meters?e={e}"
            for w in f.by_workshop["workshop"]]


def intensity_table(f: EnterpriseFigures, lang: str) -> pd.DataFrame:
    d = f.intensity
    metric = d["metric"].map(lambda m: t("col.coverage", lang) if m == "coverage" else t(f"ent.metric.{m}", lang))
    return pd.DataFrame({t("ent.col.metric", lang): metric,
                         t("ent.col.this_period", lang): d["this_period"].round(4),
                         t("ent.col.last_year", lang): d["last_year"].round(4),
                         t("ent.col.change", lang): d["change"].astype(float).round(4),
                         t("ent.col.previous", lang): d["previous"].astype(float).round(4),
                         t("ent.col.change_previous", lang): d["change_previous"].astype(float).round(4)})


def unit_table(f: EnterpriseFigures, lang: str) -> pd.DataFrame:
    d, ly = f.unit_intensity, t("ent.col.last_year_suffix", lang)
    return pd.DataFrame({
        t("ent.col.product", lang): d["product"], t("col.unit", lang): d["unit"],
        t("ent.col.quantity", lang): d["quantity"].astype(float).round(3),
        t("ent.col.months", lang): d["months"],
        t("ent.col.tce_per_unit", lang): d["tce_per_unit"].astype(float).round(5),
        t("ent.col.tce_per_unit", lang) + ly: d["tce_per_unit_last_year"].astype(float).round(5),
        t("ent.col.t_co2e_per_unit", lang): d["t_co2e_per_unit"].astype(float).round(5),
        t("ent.col.t_co2e_per_unit", lang) + ly: d["t_co2e_per_unit_last_year"].astype(float).round(5),
        t("ent.col.unit_change", lang): d["t_co2e_per_unit_yoy"].astype(float).round(4)})


def cost_table(f: EnterpriseFigures, lang: str) -> pd.DataFrame:
    d = f.cost
    items = d["item"].map(lambda i: t("ent.cost.carbon", lang) if i == "carbon" else t("carrier." + i, lang))
    return pd.DataFrame({t("ent.col.item", lang): items, t("ent.col.quantity", lang): d["quantity"].round(3),
                         t("col.unit", lang): d["unit"], t("ent.col.price", lang): d["price_cny"],
                         t("ent.col.price_unit", lang): d["price_unit"],
                         t("ent.col.cost", lang): d["cost_cny"].round(2),
                         t("ent.col.share", lang): d["share"].round(4),
                         t("col.coverage", lang): d["coverage"].round(4)})


# ---- rendering -----------------------------------------------------------------------------------------------
MARGIN = {"l": 60, "r": 20, "t": 60, "b": 40}
LEGEND = {"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"}


def _values(v) -> list | object:
    """Trace values as plotly's validation would store them (a pandas column as its array)."""
    return v.to_numpy() if isinstance(v, pd.Series | pd.Index) else v


def _graph(traces: list[dict], graph_id: str, title: str, lang: str, height: int = 320, **layout) -> dcc.Graph:
    """A chart built from plain dicts, themed by portal.components.graph (portal.theme).  Plotly's validation of
    every property cost more than the page's figures (tens of ms per chart); the dicts are written in its full
    form (title {"text": ...}), and tests/test_page_enterprise.py checks every chart validates unchanged."""
    data = [{k: _values(v) for k, v in tr.items()} for tr in traces]
    fig = go.Figure({"data": data, "layout": {**layout, "title": {"text": title}, "height": height,
                                              "margin": MARGIN, "legend": LEGEND}}, _validate=False)
    return graph(fig, graph_id, lang)


def render_summary(f: EnterpriseFigures, park: Park, lang: str) -> list:
    cov = f"{t('kpi.coverage', lang)} {pct(f.totals['coverage'])}"
    cards = [kpi(t(f"ent.kpi.{c}", lang), fmt(f.totals[c], 2), "tce" if c == "energy_tce" else "tCO2e", cov,
                 f"ent-kpi-{c}") for c in SCOPE_COLUMNS]
    s1 = f.totals["scope1_t_co2e"]
    methods = [t("ent.method.location", lang), t("ent.method.market", lang)]
    bars = [{"type": "bar", "name": t("ent.scope1", lang), "x": methods, "y": [s1, s1]},
            {"type": "bar", "name": t("ent.scope2", lang), "x": methods,
             "y": [f.totals["scope2_location_t_co2e"], f.totals["scope2_market_t_co2e"]]}]
    return [
        html.H2(name_of(park.enterprises, f.enterprise, lang), id="ent-name"),
        html.P([period_text(f.start, f.end, park, lang) + "; " + t("coverage.note", lang),
                completeness_badge(f.accounts, lang, "ent-complete")], className="note", id="ent-period-text"),
        *([dmc.Alert(t("ent.no_data", lang), color="yellow", id="ent-no-data")]
          if pd.isna(f.totals["energy_tce"]) else []),
        html.Div(cards, className="kpis", id="ent-kpis"),
        _graph(bars, "ent-scopes", t("ent.chart.scopes", lang), lang, barmode="stack",
               yaxis={"title": {"text": "tCO2e"}}),
        html.P(t("ent.scopes.note", lang), className="note"),
    ]


def _flags(f: EnterpriseFigures, lang: str) -> str:
    parts = []
    for side, flags in zip(("ent.flag.this", "ent.flag.last"), f.intensity_flags, strict=True):
        if flags:
            parts.append(f"{t(side, lang)}: " + ", ".join(t(f"ent.flag.{x}", lang) for x in flags.split(", ")))
    return "; ".join(parts)


def render_details(f: EnterpriseFigures, park: Park, lang: str) -> list:
    period = period_text(f.start, f.end, park, lang)
    mix = f.by_carrier.dropna(subset=["energy_tce"])
    mix_fig = [{"type": "pie", "labels": [t("carrier." + c, lang) for c in mix["carrier"]], "values": mix["energy_tce"],
                "hovertemplate": "%{label}: %{value:,.2f} tce (%{percent})<extra></extra>"}]
    ws = workshop_table(f, park, lang)
    ws_fig = [{"type": "bar", "name": t("ent.method.location", lang), "x": ws.iloc[:, 0],
               "y": f.by_workshop["total_location_t_co2e"]},
              {"type": "bar", "name": t("ent.method.market", lang), "x": ws.iloc[:, 0],
               "y": f.by_workshop["total_market_t_co2e"]}]
    cost = f.cost.dropna(subset=["cost_cny"])
    cost_fig = [{"type": "pie", "values": cost["cost_cny"],
                 "labels": [t("ent.cost.carbon", lang) if i == "carbon" else t("carrier." + i, lang)
                            for i in cost["item"]],
                 "hovertemplate": "%{label}: %{value:,.0f} CNY (%{percent})<extra></extra>"}]
    ly_start, ly_end = f.last_year
    flags = _flags(f, lang)
    share = (t("col.coverage", lang), t("ent.col.share", lang))
    unit = ([html.P(f"{t('ent.unit.problem', lang)}: {f.unit_intensity_problem}", className="note")]
            if f.unit_intensity_problem else
            [html.P(t("ent.unit.none", lang), className="note", id="ent-unit-none")] if f.unit_intensity.empty else
            [data_table("ent-unit-table", unit_table(f, lang), percent=(t("ent.col.unit_change", lang),))])
    return [
        html.H3(t("ent.carrier.title", lang)),
        html.P(period, className="note"),
        _graph(mix_fig, "ent-mix", t("ent.chart.mix", lang), lang),
        downloads.buttons("ent-carrier", lang, carriers := carrier_table(f, lang)),
        data_table("ent-carrier-table", carriers, percent=share[:1]),
        html.H3(t("ent.workshop.title", lang)),
        html.P(period, className="note"),
        _graph(ws_fig, "ent-workshops", t("ent.chart.workshops", lang), lang, yaxis={"title": {"text": "tCO2e"}}),
        downloads.buttons("ent-workshop", lang, ws),
        data_table("ent-workshop-table", ws, percent=share[:1], links={ws.columns[0]: workshop_links(f)}),
        html.H3(t("ent.intensity.title", lang)),
        html.P(period + "; " + t("ent.intensity.note", lang).format(
            start=f"{ly_start:%Y-%m-%d %H:%M}", end=f"{ly_end:%Y-%m-%d %H:%M}",
            prev_start=f"{(f.previous or f.last_year)[0]:%Y-%m-%d %H:%M}",
            prev_end=f"{(f.previous or f.last_year)[1]:%Y-%m-%d %H:%M}"), className="note"),
        *([dmc.Alert(t("ent.compare.low_base", lang).format(
            threshold=pct(getattr(park, "coverage_threshold", 0.9))), color="yellow", id="ent-compare-low")]
          if any(f.comparison_flags) else []),
        *([dmc.Alert(flags, color="yellow", id="ent-intensity-flags")] if flags else []),
        downloads.buttons("ent-intensity", lang, intensity := intensity_table(f, lang)),
        data_table("ent-intensity-table", intensity,
                   percent=(t("ent.col.change", lang), t("ent.col.change_previous", lang))),
        html.H3(t("ent.unit.title", lang)),
        *unit,
        html.H3(t("ent.cost.title", lang)),
        html.P(period + "; " + t("ent.cost.note", lang), className="note"),
        _graph(cost_fig, "ent-cost", t("ent.chart.cost", lang), lang),
        downloads.buttons("ent-cost", lang, costs := cost_table(f, lang)),
        data_table("ent-cost-table", costs, percent=share),
    ]


def render_power(power: pd.DataFrame, park: Park, now: pd.Timestamp, lang: str) -> list:
    today = now.floor("D")
    title = html.H3(t("ent.power.title", lang))
    known = power.dropna(subset=["kw"])
    if known.empty:
        return [title, dmc.Alert(t("ent.power.none", lang), color="gray", id="ent-power-none")]
    lines = [{"type": "scatter", "x": local(g["start"]), "y": g["kw"], "name": t("carrier." + carrier, lang),
              "mode": "lines", "line": {"shape": "hv"}, "hovertemplate": "%{x|%H:%M}: %{y:,.1f} kW<extra></extra>"}
             for carrier, g in power.groupby("carrier")]
    cards = []
    for carrier, g in known.groupby("carrier"):
        row = g.iloc[-1]
        when = f"{row['start']:%H:%M}–{row['start'] + pd.Timedelta('15min'):%H:%M}"
        cards.append(kpi(f"{t('ent.power.latest', lang)} · {t('carrier.' + carrier, lang)}", fmt(row["kw"]), "kW",
                         f"{when} · {t('kpi.coverage', lang)} {pct(row['coverage'])}", f"ent-power-{carrier}"))
    updated = t("updated", lang).format(time=f"{now.tz_convert(park.tz):%H:%M:%S}")
    return [title, html.P(period_text(today, now.floor("15min"), park, lang) + "; " + t("ent.power.note", lang)
                          + " · " + updated, className="note", id="ent-power-updated"),
            html.Div(cards, className="kpis"),
            _graph(lines, "ent-power-chart", t("ent.chart.power", lang), lang, height=300,
                   yaxis={"title": {"text": "kW"}},
                   xaxis={"range": [local(today), local(today + pd.Timedelta("1D"))]})]


def _warning(pos: dict, lang: str) -> str:
    """carbon.quota.position's warning, in `lang`."""
    if pd.isna(pos["threshold"]):
        return ""
    if pd.isna(pos["used_share"]):
        return t("ent.quota.warn_none", lang)
    text = t("ent.quota.warn_used", lang).format(share=pct(pos["used_share"]))
    if pos["remaining_t"] < 0:
        text += "; " + t("ent.quota.warn_deficit", lang).format(t=fmt(-pos["remaining_t"], 1))
    return text


def render_quota(q: QuotaView, park: Park, lang: str) -> list:
    title = html.H3([f"{t('ent.quota.title', lang)} · {q.year}", completeness_badge(q.accounts, lang,
                                                                                    "ent-quota-complete")])
    note = html.P(period_text(q.start, q.end, park, lang) + "; " + t("ent.quota.note", lang).format(
        price=f"{CARBON_PRICE_CNY_PER_T:.2f}"), className="note")
    cov = f"{t('kpi.coverage', lang)} {pct(q.coverage)}"
    emitted = kpi(t("ent.quota.emitted", lang), fmt(q.emissions_t_co2e, 2), "tCO2e", cov, "ent-quota-emitted")
    lines = [{"type": "scatter", "x": local(q.daily["day"] + pd.Timedelta("1D")), "y": q.daily["cumulative_t_co2e"],
              "mode": "lines", "name": t("ent.quota.cumulative", lang),
              "hovertemplate": "%{x|%Y-%m-%d}: %{y:,.1f} tCO2e<extra></extra>"}]
    year_end = q.start + pd.DateOffset(years=1)
    axes = {"yaxis": {"title": {"text": "tCO2e"}}, "xaxis": {"range": [local(q.start), local(year_end)]}}
    if q.position is None:
        return [title, note, html.Div([emitted], className="kpis"),
                dmc.Alert(t("ent.quota.no_ledger", lang).format(year=q.year), color="gray", id="ent-quota-none"),
                _graph(lines, "ent-quota-chart", t("ent.chart.quota", lang), lang, **axes)]
    p = q.position
    allowances = p["allowances_t"]
    lines.append({"type": "scatter", "x": [local(q.start), local(year_end)], "y": [allowances] * 2, "mode": "lines",
                  "name": t("ent.quota.allowances", lang), "line": {"color": "#b00020"}})
    threshold = 0.8 * allowances
    lines.append({"type": "scatter", "x": [local(q.start), local(year_end)], "y": [threshold] * 2, "mode": "lines",
                  "name": t("ent.quota.threshold", lang).format(share="80%"),
                  "line": {"color": "#e0a526", "dash": "dot"}})
    status = t(f"quota.{p['status']}", lang)
    warning = _warning(p, lang)
    cards = [
        emitted,
        kpi(t("ent.quota.allowances", lang), fmt(allowances, 1), "t", f"{q.year}", "ent-quota-allowances"),
        kpi(t("ent.quota.used_share", lang), pct(p["used_share"]), "", cov, "ent-quota-used"),
        kpi(t("ent.quota.remaining", lang), fmt(p["remaining_t"], 1), "t", f"{t('ent.quota.status', lang)}: {status}",
            "ent-quota-remaining"),
        kpi(t("ent.quota.value", lang), fmt(p["value_cny"], 0), "CNY",
            f"{CARBON_PRICE_CNY_PER_T:.2f} CNY/t", "ent-quota-value"),
    ]
    return [title, note, html.Div(cards, className="kpis"),
            *([dmc.Alert(warning, color="red" if p["status"] == "deficit" else "yellow", id="ent-quota-warning")]
              if warning else []),
            _graph(lines, "ent-quota-chart", t("ent.chart.quota", lang), lang, **axes)]


def trend_slot() -> dcc.Loading:
    """Where the monthly trend goes: placed by the quota panel's callback, so the trend (a year of accounts) is
    computed after the first screen's figures, not competing with them."""
    return dcc.Loading(html.Div(id="ent-trend"), delay_show=300)


def render_trend(trend: pd.DataFrame, lang: str) -> list:
    """Emissions (location-based) and energy per month for the last 12 months; the running month hatched and
    marked partial; a month without data is a gap."""
    title = html.H3(t("ent.trend.title", lang))
    if trend.empty or trend["energy_tce"].isna().all():
        return [title, dmc.Alert(t("ent.trend.none", lang), color="gray", id="ent-trend-none")]
    partial = trend["partial"].tolist()
    months = local(trend["month"])
    traces = [{"type": "bar", "x": months, "y": trend["total_location_t_co2e"], "name": t("ent.trend.emissions", lang),
               "marker": {"pattern": {"shape": ["/" if p else "" for p in partial]},
                          "opacity": [0.55 if p else 1.0 for p in partial]},
               "customdata": [t("ent.trend.partial", lang) if p else "" for p in partial],
               "hovertemplate": "%{x|%Y-%m}: %{y:,.2f} tCO2e %{customdata}<extra></extra>"},
              {"type": "scatter", "x": months, "y": trend["energy_tce"], "name": t("ent.trend.energy", lang),
               "yaxis": "y2", "mode": "lines+markers", "hovertemplate": "%{x|%Y-%m}: %{y:,.2f} tce<extra></extra>"}]
    return [title, html.P(t("ent.trend.note", lang), className="note"),
            _graph(traces, "ent-trend-chart", t("ent.chart.trend", lang), lang, yaxis={"title": {"text": "tCO2e"}},
                   yaxis2={"overlaying": "y", "side": "right", "title": {"text": "tce"}, "rangemode": "tozero"},
                   xaxis={"dtick": "M1"})]


# ---- page ----------------------------------------------------------------------------------------------------
def layout(scope, lang: str) -> html.Div:
    enterprises = scope.enterprises()
    if not enterprises:
        return html.Div(dmc.Alert(t("ent.none", lang), color="gray", id="ent-none"))
    period = dmc.SegmentedControl(id="ent-period", value="month", persistence=True, persistence_type="session",
                                  data=[{"value": k, "label": t(f"ent.period.{k}", lang)} for k in (*PERIODS, RANGE)])
    today = scope.now().tz_convert(scope.park.tz)
    first = f"{today:%Y-%m-01}"
    picker = dmc.DatePickerInput(id="ent-range", type="range", label=t("ent.range", lang), valueFormat="YYYY-MM-DD",
                                 value=[first, today.date().isoformat()], maxDate=today.date().isoformat(), w=260)
    return html.Div([
        dmc.Group([enterprise_control("ent-enterprise", scope, enterprises, lang), period, picker],
                  align="flex-end"),
        dcc.Interval(id="ent-tick", interval=60_000),
        dcc.Loading(html.Div(id="ent-summary"), delay_show=300),
        html.Div(id="ent-power"),
        dcc.Loading(html.Div(id="ent-quota"), delay_show=300),
        dcc.Loading(html.Div(id="ent-details"), delay_show=300),
    ])


def picked_range(picked, now: pd.Timestamp, tz) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """Park-local [first day, day after the last day) of a picked date range, clipped to the last complete quarter
    hour; None when the picker holds no valid range."""
    if not isinstance(picked, list | tuple) or len(picked) != 2 or not all(picked):
        return None
    try:
        a, b = sorted(pd.Timestamp(str(v)[:10]).tz_localize(tz) for v in picked)
    except ValueError:
        return None
    end = min(b + pd.Timedelta(days=1), pd.Timestamp(now).tz_convert(tz).floor("15min"))
    return (a, end) if end > a else None


def figures(ent, kind: str | None, picked=None) -> EnterpriseFigures | None:
    """The page's figures of one enterprise (portal.enterprise_scope), shared briefly by the users of one scope
    (the page and its downloads): this month, this year, the last 12 months, or a picked date range."""
    now = ent.scope.now()
    if kind == RANGE:
        bounds = picked_range(picked, now, ent.scope.park.tz)
        if bounds is None:
            return None
        key = f"enterprise:range:{bounds[0].isoformat()}:{bounds[1].isoformat()}"
        return ent.memo(key, lambda: ent.figures(RANGE, now, bounds=bounds))
    kind = kind if kind in PERIODS else "month"
    return ent.memo(f"enterprise:{kind}:{now.floor('15min').isoformat()}", lambda: ent.figures(kind, now))


def register(callbacks) -> None:
    @callbacks.callback(Output("ent-summary", "children"), Output("ent-details", "children"),
                        Input("ent-enterprise", "value"), Input("ent-period", "value"), Input("ent-range", "value"),
                        action="figures")
    def body(scope, lang: str, asked: str | None, kind: str | None, picked=None):
        ent = scope.enterprise(asked)
        if ent is None:
            return refused(lang, "ent-refused"), []
        f = figures(ent, kind, picked)
        if f is None:
            return dmc.Alert(t("ent.empty_period", lang), color="gray"), []
        return render_summary(f, scope.park, lang), render_details(f, scope.park, lang)

    @callbacks.callback(Output("ent-enterprise", "value"), Input("url", "search"), State("ent-enterprise", "value"),
                        action="open from a link")
    def from_link(scope, lang: str, search: str | None, current: str | None):
        """/enterprise?e=E1 (a click in the overview's ranking) opens that enterprise when the user may see it.
        Always answers a value (the current one when the link names none it may see): the page's other callbacks
        wait for this one, and a no_update would leave those that read only the enterprise never called."""
        asked = parse_qs((search or "").lstrip("?")).get("e", [None])[0]
        return asked if asked and scope.may_see(asked) else current

    @callbacks.callback(Output("ent-power", "children"), Input("ent-enterprise", "value"),
                        Input("ent-tick", "n_intervals"), action="power")
    def power(scope, lang: str, asked: str | None, _tick: int | None):
        ent = scope.enterprise(asked)
        if ent is None:
            return refused(lang, "ent-power-refused")
        now = scope.now()
        return render_power(ent.realtime_power(now), scope.park, now, lang)

    @callbacks.callback(Output("ent-quota", "children"), Input("ent-enterprise", "value"), action="quota")
    def quota(scope, lang: str, asked: str | None):
        ent = scope.enterprise(asked)
        if ent is None:
            return refused(lang, "ent-quota-refused")
        q = ent.quota_view()
        if not q:
            return [dmc.Alert(t("ent.empty_period", lang), color="gray"), trend_slot()]
        # beside the ledger: the nightly forecast's fan chart (read from its cache, never trained here)
        fan = forecast_figures.render_quota_forecast(scope.quota_forecast(ent.enterprise), q.year, scope.now(),
                                                     scope.park.tz, lang)
        return [*render_quota(q, scope.park, lang), *fan, trend_slot()]

    @callbacks.callback(Output("ent-trend", "children"), Input("ent-enterprise", "value"), action="trend")
    def trend(scope, lang: str, asked: str | None):
        ent = scope.enterprise(asked)
        if ent is None:
            return refused(lang, "ent-trend-refused")
        now = scope.now()
        return render_trend(ent.memo(f"trend:{now.floor('15min').isoformat()}", lambda: ent.monthly_trend(now)),
                            lang)

    tables: dict[str, tuple[str, Callable]] = {
        "ent-carrier": ("enterprise-carriers", lambda f, park, lang: carrier_table(f, lang)),
        "ent-workshop": ("enterprise-workshops", lambda f, park, lang: workshop_table(f, park, lang)),
        "ent-intensity": ("enterprise-intensities", lambda f, park, lang: intensity_table(f, lang)),
        "ent-cost": ("enterprise-costs", lambda f, park, lang: cost_table(f, lang)),
    }
    for prefix, (name, build) in tables.items():
        def table(scope, lang: str, asked: str | None, kind: str | None, picked=None,
                  build=build) -> downloads.Export | None:
            ent = scope.enterprise(asked)
            f = figures(ent, kind, picked) if ent else None
            if not f:
                return None
            complete, reasons = completeness(f.accounts)
            notes = () if complete else (f"{t('badge.incomplete', lang)}: " + "; ".join(reasons[:20]),)
            return downloads.Export(build(f, scope.park, lang), label=ent.enterprise,
                                    coverage=None if pd.isna(f.totals["coverage"]) else float(f.totals["coverage"]),
                                    notes=notes, **downloads.period(f.start, f.end, scope.park.timezone))

        callbacks.download(prefix, name, table, State("ent-enterprise", "value"), State("ent-period", "value"),
                           State("ent-range", "value"))
