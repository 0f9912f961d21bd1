"""The metadata database: the park model in SQL (a SQLite file by default, PostgreSQL in production).

A park file is imported by upserting every entity by id in one transaction. Rows are never deleted:
an entity that left the file is marked inactive, because readings and reports keep referring to it,
and it is reactivated when it comes back. Each import is recorded in `import_runs` for the audit trail.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    DateTime,
    Dialect,
    Double,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    String,
    create_engine,
    event,
    make_url,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.types import TypeDecorator

from park.migrations import upgrade_schema
from park.model import Device, Enterprise, Meter, Park, Workshop
from park.parkfile import check_park, parse_park
from park.units import Carrier


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend (SQLite stores it naive; it comes back aware)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value}: metadata timestamps must be timezone-aware")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of the metadata tables."""


class _Lifecycle:
    """Columns every entity table has: entities are deactivated, never deleted."""

    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ParkRow(_Lifecycle, Base):
    __tablename__ = "parks"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str]
    name_en: Mapped[str]
    timezone: Mapped[str] = mapped_column(String(64))
    province: Mapped[str | None]
    grid_region: Mapped[str | None]
    coverage_threshold: Mapped[float] = mapped_column(Double, default=0.9, server_default="0.9")


class EnterpriseRow(_Lifecycle, Base):
    __tablename__ = "enterprises"

    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str]
    name_en: Mapped[str]
    industry: Mapped[str]
    credit_code: Mapped[str]
    province: Mapped[str | None]


class WorkshopRow(_Lifecycle, Base):
    __tablename__ = "workshops"
    __table_args__ = (
        ForeignKeyConstraint(["park_id", "enterprise_id"], ["enterprises.park_id", "enterprises.id"]),
    )

    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str]
    name_en: Mapped[str]


class MeterRow(_Lifecycle, Base):
    __tablename__ = "meters"
    __table_args__ = (
        ForeignKeyConstraint(["park_id", "enterprise_id"], ["enterprises.park_id", "enterprises.id"]),
        ForeignKeyConstraint(["park_id", "workshop_id"], ["workshops.park_id", "workshops.id"]),
    )

    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(String(64))
    workshop_id: Mapped[str | None] = mapped_column(String(64))
    carrier: Mapped[str] = mapped_column(String(16))
    name: Mapped[str]
    interval_s: Mapped[int]
    model: Mapped[str | None]
    address: Mapped[str | None]
    # plausibility limits of the register normaliser (park.model.Meter, collectors/limits.py)
    register_max: Mapped[float | None] = mapped_column(Double)
    max_kw: Mapped[float | None] = mapped_column(Double)
    rated_kw: Mapped[float | None] = mapped_column(Double)
    transformer_kva: Mapped[float | None] = mapped_column(Double)
    breaker_a: Mapped[float | None] = mapped_column(Double)
    max_per_h: Mapped[float | None] = mapped_column(Double)


class DeviceRow(_Lifecycle, Base):
    __tablename__ = "devices"
    __table_args__ = (
        ForeignKeyConstraint(["park_id", "enterprise_id"], ["enterprises.park_id", "enterprises.id"]),
        ForeignKeyConstraint(["park_id", "workshop_id"], ["workshops.park_id", "workshops.id"]),
    )

    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    enterprise_id: Mapped[str] = mapped_column(String(64))
    workshop_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str]
    rated_voltage_v: Mapped[float] = mapped_column(Double)
    power_factor: Mapped[float] = mapped_column(Double)
    idle_current_a: Mapped[float] = mapped_column(Double)
    run_current_a: Mapped[float] = mapped_column(Double)
    interval_s: Mapped[int]


class ImportRun(Base):
    """One import of a park file: who, when, which file (and its SHA-256), and what it changed."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str]
    source_path: Mapped[str | None]
    source_sha256: Mapped[str | None] = mapped_column(String(64))
    added: Mapped[int]
    updated: Mapped[int]
    reactivated: Mapped[int]
    deactivated: Mapped[int]
    unchanged: Mapped[int]


ENTITY_TABLES: dict[str, type[ParkRow | EnterpriseRow | WorkshopRow | MeterRow | DeviceRow]] = {
    "park": ParkRow,
    "enterprise": EnterpriseRow,
    "workshop": WorkshopRow,
    "meter": MeterRow,
    "device": DeviceRow,
}
_COLUMN = {"enterprise": "enterprise_id", "workshop": "workshop_id"}  # model field -> column, where renamed
_CHILDREN = {"enterprises", "workshops", "meters", "devices"}  # Park fields held in other tables
_ACTIONS = ("added", "updated", "reactivated", "deactivated")


class ParkNotFoundError(LookupError):
    """The metadata database has no (active) park of the requested id, or several when none was named."""


@dataclass(frozen=True)
class Change:
    """One entity an import added, updated, reactivated or deactivated."""

    kind: str  # park, enterprise, workshop, meter or device
    id: str
    action: str  # added, updated, reactivated or deactivated
    columns: tuple[str, ...] = ()  # the columns whose values changed

    def __str__(self) -> str:
        detail = f" ({', '.join(self.columns)})" if self.columns else ""
        return f"{self.action} {self.kind} {self.id}{detail}"


@dataclass(frozen=True)
class ImportReport:
    """What one import changed; `summary()` is the text shown to the operator."""

    run_id: int
    park_id: str
    source_path: str | None
    changes: tuple[Change, ...]
    unchanged: int

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def added(self) -> int:
        return self.count("added")

    @property
    def updated(self) -> int:
        return self.count("updated")

    @property
    def reactivated(self) -> int:
        return self.count("reactivated")

    @property
    def deactivated(self) -> int:
        return self.count("deactivated")

    def summary(self, max_lines: int = 20) -> str:
        """Totals on the first line, then up to `max_lines` changes, one per line."""
        source = f" from {self.source_path}" if self.source_path else ""
        head = (
            f"imported park {self.park_id}{source} (run {self.run_id}): {self.added} added, "
            f"{self.updated} updated, {self.reactivated} reactivated, {self.deactivated} deactivated, "
            f"{self.unchanged} unchanged"
        )
        lines = [head, *(f"  {c}" for c in self.changes[:max_lines])]
        if len(self.changes) > max_lines:
            lines.append(f"  ... and {len(self.changes) - max_lines} more changes")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def create_engine_from_url(url: str, *, create_tables: bool = True) -> Engine:
    """An engine for any SQLAlchemy URL (`sqlite:///var/parkcarbon.db`, `postgresql+psycopg://...`).

    For SQLite files the parent directory is created and foreign keys are enforced, as on PostgreSQL.
    With `create_tables`, the schema is upgraded to the newest migration (park.migrations.upgrade_schema): the
    tables are the migrations', whichever model modules were imported.
    """
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if (
        sqlite
        and parsed.database
        and parsed.database != ":memory:"
        and not parsed.database.startswith("file:")
    ):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(parsed)
    if sqlite:
        event.listen(engine, "connect", _enforce_sqlite_foreign_keys)
    if create_tables:
        upgrade_schema(engine)
    return engine


def _enforce_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def import_park_file(engine: Engine, path: str | os.PathLike[str], actor: str = "cli") -> ImportReport:
    """Parse the park file at `path` (ParkFileError on problems) and import it, recording its SHA-256."""
    data = Path(path).read_bytes()
    park = parse_park(data, str(path))
    return import_park(
        engine, park, source_path=str(path), actor=actor, source_sha256=hashlib.sha256(data).hexdigest()
    )


def import_park(
    engine: Engine,
    park: Park,
    source_path: str | None = None,
    actor: str = "cli",
    source_sha256: str | None = None,
) -> ImportReport:
    """Upsert the park and everything in it by id, in one transaction: all of it is imported, or nothing.

    Entities of the park missing from `park` are deactivated; an unchanged entity is not written at all,
    so re-importing the same file leaves every row, updated_at included, as it was.
    """
    check_park(park)
    now = datetime.now(UTC)
    changes: list[Change] = []
    unchanged = 0
    with Session(engine) as session, session.begin():
        existing_park = session.get(ParkRow, park.id)
        plan: list[tuple[str, Sequence[Any], Iterable[Any]]] = [
            ("park", [park], [] if existing_park is None else [existing_park]),
            ("enterprise", park.enterprises, _rows_of(session, EnterpriseRow, park.id)),
            ("workshop", park.workshops, _rows_of(session, WorkshopRow, park.id)),
            ("meter", park.meters, _rows_of(session, MeterRow, park.id)),
            ("device", park.devices, _rows_of(session, DeviceRow, park.id)),
        ]
        for kind, items, rows in plan:  # in foreign-key order: a row's parents are flushed before it
            extra = {} if kind == "park" else {"park_id": park.id}
            unchanged += _sync(session, kind, [_columns(i) for i in items], rows, extra, now, changes)
            session.flush()
        run_id = _record_run(session, park.id, now, actor, source_path, source_sha256, changes, unchanged)
    return ImportReport(run_id, park.id, source_path, tuple(changes), unchanged)


def _rows_of(session: Session, row_type: type[Any], park_id: str) -> list[Any]:
    return list(session.scalars(select(row_type).where(row_type.park_id == park_id)))


def _sync(
    session: Session,
    kind: str,
    wanted: list[dict[str, Any]],
    rows: Iterable[Any],
    extra: dict[str, Any],
    now: datetime,
    changes: list[Change],
) -> int:
    """Make the rows of one kind match `wanted` (column values by id); returns how many were unchanged."""
    by_id = {row.id: row for row in rows}
    unchanged = 0
    for values in wanted:
        row = by_id.pop(values["id"], None)
        if row is None:
            session.add(ENTITY_TABLES[kind](**values, **extra, active=True, created_at=now, updated_at=now))
            changes.append(Change(kind, values["id"], "added"))
            continue
        changed = tuple(column for column, value in values.items() if getattr(row, column) != value)
        if row.active and not changed:
            unchanged += 1
            continue
        changes.append(Change(kind, row.id, "updated" if row.active else "reactivated", changed))
        for column in changed:
            setattr(row, column, values[column])
        row.active, row.updated_at = True, now
    if kind != "park":  # an import names one park: it never deactivates the others
        for row in by_id.values():
            if row.active:
                row.active, row.updated_at = False, now
                changes.append(Change(kind, row.id, "deactivated"))
    return unchanged


def _record_run(
    session: Session,
    park_id: str,
    now: datetime,
    actor: str,
    source_path: str | None,
    source_sha256: str | None,
    changes: list[Change],
    unchanged: int,
) -> int:
    """Add the import_runs row of this import; returns its id."""
    counts = {action: sum(1 for c in changes if c.action == action) for action in _ACTIONS}
    run = ImportRun(
        park_id=park_id,
        imported_at=now,
        actor=actor,
        source_path=source_path,
        source_sha256=source_sha256,
        unchanged=unchanged,
        **counts,
    )
    session.add(run)
    session.flush()
    return run.id


def _columns(item: Park | Enterprise | Workshop | Meter | Device) -> dict[str, Any]:
    """The column values of a model object's own row."""
    values: dict[str, Any] = {}
    for f in fields(item):
        if f.name not in _CHILDREN:
            value = getattr(item, f.name)
            values[_COLUMN.get(f.name, f.name)] = value.value if isinstance(value, Carrier) else value
    return values


def _model_fields(model: type[Any], row: Any) -> dict[str, Any]:
    """The model's constructor arguments read from a row (children excepted)."""
    return {
        f.name: getattr(row, _COLUMN.get(f.name, f.name)) for f in fields(model) if f.name not in _CHILDREN
    }


def load_park(engine: Engine, park_id: str | None = None) -> Park:
    """The active park `park_id` (or the only park, if None) with its active entities, ordered by id."""
    with Session(engine) as session:
        known = list(session.scalars(select(ParkRow.id).where(ParkRow.active).order_by(ParkRow.id)))
        if park_id is None:
            if len(known) != 1:
                raise ParkNotFoundError(
                    "no park in the metadata database: import a park file first"
                    if not known
                    else f"the metadata database holds several parks ({', '.join(known)}): name one"
                )
            park_id = known[0]
        row = session.get(ParkRow, park_id)
        if row is None or not row.active:
            listed = ", ".join(known) or "none"
            raise ParkNotFoundError(f"no park {park_id!r} in the metadata database (parks: {listed})")

        def active(row_type: type[Any]) -> list[Any]:
            query = select(row_type).where(row_type.park_id == park_id, row_type.active).order_by(row_type.id)
            return list(session.scalars(query))

        return Park(
            **_model_fields(Park, row),
            enterprises=tuple(Enterprise(**_model_fields(Enterprise, r)) for r in active(EnterpriseRow)),
            workshops=tuple(Workshop(**_model_fields(Workshop, r)) for r in active(WorkshopRow)),
            meters=tuple(
                Meter(**{**_model_fields(Meter, r), "carrier": Carrier(r.carrier)}) for r in active(MeterRow)
            ),
            devices=tuple(Device(**_model_fields(Device, r)) for r in active(DeviceRow)),
        )
