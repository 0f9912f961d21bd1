"""Warnings (预警): quota thresholds, silent meters and quarantined data in the user's scope (the administrator: the
whole park; an enterprise user: its own), each with severity, enterprise, what, since when and an acknowledge
action.  An acknowledged warning stays listed with who acknowledged it and when.  The rules: portal.alerts."""

from __future__ import annotations

import dash_mantine_components as dmc
import pandas as pd
from dash import ALL, Input, Output, html
from dash import ctx as dash_ctx
from dash.exceptions import PreventUpdate

from portal import downloads
from portal.alerts import QUARANTINE_WINDOW, SEVERITIES, SILENT_AFTER_INTERVALS, Ack, Alert
from portal.auth import Role
from portal.components import completeness_notes, coverage_badge
from portal.i18n import register as register_text
from portal.i18n import t

PATH = "/warnings"
TITLE_KEY = "nav.warnings"
ROLES = {Role.ADMIN, Role.ENTERPRISE}
SEVERITY_COLOURS = {"critical": "red", "warning": "orange", "info": "blue"}

TEXT = {
    "nav.warnings": {"zh-CN": "预警", "en": "Warnings"},
    "warnings.title": {"zh-CN": "当前预警", "en": "Current warnings"},
    "warnings.as_of": {"zh-CN": "截至 {now}（园区当地时间）", "en": "As of {now} (park local time)"},
    "warnings.rules": {
        "zh-CN": "规则：碳配额使用达 80% / 100%（本年 1 月 1 日至今，按配额方案的核算口径）；"
                 "计量表超过 {n} 个计量区间无读数；近 {hours} 小时内被隔离的读数；设备手环无数据；"
                 "近 24 小时设备在班次外运行。",
        "en": "Rules: allowances 80% / 100% used (1 January to now, emissions on the quota plan's basis); a meter "
              "without a reading for more than {n} intervals; readings quarantined in the last {hours} h; a silent "
              "equipment bracelet; a machine running outside its shifts in the last 24 h."},
    "warnings.none": {"zh-CN": "当前没有预警", "en": "No current warnings"},
    "warnings.open": {"zh-CN": "未确认", "en": "unacknowledged"},
    "warnings.ack": {"zh-CN": "确认", "en": "Acknowledge"},
    "warnings.acked": {"zh-CN": "已由 {by} 于 {at} 确认", "en": "Acknowledged by {by} at {at}"},
    "warnings.acked_by": {"zh-CN": "{by} 已确认", "en": "Acknowledged by {by}"},
    "warnings.col.severity": {"zh-CN": "级别", "en": "Severity"},
    "warnings.col.kind": {"zh-CN": "类型", "en": "Kind"},
    "warnings.col.what": {"zh-CN": "内容", "en": "What"},
    "warnings.col.since": {"zh-CN": "起始时间", "en": "Since"},
    "warnings.col.status": {"zh-CN": "确认状态", "en": "Acknowledgement"},
    "warnings.col.key": {"zh-CN": "预警编号", "en": "Warning key"},
}
register_text(TEXT)


def _ack_text(ack: Ack | None, scope, lang: str) -> str:
    if ack is None:
        return t("warnings.open", lang)
    at = pd.Timestamp(ack.at).tz_convert(scope.park.tz).strftime("%Y-%m-%d %H:%M")
    return t("warnings.acked", lang).format(by=ack.by, at=at)


def warnings_table(alerts: list[Alert], acks: dict[str, Ack], scope, lang: str) -> pd.DataFrame:
    """The warnings as downloaded: translated headers, park-local times."""
    names = scope.names(lang)
    return pd.DataFrame({
        t("warnings.col.severity", lang): [t(f"alert.severity.{a.severity}", lang) for a in alerts],
        t("warnings.col.kind", lang): [t(f"alert.kind.{a.kind}", lang) for a in alerts],
        t("col.enterprise", lang): [names.get(a.enterprise, "—") for a in alerts],
        t("warnings.col.what", lang): [a.what(lang) for a in alerts],
        t("warnings.col.since", lang): [a.since_text() for a in alerts],
        t("warnings.col.status", lang): [_ack_text(acks.get(a.key), scope, lang) for a in alerts],
        t("warnings.col.key", lang): [a.key for a in alerts],
    }, columns=[t(k, lang) for k in ("warnings.col.severity", "warnings.col.kind", "col.enterprise",
                                     "warnings.col.what", "warnings.col.since", "warnings.col.status",
                                     "warnings.col.key")])


def _row(alert: Alert, ack: Ack | None, names: dict[str, str], scope, lang: str) -> html.Tr:
    if ack is None:
        status = dmc.Button(t("warnings.ack", lang), id={"type": "warning-ack", "key": alert.key}, size="xs",
                            variant="light", className="warning-ack")
    else:
        at = pd.Timestamp(ack.at).tz_convert(scope.park.tz).strftime("%Y-%m-%d %H:%M")
        status = html.Div(className="warning-acked", children=[
            dmc.Text(t("warnings.acked_by", lang).format(by=ack.by), size="sm"),
            dmc.Text(at, size="xs", c="dimmed")])
    nowrap = {"whiteSpace": "nowrap"}
    return html.Tr(className="warning-row" + (" acknowledged" if ack else ""), **{"data-key": alert.key},
                   style={"opacity": 0.7} if ack else None, children=[
        html.Td(dmc.Badge(t(f"alert.severity.{alert.severity}", lang), color=SEVERITY_COLOURS[alert.severity],
                          variant="light" if ack else "filled", style={"overflow": "visible"}), style=nowrap),
        html.Td(t(f"alert.kind.{alert.kind}", lang), style=nowrap),
        html.Td(names.get(alert.enterprise, "—"), style=nowrap),
        html.Td(alert.what(lang)),
        html.Td(alert.since_text(), style=nowrap),
        html.Td(status, style=nowrap),
    ])


def warnings_list(scope, lang: str, alerts: list | None = None) -> list:
    """The summary and the table of the user's current warnings with their acknowledgements."""
    alerts = scope.alerts() if alerts is None else alerts
    acks = scope.acknowledgements()
    if not alerts:
        return [dmc.Alert(t("warnings.none", lang), color="green", id="warnings-none")]
    counts = [dmc.Badge(f"{t(f'alert.severity.{s}', lang)} {sum(a.severity == s for a in alerts)}",
                        color=SEVERITY_COLOURS[s], size="lg", variant="light") for s in SEVERITIES]
    open_count = sum(a.key not in acks for a in alerts)
    counts.append(dmc.Badge(f"{t('warnings.open', lang)} {open_count}", color="gray", size="lg", variant="outline",
                            id="warnings-open-count"))
    names = scope.names(lang)
    head = html.Thead(html.Tr([html.Th(t(k, lang), style={"textAlign": "left"}) for k in (
        "warnings.col.severity", "warnings.col.kind", "col.enterprise", "warnings.col.what", "warnings.col.since",
        "warnings.col.status")]))
    body = html.Tbody([_row(a, acks.get(a.key), names, scope, lang) for a in alerts])
    return [dmc.Group(counts, id="warnings-summary", my="sm"),
            dmc.Table([head, body], id="warnings-table", striped=True, highlightOnHover=True, withTableBorder=True)]


def _threshold(scope) -> float:
    return getattr(scope.park, "coverage_threshold", 0.9)


def quota_coverages(alerts: list, scope, lang: str) -> dict[str, float]:
    """The year-to-date data coverage behind each quota warning, by enterprise name: a warning computed on thin
    data says so (the completeness badge)."""
    names = scope.names(lang)
    return {names.get(a.subject, a.subject): float(a.detail["coverage"]) for a in alerts
            if a.kind.startswith("quota_") and "coverage" in a.detail}


def layout(scope, lang: str) -> html.Div:
    now = scope.now().strftime("%Y-%m-%d %H:%M")
    alerts = scope.alerts()
    rules = t("warnings.rules", lang).format(n=SILENT_AFTER_INTERVALS,
                                             hours=int(QUARANTINE_WINDOW.total_seconds() // 3600))
    return html.Div([
        html.H3([t("warnings.title", lang), coverage_badge(quota_coverages(alerts, scope, lang), _threshold(scope),
                                                           lang, "warnings-complete")]),
        html.P([t("warnings.as_of", lang).format(now=now), html.Br(), rules], className="note"),
        downloads.buttons("warnings", lang, pd.DataFrame(index=range(len(alerts)))),  # none: no header-only file
        html.Div(warnings_list(scope, lang, alerts), id="warnings-list"),
    ])


def register(callbacks) -> None:
    @callbacks.callback(Output("warnings-list", "children"), Input({"type": "warning-ack", "key": ALL}, "n_clicks"),
                        prevent_initial_call=True, action="acknowledge")
    def ack(scope, lang: str, _clicks: list):
        trigger = dash_ctx.triggered_id
        if not isinstance(trigger, dict) or not dash_ctx.triggered[0]["value"]:
            raise PreventUpdate  # buttons appearing in a re-rendered list, not a click
        scope.acknowledge(str(trigger.get("key")))  # Forbidden (403, audit-logged) when not one of its warnings
        return warnings_list(scope, lang)

    def table(scope, lang: str) -> downloads.Export:
        alerts = scope.alerts()
        return downloads.Export(warnings_table(alerts, scope.acknowledgements(), scope, lang),
                                notes=completeness_notes(quota_coverages(alerts, scope, lang), _threshold(scope), lang))

    callbacks.download("warnings", "warnings", table)
