"""The Dash application: a Mantine app shell (header, role-based navigation, page area), login, routing.

Pages live in portal/pages/; each declares which roles may open it.  The navigation shows a user only its
pages, "/" and the login land each role on its own page (portal.pages.LANDING), the router refuses the others,
every page callback is refused (HTTP 403) for the same roles (portal.callbacks), and the request's scope
(portal.scope) enforces the user's enterprises under every read.
"""

from __future__ import annotations

from pathlib import Path

import dash
import dash_mantine_components as dmc
from dash import Input, Output, State, dcc, html
from flask_login import current_user

from park.store import StoreError
from portal import web
from portal.alerts import create_tables
from portal.callbacks import PageCallbacks
from portal.context import PortalContext
from portal.i18n import DEFAULT_LANGUAGE, LANGUAGES, t
from portal.pages import landing, load_pages
from portal.scope import scope_for

ASSETS = str(Path(__file__).resolve().parent.parent / "assets")


def create_app(ctx: PortalContext, secret: str | None = None) -> dash.Dash:
    pages = load_pages()
    app = dash.Dash(__name__, title=t("app.title", ctx.settings.language), assets_folder=ASSETS,
                    serve_locally=True, suppress_callback_exceptions=True, update_title=None)
    paths = {p.PATH: p for p in pages}
    last_pages = web.LastPages()  # what each user last saw, shown with its age while the store is down
    serialised = web.SerialisedTrees()  # a shared page body is JSON-encoded once, not on every load
    navs: dict = {}  # (role, language, page) -> the navigation's JSON

    def may_open(user, path: str) -> bool:
        return path in paths and user.role in paths[path].ROLES

    web.install(app.server, ctx, secret or web.secret_key(ctx.settings.data_dir, None),
                landing=lambda user: landing(user.role), may_open=may_open)

    def shell():
        """The page shell, per page load: its `lang` store starts in the browser's language (web.language: chosen
        on the login page or with the header's switch, kept in a cookie), which a browser-local copy cannot
        override."""
        return dmc.MantineProvider(theme={"primaryColor": "teal", "fontFamily": "inherit"}, children=[
            dcc.Location(id="url"),
            dcc.Store(id="lang", data=web.language(ctx.settings.language), storage_type="memory"),
            dmc.AppShell(header={"height": 56}, navbar={"width": 220, "breakpoint": "sm"}, padding="md", children=[
                dmc.AppShellHeader(dmc.Group(h="100%", px="md", justify="space-between", children=[
                    dmc.Group([html.Span(id="app-title", className="app-title"),
                               html.Span(id="park-name", className="park")]),
                    dmc.Group([html.Span(id="user-name", className="user"),
                               dmc.Button(id="lang-toggle", variant="outline", size="xs", n_clicks=0),
                               html.A(id="logout", href="/logout", className="logout")]),
                ])),
                dmc.AppShellNavbar(id="nav", p="sm", children=[]),
                dmc.AppShellMain(html.Div(id="page")),
            ]),
        ])

    app.layout = shell

    @app.callback(Output("lang", "data"), Input("lang-toggle", "n_clicks"), State("lang", "data"),
                  prevent_initial_call=True)
    def toggle(_: int, lang: str) -> str:
        new = "en" if lang == "zh-CN" else "zh-CN"
        web.keep_language(dash.callback_context.response, new)  # the next page load opens in it too
        return new

    @app.callback(Output("app-title", "children"), Output("park-name", "children"), Output("user-name", "children"),
                  Output("lang-toggle", "children"), Output("logout", "children"), Output("nav", "children"),
                  Output("page", "children"), Input("url", "pathname"), Input("lang", "data"))
    def render(pathname: str | None, lang: str | None):
        lang = lang if lang in LANGUAGES else DEFAULT_LANGUAGE
        user = current_user
        pathname = pathname or "/"
        if pathname == "/" and not may_open(user, "/"):
            pathname = landing(user.role)  # "/" is where every role starts: its own page, never a refusal
        page = paths.get(pathname)
        if page is None:
            body = dmc.Alert(t("page.not_found", lang), color="gray")
        elif user.role not in page.ROLES:
            body = dmc.Alert(t("page.forbidden", lang), color="red", id="forbidden")
        else:
            seen = (user.username, page.PATH, lang)
            try:
                body = page.layout(scope_for(ctx, user, page.PATH), lang)
                last_pages.remember(seen, body, ctx.now())
                body = serialised.of(body)
            except StoreError as exc:  # the store is down: header, navigation, a banner, the last figures shown
                body = web.store_down(exc, lang, admin=user.role == "admin", last=last_pages.last(seen),
                                      now=ctx.now())
        here = pathname if pathname in paths else None  # a key from the known paths only, never the request's text
        nav = navs.get((user.role, lang, here))
        if nav is None:  # the same few per role, language and page: built and encoded once
            nav = navs.setdefault((user.role, lang, here), serialised.of(
                [dmc.NavLink(label=t(p.TITLE_KEY, lang), href=p.PATH, active=here == p.PATH,
                             id=f"nav-{p.__name__.rsplit('.', 1)[-1]}") for p in pages if user.role in p.ROLES]))
        park = ctx.park.name if lang == "zh-CN" else ctx.park.name_en or ctx.park.name
        who = f"{user.display_name or user.username} · {t('role.' + user.role, lang)}"
        return (t("app.title", lang), park, who, t("lang.switch", lang), t("logout", lang), nav, body)

    create_tables(ctx.engine)  # the warnings' acknowledgements
    for page in pages:
        if hasattr(page, "register"):
            page.register(PageCallbacks(app, ctx, page.PATH, page.ROLES))
    return app
