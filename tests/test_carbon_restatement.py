"""A factor change restates the affected periods and records old figure, new figure, reason and when
(methodology 2.5, example R), through a real embedded store and the metadata database."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from carbon import pipeline, records
from carbon.emissions import compute_accounts
from carbon.errors import FactorFileError, InputError
from carbon.factors import FactorPolicy, parse_factor_file
from carbon.restatement import changed_factor_rows, diff_accounts
from park.metadata import create_engine_from_url, import_park
from park.store.embedded import EmbeddedStore
from tests.test_carbon_accounting import MARCH, REGIONS, REGISTRY, TZ, example_park, write_example_month
from tests.test_carbon_intensity import example_a

HEADER = "kind,key,parameter,region,enterprise,value,unit,valid_from,valid_to,source,publication,verified\n"
STEAM = ("heat,steam,enthalpy,jiangsu,E1,2942.6,kJ/kg,2024-01-01,,supplier steam certificate (1.0 MPa; 250 C),"
         "Jiangnan Thermal Power 2024-01,true\n")


@pytest.fixture
def park_env(tmp_path: Path):
    park = example_park()
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'parkcarbon.db'}")
    records.create_tables(engine)
    import_park(engine, park)
    store = EmbeddedStore(tmp_path / "ts.duckdb", park.catalog(), TZ)
    write_example_month(store)
    yield park, engine, store, tmp_path
    store.close()
    engine.dispose()


def test_example_r_a_supplier_steam_enthalpy_restates_march(park_env):
    park, engine, store, tmp = park_env
    path = tmp / "factors.csv"
    path.write_text(HEADER + STEAM, encoding="utf-8")
    imported = records.import_factor_file(engine, park.id, path, actor="operator",
                                          reason="supplier's steam certificate replaces the default enthalpy")
    assert imported.added == ("heat/steam/enthalpy/jiangsu@E1/2024-01-01",) and imported.previous == ()
    changes = pipeline.restate_factor_import(store, engine, park, imported, *MARCH, actor="operator")
    e1 = changes[(changes["level"] == "enterprise") & (changes["metric"] == "scope2_location_t_co2e")].iloc[0]
    # steam: 300 t x (2942.6 - 83.74) kJ/kg x 0.11 t/GJ = 94.34238 t instead of 88.88088 t
    assert e1["old_value"] == pytest.approx(369.73088) and e1["new_value"] == pytest.approx(375.19238)
    assert e1["delta"] == pytest.approx(5.4615)
    assert "heat/steam/enthalpy/national/2015-01-01" in e1["old_factors"]
    assert "heat/steam/enthalpy/jiangsu@E1/2024-01-01" in e1["new_factors"]
    # one enthalpy drives the steam's emissions and its tce: (857.658 - 808.008) GJ x 0.03412 tce/GJ more energy
    assert set(changes["metric"]) == {"energy_tce", "scope2_location_t_co2e", "scope2_market_t_co2e",
                                      "total_location_t_co2e", "total_market_t_co2e"}
    energy = changes[(changes["level"] == "enterprise") & (changes["metric"] == "energy_tce")].iloc[0]
    assert energy["delta"] == pytest.approx((857.658 - 808.008) * 0.03412)
    stored = records.load_restatements(engine, park.id, enterprise="E1", periods=["2024-03"])
    assert len(stored) == 5
    row = stored[stored["metric"] == "scope2_location_t_co2e"].iloc[0]
    assert row["reason"] == "supplier's steam certificate replaces the default enthalpy"
    assert row["factor_import_id"] == imported.import_id and row["actor"] == "operator"
    assert row["recorded_at"].tzinfo is not None
    # The accounts computed from now on use the new factor.
    acc = pipeline.account_park(store, engine, park, *MARCH)
    ent = acc.totals_at("enterprise").set_index("enterprise")
    assert ent.loc["E1", "scope2_location_t_co2e"] == pytest.approx(375.19238)


def test_reimporting_the_same_file_changes_nothing(park_env):
    park, engine, store, tmp = park_env
    path = tmp / "factors.csv"
    path.write_text(HEADER + STEAM, encoding="utf-8")
    records.import_factor_file(engine, park.id, path, actor="a", reason="first")
    again = records.import_factor_file(engine, park.id, path, actor="a", reason="again")
    assert again.import_id is None and not again.changes
    assert pipeline.restate_factor_import(store, engine, park, again, *MARCH, actor="a").empty
    assert len(records.factor_imports(engine, park.id)) == 1


def test_a_changed_value_is_reported_as_changed_and_the_old_rows_stay(park_env):
    park, engine, store, tmp = park_env
    path = tmp / "factors.csv"
    path.write_text(HEADER + STEAM, encoding="utf-8")
    first = records.import_factor_file(engine, park.id, path, actor="a", reason="certificate 2024-01")
    path.write_text(HEADER + STEAM.replace("2942.6", "2900.0"), encoding="utf-8")
    second = records.import_factor_file(engine, park.id, path, actor="a", reason="certificate 2024-02")
    assert second.changed == ("heat/steam/enthalpy/jiangsu@E1/2024-01-01",)
    changes = pipeline.restate_factor_import(store, engine, park, second, *MARCH, actor="a")
    e1 = changes[(changes["level"] == "enterprise") & (changes["metric"] == "scope2_location_t_co2e")].iloc[0]
    assert e1["old_value"] == pytest.approx(375.19238)
    assert e1["new_value"] == pytest.approx(280.85 + 300 * (2900.0 - 83.74) / 1000 * 0.11)
    old_rows = records.load_factor_overrides(engine, park.id, first.import_id)
    assert old_rows[0].value == 2942.6  # the earlier import can still explain the earlier figure


def test_a_broken_factor_file_imports_nothing(park_env):
    park, engine, _, tmp = park_env
    path = tmp / "factors.csv"
    path.write_text(HEADER + STEAM.replace("kJ/kg", "kJ/kWh"), encoding="utf-8")
    with pytest.raises(FactorFileError, match="factors.csv:2: .*per mass"):
        records.import_factor_file(engine, park.id, path, actor="a", reason="x")
    with pytest.raises(InputError, match="needs a reason"):
        records.import_factor_file(engine, park.id, path, actor="a", reason=" ")
    assert records.factor_imports(engine, park.id).empty


def test_example_f1_the_2023_grid_factors_restate_2025_pure():
    activity = example_a("2025-03")
    before = compute_accounts(activity, REGISTRY, REGIONS, FactorPolicy(as_of=pd.Timestamp(
        "2025-12-31").date()))
    after = compute_accounts(activity, REGISTRY, REGIONS)
    changes = diff_accounts(before, after)
    s2 = changes[(changes["level"] == "enterprise") & (changes["metric"] == "scope2_location_t_co2e")].iloc[0]
    assert s2["delta"] == pytest.approx(275.0 - 280.85)
    assert "grid/electricity/average/east_china/2022-01-01" in s2["old_factors"]
    assert "grid/electricity/average/east_china/2023-01-01" in s2["new_factors"]


def test_changed_rows_between_two_registries():
    extra = REGISTRY.with_overrides(parse_factor_file((HEADER + STEAM).encode(), "f.csv"))
    diff = changed_factor_rows(REGISTRY, extra)
    assert diff[["id", "change"]].values.tolist() == [["heat/steam/enthalpy/jiangsu@E1/2024-01-01", "added"]]
