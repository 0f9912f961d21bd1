"""The login page's language, over real HTTP: the portal opens in the language chosen on the login page (and the
header's switch is remembered the same way), and a wrong password is answered in the page's language."""

from __future__ import annotations

import re

import pandas as pd
import pytest
import requests

import carbon.records  # noqa: F401  (the carbon tables)
from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal.app import create_app
from portal.auth import add_user
from portal.context import PortalContext
from portal.i18n import TEXT
from tests.support import portal as support
from tests.support.browser import serve

TZ = "Asia/Shanghai"
PARK = Park(id="p", name="测试园区", name_en="Test Park", enterprises=(Enterprise("E1", "甲公司", "Alpha Co."),),
            meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"),))
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
PASSWORD = "correct horse battery"
USERS = ("admin", "admin2", "admin3", "admin4", "admin5", "admin6")


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lang")
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, PARK)
    for name in USERS:
        add_user(engine, "p", name, PASSWORD, "admin", None)
    store = EmbeddedStore(tmp / "ts.duckdb", PARK.catalog(), TZ)
    ctx = PortalContext(Settings(data_dir=tmp), engine, PARK, store, clock=lambda: NOW)  # default language zh-CN
    with serve(create_app(ctx, "k" * 32).server) as base:
        yield base
    store.close()


def form(s: requests.Session, url: str, query: str = "") -> tuple[str, str]:
    """GET the login page; its HTML and the form's CSRF token."""
    page = s.get(f"{url}/login{query}")
    assert page.status_code == 200
    return page.text, re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)


def post(s: requests.Session, url: str, query: str, username: str, password: str, lang: str | None = None):
    _, token = form(s, url, query)
    data = {"username": username, "password": password, "csrf": token, **({"lang": lang} if lang else {})}
    return s.post(f"{url}/login{query}", data=data, allow_redirects=False)


def shell_lang(s: requests.Session, url: str) -> str:
    """The language the portal's shell starts in: its `lang` store in the layout the Dash renderer fetches."""
    def find(node):
        if isinstance(node, dict):
            if node.get("props", {}).get("id") == "lang":
                return node["props"]["data"]
            return next((f for f in map(find, node.values()) if f is not None), None)
        if isinstance(node, list):
            return next((f for f in map(find, node) if f is not None), None)
        return None

    resp = s.get(f"{url}/_dash-layout")
    assert resp.status_code == 200
    return find(resp.json())


@pytest.mark.parametrize("lang,user", [("en", "admin"), ("zh-CN", "admin2")])
def test_the_portal_opens_in_the_language_chosen_on_the_login_page(url, lang, user):
    s = requests.Session()
    if lang == "zh-CN":  # a browser that last used English chooses Chinese on the login page
        s.cookies.set("lang", "en", domain="127.0.0.1", path="/")
    resp = post(s, url, f"?lang={lang}", user, PASSWORD)
    assert resp.status_code == 302 and resp.cookies.get("lang") == lang
    assert shell_lang(s, url) == lang
    # the language is the browser's, not the session's: after logging out and in again, it is still chosen
    s.get(f"{url}/logout")
    assert post(s, url, "", user, PASSWORD).status_code == 302 and shell_lang(s, url) == lang
    text, _ = form(requests.Session(), url)  # another browser: the park's default language
    assert '<html lang="zh-CN"' in text


@pytest.mark.parametrize("lang,user", [("en", "admin3"), ("zh-CN", "admin4")])
def test_a_wrong_password_is_answered_in_the_pages_language(url, lang, user):
    other = "zh-CN" if lang == "en" else "en"
    s = requests.Session()
    resp = post(s, url, f"?lang={lang}", user, "not the password")
    assert resp.status_code == 200 and f'<html lang="{lang}"' in resp.text
    assert TEXT["login.error.wrong"][lang] in resp.text and TEXT["login.error.wrong"][other] not in resp.text
    unknown = post(s, url, f"?lang={lang}", "nobody-here", "not the password")  # the same answer for no such user
    assert TEXT["login.error.wrong"][lang] in unknown.text


def test_the_login_pages_language_switch_keeps_where_the_user_was_going(url):
    s = requests.Session()
    page = s.get(f"{url}/equipment", allow_redirects=True)  # not signed in: to the login page, next=/equipment
    switch = re.search(r'<a class="lang" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert "lang=en" in switch and "next=%2Fequipment" in switch
    token = re.search(r'name="csrf" value="([^"]+)"', s.get(url + switch).text).group(1)
    resp = s.post(url + switch, data={"username": "admin5", "password": PASSWORD, "csrf": token},
                  allow_redirects=False)
    assert resp.headers["Location"].endswith("/equipment") and resp.cookies.get("lang") == "en"
    assert shell_lang(s, url) == "en"


def test_the_headers_switch_is_remembered_for_the_next_page_load(url):
    s = requests.Session()
    assert post(s, url, "?lang=zh-CN", "admin6", PASSWORD).status_code == 302
    csrf = s.cookies.get("_csrf_token")
    resp = s.post(f"{url}/_dash-update-component", headers={"X-CSRFToken": csrf},
                  json=support.callback_body(["lang.data"], {"lang-toggle.n_clicks": 1}, {"lang.data": "zh-CN"}))
    assert resp.status_code == 200 and resp.json()["response"]["lang"]["data"] == "en"
    assert resp.cookies.get("lang") == "en" and shell_lang(s, url) == "en"
