"""The Flask side of the portal: login and logout pages, session settings, the login guard and CSRF checks.

Everything but the login page and static assets needs a signed-in user; Dash's callback endpoint refuses
POSTs whose `X-CSRFToken` header does not match the session's token (the Dash renderer copies it from the
`_csrf_token` cookie set at login)."""

from __future__ import annotations

import html
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, Response, abort, redirect, request, session
from flask_login import LoginManager, current_user, login_user, logout_user

from portal import audit
from portal.auth import SESSION_HOURS, AuthError, authenticate, load_user
from portal.context import PortalContext
from portal.i18n import t

OPEN_PATHS = ("/login", "/assets/", "/_favicon.ico", "/favicon.ico", "/healthz")


def secret_key(data_dir: Path, env_value: str | None) -> str:
    """PARKCARBON_SECRET_KEY, or one generated once and kept (mode 0600) in the data folder."""
    if env_value:
        return env_value
    path = Path(data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def install(server: Flask, ctx: PortalContext, key: str, landing=lambda user: "/",
            may_open=lambda user, path: True) -> None:
    """Sessions, login and logout, the login guard and CSRF check.  `landing(user)` is the path a user starts on
    (after login, and for "/" when its role may not open it); `may_open(user, path)` says whether it may."""
    server.config.update(SECRET_KEY=key, SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                         PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS), REMEMBER_COOKIE_DURATION=0)
    manager = LoginManager(server)

    @manager.user_loader
    def _load(username: str):
        return load_user(ctx.engine, username)

    @server.before_request
    def guard():
        path = request.path
        if path.startswith(OPEN_PATHS):
            return None
        if not current_user.is_authenticated:
            if path.startswith("/_dash-update-component"):
                abort(401)
            return redirect(f"/login?next={request.full_path if request.query_string else path}")
        session.permanent = True  # sliding expiry: each request renews the session
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
        error = ""
        if request.method == "POST":
            if not secrets.compare_digest(request.form.get("csrf", ""), session.get("login_csrf", "-")):
                abort(400, "the login form expired; reload the page")
            username = request.form.get("username", "").strip()
            try:
                user = authenticate(ctx.engine, username, request.form.get("password", ""))
            except AuthError as exc:
                audit.record(ctx.engine, username or "?", "login_failed", detail=str(exc), ip=request.remote_addr)
                error = str(exc)
            else:
                session.clear()
                login_user(user)
                session["csrf"] = secrets.token_urlsafe(32)
                audit.record(ctx.engine, user.username, "login", ip=request.remote_addr)
                target = request.args.get("next") or "/"
                if not target.startswith("/") or target.startswith("//") or target == "/":
                    target = landing(user)
                resp = redirect(target)
                resp.set_cookie("_csrf_token", session["csrf"], samesite="Lax", httponly=False)
                return resp
        # One token per browser session: a second tab or a stray request must not invalidate the first form.
        token = session.setdefault("login_csrf", secrets.token_urlsafe(32))
        return Response(_login_page(lang, token, error), mimetype="text/html")

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
