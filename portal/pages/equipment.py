"""Equipment from bracelets (admin: any enterprise with bracelets; enterprise user: its own devices only).

Devices with last seen, latest current and state; a state timeline of a chosen day; utilisation (开工率) by day and
by shift; estimated energy per device reconciled with the enterprise's metered electricity; health warnings
(silent devices).  Below, for a period chosen with the date-range picker (this month by default): utilisation by
day and the estimated energy reconciled with the meter over the period, with its coverage.  Without bracelet
readings the page says so instead of showing zeros.  Method and parameters: docs/bracelets.md (collectors.bracelet).
"""

from __future__ import annotations

import dash_mantine_components as dmc
import pandas as pd
import plotly.graph_objects as go
from dash import Input, Output, State, dcc, html

from collectors import bracelet_analytics as bracelets
from collectors.bracelet import DEFAULT_PARAMS, LEVELS, UNKNOWN
from collectors.bracelet_analytics import EquipmentDay, recent_days
from park.model import Park
from portal import downloads
from portal.auth import Role
from portal.components import (
    PeriodError,
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
from portal.pages.enterprise import enterprise_control, local, name_of, period_text, refused

PATH = "/equipment"
TITLE_KEY = "nav.equipment"
ROLES = {Role.ADMIN, Role.ENTERPRISE}
STATES = (*reversed(LEVELS), UNKNOWN)  # running, idle, off, unknown
MAX_DAYS = 31  # the longest period of the equipment section (a state pass over each day of each device)
STATE_COLORS = {"running": "#2e7d4f", "idle": "#e0a526", "off": "#9aa5a0", "unknown": "#dfe4e1"}

TEXT = {
    "nav.equipment": {"zh-CN": "设备运行", "en": "Equipment"},
    "eq.day": {"zh-CN": "日期", "en": "Day"},
    "eq.none": {"zh-CN": "没有安装设备手环的企业", "en": "No enterprise has equipment bracelets"},
    "eq.no_devices": {"zh-CN": "该企业未安装设备手环", "en": "This enterprise has no equipment bracelets"},
    "eq.no_readings": {"zh-CN": "存储中尚无该企业设备手环的电流数据（手环采集尚未接入或尚未上报），因此不显示运行状态、"
                                "开工率和估算电量",
                       "en": "The store holds no bracelet current readings of this enterprise's devices yet (the "
                             "bracelet collector is not connected or has not reported): no state, utilisation or "
                             "energy estimate is shown"},
    "eq.no_readings_day": {"zh-CN": "当日无设备手环数据", "en": "No bracelet readings on this day"},
    "eq.no_readings_week": {"zh-CN": "近 7 日无设备手环数据", "en": "No bracelet readings in these 7 days"},
    "eq.empty_day": {"zh-CN": "今日尚无完整的 15 分钟区间", "en": "No complete quarter hour today yet"},
    "eq.devices.title": {"zh-CN": "设备列表", "en": "Devices"},
    "eq.devices.note": {"zh-CN": "状态为最后一次上报时的状态；每分钟刷新",
                        "en": "state at the last reading; refreshed every minute"},
    "eq.col.device": {"zh-CN": "设备编号", "en": "Device"},
    "eq.col.name": {"zh-CN": "设备名称", "en": "Name"},
    "eq.col.workshop": {"zh-CN": "车间", "en": "Workshop"},
    "eq.col.last_seen": {"zh-CN": "最后上报", "en": "Last seen"},
    "eq.col.current": {"zh-CN": "最新电流 (A)", "en": "Latest current (A)"},
    "eq.col.state": {"zh-CN": "状态", "en": "State"},
    "eq.col.health": {"zh-CN": "健康", "en": "Health"},
    "eq.col.day": {"zh-CN": "日期", "en": "Day"},
    "eq.col.shift": {"zh-CN": "班次", "en": "Shift"},
    "eq.col.running_h": {"zh-CN": "运行 (h)", "en": "Running (h)"},
    "eq.col.idle_h": {"zh-CN": "待机 (h)", "en": "Idle (h)"},
    "eq.col.off_h": {"zh-CN": "停机 (h)", "en": "Off (h)"},
    "eq.col.unknown_h": {"zh-CN": "无数据 (h)", "en": "No data (h)"},
    "eq.col.planned_h": {"zh-CN": "计划 (h)", "en": "Planned (h)"},
    "eq.col.overtime_h": {"zh-CN": "班外运行 (h)", "en": "Running outside shifts (h)"},
    "eq.col.utilisation": {"zh-CN": "开工率", "en": "Utilisation"},
    "eq.col.running_share": {"zh-CN": "运行时间占比", "en": "Running share"},
    "eq.col.estimated": {"zh-CN": "估算电量 (kWh)", "en": "Estimated (kWh)"},
    "eq.col.factor": {"zh-CN": "核对系数", "en": "Reconciliation factor"},
    "eq.col.reconciled": {"zh-CN": "核对后电量 (kWh)", "en": "Reconciled (kWh)"},
    "eq.state.running": {"zh-CN": "运行", "en": "Running"},
    "eq.state.idle": {"zh-CN": "待机", "en": "Idle"},
    "eq.state.off": {"zh-CN": "停机", "en": "Off"},
    "eq.state.unknown": {"zh-CN": "无数据", "en": "No data"},
    "eq.never": {"zh-CN": "从未上报", "en": "never"},
    "eq.ok": {"zh-CN": "正常", "en": "OK"},
    "eq.timeline.title": {"zh-CN": "运行状态时间线", "en": "State timeline"},
    "eq.util.day.title": {"zh-CN": "开工率（按日，近 7 日）", "en": "Utilisation by day (7 days)"},
    "eq.util.shift.title": {"zh-CN": "开工率（按班次）", "en": "Utilisation by shift"},
    "eq.no_shifts": {"zh-CN": "当日无计划班次", "en": "No shift planned on this day"},
    "eq.util.note": {"zh-CN": "开工率 = 班次内运行时间 / 计划时间；班次日历为默认值"
                              "（周一至周六 08:00–16:00、16:00–24:00）；数据完整率不足 100% 时为下限；无数据时不计算",
                     "en": "utilisation = running time within shifts / planned time; default shift calendar "
                           "(Monday to Saturday 08:00–16:00, 16:00–24:00); a lower bound when coverage is below "
                           "100%; not computed without data"},
    "eq.chart.util": {"zh-CN": "开工率（%）", "en": "Utilisation (%)"},
    "eq.energy.title": {"zh-CN": "估算电量与电表核对", "en": "Estimated energy and reconciliation with the meter"},
    "eq.energy.metered": {"zh-CN": "企业计量电量（电网）", "en": "Metered electricity (grid, enterprise)"},
    "eq.energy.estimated": {"zh-CN": "手环估算合计", "en": "Bracelet estimates, total"},
    "eq.energy.ratio": {"zh-CN": "估算 / 计量", "en": "Estimated / metered"},
    "eq.energy.unattributed": {"zh-CN": "未归属电量（无手环的负载）", "en": "Unattributed (loads without a bracelet)"},
    "eq.energy.no_meter": {"zh-CN": "同期无计量电量，无法核对", "en": "No metered electricity for this time: no "
                                                                  "reconciliation"},
    "eq.energy.note": {"zh-CN": "估算电量 = √3 × 额定电压 × 电流 × 功率因数 × 时间（仅有数据的时间）；"
                                "估算合计超过电表时按比例缩小至电表值",
                       "en": "estimate = √3 × rated voltage × current × power factor × time (known time only); when "
                             "the estimates exceed the meter they are scaled down to it"},
    "eq.health.title": {"zh-CN": "健康预警", "en": "Health warnings"},
    "eq.health.silent": {"zh-CN": "{device}：已 {minutes} 分钟无数据（超过 {n} 个上报周期）",
                         "en": "{device}: no reading for {minutes} min (more than {n} intervals)"},
    "eq.health.never": {"zh-CN": "{device}：从未上报数据", "en": "{device}: no reading ever"},
    "eq.health.ok": {"zh-CN": "所有设备均按时上报", "en": "All devices are reporting"},
    "eq.period.title": {"zh-CN": "所选期间：开工率与估算电量", "en": "Chosen period: utilisation and estimated energy"},
    "eq.period.util": {"zh-CN": "开工率（按日，所选期间）", "en": "Utilisation by day (chosen period)"},
    "eq.period.bracelets": {"zh-CN": "手环数据完整率", "en": "Bracelet data coverage"},
    "eq.period.none": {"zh-CN": "所选期间无设备手环数据", "en": "No bracelet readings in the chosen period"},
    "eq.health.battery": {"zh-CN": "暂不提供手环低电量预警：平台目前只记录手环的电流读数，不记录电池电量",
                          "en": "No low-battery warnings yet: the platform records the bracelets' current readings, "
                                "not their battery level"},
}
register_text(TEXT)


def _device_names(park: Park, enterprise: str) -> dict[str, str]:
    return {d.id: f"{d.id} {d.name}".strip() for d in park.devices if d.enterprise == enterprise}


def _known(frame: pd.DataFrame, column: str) -> pd.Series:
    """A figure where the bracelet saw anything of the period; NaN where it saw nothing (not zero)."""
    return frame[column].where(frame["coverage"] > 0).astype(float)


# ---- tables (as shown and downloaded) ------------------------------------------------------------------------
def device_table(status: pd.DataFrame, park: Park, lang: str) -> pd.DataFrame:
    def health(r) -> str:
        if not r.silent:
            return t("eq.ok", lang)
        return t("eq.never", lang) if pd.isna(r.last_seen) else f"{fmt(r.silent_min, 0)} min"

    return pd.DataFrame({
        t("eq.col.device", lang): status["device"], t("eq.col.name", lang): status["name"],
        t("eq.col.workshop", lang): status["workshop"].map(lambda w: name_of(park.workshops, w, lang)),
        t("eq.col.last_seen", lang): status["last_seen"].map(
            lambda ts: t("eq.never", lang) if pd.isna(ts) else f"{ts:%Y-%m-%d %H:%M:%S}"),
        t("eq.col.current", lang): status["current_a"].astype(float).round(2),
        t("eq.col.state", lang): status["state"].map(lambda s: t(f"eq.state.{s}", lang)),
        t("eq.col.health", lang): [health(r) for r in status.itertuples()],
    })


def _hours(frame: pd.DataFrame, lang: str) -> dict:
    """State hours (blank where nothing was seen: the no-data hours say why), planned hours, utilisation."""
    cols = {t(f"eq.col.{c}", lang): _known(frame, c).round(3) for c in ("running_h", "idle_h", "off_h")}
    cols[t("eq.col.unknown_h", lang)] = frame["unknown_h"].round(3)
    cols[t("eq.col.planned_h", lang)] = frame["planned_h"].round(3)
    for c in ("overtime_h", "utilisation", "running_share"):
        cols[t(f"eq.col.{c}", lang)] = _known(frame, c).round(4 if c != "overtime_h" else 3)
    cols[t("col.coverage", lang)] = frame["coverage"].round(4)
    return cols


def day_table(e: EquipmentDay, park: Park, lang: str) -> pd.DataFrame:
    d = e.by_day
    names = _device_names(park, e.enterprise)
    return pd.DataFrame({t("eq.col.day", lang): d["day"].dt.strftime("%Y-%m-%d"),
                         t("eq.col.device", lang): d["device"].map(names), **_hours(d, lang)})


def shift_table(e: EquipmentDay, park: Park, lang: str) -> pd.DataFrame:
    d = e.by_shift
    names = _device_names(park, e.enterprise)
    if d.empty:
        return pd.DataFrame(columns=[t("eq.col.shift", lang), t("eq.col.device", lang)])
    shifts = [f"{a:%H:%M}–{b:%H:%M}" for a, b in zip(d["shift_start"], d["shift_end"], strict=True)]
    return pd.DataFrame({t("eq.col.shift", lang): shifts, t("eq.col.device", lang): d["device"].map(names),
                         **_hours(d, lang)})


def energy_table(e: EquipmentDay, park: Park, lang: str) -> pd.DataFrame:
    d = e.energy
    return pd.DataFrame({t("eq.col.device", lang): d["device"].map(_device_names(park, e.enterprise)),
                         t("eq.col.estimated", lang): _known(d, "estimated_kwh").round(3),
                         t("eq.col.factor", lang): d["factor"].round(4),
                         t("eq.col.reconciled", lang): _known(d, "reconciled_kwh").round(3),
                         t("col.coverage", lang): d["coverage"].round(4)})


# ---- rendering -----------------------------------------------------------------------------------------------
def _graph(fig: go.Figure, graph_id: str, title: str, height: int) -> dcc.Graph:
    fig.update_layout(margin={"l": 160, "r": 20, "t": 60, "b": 40},
                      legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"})
    return graph(fig, graph_id, title=title, height=height)


def render_status(status: pd.DataFrame, park: Park, now: pd.Timestamp, lang: str) -> list:
    n = f"{DEFAULT_PARAMS.gap_intervals:g}"
    warnings = []
    for r in status[status["silent"]].itertuples():
        label = f"{r.device} {r.name}".strip()
        warnings.append(t("eq.health.never", lang).format(device=label) if pd.isna(r.last_seen) else
                        t("eq.health.silent", lang).format(device=label, minutes=fmt(r.silent_min, 0), n=n))
    no_readings = status["last_seen"].isna().all()
    return [
        *([dmc.Alert(t("eq.no_readings", lang), color="gray", id="eq-no-readings")] if no_readings else []),
        html.H3(t("eq.devices.title", lang)),
        html.P(f"{t('eq.col.last_seen', lang)} · {now:%Y-%m-%d %H:%M} ({park.timezone}, {t('tz.note', lang)}); "
               f"{t('eq.devices.note', lang)}", className="note"),
        downloads.buttons("eq-devices", lang, devices := device_table(status, park, lang)),
        data_table("eq-devices-table", devices),
        html.H3(t("eq.health.title", lang)),
        html.Div(id="eq-health", children=[
            dmc.Alert(w, color="red", className="eq-warning") for w in warnings] or [
            dmc.Alert(t("eq.health.ok", lang), color="green")]),
        dmc.Alert(t("eq.health.battery", lang), color="gray", id="eq-battery-note", mt="xs"),
    ]


def _timeline(e: EquipmentDay, park: Park, lang: str) -> dcc.Graph:
    names = _device_names(park, e.enterprise)
    tl = e.timeline
    fig = go.Figure()
    for state in STATES:
        runs = tl[tl["state"] == state]
        fig.add_bar(y=runs["device"].map(names), base=local(runs["start"]).dt.strftime("%Y-%m-%dT%H:%M:%S"),
                    x=runs["seconds"] * 1000, orientation="h", name=t(f"eq.state.{state}", lang),
                    marker_color=STATE_COLORS[state],
                    customdata=list(zip(local(runs["start"]).dt.strftime("%H:%M"),
                                        local(runs["end"]).dt.strftime("%H:%M"), strict=True)),
                    hovertemplate="%{y}: %{customdata[0]}–%{customdata[1]}<extra>" + t(f"eq.state.{state}", lang)
                                  + "</extra>")
    day_end = e.start + pd.Timedelta("1D")
    fig.update_layout(barmode="overlay", xaxis={"type": "date", "range": [local(e.start), local(day_end)]},
                      yaxis={"autorange": "reversed"})
    return _graph(fig, "eq-timeline", f"{t('eq.timeline.title', lang)} · {e.start:%Y-%m-%d}",
                  height=140 + 36 * len(names))


def _util_chart(e: EquipmentDay, park: Park, lang: str) -> dcc.Graph:
    names = _device_names(park, e.enterprise)
    fig = go.Figure()
    for device, g in e.by_day.groupby("device", sort=False):
        fig.add_bar(x=g["day"].dt.strftime("%Y-%m-%d"), y=_known(g, "utilisation") * 100, name=names[device],
                    hovertemplate="%{x}: %{y:.1f}%<extra>" + names[device] + "</extra>")
    fig.update_layout(barmode="group", yaxis={"title": "%", "range": [0, 100]})
    return _graph(fig, "eq-util-chart", t("eq.chart.util", lang), height=320)


def render_day(e: EquipmentDay, park: Park, lang: str) -> list:
    period = period_text(e.start, e.end, park, lang)
    week = period_text(e.by_day["day"].min(), e.end, park, lang)
    week_known = bool((e.by_day["coverage"] > 0).any())
    out = [html.H3(t("eq.timeline.title", lang)), html.P(period, className="note")]
    if e.has_readings:
        out.append(_timeline(e, park, lang))
    else:
        out.append(dmc.Alert(t("eq.no_readings_day", lang), color="gray", id="eq-no-readings-day"))
    out += [html.H3(t("eq.util.day.title", lang)), html.P(week + "; " + t("eq.util.note", lang), className="note")]
    pct_cols = (t("eq.col.utilisation", lang), t("eq.col.running_share", lang), t("col.coverage", lang))
    if week_known:
        days = day_table(e, park, lang)
        out += [_util_chart(e, park, lang), downloads.buttons("eq-util-day", lang, days),
                data_table("eq-day-table", days, percent=pct_cols)]
    else:
        out.append(dmc.Alert(t("eq.no_readings_week", lang), color="gray"))
    if not e.has_readings:
        return out
    out += [html.H3(t("eq.util.shift.title", lang)), html.P(period, className="note")]
    if e.by_shift.empty:
        out.append(dmc.Alert(t("eq.no_shifts", lang), color="gray", id="eq-no-shifts"))
    else:
        shifts = shift_table(e, park, lang)
        out += [downloads.buttons("eq-util-shift", lang, shifts),
                data_table("eq-shift-table", shifts, percent=pct_cols)]
    rec = e.reconciliation
    cov = f"{t('kpi.coverage', lang)} {pct(e.metered_coverage)}"
    cards = [kpi(t("eq.energy.metered", lang), fmt(e.metered_kwh, 1), "kWh", cov, "eq-metered"),
             kpi(t("eq.energy.estimated", lang), fmt(_known(e.energy, "estimated_kwh").sum(min_count=1), 1), "kWh",
                 f"{t('kpi.coverage', lang)} {pct(e.energy['coverage'].mean())}", "eq-estimated")]
    if rec:
        cards += [kpi(t("eq.energy.ratio", lang), pct(rec.ratio), "", "", "eq-ratio"),
                  kpi(t("eq.energy.unattributed", lang), fmt(rec.unattributed_kwh, 1), "kWh", "", "eq-unattributed")]
    out += [html.H3(t("eq.energy.title", lang)), html.P(period + "; " + t("eq.energy.note", lang), className="note"),
            *([] if rec else [dmc.Alert(t("eq.energy.no_meter", lang), color="yellow")]),
            html.Div(cards, className="kpis"),
            downloads.buttons("eq-energy", lang, energy := energy_table(e, park, lang)),
            data_table("eq-energy-table", energy, percent=(t("col.coverage", lang),))]
    return out


def render_period(e: EquipmentDay, park: Park, lang: str) -> list:
    """Utilisation by day and estimated energy over a chosen period (`equipment_period`), with its coverage."""
    bracelet_cov = e.energy["coverage"].mean() if len(e.energy) else float("nan")
    note = (coverage_text(e.start, e.end, e.metered_coverage, park.timezone, lang)
            + f" · {t('eq.period.bracelets', lang)} {pct(bracelet_cov)}")
    out = [html.H3(t("eq.period.title", lang)), html.P(note, className="note", id="eq-period-coverage")]
    pct_cols = (t("eq.col.utilisation", lang), t("eq.col.running_share", lang), t("col.coverage", lang))
    if e.by_day.empty or not (e.by_day["coverage"] > 0).any():
        out.append(dmc.Alert(t("eq.period.none", lang), color="gray", id="eq-period-none"))
    else:
        days = day_table(e, park, lang)
        chart = _util_chart(e, park, lang)
        chart.id = "eq-period-util-chart"
        chart.figure.update_layout(title=t("eq.period.util", lang))
        out += [chart, downloads.buttons("eq-period-day", lang, days),
                data_table("eq-period-day-table", days, percent=pct_cols)]
    rec = e.reconciliation
    cards = [kpi(t("eq.energy.metered", lang), fmt(e.metered_kwh, 1), "kWh",
                 f"{t('kpi.coverage', lang)} {pct(e.metered_coverage)}", "eq-period-metered"),
             kpi(t("eq.energy.estimated", lang), fmt(_known(e.energy, "estimated_kwh").sum(min_count=1), 1), "kWh",
                 f"{t('kpi.coverage', lang)} {pct(bracelet_cov)}", "eq-period-estimated")]
    if rec:
        cards += [kpi(t("eq.energy.ratio", lang), pct(rec.ratio), "", "", "eq-period-ratio"),
                  kpi(t("eq.energy.unattributed", lang), fmt(rec.unattributed_kwh, 1), "kWh", "",
                      "eq-period-unattributed")]
    out += [html.H3(t("eq.energy.title", lang)), html.P(t("eq.energy.note", lang), className="note"),
            *([] if rec else [dmc.Alert(t("eq.energy.no_meter", lang), color="yellow")]),
            html.Div(cards, className="kpis"),
            downloads.buttons("eq-period-energy", lang, energy := energy_table(e, park, lang)),
            data_table("eq-period-energy-table", energy, percent=(t("col.coverage", lang),))]
    return out


def equipment_period(ent, start: pd.Timestamp, end: pd.Timestamp) -> EquipmentDay:
    """One enterprise's bracelets over park-local [start, end), read through its scope and computed by the wing
    (collectors.bracelet_analytics.equipment_period: utilisation per day in one pass over each device's readings,
    the estimated energy over the period reconciled with the metered electricity)."""
    devices = ent.devices()
    points = ent.points("current", start - bracelets.lead_time(devices), end)
    metered = ent.aggregate("energy", start, end, "day", where={"carrier": "electricity"})
    return bracelets.equipment_period(ent.enterprise, devices, points, metered, start, end)


def period_of(ent, picked) -> EquipmentDay:
    """The figures of the picked period (this month to now when none; PeriodError when the value is not a range),
    shared briefly by the users of one scope (the page and its downloads)."""
    now = ent.scope.now().tz_convert(ent.scope.park.tz)
    period = picked_period(picked, now, ent.scope.park.tz, MAX_DAYS)
    if period is None:
        start, end = pd.Timestamp(now.year, now.month, 1, tz=now.tz), now.floor("15min")
        if end <= start:
            raise PeriodError("period.empty")
        period = (start, end)
    key = f"equipment-period:{period[0].isoformat()}/{period[1].isoformat()}:{now.floor('15min').isoformat()}"
    return ent.memo(key, lambda: equipment_period(ent, *period))


# ---- page ----------------------------------------------------------------------------------------------------
def layout(scope, lang: str) -> html.Div:
    fitted = [e for e in scope.enterprises() if scope.enterprise(e.id).devices()]
    if not fitted:
        key = "eq.no_devices" if scope.role is Role.ENTERPRISE else "eq.none"
        return html.Div(dmc.Alert(t(key, lang), color="gray", id="eq-none"))
    days = recent_days(scope.now(), scope.park.tz)
    day = dmc.Select(id="eq-day", label=t("eq.day", lang), value=days[0], allowDeselect=False, w=180,
                     data=[{"value": d, "label": d} for d in days])
    return html.Div([
        dmc.Group([enterprise_control("eq-enterprise", scope, fitted, lang), day], align="flex-end"),
        dcc.Interval(id="eq-tick", interval=60_000),
        dcc.Loading(html.Div(id="eq-status"), delay_show=300),
        dcc.Loading(html.Div(id="eq-body"), delay_show=300),
        dmc.Group([period_picker("eq-range", scope.now(), scope.park.tz, lang)], align="flex-end", mt="md"),
        dcc.Loading(html.Div(id="eq-period"), delay_show=300),
    ])


def day_of(ent, day: str | None) -> EquipmentDay | None:
    """The figures of `day` (today when it is not one of the days offered; None before today's first quarter hour),
    shared briefly by the users of one scope (the page and its downloads)."""
    now = ent.scope.now()
    days = recent_days(now, ent.scope.park.tz)
    day = day if day in days else days[0]
    return ent.memo(f"equipment:{day}:{now.floor('15min').isoformat()}", lambda: ent.equipment_day(day, now))


def register(callbacks) -> None:
    @callbacks.callback(Output("eq-status", "children"), Input("eq-enterprise", "value"),
                        Input("eq-tick", "n_intervals"), action="status")
    def status(scope, lang: str, asked: str | None, _tick: int | None):
        ent = scope.enterprise(asked)
        if ent is None:
            return refused(lang, "eq-refused")
        frame = ent.device_status()
        if frame.empty:
            return dmc.Alert(t("eq.no_devices", lang), color="gray", id="eq-none")
        return render_status(frame, scope.park, scope.now(), lang)

    @callbacks.callback(Output("eq-body", "children"), Input("eq-enterprise", "value"), Input("eq-day", "value"),
                        action="day")
    def body(scope, lang: str, asked: str | None, day: str | None):
        ent = scope.enterprise(asked)
        if ent is None:
            return refused(lang, "eq-body-refused")
        if not ent.devices():
            return dmc.Alert(t("eq.no_devices", lang), color="gray")
        e = day_of(ent, day)
        if e is None:
            return dmc.Alert(t("eq.empty_day", lang), color="gray")
        return render_day(e, scope.park, lang)

    @callbacks.callback(Output("eq-period", "children"), Input("eq-enterprise", "value"), Input("eq-range", "value"),
                        action="period")
    def period(scope, lang: str, asked: str | None, picked=None):
        ent = scope.enterprise(asked)
        if ent is None:
            return refused(lang, "eq-period-refused")
        if not ent.devices():
            return dmc.Alert(t("eq.no_devices", lang), color="gray")
        try:
            e = period_of(ent, picked)
        except PeriodError as exc:
            return dmc.Alert(exc.message(lang), color="red", id="eq-period-error")
        return render_period(e, scope.park, lang)

    for prefix, name, build in (("eq-period-day", "equipment-utilisation-by-day", day_table),
                                ("eq-period-energy", "equipment-energy", energy_table)):
        def period_table(scope, lang: str, asked: str | None, picked=None, build=build) -> downloads.Export | None:
            ent = scope.enterprise(asked)
            if ent is None or not ent.devices():
                return None
            try:
                e = period_of(ent, picked)
            except PeriodError:
                return None
            return downloads.Export(build(e, scope.park, lang), label=ent.enterprise,
                                    coverage=None if pd.isna(e.metered_coverage) else float(e.metered_coverage),
                                    **downloads.period(e.start, e.end, scope.park.timezone))

        callbacks.download(prefix, name, period_table, State("eq-enterprise", "value"), State("eq-range", "value"))

    def devices(scope, lang: str, asked: str | None) -> tuple[str, pd.DataFrame] | None:
        ent = scope.enterprise(asked)
        return (ent.enterprise, device_table(ent.device_status(), scope.park, lang)) if ent else None

    callbacks.download("eq-devices", "equipment-devices", devices, State("eq-enterprise", "value"))
    for prefix, name, build in (("eq-util-day", "equipment-utilisation-by-day", day_table),
                                ("eq-util-shift", "equipment-utilisation-by-shift", shift_table),
                                ("eq-energy", "equipment-energy", energy_table)):
        def table(scope, lang: str, asked: str | None, day: str | None,
                  build=build) -> downloads.Export | None:
            ent = scope.enterprise(asked)
            e = day_of(ent, day) if ent else None
            if not e:
                return None
            start = e.start - pd.Timedelta(days=6) if build is day_table else e.start  # by day: the week to the day
            return downloads.Export(build(e, scope.park, lang), label=ent.enterprise,
                                    **downloads.period(start, e.end, scope.park.timezone))

        callbacks.download(prefix, name, table, State("eq-enterprise", "value"), State("eq-day", "value"))
