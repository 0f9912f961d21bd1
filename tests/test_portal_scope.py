"""One data path: every page callback behind its page's roles (checked from the app's callback map, not a hand
list), each role landing on its own page without an error, the consent hook, "no quota" for an enterprise outside
the quota scheme, and pages that never touch the engine, the store or the records."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from plotly.utils import PlotlyJSONEncoder

import carbon.records  # noqa: F401  (the carbon tables)
from carbon import records
from park.metadata import create_engine_from_url, import_park
from park.model import Device, Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal import audit
from portal.app import create_app
from portal.auth import Role, add_user, load_user
from portal.callbacks import PAGE_CALLBACKS
from portal.context import PortalContext
from portal.i18n import TEXT
from portal.overview_figures import compute_carbon
from portal.pages import LANDING, load_pages
from portal.pages.overview import ranking_table
from portal.scope import scope_for
from tests.support import portal as support

TZ = "Asia/Shanghai"
PARK = Park(id="p", name="测试园区", name_en="Test Park", province="Jiangsu", grid_region="east_china",
            enterprises=(Enterprise("E1", "甲公司", "Alpha Co."), Enterprise("E2", "乙公司", "Beta Co.")),
            meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"), Meter("E2-M1", Carrier.ELECTRICITY, "E2")),
            devices=(Device("E1-D1", "E1", None, "切割机"), Device("E2-D1", "E2", None, "染色机")))
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
PASSWORD = "correct horse battery"
USERS = {"admin": Role.ADMIN, "alpha": Role.ENTERPRISE, "bank": Role.BANK, "reg": Role.REGULATOR}
SHELL_CALLBACKS = {"lang.data", ".." + "...".join(f"{i}.children" for i in support.SHELL_OUTPUTS) + ".."}


def build(tmp_path, consents=None) -> PortalContext:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp_path / "ts.duckdb", PARK.catalog(), TZ)
    ts = pd.date_range(pd.Timestamp("2024-02-01", tz=TZ), NOW, freq="15min", inclusive="left")
    store.write("energy", pd.concat([pd.DataFrame({"ts": ts, "series": "E1-M1", "value": 1.0}),
                                     pd.DataFrame({"ts": ts, "series": "E2-M1", "value": 7.0})]))
    records.record_output_values(engine, "p", pd.DataFrame({
        "enterprise": ["E1", "E2"], "month": [pd.Timestamp("2024-02-01").date()] * 2,
        "output_value_10k_cny": [100.0, 300.0]}), actor="test")
    for name, role in USERS.items():
        add_user(engine, "p", name, PASSWORD, role, "E1" if role is Role.ENTERPRISE else None)
    return PortalContext(Settings(data_dir=tmp_path), engine, PARK, store, clock=lambda: NOW,
                         **({"consents": consents} if consents else {}))


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    c = build(tmp_path_factory.mktemp("scope"))
    yield c
    c.store.close()


@pytest.fixture(scope="module")
def app(ctx):
    return create_app(ctx, "k" * 32)


@pytest.fixture(scope="module")
def clients(app):
    """A signed-in test client and its CSRF token per role."""
    out = {}
    for name in USERS:
        client = app.server.test_client()
        out[name] = (client, support.login_token(client, name, PASSWORD))
    return out


# ---- every callback refuses the roles its page refuses ---------------------------------------------------------
def _ref(dep: dict, value) -> dict | list:
    """One input or state of a request: a wildcard (ALL) id takes a list of matching components (none here)."""
    if dep["id"].startswith("{"):
        return []
    return {"id": dep["id"], "property": dep["property"], "value": value}


def request_body(key: str, spec: dict) -> dict:
    """The request the Dash renderer would post for callback `key` of `app.callback_map`, every value empty but
    the language."""
    many = isinstance(spec["output"], list)
    outputs = [o if isinstance(o, str) else f"{o.component_id}.{o.component_property}"
               for o in (spec["output"] if many else [spec["output"]])]
    refs = [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]} for o in outputs]
    inputs = [_ref(i, None) for i in spec["inputs"]]
    state = [_ref(s, "en" if s["id"] == "lang" else None) for s in spec["state"]]
    changed = [f"{i['id']}.{i['property']}" for i in spec["inputs"] if not i["id"].startswith("{")][:1]
    return {"output": key, "outputs": refs if many else refs[0], "inputs": inputs,
            "state": state, "changedPropIds": changed}


def test_every_callback_belongs_to_a_page_or_the_shell(app):
    """A callback registered around the page decorator would escape its roles: there is none."""
    guarded = getattr(app, PAGE_CALLBACKS)
    assert set(app.callback_map) - set(guarded) == SHELL_CALLBACKS
    assert len(guarded) >= 20  # every page's callbacks and downloads


@pytest.mark.parametrize("username", list(USERS))
def test_every_page_callback_refuses_a_role_its_page_refuses(app, ctx, clients, username):
    client, token = clients[username]
    role = USERS[username]
    checked = {"refused": 0, "allowed": 0}
    for key, (page, roles) in getattr(app, PAGE_CALLBACKS).items():
        before = len(audit.events(ctx.engine, 100_000))
        resp = client.post("/_dash-update-component", json=request_body(key, app.callback_map[key]),
                           headers={"X-CSRFToken": token})
        if role in roles:
            assert resp.status_code in (200, 204), f"{username} on {page} {key}: {resp.status_code}"
            checked["allowed"] += 1
        else:
            assert resp.status_code == 403, f"{username} on {page} {key}: {resp.status_code}"
            last = audit.events(ctx.engine, 1).iloc[0]
            assert len(audit.events(ctx.engine, 100_000)) == before + 1
            assert (last["user"], last["action"], last["target"]) == (username, "refused", page)
            checked["refused"] += 1
    assert sum(checked.values()) == len(getattr(app, PAGE_CALLBACKS))
    # Every role is refused somewhere (the administrator: on the enterprise-only consent-sharing page, if any).
    refusing = sum(role not in roles for _, roles in getattr(app, PAGE_CALLBACKS).values())
    assert checked["refused"] == refusing and (refusing > 0 or role is Role.ADMIN)


def test_the_regulator_can_no_longer_read_an_enterprise_through_its_callbacks(clients):
    client, token = clients["reg"]
    body = support.callback_body(["ent-summary.children", "ent-details.children"],
                                  {"ent-enterprise.value": "E2", "ent-period.value": "month",
                     "ent-range.value": None}, {"lang.data": "en"})
    resp = client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": token})
    assert resp.status_code == 403 and "Beta" not in resp.get_data(as_text=True)


# ---- each role lands on its page --------------------------------------------------------------------------------
FIRST_SCREEN = {Role.ADMIN: "carbon-kpis", Role.REGULATOR: "carbon-kpis", Role.ENTERPRISE: "ent-summary",
                Role.BANK: "consents-none"}


@pytest.mark.parametrize("username", list(USERS))
def test_each_role_lands_on_its_page_without_an_error(app, username):
    role = USERS[username]
    client = app.server.test_client()
    resp = support.login(client, username, PASSWORD)
    assert resp.status_code == 302 and resp.headers["Location"] == LANDING[role]
    home = client.get("/")
    assert home.status_code == (200 if LANDING[role] == "/" else 302)
    if home.status_code == 302:
        assert home.headers["Location"] == LANDING[role]
    token = support.session_csrf(client)
    for lang in ("zh-CN", "en"):
        shell = client.post("/_dash-update-component", json=support.render_body(LANDING[role], lang),
                            headers={"X-CSRFToken": token})
        text = json.dumps(shell.json, ensure_ascii=False)
        assert shell.status_code == 200 and FIRST_SCREEN[role] in text
        assert '"forbidden"' not in text and '"color": "red"' not in text
        assert TEXT["page.forbidden"][lang] not in text
        nav = json.dumps(shell.json["response"]["nav"]["children"])
        for page in load_pages():
            link = f"nav-{page.__name__.rsplit('.', 1)[-1]}"
            assert (link in nav) == (role in page.ROLES), f"{username}: {link}"
        if role is Role.BANK:
            assert TEXT["consents.none"][lang] in text and TEXT["consents.how"][lang] in text


def test_a_bank_sees_only_the_enterprises_with_consent_in_force(tmp_path):
    """The consent hook: a provider naming E2 is all it takes; the pages do not change."""
    c = build(tmp_path, consents=lambda user: frozenset({"E2"}))
    try:
        bank = scope_for(c, load_user(c.engine, "bank"), "/consents")
        assert bank.consents == {"E2"} and [e.id for e in bank.enterprises()] == ["E2"]
        day = bank.aggregate("energy", NOW.floor("D"), NOW, "day", by=["enterprise"])
        assert day["enterprise"].tolist() == ["E2"]
        page = next(p for p in load_pages() if p.PATH == "/consents")
        text = json.dumps(page.layout(bank, "en").to_plotly_json(), default=lambda o: o.to_plotly_json())
        assert "Beta Co." in text and "Alpha Co." not in text and "consents-none" not in text
        alpha = scope_for(c, load_user(c.engine, "alpha"), "/enterprise")
        assert alpha.consents == frozenset() and alpha.enterprise_ids == {"E1"}
    finally:
        c.store.close()


# ---- no quota is not a deficit ------------------------------------------------------------------------------------
def test_an_enterprise_without_a_quota_plan_has_no_quota_not_a_deficit(ctx):
    admin = scope_for(ctx, load_user(ctx.engine, "admin"), "/")
    co = compute_carbon(admin)
    assert len(co.ranking) == 2  # both ranked on February
    for lang, none, deficit in (("zh-CN", "无配额", "缺口"), ("en", "no quota", "deficit")):
        table = ranking_table(co, PARK, co.quota, lang)
        status = table[TEXT["col.quota_status"][lang]].tolist()
        assert status == [none, none] and deficit not in status
        assert table[TEXT["col.quota_used"][lang]].isna().all()
    shown = json.dumps(load_pages()[0].render_carbon(co, PARK, "en"), cls=PlotlyJSONEncoder)
    assert "deficit" not in shown


def test_an_enterprise_with_allowances_keeps_its_status(tmp_path):
    from carbon.quota import QuotaPlan

    c = build(tmp_path)
    try:
        records.record_quota_plan(c.engine, "p", QuotaPlan.absolute("E2", 2024, 1.0), actor="test")
        records.record_movement(c.engine, "p", "E2", 2024, "allocation", 1.0, actor="test")
        co = compute_carbon(scope_for(c, load_user(c.engine, "admin"), "/"))
        table = ranking_table(co, PARK, co.quota, "en")
        status = dict(zip(table["Enterprise"], table["Quota status"], strict=True))
        assert status == {"Alpha Co.": "no quota", "Beta Co.": "deficit"}  # Beta emits far more than its 1 t
    finally:
        c.store.close()


# ---- pages read only through the scope ------------------------------------------------------------------------
PAGES = sorted((Path(__file__).resolve().parents[1] / "portal" / "pages").glob("*.py"))
FORBIDDEN_MODULES = ("sqlalchemy", "park.store", "park.metadata", "carbon.records", "carbon.pipeline",
                     "carbon.activity", "portal.access", "portal.context", "portal.audit", "duckdb", "influxdb_client",
                     "flask_login", "flask")
FORBIDDEN_ATTRIBUTES = {"engine", "store", "access", "_ctx", "_access"}


def violations(source: str) -> list[str]:
    """What in a page's source reaches past the scope: imports of the engine, the store or the records, and any
    `.engine`, `.store`, `.access` or `records` it uses."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith(FORBIDDEN_MODULES)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [f"{module}.{a.name}" for a in node.names]
            found += [n for n in [module, *names] if n.startswith(FORBIDDEN_MODULES)]
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(f".{node.attr} (line {node.lineno})")
        elif isinstance(node, ast.Name) and node.id == "records":
            found.append(f"records (line {node.lineno})")
    return found


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_pages_never_touch_the_engine_the_store_or_the_records(path):
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("source", [
    "from sqlalchemy import select", "import park.store", "from park.store.embedded import EmbeddedStore",
    "from carbon import records", "from carbon.records import load_ledger", "x = ctx.engine",
    "frame = ctx.store.aggregate()", "ctx.access.latest(user, 'energy')", "records.load_ledger(e, 'p', 2024)",
    "from flask_login import current_user"])
def test_the_page_check_catches_each_way_past_the_scope(source):
    assert violations(source)


@given(st.sets(st.sampled_from(["E1", "E2", "E9", ""])), st.sampled_from(list(Role)))
def test_a_scope_never_holds_more_than_its_role_and_consents_allow(consented, role):
    """Property: an enterprise user sees its own enterprise, a bank the consented enterprises of the park (never an
    unknown one), the administrator and the regulator the whole park; only a bank has consents."""
    from types import SimpleNamespace

    from portal.access import DataAccess
    from portal.auth import User

    def provider(user):
        return frozenset(consented)

    fake = SimpleNamespace(park=PARK, consents=provider, access=DataAccess(None, PARK, None, consents=provider))
    user = User("u", "p", role, "E1" if role is Role.ENTERPRISE else None)
    scope = scope_for(fake, user, "/")
    ids = [e.id for e in scope.enterprises()]
    expected = {Role.ADMIN: ["E1", "E2"], Role.REGULATOR: ["E1", "E2"], Role.ENTERPRISE: ["E1"],
                Role.BANK: [e for e in ("E1", "E2") if e in consented]}[role]
    assert ids == expected and scope.park_wide == (role in (Role.ADMIN, Role.REGULATOR))
    assert scope.consents == (frozenset(consented) if role is Role.BANK else frozenset())
