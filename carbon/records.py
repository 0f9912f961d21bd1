"""What the carbon module keeps in the metadata database (park.metadata.Base: SQLite or PostgreSQL).

* park factor files as imported (every import kept, so an earlier figure can be recomputed and explained);
* output value (产值) and product output per enterprise and month, recorded activity (bills, exports), green
  certificates and PPAs, quota plans: corrections are new rows, the latest recorded row wins, history stays;
* the quota ledger: append-only.  There is no update or delete function, the ORM refuses both, and database
  triggers refuse them on SQLite and PostgreSQL; a mistake is corrected by a reversing `adjustment`;
* restatements: old figure, new figure, reason, when, and the factor rows on both sides.

This is the only module of `carbon` that touches the database; the calculations take what it loads as frames.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import (
    Date,
    Double,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    String,
    Text,
    event,
    insert,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from carbon.errors import CcerCapError, InputError, LedgerError
from carbon.factors import COLUMNS as FACTOR_COLUMNS
from carbon.factors import FactorRow, override_rows, parse_factor_file
from carbon.inputs import (
    ACTIVITY_COLUMNS,
    INSTRUMENT_COLUMNS,
    OUTPUT_COLUMNS,
    PRODUCT_COLUMNS,
    check_activity,
    check_instruments,
    check_output_values,
    check_product_output,
)
from carbon.quota import (
    CCER_CAP,
    DEFAULT_QUOTA_BASIS,
    LEDGER_COLUMNS,
    MOVEMENTS,
    QuotaPlan,
    balances,
    check_movement,
)
from park.metadata import Base, UTCDateTime
from park.migrations import upgrade_schema


def _enterprise_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["park_id", "enterprise_id"], ["enterprises.park_id", "enterprises.id"])


class _Recorded:
    """Who recorded a row and when."""

    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))


class FactorImportRow(Base):
    """One import of a park factor file."""

    __tablename__ = "carbon_factor_imports"

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"))
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    source_path: Mapped[str | None]
    source_sha256: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)


class FactorOverrideRow(Base):
    """A row of an imported park factor file, as written in the file."""

    __tablename__ = "carbon_factor_overrides"

    id: Mapped[int] = mapped_column(primary_key=True)
    import_id: Mapped[int] = mapped_column(ForeignKey("carbon_factor_imports.id"))
    line: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(40))
    parameter: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(32))
    enterprise: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(32))
    valid_from: Mapped[str] = mapped_column(String(10))
    valid_to: Mapped[str] = mapped_column(String(10))
    data_year: Mapped[str] = mapped_column(String(4))
    source: Mapped[str] = mapped_column(Text)
    publication: Mapped[str] = mapped_column(Text)
    published: Mapped[str] = mapped_column(String(10))
    verified: Mapped[str] = mapped_column(String(5))
    note: Mapped[str] = mapped_column(Text)


class OutputValueRow(_Recorded, Base):
    """Output value (产值) of an enterprise in a month, 10k CNY."""

    __tablename__ = "carbon_output_values"
    __table_args__ = (_enterprise_fk(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str] = mapped_column(String(64))
    month: Mapped[date] = mapped_column(Date)
    output_value_10k_cny: Mapped[float] = mapped_column(Double)
    source: Mapped[str] = mapped_column(String(128))


class ProductOutputRow(_Recorded, Base):
    """Output of one product of an enterprise (and the workshop making it) in a month."""

    __tablename__ = "carbon_product_output"
    __table_args__ = (_enterprise_fk(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str] = mapped_column(String(64))
    month: Mapped[date] = mapped_column(Date)
    product: Mapped[str] = mapped_column(String(128))
    quantity: Mapped[float] = mapped_column(Double)
    unit: Mapped[str] = mapped_column(String(32))
    workshop_id: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(128))


class ActivityRecordRow(_Recorded, Base):
    """Energy not metered in the store: bills, off-meter fuels, biomass, exported electricity and heat."""

    __tablename__ = "carbon_activity_records"
    __table_args__ = (_enterprise_fk(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str] = mapped_column(String(64))
    workshop_id: Mapped[str | None] = mapped_column(String(64))
    carrier: Mapped[str] = mapped_column(String(40))
    flow: Mapped[str] = mapped_column(String(8))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    quantity: Mapped[float] = mapped_column(Double)
    unit: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(128))


class InstrumentRow(_Recorded, Base):
    """Green certificates (1 certificate = 1 MWh) or a PPA held for a consumption period [start, end)."""

    __tablename__ = "carbon_instruments"
    __table_args__ = (_enterprise_fk(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8))
    quantity_mwh: Mapped[float] = mapped_column(Double)
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    reference: Mapped[str] = mapped_column(String(256))
    vintage: Mapped[int | None]  # year the electricity was generated (certificates)


class QuotaPlanRow(_Recorded, Base):
    """The allocation plan of an enterprise for a year (carbon.quota.QuotaPlan)."""

    __tablename__ = "carbon_quota_plans"
    __table_args__ = (_enterprise_fk(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str] = mapped_column(String(64))
    year: Mapped[int]
    method: Mapped[str] = mapped_column(String(16))
    absolute_t: Mapped[float | None] = mapped_column(Double)
    benchmark_t_per_unit: Mapped[float | None] = mapped_column(Double)
    unit: Mapped[str] = mapped_column(String(32))
    base_output: Mapped[float | None] = mapped_column(Double)
    pre_share: Mapped[float] = mapped_column(Double)
    correction: Mapped[float] = mapped_column(Double)
    basis: Mapped[str | None] = mapped_column(String(16))  # carbon.quota.QUOTA_BASES; NULL: the default (ets)


class LedgerRow(_Recorded, Base):
    """One movement of allowances (or CCER) of an enterprise for a compliance year.  Append-only."""

    __tablename__ = "carbon_quota_ledger"
    __table_args__ = (_enterprise_fk(),)

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str] = mapped_column(String(64))
    year: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    amount_t: Mapped[float] = mapped_column(Double)
    price_cny_per_t: Mapped[float | None] = mapped_column(Double)
    reference: Mapped[str] = mapped_column(String(256))
    note: Mapped[str] = mapped_column(Text)
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("carbon_quota_ledger.id"))


class RestatementRow(Base):
    """A figure changed by a factor change: old and new value, why, when, and the factor rows on each side."""

    __tablename__ = "carbon_restatements"

    id: Mapped[int] = mapped_column(primary_key=True)
    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    factor_import_id: Mapped[int | None] = mapped_column(ForeignKey("carbon_factor_imports.id"))
    level: Mapped[str] = mapped_column(String(16))
    enterprise: Mapped[str | None] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))
    metric: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[float | None] = mapped_column(Double)
    new_value: Mapped[float | None] = mapped_column(Double)
    old_factors: Mapped[str] = mapped_column(Text)
    new_factors: Mapped[str] = mapped_column(Text)
    old_registry: Mapped[str] = mapped_column(String(64))
    new_registry: Mapped[str] = mapped_column(String(64))


TABLES = [FactorImportRow, FactorOverrideRow, OutputValueRow, ProductOutputRow, ActivityRecordRow, InstrumentRow,
          QuotaPlanRow, LedgerRow, RestatementRow]

# ---- the ledger is append-only -----------------------------------------------------------------------------

_APPEND_ONLY = "carbon_quota_ledger is append-only: record a correcting movement instead"


def _refuse(*_args: object) -> None:
    raise LedgerError(_APPEND_ONLY)


event.listen(LedgerRow, "before_update", _refuse)
event.listen(LedgerRow, "before_delete", _refuse)
# the database refuses them too: triggers made by migration 0001 (park/migrations/versions)


def create_tables(engine: Engine) -> None:
    """Upgrade the metadata database to the newest migration (park.migrations.upgrade_schema; idempotent).
    The carbon tables are the migrations', not made by importing this module."""
    upgrade_schema(engine)


def _now() -> datetime:
    return datetime.now(UTC)


def _insert(engine: Engine, row_type: type, rows: list[dict]) -> int:
    if rows:
        with Session(engine) as session, session.begin():
            session.execute(insert(row_type), rows)
    return len(rows)


def _latest(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The last recorded row per key (ids grow with time)."""
    return frame.sort_values("id").drop_duplicates(keys, keep="last")


# ---- park factor files ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactorImport:
    """One import of a park factor file and what it changed against the previous import."""

    import_id: int | None  # None: the file was identical to the current one, nothing recorded
    park_id: str
    reason: str
    rows: tuple[FactorRow, ...]
    previous: tuple[FactorRow, ...]
    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def summary(self) -> str:
        if self.import_id is None:
            return f"park {self.park_id}: factor file unchanged, nothing imported"
        return (f"park {self.park_id}: factor import {self.import_id}: {len(self.rows)} rows; {len(self.added)} added, "
                f"{len(self.changed)} changed, {len(self.removed)} removed")


def import_factor_file(engine: Engine, park_id: str, path: str | Path, actor: str, reason: str) -> FactorImport:
    """Validate a park factor file (FactorFileError with line numbers) and record it as the park's overrides.

    Importing the same bytes again records nothing.  The previous import stays in the database: the caller
    restates the affected periods with the old and new rows (carbon.pipeline.restate_factor_import).
    """
    if not reason.strip():
        raise InputError("a factor import needs a reason (it is shown beside every restated figure)")
    data = Path(path).read_bytes()
    rows = parse_factor_file(data, str(path))
    digest = hashlib.sha256(data).hexdigest()
    previous_import = _current_import(engine, park_id)
    previous = tuple(load_factor_overrides(engine, park_id))
    old = {r.id: r for r in previous}
    new = {r.id: r for r in rows}
    added = tuple(sorted(set(new) - set(old)))
    removed = tuple(sorted(set(old) - set(new)))
    changed = tuple(sorted(i for i in set(new) & set(old) if (new[i].value, new[i].unit, new[i].valid_to)
                           != (old[i].value, old[i].unit, old[i].valid_to)))
    if previous_import is not None and previous_import.source_sha256 == digest:
        return FactorImport(None, park_id, reason, tuple(rows), previous, (), (), ())
    with Session(engine) as session, session.begin():
        imp = FactorImportRow(park_id=park_id, imported_at=_now(), actor=actor, source_path=str(path),
                              source_sha256=digest, reason=reason)
        session.add(imp)
        session.flush()
        session.execute(insert(FactorOverrideRow), [{"import_id": imp.id, **_row_text(r)} for r in rows])
        import_id = imp.id
    return FactorImport(import_id, park_id, reason, tuple(rows), previous, added, changed, removed)


def _row_text(r: FactorRow) -> dict[str, object]:
    """A factor row as the text columns of the overrides table (re-parsed on loading, like the file)."""
    return {"line": int(r.origin.rsplit(":", 1)[1]), "kind": r.kind, "key": r.key, "parameter": r.parameter,
            "region": r.region, "enterprise": r.enterprise, "value": repr(r.value), "unit": r.unit,
            "valid_from": r.valid_from.isoformat(), "valid_to": r.valid_to.isoformat() if r.valid_to else "",
            "data_year": str(r.data_year or ""), "source": r.source, "publication": r.publication,
            "published": r.published.isoformat() if r.published else "", "verified": str(r.verified).lower(),
            "note": r.note}


def _current_import(engine: Engine, park_id: str) -> FactorImportRow | None:
    with Session(engine) as session:
        return session.scalars(select(FactorImportRow).where(FactorImportRow.park_id == park_id)
                               .order_by(FactorImportRow.id.desc()).limit(1)).first()


def load_factor_overrides(engine: Engine, park_id: str, import_id: int | None = None) -> list[FactorRow]:
    """The park's factor rows of its latest import (or of `import_id`); none if it never imported a file."""
    if import_id is None:
        current = _current_import(engine, park_id)
        if current is None:
            return []
        import_id = current.id
    with Session(engine) as session:
        imp = session.get(FactorImportRow, import_id)
        if imp is None or imp.park_id != park_id:
            raise InputError(f"no factor import {import_id} for park {park_id}")
        stored = list(session.scalars(select(FactorOverrideRow).where(FactorOverrideRow.import_id == import_id)
                                      .order_by(FactorOverrideRow.line)))
        path = imp.source_path or "<stored>"
    frame = pd.DataFrame([{c: getattr(r, c) or "" for c in FACTOR_COLUMNS} for r in stored],
                         columns=list(FACTOR_COLUMNS))
    frame["origin"] = [f"park {path}:{r.line}" for r in stored]
    return override_rows(frame)


def factor_imports(engine: Engine, park_id: str) -> pd.DataFrame:
    """Every factor import of the park: id, imported_at, actor, source_path, source_sha256, reason."""
    with Session(engine) as session:
        rows = session.scalars(select(FactorImportRow).where(FactorImportRow.park_id == park_id)
                               .order_by(FactorImportRow.id)).all()
        return pd.DataFrame([{c: getattr(r, c) for c in ("id", "imported_at", "actor", "source_path",
                                                          "source_sha256", "reason")} for r in rows])


# ---- production, activity, instruments ------------------------------------------------------------------------


def record_output_values(engine: Engine, park_id: str, frame: pd.DataFrame, actor: str,
                         source: str = "manual") -> int:
    """Record output value per enterprise and month (OUTPUT_COLUMNS); a later record corrects an earlier one.
    NegativeOutputError on a value below zero, before anything is written."""
    clean = check_output_values(frame)
    now = _now()
    return _insert(engine, OutputValueRow, [
        {"park_id": park_id, "enterprise_id": r.enterprise, "month": r.month,
         "output_value_10k_cny": r.output_value_10k_cny, "source": source, "recorded_at": now, "actor": actor}
        for r in clean.itertuples()])


def _of(query, column, enterprises: Collection[str] | None):
    """`query` narrowed to the rows of `enterprises` (all when None): the loaders' one enterprise filter."""
    return query if enterprises is None else query.where(column.in_(sorted(enterprises)))


def load_output_values(engine: Engine, park_id: str, start: date, end: date,
                       enterprises: Collection[str] | None = None) -> pd.DataFrame:
    """The latest recorded output value per enterprise and month in [start, end) (of `enterprises` only, when
    given: the query reads theirs alone)."""
    with Session(engine) as session:
        query = select(OutputValueRow).where(
            OutputValueRow.park_id == park_id, OutputValueRow.month >= start, OutputValueRow.month < end)
        rows = session.execute(_of(query, OutputValueRow.enterprise_id, enterprises)).scalars()
        frame = pd.DataFrame([(r.id, r.enterprise_id, r.month, r.output_value_10k_cny) for r in rows],
                             columns=["id", *OUTPUT_COLUMNS])
    return _latest(frame, ["enterprise", "month"])[OUTPUT_COLUMNS].reset_index(drop=True)


def record_product_output(engine: Engine, park_id: str, frame: pd.DataFrame, actor: str,
                          source: str = "manual") -> int:
    """Record product output per enterprise, month and product (PRODUCT_COLUMNS; workshop optional)."""
    clean = check_product_output(frame)
    now = _now()
    return _insert(engine, ProductOutputRow, [
        {"park_id": park_id, "enterprise_id": r.enterprise, "month": r.month, "product": r.product,
         "quantity": r.quantity, "unit": r.unit, "workshop_id": r.workshop, "source": source, "recorded_at": now,
         "actor": actor} for r in clean.itertuples()])


def load_product_output(engine: Engine, park_id: str, start: date, end: date,
                        enterprises: Collection[str] | None = None) -> pd.DataFrame:
    """The latest recorded output per enterprise, month and product in [start, end) (of `enterprises` only, when
    given)."""
    with Session(engine) as session:
        query = select(ProductOutputRow).where(
            ProductOutputRow.park_id == park_id, ProductOutputRow.month >= start, ProductOutputRow.month < end)
        rows = session.execute(_of(query, ProductOutputRow.enterprise_id, enterprises)).scalars()
        frame = pd.DataFrame([(r.id, r.enterprise_id, r.month, r.product, r.quantity, r.unit, r.workshop_id)
                              for r in rows], columns=["id", *PRODUCT_COLUMNS])
    return _latest(frame, ["enterprise", "month", "product"])[PRODUCT_COLUMNS].reset_index(drop=True)


def record_activity(engine: Engine, park_id: str, frame: pd.DataFrame, actor: str, source: str = "bill") -> int:
    """Record activity that no meter in the store measures: period_start/period_end as dates (end exclusive),
    carrier, flow ('import' or 'export'), quantity, unit, optional workshop."""
    probe = frame.copy()
    for col in ("period_start", "period_end"):
        probe[col] = pd.to_datetime(probe[col]).dt.tz_localize("UTC")
    clean = check_activity(probe)
    now = _now()
    return _insert(engine, ActivityRecordRow, [
        {"park_id": park_id, "enterprise_id": r.enterprise, "workshop_id": r.workshop, "carrier": r.carrier,
         "flow": r.flow, "period_start": r.period_start.date(), "period_end": r.period_end.date(),
         "quantity": r.quantity, "unit": r.unit, "source": source, "recorded_at": now, "actor": actor}
        for r in clean.itertuples()])


def load_activity_records(engine: Engine, park_id: str, start: datetime, end: datetime,
                          enterprises: Collection[str] | None = None) -> pd.DataFrame:
    """Recorded activity whose period lies in [start, end) (aware, park-local), as an activity frame (of
    `enterprises` only, when given).

    A record is a whole period (a monthly bill): it is loaded when it starts in the range, in the range's zone.
    """
    tz = pd.Timestamp(start).tz
    if tz is None:
        raise InputError("start must be timezone-aware (park-local)")
    with Session(engine) as session:
        query = select(ActivityRecordRow).where(
            ActivityRecordRow.park_id == park_id, ActivityRecordRow.period_start >= pd.Timestamp(start).date(),
            ActivityRecordRow.period_start < pd.Timestamp(end).date())
        rows = session.execute(_of(query, ActivityRecordRow.enterprise_id, enterprises)).scalars()
        frame = pd.DataFrame([(r.id, r.enterprise_id, r.workshop_id, r.carrier, r.flow, r.period_start,
                               r.period_end, r.quantity, r.unit, r.source) for r in rows],
                             columns=["id", "enterprise", "workshop", "carrier", "flow", "period_start", "period_end",
                                      "quantity", "unit", "source"])
    frame = _latest(frame, ["enterprise", "workshop", "carrier", "flow", "period_start", "period_end"])
    for col in ("period_start", "period_end"):
        frame[col] = pd.to_datetime(frame[col]).dt.tz_localize(tz)
    frame["coverage"] = 1.0  # a bill covers its whole period; it has no metered intervals
    return frame.reindex(columns=ACTIVITY_COLUMNS).reset_index(drop=True)


def record_instruments(engine: Engine, park_id: str, frame: pd.DataFrame, actor: str) -> int:
    """Record green certificates / PPAs (INSTRUMENT_COLUMNS: an id in `reference`, a `vintage` for certificates).
    Re-recording a reference for the same enterprise replaces it (quantity 0 withdraws it); a reference that
    another enterprise (of any park) holds is refused (InputError): a certificate has a single claimant."""
    clean = check_instruments(frame)
    held = _current_instruments(engine, None)
    held = held[held["quantity_mwh"] > 0]
    claims = {(k, ref): (p, e) for k, ref, p, e in zip(held["kind"], held["reference"], held["park_id"],
                                                         held["enterprise"], strict=True)}
    for r in clean.itertuples():
        owner = claims.get((r.kind, r.reference))
        if owner is not None and owner != (park_id, r.enterprise) and r.quantity_mwh > 0:
            raise InputError(f"{r.kind} {r.reference!r} is already claimed by enterprise {owner[1]} of park "
                             f"{owner[0]}: a certificate has a single claimant; withdraw it there first "
                             f"(quantity 0) if the claim moves to {r.enterprise}")
    now = _now()
    return _insert(engine, InstrumentRow, [
        {"park_id": park_id, "enterprise_id": r.enterprise, "kind": r.kind, "quantity_mwh": r.quantity_mwh,
         "period_start": r.period_start, "period_end": r.period_end, "reference": r.reference,
         "vintage": None if pd.isna(r.vintage) else int(r.vintage), "recorded_at": now, "actor": actor}
        for r in clean.itertuples()])


def _current_instruments(engine: Engine, park_id: str | None) -> pd.DataFrame:
    """The latest record of each (park, enterprise, reference), withdrawn ones included."""
    with Session(engine) as session:
        q = select(InstrumentRow)
        if park_id is not None:
            q = q.where(InstrumentRow.park_id == park_id)
        rows = session.execute(q).scalars()
        frame = pd.DataFrame([(r.id, r.park_id, r.enterprise_id, r.kind, r.quantity_mwh, r.period_start,
                               r.period_end, r.reference, r.vintage) for r in rows],
                             columns=["id", "park_id", *INSTRUMENT_COLUMNS])
    return _latest(frame, ["park_id", "enterprise", "reference"])


def load_instruments(engine: Engine, park_id: str) -> pd.DataFrame:
    """The park's current instruments (the latest record of each enterprise and reference)."""
    frame = _current_instruments(engine, park_id)
    return frame[frame["quantity_mwh"] > 0][INSTRUMENT_COLUMNS].reset_index(drop=True)


# ---- quotas ----------------------------------------------------------------------------------------------------


def record_quota_plan(engine: Engine, park_id: str, plan: QuotaPlan, actor: str) -> int:
    """Record an enterprise's allocation plan for a year (a later one replaces it)."""
    with Session(engine) as session, session.begin():
        row = QuotaPlanRow(park_id=park_id, enterprise_id=plan.enterprise, year=plan.year, method=plan.method,
                           absolute_t=plan.absolute_t, benchmark_t_per_unit=plan.benchmark_t_per_unit, unit=plan.unit,
                           base_output=plan.base_output, pre_share=plan.pre_share, correction=plan.correction,
                           basis=plan.basis, recorded_at=_now(), actor=actor)
        session.add(row)
        session.flush()
        return row.id


def load_quota_plans(engine: Engine, park_id: str, year: int) -> list[QuotaPlan]:
    """The current plan of every enterprise for the year."""
    with Session(engine) as session:
        rows = session.execute(select(QuotaPlanRow).where(QuotaPlanRow.park_id == park_id,
                                                          QuotaPlanRow.year == year)
                               .order_by(QuotaPlanRow.id)).scalars().all()
        latest = {r.enterprise_id: r for r in rows}
        return [QuotaPlan(r.enterprise_id, r.year, r.method, r.absolute_t, r.benchmark_t_per_unit, r.unit,
                          r.base_output, r.pre_share, r.correction, r.basis or DEFAULT_QUOTA_BASIS)
                for r in latest.values()]


def record_movement(engine: Engine, park_id: str, enterprise: str, year: int, kind: str, amount_t: float, *,
                    actor: str, price_cny_per_t: float | None = None, reference: str = "", note: str = "",
                    corrects_id: int | None = None, allowances_due_t: float | None = None,
                    ccer_cap: float = CCER_CAP) -> int:
    """Append one movement to the ledger and return its id.

    Refused (LedgerError): unknown kinds, negative amounts of directional kinds, a sale or surrender beyond the
    holdings; CcerCapError: a CCER offset that would take the year's CCER beyond `ccer_cap` x
    `allowances_due_t` (the verified emissions, which a CCER offset must state).
    """
    check_movement(kind, amount_t)
    if kind == "ccer_offset" and (allowances_due_t is None or allowances_due_t < 0):
        raise LedgerError("a CCER offset must state allowances_due_t (the verified emissions of the year) so that "
                          f"the {ccer_cap:.0%} cap can be checked")
    with Session(engine) as session, session.begin():
        bal = balances(_ledger_frame(session, park_id, year, enterprise))
        held = float(bal["holdings_t"].iloc[0]) if len(bal) else 0.0
        ccer = float(bal["ccer_offset"].iloc[0]) if len(bal) else 0.0
        if MOVEMENTS[kind][0] < 0 and amount_t > held + 1e-9:
            raise LedgerError(f"cannot {kind} {amount_t:,.3f} t for {enterprise} {year}: holdings are {held:,.3f} t")
        if kind == "ccer_offset" and ccer + amount_t > ccer_cap * allowances_due_t + 1e-9:
            raise CcerCapError(f"CCER offsets of {enterprise} {year} would reach {ccer + amount_t:,.3f} t, above the "
                               f"cap of {ccer_cap:.0%} x {allowances_due_t:,.3f} t = "
                               f"{ccer_cap * allowances_due_t:,.3f} t")
        if corrects_id is not None and session.get(LedgerRow, corrects_id) is None:
            raise LedgerError(f"movement {corrects_id} to correct does not exist")
        row = LedgerRow(park_id=park_id, enterprise_id=enterprise, year=year, kind=kind, amount_t=float(amount_t),
                        price_cny_per_t=price_cny_per_t, reference=reference, note=note, corrects_id=corrects_id,
                        recorded_at=_now(), actor=actor)
        session.add(row)
        session.flush()
        return row.id


def _ledger_frame(session: Session, park_id: str, year: int | None, enterprise: str | None) -> pd.DataFrame:
    q = select(LedgerRow).where(LedgerRow.park_id == park_id)
    if year is not None:
        q = q.where(LedgerRow.year == year)
    if enterprise is not None:
        q = q.where(LedgerRow.enterprise_id == enterprise)
    rows = session.execute(q.order_by(LedgerRow.id)).scalars().all()
    return pd.DataFrame([(r.id, r.enterprise_id, r.year, r.kind, r.amount_t, r.price_cny_per_t, r.reference, r.note,
                          r.corrects_id, r.recorded_at, r.actor) for r in rows], columns=LEDGER_COLUMNS)


def load_ledger(engine: Engine, park_id: str, year: int | None = None, enterprise: str | None = None) -> pd.DataFrame:
    """Ledger movements (LEDGER_COLUMNS) in the order recorded."""
    with Session(engine) as session:
        return _ledger_frame(session, park_id, year, enterprise)


# ---- restatements ------------------------------------------------------------------------------------------------


def record_restatements(engine: Engine, park_id: str, changes: pd.DataFrame, *, reason: str, actor: str,
                        factor_import_id: int | None = None) -> int:
    """Record the changed figures of carbon.restatement.diff_accounts; returns the rows written."""
    if not reason.strip():
        raise InputError("a restatement needs a reason")
    now = _now()
    return _insert(engine, RestatementRow, [
        {"park_id": park_id, "recorded_at": now, "actor": actor, "reason": reason,
         "factor_import_id": factor_import_id, "level": r.level, "enterprise": r.enterprise, "period": r.period,
         "metric": r.metric, "old_value": _float(r.old_value), "new_value": _float(r.new_value),
         "old_factors": r.old_factors, "new_factors": r.new_factors, "old_registry": r.old_registry,
         "new_registry": r.new_registry} for r in changes.itertuples()])


def _float(v: object) -> float | None:
    return None if pd.isna(v) else float(v)


def load_restatements(engine: Engine, park_id: str, enterprise: str | None = None,
                      periods: Iterable[str] | None = None) -> pd.DataFrame:
    """Restatements of the park (or of one enterprise, and some periods), oldest first: the history that explains
    why a figure differs from the one in an earlier report."""
    with Session(engine) as session:
        q = select(RestatementRow).where(RestatementRow.park_id == park_id)
        if enterprise is not None:
            q = q.where(RestatementRow.enterprise == enterprise)
        if periods is not None:
            q = q.where(RestatementRow.period.in_(list(periods)))
        rows = session.execute(q.order_by(RestatementRow.id)).scalars().all()
        cols = [c.name for c in RestatementRow.__table__.columns]
        return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in rows], columns=cols)

