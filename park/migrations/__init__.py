"""The metadata database's schema, owned by Alembic migrations (park/migrations/versions/).

Tables exist because a migration made them, never because a module happened to be imported: `upgrade_schema`
brings any database (empty, made by release 0.1.0, or at an older revision) to the newest revision, and
`check_schema` refuses a database that is behind.  The models (the SQLAlchemy classes in MODEL_MODULES) must
describe exactly what the migrations make; tests/test_migrations.py compares them.  How to add a migration:
docs/migrations.md.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
BASELINE = "0001"  # the schema of release 0.1.0, the last release without migrations
# Every module that declares tables on park.metadata.Base: the models the migrations must match.
MODEL_MODULES = ("park.metadata", "carbon.records", "portal.alerts", "portal.audit", "portal.auth",
                 "forecasting.cache", "portal.evidence.tables", "park.jobs",
                 "portal.reports.archive", "park.bills")


class SchemaError(RuntimeError):
    """The metadata database's schema cannot be used or upgraded as it is; the message says what to do."""


def alembic_config(connection: sa.Connection | None = None, **attributes: Any) -> Config:
    """An Alembic configuration of our migrations (no alembic.ini): `connection` is the one they run on."""
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    config.attributes.update(attributes)
    return config


def head_revision() -> str:
    """The revision this release's models need."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def schema_revision(engine: Engine) -> str | None:
    """The database's revision, None when it has no alembic_version table (empty, or made by release 0.1.0)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_schema(engine: Engine, revision: str = "head") -> str:
    """Upgrade the database to `revision` (the newest by default) in one transaction, and return it.

    A database without an alembic_version table whose tables are release 0.1.0's is recognised as such: the
    baseline creates only the 0.1.0 tables it lacks, then the later migrations run.  SchemaError when its tables
    are not 0.1.0's (made by a development build between releases: there is no knowing which migration to start
    from) or when it is at a revision this release does not know (made by a newer release).
    """
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":  # pysqlite runs DDL outside transactions: make it all or nothing
            connection.exec_driver_sql("BEGIN")
        current = MigrationContext.configure(connection).get_current_revision()
        script = ScriptDirectory.from_config(alembic_config())
        if current is not None and current not in {s.revision for s in script.walk_revisions()}:
            raise SchemaError(f"the metadata database is at schema revision {current}, which this release of "
                              "ParkCarbon does not know: it was upgraded by a newer release; run that release")
        if current is None:
            found = check_baseline(connection)
            if found:
                log.info("metadata database without schema version, tables of release 0.1.0 (%d): upgrading it",
                         len(found))
        command.upgrade(alembic_config(connection), revision)
        now = MigrationContext.configure(connection).get_current_revision()
    if now != current:
        log.info("metadata database schema upgraded from %s to %s", current or "none", now)
    return now or ""


def check_baseline(connection: sa.Connection) -> list[str]:
    """The release 0.1.0 tables the unversioned database has; SchemaError if any differs from 0.1.0's."""
    baseline = ScriptDirectory.from_config(alembic_config()).get_revision(BASELINE).module.baseline_tables()
    inspector = sa.inspect(connection)
    existing = set(inspector.get_table_names())
    found = []
    for name, items in baseline:
        if name not in existing:
            continue
        want = {c.name for c in items if isinstance(c, sa.Column)}
        have = {c["name"] for c in inspector.get_columns(name)}
        if want != have:
            extra, missing = sorted(have - want), sorted(want - have)
            raise SchemaError(
                f"the metadata database has no schema version and its table {name} is not release 0.1.0's "
                f"(extra columns: {', '.join(extra) or 'none'}; missing: {', '.join(missing) or 'none'}): it was "
                "made by a development build, so no migration knows where to start. Re-create it (a new "
                "metadata_url and `parkcarbon init`), or add the missing columns / drop the extra ones by hand "
                "and run `parkcarbon init` again")
        found.append(name)
    return found


def check_schema(engine: Engine) -> None:
    """SchemaError unless the database is at the newest revision (commands other than init and demo use it)."""
    current, head = schema_revision(engine), head_revision()
    if current == head:
        return
    if current is None:
        state = "has no schema version (it is empty, or was made by release 0.1.0)"
    else:
        state = f"is at schema revision {current}"
    raise SchemaError(f"the metadata database {state}; this release needs revision {head}. Run `parkcarbon init` "
                      "(it upgrades the database, keeping its rows; back it up first) and start again")


def model_metadata() -> MetaData:
    """The models' MetaData with every model module imported (what the newest migration must have made)."""
    for module in MODEL_MODULES:
        importlib.import_module(module)
    from park.metadata import Base

    return Base.metadata


def schema_differences(engine: Engine) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match the models ([] when they agree)."""
    from alembic.autogenerate import compare_metadata

    metadata = model_metadata()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, metadata)
    return [d for d in diffs if not _is_alembic_version(d)]


def _is_alembic_version(diff: Any) -> bool:
    return isinstance(diff, tuple) and diff[0] == "remove_table" and diff[1].name == "alembic_version"
