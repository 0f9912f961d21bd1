"""One request's view of the park: who asks, in which role, which enterprises it may see, which consents are in
force.  A `Scope` is the only way a page reads or writes anything: pages never see the engine or the store.

The scope asks the wings (carbon.*, collectors.bracelet_analytics) for figures and the access layer
(portal.access.DataAccess) for data; the access layer enforces the same enterprise set under every query.  A read
outside the user's reach raises `Forbidden`, which the page-callback decorator (portal.callbacks) answers with
HTTP 403 and an audit record `refused`.

Bank consent plugs in through `ConsentProvider`: the enterprises that granted a bank consent in force.  Until the
evidence-pack issue records consents, the provider returns none, so a bank sees no enterprise; pages do not change
when consent arrives, only the provider given to `PortalContext`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon import records  # also registers the carbon tables before an engine is created
from carbon.emissions import Accounts
from park.model import Enterprise, Park
from portal import audit
from portal.access import Forbidden
from portal.auth import Role, User

ConsentProvider = Callable[[User], frozenset[str]]


def no_consents(user: User) -> frozenset[str]:
    """The consent provider until consent is recorded: no enterprise has granted any bank consent."""
    return frozenset()


@dataclass(frozen=True)
class Scope:
    """The signed-in user's scope for one request: user, role, the enterprises it may see (`enterprise_ids`, or
    the whole park when `park_wide`) and the consents in force (a bank's: the enterprises that granted it)."""

    user: User
    page: str  # the page whose callback or layout asks (for audit records)
    enterprise_ids: frozenset[str]
    park_wide: bool
    consents: frozenset[str]
    _ctx: object = field(repr=False, compare=False)

    # ---- who and what ----------------------------------------------------------------------------------------
    @property
    def role(self) -> Role:
        return self.user.role

    @property
    def park(self) -> Park:
        """The park's description (names, time zone, workshops, meters, devices): static metadata, no readings."""
        return self._ctx.park

    @property
    def timezone(self) -> str:
        return self._ctx.park.timezone

    def now(self) -> pd.Timestamp:
        """Now in park-local time (injectable clock for tests and demos)."""
        return self._ctx.now()

    def enterprises(self) -> list[Enterprise]:
        """The enterprises the user may see, in park order."""
        return [e for e in self._ctx.park.enterprises if self.park_wide or e.id in self.enterprise_ids]

    def may_see(self, enterprise: str | None) -> bool:
        return enterprise is not None and any(e.id == enterprise for e in self.enterprises())

    def names(self, lang: str) -> dict[str, str]:
        """Names of the visible enterprises in `lang`."""
        return {e.id: (e.name if lang == "zh-CN" else e.name_en or e.name) for e in self.enterprises()}

    def record(self, action: str, target: str = "", **detail: object) -> None:
        """Append to the audit log as this user."""
        audit.record(self._ctx.engine, self.user.username, action, target, **detail)

    def require(self, *roles: Role) -> None:
        """Forbidden unless the user has one of `roles` (a second check under the page decorator's)."""
        if self.user.role not in roles:
            raise Forbidden(f"user {self.user.username} ({self.user.role}) may not do this on {self.page}")

    # ---- store reads, through the access layer ---------------------------------------------------------------
    @property
    def _access(self):
        return self._ctx.access

    def aggregate(self, measurement: str, start, end, window, by=(), agg=None, where=None) -> pd.DataFrame:
        return self._access.aggregate(self.user, measurement, start, end, window, by=by, agg=agg, where=where)

    def coverage(self, measurement: str, start, end, by=("series",), where=None) -> pd.DataFrame:
        return self._access.coverage(self.user, measurement, start, end, by=by, where=where)

    def latest(self, measurement: str, where=None) -> pd.DataFrame:
        return self._access.latest(self.user, measurement, where=where)

    def points(self, measurement: str, start, end, where=None) -> pd.DataFrame:
        return self._access.points(self.user, measurement, start, end, where=where)

    def series_values(self, measurement: str, series: str, start, end) -> pd.DataFrame:
        """One series' readings as ts (UTC), value in time order (TimeSeriesStore.series_values: `points`
        without the series and quality columns, several times cheaper for a year of one-minute currents); the
        access layer's filter applies (Forbidden for a series outside the scope)."""
        where = self._access._where(self.user, {"series": [series]})
        return self._access.store.series_values(measurement, series, start, end, where=where)

    def quarantined(self) -> pd.DataFrame:
        return self._access.quarantined(self.user)

    def memo(self, name: str, compute: Callable):
        """Figures shared briefly by users of the same scope (never across scopes)."""
        return self._access.memo(self.user, name, compute)

    # ---- carbon records and accounts, through the access layer -----------------------------------------------
    def accounts(self, start, end, period_kind: str = "month", quota_basis: str | None = None,
                 enterprises=None) -> Accounts:
        """`enterprises`: only these (within the scope), accounted for them alone."""
        return self._access.accounts(self.user, start, end, period_kind, quota_basis, enterprises=enterprises)

    def ledger(self, year: int) -> pd.DataFrame:
        return self._access.ledger(self.user, year)

    def output_values(self, start, end) -> pd.DataFrame:
        return self._access.output_values(self.user, start, end)

    def product_output(self, start, end) -> pd.DataFrame:
        return self._access.product_output(self.user, start, end)

    def quota_positions(self, year: int, now, carbon_price_cny_per_t: float, enterprises=None) -> pd.DataFrame:
        return self._access.quota_positions(self.user, year, now, carbon_price_cny_per_t, enterprises=enterprises)

    def bills(self, start, end) -> pd.DataFrame:
        """Utility bills in force of the visible enterprises, periods overlapping [start, end) (park.bills)."""
        from park.bills import load_bills

        return load_bills(self._ctx.engine, self._ctx.park.id, start=start, end=end,
                          enterprises=None if self.park_wide else self.enterprise_ids)

    def restatements(self) -> pd.DataFrame:
        """Restated carbon figures of the visible enterprises (park-level rows only for a park-wide scope)."""
        r = records.load_restatements(self._ctx.engine, self._ctx.park.id)
        if self.park_wide:
            return r
        return r[r["enterprise"].isin(self.enterprise_ids)].reset_index(drop=True)

    # ---- the park overview ------------------------------------------------------------------------------------
    def overview(self, period: tuple[pd.Timestamp, pd.Timestamp] | None = None):
        """The overview's energy and carbon figures (portal.overview_figures) of `period` (park-local [start, end);
        None: this month to now), shared briefly within the scope."""
        from portal.overview_figures import overview

        return overview(self, period)

    def overview_comparison(self, period: tuple[pd.Timestamp, pd.Timestamp] | None = None):
        """The overview period's park figures beside the previous period, the same days last year and the year to
        date (portal.overview_figures.Comparison), shared briefly within the scope."""
        from portal.overview_figures import comparison

        return comparison(self, period)

    def live_load(self) -> pd.DataFrame:
        """Park electricity in kW over the last two hours' complete quarter hours."""
        from portal.overview_figures import live

        return live(self)

    def cockpit(self):
        """The big screen's figures (portal.overview_figures.compute_cockpit), shared briefly within the scope."""
        from portal.overview_figures import cockpit

        return cockpit(self)

    # ---- one enterprise --------------------------------------------------------------------------------------
    def enterprise(self, asked: str | None):
        """The enterprise-bound scope of `asked` (an enterprise user asking for nothing: its own), or None after
        recording the refusal (`access_denied`) in the audit log."""
        from portal.enterprise_scope import EnterpriseScope

        visible = [e.id for e in self.enterprises()]
        if asked is None and len(visible) == 1:
            asked = visible[0]
        if asked in visible:
            return EnterpriseScope(self, asked)
        self.record("access_denied", f"{self.page}:{asked}", role=str(self.user.role))
        return None

    # ---- forecasts: the nightly job's cache (forecasting.cache); nothing is trained in a request -----------------
    def forecasts(self, quantity: str | None = None, with_result: bool = True) -> list:
        """Cached forecasts of the visible enterprises (and the park's own series for a park-wide scope);
        `with_result=False`: summaries and burn-downs only (lists)."""
        from forecasting.cache import load_forecasts

        subjects = None if self.park_wide else set(self.enterprise_ids)
        return load_forecasts(self._ctx.engine, self._ctx.park.id, quantity, subjects, with_result)

    def quota_forecast(self, enterprise: str):
        """The cached quota-basis forecast and burn-down of one visible enterprise, or None."""
        from forecasting.cache import load_forecast, series_key

        if not self.may_see(enterprise):
            raise Forbidden(f"user {self.user.username} may not read enterprise {enterprise}")
        return load_forecast(self._ctx.engine, self._ctx.park.id, series_key(enterprise, "quota_t_co2e", "D"))

    # ---- warnings ----------------------------------------------------------------------------------------------
    def alerts(self) -> list:
        from portal.alerts import current_alerts

        return current_alerts(self._access, self.user, self.now())

    def acknowledgements(self) -> dict:
        from portal.alerts import acknowledgements

        return acknowledgements(self._ctx.engine, self._ctx.park.id)

    def acknowledge(self, key: str):
        """Acknowledge one of the user's current warnings; Forbidden when it is not one of them."""
        from portal.alerts import acknowledge

        return acknowledge(self._ctx.engine, self._access, self.user, key, self.now())

    def anomalies(self, start, end) -> pd.DataFrame:
        """Anomalies the nightly forecast job found (forecasting.cache) beginning in [start, end), of the visible
        enterprises, and whether their warning was acknowledged: enterprise, code, series, severity, start, end,
        acknowledged (the warning key is the one portal.forecast_figures gives them)."""
        from forecasting.cache import load_anomalies

        tz = self._ctx.park.tz
        rows = load_anomalies(self._ctx.engine, self._ctx.park.id, since=start,
                              enterprises=None if self.park_wide else set(self.enterprise_ids))
        acks = self.acknowledgements()
        out = []
        for r in rows:
            began = pd.Timestamp(r.start).tz_convert(tz)
            if pd.Timestamp(start) <= began < pd.Timestamp(end):
                out.append((r.enterprise_id, r.code, r.series, r.severity, began,
                            pd.Timestamp(r.end).tz_convert(tz), f"{r.code}|{r.series}|{began.isoformat()}" in acks))
        return pd.DataFrame(out, columns=["enterprise", "code", "series", "severity", "start", "end",
                                          "acknowledged"])

    # ---- regulator reports (portal/reports: the archive, the run log, the files) --------------------------------
    def report_versions(self) -> pd.DataFrame:
        """Every archived report version (kind, period, version, generated_at, outcome, failures, delivered)."""
        from portal.reports.archive import versions

        self.require(Role.REGULATOR, Role.ADMIN)
        return versions(self._ctx.engine, self._ctx.park.id)

    def report_runs(self, limit: int = 50) -> pd.DataFrame:
        from portal.reports.archive import runs

        self.require(Role.REGULATOR, Role.ADMIN)
        return runs(self._ctx.engine, self._ctx.park.id, limit)

    def report_job_runs(self, limit: int = 50) -> pd.DataFrame:
        """The jobs process's log of the scheduled report jobs (park.jobs): when each was due, its outcome and
        summary; a job that failed before making any report shows here only."""
        from park.jobs import job_runs

        self.require(Role.REGULATOR, Role.ADMIN)
        runs = [r for r in job_runs(self._ctx.engine, limit=1000) if r.job_id.startswith("reports.")][:limit]
        return pd.DataFrame([(r.job_id, r.scheduled_for, r.started, r.outcome, r.summary) for r in runs],
                            columns=["job", "scheduled_for", "started", "outcome", "summary"])

    def report_files(self, version_id: int) -> pd.DataFrame:
        """The files of one version of this park's archive (Forbidden for another park's)."""
        from portal.reports.archive import files

        self.require(Role.REGULATOR, Role.ADMIN)
        if version_id not in set(self.report_versions()["id"]):
            raise Forbidden(f"report version {version_id} is not in park {self._ctx.park.id}'s archive")
        return files(self._ctx.engine, version_id)

    def report_file(self, version_id: int, file_id: int) -> tuple[str, bytes]:
        """A stored file's name and bytes, checked against its SHA-256; recorded in the audit log."""
        from portal.reports.archive import read_file

        if file_id not in set(self.report_files(version_id)["id"]):
            raise Forbidden(f"report file {file_id} is not a file of report version {version_id}")
        name, data = read_file(self._ctx.settings, self._ctx.engine, file_id)
        self.record("download", name, report_version=version_id, bytes=len(data))
        return name, data

    # ---- administration (the park administrator only) ------------------------------------------------------
    def users(self) -> list:
        from portal.auth import list_users

        self.require(Role.ADMIN)
        return list_users(self._ctx.engine, self._ctx.park.id)

    def add_user(self, username: str, password: str, role: str, enterprise: str | None, display: str,
                 replace: bool) -> User:
        from portal.auth import add_user

        self.require(Role.ADMIN)
        return add_user(self._ctx.engine, self._ctx.park.id, username, password, role, enterprise, display,
                        replace=replace)

    def import_runs(self, limit: int = 20) -> list:
        """The latest park-file imports, newest first."""
        from park.metadata import ImportRun

        self.require(Role.ADMIN)
        with Session(self._ctx.engine) as s:
            return list(s.scalars(select(ImportRun).where(ImportRun.park_id == self._ctx.park.id)
                                  .order_by(ImportRun.id.desc()).limit(limit)))

    def factor_overrides(self) -> list:
        self.require(Role.ADMIN)
        return records.load_factor_overrides(self._ctx.engine, self._ctx.park.id)

    def factor_imports(self) -> pd.DataFrame:
        self.require(Role.ADMIN)
        return records.factor_imports(self._ctx.engine, self._ctx.park.id)

    def enterprise_ledger(self, year: int, enterprise: str | None = None) -> pd.DataFrame:
        self.require(Role.ADMIN)
        return records.load_ledger(self._ctx.engine, self._ctx.park.id, year, enterprise)

    def quota_plans(self, year: int) -> list:
        self.require(Role.ADMIN)
        return records.load_quota_plans(self._ctx.engine, self._ctx.park.id, year)

    def record_movement(self, enterprise: str, year: int, kind: str, amount_t: float, **kw) -> int:
        """Append a ledger movement as this user (carbon.records.record_movement)."""
        self.require(Role.ADMIN)
        return records.record_movement(self._ctx.engine, self._ctx.park.id, enterprise, year, kind, amount_t,
                                       actor=self.user.username, **kw)

    def audit_events(self, limit: int) -> pd.DataFrame:
        self.require(Role.ADMIN)
        return audit.events(self._ctx.engine, limit)

    # ---- green-loan evidence: consents and packs (portal/evidence, docs/evidence.md) ---------------------------
    def consent_list(self) -> list:
        """The consents the user is party to: a bank's own, its enterprise's, every one for the administrator."""
        from portal.evidence import consent

        if self.role is Role.BANK:
            return consent.consents(self._ctx.engine, self._ctx.park.id, bank=self.user.username)
        if self.role is Role.ENTERPRISE:
            return consent.consents(self._ctx.engine, self._ctx.park.id, enterprise=self.user.enterprise_id or "")
        self.require(Role.ADMIN)
        return consent.consents(self._ctx.engine, self._ctx.park.id)

    def consent_request(self, enterprise: str, purpose: str, data: list[str], period_from: str, period_to: str,
                        expires_at, project_start: str | None = None) -> object:
        """A bank asks an enterprise for consent (portal.evidence.consent.request)."""
        from portal.evidence import consent

        self.require(Role.BANK)
        return consent.request(self._ctx.engine, self._ctx.park.id, self.user.username, enterprise, purpose, data,
                               period_from, period_to, expires_at, now=self.now(), project_start=project_start)

    def consent_decide(self, consent_id: int, action: str, reason: str = "") -> object:
        """grant, refuse or revoke a consent as this user (the consent module checks the user is a party)."""
        from portal.evidence import consent

        if action not in ("grant", "refuse", "revoke"):
            raise Forbidden(f"unknown consent action {action!r}")
        return getattr(consent, action)(self._ctx.engine, int(consent_id), self.user.username, now=self.now(),
                                        reason=reason)

    def evidence_pack(self, enterprise: str, period: str) -> tuple[bytes, dict]:
        """The signed evidence pack of an enterprise and period, under this bank's consent in force (NoConsent
        otherwise, audit-logged)."""
        from portal.evidence.pack import issue

        return issue(self._ctx, self, enterprise, period, now=self.now())

    def peer_months(self, enterprise: str, start, end) -> pd.DataFrame:
        """Monthly energy (tce) and declared output value of `enterprise` and of the other enterprises of its
        industry in the park, the others anonymised (peer-1, peer-2, ...): the input of carbon.risk's peer
        statistics, which show only their count, median and a percentile rank (nothing below 3 peers).  Computed
        with park-wide rights like the overview's figures, but accounted for the industry's enterprises alone (the
        same rows as the park's accounting cut to them, portal.access; a cached park-wide accounting serves it);
        Forbidden unless the user may see `enterprise`."""
        from portal.auth import User

        if not self.may_see(enterprise):
            raise Forbidden(f"user {self.user.username} may not read enterprise {enterprise}")
        industry = next(e.industry for e in self._ctx.park.enterprises if e.id == enterprise)
        group = [e.id for e in self._ctx.park.enterprises if e.industry == industry]
        park_wide = User(username=f"{self.user.username}:peers", park_id=self._ctx.park.id, role=Role.REGULATOR,
                         enterprise_id=None)
        tot = self._access.accounts(park_wide, start, end, "month", enterprises=group).totals_at("enterprise")
        tot = tot[tot["enterprise"].isin(group)]
        out = self._access.output_values(park_wide, start, end)
        out = out[out["enterprise"].isin(group)].assign(month=lambda f: pd.to_datetime(f["month"]))
        frame = pd.DataFrame({"enterprise": tot["enterprise"], "month": tot["period_start"],
                              "energy_tce": tot["energy_tce"]})
        out["month"] = out["month"].dt.tz_localize(self._ctx.park.tz)
        frame = frame.merge(out[["enterprise", "month", "output_value_10k_cny"]], on=["enterprise", "month"],
                            how="left").rename(columns={"output_value_10k_cny": "output"})
        alias = {e: (e if e == enterprise else f"peer-{i}") for i, e in enumerate(sorted(set(group) - {enterprise}),
                                                                                  start=1)}
        alias[enterprise] = enterprise
        frame["enterprise"] = frame["enterprise"].map(alias)
        frame["industry"] = industry
        return frame.reset_index(drop=True)

    def evidence_packs(self) -> pd.DataFrame:
        """The packs issued to this bank (every pack for the administrator), newest first."""
        from portal.evidence.pack import pack_log

        self.require(Role.BANK, Role.ADMIN)
        mine = self.user.username if self.role is Role.BANK else None
        return pack_log(self._ctx.engine, self._ctx.park.id, issued_to=mine)


def scope_for(ctx, user: User, page: str = "") -> Scope:
    """The scope of `user` for one request (portal.context.PortalContext `ctx`)."""
    consents = ctx.consents(user) if user.role is Role.BANK else frozenset()
    allowed = ctx.access.scope(user)
    park_wide = allowed is None
    return Scope(user=user, page=page, enterprise_ids=frozenset(allowed or ()), park_wide=park_wide,
                 consents=frozenset(consents), _ctx=ctx)
