"""Invariants between reports: the twelve monthly reports' per-enterprise energy and emissions sum to the annual
report's, and the four quarterly reports' to the year's, whatever the readings (Hypothesis), gaps included."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal.reports.archive import report_scope
from portal.reports.config import ReportSettings
from portal.reports.content import PARK_ROW, Reader, monthly, period_summary
from portal.reports.periods import ReportPeriod

TZ = "Asia/Shanghai"
PARK = Park(id="s", name="求和园区", province="Jiangsu", grid_region="east_china",
            enterprises=(Enterprise("A", "甲"), Enterprise("B", "乙")),
            meters=(Meter("A-EL", Carrier.ELECTRICITY, "A", interval_s=3600),
                    Meter("A-GAS", Carrier.NATURAL_GAS, "A", interval_s=3600),
                    Meter("B-EL", Carrier.ELECTRICITY, "B", interval_s=3600)))
YEAR = 2025
FIGURES = ["energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e"]


class NoQuota(Reader):
    """A reader without quota positions: no quota is recorded here, and computing the year-to-date quota
    emissions of every month would only slow the test down (the sections summed here do not use them)."""

    def quota_positions(self, year, end):
        return pd.DataFrame(columns=["enterprise", "has_plan", "allocated_t", "status", "basis", "emissions_t_co2e",
                                     "allowances_t", "ccer_usable_t", "used_share", "remaining_t", "surrendered_t",
                                     "compliant", "complete", "reasons"])


def _write(store: EmbeddedStore, levels: dict[str, list[float]], gaps: dict[str, list[int]]) -> None:
    ts = pd.date_range(pd.Timestamp(f"{YEAR}-01-01", tz=TZ), pd.Timestamp(f"{YEAR + 1}-01-01", tz=TZ), freq="h",
                       inclusive="left")
    frames = []
    for series, per_month in levels.items():
        value = np.array(per_month)[ts.month - 1]
        keep = ~np.isin(ts.day_of_year, gaps[series])  # whole days missing
        frames.append(pd.DataFrame({"ts": ts[keep], "series": series, "value": value[keep]}))
    store.write("energy", pd.concat(frames, ignore_index=True))


level = st.floats(min_value=0.0, max_value=50.0, allow_nan=False).map(lambda v: round(v, 3))


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(levels=st.fixed_dictionaries({s.id: st.lists(level, min_size=12, max_size=12) for s in PARK.meters}),
       gaps=st.fixed_dictionaries({s.id: st.lists(st.integers(1, 365), max_size=20) for s in PARK.meters}))
def test_months_and_quarters_sum_to_the_year(levels, gaps):
    with tempfile.TemporaryDirectory() as tmp:
        engine = create_engine_from_url(f"sqlite:///{Path(tmp) / 'meta.db'}")
        import_park(engine, PARK)
        store = EmbeddedStore(Path(tmp) / "ts.duckdb", PARK.catalog(), TZ)
        try:
            _write(store, levels, gaps)
            now = pd.Timestamp(f"{YEAR + 1}-02-01", tz=TZ)
            reader = NoQuota(report_scope(Settings(data_dir=Path(tmp)), engine, PARK, store, now), ReportSettings())
            year = ReportPeriod("year", YEAR)
            annual_report = period_summary(reader, year, "annual")
            annual = _by_enterprise(annual_report.section("status").frame)
            monthly_reports = [monthly(reader, p) for p in year.months()]
            months = [_by_enterprise(m.section("emissions").frame) for m in monthly_reports]
            quarters = [_by_enterprise(period_summary(reader, ReportPeriod("quarter", YEAR, q), "quarterly")
                                       .section("status").frame) for q in range(1, 5)]
            for e in ["A", "B", PARK_ROW]:
                for column in ("energy_tce", "total_location_t_co2e", "total_market_t_co2e"):
                    year_value = annual.loc[e, column]
                    assert sum(m.loc[e, column] for m in months) == pytest.approx(year_value, rel=1e-9, abs=1e-12)
                    assert sum(q.loc[e, column] for q in quarters) == pytest.approx(year_value, rel=1e-9, abs=1e-12)
            # Energy by type: the monthly reports' quantities sum to the annual report's.
            energy_year = annual_report.section("energy").frame.set_index(["enterprise", "carrier"])["quantity"]
            energy_months = sum(m.section("energy").frame.set_index(["enterprise", "carrier"])["quantity"]
                                for m in monthly_reports)
            pd.testing.assert_series_equal(energy_months.sort_index(), energy_year.sort_index(), rtol=1e-9)
        finally:
            store.close()


def _by_enterprise(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.set_index("enterprise").fillna({"energy_tce": 0.0, "total_location_t_co2e": 0.0,
                                                 "total_market_t_co2e": 0.0})
