"""The administration page: users and roles, the park's enterprises, meters and imports, factors and overrides,
quotas and the append-only ledger, the audit log; only an administrator may use its forms, crafted requests
included."""

from __future__ import annotations

import json

import pytest

from carbon import records
from portal import audit
from portal.app import create_app
from portal.auth import Role, authenticate, list_users, load_user
from portal.i18n import LANGUAGES
from portal.pages import admin as page
from portal.scope import scope_for
from tests.test_alerts import PASSWORD, build_ctx
from tests.test_page_quality import FACTORS
from tests.test_page_warnings import dash_post
from tests.test_portal_access import login


@pytest.fixture
def ctx(tmp_path):
    c = build_ctx(tmp_path)
    yield c
    c.store.close()


def admin_scope(ctx):
    """The administrator's request scope on the administration page."""
    return scope_for(ctx, load_user(ctx.engine, "admin"), page.PATH)


@pytest.fixture
def admin(ctx):
    return admin_scope(ctx)


def post_user_form(client, name: str, role: str, enterprise: str | None = None, password: str = "a-long-password",
                   replace: bool = False):
    return dash_post(client, [("admin-user-message", "children"), ("admin-users", "children"),
                              ("admin-user-password", "value")], [("admin-user-save", "n_clicks", 1)],
                     [("admin-user-name", "value", name), ("admin-user-display", "value", ""),
                      ("admin-user-role", "value", role), ("admin-user-enterprise", "value", enterprise),
                      ("admin-user-password", "value", password), ("admin-user-replace", "checked", replace),
                      ("lang", "data", "en")], ["admin-user-save.n_clicks"])


def post_movement(client, enterprise: str, kind: str, amount: float, year: int = 2024):
    return dash_post(client, [("admin-quota-body", "children"), ("admin-ledger-message", "children")],
                     [("admin-quota-year", "value", year), ("admin-quota-enterprise", "value", enterprise),
                      ("admin-ledger-save", "n_clicks", 1)],
                     [("admin-ledger-kind", "value", kind), ("admin-ledger-amount", "value", amount),
                      ("admin-ledger-price", "value", ""), ("admin-ledger-reference", "value", "crafted"),
                      ("admin-ledger-note", "value", ""), ("admin-ledger-corrects", "value", ""),
                      ("admin-ledger-due", "value", ""), ("lang", "data", "en")], ["admin-ledger-save.n_clicks"])


def test_an_administrator_adds_and_resets_a_user(ctx, admin):
    ok, text = page.save_user(admin, " gamma ", "Gamma ops", "enterprise", "E3", "gamma-password-1", False, "en")
    assert (ok, text) == (True, "User gamma saved")
    assert authenticate(ctx.engine, "gamma", "gamma-password-1").enterprise_id == "E3"
    ok, text = page.save_user(admin, "gamma", "", "enterprise", "E3", "gamma-password-2", False, "en")
    assert not ok and text == "User gamma exists: tick “Reset an existing user” to reset it"
    ok, _ = page.save_user(admin, "gamma", "", "regulator", "E3", "gamma-password-2", True, "en")
    reset = authenticate(ctx.engine, "gamma", "gamma-password-2")
    assert ok and (reset.role, reset.enterprise_id) == (Role.REGULATOR, None)  # the enterprise of a regulator: none
    events = audit.events(ctx.engine)
    assert events[["user", "action", "target"]].values.tolist()[:2] == [["admin", "user_reset", "gamma"],
                                                                        ["admin", "user_add", "gamma"]]
    assert "password" not in " ".join(events["detail"])
    table = page.users_table(admin_scope(ctx), "en")
    assert table.set_index("User name").loc["gamma", "Role"] == "Regulator"


@pytest.mark.parametrize("name, role, enterprise, password, message", [
    ("", "admin", None, "a-long-password", "Enter a user name"),
    ("x", None, None, "a-long-password", "Choose a role"),
    ("x", "admin", None, "", "Enter a password"),
    ("x", "enterprise", None, "a-long-password", "An enterprise user needs its enterprise"),
    ("x", "admin", None, "short", "Not saved: passwords need at least 10 characters"),
    ("bad name!", "admin", None, "a-long-password", "Not saved: user name 'bad name!': use 1-64 letters, digits, "
                                                    "'-', '_' or '.'"),
])
def test_the_user_form_is_validated(ctx, admin, name, role, enterprise, password, message):
    assert page.save_user(admin, name, "", role, enterprise, password, False, "en") == (False, message)
    assert len(list_users(ctx.engine, "p")) == 5


def test_enterprises_meters_and_import_runs(ctx):
    ent = page.enterprises_table(admin_scope(ctx), "en")
    assert ent[["ID", "Name", "English name"]].values.tolist()[0] == ["E1", "甲公司", "Alpha Co."]
    meters = page.meters_table(admin_scope(ctx), "zh-CN").set_index("编号")
    assert meters.loc["E2-GAS", ["企业", "能源品种", "单位", "计量区间 (分钟)"]].tolist() == ["E2", "天然气", "m3", 60]
    runs = page.import_runs_table(admin_scope(ctx), "en")
    assert runs[["ID", "By", "Added", "Updated", "Unchanged"]].values.tolist() == [[1, "cli", 9, 0, 0]]


def test_factors_with_source_validity_and_verified_flag_and_the_parks_overrides(ctx, tmp_path):
    from carbon.factors import FactorRegistry

    shipped = page.factor_table(FactorRegistry.shipped().frame(), "en")
    assert list(shipped.columns) == ["Kind", "Key", "Parameter", "Region", "Value", "Unit", "Valid from", "Valid to",
                                     "Data year", "Verified", "Source", "Publication", "File line"]
    grid = shipped[(shipped["Kind"] == "grid") & (shipped["Data year"] == "2022") & (shipped["Region"] == "national")
                   & (shipped["Parameter"] == "average")].iloc[0]
    assert (grid["Value"], grid["Unit"], grid["Valid from"], grid["Valid to"], grid["Source"], grid["Verified"]) == (
        0.5366, "tCO2/MWh", "2022-01-01", "2022-12-31", "MEE/NBS", "yes")
    assert set(shipped["Verified"]) == {"yes", "no"}
    path = tmp_path / "factors.csv"
    path.write_text(FACTORS, encoding="utf-8")
    records.import_factor_file(ctx.engine, "p", path, actor="operator", reason="park grid study")
    overrides = page.factor_table(FactorRegistry.shipped().frame(records.load_factor_overrides(ctx.engine, "p")),
                                  "en")
    assert overrides[["Value", "Source", "Verified"]].values.tolist() == [[0.6, "park grid study", "no"]]
    assert overrides["File line"].iloc[0].endswith("factors.csv:2")


def test_the_ledger_form_appends_movements_and_shows_what_it_refuses(ctx, admin):
    ok, text = page.append_movement(admin, 2024, "E1", "purchase", 10, 95.5, "trade 7", "", "", "", "en")
    assert (ok, text) == (True, "Ledger entry 3 recorded")
    accounts = page.accounts_table(admin_scope(ctx), 2024, "en").set_index("Enterprise")
    assert list(accounts.columns) == ["Plan", "Allocated (incl. true-up, adjustments)", "Purchase", "Sale",
                                      "CCER offset", "Surrender", "Holdings"]
    assert accounts.loc["Alpha Co."].tolist() == ["absolute 1.7 t", 1.7, 10.0, 0.0, 0.0, 0.0, 11.7]
    ok, text = page.append_movement(admin, 2024, "E1", "sale", 100, None, "", "", None, None, "en")
    assert not ok and text == "Not recorded: cannot sale 100.000 t for E1 2024: holdings are 11.700 t"
    ok, text = page.append_movement(admin, 2024, "E1", "ccer_offset", 1, None, "", "", None, 1.46, "en")
    assert not ok and text.startswith("Beyond the CCER cap: CCER offsets of E1 2024 would reach 1.000 t, above the "
                                      "cap of 5% x 1.460 t = 0.073 t")
    ok, text = page.append_movement(admin, 2024, "E1", "adjustment", -0.5, None, "", "fix", 3, None, "en")
    assert (ok, text) == (True, "Ledger entry 4 recorded")
    ledger = page.ledger_table(admin_scope(ctx), 2024, "E1", "en")
    assert ledger[["ID", "Kind", "Amount (t)", "Corrects entry", "By"]].values.tolist() == [
        [1, "Allocation", 1.7, None, "test"], [3, "Purchase", 10.0, None, "admin"],
        [4, "Adjustment", -0.5, 3, "admin"]]
    moves = audit.events(ctx.engine)
    assert moves[moves["action"] == "ledger_movement"]["target"].tolist() == ["E1/2024", "E1/2024"]
    assert page.append_movement(admin, 2024, "E9", "purchase", 1, None, "", "", None, None, "en") == (
        False, "Choose an enterprise of this park")


def test_the_forms_work_through_the_dash_endpoint_for_an_administrator(ctx):
    client = create_app(ctx, "k" * 32).server.test_client()
    login(client, "admin", PASSWORD)
    resp = post_user_form(client, "delta", "bank")
    assert resp.status_code == 200 and "User delta saved" in json.dumps(resp.json)
    assert post_movement(client, "E2", "purchase", 2.0).status_code == 200
    assert records.load_ledger(ctx.engine, "p", 2024, "E2")["amount_t"].tolist() == [1.5, 2.0]


@pytest.mark.parametrize("username", ["alpha", "bank", "reg"])
def test_non_administrators_posting_to_the_admin_callbacks_are_refused_and_nothing_is_written(ctx, username):
    client = create_app(ctx, "k" * 32).server.test_client()
    login(client, username, PASSWORD)
    assert post_user_form(client, "mallory", "admin").status_code == 403
    assert post_user_form(client, "admin", "enterprise", "E1", replace=True).status_code == 403
    assert post_movement(client, "E1", "purchase", 1000.0).status_code == 403
    audit_dl = dash_post(client, [("admin-audit-download", "data")],
                         [("admin-audit-dl-csv", "n_clicks", 1), ("admin-audit-dl-xlsx", "n_clicks", None)],
                         [("lang", "data", "en")], ["admin-audit-dl-csv.n_clicks"])
    assert audit_dl.status_code == 403
    assert "mallory" not in {u.username for u in list_users(ctx.engine, "p")}
    assert load_user(ctx.engine, "admin").role is Role.ADMIN and authenticate(ctx.engine, "admin", PASSWORD)
    assert records.load_ledger(ctx.engine, "p", 2024)["amount_t"].tolist() == [1.7, 1.5]
    events = audit.events(ctx.engine)
    assert not {"user_add", "user_reset", "ledger_movement", "download"} & set(events["action"])
    assert events["action"].tolist()[:4] == ["refused"] * 4


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_page_is_translated(ctx, admin, lang):
    text = json.dumps(page.layout(admin, lang).to_plotly_json(), default=lambda o: o.to_plotly_json(),
                      ensure_ascii=False)
    assert ("Append a movement" in text) == (lang == "en") and ("新增台账记录" in text) == (lang == "zh-CN")
    assert "tCO2/MWh" in text and "Alpha Co." in text
