"""Portal pages.  Each page module has PATH, TITLE_KEY, ROLES, `layout(scope, lang)`, optionally
`register(callbacks)` for its callbacks (portal.callbacks.PageCallbacks: every callback refused, HTTP 403, for a role
the page refuses) and a TEXT table registered with portal.i18n.  A page reads only through the request's
`portal.scope.Scope`; it never imports the engine, the store or the records (tests/test_portal_scope.py checks).

The navigation shows a user only the pages its role may open, and the router refuses the others.  Each role lands
on its page after login (`LANDING`).  Pages appear in the navigation in this order."""

from __future__ import annotations

import importlib
from types import ModuleType

from portal.auth import Role

PAGE_MODULES = ["overview", "cockpit", "enterprise", "meters", "equipment", "quality", "warnings", "consents",
                "sharing", "reports", "admin"]
LANDING = {Role.ADMIN: "/", Role.REGULATOR: "/", Role.ENTERPRISE: "/enterprise", Role.BANK: "/consents"}


def load_pages() -> list[ModuleType]:
    return [importlib.import_module(f"portal.pages.{name}") for name in PAGE_MODULES]


def landing(role: Role) -> str:
    """The path a role lands on after login (and when it asks for "/")."""
    return LANDING[Role(role)]
