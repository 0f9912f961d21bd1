"""The Flask side of the portal: login and logout pages, session settings, the login guard and CSRF checks.

Everything but the login page, /healthz and static assets needs a signed-in user; Dash's callback endpoint
refuses POSTs whose `X-CSRFToken` header does not match the session's token (the Dash renderer copies it from the
`_csrf_token` cookie set at login).  The signed session cookie carries only the session's token: the session
itself is a record in the metadata database (portal.auth.SessionRow), so the portal's workers keep nothing
between requests and logout or a password reset ends the session for every copy of the cookie.

A browser that has signed in as a user carries a signed `pc_known` cookie naming it: the per-account slowdown of
the login throttle spares that browser, so a guesser elsewhere cannot keep the rightful user out."""

from __future__ import annotations

import html
import os
import re
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, abort, redirect, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_user, logout_user
from itsdangerous import BadSignature, URLSafeTimedSerializer

from portal import audit
from portal.auth import (
    SESSION_HOURS,
    AuthError,
    LoginThrottle,
    authenticate,
    end_session,
    session_user,
    start_session,
)
from portal.context import PortalContext
from portal.evidence.api import register_routes as register_evidence_routes
from portal.i18n import register as register_text
from portal.i18n import t

OPEN_PATHS = frozenset({"/login", "/_favicon.ico", "/favicon.ico", "/healthz"})  # exactly these paths
OPEN_PREFIXES = ("/assets/", "/api/v1/evidence", "/evidence/public/")  # and under these (evidence API: its own tokens)
MAX_NEXT = 2048
KNOWN_COOKIE, KNOWN_DAYS, KNOWN_MAX = "pc_known", 90, 5  # browsers a user signed in from (the throttle spares them)
WORKER_HEADER = "X-ParkCarbon-Worker"  # the serving process id, only with PARKCARBON_EXPOSE_WORKER=1 (tests)
# What a redirect target may not contain: control characters and whitespace (browsers drop tabs and newlines
# from URLs, so "/\t/evil" becomes "//evil"), backslashes (read as "/"), and "//" (another host).
_UNSAFE_NEXT = re.compile(r"[\x00-\x20\x7f-\xa0\u1680\u2000-\u200f\u2028-\u202f\u205f\u3000\ufeff\\]|//")
LANG_COOKIE, LANG_DAYS = "lang", 365  # the browser's language (login page, header switch): the portal opens in it
LANGS = ("zh-CN", "en")
register_text({
    "login.error.wrong": {"zh-CN": "用户名或密码错误", "en": "Wrong user name or password"},
    "login.error.wait_min": {"zh-CN": "登录失败次数过多，请 {n} 分钟后再试",
                             "en": "Too many failed logins: try again in {n} min"},
    "login.error.wait_s": {"zh-CN": "登录失败次数过多，请 {n} 秒后再试",
                           "en": "Too many failed logins: try again in {n} s"},
    "login.error.expired": {"zh-CN": "登录表单已过期，请刷新页面", "en": "The login form expired; reload the page"},
})


def language(default: str) -> str:
    """The language this request's browser chose (its `lang` cookie, set at login and by the header's switch), else
    `default`; outside a request, `default`."""
    from flask import has_request_context

    chosen = request.cookies.get(LANG_COOKIE) if has_request_context() else None
    return chosen if chosen in LANGS else (default if default in LANGS else "zh-CN")


def keep_language(resp, lang: str) -> None:
    """Remember the browser's language on `resp` (a Flask response) for the next page loads."""
    from flask import current_app

    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure
    resp.set_cookie(LANG_COOKIE, lang, max_age=LANG_DAYS * 86400, samesite="Lax", httponly=True, secure=secure)


def secret_key(data_dir: Path, env_value: str | None) -> str:
    """PARKCARBON_SECRET_KEY, or one generated once and kept (mode 0600) in the data folder."""
    if env_value:
        return env_value
    path = Path(data_dir) / "secret_key"
    if not path.exists():  # (several workers may race here: O_EXCL makes one of them the writer)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # created 0600 in one step: no moment where another user could read it
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie (it carries the session's token and CSRF tokens, nothing else), marked Secure
    whenever the request came over TLS (or always, with SESSION_COOKIE_SECURE)."""

    def get_cookie_secure(self, app) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def is_open(path: str) -> bool:
    """Whether a path is served without login: the login page, health, favicon and static assets, nothing else
    (``/loginx`` is not ``/login``)."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


def safe_next(target: str | None) -> str | None:
    """`target` when it is a path on this site (a relative path from the root: no scheme, no host, no control
    characters or whitespace, no backslash, no "//"); None otherwise, and the caller falls back to the user's
    landing page.  Nothing is repaired: a suspicious target is refused, not cleaned into something else."""
    if not target or len(target) > MAX_NEXT or not target.startswith("/") or _UNSAFE_NEXT.search(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return None
    return target


def _cookie_secure(server: Flask) -> bool:
    return bool(server.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def install(server: Flask, ctx: PortalContext, key: str, landing=lambda user: "/",
            may_open=lambda user, path: True, secure_cookies: bool = False,
            throttle: LoginThrottle | None = None) -> None:
    """Sessions, login and logout, the login guard and CSRF check.  `landing(user)` is the path a user starts on
    (after login, and for "/" when its role may not open it); `may_open(user, path)` says whether it may.
    Cookies are Secure over TLS, and always with `secure_cookies` (or SESSION_COOKIE_SECURE set later, as
    `parkcarbon serve` does from [serve] secure_cookies)."""
    server.config.update(SECRET_KEY=key, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                         SESSION_COOKIE_SECURE=secure_cookies,
                         PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS), REMEMBER_COOKIE_DURATION=0)
    server.session_interface = _SessionInterface()
    throttle = throttle or LoginThrottle(ctx.engine)
    known_signer = URLSafeTimedSerializer(key, salt="parkcarbon-known-browser")
    manager = LoginManager(server)
    expose_worker = os.environ.get("PARKCARBON_EXPOSE_WORKER") == "1"

    @server.after_request
    def headers(resp: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            resp.headers.setdefault(name, value)
        if expose_worker:
            resp.headers[WORKER_HEADER] = str(os.getpid())
        return resp

    @manager.user_loader
    def _load(username: str):
        """The session's user when its server-side record is live (not revoked, not expired, not idle)."""
        user = session_user(ctx.engine, session.get("sid"))
        return user if user is not None and user.username == username else None

    def known_names() -> list[str]:
        try:
            names = known_signer.loads(request.cookies.get(KNOWN_COOKIE, ""), max_age=KNOWN_DAYS * 86400)
        except BadSignature:
            return []
        return [n for n in names if isinstance(n, str)] if isinstance(names, list) else []

    @server.before_request
    def guard():
        path = request.path
        if is_open(path):
            return None
        if not current_user.is_authenticated:
            if session.get("sid"):  # a revoked, expired or idle session: forget it
                session.clear()
            if path.startswith("/_dash-update-component"):
                abort(401)
            return redirect("/login?" + urlencode({"next": request.full_path if request.query_string else path}))
        session.permanent = True
        if request.method == "GET" and path == "/" and not may_open(current_user, "/"):
            return redirect(landing(current_user))
        if request.method == "POST" and path.startswith("/_dash-"):
            sent = request.headers.get("X-CSRFToken", "")
            if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
                abort(403)
        return None

    register_evidence_routes(server, ctx)  # bank API (token) and published keys: portal/evidence/api.py

    @server.route("/healthz")
    def healthz():
        from portal.serve import health

        report = health(ctx)
        return report, (200 if report["status"] == "ok" else 503)

    @server.route("/login", methods=["GET", "POST"])
    def login():
        # the page's language: the form's (the page it was posted from), the link's, the browser's, the park's
        lang = next((v for v in (request.form.get("lang"), request.args.get("lang")) if v in LANGS), None)
        lang = lang or language(ctx.settings.language)
        error, status = "", 200
        if request.method == "POST":
            # No token in the session (a form posted from another site, or a session that expired): refused.
            expected, sent = session.get("login_csrf"), request.form.get("csrf", "")
            if not expected or not sent or not secrets.compare_digest(sent, expected):
                abort(400, t("login.error.expired", lang))
            username, address = request.form.get("username", "").strip(), request.remote_addr
            known = known_names()
            wait = throttle.wait(address, username, known_browser=username.lower() in known)
            try:
                if wait > 0:  # the same answer for a name that exists and one that does not
                    status = 429
                    raise AuthError(f"too many failed logins: try again in {wait / 60:.0f} min" if wait >= 60
                                    else f"too many failed logins: try again in {max(wait, 1):.0f} s")
                user = authenticate(ctx.engine, username, request.form.get("password", ""))
            except AuthError as exc:
                if status != 429:
                    throttle.failed(address, username)
                audit.record(ctx.engine, username or "?", "login_throttled" if status == 429 else "login_failed",
                             detail=str(exc), ip=address)
                # shown in the page's language (the audit log keeps the English detail)
                error = (t("login.error.wait_min", lang).format(n=f"{wait / 60:.0f}") if status == 429 and wait >= 60
                         else t("login.error.wait_s", lang).format(n=f"{max(wait, 1):.0f}") if status == 429
                         else t("login.error.wrong", lang))
            else:
                throttle.succeeded(address, username)
                session.clear()
                login_user(user)
                session["sid"] = start_session(ctx.engine, user, address)
                session["csrf"] = secrets.token_urlsafe(32)
                session.permanent = True
                audit.record(ctx.engine, user.username, "login", ip=address)
                target = safe_next(request.args.get("next"))
                if target is None or target == "/":
                    target = landing(user)
                resp = redirect(target)
                secure = _cookie_secure(server)
                resp.set_cookie("_csrf_token", session["csrf"], samesite="Lax", httponly=False, secure=secure)
                names = [user.username.lower()] + [n for n in known if n != user.username.lower()][: KNOWN_MAX - 1]
                resp.set_cookie(KNOWN_COOKIE, known_signer.dumps(names), max_age=KNOWN_DAYS * 86400,
                                samesite="Lax", httponly=True, secure=secure)
                keep_language(resp, lang)  # the portal opens in the login page's language
                return resp
        # One token per browser session: a second tab or a stray request must not invalidate the first form.
        token = session.setdefault("login_csrf", secrets.token_urlsafe(32))
        return Response(_login_page(lang, token, error, safe_next(request.args.get("next"))), status=status,
                        mimetype="text/html")

    @server.route("/logout")
    def logout():
        if current_user.is_authenticated:
            audit.record(ctx.engine, current_user.username, "logout")
        end_session(ctx.engine, session.get("sid"))  # the cookie, wherever it was copied, is worth nothing now
        logout_user()
        session.clear()
        resp = redirect("/login")
        resp.delete_cookie("_csrf_token")
        return resp


STORE_RETRY_S = 30
register_text({
    "store.down.title": {"zh-CN": "数据存储暂时无法访问", "en": "The data store cannot be reached"},
    "store.down.last": {"zh-CN": "以下为 {age} 前（{at}）的最近数据，可能已过时。",
                        "en": "Below: the last figures shown, from {at} ({age} ago); they may be out of date."},
    "store.down.body": {"zh-CN": f"暂时无法读取能耗和碳排放数据。存储恢复后，本页会自动显示数据"
                                 f"（每 {STORE_RETRY_S} 秒重试一次）。",
                        "en": f"Energy and carbon figures cannot be read right now. This page shows them again by "
                              f"itself once the store is back (it retries every {STORE_RETRY_S} s)."},
})


class LastPages:
    """The last page body each user was shown, per path and language, with when (this process only, at most
    `size` entries, the oldest dropped first): what the store-down banner shows underneath, with its age.  Keyed
    by user name, so nobody sees another user's figures."""

    def __init__(self, size: int = 64) -> None:
        import threading
        from collections import OrderedDict

        self.size, self._pages, self._lock = size, OrderedDict(), threading.Lock()

    def remember(self, key: tuple, body, at) -> None:
        with self._lock:
            self._pages[key] = (body, at)
            self._pages.move_to_end(key)
            while len(self._pages) > self.size:
                self._pages.popitem(last=False)

    def last(self, key: tuple):
        with self._lock:
            return self._pages.get(key)


class SerialisedTrees:
    """The JSON of page bodies, made once per body object: a page shares its rendered component tree for the
    figures' cache time (scope.memo), so every warm load used to send the same tree through Dash's JSON encoder
    again, most of a warm load's cost.  `of(tree)` gives the tree's JSON as an `orjson.Fragment`, which Dash's
    encoder (plotly.io's orjson engine) writes as it is: the same bytes, encoded once while the page memo hands
    out the same object.  A tree is keyed by identity and held (so its id cannot be reused) among the last `size`
    bodies.  With plotly's json engine (no orjson) the tree is returned unchanged."""

    def __init__(self, size: int = 64) -> None:
        import threading
        from collections import OrderedDict

        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def of(self, tree):
        import plotly.io as pio

        if pio.json.config.default_engine not in ("auto", "orjson"):
            return tree
        import orjson
        from plotly.io.json import to_json_plotly

        with self._lock:
            hit = self._items.get(id(tree))
            if hit is not None and hit[0] is tree:
                self._items.move_to_end(id(tree))
                return hit[1]
        fragment = orjson.Fragment(to_json_plotly(tree, engine="orjson"))
        with self._lock:
            self._items[id(tree)] = (tree, fragment)
            self._items.move_to_end(id(tree))
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return fragment


def _age(seconds: float, lang: str) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} 秒" if lang == "zh-CN" else f"{int(seconds)} s"
    if minutes < 120:
        return f"{minutes} 分钟" if lang == "zh-CN" else f"{minutes} min"
    return f"{minutes // 60} 小时" if lang == "zh-CN" else f"{minutes // 60} h"


def store_down(exc: Exception, lang: str, admin: bool = False, last=None, now=None):
    """The page body while the time-series store is unavailable: a banner saying so (the header and navigation
    stay), the store's own message for an administrator, the last body this user was shown on this page with its
    age (`last`: (body, when) from LastPages; `when` and `now` aware, in the park's time zone), and a reload
    every STORE_RETRY_S seconds, so the page recovers by itself when the store is back (a refresh <meta> works in
    the body; no callback needed)."""
    from datetime import UTC, datetime

    import dash_mantine_components as dmc
    from dash import html

    detail = [html.Pre(str(exc)[:500], className="store-down-detail")] if admin else []
    stale = []
    if last is not None:
        body, at = last
        age = ((now or datetime.now(UTC)) - at).total_seconds()
        stale = [html.P(t("store.down.last", lang).format(age=_age(age, lang), at=at.strftime("%H:%M")),
                        id="store-down-age"),
                 html.Div(body, id="store-down-last", className="stale")]
    return html.Div(id="store-down", children=[
        dmc.Alert(title=t("store.down.title", lang), color="orange", children=[t("store.down.body", lang), *detail]),
        html.Meta(httpEquiv="refresh", content=str(STORE_RETRY_S)),
        *stale,
    ])


def _login_page(lang: str, token: str, error: str, next_path: str | None = None) -> str:
    other = "en" if lang == "zh-CN" else "zh-CN"
    switch = html.escape("/login?" + urlencode({"lang": other, **({"next": next_path} if next_path else {})}))
    err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{t("app.title", lang)}</title>
<link rel="stylesheet" href="/assets/parkcarbon.css"></head>
<body class="login"><form method="post" class="login-card">
<h1>{t("app.title", lang)}</h1>{err}
<label>{t("login.username", lang)}<input name="username" id="username" autocomplete="username" required></label>
<label>{t("login.password", lang)}<input name="password" id="password" type="password"
 autocomplete="current-password" required></label>
<input type="hidden" name="csrf" value="{token}"><input type="hidden" name="lang" value="{lang}">
<button type="submit" id="login-submit">{t("login.submit", lang)}</button>
<a class="lang" href="{switch}">{t("lang.switch", lang)}</a>
</form></body></html>"""
