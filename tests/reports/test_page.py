"""The Reports page (regulator, administrator): the archive and the run log through the scope, a download of any
file of any version (the stored bytes, recorded in the audit log), refused to other roles and for a file that is
not the chosen version's."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from park.jobs import JobRun
from portal import audit
from portal.app import create_app
from portal.auth import Role, add_user
from portal.context import PortalContext
from portal.pages import LANDING
from portal.reports.archive import files, run_report, versions
from tests.reports.support import E2_GAP, NOW, PARK, build, readings
from tests.support import portal as support

PASSWORD = "correct horse battery"
USERS = {"reg": Role.REGULATOR, "admin": Role.ADMIN, "alpha": Role.ENTERPRISE, "bank": Role.BANK}


@pytest.fixture(scope="module")
def portal(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reports-page")
    settings, engine, store = build(tmp, {"reports": {"formats": ["xlsx", "csv"]}})
    run_report(settings, engine, PARK, store, "monthly", "2026-10", now=NOW)
    store.write("energy", readings("E2-EL", *E2_GAP))
    run_report(settings, engine, PARK, store, "monthly", "2026-10", now=NOW)  # version 2
    for name, role in USERS.items():
        add_user(engine, "p", name, PASSWORD, role, "E1" if role is Role.ENTERPRISE else None)
    with Session(engine) as s, s.begin():  # a scheduled run that failed before making any report
        due = datetime(2026, 10, 4, 22, 0, tzinfo=UTC)
        s.add(JobRun(job_id="reports.quarterly", scheduled_for=due, attempt=1, trigger="schedule", started=due,
                     finished=due, outcome="error", summary="SettingsError: [reports] quarterly_day = 31",
                     detail="", host="h", pid=1, holder="h"))
    ctx = PortalContext(settings, engine, PARK, store, clock=lambda: NOW)
    app = create_app(ctx, "k" * 32)
    yield ctx, app
    store.close()


def _client(app, username):
    client = app.server.test_client()
    return client, support.login_token(client, username, PASSWORD)


def test_the_regulator_sees_the_archive_and_the_run_log(portal):
    ctx, app = portal
    client, token = _client(app, "reg")
    assert LANDING[Role.REGULATOR] == "/"
    resp = client.post("/_dash-update-component", json=support.render_body("/reports", "en"),
                       headers={"X-CSRFToken": token})
    text = json.dumps(resp.json, ensure_ascii=False)
    assert resp.status_code == 200
    assert "Report archive" in text and "Run log" in text and "2026-10" in text
    assert "Monthly 2026-10 v2" in text and "Monthly 2026-10 v1" in text  # both versions downloadable
    assert "rule failed" in text and "reports-archive-table" in text
    assert "Scheduled jobs" in text and "SettingsError: [reports] quarterly_day = 31" in text
    zh = client.post("/_dash-update-component", json=support.render_body("/reports", "zh-CN"),
                     headers={"X-CSRFToken": token})
    zh_text = json.dumps(zh.json, ensure_ascii=False)
    assert "报表归档" in zh_text and "月报 2026-10 v2" in zh_text and "规则未通过" in zh_text
    for developer_text in ("NaN", "nan%", "None", "Timestamp("):
        assert developer_text not in zh_text


def _download(client, token, version_id, file_id):
    body = support.callback_body(["reports-download.data"], {"reports-get.n_clicks": 1},
                                 {"reports-version.value": version_id, "reports-file.value": file_id,
                                  "lang.data": "en"})
    return client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": token})


@pytest.mark.parametrize("username", ["reg", "admin"])
def test_any_version_downloads_as_stored_and_is_audited(portal, username):
    ctx, app = portal
    client, token = _client(app, username)
    v1 = versions(ctx.engine, "p").query("version == 1")["id"].iloc[0]
    stored = files(ctx.engine, int(v1))
    row = stored[stored["format"] == "xlsx"].iloc[0]
    resp = _download(client, token, int(v1), int(row["id"]))
    assert resp.status_code == 200
    data = resp.json["response"]["reports-download"]["data"]
    assert data["filename"] == "monthly-p-2026-10-v1.xlsx"
    assert hashlib.sha256(base64.b64decode(data["content"])).hexdigest() == row["sha256"]
    last = audit.events(ctx.engine, 1).iloc[0]
    assert (last["user"], last["action"], last["target"]) == (username, "download", "monthly-p-2026-10-v1.xlsx")


@pytest.mark.parametrize("username", ["alpha", "bank"])
def test_other_roles_are_refused(portal, username):
    ctx, app = portal
    client, token = _client(app, username)
    v = versions(ctx.engine, "p")["id"].iloc[0]
    fid = files(ctx.engine, int(v))["id"].iloc[0]
    assert _download(client, token, int(v), int(fid)).status_code == 403


def test_a_file_of_another_version_is_refused(portal):
    ctx, app = portal
    client, token = _client(app, "reg")
    v = versions(ctx.engine, "p").sort_values("version")
    other = files(ctx.engine, int(v["id"].iloc[1]))["id"].iloc[0]
    assert _download(client, token, int(v["id"].iloc[0]), int(other)).status_code == 403
    assert audit.events(ctx.engine, 1).iloc[0]["action"] == "refused"
