"""Meters (drill down; admin: any enterprise, enterprise user: its own): an enterprise's meters, of one workshop or
all, with their energy, coverage, estimated and quarantined readings over a chosen date range; one meter's readings
(estimated ones marked) and its quarantined rows with their rule codes and sentences (park/findings.py).

Opened from the enterprise page's workshop table (`/meters?e=E&w=W`) and from this page's own meter links
(`?e=E&m=M`).  Reads through the request's scope only (portal.enterprise_scope.EnterpriseScope.meter_table and
meter_view); a meter of another enterprise is refused."""

from __future__ import annotations

from urllib.parse import parse_qs, quote

import dash_mantine_components as dmc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, html

from portal import downloads, theme
from portal.auth import Role
from portal.components import data_table, fmt, graph, kpi, pct
from portal.i18n import register as register_text
from portal.i18n import t
from portal.pages.enterprise import enterprise_control, name_of, refused

PATH = "/meters"
TITLE_KEY = "nav.meters"
ROLES = {Role.ADMIN, Role.ENTERPRISE}
DEFAULT_DAYS = 7

TEXT = {
    "nav.meters": {"zh-CN": "计量表明细", "en": "Meters"},
    "mt.workshop": {"zh-CN": "车间", "en": "Workshop"},
    "mt.workshop.all": {"zh-CN": "全部车间", "en": "All workshops"},
    "mt.workshop.none": {"zh-CN": "企业总表", "en": "Enterprise-level meters"},
    "mt.range": {"zh-CN": "日期范围", "en": "Date range"},
    "mt.meter": {"zh-CN": "计量表", "en": "Meter"},
    "mt.list.title": {"zh-CN": "计量表一览", "en": "Meters"},
    "mt.detail.title": {"zh-CN": "计量表读数", "en": "Meter readings"},
    "mt.col.meter": {"zh-CN": "表号", "en": "Meter"},
    "mt.col.name": {"zh-CN": "名称", "en": "Name"},
    "mt.col.workshop": {"zh-CN": "车间", "en": "Workshop"},
    "mt.col.value": {"zh-CN": "计量值", "en": "Metered"},
    "mt.col.estimated": {"zh-CN": "估算读数", "en": "Estimated readings"},
    "mt.col.quarantined": {"zh-CN": "隔离读数", "en": "Quarantined readings"},
    "mt.col.time": {"zh-CN": "时间", "en": "Time"},
    "mt.col.quality": {"zh-CN": "质量", "en": "Quality"},
    "mt.col.received": {"zh-CN": "接收时间", "en": "Received"},
    "mt.col.code": {"zh-CN": "规则代码", "en": "Rule code"},
    "mt.col.severity": {"zh-CN": "处理", "en": "Outcome"},
    "mt.col.rule": {"zh-CN": "规则说明", "en": "Rule"},
    "mt.col.reason": {"zh-CN": "详情", "en": "Detail"},
    "mt.col.source": {"zh-CN": "来源", "en": "Source"},
    "mt.kpi.value": {"zh-CN": "期间计量值", "en": "Metered in the period"},
    "mt.kpi.coverage": {"zh-CN": "数据完整率", "en": "Data coverage"},
    "mt.kpi.qualities": {"zh-CN": "读数质量", "en": "Reading quality"},
    "mt.chart": {"zh-CN": "区间读数", "en": "Interval readings"},
    "mt.quality.measured": {"zh-CN": "实测", "en": "measured"},
    "mt.quality.estimated": {"zh-CN": "估算", "en": "estimated"},
    "mt.quality.substituted": {"zh-CN": "人工录入", "en": "substituted"},
    "mt.quarantine.title": {"zh-CN": "被隔离的读数", "en": "Quarantined readings"},
    "mt.quarantine.none": {"zh-CN": "本期间无被隔离的读数", "en": "No reading quarantined in this period"},
    "mt.none": {"zh-CN": "本期间无读数", "en": "No reading in this period"},
    "mt.choose": {"zh-CN": "在上表中点击计量表查看读数", "en": "Click a meter in the table above to see its readings"},
    "mt.bad_range": {"zh-CN": "请选择有效的日期范围", "en": "Choose a valid date range"},
    "mt.period": {"zh-CN": "统计期", "en": "Period"},
}
register_text(TEXT)


def date_range(values, now: pd.Timestamp, tz) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    """Park-local [first day 00:00, day after the last day 00:00) of a picked range, clipped to now (the last
    complete quarter hour); the last DEFAULT_DAYS days when nothing is picked; None when it is not a range."""
    now = pd.Timestamp(now).tz_convert(tz)
    if not values or not isinstance(values, list | tuple) or len(values) != 2 or not all(values):
        start = now.floor("D") - pd.Timedelta(days=DEFAULT_DAYS - 1)
        return start, now.floor("15min")
    try:
        a, b = (pd.Timestamp(str(v)[:10]).tz_localize(tz) for v in values)
    except ValueError:
        return None
    a, b = min(a, b), max(a, b)
    end = min(b + pd.Timedelta(days=1), now.floor("15min"))
    return (a, end) if end > a else None


def meter_links(frame: pd.DataFrame, enterprise: str) -> list[str]:
    return [f"{PATH}?e={quote(enterprise)}&m={quote(m)}" for m in frame["meter"]]


def meter_list_table(frame: pd.DataFrame, scope, lang: str) -> pd.DataFrame:
    park = scope.park
    return pd.DataFrame({
        t("mt.col.meter", lang): frame["meter"],
        t("mt.col.name", lang): frame["name"],
        t("col.carrier", lang): frame["carrier"].map(lambda c: t("carrier." + c, lang)),
        t("mt.col.workshop", lang): frame["workshop"].map(
            lambda w: name_of(park.workshops, w, lang) if isinstance(w, str) else t("mt.workshop.none", lang)),
        t("mt.col.value", lang): frame["value"].round(3),
        t("col.unit", lang): frame["unit"],
        t("col.coverage", lang): frame["coverage"].round(4),
        t("mt.col.estimated", lang): frame["estimated"],
        t("mt.col.quarantined", lang): frame["quarantined"],
    })


def readings_table(view, lang: str) -> pd.DataFrame:
    r = view.readings
    return pd.DataFrame({t("mt.col.time", lang): r["ts"].dt.strftime("%Y-%m-%d %H:%M"),
                         f"{t('mt.col.value', lang)} ({view.unit})": r["value"].round(4),
                         t("mt.col.quality", lang): r["quality"].map(lambda q: t(f"mt.quality.{q}", lang))})


def quarantine_table(view, lang: str, tz) -> pd.DataFrame:
    q = view.quarantined
    ts = pd.to_datetime(q["ts"], utc=True, errors="coerce").dt.tz_convert(tz)
    received = pd.to_datetime(q["received"], utc=True, errors="coerce").dt.tz_convert(tz)
    return pd.DataFrame({
        t("mt.col.time", lang): ts.dt.strftime("%Y-%m-%d %H:%M").fillna("—"),
        t("mt.col.value", lang): q["value"].astype(str),  # as received: it may not be a number
        t("mt.col.code", lang): q["code"],
        t("mt.col.severity", lang): q["severity"].map(lambda s: t(f"quality.rule.{s}", lang) if s else ""),
        t("mt.col.rule", lang): q["sentence"],
        t("mt.col.reason", lang): q["reason"],
        t("mt.col.source", lang): q["source"].astype(str) + q["line"].map(
            lambda n: f" #{int(n)}" if pd.notna(n) else ""),
        t("mt.col.received", lang): received.dt.strftime("%Y-%m-%d %H:%M:%S"),
    })


def period_note(start: pd.Timestamp, end: pd.Timestamp, tz_name: str, lang: str) -> str:
    return f"{t('mt.period', lang)}: {start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} ({tz_name})"


def render_detail(view, scope, lang: str) -> list:
    tz = scope.park.tz
    m = view.meter
    title = html.H3(f"{t('mt.detail.title', lang)} · {m.id}{' · ' + m.name if m.name else ''}", id="mt-detail-title")
    note = html.P(period_note(view.start, view.end, scope.park.timezone, lang), className="note")
    qualities = " · ".join(f"{t(f'mt.quality.{q}', lang)} {n:,}" for q, n in view.qualities.items()) or "—"
    cards = html.Div(className="kpis", children=[
        kpi(t("mt.kpi.value", lang), fmt(view.value, 2), view.unit, t("carrier." + m.carrier.value, lang),
            "mt-kpi-value"),
        kpi(t("mt.kpi.coverage", lang), pct(view.coverage), "", f"{view.measured:,} / {view.expected:,}",
            "mt-kpi-coverage"),
        kpi(t("mt.kpi.qualities", lang), f"{sum(view.qualities.values()):,}", "", qualities, "mt-kpi-qualities"),
    ])
    out = [title, note, cards]
    r = view.readings
    if r.empty:
        out.append(dmc.Alert(t("mt.none", lang), color="gray", id="mt-no-readings"))
    else:
        fig = go.Figure()
        for quality, colour in (("measured", theme.PALETTE[0]), ("estimated", theme.WARN),
                                ("substituted", theme.PALETTE[2])):
            part = r[r["quality"] == quality]
            if len(part):
                fig.add_bar(x=part["ts"].dt.tz_localize(None), y=part["value"], name=t(f"mt.quality.{quality}", lang),
                            marker={"color": colour},
                            hovertemplate="%{x|%Y-%m-%d %H:%M}: %{y:,.3f} " + view.unit + "<extra></extra>")
        fig.update_layout(barmode="overlay", yaxis_title=view.unit, bargap=0)
        out += [graph(fig, "mt-chart", lang, title=f"{t('mt.chart', lang)} ({view.unit})", height=320),
                downloads.buttons("mt-readings", lang, readings := readings_table(view, lang)),
                data_table("mt-readings-table", readings)]
    out.append(html.H3(t("mt.quarantine.title", lang)))
    if view.quarantined.empty:
        out.append(html.P(t("mt.quarantine.none", lang), className="note", id="mt-quarantine-none"))
    else:
        bad = quarantine_table(view, lang, tz)
        out += [downloads.buttons("mt-quarantine", lang, bad),
                data_table("mt-quarantine-table", bad, wrap=(t("mt.col.rule", lang), t("mt.col.reason", lang)))]
    return out


def layout(scope, lang: str) -> html.Div:
    enterprises = scope.enterprises()
    if not enterprises:
        return html.Div(dmc.Alert(t("ent.none", lang), color="gray", id="mt-none"))
    now = scope.now().tz_convert(scope.park.tz)
    first = (now.floor("D") - pd.Timedelta(days=DEFAULT_DAYS - 1)).date().isoformat()
    return html.Div([
        dmc.Group(align="flex-end", children=[
            enterprise_control("mt-enterprise", scope, enterprises, lang),
            dmc.Select(id="mt-workshop", label=t("mt.workshop", lang), value="", allowDeselect=False, w=240,
                       data=[{"value": "", "label": t("mt.workshop.all", lang)}]),
            dmc.DatePickerInput(id="mt-range", type="range", label=t("mt.range", lang),
                                value=[first, now.date().isoformat()], maxDate=now.date().isoformat(),
                                valueFormat="YYYY-MM-DD", w=260),
            dmc.Select(id="mt-meter", label=t("mt.meter", lang), value=None, searchable=True, clearable=True,
                       data=[], w=240),
        ]),
        html.Div(id="mt-list"),
        html.Div(id="mt-detail"),
    ])


def _query(search: str | None) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items() if v}


def register(callbacks) -> None:
    @callbacks.callback(Output("mt-enterprise", "value"), Input("url", "search"), State("mt-enterprise", "value"),
                        action="open from a link")
    def from_link(scope, lang: str, search: str | None, current: str | None):
        e = _query(search).get("e")
        # Always a value: "choices" waits for this callback and would never run after a no_update.
        return e if e and scope.may_see(e) else current

    @callbacks.callback(Output("mt-workshop", "data"), Output("mt-workshop", "value"), Output("mt-meter", "data"),
                        Output("mt-meter", "value"), Input("mt-enterprise", "value"), State("url", "search"),
                        action="choices")
    def choices(scope, lang: str, asked: str | None, search: str | None):
        ent = scope.enterprise(asked)
        if ent is None:
            return [], "", [], None
        q = _query(search) if _query(search).get("e", asked) == asked else {}
        workshops = sorted({m.workshop for m in ent.meters() if m.workshop})
        wdata = [{"value": "", "label": t("mt.workshop.all", lang)}] + [
            {"value": w, "label": name_of(scope.park.workshops, w, lang)} for w in workshops]
        mdata = [{"value": m.id, "label": f"{m.id}{' · ' + m.name if m.name else ''}"} for m in ent.meters()]
        w = q.get("w") if q.get("w") in workshops else ""
        m = q.get("m") if q.get("m") in {x["value"] for x in mdata} else None
        return wdata, w, mdata, m

    @callbacks.callback(Output("mt-list", "children"), Input("mt-enterprise", "value"),
                        Input("mt-workshop", "value"), Input("mt-range", "value"), action="meters")
    def meter_list(scope, lang: str, asked: str | None, workshop: str | None, picked):
        ent = scope.enterprise(asked)
        if ent is None:
            return refused(lang, "mt-refused")
        period = date_range(picked, scope.now(), scope.park.tz)
        if period is None:
            return dmc.Alert(t("mt.bad_range", lang), color="yellow", id="mt-bad-range")
        frame = ent.meter_table(*period, workshop or None)
        shown = meter_list_table(frame, scope, lang)
        return [html.H3(t("mt.list.title", lang)),
                html.P(period_note(*period, scope.park.timezone, lang), className="note"),
                downloads.buttons("mt-list", lang, shown),
                data_table("mt-list-table", shown, percent=[t("col.coverage", lang)],
                           links={t("mt.col.meter", lang): meter_links(frame, ent.enterprise)})]

    @callbacks.callback(Output("mt-detail", "children"), Input("mt-enterprise", "value"),
                        Input("mt-meter", "value"), Input("mt-range", "value"), action="meter readings")
    def detail(scope, lang: str, asked: str | None, meter: str | None, picked):
        ent = scope.enterprise(asked)
        if ent is None:
            return refused(lang, "mt-detail-refused")
        if not meter:
            return html.P(t("mt.choose", lang), className="note", id="mt-choose")
        period = date_range(picked, scope.now(), scope.park.tz)
        if period is None:
            return []
        return render_detail(ent.meter_view(meter, *period), scope, lang)

    def _export(scope, lang, asked, workshop, meter, picked, build):
        ent = scope.enterprise(asked)
        period = date_range(picked, scope.now(), scope.park.tz) if ent else None
        if period is None:
            return None
        frame = build(ent, period, workshop, meter)
        if frame is None:
            return None
        return downloads.Export(frame, label=meter or ent.enterprise, **downloads.period(*period,
                                                                                         scope.park.timezone))

    controls = (State("mt-enterprise", "value"), State("mt-workshop", "value"), State("mt-meter", "value"),
                State("mt-range", "value"))

    def list_table(scope, lang, asked, workshop, meter, picked):
        return _export(scope, lang, asked, workshop, meter, picked, lambda ent, period, w, m: meter_list_table(
            ent.meter_table(*period, w or None), scope, lang))

    def readings(scope, lang, asked, workshop, meter, picked):
        return _export(scope, lang, asked, workshop, meter, picked, lambda ent, period, w, m: readings_table(
            ent.meter_view(m, *period), lang) if m else None)

    def quarantine(scope, lang, asked, workshop, meter, picked):
        return _export(scope, lang, asked, workshop, meter, picked, lambda ent, period, w, m: quarantine_table(
            ent.meter_view(m, *period), lang, scope.park.tz) if m else None)

    callbacks.download("mt-list", "meters", list_table, *controls)
    callbacks.download("mt-readings", "meter-readings", readings, *controls)
    callbacks.download("mt-quarantine", "meter-quarantined", quarantine, *controls)
