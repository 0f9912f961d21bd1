"""Portal pages.  Each page module has PATH, TITLE_KEY, ROLES, `layout(ctx, user, lang)`, optionally
`register(app, ctx)` for its callbacks and a TEXT table registered with portal.i18n.  The navigation shows a user
only the pages its role may open, and the router refuses the others (the data access layer enforces the same
rules again under every query).  Pages appear in the navigation in this order."""

from __future__ import annotations

import importlib
from types import ModuleType

PAGE_MODULES = ["overview", "enterprise", "equipment", "quality", "warnings", "admin"]


def load_pages() -> list[ModuleType]:
    return [importlib.import_module(f"portal.pages.{name}") for name in PAGE_MODULES]
