"""The report archive: versions per (kind, period), their files, the differences between versions, and the run
log (tables made by migration 0007).

Running a report is idempotent per (kind, period): the content hash is taken of the report's data (not of the
time it was made), so a re-run with unchanged data finds the newest version's hash and adds nothing; changed
data (a late reading, a restatement) gives version N+1, keeping every older one, with the figures that changed
(enterprise, indicator, old, new).  Files are written under `<data_dir>/reports/<kind>/<period>/v<N>/` and
recorded with their SHA-256; every run (manual or scheduled) is logged with its outcome: success,
data-quality (a monitoring rule failed, the report is still archived with the failures in it), unchanged, or
error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Double, Engine, ForeignKey, String, Text, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from park.metadata import Base, UTCDateTime
from park.model import Park
from park.settings import Settings
from park.store import TimeSeriesStore
from portal.reports import KINDS
from portal.reports.config import ReportSettings, report_settings
from portal.reports.content import Reader, Report, build, differences
from portal.reports.periods import GRAIN, ReportPeriod
from portal.reports.render import PDF_KINDS, to_csvs, to_pdf, to_xlsx

log = logging.getLogger(__name__)
SUCCESS, DATA_QUALITY, UNCHANGED, ERROR = "success", "data-quality", "unchanged", "error"


class ReportVersionRow(Base):
    """One version of one report: its content hash, outcome and figures (JSON, for the next version's diff)."""

    __tablename__ = "report_versions"
    __table_args__ = (UniqueConstraint("park_id", "kind", "period", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"))
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(16))
    version: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    failures: Mapped[int]
    detail: Mapped[str] = mapped_column(Text)  # the rule failures, one per line
    figures: Mapped[str] = mapped_column(Text)  # JSON: "section|enterprise|item|indicator" -> value


class ReportFileRow(Base):
    __tablename__ = "report_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("report_versions.id"))
    format: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[str] = mapped_column(String(400))  # relative to the data directory
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int]


class ReportDifferenceRow(Base):
    """A figure that changed from the previous version to this one."""

    __tablename__ = "report_differences"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("report_versions.id"))
    section: Mapped[str] = mapped_column(String(32))
    enterprise: Mapped[str] = mapped_column(String(64))
    item: Mapped[str] = mapped_column(String(200))
    indicator: Mapped[str] = mapped_column(String(64))
    old_value: Mapped[float | None] = mapped_column(Double)
    new_value: Mapped[float | None] = mapped_column(Double)


class ReportRunRow(Base):
    """One run of a report, manual or scheduled, with its outcome."""

    __tablename__ = "report_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"))
    kind: Mapped[str] = mapped_column(String(16))
    period: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))  # manual or scheduled
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str] = mapped_column(String(16))
    version: Mapped[int | None]
    detail: Mapped[str] = mapped_column(Text)


class ReportDeliveryRow(Base):
    """One attempt to mail a report version."""

    __tablename__ = "report_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("report_versions.id"))
    recipients: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int]
    status: Mapped[str] = mapped_column(String(16))  # sent or failed
    error: Mapped[str] = mapped_column(Text)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass
class RunResult:
    kind: str
    period: str
    outcome: str
    version: int | None
    created: bool = False
    version_id: int | None = None
    failures: list[str] = field(default_factory=list)
    differences: list[dict] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    detail: str = ""

    def summary(self) -> str:
        what = f"{self.kind} {self.period}"
        if self.outcome == ERROR:
            return f"{what}: error: {self.detail}"
        state = f"version {self.version} ({'new' if self.created else 'unchanged: same data as before'})"
        diff = f", {len(self.differences)} figure(s) changed" if self.created and self.version and \
            self.version > 1 else ""
        rules = f", {len(self.failures)} rule failure(s)" if self.failures else ", rules passed"
        return f"{what}: {state}{diff}{rules}"


def report_scope(settings: Settings, engine: Engine, park: Park, store: TimeSeriesStore, now):
    """The park-wide regulator scope the reports read through (portal.scope: the pages' one data path)."""
    from portal.auth import Role, User
    from portal.context import PortalContext
    from portal.scope import scope_for

    ctx = PortalContext(settings, engine, park, store, clock=lambda: now)
    user = User("parkcarbon-reports", park.id, Role.REGULATOR, None, "scheduled reports")
    return scope_for(ctx, user, page="reports")


def parse_period(kind: str, text: str) -> ReportPeriod:
    if kind not in KINDS:
        raise ValueError(f"unknown report kind {kind!r}; one of {', '.join(KINDS)}")
    return ReportPeriod.parse(text, GRAIN[kind])


def _now() -> datetime:
    return datetime.now(UTC)


def _latest(session: Session, park_id: str, kind: str, period: str) -> ReportVersionRow | None:
    return session.scalars(select(ReportVersionRow).where(
        ReportVersionRow.park_id == park_id, ReportVersionRow.kind == kind, ReportVersionRow.period == period)
        .order_by(ReportVersionRow.version.desc()).limit(1)).first()


def run_report(settings: Settings, engine: Engine, park: Park, store: TimeSeriesStore, kind: str,
               period: ReportPeriod | str, *, now: datetime | None = None, trigger: str = "manual",
               cfg: ReportSettings | None = None) -> RunResult:
    """Build the report of `kind` for `period`, archive it as a new version when its data changed, and log the
    run.  Never raises for a report that cannot be built: the run is logged as an error and returned."""
    cfg = cfg or report_settings(settings)
    p = parse_period(kind, period) if isinstance(period, str) else period
    started = _now()
    now = pd.Timestamp(now or started)
    with Session(engine) as session:
        run = ReportRunRow(park_id=park.id, kind=kind, period=p.label, trigger=trigger, started_at=started,
                           outcome="running", detail="")
        session.add(run)
        session.commit()
        run_id = run.id
    try:
        reader = Reader(report_scope(settings, engine, park, store, now), cfg)
        report = build(reader, kind, p)
        result = archive(settings, engine, report, cfg, generated_at=now.to_pydatetime())
    except Exception as exc:  # logged with the run, then re-raised by the caller if it wants to
        log.exception("report %s %s failed", kind, p.label)
        result = RunResult(kind, p.label, ERROR, None, detail=f"{type(exc).__name__}: {exc}")
    with Session(engine) as session:
        run = session.get(ReportRunRow, run_id)
        run.finished_at, run.outcome, run.version = _now(), result.outcome, result.version
        run.detail = result.detail or "\n".join(result.failures)
        session.commit()
    return result


def archive(settings: Settings, engine: Engine, report: Report, cfg: ReportSettings, generated_at: datetime
            ) -> RunResult:
    """Archive `report` unless its newest version has the same content hash."""
    digest = report.content_hash()
    failures = [f.message for f in report.failures]
    with Session(engine) as session:
        latest = _latest(session, report.park_id, report.kind, report.period.label)
        if latest is not None and latest.content_hash == digest:
            return RunResult(report.kind, report.period.label, UNCHANGED, latest.version, created=False,
                             version_id=latest.id, failures=failures,
                             detail=f"same data as version {latest.version}" + (
                                 "; rule failures:\n" + "\n".join(failures) if failures else ""))
        version = 1 if latest is None else latest.version + 1
        figures = report.figures()
        diffs = differences(json.loads(latest.figures), figures) if latest is not None else []
        outcome = DATA_QUALITY if failures else SUCCESS
        files = render_files(report, version, generated_at, digest, cfg)
        folder = Path("reports") / report.kind / report.period.label / f"v{version}"
        (settings.data_dir / folder).mkdir(parents=True, exist_ok=True)
        row = ReportVersionRow(park_id=report.park_id, kind=report.kind, period=report.period.label, version=version,
                               content_hash=digest, generated_at=generated_at, outcome=outcome,
                               failures=len(failures), detail="\n".join(failures),
                               figures=json.dumps(figures, ensure_ascii=False, sort_keys=True))
        session.add(row)
        session.flush()
        names = []
        for name, fmt, data in files:
            path = folder / name
            (settings.data_dir / path).write_bytes(data)
            session.add(ReportFileRow(version_id=row.id, format=fmt, name=name, path=path.as_posix(),
                                      sha256=hashlib.sha256(data).hexdigest(), size=len(data)))
            names.append(name)
        for d in diffs:
            session.add(ReportDifferenceRow(version_id=row.id, **d))
        session.commit()
        return RunResult(report.kind, report.period.label, outcome, version, created=True, version_id=row.id,
                         failures=failures, differences=diffs, files=names,
                         detail="\n".join(failures))


def render_files(report: Report, version: int, generated_at: datetime, digest: str, cfg: ReportSettings
                 ) -> list[tuple[str, str, bytes]]:
    """(file name, format, bytes) of every configured format."""
    stem = f"{report.kind}-{report.park_id}-{report.period.label}-v{version}"
    out = []
    if "xlsx" in cfg.formats:
        out.append((f"{stem}.xlsx", "xlsx", to_xlsx(report, version, generated_at, digest)))
    if "csv" in cfg.formats:
        out += [(f"{stem}-{key}.csv", "csv", data) for key, data in to_csvs(report).items()]
    if "pdf" in cfg.formats and report.kind in PDF_KINDS:
        out.append((f"{stem}.pdf", "pdf", to_pdf(report, version, generated_at, digest, cfg.font)))
    return out


# ---- reading the archive --------------------------------------------------------------------------------------
VERSION_COLUMNS = ["id", "kind", "period", "version", "generated_at", "outcome", "failures", "content_hash",
                   "delivered"]


def versions(engine: Engine, park_id: str, kind: str | None = None, period: str | None = None) -> pd.DataFrame:
    """Every archived version, newest period first; `delivered`: sent, failed, or "" when never mailed."""
    with Session(engine) as session:
        q = select(ReportVersionRow).where(ReportVersionRow.park_id == park_id)
        if kind:
            q = q.where(ReportVersionRow.kind == kind)
        if period:
            q = q.where(ReportVersionRow.period == period)
        rows = session.scalars(q).all()
        sent = dict(session.execute(select(ReportDeliveryRow.version_id, func.max(ReportDeliveryRow.status))
                                    .group_by(ReportDeliveryRow.version_id)).all())
        frame = pd.DataFrame([(r.id, r.kind, r.period, r.version, r.generated_at, r.outcome, r.failures,
                               r.content_hash, sent.get(r.id, "")) for r in rows], columns=VERSION_COLUMNS)
    return frame.sort_values(["period", "kind", "version"], ascending=[False, True, False]).reset_index(drop=True)


def version_row(engine: Engine, park_id: str, kind: str, period: str, version: int | None = None
                ) -> ReportVersionRow | None:
    with Session(engine) as session:
        q = select(ReportVersionRow).where(ReportVersionRow.park_id == park_id, ReportVersionRow.kind == kind,
                                           ReportVersionRow.period == period)
        q = q.where(ReportVersionRow.version == version) if version else q.order_by(
            ReportVersionRow.version.desc()).limit(1)
        row = session.scalars(q).first()
        if row is not None:
            session.expunge(row)
        return row


def files(engine: Engine, version_id: int) -> pd.DataFrame:
    with Session(engine) as session:
        rows = session.scalars(select(ReportFileRow).where(ReportFileRow.version_id == version_id)
                               .order_by(ReportFileRow.id)).all()
        return pd.DataFrame([(r.id, r.format, r.name, r.path, r.sha256, r.size) for r in rows],
                            columns=["id", "format", "name", "path", "sha256", "size"])


def read_file(settings: Settings, engine: Engine, file_id: int) -> tuple[str, bytes]:
    """A stored file's name and bytes, checked against its recorded SHA-256 (ValueError when they differ)."""
    with Session(engine) as session:
        row = session.get(ReportFileRow, file_id)
        if row is None:
            raise KeyError(f"no report file {file_id}")
        data = (settings.data_dir / row.path).read_bytes()
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise ValueError(f"report file {row.path} does not match its recorded SHA-256: it was altered")
        return row.name, data


def version_differences(engine: Engine, version_id: int) -> pd.DataFrame:
    cols = ["section", "enterprise", "item", "indicator", "old_value", "new_value"]
    with Session(engine) as session:
        rows = session.scalars(select(ReportDifferenceRow).where(ReportDifferenceRow.version_id == version_id)
                               .order_by(ReportDifferenceRow.id)).all()
        return pd.DataFrame([[getattr(r, c) for c in cols] for r in rows], columns=cols)


def runs(engine: Engine, park_id: str, limit: int = 50) -> pd.DataFrame:
    cols = ["id", "kind", "period", "trigger", "started_at", "finished_at", "outcome", "version", "detail"]
    with Session(engine) as session:
        rows = session.scalars(select(ReportRunRow).where(ReportRunRow.park_id == park_id)
                               .order_by(ReportRunRow.id.desc()).limit(limit)).all()
        return pd.DataFrame([[getattr(r, c) for c in cols] for r in rows], columns=cols)


def archived_periods(engine: Engine, park_id: str, kind: str) -> set[str]:
    with Session(engine) as session:
        return set(session.scalars(select(ReportVersionRow.period).where(
            ReportVersionRow.park_id == park_id, ReportVersionRow.kind == kind)).all())
