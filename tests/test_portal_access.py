"""Portal access: login, sessions, CSRF, roles, and server-side data isolation (crafted requests included)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import carbon.records  # noqa: F401  (the carbon tables)
from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal import audit
from portal.access import Forbidden
from portal.app import create_app
from portal.auth import AuthError, Role, add_user, authenticate, hash_password, load_user, verify_password
from portal.context import PortalContext
from portal.i18n import TEXT
from tests.support import portal as support

TZ = "Asia/Shanghai"
PARK = Park(id="p", name="测试园区", name_en="Test Park",
            enterprises=(Enterprise("E1", "甲公司", "Alpha Co."), Enterprise("E2", "乙公司", "Beta Co.")),
            meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"), Meter("E2-M1", Carrier.ELECTRICITY, "E2")))
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
PASSWORD = "correct horse battery"


@pytest.fixture
def ctx(tmp_path):
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp_path / "ts.duckdb", PARK.catalog(), TZ)
    day = pd.date_range(pd.Timestamp("2024-03-10", tz=TZ), NOW, freq="15min", inclusive="left")
    store.write("energy", pd.concat([pd.DataFrame({"ts": day, "series": "E1-M1", "value": 1.0}),
                                     pd.DataFrame({"ts": day, "series": "E2-M1", "value": 7.0})]))
    for name, role, ent in (("admin", "admin", None), ("alpha", "enterprise", "E1"), ("bank", "bank", None),
                            ("reg", "regulator", None)):
        add_user(engine, "p", name, PASSWORD, role, ent)
    yield PortalContext(Settings(data_dir=tmp_path), engine, PARK, store, clock=lambda: NOW)
    store.close()


def login(client, username, password=PASSWORD):
    return support.login(client, username, password)


csrf = support.session_csrf


def test_passwords_are_salted_scrypt_hashes():
    a, b = hash_password(PASSWORD), hash_password(PASSWORD)
    assert a != b and a.startswith("scrypt$n=16384,r=8,p=1$") and PASSWORD not in a
    assert verify_password(PASSWORD, a) and not verify_password("wrong password", a)
    with pytest.raises(AuthError, match="at least 10"):
        hash_password("short")


def test_every_page_needs_a_login(ctx):
    client = create_app(ctx, "k" * 32).server.test_client()
    assert client.get("/").status_code == 302 and "/login" in client.get("/").headers["Location"]
    assert client.post("/_dash-update-component", json={}).status_code == 401
    assert client.get("/healthz").json["status"] == "ok"


def test_login_logout_and_the_audit_log(ctx):
    client = create_app(ctx, "k" * 32).server.test_client()
    bad = login(client, "admin", "wrong password!")
    page_lang = "en" if '<html lang="en"' in bad.get_data(as_text=True) else "zh-CN"
    assert bad.status_code == 200 and TEXT["login.error.wrong"][page_lang] in bad.get_data(as_text=True)
    ok = login(client, "admin")
    assert ok.status_code == 302 and "_csrf_token" in ok.headers.get("Set-Cookie", "")
    assert client.get("/").status_code == 200
    client.get("/logout")
    assert client.get("/").status_code == 302
    actions = audit.events(ctx.engine)["action"].tolist()
    assert actions[:3] == ["logout", "login", "login_failed"]


def test_the_login_form_needs_its_csrf_token(ctx):
    client = create_app(ctx, "k" * 32).server.test_client()
    client.get("/login")
    assert client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf": "forged"}).status_code == 400


def test_failed_logins_never_lock_the_account(ctx):
    """A lockout would let anyone lock the rightful user out (issue 11); failures are throttled per address
    instead (portal.auth.LoginThrottle, tests/test_portal_security.py)."""
    for _ in range(10):
        with pytest.raises(AuthError, match="wrong"):
            authenticate(ctx.engine, "alpha", "not the password")
    assert authenticate(ctx.engine, "alpha", PASSWORD).username == "alpha"


def dash_render(client, pathname: str, headers: dict | None = None):
    return client.post("/_dash-update-component", json=support.render_body(pathname), headers=headers or {})


def test_dash_callbacks_without_the_csrf_header_are_refused(ctx):
    client = create_app(ctx, "k" * 32).server.test_client()
    login(client, "admin")
    assert dash_render(client, "/").status_code == 403
    assert dash_render(client, "/", {"X-CSRFToken": "forged"}).status_code == 403
    assert dash_render(client, "/", {"X-CSRFToken": csrf(client)}).status_code == 200


def test_an_enterprise_user_cannot_open_the_park_overview_by_crafting_the_request(ctx):
    """"/" is the overview for park-wide roles; an enterprise user asking for it gets its own page (its landing
    page), nothing of the park; asking for another page of a park-wide role is refused."""
    client = create_app(ctx, "k" * 32).server.test_client()
    login(client, "alpha")
    resp = dash_render(client, "/", {"X-CSRFToken": csrf(client)})
    assert resp.status_code == 200
    text = json.dumps(resp.json)
    assert "carbon-kpis" not in text and "ent-summary" in text and "Your role may not open this page" not in text
    assert "Beta Co." not in text and "E2" not in text and "7.0" not in text
    refused = json.dumps(dash_render(client, "/quality", {"X-CSRFToken": csrf(client)}).json)
    assert "Your role may not open this page" in refused
    assert "Beta Co." not in refused and "E2" not in refused and "7.0" not in refused


def test_the_admin_sees_the_overview_with_both_enterprises(ctx):
    client = create_app(ctx, "k" * 32).server.test_client()
    login(client, "admin")
    text = json.dumps(dash_render(client, "/", {"X-CSRFToken": csrf(client)}).json, ensure_ascii=False)
    assert "Alpha Co." in text and "Beta Co." in text


@pytest.mark.parametrize("where", [{"enterprise": "E2"}, {"series": "E2-M1"}, {"enterprise": ["E1", "E2"]}])
def test_the_access_layer_refuses_other_enterprises_data(ctx, where):
    alpha = load_user(ctx.engine, "alpha")
    with pytest.raises(Forbidden, match="E2"):
        ctx.access.aggregate(alpha, "energy", NOW.floor("D"), NOW, "hour", where=where)


def test_scopes_by_role(ctx):
    day = (NOW.floor("D"), NOW)
    alpha, bank, reg = (load_user(ctx.engine, u) for u in ("alpha", "bank", "reg"))
    own = ctx.access.aggregate(alpha, "energy", *day, "day", by=["enterprise"])
    assert own["enterprise"].tolist() == ["E1"] and own["value"].iloc[0] == 48.0
    assert ctx.access.aggregate(bank, "energy", *day, "day", by=["enterprise"]).empty  # no consent yet
    assert sorted(ctx.access.aggregate(reg, "energy", *day, "day", by=["enterprise"])["enterprise"]) == ["E1", "E2"]
    assert reg.role is Role.REGULATOR


def test_carbon_figures_are_cut_to_the_users_scope(ctx):
    from carbon import records
    from carbon.quota import QuotaPlan

    for e, allowances in (("E1", 100.0), ("E2", 0.1)):  # E2 emits 336 kWh x ~0.56 t/MWh = ~0.19 t
        records.record_quota_plan(ctx.engine, "p", QuotaPlan.absolute(e, 2024, allowances), actor="test")
        records.record_movement(ctx.engine, "p", e, 2024, "allocation", allowances, actor="test")
    alpha, admin = load_user(ctx.engine, "alpha"), load_user(ctx.engine, "admin")
    day = (NOW.floor("D"), NOW.floor("h"))
    mine = ctx.access.accounts(alpha, *day, "day")
    assert set(mine.totals["enterprise"]) == {"E1"} and "park" not in set(mine.totals["level"])
    assert set(mine.lines["enterprise"]) == {"E1"}
    everyone = ctx.access.accounts(admin, *day, "day")
    assert {"E1", "E2"} <= set(everyone.totals["enterprise"].dropna()) and "park" in set(everyone.totals["level"])
    pos = ctx.access.quota_positions(alpha, 2024, NOW, 97.49)
    assert pos["enterprise"].tolist() == ["E1"]
    assert ctx.access.ledger(alpha, 2024)["enterprise"].tolist() == ["E1"]
    both = ctx.access.quota_positions(admin, 2024, NOW, 97.49).set_index("enterprise")
    assert both.loc["E2", "status"] == "deficit" and both.loc["E1", "status"] == "surplus"


def test_the_cache_computes_once_for_concurrent_callers():
    import threading
    import time

    from portal.access import TTLCache

    cache, calls = TTLCache(60), []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return 42

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("k", slow))) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert results == [42] * 8 and len(calls) == 1
    assert TTLCache(0).get("k", lambda: 1) == 1  # a zero TTL always recomputes


def test_while_an_expired_value_is_recomputed_the_others_get_the_previous_one():
    """Stale while revalidating: one caller recomputes an expired value; callers meanwhile get the previous value
    at once instead of waiting; afterwards everyone gets the new one.  A missing value is still waited for."""
    import threading
    import time

    from portal.access import TTLCache

    cache = TTLCache(0.05)
    assert cache.get("k", lambda: "old") == "old"
    time.sleep(0.1)  # expired
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(5)
        return "new"

    recomputed = []
    worker = threading.Thread(target=lambda: recomputed.append(cache.get("k", slow)))
    worker.start()
    assert started.wait(5)
    t0 = time.monotonic()
    assert cache.get("k", lambda: "never") == "old"  # not computed again, not waited for
    assert time.monotonic() - t0 < 1.0
    release.set()
    worker.join()
    assert recomputed == ["new"] and cache.get("k", lambda: "never") == "new"
    # nothing cached yet: a second caller waits for the first, and neither gets a stale value
    cold, release2 = [], threading.Event()
    first = threading.Thread(target=lambda: cold.append(cache.get("c", lambda: release2.wait(5) and "v")))
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=lambda: cold.append(cache.get("c", lambda: "other")))
    second.start()
    time.sleep(0.05)
    assert cold == []
    release2.set()
    first.join()
    second.join()
    assert cold == ["v", "v"]


def test_a_scope_without_enterprises_gets_no_carbon_rows(ctx):
    """A bank without consent: empty accounts and positions, and naming an enterprise is refused."""
    bank = load_user(ctx.engine, "bank")
    acc = ctx.access.accounts(bank, NOW.floor("D"), NOW.floor("h"), "day")
    assert acc.totals.empty and acc.lines.empty and acc.issues.empty
    assert ctx.access.quota_positions(bank, 2024, NOW, 97.49).empty
    with pytest.raises(Forbidden):
        ctx.access.accounts(bank, NOW.floor("D"), NOW.floor("h"), "day", enterprises=["E1"])
