"""Consents (数据授权, a bank's landing page): the bank's consents with their state and expiry, a form to ask an
enterprise for consent, the signed evidence pack of a consented enterprise and period to download, and the packs
issued so far.  Everything goes through the request's scope (consent_list, consent_request, consent_decide,
evidence_pack, evidence_packs); docs/evidence.md."""

from __future__ import annotations

import dash_mantine_components as dmc
import pandas as pd
from dash import ALL, Input, Output, State, dcc, html, no_update
from dash import ctx as dash_ctx
from dash.exceptions import PreventUpdate

from portal.auth import Role
from portal.i18n import register as register_text
from portal.i18n import t

PATH = "/consents"
TITLE_KEY = "nav.consents"
ROLES = {Role.BANK, Role.ADMIN}  # the administrator oversees every consent (and may not request or build)

TEXT = {
    "nav.consents": {"zh-CN": "数据授权", "en": "Consents"},
    "consents.title": {"zh-CN": "企业数据授权", "en": "Enterprise data consents"},
    "consents.none": {"zh-CN": "目前还没有企业向贵行授权查看其能耗与碳排放数据。",
                      "en": "No enterprise has granted your bank consent to see its energy and carbon data yet."},
    "consents.how": {
        "zh-CN": "授权如何运作：贵行在本页向企业提出授权申请（用途、数据范围、月份和有效期），"
                 "企业在本平台上同意或拒绝，双方均可随时撤回。授权生效后，贵行可下载该企业在授权月份内的签名证据包；未授权企业的数据不会向贵行显示。",
        "en": "How consent works: your bank asks an enterprise on this page (purpose, data, months and expiry); the "
              "enterprise grants or refuses on this platform, and either side may revoke at any time.  While consent "
              "is in force your bank can download the enterprise's signed evidence pack for the consented months; "
              "data of enterprises without consent is never shown to your bank."},
    "consents.granted": {"zh-CN": "已授权企业", "en": "Enterprises with consent in force"},
    "consents.mine": {"zh-CN": "授权申请与授权", "en": "Requests and consents"},
    "consents.col.id": {"zh-CN": "编号", "en": "No."},
    "consents.col.enterprise": {"zh-CN": "企业", "en": "Enterprise"},
    "consents.col.purpose": {"zh-CN": "用途", "en": "Purpose"},
    "consents.col.data": {"zh-CN": "数据", "en": "Data"},
    "consents.col.months": {"zh-CN": "月份", "en": "Months"},
    "consents.col.state": {"zh-CN": "状态", "en": "State"},
    "consents.col.period": {"zh-CN": "统计期", "en": "Period"},
    "consents.col.key": {"zh-CN": "签名密钥", "en": "Signing key"},
    "consents.col.generated": {"zh-CN": "签发时间", "en": "Issued"},
    "consents.col.expires": {"zh-CN": "有效期至", "en": "Expires"},
    "consents.revoke": {"zh-CN": "撤回", "en": "Revoke"},
    "consents.state.requested": {"zh-CN": "待企业确认", "en": "requested"},
    "consents.state.granted": {"zh-CN": "已授权", "en": "granted"},
    "consents.state.refused": {"zh-CN": "已拒绝", "en": "refused"},
    "consents.state.revoked": {"zh-CN": "已撤回", "en": "revoked"},
    "consents.state.expired": {"zh-CN": "已过期", "en": "expired"},
    "consents.purpose.loan_application": {"zh-CN": "贷款申请", "en": "loan application"},
    "consents.purpose.post_loan_monitoring": {"zh-CN": "贷后监测", "en": "post-loan monitoring"},
    "consents.data.energy": {"zh-CN": "能耗", "en": "energy"},
    "consents.data.emissions": {"zh-CN": "碳排放", "en": "emissions"},
    "consents.data.utilisation": {"zh-CN": "设备开工率", "en": "utilisation"},
    "consents.data.savings": {"zh-CN": "节能量", "en": "savings"},
    "consents.data.risk": {"zh-CN": "风险指标", "en": "risk indicators"},
    "consents.request": {"zh-CN": "申请授权", "en": "Ask for consent"},
    "consents.ask": {"zh-CN": "企业（统一社会信用代码或园区企业编号）",
                     "en": "Enterprise (unified social credit code, or the park's enterprise id)"},
    "consents.from": {"zh-CN": "起始月份（YYYY-MM）", "en": "First month (YYYY-MM)"},
    "consents.to": {"zh-CN": "截止月份（YYYY-MM）", "en": "Last month (YYYY-MM)"},
    "consents.expires": {"zh-CN": "有效期至（YYYY-MM-DD）", "en": "Expires (YYYY-MM-DD)"},
    "consents.project": {"zh-CN": "融资项目开工日期（节能量用，YYYY-MM-DD）",
                         "en": "Financed project's start (for savings, YYYY-MM-DD)"},
    "consents.submit": {"zh-CN": "提交申请", "en": "Send request"},
    "consents.requested": {"zh-CN": "已提交申请 #{id}，等待企业确认。",
                           "en": "Request #{id} sent; the enterprise decides."},
    "consents.pack": {"zh-CN": "下载证据包", "en": "Download an evidence pack"},
    "consents.period": {"zh-CN": "统计期（年 2024 或月 2024-03）", "en": "Period (a year 2024 or a month 2024-03)"},
    "consents.build": {"zh-CN": "生成并下载", "en": "Build and download"},
    "consents.built": {"zh-CN": "证据包已生成（密钥 {key}）。", "en": "Pack built (key {key})."},
    "consents.packs": {"zh-CN": "已签发的证据包", "en": "Packs issued"},
    "consents.no_packs": {"zh-CN": "尚未签发证据包。", "en": "No pack issued yet."},
}
register_text(TEXT)
PURPOSES = ("loan_application", "post_loan_monitoring")
DATA = ("energy", "emissions", "utilisation", "savings", "risk")


def consent_table(scope, lang: str):
    rows = scope.consent_list()
    if not rows:
        return "" if scope.consents else dmc.Alert(t("consents.none", lang), color="blue", variant="light",
                                                   id="consents-none")
    names = scope.names(lang)  # names of enterprises with consent in force; the others by the id asked for
    now = scope.now()
    head = html.Tr([html.Th(t(f"consents.col.{c}", lang)) for c in
                    ("id", "enterprise", "purpose", "data", "months", "state", "expires")] + [html.Th("")])
    body = []
    for c in rows:
        status = c.status(now)
        body.append(html.Tr([
            html.Td(str(c.id)), html.Td(names.get(c.enterprise, c.enterprise)),
            html.Td(t(f"consents.purpose.{c.purpose}", lang)),
            html.Td(", ".join(t(f"consents.data.{d}", lang) for d in c.data)), html.Td(c.periods),
            html.Td(t(f"consents.state.{status}", lang), className=f"state-{status}"),
            html.Td(pd.Timestamp(c.expires_at).tz_convert(scope.timezone).strftime("%Y-%m-%d %H:%M")),
            html.Td(dmc.Button(t("consents.revoke", lang), id={"type": "consent-revoke", "id": c.id}, size="xs",
                               variant="outline", color="red", n_clicks=0)
                    if status in ("requested", "granted") else ""),
        ], id=f"consent-row-{c.id}"))
    return html.Table([html.Thead(head), html.Tbody(body)], className="table", id="consents-list")


def packs_table(scope, lang: str):
    log = scope.evidence_packs()
    if log.empty:
        return html.P(t("consents.no_packs", lang), className="note")
    return html.Table([html.Thead(html.Tr([html.Th(t(f"consents.col.{h}", lang)) for h in
                                           ("id", "enterprise", "period", "key", "generated")])),
                       html.Tbody([html.Tr([html.Td(str(r.id)), html.Td(r.enterprise), html.Td(r.period),
                                            html.Td(r.key_id[:16] + "…"),
                                            html.Td(pd.Timestamp(r.generated_at).tz_convert(scope.timezone)
                                                    .strftime("%Y-%m-%d %H:%M"))])
                                   for r in log.itertuples()])], className="table", id="consents-packs")


def layout(scope, lang: str) -> html.Div:
    names = scope.names(lang)  # the enterprises with consent in force: a bank never sees the park's roster
    granted = sorted(scope.consents)
    now = scope.now()
    form = dmc.Stack(gap="xs", children=[
        dmc.TextInput(id="consent-enterprise", label=t("consents.ask", lang)),
        dmc.Select(id="consent-purpose", label=t("consents.col.purpose", lang), value=PURPOSES[0],
                   data=[{"value": p, "label": t(f"consents.purpose.{p}", lang)} for p in PURPOSES]),
        dcc.Checklist(id="consent-data", value=["energy", "emissions", "utilisation"], inline=True,
                      options=[{"value": d, "label": t(f"consents.data.{d}", lang)} for d in DATA]),
        dmc.Group([dmc.TextInput(id="consent-from", label=t("consents.from", lang), value=f"{now.year}-01"),
                   dmc.TextInput(id="consent-to", label=t("consents.to", lang), value=f"{now.year}-12"),
                   dmc.TextInput(id="consent-expires", label=t("consents.expires", lang),
                                 value=f"{now.year + 1}-12-31"),
                   dmc.TextInput(id="consent-project", label=t("consents.project", lang), value="")]),
        dmc.Button(t("consents.submit", lang), id="consent-submit", n_clicks=0, w=200),
    ])
    download = dmc.Stack(gap="xs", children=[
        dmc.Select(id="consent-pack-enterprise", label=t("consents.col.enterprise", lang),
                   data=[{"value": e, "label": names.get(e, e)} for e in granted],
                   value=granted[0] if granted else None),
        dmc.TextInput(id="consent-pack-period", label=t("consents.period", lang), value=str(now.year)),
        dmc.Button(t("consents.build", lang), id="consent-pack-build", n_clicks=0, w=200, disabled=not granted),
        html.Div(id="consent-pack-message"), dcc.Download(id="consent-pack-download"),
    ])
    return html.Div([
        html.H3(t("consents.title", lang)),
        html.H4(t("consents.granted", lang)),
        html.Ul([html.Li(names.get(e, e)) for e in granted], id="consents-granted") if granted else html.Div(),
        html.H4(t("consents.mine", lang)), html.Div(consent_table(scope, lang), id="consents-table"),
        html.Div(id="consents-message"),
        html.H4(t("consents.pack", lang)), download,
        html.H4(t("consents.request", lang)), form,
        html.H4(t("consents.packs", lang)), html.Div(packs_table(scope, lang), id="consents-packs-box"),
        html.P(t("consents.how", lang), className="note", id="consents-how"),
    ])


def register(callbacks) -> None:
    from portal.evidence.consent import ConsentError, NoConsent
    from portal.evidence.pack import PackError

    @callbacks.callback(Output("consents-table", "children"), Output("consents-message", "children"),
                        Input("consent-submit", "n_clicks"), Input({"type": "consent-revoke", "id": ALL}, "n_clicks"),
                        State("consent-enterprise", "value"), State("consent-purpose", "value"),
                        State("consent-data", "value"), State("consent-from", "value"), State("consent-to", "value"),
                        State("consent-expires", "value"), State("consent-project", "value"),
                        prevent_initial_call=True, action="consent")
    def act(scope, lang, _submit, _revokes, enterprise, purpose, data, first, last, expires, project=None):
        trigger = dash_ctx.triggered_id
        if not dash_ctx.triggered or not dash_ctx.triggered[0]["value"]:
            raise PreventUpdate
        try:
            if isinstance(trigger, dict) and trigger.get("type") == "consent-revoke":
                scope.consent_decide(int(trigger["id"]), "revoke")
                message = ""
            else:
                try:
                    expiry = pd.Timestamp(str(expires or "")).tz_localize(scope.timezone) + pd.Timedelta(days=1)
                except ValueError:
                    raise ConsentError(f"expiry {expires!r} is not a date (YYYY-MM-DD)") from None
                c = scope.consent_request(enterprise or "", purpose or "", list(data or []), first or "",
                                          last or "", expiry, project_start=(project or "").strip() or None)
                message = t("consents.requested", lang).format(id=c.id)
        except ConsentError as exc:
            return no_update, dmc.Alert(str(exc), color="red", id="consents-error")
        return consent_table(scope, lang), dmc.Alert(message, color="green") if message else ""

    @callbacks.callback(Output("consent-pack-download", "data"), Output("consent-pack-message", "children"),
                        Output("consents-packs-box", "children"),
                        Input("consent-pack-build", "n_clicks"), State("consent-pack-enterprise", "value"),
                        State("consent-pack-period", "value"), prevent_initial_call=True, action="evidence_pack")
    def build(scope, lang, clicks, enterprise, period):
        if not clicks:
            raise PreventUpdate
        try:
            blob, manifest = scope.evidence_pack(enterprise or "", (period or "").strip())
        except (NoConsent, PackError) as exc:
            return no_update, dmc.Alert(str(exc), color="red", id="consent-pack-error"), no_update
        from portal.evidence.pack import pack_name

        name = pack_name(scope.park.id, enterprise, manifest["period"]["label"])
        return (dcc.send_bytes(blob, name), dmc.Alert(t("consents.built", lang).format(key=manifest["key_id"][:16]),
                                                      color="green"), packs_table(scope, lang))
