"""Sharing (数据共享, an enterprise's page): which banks asked for or may see which of its data, for which months and
until when; grant or refuse a request, revoke a consent.  Through the request's scope only (consent_list,
consent_decide); docs/evidence.md."""

from __future__ import annotations

import dash_mantine_components as dmc
import pandas as pd
from dash import ALL, Input, Output, html, no_update
from dash import ctx as dash_ctx
from dash.exceptions import PreventUpdate

from portal.auth import Role
from portal.i18n import register as register_text
from portal.i18n import t

PATH = "/sharing"
TITLE_KEY = "nav.sharing"
ROLES = {Role.ENTERPRISE, Role.ADMIN}  # the administrator decides on an enterprise's written instruction

TEXT = {
    "nav.sharing": {"zh-CN": "数据共享", "en": "Data sharing"},
    "sharing.title": {"zh-CN": "谁可以查看本企业的数据", "en": "Who may see your data"},
    "sharing.none": {"zh-CN": "目前没有银行申请或获得查看本企业数据的授权。",
                     "en": "No bank has asked for or been granted consent to see your data."},
    "sharing.bank": {"zh-CN": "银行", "en": "Bank"},
    "sharing.grant": {"zh-CN": "同意", "en": "Grant"},
    "sharing.refuse": {"zh-CN": "拒绝", "en": "Refuse"},
    "sharing.revoke": {"zh-CN": "撤回", "en": "Revoke"},
    "sharing.how": {
        "zh-CN": "银行只能在您同意的月份和数据范围内、在有效期内查看本企业数据并下载签名证据包；您可随时撤回。"
                 "每一次申请、同意、拒绝、撤回和下载都记入审计日志。",
        "en": "A bank sees your data, and downloads a signed evidence pack, only for the months and data you "
              "granted and until the consent expires; you may revoke at any time.  Every request, grant, refusal, "
              "revocation and download is in the audit log."},
}
register_text(TEXT)


def sharing_table(scope, lang: str):
    rows = scope.consent_list()
    if not rows:
        return dmc.Alert(t("sharing.none", lang), color="blue", variant="light", id="sharing-none")
    now = scope.now()
    head = html.Tr([html.Th(t(k, lang)) for k in ("consents.col.id", "sharing.bank", "consents.col.purpose",
                                                  "consents.col.data", "consents.col.months", "consents.col.state",
                                                  "consents.col.expires")] + [html.Th("")])
    body = []
    for c in rows:
        status = c.status(now)
        actions = {"requested": ("grant", "refuse", "revoke"), "granted": ("revoke",)}.get(status, ())
        body.append(html.Tr([
            html.Td(str(c.id)), html.Td(c.bank), html.Td(t(f"consents.purpose.{c.purpose}", lang)),
            html.Td(", ".join(t(f"consents.data.{d}", lang) for d in c.data)), html.Td(c.periods),
            html.Td(t(f"consents.state.{status}", lang), className=f"state-{status}"),
            html.Td(pd.Timestamp(c.expires_at).tz_convert(scope.timezone).strftime("%Y-%m-%d %H:%M")),
            html.Td(dmc.Group([dmc.Button(t(f"sharing.{a}", lang), id={"type": "sharing-action", "action": a,
                                                                       "id": c.id},
                                          size="xs", n_clicks=0, variant="outline",
                                          color={"grant": "teal", "refuse": "orange", "revoke": "red"}[a])
                               for a in actions])),
        ], id=f"sharing-row-{c.id}"))
    return html.Table([html.Thead(head), html.Tbody(body)], className="table", id="sharing-list")


def layout(scope, lang: str) -> html.Div:
    return html.Div([html.H3(t("sharing.title", lang)), html.Div(sharing_table(scope, lang), id="sharing-table"),
                     html.Div(id="sharing-message"), html.P(t("sharing.how", lang), className="note")])


def register(callbacks) -> None:
    from portal.evidence.consent import ConsentError

    @callbacks.callback(Output("sharing-table", "children"), Output("sharing-message", "children"),
                        Input({"type": "sharing-action", "action": ALL, "id": ALL}, "n_clicks"),
                        prevent_initial_call=True, action="consent_decide")
    def decide(scope, lang, _clicks):
        trigger = dash_ctx.triggered_id
        if not isinstance(trigger, dict) or not dash_ctx.triggered[0]["value"]:
            raise PreventUpdate
        try:
            scope.consent_decide(int(trigger["id"]), str(trigger["action"]))
        except ConsentError as exc:
            return no_update, dmc.Alert(str(exc), color="red", id="sharing-error")
        return sharing_table(scope, lang), ""
