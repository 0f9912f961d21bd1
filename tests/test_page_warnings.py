"""The warnings page through crafted Dash callback POSTs: each user sees its own scope, acknowledges only its own
warnings, and the refusals happen on the server."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from portal import audit
from portal.alerts import AlertAck, acknowledgements
from portal.app import create_app
from portal.auth import load_user
from portal.i18n import LANGUAGES, TEXT
from portal.pages import warnings
from portal.scope import scope_for
from tests.test_alerts import build_ctx
from tests.test_portal_access import csrf, dash_render, login

E1_QUOTA = "quota_80|E1|2024"
E2_QUOTA = "quota_100|E2|2024"


def _id(i: str | dict) -> str:
    return json.dumps(i, sort_keys=True, separators=(",", ":")) if isinstance(i, dict) else i


def _prop(spec: tuple) -> dict:
    return {"id": spec[0], "property": spec[1], **({"value": spec[2]} if len(spec) > 2 else {})}


def dash_post(client, outputs: list[tuple], inputs: list, state: list[tuple] = (), changed: list[str] = ()):
    """POST one callback the way the Dash renderer does.  inputs: (id, property, value), or a list of them for a
    pattern-matching ALL input; state: (id, property, value)."""
    out = [f"{_id(i)}.{p}" for i, p in outputs]
    body = {"output": out[0] if len(out) == 1 else ".." + "...".join(out) + "..",
            "outputs": _prop(outputs[0]) if len(outputs) == 1 else [_prop(o) for o in outputs],
            "inputs": [[_prop(s) for s in i] if isinstance(i, list) else _prop(i) for i in inputs],
            "state": [_prop(s) for s in state], "changedPropIds": list(changed)}
    return client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": csrf(client)})


def post_ack(client, key: str, lang: str = "en"):
    button = {"type": "warning-ack", "key": key}
    return dash_post(client, [("warnings-list", "children")], [[(button, "n_clicks", 1)]], [("lang", "data", lang)],
                     [f"{_id(button)}.n_clicks"])


def post_download(client, lang: str = "en"):
    return dash_post(client, [("warnings-download", "data")],
                     [("warnings-dl-csv", "n_clicks", 1), ("warnings-dl-xlsx", "n_clicks", None)],
                     [("lang", "data", lang)], ["warnings-dl-csv.n_clicks"])


@pytest.fixture
def ctx(tmp_path):
    c = build_ctx(tmp_path)
    yield c
    c.store.close()


@pytest.fixture
def client_of(ctx):
    app = create_app(ctx, "k" * 32)

    def signed_in(username: str):
        client = app.server.test_client()
        login(client, username)
        return client

    return signed_in


def acks(ctx) -> int:
    with Session(ctx.engine) as s:
        return s.query(AlertAck).count()


def test_an_enterprise_user_sees_only_its_own_warnings(client_of):
    alpha = client_of("alpha")
    page = json.dumps(dash_render(alpha, "/warnings", {"X-CSRFToken": csrf(alpha)}).json, ensure_ascii=False)
    assert E1_QUOTA in page and "meter_silent|E1-M2|" in page and "Alpha Co." in page
    assert "E2" not in page and "Beta Co." not in page and "X-99" not in page
    admin = client_of("admin")
    everything = json.dumps(dash_render(admin, "/warnings", {"X-CSRFToken": csrf(admin)}).json, ensure_ascii=False)
    assert E2_QUOTA in everything and "X-99" in everything and "Beta Co." in everything


def test_an_enterprise_user_acknowledges_its_own_warning(ctx, client_of):
    resp = post_ack(client_of("alpha"), E1_QUOTA)
    assert resp.status_code == 200
    assert "Acknowledged by alpha" in json.dumps(resp.json)
    assert acknowledgements(ctx.engine, "p")[E1_QUOTA].by == "alpha"
    last = audit.events(ctx.engine).iloc[0]
    assert (last["user"], last["action"], last["target"]) == ("alpha", "ack_warning", E1_QUOTA)


@pytest.mark.parametrize("username, key", [("alpha", E2_QUOTA), ("beta", E1_QUOTA), ("reg", E1_QUOTA),
                                           ("bank", E2_QUOTA)])
def test_acknowledging_someone_elses_warning_is_refused_on_the_server(ctx, client_of, username, key):
    assert post_ack(client_of(username), key).status_code == 403
    assert acks(ctx) == 0
    last = audit.events(ctx.engine).iloc[0]
    assert (last["user"], last["action"], last["target"]) == (username, "refused", "/warnings")


def test_the_download_is_the_users_own_and_logged(ctx, client_of):
    resp = post_download(client_of("alpha"))
    content = resp.json["response"]["warnings-download"]["data"]["content"]
    table = pd.read_csv(io.StringIO(content))
    assert list(table.columns) == ["Severity", "Kind", "Enterprise", "What", "Since", "Acknowledgement", "Warning key"]
    assert set(table["Enterprise"]) == {"Alpha Co."} and len(table) == 3
    assert audit.events(ctx.engine).iloc[0]["action"] == "download"
    assert post_download(client_of("reg")).status_code == 403


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_page_is_translated(ctx, lang):
    assert all(set(v) == set(LANGUAGES) and all(v.values()) for v in TEXT.values())
    admin = scope_for(ctx, load_user(ctx.engine, "admin"), warnings.PATH)
    page = json.dumps(warnings.layout(admin, lang).to_plotly_json(),
                      default=lambda o: o.to_plotly_json(), ensure_ascii=False)
    assert ("Over-emission" in page) == (lang == "en") and ("超排预警" in page) == (lang == "zh-CN")
    assert "tCO2e" in page and "2024-03-07" in page  # E2 crossed 100 % on the ETS basis (tests/test_alerts.py)


def test_the_warnings_say_when_the_quota_figures_stand_on_incomplete_data(ctx):
    from tests.test_page_cockpit import find

    page = warnings.layout(scope_for(ctx, load_user(ctx.engine, "admin"), warnings.PATH), "en")
    badge = find(page, "warnings-complete")
    # E1's year to date: 1824 + 900 of 2 x 6672 quarter hours (13.6 %); E2's 3648 of 6672 electricity and none of
    # its gas meter's hours.
    assert badge.children == "incomplete" and "Alpha Co.: 13.6%" in badge.title and "Beta Co.:" in badge.title
