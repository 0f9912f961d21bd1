"""The metadata schema belongs to the migrations (park/migrations/versions), not to whichever modules were imported.

* revision 0001 makes exactly the tables release 0.1.0 made (tests/data/metadata_0_1_0.sqlite.sql, dumped from a
  database that release's `parkcarbon init` created);
* a database made by release 0.1.0 (no alembic_version) is recognised and upgraded, keeping its rows, on SQLite
  and on a real PostgreSQL (tests/data/metadata_0_1_0.postgresql.sql: that release's DDL there);
* after `upgrade head` the database is what the models describe (Alembic's compare_metadata finds nothing): a
  column added to a model without a migration fails here;
* `parkcarbon init` upgrades; the other commands refuse a database that is behind.
"""

from __future__ import annotations

import ast
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, MetaData, func, insert, inspect, select, text
from sqlalchemy.exc import DatabaseError

from park.metadata import create_engine_from_url, load_park
from park.migrations import (
    MODEL_MODULES,
    SchemaError,
    check_schema,
    head_revision,
    schema_differences,
    schema_revision,
    upgrade_schema,
)
from tests.support.postgres import postgres_server

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
SQLITE_0_1_0 = DATA / "metadata_0_1_0.sqlite.sql"
POSTGRES_0_1_0 = DATA / "metadata_0_1_0.postgresql.sql"
# rows of the fixture, counted by hand from the script that made it (docs/migrations.md)
FIXTURE_ROWS = {"users": 2, "audit_events": 1, "alert_acks": 1, "carbon_quota_plans": 1, "carbon_quota_ledger": 1,
                "carbon_instruments": 1, "carbon_output_values": 1, "parks": 1, "import_runs": 1}


def release_0_1_0_sqlite(path: Path) -> Engine:
    """A SQLite file as release 0.1.0 left it (its schema and rows), opened the way ParkCarbon opens it."""
    with sqlite3.connect(path) as connection:
        connection.executescript(SQLITE_0_1_0.read_text(encoding="utf-8"))
    return create_engine_from_url(f"sqlite:///{path}", create_tables=False)


def sqlite_schema(path: Path) -> list[tuple[str, str, str]]:
    """(type, name, SQL) of every table, index and trigger but Alembic's own, as SQLite keeps them."""
    with sqlite3.connect(path) as connection:
        return connection.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "AND name != 'alembic_version' ORDER BY type, name").fetchall()


def row_counts(engine: Engine) -> dict[str, int]:
    reflected = MetaData()
    reflected.reflect(engine)
    with engine.connect() as connection:
        return {name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for name, table in reflected.tables.items() if name != "alembic_version"}


def columns(engine: Engine) -> dict[str, list[str]]:
    inspector = inspect(engine)
    return {t: [c["name"] for c in inspector.get_columns(t)] for t in inspector.get_table_names()
            if t != "alembic_version"}


def kept_rows(after: dict[str, int], before: dict[str, int]) -> bool:
    """Every table of before keeps its rows; tables made by later revisions are empty."""
    return ({k: after.get(k) for k in before} == before
            and all(n == 0 for k, n in after.items() if k not in before))


def assert_ledger_refuses_changes_in_the_database(engine: Engine) -> None:
    for statement in ("UPDATE carbon_quota_ledger SET amount_t = 1", "DELETE FROM carbon_quota_ledger"):
        with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))


# --- SQLite ---------------------------------------------------------------------------------------------------


def test_baseline_makes_exactly_the_tables_of_release_0_1_0(tmp_path: Path) -> None:
    fresh = create_engine_from_url(f"sqlite:///{tmp_path / 'fresh.db'}", create_tables=False)
    assert upgrade_schema(fresh, "0001") == "0001"
    release_0_1_0_sqlite(tmp_path / "old.db")
    made, released = sqlite_schema(tmp_path / "fresh.db"), sqlite_schema(tmp_path / "old.db")
    assert [name for _, name, _ in made] == [name for _, name, _ in released]
    assert made == released  # the same CREATE statements: columns, types, keys, the index and the triggers


def test_a_fresh_database_upgraded_to_head_is_what_the_models_describe(tmp_path: Path) -> None:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'parkcarbon.db'}")  # upgrades, whatever was imported
    assert schema_revision(engine) == head_revision()
    assert schema_differences(engine) == []
    assert upgrade_schema(engine) == head_revision()  # idempotent
    check_schema(engine)


def test_a_release_0_1_0_database_is_upgraded_keeping_its_rows(tmp_path: Path) -> None:
    engine = release_0_1_0_sqlite(tmp_path / "parkcarbon.db")
    before = row_counts(engine)
    assert {k: before[k] for k in FIXTURE_ROWS} == FIXTURE_ROWS
    assert schema_revision(engine) is None
    with pytest.raises(SchemaError, match="no schema version"):
        check_schema(engine)

    assert upgrade_schema(engine) == head_revision()

    assert schema_differences(engine) == []
    assert kept_rows(row_counts(engine), before)
    park = load_park(engine)
    assert park.id == "demo" and park.meters and all(m.max_kw is None for m in park.meters)  # new columns: NULL
    assert_ledger_refuses_changes_in_the_database(engine)
    from carbon import records
    from portal.auth import authenticate

    assert authenticate(engine, "admin", "admin-pass-0100").role == "admin"  # its users can still log in
    ledger = records.load_ledger(engine, "demo", 2026)
    assert ledger["amount_t"].tolist() == [1200.0]
    assert records.load_instruments(engine, "demo")["reference"].tolist() == ["GEC batch 7"]
    plan, = records.load_quota_plans(engine, "demo", 2026)
    assert plan.absolute_t == 1200.0


def test_tables_release_0_1_0_had_not_made_yet_are_created(tmp_path: Path) -> None:
    """0.1.0 made some tables only when a module using them was imported: the baseline adds what is missing."""
    engine = release_0_1_0_sqlite(tmp_path / "parkcarbon.db")
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE alert_acks"))
    upgrade_schema(engine)
    assert schema_differences(engine) == []


def test_an_unversioned_database_that_is_not_release_0_1_0_is_refused_untouched(tmp_path: Path) -> None:
    engine = release_0_1_0_sqlite(tmp_path / "parkcarbon.db")
    with engine.begin() as connection:  # a development build between releases added a column by create_all
        connection.execute(text("ALTER TABLE meters ADD COLUMN max_kw FLOAT"))
    before = sqlite_schema(tmp_path / "parkcarbon.db")
    with pytest.raises(SchemaError, match=r"table meters .*extra columns: max_kw"):
        upgrade_schema(engine)
    assert sqlite_schema(tmp_path / "parkcarbon.db") == before
    assert schema_revision(engine) is None


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'parkcarbon.db'}")
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaError, match="revision 9999.*newer release"):
        upgrade_schema(engine)


def test_a_failing_upgrade_leaves_the_sqlite_database_as_it_was(tmp_path: Path) -> None:
    """The whole upgrade is one transaction on SQLite too (pysqlite alone would commit each ALTER at once)."""
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'parkcarbon.db'}", create_tables=False)
    upgrade_schema(engine, "0002")
    with engine.begin() as connection:  # 0003 adds carbon_instruments.vintage, then fails on this column
        connection.execute(text("ALTER TABLE carbon_quota_plans ADD COLUMN basis VARCHAR(16)"))
    before = sqlite_schema(tmp_path / "parkcarbon.db")
    with pytest.raises(DatabaseError, match="duplicate column name: basis"):
        upgrade_schema(engine)
    assert sqlite_schema(tmp_path / "parkcarbon.db") == before
    assert schema_revision(engine) == "0002"


def test_every_revision_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    from alembic import command

    from park.migrations import alembic_config

    engine = release_0_1_0_sqlite(tmp_path / "parkcarbon.db")
    upgrade_schema(engine)
    with engine.begin() as connection:
        command.downgrade(alembic_config(connection), "0001")
    released = release_0_1_0_sqlite(tmp_path / "released.db")
    assert columns(engine) == columns(released)  # (the SQL text differs: SQLite drops columns by copying tables)
    upgrade_schema(engine)
    assert schema_differences(engine) == []


def test_the_listed_model_modules_are_every_module_that_declares_a_table() -> None:
    """A module with a table missing from MODEL_MODULES would escape the schema-equals-models check."""
    declaring = set()
    for path in ROOT.glob("*/**/*.py"):
        if path.parts[len(ROOT.parts)] in {"tests", "bench", ".venv", "build"} or "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__tablename__" for t in node.targets)
               for node in ast.walk(tree)):
            declaring.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    assert declaring == set(MODEL_MODULES)


# --- the command line -------------------------------------------------------------------------------------------


def test_init_upgrades_a_release_0_1_0_database_and_serve_refuses_one(tmp_path: Path) -> None:
    from tests.test_cli import run

    state = tmp_path / "state"
    state.mkdir()
    engine = release_0_1_0_sqlite(state / "parkcarbon.db")
    env = {"PARKCARBON_DATA_DIR": str(state)}
    refused = run("user", "add", "someone", "--role", "regulator", "--password-stdin", cwd=tmp_path, env=env)
    assert refused.returncode == 2
    assert "no schema version" in refused.stderr and "parkcarbon init" in refused.stderr
    assert schema_revision(engine) is None

    from park.parkfile import DEMO_PARK_FILE

    out = run("init", "--park-file", str(DEMO_PARK_FILE), cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert schema_revision(engine) == head_revision()
    assert schema_differences(engine) == []
    assert any(m.max_kw or m.transformer_kva for m in load_park(engine).meters)  # the new columns filled


# --- PostgreSQL -------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture
def postgres(postgres_url: str) -> Iterator[Engine]:
    engine = create_engine_from_url(postgres_url, create_tables=False)
    with engine.begin() as connection:  # the server is shared by the module's tests: start each one empty
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    yield engine
    engine.dispose()


def copy_rows(source: Engine, target: Engine) -> None:
    """Every row of `source` into the same tables of `target`, parents first; serial sequences moved on."""
    tables, into = MetaData(), MetaData()
    tables.reflect(source)
    into.reflect(target)
    with source.connect() as read, target.begin() as write:
        for table in tables.sorted_tables:
            rows = [dict(r._mapping) for r in read.execute(select(table))]
            if rows:
                write.execute(insert(into.tables[table.name]), rows)
            if "id" in table.c and isinstance(rows[0]["id"] if rows else None, int):
                write.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                   f"(SELECT max(id) FROM {table.name}))"))


@pytest.mark.postgres
def test_postgres_fresh_database_upgraded_to_head_is_what_the_models_describe(postgres: Engine) -> None:
    assert upgrade_schema(postgres) == head_revision()
    assert schema_differences(postgres) == []


@pytest.mark.postgres
def test_postgres_release_0_1_0_database_is_upgraded_keeping_its_rows(postgres: Engine, tmp_path: Path) -> None:
    with postgres.begin() as connection:
        connection.exec_driver_sql(POSTGRES_0_1_0.read_text(encoding="utf-8"))
    copy_rows(release_0_1_0_sqlite(tmp_path / "old.db"), postgres)
    before = row_counts(postgres)
    assert {k: before[k] for k in FIXTURE_ROWS} == FIXTURE_ROWS
    assert schema_revision(postgres) is None

    assert upgrade_schema(postgres) == head_revision()

    assert schema_differences(postgres) == []
    assert kept_rows(row_counts(postgres), before)
    assert_ledger_refuses_changes_in_the_database(postgres)
    from carbon import records

    assert records.load_ledger(postgres, "demo", 2026)["amount_t"].tolist() == [1200.0]
    later = records.record_movement(postgres, "demo", "E001", 2026, "allocation", 10.0, actor="test")
    assert later == 2  # the serial sequence continues after the copied row
