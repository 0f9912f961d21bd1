"""The Flask side of the portal: login and logout pages, session settings, the login guard and CSRF checks.

Everything but the login page and static assets needs a signed-in user; Dash's callback endpoint refuses
POSTs whose `X-CSRFToken` header does not match the session's token (the Dash renderer copies it from the
`_csrf_token` cookie set at login)."""

from __future__ import annotations

import html
import os
import re
import secrets
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, abort, redirect, request, session
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user, login_user, logout_user

from portal import audit
from portal.auth import IDLE_HOURS, SESSION_HOURS, AuthError, LoginThrottle, authenticate, load_user
from portal.context import PortalContext
from portal.i18n import t

OPEN_PATHS = frozenset({"/login", "/_favicon.ico", "/favicon.ico", "/healthz"})  # exactly these paths
OPEN_PREFIXES = ("/assets/",)  # and what lies under these folders
MAX_NEXT = 2048
# What a redirect target may not contain: control characters and whitespace (browsers drop tabs and newlines
# from URLs, so "/\t/evil" becomes "//evil"), backslashes (read as "/"), and "//" (another host).
_UNSAFE_NEXT = re.compile(r"[\x00-\x20\x7f-\xa0\u1680\u2000-\u200f\u2028-\u202f\u205f\u3000\ufeff\\]|//")


def secret_key(data_dir: Path, env_value: str | None) -> str:
    """PARKCARBON_SECRET_KEY, or one generated once and kept (mode 0600) in the data folder."""
    if env_value:
        return env_value
    path = Path(data_dir) / "secret_key"
    if not path.exists():
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
    """Flask's signed-cookie sessions, with the cookie marked Secure whenever the request came over TLS (or
    always, with SESSION_COOKIE_SECURE)."""

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


def install(server: Flask, ctx: PortalContext, key: str, landing=lambda user: "/",
            may_open=lambda user, path: True, secure_cookies: bool = False,
            throttle: LoginThrottle | None = None) -> None:
    """Sessions, login and logout, the login guard and CSRF check.  `landing(user)` is the path a user starts on
    (after login, and for "/" when its role may not open it); `may_open(user, path)` says whether it may.
    Cookies are Secure over TLS, and always with `secure_cookies`."""
    server.config.update(SECRET_KEY=key, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                         SESSION_COOKIE_SECURE=secure_cookies,
                         PERMANENT_SESSION_LIFETIME=timedelta(hours=IDLE_HOURS), REMEMBER_COOKIE_DURATION=0)
    server.session_interface = _SessionInterface()
    throttle = throttle or LoginThrottle()
    manager = LoginManager(server)

    @server.after_request
    def headers(resp: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            resp.headers.setdefault(name, value)
        return resp

    def session_over() -> bool:
        """A session past its absolute lifetime, or begun with a password that has since been reset."""
        started = session.get("login_at")
        return (not isinstance(started, int | float) or time.time() - started > SESSION_HOURS * 3600
                or session.get("stamp") != current_user.stamp)

    @manager.user_loader
    def _load(username: str):
        return load_user(ctx.engine, username)

    @server.before_request
    def guard():
        path = request.path
        if is_open(path):
            return None
        if current_user.is_authenticated and session_over():
            logout_user()
            session.clear()
        if not current_user.is_authenticated:
            if path.startswith("/_dash-update-component"):
                abort(401)
            return redirect("/login?" + urlencode({"next": request.full_path if request.query_string else path}))
        session.permanent = True  # idle expiry: each request renews the cookie, up to the absolute lifetime
        if request.method == "GET" and path == "/" and not may_open(current_user, "/"):
            return redirect(landing(current_user))
        if request.method == "POST" and path.startswith("/_dash-"):
            sent = request.headers.get("X-CSRFToken", "")
            if not sent or not secrets.compare_digest(sent, session.get("csrf", "")):
                abort(403)
        return None

    @server.route("/healthz")
    def healthz():
        return {"status": "ok", "park": ctx.park.id, "store": ctx.store.backend}

    @server.route("/login", methods=["GET", "POST"])
    def login():
        lang = request.args.get("lang") or request.cookies.get("lang") or ctx.settings.language
        lang = lang if lang in ("zh-CN", "en") else "zh-CN"
        error, status = "", 200
        if request.method == "POST":
            # No token in the session (a form posted from another site, or a session that expired): refused.
            expected, sent = session.get("login_csrf"), request.form.get("csrf", "")
            if not expected or not sent or not secrets.compare_digest(sent, expected):
                abort(400, "the login form expired; reload the page")
            username, address = request.form.get("username", "").strip(), request.remote_addr
            wait = throttle.wait(address, username)
            try:
                if wait > 0:  # the same answer for a name that exists and one that does not
                    status = 429
                    raise AuthError(f"too many failed logins from this address: try again in {wait / 60:.0f} min"
                                    if wait >= 60 else f"too many failed logins from this address: try again in "
                                    f"{wait:.0f} s")
                user = authenticate(ctx.engine, username, request.form.get("password", ""))
            except AuthError as exc:
                if status != 429:
                    throttle.failed(address, username)
                audit.record(ctx.engine, username or "?", "login_throttled" if status == 429 else "login_failed",
                             detail=str(exc), ip=address)
                error = str(exc)
            else:
                throttle.succeeded(address, username)
                session.clear()
                login_user(user)
                session["csrf"] = secrets.token_urlsafe(32)
                session["login_at"], session["stamp"] = int(time.time()), user.stamp
                audit.record(ctx.engine, user.username, "login", ip=request.remote_addr)
                target = safe_next(request.args.get("next"))
                if target is None or target == "/":
                    target = landing(user)
                resp = redirect(target)
                resp.set_cookie("_csrf_token", session["csrf"], samesite="Lax", httponly=False,
                                secure=secure_cookies or request.is_secure)
                return resp
        # One token per browser session: a second tab or a stray request must not invalidate the first form.
        token = session.setdefault("login_csrf", secrets.token_urlsafe(32))
        return Response(_login_page(lang, token, error), status=status, mimetype="text/html")

    @server.route("/logout")
    def logout():
        if current_user.is_authenticated:
            audit.record(ctx.engine, current_user.username, "logout")
        logout_user()
        session.clear()
        resp = redirect("/login")
        resp.delete_cookie("_csrf_token")
        return resp


def _login_page(lang: str, token: str, error: str) -> str:
    other = "en" if lang == "zh-CN" else "zh-CN"
    err = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{t("app.title", lang)}</title>
<link rel="stylesheet" href="/assets/parkcarbon.css"></head>
<body class="login"><form method="post" class="login-card">
<h1>{t("app.title", lang)}</h1>{err}
<label>{t("login.username", lang)}<input name="username" id="username" autocomplete="username" required></label>
<label>{t("login.password", lang)}<input name="password" id="password" type="password"
 autocomplete="current-password" required></label>
<input type="hidden" name="csrf" value="{token}">
<button type="submit" id="login-submit">{t("login.submit", lang)}</button>
<a class="lang" href="/login?lang={other}">{t("lang.switch", lang)}</a>
</form></body></html>"""
