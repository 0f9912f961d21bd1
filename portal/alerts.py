"""Warnings (预警) for a user's scope, and their acknowledgements.

The engine computes the warnings current at a moment from the store and the carbon records, always through the
data access layer (an enterprise user gets its own only):

* quota_80 / quota_100: the share of the year's allowances used (carbon.quota.position, emissions on the quota
  plan's basis (carbon.pipeline.quota_emissions: the ETS rules by default) from 1 January to now) reached 80 % or
  100 %; one warning per enterprise, for the highest threshold; `since` is the day the cumulative emissions
  crossed it, against today's allowances;
* meter_silent: a meter without a reading for more than `SILENT_AFTER_INTERVALS` of its intervals;
* quarantine: readings of a meter quarantined (rejected with a rule code) in the last 24 hours, per meter and day;
* bracelet_silent: an equipment bracelet without a reading for longer than its gap limit, or never;
* off_shift: a machine that ran outside its shifts in the last 24 hours, per device and day
  (collectors.bracelet_analytics).

A warning's key is kind|subject|period, so the same situation computed again has the same key and an
acknowledgement (who, when: table `alert_acks`, and the audit log) stays attached to it; a new situation (a
higher threshold, a meter silent again after reporting) is a new warning.  Another source of warnings (the
forecasting module's anomalies) joins as another `kind` computed alongside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo

import pandas as pd
from sqlalchemy import Engine, ForeignKey, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from carbon.quota import DEFAULT_QUOTA_BASIS, quota_basis_policy
from collectors import bracelet_analytics as bracelets
from park import findings
from park.metadata import Base, UTCDateTime
from park.migrations import upgrade_schema
from park.model import Device, Meter, Park
from portal import audit
from portal.access import DataAccess, Forbidden
from portal.auth import Role, User
from portal.i18n import register, t

SILENT_AFTER_INTERVALS = 4
QUARANTINE_WINDOW = pd.Timedelta(hours=24)
OFF_SHIFT_WINDOW = pd.Timedelta(hours=24)
SEVERITIES = ("critical", "warning", "info")  # most severe first
# Each kind's code in the one finding catalogue (park/findings.py; documented in docs/warnings.md).  A kind
# spelled as a code (anomaly.*) is its own code.
KIND_CODES = {"quota_80": "warning.quota_80", "quota_100": "warning.quota_100",
              "meter_silent": "warning.meter_silent", "quarantine": "warning.quarantine",
              "bracelet_silent": "warning.bracelet_silent", "off_shift": "warning.off_shift",
              "quota_projected": "warning.quota_projected"}
ACK_ROLES = {Role.ADMIN, Role.ENTERPRISE}

TEXT = {
    "alert.kind.quota_80": {"zh-CN": "配额使用已达 80%", "en": "Allowances 80% used"},
    "alert.kind.quota_100": {"zh-CN": "超排预警：配额已用尽", "en": "Over-emission: allowances used up"},
    "alert.kind.meter_silent": {"zh-CN": "计量表无数据", "en": "Silent meter"},
    "alert.kind.quarantine": {"zh-CN": "数据被隔离", "en": "Quarantined readings"},
    "alert.severity.critical": {"zh-CN": "严重", "en": "Critical"},
    "alert.severity.warning": {"zh-CN": "警告", "en": "Warning"},
    "alert.severity.info": {"zh-CN": "提示", "en": "Notice"},
    "alert.what.quota": {
        "zh-CN": "{year} 年配额已使用 {used:.1%}：截至目前排放 {emissions_t:,.2f} tCO2e，配额 {cover_t:,.2f} t"
                 "（数据完整率 {coverage:.1%}）",
        "en": "{used:.1%} of the {year} allowances used: {emissions_t:,.2f} tCO2e to date against {cover_t:,.2f} t "
              "(data coverage {coverage:.1%})"},
    "alert.what.quota_none": {
        "zh-CN": "尚无 {year} 年配额：截至目前排放 {emissions_t:,.2f} tCO2e（数据完整率 {coverage:.1%}）",
        "en": "No {year} allowances yet: {emissions_t:,.2f} tCO2e to date (data coverage {coverage:.1%})"},
    "alert.what.meter_silent": {
        "zh-CN": "{meter}（{carrier}）已有 {missed} 个计量区间（每区间 {interval_min} 分钟）无读数",
        "en": "{meter} ({carrier}): no reading for {missed} intervals of {interval_min} min"},
    "alert.what.meter_never": {"zh-CN": "{meter}（{carrier}）从未上报读数",
                               "en": "{meter} ({carrier}): no reading ever received"},
    "alert.kind.bracelet_silent": {"zh-CN": "设备手环无数据", "en": "Silent bracelet"},
    "alert.kind.off_shift": {"zh-CN": "班外运行", "en": "Running outside shifts"},
    "alert.what.bracelet_silent": {"zh-CN": "{device}（{name}）已 {minutes:,.0f} 分钟无读数",
                                   "en": "{device} ({name}): no reading for {minutes:,.0f} min"},
    "alert.what.bracelet_never": {"zh-CN": "{device}（{name}）从未上报读数",
                                  "en": "{device} ({name}): no reading ever received"},
    "alert.what.off_shift": {"zh-CN": "{device}（{name}）在班次外运行 {hours:,.1f} 小时（{first}–{last}）",
                             "en": "{device} ({name}) ran {hours:,.1f} h outside its shifts ({first}–{last})"},
    "alert.what.quarantine": {"zh-CN": "{meter}：{rows} 条读数被隔离（{codes}），来源 {sources}",
                              "en": "{meter}: {rows} readings quarantined ({codes}), source {sources}"},
}
register(TEXT)


@dataclass(frozen=True)
class Alert:
    """One current warning: `sentence` (a translation key) filled with `detail` says what it is."""

    kind: str  # quota_80, quota_100, meter_silent, quarantine
    subject: str  # the enterprise (quota) or the meter (silent meter, quarantine)
    period: str  # the compliance year (quota), the end of the last reading (silent meter), the day received
    severity: str  # critical, warning or info
    enterprise: str | None  # None: quarantined rows of no known meter (the administrator's only)
    since: pd.Timestamp | None  # park-local; None: not known (a meter that never reported)
    sentence: str
    detail: dict[str, object] = field(default_factory=dict)
    since_resolution: str = "minute"  # "day": known to the day only (quota crossings)

    def __post_init__(self) -> None:
        findings.entry(self.code)  # every warning is a catalogued finding

    @property
    def code(self) -> str:
        """The warning's code in the finding catalogue (park/findings.py)."""
        return KIND_CODES.get(self.kind, self.kind)

    def finding(self, lang: str = "en") -> findings.Finding:
        """The warning as the project's one finding type."""
        return findings.Finding(self.code, self.what(lang), enterprise=self.enterprise, period=self.period,
                                subject=self.subject, extra=dict(self.detail))

    @property
    def key(self) -> str:
        """Stable identity: the same situation recomputed later has the same key."""
        return f"{self.kind}|{self.subject}|{self.period}"

    def what(self, lang: str) -> str:
        """The warning's sentence in `lang`."""
        detail = dict(self.detail)
        if "carrier" in detail:
            detail["carrier"] = t(f"carrier.{detail['carrier']}", lang)
        return t(self.sentence, lang).format(**detail)

    def since_text(self) -> str:
        if self.since is None:
            return "—"
        return self.since.strftime("%Y-%m-%d" if self.since_resolution == "day" else "%Y-%m-%d %H:%M")


class AlertAck(Base):
    """An acknowledged warning: who and when.  The warning stays listed, marked as acknowledged."""

    __tablename__ = "alert_acks"

    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    enterprise_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acknowledged_by: Mapped[str] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime] = mapped_column(UTCDateTime)


def create_tables(engine: Engine) -> None:
    """Upgrade the metadata database to the newest migration (park.migrations.upgrade_schema; idempotent): the
    acknowledgement table is the migrations', not made by importing this module."""
    upgrade_schema(engine)


# ---- the rules: pure functions over frames ---------------------------------------------------------------------


def in_quota_scheme(positions: pd.DataFrame) -> pd.Series:
    """Enterprises with a plan or allowances for the year: the others are not in the quota scheme."""
    return positions["has_plan"].fillna(False).astype(bool) | (positions["allowances_t"] > 0)


def first_reached(totals: pd.DataFrame, enterprise: str, target_t: float, before_t: float = 0.0
                  ) -> tuple[pd.Timestamp | None, float]:
    """The first period in which the enterprise's cumulative emissions (starting from `before_t`) reached
    `target_t`, and the cumulative emissions before that period.  totals: carbon accounts' enterprise totals with
    `quota_t_co2e`, the emissions on the enterprise's quota basis."""
    e = totals[totals["enterprise"] == enterprise].sort_values("period_start")
    cum = before_t + e["quota_t_co2e"].fillna(0.0).cumsum()
    hit = ((cum >= target_t * (1 - 1e-9)) & (cum > 0)).to_numpy()  # sums in another order may differ in the last bit
    if not hit.any():
        return None, before_t
    i = int(hit.argmax())
    return e["period_start"].iloc[i], float(cum.iloc[i - 1]) if i else before_t


def quota_alerts(positions: pd.DataFrame, monthly: pd.DataFrame, daily: dict[pd.Timestamp, pd.DataFrame]
                 ) -> list[Alert]:
    """Warnings for enterprises in the scheme whose used share reached a threshold (carbon.quota.position rows).

    monthly: enterprise totals per month of the year to date (period_start, enterprise, quota_t_co2e,
    measured, expected); daily: enterprise totals per day of the months in which a threshold was crossed, by
    month start (without them, `since` is the month's first day)."""
    out = []
    for row in positions[positions["threshold"].notna() & in_quota_scheme(positions)].itertuples():
        cover = row.allowances_t + row.ccer_usable_t
        target = row.threshold * cover
        since, before = first_reached(monthly, row.enterprise, target)
        if since is not None and since in daily:
            days = daily[since]
            day, _ = first_reached(days, row.enterprise, target, before)
            # Day and month accounts differ when a factor changes mid-month: then the month's last day.
            since = day if day is not None else days["period_start"].max()
        mine = monthly[monthly["enterprise"] == row.enterprise]
        expected = mine["expected"].sum()
        out.append(Alert(
            f"quota_{round(row.threshold * 100)}", row.enterprise, str(row.year),
            "critical" if row.threshold >= 1.0 else "warning", row.enterprise, since,
            "alert.what.quota" if cover > 0 else "alert.what.quota_none",
            {"year": int(row.year), "used": row.used_share, "emissions_t": row.emissions_t_co2e, "cover_t": cover,
             "coverage": mine["measured"].sum() / expected if expected else 0.0}, since_resolution="day"))
    return out


def silent_meter_alerts(latest: pd.DataFrame, meters: list[Meter], now: pd.Timestamp,
                        after_intervals: int = SILENT_AFTER_INTERVALS) -> list[Alert]:
    """Meters whose last reading is more than `after_intervals` intervals old, and meters that never reported.

    latest: series, ts (park-local interval start) as store.latest gives it; meters: park.model.Meter."""
    last = dict(zip(latest["series"], latest["ts"], strict=True))
    out = []
    for m in meters:
        step = pd.Timedelta(seconds=m.interval_s)
        detail = {"meter": m.id, "carrier": m.carrier.value, "interval_min": m.interval_s // 60}
        ts = last.get(m.id)
        if ts is None:
            out.append(Alert("meter_silent", m.id, "never", "warning", m.enterprise, None, "alert.what.meter_never",
                             detail))
            continue
        end = ts + step  # the reading covers [ts, ts + interval)
        missed = int((now - end) // step)
        if missed > after_intervals:
            out.append(Alert("meter_silent", m.id, end.isoformat(), "warning", m.enterprise, end,
                             "alert.what.meter_silent", {**detail, "missed": missed}))
    return out


def quarantine_alerts(quarantined: pd.DataFrame, series_enterprise: dict[str, str], now: pd.Timestamp,
                      tz: tzinfo, window: pd.Timedelta = QUARANTINE_WINDOW) -> list[Alert]:
    """One warning per meter (or, for rows of no known meter, per source) and day of receipt, for rows
    quarantined since `now - window`."""
    q = quarantined[quarantined["received"] >= pd.Timestamp(now).tz_convert("UTC") - window].copy()
    if q.empty:
        return []
    q["subject"] = q["series"].where(q["series"].fillna("").astype(str) != "", q["source"]).astype(str)
    q["local"] = q["received"].dt.tz_convert(tz)
    q["day"] = q["local"].dt.strftime("%Y-%m-%d")
    out = []
    for (subject, day), g in q.groupby(["subject", "day"], sort=True):
        codes = "; ".join(f"{c} ×{n}" for c, n in g["code"].value_counts().sort_index().items())
        out.append(Alert("quarantine", subject, day, "info", series_enterprise.get(subject), g["local"].min(),
                         "alert.what.quarantine", {"meter": subject, "rows": len(g), "codes": codes,
                                                   "sources": ", ".join(sorted(g["source"].astype(str).unique()))}))
    return out


def bracelet_alerts(status: pd.DataFrame, devices: list[Device]) -> list[Alert]:
    """Silent bracelets: status rows (collectors.bracelet_analytics.device_status) marked silent, or never seen."""
    by_id = {d.id: d for d in devices}
    out = []
    for r in status[status["silent"]].itertuples():
        d = by_id[r.device]
        detail = {"device": d.id, "name": d.name or d.id}
        if r.last_seen is None or pd.isna(r.last_seen):
            out.append(Alert("bracelet_silent", d.id, "never", "warning", d.enterprise, None,
                             "alert.what.bracelet_never", detail))
        else:
            seen = pd.Timestamp(r.last_seen)
            out.append(Alert("bracelet_silent", d.id, seen.isoformat(), "warning", d.enterprise, seen,
                             "alert.what.bracelet_silent", {**detail, "minutes": float(r.silent_min)}))
    return out


def off_shift_alerts(runs: pd.DataFrame, devices: list[Device], tz: tzinfo) -> list[Alert]:
    """One warning per device and park-local day of the runs outside shifts
    (collectors.bracelet_analytics.off_shift_runs)."""
    if runs.empty:
        return []
    by_id = {d.id: d for d in devices}
    r = runs.assign(local=runs["start"].dt.tz_convert(tz))
    r["day"] = r["local"].dt.strftime("%Y-%m-%d")
    out = []
    for (device, day), g in r.groupby(["device", "day"], sort=True):
        d = by_id[device]
        out.append(Alert("off_shift", device, day, "warning", d.enterprise, g["local"].min(), "alert.what.off_shift",
                         {"device": device, "name": d.name or device, "hours": g["seconds"].sum() / 3600,
                          "first": f"{g['local'].min():%H:%M}",
                          "last": f"{g['end'].max().tz_convert(tz):%H:%M}"}))
    return out


def _equipment(access: DataAccess, user: User, now: pd.Timestamp, visible: set[str]) -> list[Alert]:
    """Silent bracelets now, and machines that ran outside shifts in the last `OFF_SHIFT_WINDOW`."""
    devices = [d for d in access.park.devices if d.enterprise in visible]
    if not devices:
        return []
    start = now - OFF_SHIFT_WINDOW
    points = access.points(user, "current", start - bracelets.lead_time(devices), now + pd.Timedelta("1s"))
    recent = points[points["ts"] >= now - pd.Timedelta("1h")]
    status = bracelets.device_status(access.latest(user, "current"), recent, devices, now)
    return (bracelet_alerts(status, devices)
            + off_shift_alerts(bracelets.off_shift_runs(points, devices, start, now), devices, access.park.tz))


# ---- the engine: reads through the access layer ----------------------------------------------------------------


def current_alerts(access: DataAccess, user: User, now: datetime) -> list[Alert]:
    """Every warning current at `now` within the user's scope, most severe first."""
    park: Park = access.park
    now = pd.Timestamp(now).tz_convert(park.tz)
    visible = {e.id for e in access.enterprises(user)}
    alerts = _quota(access, user, now)
    meters = [m for m in park.meters if m.enterprise in visible]
    alerts += silent_meter_alerts(access.latest(user, "energy"), meters, now)
    series_enterprise = {m.id: m.enterprise for m in park.meters}
    alerts += quarantine_alerts(access.quarantined(user), series_enterprise, now, park.tz)
    alerts += _equipment(access, user, now, visible)
    from portal.forecast_figures import forecast_alerts  # the nightly forecast's cache: projections, anomalies

    alerts += forecast_alerts(access, user, now)
    return sorted(alerts, key=lambda a: (SEVERITIES.index(a.severity), a.enterprise or "", a.kind, a.subject))


def _quota(access: DataAccess, user: User, now: pd.Timestamp) -> list[Alert]:
    start = pd.Timestamp(now.year, 1, 1, tz=now.tz)
    end = now.floor("15min")
    if end <= start:
        return []
    # The warnings do not value the position: any carbon price gives the same shares.
    positions = access.quota_positions(user, now.year, now, 0.0)
    crossed = positions[positions["threshold"].notna() & in_quota_scheme(positions)]
    if crossed.empty:
        return []
    bases = crossed["basis"] if "basis" in crossed.columns else pd.Series(DEFAULT_QUOTA_BASIS, crossed.index)

    def totals(s, e, period_kind: str) -> pd.DataFrame:
        """Enterprise totals with each enterprise's emissions on its own plan's basis as `quota_t_co2e`."""
        frames = []
        for basis in sorted(set(bases)):
            column = quota_basis_policy(basis)[1]
            ent = access.accounts(user, s, e, period_kind, quota_basis=basis).totals_at("enterprise")
            mine = set(crossed.loc[bases == basis, "enterprise"])
            frames.append(ent[ent["enterprise"].isin(mine)].assign(quota_t_co2e=ent[column]))
        return pd.concat(frames, ignore_index=True)

    monthly = totals(start, end, "month")
    months = {first_reached(monthly, r.enterprise, r.threshold * (r.allowances_t + r.ccer_usable_t))[0]
              for r in crossed.itertuples()} - {None}
    daily = {m: totals(m, min(m + pd.DateOffset(months=1), end), "day") for m in months}
    return quota_alerts(crossed, monthly, daily)


# ---- acknowledgements ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ack:
    """Who acknowledged a warning, and when."""

    key: str
    by: str
    at: datetime  # UTC


def acknowledgements(engine: Engine, park_id: str) -> dict[str, Ack]:
    """Every acknowledgement of the park by warning key."""
    with Session(engine) as s:
        rows = s.scalars(select(AlertAck).where(AlertAck.park_id == park_id)).all()
        return {r.key: Ack(r.key, r.acknowledged_by, r.acknowledged_at) for r in rows}


def acknowledge(engine: Engine, access: DataAccess, user: User, key: str, now: datetime) -> Ack:
    """Acknowledge one of the user's current warnings (audit-logged); acknowledging it again changes nothing.

    Forbidden when the user's role may not acknowledge, or the key is not among its current warnings (another
    enterprise's, or made up): nothing is written."""
    if user.role not in ACK_ROLES:
        raise Forbidden(f"user {user.username} ({user.role}) may not acknowledge warnings")
    alert = next((a for a in current_alerts(access, user, now) if a.key == key), None)
    if alert is None:
        raise Forbidden(f"user {user.username} has no current warning {key!r}")
    park_id = access.park.id
    with Session(engine) as s, s.begin():
        row = s.get(AlertAck, (park_id, key))
        if row is not None:
            return Ack(key, row.acknowledged_by, row.acknowledged_at)
        at = datetime.now(UTC)
        s.add(AlertAck(park_id=park_id, key=key, kind=alert.kind, enterprise_id=alert.enterprise,
                       acknowledged_by=user.username, acknowledged_at=at))
    audit.record(engine, user.username, "ack_warning", key, kind=alert.kind, severity=alert.severity,
                 enterprise=alert.enterprise)
    return Ack(key, user.username, at)
