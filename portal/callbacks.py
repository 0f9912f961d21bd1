"""The one page-callback decorator: language, roles, scope and refusal for every callback of every page.

A page's `register(callbacks)` gets a `PageCallbacks` bound to the page (its PATH and ROLES).  Every callback it
declares with `callbacks.callback(...)` (and every download with `callbacks.download(...)`, portal.downloads):

* refuses a user whose role may not open the page: HTTP 403 and an audit record `refused` (page, callback), before
  anything is read or written, whatever the request;
* builds the request's `Scope` (portal.scope) and passes it first, then the page language (the shell's `lang`
  store: a State the page places where it likes, else appended last; the default language when it holds anything
  else), then the other values in order;
* answers a `Forbidden` raised under it (a read outside the scope) the same way: 403 and `refused`, with the reason.

The app keeps which page registered which callback (`PAGE_CALLBACKS` on the Dash app), so a test can check every
callback in `app.callback_map` against its page's roles.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from dash import Input, State
from flask import abort
from flask_login import current_user

from portal import audit
from portal.access import Forbidden
from portal.i18n import DEFAULT_LANGUAGE, LANGUAGES
from portal.scope import Scope, scope_for

PAGE_CALLBACKS = "parkcarbon_page_callbacks"  # attribute of the Dash app: callback_map key -> (page path, roles)


def page_lang(lang: str | None) -> str:
    """The language a callback renders in: the shell's `lang` store, or the default when it holds anything else."""
    return lang if lang in LANGUAGES else DEFAULT_LANGUAGE


class PageCallbacks:
    """Callbacks of one page, all behind the same guard (see the module docstring)."""

    def __init__(self, app, ctx, path: str, roles) -> None:
        self.app, self._ctx, self.path, self.roles = app, ctx, path, frozenset(roles)
        if not hasattr(app, PAGE_CALLBACKS):
            setattr(app, PAGE_CALLBACKS, {})

    def scope(self, action: str) -> Scope:
        """The current user's scope for this page, or HTTP 403 (audit-logged `refused`) when its role may not use
        the page."""
        user = current_user
        if user.role not in self.roles:
            audit.record(self._ctx.engine, user.username, "refused", self.path, callback=action)
            abort(403)
        return scope_for(self._ctx, user, self.path)

    def callback(self, *dependencies, action: str, **kwargs) -> Callable:
        """`@callbacks.callback(Output(...), Input(...), State(...), action="what it does")` decorates
        `fn(scope, lang, *values)`."""

        lang_state = State("lang", "data")
        deps = list(dependencies)
        if not any(isinstance(d, State) and d.component_id == "lang" for d in deps):
            deps.append(lang_state)
        values_of = [d for d in deps if isinstance(d, Input | State)]
        at = next(i for i, d in enumerate(values_of) if isinstance(d, State) and d.component_id == "lang")

        def decorate(fn: Callable) -> Callable:
            @functools.wraps(fn)
            def guarded(*values):
                scope = self.scope(action)
                lang, rest = page_lang(values[at]), values[:at] + values[at + 1:]
                try:
                    return fn(scope, lang, *rest)
                except Forbidden as exc:
                    audit.record(self._ctx.engine, scope.user.username, "refused", self.path, callback=action,
                                 reason=str(exc))
                    abort(403)

            before = set(self.app.callback_map)
            self.app.callback(*deps, **kwargs)(guarded)
            for key in set(self.app.callback_map) - before:
                getattr(self.app, PAGE_CALLBACKS)[key] = (self.path, self.roles)
            return guarded

        return decorate

    def download(self, prefix: str, name: str, table: Callable, *controls: State) -> None:
        """A table download (portal.downloads) behind the same guard: `table(scope, lang, *control values)`."""
        from portal import downloads

        downloads.register(self, prefix, name, table, *controls)

    def now(self):
        return self._ctx.now()

    @property
    def park_id(self) -> str:
        return self._ctx.park.id
