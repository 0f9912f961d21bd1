"""The metadata database: importing park files by upsert, deactivation, atomicity, reading back.

Every test runs against SQLite (a temporary file) and a real PostgreSQL server (a throwaway cluster).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from park import metadata
from park.metadata import (
    ENTITY_TABLES,
    ImportRun,
    MeterRow,
    ParkNotFoundError,
    create_engine_from_url,
    import_park,
    import_park_file,
    load_park,
)
from park.model import Meter, Park
from park.parkfile import DEMO_PARK_FILE, ParkFileError, dump_park, load_park_file
from park.units import Carrier
from tests.support.postgres import postgres_server
from tests.support.schema import fresh_schema

DEMO = load_park_file(DEMO_PARK_FILE)
DEMO_ENTITIES = 1 + len(DEMO.enterprises) + len(DEMO.workshops) + len(DEMO.meters) + len(DEMO.devices)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = create_engine_from_url(f"sqlite:///{tmp_path / 'var' / 'parkcarbon.db'}")
    else:
        engine = create_engine_from_url(request.getfixturevalue("postgres_url"), create_tables=False)
        fresh_schema(engine)  # the server is shared by the module's tests: start each one empty
    yield engine
    engine.dispose()


# --- helpers ----------------------------------------------------------------------------------------


def write_park_file(tmp_path: Path, park: Park, name: str = "park.yaml") -> Path:
    path = tmp_path / name
    path.write_text(dump_park(park), encoding="utf-8")
    return path


def by_id(park: Park) -> dict[str, Any]:
    """The park with its entities sorted by id: the database does not keep file order."""
    return {
        "park": dataclasses.replace(park, enterprises=(), workshops=(), meters=(), devices=()),
        **{
            kind: sorted(getattr(park, kind), key=lambda e: e.id)
            for kind in ("enterprises", "workshops", "meters", "devices")
        },
    }


def row_states(engine: Engine) -> dict[tuple[str, str], tuple[bool, Any, Any]]:
    """(kind, id) -> (active, created_at, updated_at) of every entity row, active or not."""
    states = {}
    with Session(engine) as session:
        for kind, table in ENTITY_TABLES.items():
            for row in session.scalars(select(table)):
                states[(kind, row.id)] = (row.active, row.created_at, row.updated_at)
    return states


def count_runs(engine: Engine) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(ImportRun)) or 0


def without_meter(park: Park, meter_id: str) -> Park:
    return dataclasses.replace(park, meters=tuple(m for m in park.meters if m.id != meter_id))


def with_meter_changed(park: Park, meter_id: str, **changes: Any) -> Park:
    meters = tuple(dataclasses.replace(m, **changes) if m.id == meter_id else m for m in park.meters)
    return dataclasses.replace(park, meters=meters)


# --- importing ------------------------------------------------------------------------------------


def test_importing_the_demo_file_adds_every_entity_and_reads_back_equal(engine: Engine) -> None:
    report = import_park_file(engine, DEMO_PARK_FILE, actor="test")

    assert (report.added, report.updated, report.deactivated, report.unchanged) == (DEMO_ENTITIES, 0, 0, 0)
    assert by_id(load_park(engine)) == by_id(DEMO)
    assert by_id(load_park(engine, "demo")) == by_id(DEMO)


def test_import_run_records_who_when_which_file_and_counts(engine: Engine) -> None:
    report = import_park_file(engine, DEMO_PARK_FILE, actor="operator-li")

    with Session(engine) as session:
        run = session.get_one(ImportRun, report.run_id)
        assert (run.park_id, run.actor, run.source_path) == ("demo", "operator-li", str(DEMO_PARK_FILE))
        assert run.source_sha256 == hashlib.sha256(DEMO_PARK_FILE.read_bytes()).hexdigest()
        assert (run.added, run.updated, run.reactivated, run.deactivated, run.unchanged) == (
            DEMO_ENTITIES,
            0,
            0,
            0,
            0,
        )
        assert run.imported_at.tzinfo is not None


def test_reimporting_same_file_changes_nothing(engine: Engine) -> None:
    import_park_file(engine, DEMO_PARK_FILE)
    before = row_states(engine)

    report = import_park_file(engine, DEMO_PARK_FILE)

    assert (report.added, report.updated, report.reactivated, report.deactivated) == (0, 0, 0, 0)
    assert report.unchanged == DEMO_ENTITIES
    assert row_states(engine) == before  # updated_at included
    assert count_runs(engine) == 2  # the audit trail still records the import


def test_changed_file_updates_only_the_changed_entities(engine: Engine, tmp_path: Path) -> None:
    import_park_file(engine, DEMO_PARK_FILE)
    before = row_states(engine)
    changed = with_meter_changed(DEMO, "E001-W1-M1", interval_s=300, address="modbus://10.0.0.5:502/1")

    report = import_park_file(engine, write_park_file(tmp_path, changed))

    assert (report.added, report.updated, report.deactivated) == (0, 1, 0)
    assert [str(c) for c in report.changes] == ["updated meter E001-W1-M1 (interval_s, address)"]
    after = row_states(engine)
    assert {key for key in after if after[key] != before[key]} == {("meter", "E001-W1-M1")}
    assert after[("meter", "E001-W1-M1")][1] == before[("meter", "E001-W1-M1")][1]  # created_at kept
    assert by_id(load_park(engine)) == by_id(changed)


def test_meter_register_size_and_maximum_power_are_stored_and_read_back(engine: Engine, tmp_path: Path) -> None:
    import_park_file(engine, DEMO_PARK_FILE)
    limits = {"register_max": 1_000_000.0, "max_kw": 450.0, "rated_kw": 300.0, "transformer_kva": 630.0,
              "breaker_a": 800.0}
    changed = with_meter_changed(DEMO, "E001-W1-M1", **limits)
    changed = with_meter_changed(changed, "E001-M-GAS", max_per_h=120.5)

    report = import_park_file(engine, write_park_file(tmp_path, changed))

    assert sorted(str(c) for c in report.changes) == [
        "updated meter E001-M-GAS (max_per_h)",
        "updated meter E001-W1-M1 (register_max, max_kw, rated_kw, transformer_kva, breaker_a)"]
    loaded = load_park(engine)
    meters = {m.id: m for m in loaded.meters}
    assert {k: getattr(meters["E001-W1-M1"], k) for k in limits} == limits
    assert meters["E001-M-GAS"].max_per_h == 120.5
    assert by_id(loaded) == by_id(changed)


def test_removed_meter_is_deactivated_not_deleted(engine: Engine, tmp_path: Path) -> None:
    import_park_file(engine, DEMO_PARK_FILE)

    report = import_park_file(engine, write_park_file(tmp_path, without_meter(DEMO, "E002-M-STEAM")))

    assert [str(c) for c in report.changes] == ["deactivated meter E002-M-STEAM"]
    with Session(engine) as session:
        row = session.get_one(MeterRow, ("demo", "E002-M-STEAM"))
        assert row.active is False and row.carrier == "steam"
    assert "E002-M-STEAM" not in {m.id for m in load_park(engine).meters}


def test_meter_that_comes_back_is_reactivated(engine: Engine, tmp_path: Path) -> None:
    import_park_file(engine, DEMO_PARK_FILE)
    created = row_states(engine)[("meter", "E002-M-STEAM")][1]
    import_park_file(engine, write_park_file(tmp_path, without_meter(DEMO, "E002-M-STEAM")))

    report = import_park_file(engine, DEMO_PARK_FILE)

    assert [str(c) for c in report.changes] == ["reactivated meter E002-M-STEAM"]
    active, created_again, _ = row_states(engine)[("meter", "E002-M-STEAM")]
    assert active and created_again == created
    assert by_id(load_park(engine)) == by_id(DEMO)


def test_removed_workshop_deactivates_it_with_its_meters_and_devices(engine: Engine, tmp_path: Path) -> None:
    import_park_file(engine, DEMO_PARK_FILE)
    smaller = dataclasses.replace(
        DEMO,
        workshops=tuple(w for w in DEMO.workshops if w.id != "E001-W2"),
        meters=tuple(m for m in DEMO.meters if m.workshop != "E001-W2"),
        devices=tuple(d for d in DEMO.devices if d.workshop != "E001-W2"),
    )

    report = import_park_file(engine, write_park_file(tmp_path, smaller))

    assert {(c.kind, c.id) for c in report.changes if c.action == "deactivated"} == {
        ("workshop", "E001-W2"),
        ("meter", "E001-W2-M1"),
        ("device", "E001-W2-D1"),
        ("device", "E001-W2-D2"),
        ("device", "E001-W2-D3"),
    }
    assert by_id(load_park(engine)) == by_id(smaller)


def test_workshop_can_move_to_another_enterprise_with_its_meters(engine: Engine, tmp_path: Path) -> None:
    import_park_file(engine, DEMO_PARK_FILE)
    moved = dataclasses.replace(
        DEMO,
        workshops=tuple(
            dataclasses.replace(w, enterprise="E002") if w.id == "E001-W3" else w for w in DEMO.workshops
        ),
        meters=tuple(
            dataclasses.replace(m, enterprise="E002") if m.workshop == "E001-W3" else m for m in DEMO.meters
        ),
    )

    report = import_park_file(engine, write_park_file(tmp_path, moved))

    assert {str(c) for c in report.changes} == {
        "updated workshop E001-W3 (enterprise_id)",
        "updated meter E001-W3-M1 (enterprise_id)",
    }
    assert by_id(load_park(engine)) == by_id(moved)


def test_failure_mid_import_leaves_the_database_unchanged(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import_park_file(engine, DEMO_PARK_FILE)
    before = row_states(engine)
    new_meter = Meter("E001-W1-M2", Carrier.ELECTRICITY, "E001", "E001-W1")
    changed = without_meter(with_meter_changed(DEMO, "E001-W1-M1", interval_s=60), "E002-M-STEAM")
    changed = dataclasses.replace(changed, meters=(*changed.meters, new_meter))

    def fail_after_all_rows_were_written(session: Session, *args: Any) -> int:
        assert session.get(MeterRow, ("demo", "E001-W1-M2")) is not None  # written, not yet committed
        raise RuntimeError("disk full")

    monkeypatch.setattr(metadata, "_record_run", fail_after_all_rows_were_written)
    with pytest.raises(RuntimeError, match="disk full"):
        import_park_file(engine, write_park_file(tmp_path, changed))

    assert row_states(engine) == before
    assert count_runs(engine) == 1
    assert by_id(load_park(engine)) == by_id(DEMO)


def test_inconsistent_park_is_rejected_before_anything_is_written(engine: Engine) -> None:
    stray = Meter("X-M1", Carrier.ELECTRICITY, "E001", workshop="E002-W1")  # E002-W1 belongs to E002
    broken = dataclasses.replace(DEMO, meters=(*DEMO.meters, stray))

    with pytest.raises(ValueError, match="meter 'X-M1' refers to workshop 'E002-W1'.*enterprise 'E001'"):
        import_park(engine, broken)

    assert row_states(engine) == {} and count_runs(engine) == 0


def test_bad_park_file_is_reported_and_nothing_is_written(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("park:\n  id: demo\n  name: 示范园区\nenterprises:\n  - id: E001\n", encoding="utf-8")

    with pytest.raises(ParkFileError, match=r"bad\.yaml:5: enterprise 'E001': missing required key 'name'"):
        import_park_file(engine, path)

    assert row_states(engine) == {}


def test_timestamps_are_timezone_aware_utc(engine: Engine) -> None:
    import_park_file(engine, DEMO_PARK_FILE)

    for _active, created_at, updated_at in row_states(engine).values():
        assert created_at.utcoffset() == updated_at.utcoffset() == UTC.utcoffset(None)


def test_two_parks_can_use_the_same_entity_ids(engine: Engine) -> None:
    other = dataclasses.replace(DEMO, id="north", name="北区园区")
    import_park(engine, DEMO)
    import_park(engine, other)

    assert by_id(load_park(engine, "demo")) == by_id(DEMO)
    assert by_id(load_park(engine, "north")) == by_id(other)
    with pytest.raises(ParkNotFoundError, match=r"several parks \(demo, north\): name one"):
        load_park(engine)


def test_loading_a_park_that_was_never_imported_says_what_to_do(engine: Engine) -> None:
    with pytest.raises(ParkNotFoundError, match="no park in the metadata database: import a park file first"):
        load_park(engine)
    import_park(engine, DEMO)
    with pytest.raises(ParkNotFoundError, match=r"no park 'south' in the metadata database \(parks: demo\)"):
        load_park(engine, "south")


def test_import_report_summary_is_human_readable(engine: Engine, tmp_path: Path) -> None:
    import_park_file(engine, DEMO_PARK_FILE)
    path = write_park_file(
        tmp_path, with_meter_changed(without_meter(DEMO, "E002-M-STEAM"), "E001-W1-M1", name="一号表")
    )

    report = import_park_file(engine, path)

    assert report.summary() == (
        f"imported park demo from {path} (run {report.run_id}): 0 added, 1 updated, 0 reactivated, "
        f"1 deactivated, {DEMO_ENTITIES - 2} unchanged\n"
        "  updated meter E001-W1-M1 (name)\n"
        "  deactivated meter E002-M-STEAM"
    )
    assert str(report) == report.summary()
