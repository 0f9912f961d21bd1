"""Table downloads (CSV or Excel) built on the server from the user's own scoped data, each logged in the audit
log: who downloaded what, when, how many rows."""

from __future__ import annotations

import io
from collections.abc import Callable

import pandas as pd
from dash import Input, Output, State, dcc, html, no_update
from dash import ctx as dash_ctx

from portal.i18n import t

Table = Callable[..., "pd.DataFrame | tuple[str, pd.DataFrame] | None"]


def buttons(prefix: str, lang: str) -> html.Div:
    return html.Div(className="downloads", children=[
        html.Button(t("download.csv", lang), id=f"{prefix}-dl-csv", className="dl"),
        html.Button(t("download.xlsx", lang), id=f"{prefix}-dl-xlsx", className="dl"),
        dcc.Download(id=f"{prefix}-download"),
    ])


def register(callbacks, prefix: str, name: str, table: Table, *controls: State) -> None:
    """A download callback of a page (portal.callbacks.PageCallbacks: refused for the roles the page refuses).
    `table(scope, lang, *values of controls)` builds the frame, or (label, frame) to name what it is of (an
    enterprise, a period) in the file name, or None when the request is refused (nothing is sent).  The file is
    `<name>-<park>[-<label>]-<date>.csv|xlsx`."""

    @callbacks.callback(Output(f"{prefix}-download", "data"), Input(f"{prefix}-dl-csv", "n_clicks"),
                        Input(f"{prefix}-dl-xlsx", "n_clicks"), State("lang", "data"), *controls,
                        prevent_initial_call=True,
                        action=f"download {name}")
    def download(scope, lang, _csv, _xlsx, *values):
        result = table(scope, lang, *values)
        if result is None:
            return no_update
        label, frame = result if isinstance(result, tuple) else (None, result)
        fmt = "xlsx" if dash_ctx.triggered_id == f"{prefix}-dl-xlsx" else "csv"
        parts = [name, scope.park.id, *([label] if label else []), scope.now().strftime("%Y%m%d-%H%M")]
        filename = "-".join(parts) + f".{fmt}"
        scope.record("download", filename, rows=len(frame), format=fmt)
        if fmt == "csv":
            return {"content": frame.to_csv(index=False), "filename": filename, "type": "text/csv"}
        buf = io.BytesIO()
        frame.to_excel(buf, index=False)
        return dcc.send_bytes(buf.getvalue(), filename)
