"""The data access layer under the request scope (portal.scope): every read of store data, carbon accounts, ledgers,
output values and quota positions goes through here with the user, and here the user's enterprises are enforced.

Authorisation lives on the server, not in the page: an enterprise user's queries are always restricted to its
own enterprise, whatever the browser sends; asking for another enterprise's data (by enterprise, workshop or
series) raises `Forbidden`, which the app logs and answers with nothing.  A bank sees only enterprises that
granted it consent (none until the evidence-pack issue brings consent); a regulator reads park-wide.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pandas as pd
from sqlalchemy import Engine

from carbon.emissions import Accounts
from park.model import Park
from park.store import TimeSeriesStore
from park.store.base import Where
from portal.auth import Role, User


class Forbidden(PermissionError):
    """The user asked for data outside its scope."""


class TTLCache:
    """A small time-limited memo for park-wide computations shared by all users' (scoped) views."""

    def __init__(self, ttl_s: float, max_items: int = 64) -> None:
        self.ttl_s, self.max_items = ttl_s, max_items
        self._items: dict = {}
        self._computing: dict = {}
        self._lock = threading.Lock()

    def get(self, key, compute: Callable):
        """The cached value, or compute it once: concurrent callers of the same key wait for the one computing,
        except that while a value past its time is being recomputed, the others are given that previous value
        (stale while revalidating: a page whose figures expire does not make every viewer wait for them)."""
        with self._lock:
            hit = self._items.get(key)
            if hit and time.monotonic() - hit[0] < self.ttl_s:
                return hit[1]
            key_lock = self._computing.setdefault(key, threading.Lock())
        if hit is not None and self.ttl_s > 0:
            if not key_lock.acquire(blocking=False):
                return hit[1]  # someone is computing its successor
        else:
            key_lock.acquire()
        try:
            with self._lock:
                hit = self._items.get(key)
                if hit and time.monotonic() - hit[0] < self.ttl_s:
                    return hit[1]
            value = compute()
            with self._lock:
                if len(self._items) >= self.max_items:
                    self._items.pop(min(self._items, key=lambda k: self._items[k][0]))
                self._items[key] = (time.monotonic(), value)
                self._computing.pop(key, None)
            return value
        finally:
            key_lock.release()

    def peek(self, key):
        """The cached value of `key` while it is fresh, else None (nothing is computed)."""
        with self._lock:
            hit = self._items.get(key)
            return hit[1] if hit and time.monotonic() - hit[0] < self.ttl_s else None


def cut_accounts(acc: Accounts, allowed: set[str] | frozenset[str]) -> Accounts:
    """`acc` restricted to the enterprises `allowed`: their workshop and enterprise rows, never park totals (which
    would reveal the others' sum), nor a row without an enterprise."""
    def cut(frame: pd.DataFrame) -> pd.DataFrame:
        if "enterprise" not in frame.columns:
            return frame.iloc[0:0]
        return frame[frame["enterprise"].isin(allowed)].reset_index(drop=True)

    totals = acc.totals[(acc.totals["level"] != "park") & acc.totals["enterprise"].isin(allowed)]
    return replace(acc, lines=cut(acc.lines), totals=totals.reset_index(drop=True), issues=cut(acc.issues),
                   fallbacks=cut(acc.fallbacks))


def _iso(ts) -> str:
    return pd.Timestamp(ts).isoformat()


class DataAccess:
    def __init__(self, store: TimeSeriesStore, park: Park, engine: Engine | None = None,
                 consents: Callable[[User], set[str]] | None = None, cache_ttl_s: float = 60.0,
                 now: Callable[[], object] | None = None) -> None:
        self.store = store
        self.park = park
        self.engine = engine
        self._cache = TTLCache(cache_ttl_s, max_items=256)  # per scope: accounts, activity, rendered pages
        self._consents = consents or (lambda user: set())
        self._now = now  # the portal's clock: what "known up to now" means for the accounts (None: the real now)
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

    def memo(self, user: User, name: str, compute: Callable):
        """A page's computed figures, shared for `cache_ttl_s` by users of the same scope (never across scopes):
        a dashboard whose intervals are 15 minutes long need not recompute for every viewer."""
        allowed = self.scope(user)
        key = (name, None if allowed is None else tuple(sorted(allowed)))
        return self._cache.get(key, compute)

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

    # ---- carbon figures: computed for the enterprises asked only, each once per scope and TTL ---------------------
    def _narrow(self, user: User, enterprises) -> frozenset[str] | None:
        """The enterprises a carbon computation covers: the user's scope, narrowed to `enterprises` when given
        (Forbidden for one outside the scope); None: the whole park."""
        allowed = self.scope(user)
        if enterprises is None:
            return None if allowed is None else frozenset(allowed)
        asked = frozenset([enterprises] if isinstance(enterprises, str) else enterprises)
        if allowed is not None and asked - allowed:
            raise Forbidden(f"user {user.username} may not read enterprise(s) {', '.join(sorted(asked - allowed))}")
        return asked

    def _accounts(self, who: frozenset[str] | None, start, end, period_kind: str, policy_name: str | None
                  ) -> Accounts:
        """Accounts of the enterprises `who` (None: the park) on a quota basis's policy (`policy_name`) or the
        default, cached for the TTL per (period, kind, basis, enterprises).  A park-wide accounting already
        cached serves any narrower one (cut); otherwise only `who`'s activity is read and accounted, which gives
        the same rows as the park-wide accounting cut to `who` (tests/test_page_enterprise.py checks it).
        Instruments are allocated over purchases known up to the portal's clock.  The park's factors, instruments
        and recorded activity are read once per TTL."""
        kind = period_kind.value if hasattr(period_kind, "value") else str(period_kind)
        base = ("accounts", _iso(start), _iso(end), kind, policy_name)
        if who is None:
            return self._cache.get((*base, None), lambda: self._compute_accounts(None, start, end, kind,
                                                                                  policy_name))
        park_wide = self._cache.peek((*base, None))
        if park_wide is not None:
            return cut_accounts(park_wide, who)
        acc = self._cache.get((*base, tuple(sorted(who))),
                              lambda: self._compute_accounts(who, start, end, kind, policy_name))
        return cut_accounts(acc, who)  # every answer is cut, whatever the computation returned

    def _compute_accounts(self, who: frozenset[str] | None, start, end, kind: str, policy_name: str | None
                          ) -> Accounts:
        from carbon import records
        from carbon.activity import load_activity
        from carbon.emissions import compute_accounts
        from carbon.errors import InputError
        from carbon.pipeline import DEFAULT_POLICY, account_park, instrument_basis, park_registry
        from carbon.quota import quota_basis_policy
        from carbon.regions import enterprise_regions

        policy = quota_basis_policy(policy_name)[0] if policy_name else DEFAULT_POLICY
        as_of = self._now() if self._now else None
        # the park's factors (shipped + its overrides): read once per TTL, not per accounting
        registry = self._cache.get(("registry",), lambda: park_registry(self.engine, self.park.id))
        if who is None:
            return account_park(self.store, self.engine, self.park, start, end, kind, policy, registry, strict=False,
                                as_of=as_of)
        # carbon.pipeline.account_park, with every input restricted to `who` (the store query included)
        window = "day" if kind == "day" else "month"
        ids = sorted(who)
        metered = self._cache.get(("activity", _iso(start), _iso(end), window, tuple(ids)),
                                  lambda: load_activity(self.store, start, end, window, ids or [""]))
        if metered.empty:  # nothing metered (no meters, or no enterprise): the park's accounting, cut by the caller
            return self._accounts(None, start, end, kind, policy_name)
        recorded = self._cache.get(("recorded", _iso(start), _iso(end), tuple(ids)),
                                   lambda: records.load_activity_records(self.engine, self.park.id, start, end,
                                                                         enterprises=ids))
        recorded = recorded[recorded["enterprise"].isin(who)]
        if window == "day" and len(recorded):
            raise InputError("recorded activity (bills, exports) is per month or longer: daily accounts cannot include "
                             "it; report per month")
        activity = pd.concat([metered, recorded], ignore_index=True) if len(recorded) else metered.copy()
        instruments = self._cache.get(("instruments",), lambda: records.load_instruments(self.engine, self.park.id))
        instruments = instruments[instruments["enterprise"].isin(who)].reset_index(drop=True)
        threshold = getattr(self.park, "coverage_threshold", 0.9)
        return compute_accounts(activity, registry, enterprise_regions(self.park),
                                policy, kind, instruments, coverage_threshold=threshold, strict=False,
                                instrument_basis=instrument_basis(self.store, self.engine, self.park, instruments,
                                                                  as_of))

    def accounts(self, user: User, start, end, period_kind: str = "month", quota_basis: str | None = None,
                 enterprises=None) -> Accounts:
        """Energy and Scope 1 + 2 accounts over [start, end); an enterprise user gets its own rows only (no park
        totals, which would reveal the others' sum).  `quota_basis`: on a quota plan's basis (its factor policy,
        carbon.quota.QUOTA_BASES) instead of the default policy.  `enterprises`: only these (within the scope:
        Forbidden otherwise), computed for them alone."""
        return self._accounts(self._narrow(user, enterprises), start, end, period_kind, quota_basis)

    def ledger(self, user: User, year: int) -> pd.DataFrame:
        from carbon import records

        ledger = records.load_ledger(self.engine, self.park.id, year)
        allowed = self.scope(user)
        return ledger if allowed is None else ledger[ledger["enterprise"].isin(allowed)].reset_index(drop=True)

    def output_values(self, user: User, start, end) -> pd.DataFrame:
        """Recorded monthly output value (产值, 10k CNY) per visible enterprise, months in [start, end)."""
        from carbon import records

        allowed = self.scope(user)  # read for the scope's enterprises alone, and cut again
        out = records.load_output_values(self.engine, self.park.id, pd.Timestamp(start).date(),
                                         pd.Timestamp(end).date(), enterprises=allowed)
        return out if allowed is None else out[out["enterprise"].isin(allowed)].reset_index(drop=True)

    def product_output(self, user: User, start, end) -> pd.DataFrame:
        """Recorded monthly product output per visible enterprise, months in [start, end)."""
        from carbon import records

        allowed = self.scope(user)  # read for the scope's enterprises alone, and cut again
        out = records.load_product_output(self.engine, self.park.id, pd.Timestamp(start).date(),
                                          pd.Timestamp(end).date(), enterprises=allowed)
        return out if allowed is None else out[out["enterprise"].isin(allowed)].reset_index(drop=True)

    def quota_positions(self, user: User, year: int, now, carbon_price_cny_per_t: float,
                        projection: pd.DataFrame | None = None, enterprises=None) -> pd.DataFrame:
        """Each visible enterprise's quota position for `year` (only `enterprises` when given), emissions to `now`
        on the basis its quota plan sets (carbon.pipeline.quota_emissions: the ETS rules by default), with their
        completeness; the emissions are accounted for those enterprises only (cached, see `_accounts`)."""
        from carbon import records
        from carbon.quota import DEFAULT_QUOTA_BASIS, position, quota_basis_policy

        who = self._narrow(user, enterprises)
        start = pd.Timestamp(year, 1, 1, tz=self.park.tz)
        end = min(pd.Timestamp(now).tz_convert(self.park.tz).floor("15min"),
                  pd.Timestamp(year + 1, 1, 1, tz=self.park.tz))
        ledger = self.ledger(user, year)
        if who is not None:
            ledger = ledger[ledger["enterprise"].isin(who)].reset_index(drop=True)
        plans = [p for p in records.load_quota_plans(self.engine, self.park.id, year)
                 if who is None or p.enterprise in who]
        cols = ["enterprise", "year", "basis", "emissions_t_co2e", "complete", "reasons"]
        if end <= start:
            emissions = pd.DataFrame({"enterprise": ledger["enterprise"].unique(), "year": year,
                                      "emissions_t_co2e": 0.0})
        else:  # carbon.pipeline.quota_emissions, per basis, for `who` only
            basis_of = {p.enterprise: p.basis for p in plans}
            members = [e.id for e in self.park.enterprises if who is None or e.id in who]
            frames = []
            for basis in sorted({basis_of.get(e, DEFAULT_QUOTA_BASIS) for e in members}):
                column = quota_basis_policy(basis)[1]
                ent = self._accounts(who, start, end, "year", basis).totals_at("enterprise")
                ent = ent[[basis_of.get(e, DEFAULT_QUOTA_BASIS) == basis for e in ent["enterprise"]]]
                frames.append(pd.DataFrame({"enterprise": ent["enterprise"], "year": year, "basis": basis,
                                            "emissions_t_co2e": ent[column], "complete": ent["complete"],
                                            "reasons": ent["reasons"]}))
            emissions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
            emissions = emissions[cols].sort_values("enterprise").reset_index(drop=True)
        out = position(ledger, emissions, carbon_price_cny_per_t, plans, projection=projection)
        return out if who is None else out[out["enterprise"].isin(who)].reset_index(drop=True)

    def quarantined(self, user: User) -> pd.DataFrame:
        q = self.store.quarantined()
        allowed = self.scope(user)
        if allowed is None:
            return q
        return q[q["series"].map(self._series_enterprise).isin(allowed)].reset_index(drop=True)
