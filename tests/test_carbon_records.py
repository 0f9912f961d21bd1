"""What the carbon module records in the metadata database flows into the accounts: output, product output,
recorded activity (bills and exports), certificates; corrections are new rows and the latest wins."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from carbon import pipeline, records
from carbon.energy import energy_tce
from carbon.errors import InputError, NegativeOutputError
from park.metadata import create_engine_from_url, import_park
from park.store.embedded import EmbeddedStore
from tests.test_carbon_accounting import MARCH, REGIONS, REGISTRY, TZ, example_park, frame, write_example_month


@pytest.fixture
def env(tmp_path: Path):
    park = example_park()
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'parkcarbon.db'}")
    records.create_tables(engine)
    import_park(engine, park)
    store = EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), TZ)
    write_example_month(store)
    yield park, engine, store
    store.close()
    engine.dispose()


def test_recorded_exports_and_bills_join_the_metered_activity(env):
    park, engine, store = env
    records.record_activity(engine, park.id, pd.DataFrame([
        {"enterprise": "E1", "carrier": "electricity", "flow": "export", "period_start": "2024-03-01",
         "period_end": "2024-04-01", "quantity": 50.0, "unit": "MWh"},
        {"enterprise": "E1", "carrier": "diesel", "period_start": "2024-03-01", "period_end": "2024-04-01",
         "quantity": 1.0, "unit": "t"},
    ]), actor="clerk")
    records.record_instruments(engine, park.id, pd.DataFrame([
        {"enterprise": "E1", "kind": "gec", "quantity_mwh": 100.0, "period_start": "2024-03-01",
         "period_end": "2024-04-01", "reference": "GEC-1", "vintage": 2024}]), actor="clerk")
    acc = pipeline.account_park(store, engine, park, *MARCH)
    e1 = acc.totals_at("enterprise").set_index("enterprise").loc["E1"]
    assert e1["grid_net_kwh"] == pytest.approx(450_000)
    assert e1["scope2_location_t_co2e"] == pytest.approx(450 * 0.5617 + 88.88088)
    # market-based (GHG Protocol Scope 2 Guidance): purchases of 500 MWh, less 100 MWh of certificates; the 50 MWh
    # exported are neither netted nor credited at the residual factor
    assert e1["scope2_market_t_co2e"] == pytest.approx(400 * 0.5856 + 88.88088)
    assert e1["grid_export_kwh"] == pytest.approx(50_000)
    assert e1["scope1_t_co2e"] == pytest.approx(43.24377618 + 42.652 * 0.0202 * 0.98 * 44 / 12)


def test_a_withdrawn_certificate_no_longer_counts(env):
    park, engine, _ = env
    row = {"enterprise": "E1", "kind": "gec", "quantity_mwh": 100.0, "period_start": "2024-03-01",
           "period_end": "2024-04-01", "reference": "GEC-1"}
    records.record_instruments(engine, park.id, pd.DataFrame([row]), actor="clerk")
    records.record_instruments(engine, park.id, pd.DataFrame([{**row, "quantity_mwh": 0.0}]), actor="clerk")
    assert records.load_instruments(engine, park.id).empty


def test_output_corrections_are_new_rows_and_the_latest_wins(env):
    park, engine, _ = env
    out = pd.DataFrame({"enterprise": ["E1"], "month": ["2024-03-01"], "output_value_10k_cny": [1_200.0]})
    records.record_output_values(engine, park.id, out, actor="clerk")
    records.record_output_values(engine, park.id, out.assign(output_value_10k_cny=1_250.0), actor="clerk")
    got = records.load_output_values(engine, park.id, pd.Timestamp("2024-01-01").date(),
                                     pd.Timestamp("2025-01-01").date())
    assert got["output_value_10k_cny"].tolist() == [1_250.0]
    with pytest.raises(NegativeOutputError, match="-1.0"):
        records.record_output_values(engine, park.id, out.assign(output_value_10k_cny=-1.0), actor="clerk")
    with pytest.raises(InputError, match="first day of a month"):
        records.record_output_values(engine, park.id, out.assign(month="2024-03-15"), actor="clerk")


def test_product_output_round_trip(env):
    park, engine, _ = env
    products = pd.DataFrame({"enterprise": ["E1"], "month": ["2024-03-01"], "product": ["beam"],
                             "quantity": [500.0], "unit": ["t"], "workshop": ["E1-W1"]})
    records.record_product_output(engine, park.id, products, actor="clerk")
    got = records.load_product_output(engine, park.id, pd.Timestamp("2024-03-01").date(),
                                      pd.Timestamp("2024-04-01").date())
    assert got[["product", "quantity", "workshop"]].values.tolist() == [["beam", 500.0, "E1-W1"]]


def test_energy_in_tce_without_emissions():
    out = energy_tce(pd.DataFrame([frame("electricity", 1000.0, "kWh"), frame("steam", 2.0, "t")]), REGISTRY,
                     REGIONS)
    # steam: 2 t x (2 777.1 - 83.74) kJ/kg = 5.38672 GJ x 0.03412 tce/GJ (its heat content, as for its emissions)
    assert out["tce"].tolist() == pytest.approx([0.1229, 2 * (2777.1 - 83.74) / 1000 * 0.03412])
    assert out["tce_factor"].tolist() == ["tce/electricity/equivalent/national/2020-01-01",
                                          "heat/steam/enthalpy/national/2015-01-01|"
                                          "heat/steam/feedwater_enthalpy/national/2015-01-01|"
                                          "tce/heat/all/national/2020-01-01"]


def test_records_read_for_some_enterprises_are_exactly_theirs_of_the_whole_park(env):
    """Output values, product output and recorded activity read for a set of enterprises (the query narrowed, as
    an enterprise user's page reads them) are the rows of the whole park's read for those enterprises, corrections
    (the latest record wins) included, and never a row of another."""
    park, engine, _ = env
    ids = [e.id for e in park.enterprises]
    months = ["2024-02-01", "2024-03-01"]
    out = pd.DataFrame([{"enterprise": e, "month": m, "output_value_10k_cny": 100.0 * (i + 1) + j}
                        for i, e in enumerate(ids) for j, m in enumerate(months)])
    records.record_output_values(engine, park.id, out, actor="clerk")
    records.record_output_values(engine, park.id, out.iloc[:1].assign(output_value_10k_cny=7.0), actor="clerk")
    records.record_product_output(engine, park.id, pd.DataFrame(
        [{"enterprise": e, "month": m, "product": "beam", "quantity": 10.0 + i, "unit": "t"}
         for i, e in enumerate(ids) for m in months]), actor="clerk")
    records.record_activity(engine, park.id, pd.DataFrame(
        [{"enterprise": e, "carrier": "diesel", "period_start": "2024-03-01", "period_end": "2024-04-01",
          "quantity": 1.0 + i, "unit": "t"} for i, e in enumerate(ids)]), actor="clerk")
    lo, hi = pd.Timestamp("2024-01-01").date(), pd.Timestamp("2025-01-01").date()
    start, end = pd.Timestamp("2024-01-01", tz=TZ), pd.Timestamp("2025-01-01", tz=TZ)
    reads = [lambda who: records.load_output_values(engine, park.id, lo, hi, enterprises=who),
             lambda who: records.load_product_output(engine, park.id, lo, hi, enterprises=who),
             lambda who: records.load_activity_records(engine, park.id, start, end, enterprises=who)]
    for read in reads:
        whole = read(None)
        assert set(whole["enterprise"]) == set(ids)
        for who in ([ids[0]], ids[1:], []):
            got = read(who)
            assert set(got["enterprise"]) <= set(who)
            pd.testing.assert_frame_equal(got, whole[whole["enterprise"].isin(who)].reset_index(drop=True),
                                          check_dtype=False)
