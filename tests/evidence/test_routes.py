"""A bank without consent, with an expired or a revoked one, gets nothing by any route: the page, its callbacks, the
command line and the API; with a consent in force it gets the enterprise and the pack.  The enterprise's page grants
and revokes; the published keys are open."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd
import pytest

from portal import audit
from portal.app import create_app
from portal.cli import main
from portal.evidence import consent, keys, tokens
from portal.evidence.verify import verify
from tests.evidence.conftest import NOW, PASSWORD, build
from tests.support import portal as support


@pytest.fixture
def env(tmp_path):
    ctx = build(tmp_path)
    app = create_app(ctx, "k" * 32)
    yield ctx, app
    ctx.store.close()


def client_of(app, name: str):
    client = app.server.test_client()
    return client, support.login_token(client, name, PASSWORD)


def render(client, token, path: str) -> str:
    resp = client.post("/_dash-update-component", json=support.render_body(path, "en"), headers={"X-CSRFToken": token})
    assert resp.status_code == 200
    return json.dumps(resp.json, ensure_ascii=False)


def build_pack(client, token, enterprise="E1", period="2024-02"):
    body = support.callback_body(["consent-pack-download.data", "consent-pack-message.children",
                                  "consents-packs-box.children"], {"consent-pack-build.n_clicks": 1},
                                 {"consent-pack-enterprise.value": enterprise, "consent-pack-period.value": period,
                                  "lang.data": "en"})
    return client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": token})


def pack_from(resp) -> bytes | None:
    if resp.status_code != 200:
        return None
    data = resp.json["response"].get("consent-pack-download", {}).get("data")
    if data is None:  # refused: the page says why
        assert "consent-pack-error" in resp.get_data(as_text=True)
    return base64.b64decode(data["content"]) if isinstance(data, dict) else None


def pattern_click(outputs: list[str], pattern: dict, extra_inputs: list | None = None) -> dict:
    """A click on one button of a pattern-matching (ALL) input, as the Dash renderer posts it."""
    key = json.dumps(pattern, sort_keys=True, separators=(",", ":"))
    body = support.callback_body(outputs, {"dummy.n_clicks": None}, {"lang.data": "en"})
    body["inputs"] = [*(extra_inputs or []), [{"id": pattern, "property": "n_clicks", "value": 1}]]
    body["changedPropIds"] = [f"{key}.n_clicks"]
    return body


def sharing(action: str, consent_id: int) -> dict:
    return pattern_click(["sharing-table.children", "sharing-message.children"],
                         {"type": "sharing-action", "action": action, "id": consent_id})


def api(client, path: str, token: str | None):
    return client.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})


def test_no_consent_no_data_by_page_callback_or_api(env):
    ctx, app = env
    bank, btoken = client_of(app, "bank")
    text = render(bank, btoken, "/consents")
    assert "consents-none" in text and "Alpha Co." not in text and "甲公司" not in text
    assert pack_from(build_pack(bank, btoken)) is None
    _, api_token = tokens.add(ctx.engine, "bank", "test")
    anon = app.server.test_client()
    assert api(anon, "/api/v1/evidence/E1/2024-02", None).status_code == 401
    assert api(anon, "/api/v1/evidence/E1/2024-02", "pcev_forged").status_code == 401
    resp = api(anon, "/api/v1/evidence/E1/2024-02", api_token)
    assert resp.status_code == 403 and resp.json["error"].startswith("no consent in force")
    assert api(anon, "/api/v1/evidence", api_token).json == {"consents": []}


def test_the_consent_lifecycle_through_the_pages_and_every_route(env):
    ctx, app = env
    bank, btoken = client_of(app, "bank")
    alpha, atoken = client_of(app, "alpha")
    # the bank asks on its page (by credit code or id), the enterprise sees it on its sharing page
    body = support.callback_body(["consents-table.children", "consents-message.children"],
                                 {"consent-submit.n_clicks": 1},
                                 {"consent-enterprise.value": "E1", "consent-purpose.value": "loan_application",
                                  "consent-data.value": ["energy", "emissions"], "consent-from.value": "2024-01",
                                  "consent-to.value": "2024-03", "consent-expires.value": "2024-05-01",
                                  "consent-project.value": "",
                                  "lang.data": "en"})
    body["inputs"].append([])  # the revoke buttons (none)
    resp = bank.post("/_dash-update-component", json=body, headers={"X-CSRFToken": btoken})
    assert resp.status_code == 200 and "Request #1 sent" in resp.get_data(as_text=True), resp.get_data(as_text=True)
    assert pack_from(build_pack(bank, btoken)) is None  # requested is not granted
    assert "sharing-row-1" in render(alpha, atoken, "/sharing")
    resp = alpha.post("/_dash-update-component", json=sharing("grant", 1), headers={"X-CSRFToken": atoken})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert consent.get(ctx.engine, 1).state == "granted"
    # in force: the page names the enterprise, the callback and the API give a pack that verifies
    assert "Alpha Co." in render(bank, btoken, "/consents")
    blob = pack_from(build_pack(bank, btoken))
    assert blob is not None and verify(blob, recompute=True).ok
    assert pack_from(build_pack(bank, btoken, period="2024-04")) is None  # a month outside the consent
    assert pack_from(build_pack(bank, btoken, enterprise="E2")) is None  # another enterprise
    _, api_token = tokens.add(ctx.engine, "bank", "test")
    anon = app.server.test_client()
    resp = api(anon, "/api/v1/evidence/E1/2024-02", api_token)
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    assert verify(resp.data).ok and not anon.get_cookie("session")
    assert [c["enterprise"] for c in api(anon, "/api/v1/evidence", api_token).json["consents"]] == ["E1"]
    assert api(anon, "/api/v1/evidence/E1/2024-13", api_token).status_code == 400
    bank2, b2token = client_of(app, "bank2")  # another bank: nothing
    assert "Alpha Co." not in render(bank2, b2token, "/consents") and pack_from(build_pack(bank2, b2token)) is None
    # a revoked token: nothing
    token_id, spare = tokens.add(ctx.engine, "bank", "test")
    tokens.revoke(ctx.engine, token_id, "test")
    assert api(anon, "/api/v1/evidence/E1/2024-02", spare).status_code == 401
    # expired (the portal's clock moves past the expiry): nothing by any route
    ctx.clock = lambda: pd.Timestamp("2024-05-02", tz="Asia/Shanghai")
    assert "Alpha Co." not in render(bank, btoken, "/consents") and pack_from(build_pack(bank, btoken)) is None
    assert api(anon, "/api/v1/evidence/E1/2024-02", api_token).status_code == 403
    ctx.clock = lambda: NOW
    # revoked by the enterprise on its page: nothing by any route
    assert alpha.post("/_dash-update-component", json=sharing("revoke", 1),
                      headers={"X-CSRFToken": atoken}).status_code == 200
    assert consent.get(ctx.engine, 1).state == "revoked"
    assert "Alpha Co." not in render(bank, btoken, "/consents") and pack_from(build_pack(bank, btoken)) is None
    assert api(anon, "/api/v1/evidence/E1/2024-02", api_token).status_code == 403
    actions = list(audit.events(ctx.engine, 10_000)["action"])
    for a in ("consent_request", "consent_grant", "consent_export", "consent_revoke", "refused"):
        assert a in actions, a
    assert actions.count("consent_export") == 2


def test_another_enterprise_cannot_decide_a_consent_on_its_page(env):
    ctx, app = env
    consent.request(ctx.engine, "p", "bank", "E1", "loan_application", ["energy", "emissions"], "2024-01",
                    "2024-02", NOW + pd.Timedelta(days=5), now=NOW)
    beta, token = client_of(app, "beta")
    assert "sharing-row-1" not in render(beta, token, "/sharing")  # not its consent: not listed
    resp = beta.post("/_dash-update-component", json=sharing("grant", 1), headers={"X-CSRFToken": token})
    assert "may not grant" in resp.get_data(as_text=True)
    assert consent.get(ctx.engine, 1).state == "requested"


def test_the_published_keys_are_open_to_anyone(env):
    ctx, app = env
    anon = app.server.test_client()
    listed = anon.get("/evidence/public/keys.json")
    assert listed.status_code == 200
    key = listed.json["keys"][0]
    assert key["status"] == "active"
    pem = anon.get(f"/evidence/public/{key['key_id']}.pem")
    assert pem.status_code == 200 and pem.data.decode() == key["public_key_pem"]
    assert anon.get("/evidence/public/" + "0" * 64 + ".pem").status_code == 404
    assert anon.get("/consents").status_code == 302  # the rest still needs a login


def test_the_command_line_builds_only_under_consent(tmp_path, capsys):
    ctx = build(tmp_path)
    ctx.store.close()
    config = tmp_path / "parkcarbon.toml"
    config.write_text(f'data_dir = "{tmp_path}"\nmetadata_url = "sqlite:///{tmp_path / "meta.db"}"\n'
                      f'embedded_path = "{tmp_path / "ts.duckdb"}"\n', encoding="utf-8")
    out = tmp_path / "packs"
    out.mkdir()
    args = ["--config", str(config), "evidence", "build", "--enterprise", "E1", "--period", "2024-02",
            "--bank", "bank", "--out", str(out), "--no-pdf"]
    assert main(args) == 2
    assert "no consent in force" in capsys.readouterr().err
    expires = (pd.Timestamp.now(tz="Asia/Shanghai") + pd.Timedelta(days=30)).strftime("%Y-%m-%d")
    assert main(["--config", str(config), "evidence", "request", "--bank", "bank", "--enterprise", "E1",
                 "--purpose", "loan_application", "--from", "2024-01", "--to", "2024-03", "--expires", expires]) == 0
    assert main(["--config", str(config), "evidence", "grant", "1", "--as", "beta"]) == 2  # not E1's user
    assert main(["--config", str(config), "evidence", "grant", "1", "--as", "alpha"]) == 0
    assert main(args) == 0
    blob = next(out.iterdir()).read_bytes()
    assert verify(blob, recompute=True).ok
    assert main(["--config", str(config), "evidence", "revoke", "1", "--as", "bank", "--reason", "repaid"]) == 0
    assert main(args) == 2
    capsys.readouterr()
    assert main(["--config", str(config), "evidence", "list"]) == 0
    assert "revoked" in capsys.readouterr().out
    exported = tmp_path / "keys.json"
    assert main(["--config", str(config), "evidence", "keys", "export", str(exported)]) == 0
    assert verify(blob, keys_json=exported.read_bytes()).ok
    assert main(["--config", str(config), "evidence", "keys", "rotate"]) == 0
    assert main(["--config", str(config), "evidence", "token", "add", "--bank", "bank"]) == 0
    assert "pcev_" in capsys.readouterr().out


def test_init_creates_the_signing_key_0600(tmp_path, capsys):
    data = tmp_path / "state"
    config = tmp_path / "parkcarbon.toml"
    config.write_text(f'data_dir = "{data}"\n', encoding="utf-8")
    park_file = Path(__file__).resolve().parents[2] / "park" / "data" / "demo_park.yaml"
    if not park_file.exists():
        from park.parkfile import DEMO_PARK_FILE

        park_file = DEMO_PARK_FILE
    assert main(["--config", str(config), "init", "--park-file", str(park_file)]) == 0
    out = capsys.readouterr().out
    assert "evidence signing key:" in out and "created" in out
    (pem,) = keys.key_dir(data).iterdir()
    assert pem.stat().st_mode & 0o777 == 0o600
    assert main(["--config", str(config), "init", "--park-file", str(park_file)]) == 0
    assert "kept" in capsys.readouterr().out and len(list(keys.key_dir(data).iterdir())) == 1


def test_the_administrator_sees_every_consent_and_pack_but_requests_none(env):
    ctx, app = env
    c = consent.request(ctx.engine, "p", "bank", "E1", "loan_application", ["energy", "emissions"], "2024-01",
                        "2024-02", NOW + pd.Timedelta(days=5), now=NOW)
    admin, token = client_of(app, "admin")
    assert f"consent-row-{c.id}" in render(admin, token, "/consents")
    assert f"sharing-row-{c.id}" in render(admin, token, "/sharing")
    assert pack_from(build_pack(admin, token)) is None  # only a bank receives packs


def test_an_unknown_evidence_setting_is_refused_with_the_allowed_keys(tmp_path):
    from park.settings import Settings, SettingsError
    from portal.evidence.api import evidence_settings, public_keys_url

    with pytest.raises(SettingsError, match="unknown key.*public_ur.*allowed: public_url"):
        evidence_settings(Settings(data_dir=tmp_path, evidence={"public_ur": "https://x"}))
    ok = Settings(data_dir=tmp_path, evidence={"public_url": "https://park.example/"})
    assert public_keys_url(ok) == "https://park.example/evidence/public/keys.json"
