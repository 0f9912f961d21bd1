"""Table downloads (CSV or Excel) built on the server from the user's own scoped data, each logged in the audit
log: who downloaded what, when, how many rows."""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd
from dash import Input, Output, State, dcc, html
from dash import ctx as dash_ctx
from flask_login import current_user

from portal import audit
from portal.i18n import t


def buttons(prefix: str, lang: str) -> html.Div:
    return html.Div(className="downloads", children=[
        html.Button(t("download.csv", lang), id=f"{prefix}-dl-csv", className="dl"),
        html.Button(t("download.xlsx", lang), id=f"{prefix}-dl-xlsx", className="dl"),
        dcc.Download(id=f"{prefix}-download"),
    ])


def register(app, portal_ctx, prefix: str, name: str, table: Callable[[object, str], pd.DataFrame]) -> None:
    """`table(user, lang)` builds the frame; the file is named `<name>-<park>-<date>.csv|xlsx`."""

    @app.callback(Output(f"{prefix}-download", "data"), Input(f"{prefix}-dl-csv", "n_clicks"),
                  Input(f"{prefix}-dl-xlsx", "n_clicks"), State("lang", "data"), prevent_initial_call=True)
    def download(_csv, _xlsx, lang):
        fmt = "xlsx" if dash_ctx.triggered_id == f"{prefix}-dl-xlsx" else "csv"
        frame = table(current_user, lang or "zh-CN")
        stamp = portal_ctx.now().strftime("%Y%m%d-%H%M")
        filename = f"{name}-{portal_ctx.park.id}-{stamp}.{fmt}"
        audit.record(portal_ctx.engine, current_user.username, "download", filename, rows=len(frame), format=fmt)
        if fmt == "csv":
            return {"content": frame.to_csv(index=False), "filename": filename, "type": "text/csv"}
        buf = io.BytesIO()
        frame.to_excel(buf, index=False)
        return dcc.send_bytes(buf.getvalue(), filename)
