"""The data access layer: every read the portal makes goes through here, and here the user's role is enforced.

Authorisation lives on the server, not in the page: an enterprise user's queries are always restricted to its
own enterprise, whatever the browser sends; asking for another enterprise's data (by enterprise, workshop or
series) raises `Forbidden`, which the app logs and answers with nothing.  A bank sees only enterprises that
granted it consent (none until the evidence-pack issue brings consent); a regulator reads park-wide.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from park.model import Park
from park.store import TimeSeriesStore
from park.store.base import Where
from portal.auth import Role, User


class Forbidden(PermissionError):
    """The user asked for data outside its scope."""


class DataAccess:
    def __init__(self, store: TimeSeriesStore, park: Park, consents: Callable[[User], set[str]] | None = None) -> None:
        self.store = store
        self.park = park
        self._consents = consents or (lambda user: set())
        self._series_enterprise = {s.id: s.enterprise for s in park.catalog().series}
        self._workshop_enterprise = {w.id: w.enterprise for w in park.workshops}

    def scope(self, user: User) -> set[str] | None:
        """Enterprise ids the user may see; None means the whole park."""
        if user.role in (Role.ADMIN, Role.REGULATOR):
            return None
        if user.role is Role.ENTERPRISE:
            return {user.enterprise_id} if user.enterprise_id else set()
        return self._consents(user) & {e.id for e in self.park.enterprises}

    def _where(self, user: User, where: Where | None) -> dict:
        where = {k: [v] if isinstance(v, str) else list(v) for k, v in (where or {}).items()}
        allowed = self.scope(user)
        if allowed is None:
            return where
        asked = set(where.get("enterprise", []))
        asked |= {self._series_enterprise.get(s, "?") for s in where.get("series", [])}
        asked |= {self._workshop_enterprise.get(w, "?") for w in where.get("workshop", [])}
        if asked - allowed:
            raise Forbidden(f"user {user.username} may not read enterprise(s) {', '.join(sorted(asked - allowed))}")
        where["enterprise"] = sorted(allowed & asked) if asked else sorted(allowed)
        return where

    def enterprises(self, user: User) -> list:
        allowed = self.scope(user)
        return [e for e in self.park.enterprises if allowed is None or e.id in allowed]

    def aggregate(self, user: User, measurement: str, start, end, window, by=(), agg=None,
                  where: Where | None = None) -> pd.DataFrame:
        return self.store.aggregate(measurement, start, end, window, by=by, agg=agg, where=self._where(user, where))

    def coverage(self, user: User, measurement: str, start, end, by=("series",), where: Where | None = None):
        return self.store.coverage(measurement, start, end, by=by, where=self._where(user, where))

    def latest(self, user: User, measurement: str, where: Where | None = None) -> pd.DataFrame:
        return self.store.latest(measurement, where=self._where(user, where))

    def points(self, user: User, measurement: str, start, end, where: Where | None = None) -> pd.DataFrame:
        return self.store.points(measurement, start, end, where=self._where(user, where))

    def quarantined(self, user: User) -> pd.DataFrame:
        q = self.store.quarantined()
        allowed = self.scope(user)
        if allowed is None:
            return q
        return q[q["series"].map(self._series_enterprise).isin(allowed)].reset_index(drop=True)
