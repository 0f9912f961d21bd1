"""Carbon quotas: allocation and true-up, the append-only ledger, the position (methodology 6, example Q)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import Engine, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from carbon import records
from carbon.errors import CcerCapError, InputError, LedgerError
from carbon.quota import QuotaPlan, final_allocation, position, pre_allocation, true_up
from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Park
from tests.support.postgres import postgres_server
from tests.support.schema import fresh_schema

PRICE = 97.49  # CNY/t, national ETS close at the end of 2024
PLAN = QuotaPlan.intensity("E1", 2024, benchmark_t_per_unit=0.8534, unit="t clinker", base_output=100_000,
                           pre_share=0.7)
PARK = Park("demo", "示范园区", province="Jiangsu", enterprises=(Enterprise("E1", "华新水泥"), Enterprise("E2", "b")))


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def _engine(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if backend == "sqlite":
        engine = create_engine_from_url(f"sqlite:///{tmp_path / 'parkcarbon.db'}")
    else:
        engine = create_engine_from_url(request.getfixturevalue("postgres_url"), create_tables=False)
        fresh_schema(engine)  # the server is shared by the module's tests: start each one empty
    import_park(engine, PARK)
    return engine


@pytest.fixture
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """SQLite: the ledger's rules live in Python, the same on every database."""
    engine = _engine("sqlite", request, tmp_path)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """SQLite and a real PostgreSQL: for what the database itself enforces (the append-only triggers)."""
    engine = _engine(request.param, request, tmp_path)
    yield engine
    engine.dispose()


def move(engine: Engine, kind: str, amount: float, **kw) -> int:
    return records.record_movement(engine, "demo", "E1", 2024, kind, amount, actor="test", **kw)


# ---- example Q (methodology 6.5) ---------------------------------------------------------------------------------


def test_example_q_pre_allocation_and_true_up():
    assert pre_allocation(PLAN) == pytest.approx(59_738.0)  # 0.7 x 0.8534 x 100 000
    assert final_allocation(PLAN, actual_output=110_000) == pytest.approx(93_874.0)
    assert true_up(PLAN, actual_output=110_000) == pytest.approx(34_136.0)
    assert true_up(PLAN, actual_output=60_000) == pytest.approx(51_204.0 - 59_738.0)  # output fell: give back


def test_example_q_position_in_september_with_a_projection(engine):
    move(engine, "allocation", pre_allocation(PLAN), note="pre-allocation 70 %")
    move(engine, "purchase", 5_000, price_cny_per_t=PRICE)
    move(engine, "sale", 1_000, price_cny_per_t=105.66)
    ledger = records.load_ledger(engine, "demo", 2024)
    emissions = pd.DataFrame({"enterprise": ["E1"], "year": [2024], "emissions_t_co2e": [70_000.0]})
    projection = pd.DataFrame({"enterprise": ["E1"], "year": [2024], "projected_t_co2e": [95_000.0],
                               "projected_low_t_co2e": [91_000.0], "projected_high_t_co2e": [99_000.0]})
    p = position(ledger, emissions, PRICE, plans=[PLAN], projection=projection).iloc[0]
    assert p["allowances_t"] == pytest.approx(63_738.0)
    assert p["used_share"] == pytest.approx(70_000 / 63_738)
    assert p["remaining_t"] == pytest.approx(-6_262.0) and p["status"] == "deficit"
    assert p["value_cny"] == pytest.approx(-610_482.38)
    assert p["threshold"] == 1.0 and p["warning"] == "110% of the allowances used; deficit 6,262.0 t"
    assert p["projected_remaining_t"] == pytest.approx(-31_262.0)
    assert p["projected_low_remaining_t"] == pytest.approx(-27_262.0)
    assert p["projected_high_remaining_t"] == pytest.approx(-35_262.0)
    assert p["projected_value_cny"] == pytest.approx(-3_047_732.38)
    assert p["has_plan"]


def test_example_q_true_up_ccer_and_compliance(engine):
    move(engine, "allocation", 59_738.0)
    move(engine, "purchase", 5_000, price_cny_per_t=PRICE)
    move(engine, "sale", 1_000)
    move(engine, "true_up", true_up(PLAN, 110_000), reference="verified output 110 000 t")
    with pytest.raises(CcerCapError, match="above the cap of 5% x 95,000.000 t = 4,750.000 t"):
        move(engine, "ccer_offset", 5_000, allowances_due_t=95_000)
    move(engine, "ccer_offset", 3_000, allowances_due_t=95_000)
    emissions = pd.DataFrame({"enterprise": ["E1"], "year": [2024], "emissions_t_co2e": [95_000.0]})
    p = position(records.load_ledger(engine, "demo", 2024), emissions, PRICE).iloc[0]
    assert p["allowances_t"] == pytest.approx(97_874.0)
    assert p["remaining_t"] == pytest.approx(5_874.0) and p["status"] == "surplus"
    assert p["value_cny"] == pytest.approx(572_656.26)
    assert p["threshold"] == 0.8 and p["used_share"] == pytest.approx(95_000 / 100_874)
    assert not p["compliant"]
    move(engine, "surrender", 92_000)
    after = position(records.load_ledger(engine, "demo", 2024), emissions, PRICE).iloc[0]
    assert after["compliant"] and after["holdings_t"] == pytest.approx(5_874.0)


# ---- the ledger ---------------------------------------------------------------------------------------------------


def test_the_balance_is_derived_from_the_ledger_and_never_edited(engine):
    first = move(engine, "allocation", 1_000)
    move(engine, "adjustment", -1_000, corrects_id=first, note="allocated to the wrong year")
    move(engine, "allocation", 1_200)
    ledger = records.load_ledger(engine, "demo", 2024)
    assert ledger["kind"].tolist() == ["allocation", "adjustment", "allocation"]
    assert ledger["corrects_id"].iloc[1] == first
    p = position(ledger, pd.DataFrame({"enterprise": ["E1"], "emissions_t_co2e": [600.0]}), PRICE).iloc[0]
    assert p["holdings_t"] == pytest.approx(1_200.0) and p["remaining_t"] == pytest.approx(600.0)


def test_the_ledger_has_no_update_path(any_engine):
    engine = any_engine
    move(engine, "allocation", 1_000)
    assert not [name for name in dir(records) if name.startswith(("update", "delete", "edit"))]
    with Session(engine) as session:
        row = session.get(records.LedgerRow, 1)
        row.amount_t = 9_999.0
        with pytest.raises(LedgerError, match="append-only"):
            session.commit()
    with Session(engine) as session, pytest.raises(LedgerError, match="append-only"):
        session.delete(session.get(records.LedgerRow, 1))
        session.commit()
    # Below the ORM, the database itself refuses (a trigger on SQLite and PostgreSQL).
    for stmt in (update(records.LedgerRow).values(amount_t=1.0), text("DELETE FROM carbon_quota_ledger")):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as con:
            con.execute(stmt)
    assert records.load_ledger(engine, "demo")["amount_t"].tolist() == [1_000.0]


def test_movements_that_make_no_sense_are_refused(engine):
    move(engine, "allocation", 100)
    with pytest.raises(LedgerError, match="cannot sale 500.000 t for E1 2024: holdings are 100.000 t"):
        move(engine, "sale", 500)
    with pytest.raises(LedgerError, match="a purchase is a positive amount"):
        move(engine, "purchase", -5)
    with pytest.raises(LedgerError, match="unknown movement 'gift'"):
        move(engine, "gift", 5)
    with pytest.raises(LedgerError, match="must state allowances_due_t"):
        move(engine, "ccer_offset", 5)


def test_warnings_at_configurable_thresholds():
    ledger = pd.DataFrame([{"enterprise": e, "year": 2024, "kind": "allocation", "amount_t": 100.0}
                           for e in ("A", "B", "C")])
    emissions = pd.DataFrame({"enterprise": ["A", "B", "C"], "emissions_t_co2e": [50.0, 85.0, 96.0]})
    p = position(ledger, emissions, PRICE, thresholds=(0.8, 0.95, 1.0)).set_index("enterprise")
    assert p["threshold"].fillna(0).tolist() == [0, 0.8, 0.95]
    assert p.loc["A", "warning"] == ""


def test_emissions_without_allowances_are_a_deficit_with_a_warning():
    p = position(pd.DataFrame(columns=["enterprise", "year", "kind", "amount_t"]),
                 pd.DataFrame({"enterprise": ["E1"], "year": [2024], "emissions_t_co2e": [10.0]}), PRICE).iloc[0]
    assert p["status"] == "deficit" and p["warning"] == "emissions without any allowances"


def test_plans_are_validated_and_recorded(engine):
    with pytest.raises(InputError, match="needs benchmark_t_per_unit > 0"):
        QuotaPlan.intensity("E1", 2024, benchmark_t_per_unit=0, unit="t", base_output=1)
    records.record_quota_plan(engine, "demo", QuotaPlan.absolute("E1", 2024, 5_000), actor="test")
    records.record_quota_plan(engine, "demo", PLAN, actor="test")
    assert records.load_quota_plans(engine, "demo", 2024) == [PLAN]
