"""Keeping the park-wide pages warm in each portal worker (refresh ahead).

The park overview for the park-wide scope (administrators and regulators share it) costs seconds to compute cold
(the park's accounts of the month and the year) and is then shared for the figures' cache time
(portal.access.TTLCache).  Under `parkcarbon serve` every worker has its own cache, so without this the first
viewers of each worker after a start, and of each new quarter hour, would wait for that computation, one worker
after another.  `Warmer` renders the overview (its body and its comparison) in a background thread when the worker
starts and again every `every_s`: a value past its time is recomputed there while viewers are given the previous
one (the cache's stale-while-revalidate), so a viewer waits only while a worker is still warming up.

The warm-up reads as a park-wide system user that never signs in (no session, no audit record); what it computes
is exactly what an administrator's first load would have computed.  `/healthz` says whether the worker is warm.
"""

from __future__ import annotations

import logging
import threading
import time

from portal.auth import Role, User

log = logging.getLogger(__name__)

WARM_USER = "(warm-up)"


class Warmer:
    def __init__(self, ctx, languages: tuple[str, ...], every_s: float = 20.0) -> None:
        self.ctx, self.languages, self.every_s = ctx, languages, every_s
        self.warm = False  # the first round is done (whether or not it succeeded)
        self.last_error: str | None = None
        self.first_round_s: float | None = None  # the cold computation, done here instead of by a first viewer
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="parkcarbon-warm", daemon=True)

    def start(self) -> Warmer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def once(self) -> float:
        """One round: the overview's body and comparison in each language; how long it took (s)."""
        from portal.pages import overview
        from portal.scope import scope_for

        user = User(WARM_USER, self.ctx.park.id, Role.ADMIN, None)
        t0 = time.monotonic()
        for lang in self.languages:
            scope = scope_for(self.ctx, user, overview.PATH)
            overview.layout(scope, lang)
            scope.overview_comparison(None)
        return time.monotonic() - t0

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                took = self.once()
                if self.first_round_s is None:
                    self.first_round_s = took
                self.last_error = None
                log.debug("warm-up round done in %.1f s", took)
            except Exception as exc:  # noqa: BLE001 (the store may be down: logged, tried again next round)
                self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                log.warning("warming the overview failed (tried again in %.0f s): %s", self.every_s,
                            self.last_error)
            self.warm = True
            self._stop.wait(self.every_s)


def keep_warm(ctx) -> None:
    """Start this process's Warmer when `[serve] warm` (the default) says so: every served worker
    (portal.serve.portal_wsgi) and the demo's one process (`parkcarbon demo`)."""
    from portal.serve import serve_options

    if serve_options(ctx.settings)["warm"]:
        ctx.warmer = Warmer(ctx, (ctx.settings.language,)).start()
