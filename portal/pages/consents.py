"""Consents (数据授权, a bank's landing page): the enterprises that granted this bank consent to see their energy and
carbon data, and how consent works.  Until the evidence-pack issue records consents, no enterprise has granted any:
the page says so, in both languages, as information and not as an error."""

from __future__ import annotations

import dash_mantine_components as dmc
from dash import html

from portal.auth import Role
from portal.i18n import register as register_text
from portal.i18n import t

PATH = "/consents"
TITLE_KEY = "nav.consents"
ROLES = {Role.BANK}

TEXT = {
    "nav.consents": {"zh-CN": "数据授权", "en": "Consents"},
    "consents.title": {"zh-CN": "企业数据授权", "en": "Enterprise data consents"},
    "consents.none": {"zh-CN": "目前还没有企业向贵行授权查看其能耗与碳排放数据。",
                      "en": "No enterprise has granted your bank consent to see its energy and carbon data yet."},
    "consents.how": {
        "zh-CN": "授权如何运作：企业在本平台上向指定银行授予授权（用于绿色信贷等用途），并可随时撤回。授权生效后，"
                 "该企业会出现在本页，贵行即可查看其能耗、碳排放及数据完整率；未授权企业的数据不会向贵行显示。",
        "en": "How consent works: an enterprise grants a named bank consent on this platform (for a green loan, for "
              "example) and may withdraw it at any time.  Once consent is in force the enterprise appears on this "
              "page and your bank can see its energy, emissions and data coverage; data of enterprises without "
              "consent is never shown to your bank."},
    "consents.granted": {"zh-CN": "已授权企业", "en": "Enterprises with consent in force"},
}
register_text(TEXT)


def layout(scope, lang: str) -> html.Div:
    names = scope.names(lang)
    granted = [names[e] for e in sorted(scope.consents) if e in names]
    body = ([dmc.Alert(t("consents.none", lang), color="blue", variant="light", id="consents-none")] if not granted
            else [html.H4(t("consents.granted", lang)),
                  html.Ul([html.Li(n) for n in granted], id="consents-list")])
    return html.Div([html.H3(t("consents.title", lang)), *body,
                     html.P(t("consents.how", lang), className="note", id="consents-how")])
