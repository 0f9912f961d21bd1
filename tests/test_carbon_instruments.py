"""Market-based Scope 2: instruments allocated over their claim period by purchases, so a month's figure does not
depend on the range asked for (methodology 3.4-3.5, example M); exports; certificate ids and single claimants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carbon import pipeline, records
from carbon.emissions import compute_accounts, grid_purchases
from carbon.errors import InputError
from carbon.factors import FactorRegistry
from carbon.quota import QuotaPlan
from carbon.regions import enterprise_regions
from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park, Workshop
from park.store.embedded import EmbeddedStore
from park.units import Carrier

TZ = "Asia/Shanghai"
REGISTRY = FactorRegistry.shipped()
PARK = Park("m", "M", province="Jiangsu", grid_region="east_china",
            enterprises=(Enterprise("E1", "a"), Enterprise("E2", "b")),
            workshops=(Workshop("E1-W1", "E1"),),
            meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1", "E1-W1", interval_s=3600),))
REGIONS = enterprise_regions(PARK)
# Example M: 2025 (grid data year 2023), 100 MWh a month January-June, 150 MWh July-December, 1 200 certificates
MWH = [100.0] * 6 + [150.0] * 6
RESIDUAL_2023, EAST_CHINA_2023 = 0.6096, 0.5500


def month(m: int, year: int = 2025) -> pd.Timestamp:
    return pd.Timestamp(year, m, 1, tz=TZ)


def activity(mwh: list[float], gas_m3: float = 0.0, year: int = 2025) -> pd.DataFrame:
    rows = []
    for m, q in enumerate(mwh, start=1):
        base = {"enterprise": "E1", "workshop": None, "flow": "import", "period_start": month(m, year),
                "period_end": month(m, year) + pd.DateOffset(months=1), "source": "bill"}
        rows.append({**base, "carrier": "electricity", "quantity": q, "unit": "MWh"})
        if gas_m3:
            rows.append({**base, "carrier": "natural_gas", "quantity": gas_m3 * m, "unit": "m3"})
    return pd.DataFrame(rows)


def certificates(mwh: float, start: str = "2025-01-01", end: str = "2026-01-01", reference: str = "GEC-2025-1",
                 enterprise: str = "E1") -> pd.DataFrame:
    return pd.DataFrame([{"enterprise": enterprise, "kind": "gec", "quantity_mwh": mwh, "period_start": start,
                          "period_end": end, "reference": reference, "vintage": 2025}])


def in_range(act: pd.DataFrame, first: int, last: int) -> pd.DataFrame:
    """The months first..last (1-based, inclusive) of a year's activity: what a range query would load."""
    return act[(act["period_start"] >= month(first)) & (act["period_start"] < month(last) + pd.DateOffset(months=1))]


def e1(acc, label: str):
    t = acc.totals_at("enterprise")
    return t[(t["enterprise"] == "E1") & (t["period"] == label)].iloc[0]


# ---- example M (methodology 3.5) --------------------------------------------------------------------------------


def test_example_m_october_is_the_same_alone_and_inside_the_year():
    year = activity(MWH)
    basis = grid_purchases(year)
    alone = compute_accounts(in_range(year, 10, 10), REGISTRY, REGIONS, instruments=certificates(1200),
                             instrument_basis=basis)
    full = compute_accounts(year, REGISTRY, REGIONS, instruments=certificates(1200), instrument_basis=basis)
    # October: 1 200 MWh x 150 / 1 500 = 120 MWh covered; (150 - 120) MWh x 0.6096 = 18.288 t
    assert e1(alone, "2025-10")["green_kwh"] == pytest.approx(120_000)
    assert e1(alone, "2025-10")["scope2_market_t_co2e"] == pytest.approx(18.288)
    assert e1(full, "2025-10")["scope2_market_t_co2e"] == pytest.approx(18.288)
    assert e1(alone, "2025-10")["complete"]
    yearly = compute_accounts(year, REGISTRY, REGIONS, period_kind="year", instruments=certificates(1200),
                              instrument_basis=basis)
    # the year: (1 500 - 1 200) MWh x 0.6096 = 182.88 t, the sum of the twelve months
    assert e1(yearly, "2025")["scope2_market_t_co2e"] == pytest.approx(182.88)
    monthly = [compute_accounts(in_range(year, m, m), REGISTRY, REGIONS, instruments=certificates(1200),
                                instrument_basis=basis) for m in range(1, 13)]
    assert sum(e1(a, f"2025-{m:02d}")["scope2_market_t_co2e"] for m, a in enumerate(monthly, 1)) == pytest.approx(
        182.88)


def test_example_m_month_to_date_is_estimated_and_flagged():
    # on 2025-10-16 purchases are known for January to mid-October: the rest of the claim is estimated at the
    # same rate, and the October figure says so
    year = activity(MWH[:9] + [75.0])
    basis = grid_purchases(year)
    basis.loc[basis["period_start"] == month(10), "period_end"] = pd.Timestamp("2025-10-16", tz=TZ)
    acc = compute_accounts(in_range(year, 10, 10), REGISTRY, REGIONS, instruments=certificates(1200),
                           instrument_basis=basis)
    known_days = (pd.Timestamp("2025-10-16") - pd.Timestamp("2025-01-01")).days
    known_mwh = sum(MWH[:9]) + 75.0
    expected = 1200 * 75.0 / (known_mwh / (known_days / 365))
    r = e1(acc, "2025-10")
    assert r["green_kwh"] == pytest.approx(expected * 1000) == pytest.approx(63_123.288, rel=1e-6)
    assert not r["complete"] and r["reasons"] == ("instrument.estimated_basis",)


_ranges = st.lists(st.integers(min_value=1, max_value=11), unique=True, max_size=4).map(sorted)
_mwh = st.lists(st.floats(min_value=0.0, max_value=500.0, allow_nan=False), min_size=12, max_size=12)
_claims = st.lists(st.tuples(st.integers(1, 12), st.integers(1, 12), st.floats(1.0, 3000.0)), min_size=0,
                   max_size=3)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mwh=_mwh, cuts=_ranges, claims=_claims)
def test_sub_ranges_add_up_to_the_year_for_every_method(mwh, cuts, claims):
    """Whatever ranges the year is cut into, their months add up to the year: location, market (with instruments
    over any claim periods) and tce."""
    year = activity(mwh, gas_m3=1000.0)
    inst = pd.concat([certificates(q, month(min(a, b)).date().isoformat(),
                                   (month(max(a, b)) + pd.DateOffset(months=1)).date().isoformat(), f"GEC-{i}")
                      for i, (a, b, q) in enumerate(claims)], ignore_index=True) if claims else None
    basis = grid_purchases(year)
    whole = e1(compute_accounts(year, REGISTRY, REGIONS, period_kind="year", instruments=inst,
                                instrument_basis=basis), "2025")
    edges = [1, *[c + 1 for c in cuts], 13]
    parts = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        acc = compute_accounts(in_range(year, a, b - 1), REGISTRY, REGIONS, instruments=inst, instrument_basis=basis)
        parts.append(acc.totals_at("enterprise"))
    months = pd.concat(parts)
    assert len(months) == 12
    for col in ("energy_tce", "scope2_location_t_co2e", "scope2_market_t_co2e", "scope1_t_co2e", "green_kwh"):
        assert months[col].sum() == pytest.approx(whole[col], rel=1e-9, abs=1e-9)


# ---- exports ---------------------------------------------------------------------------------------------------


def test_exports_are_netted_location_based_and_ignored_market_based():
    start = month(3, 2024)
    base = {"enterprise": "E1", "workshop": None, "period_start": start, "period_end": start + pd.DateOffset(months=1),
            "unit": "kWh", "carrier": "electricity"}
    act = pd.DataFrame([{**base, "flow": "import", "quantity": 100_000.0},
                        {**base, "flow": "export", "quantity": 30_000.0}])
    r = e1(compute_accounts(act, REGISTRY, REGIONS, instruments=certificates(20, "2024-03-01", "2024-04-01")),
           "2024-03")
    # GB/T 32150 (the national figure): net 70 MWh x 0.5617
    assert r["scope2_location_t_co2e"] == pytest.approx(70 * 0.5617)
    # GHG Protocol Scope 2 Guidance: purchases 100 MWh, 20 MWh covered, 80 MWh x 0.5856; no credit for exports
    assert r["scope2_market_t_co2e"] == pytest.approx(80 * 0.5856)
    assert r["grid_export_kwh"] == pytest.approx(30_000)


# ---- certificate ids and claimants -----------------------------------------------------------------------------


def test_one_certificate_claimed_by_two_enterprises_is_refused():
    twice = pd.concat([certificates(100, enterprise="E1"), certificates(100, enterprise="E2")], ignore_index=True)
    with pytest.raises(InputError, match=r"GEC-2025-1.*claimed more than once.*E1, E2"):
        compute_accounts(activity(MWH), REGISTRY, REGIONS, instruments=twice)
    no_id = certificates(100, reference="")
    with pytest.raises(InputError, match="reference .* is empty"):
        compute_accounts(activity(MWH), REGISTRY, REGIONS, instruments=no_id)


def test_a_certificate_without_vintage_counts_but_is_flagged():
    inst = certificates(1200).assign(vintage=None)
    acc = compute_accounts(activity(MWH), REGISTRY, REGIONS, instruments=inst)
    r = e1(acc, "2025-10")
    assert r["green_kwh"] == pytest.approx(120_000)
    assert "instrument.no_vintage" in r["reasons"] and not r["complete"]


@pytest.fixture
def env(tmp_path):
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    records.create_tables(engine)
    import_park(engine, PARK)
    store = EmbeddedStore(tmp_path / "ts.duckdb", PARK.catalog(), TZ)
    yield engine, store
    store.close()
    engine.dispose()


def test_the_database_refuses_a_second_claimant(env):
    engine, _ = env
    records.record_instruments(engine, PARK.id, certificates(100, enterprise="E1"), actor="clerk")
    with pytest.raises(InputError, match="already claimed by enterprise E1"):
        records.record_instruments(engine, PARK.id, certificates(100, enterprise="E2"), actor="clerk")
    # withdrawn by E1, it may move to E2
    records.record_instruments(engine, PARK.id, certificates(0, enterprise="E1"), actor="clerk")
    records.record_instruments(engine, PARK.id, certificates(100, enterprise="E2"), actor="clerk")
    got = records.load_instruments(engine, PARK.id)
    assert got["enterprise"].tolist() == ["E2"] and got["vintage"].tolist() == [2025]


def test_the_pipeline_gives_a_month_the_same_figure_alone_and_in_the_year(env):
    engine, store = env
    ts = pd.date_range(month(1), month(1, 2026), freq="1h", inclusive="left")
    per_hour = np.where(ts.month <= 6, 100_000.0 / 24 / 30, 150_000.0 / 24 / 31)
    store.write("energy", pd.DataFrame({"ts": ts, "series": "E1-M1", "value": per_hour, "quality": "measured"}))
    records.record_instruments(engine, PARK.id, certificates(1200), actor="clerk")
    as_of = pd.Timestamp("2026-02-01", tz=TZ)
    alone = pipeline.account_park(store, engine, PARK, month(10), month(11), as_of=as_of)
    full = pipeline.account_park(store, engine, PARK, month(1), month(1, 2026), as_of=as_of)
    year = pipeline.account_park(store, engine, PARK, month(1), month(1, 2026), "year", as_of=as_of)
    assert e1(alone, "2025-10")["scope2_market_t_co2e"] == pytest.approx(e1(full, "2025-10")["scope2_market_t_co2e"])
    months = full.totals_at("enterprise")
    assert months["scope2_market_t_co2e"].sum() == pytest.approx(e1(year, "2025")["scope2_market_t_co2e"])


def test_quota_emissions_follow_each_plans_basis(env):
    engine, store = env
    ts = pd.date_range(month(1), month(2), freq="1h", inclusive="left")
    store.write("energy", pd.DataFrame({"ts": ts, "series": "E1-M1", "value": 1_000_000.0 / len(ts),
                                        "quality": "measured"}))
    plans = [QuotaPlan.absolute("E1", 2025, 500.0)]
    ets = pipeline.quota_emissions(store, engine, PARK, 2025, month(2), plans)
    e = ets.set_index("enterprise").loc["E1"]
    assert e["basis"] == "ets" and e["emissions_t_co2e"] == pytest.approx(570.3)  # 1 000 MWh x 0.5703
    loc = pipeline.quota_emissions(store, engine, PARK, 2025, month(2),
                                   [QuotaPlan.absolute("E1", 2025, 500.0, basis="location")])
    assert loc.set_index("enterprise").loc["E1", "emissions_t_co2e"] == pytest.approx(550.0)  # East China 2023
    records.record_quota_plan(engine, PARK.id, QuotaPlan.absolute("E1", 2025, 500.0, basis="market"), actor="t")
    assert [p.basis for p in records.load_quota_plans(engine, PARK.id, 2025)] == ["market"]
