"""Report content read through the regulator scope: anomalies the forecast job found, opened and closed in the
month; an enterprise without any data keeps its row, flagged, never zero."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from forecasting.cache import AnomalyRow
from park.model import Enterprise, Park
from portal.alerts import AlertAck
from portal.reports.archive import report_scope
from portal.reports.config import ReportSettings
from portal.reports.content import NOT_OVER, Reader, monthly
from portal.reports.content import build as build_report
from portal.reports.periods import ReportPeriod
from tests.reports.support import NOW, PARK, TZ, build, readings


@pytest.fixture
def park(tmp_path):
    settings, engine, store = build(tmp_path)
    yield settings, engine, store
    store.close()


def _anomaly(engine, enterprise, code, start: str, series="E1-EL"):
    began = pd.Timestamp(start, tz=TZ)
    with Session(engine) as s, s.begin():
        s.add(AnomalyRow(park_id="p", key=f"{code}|{series}|{began.isoformat()}", code=code, severity="warning",
                         series=series, enterprise_id=enterprise, start=began.tz_convert("UTC").to_pydatetime(),
                         end=(began + pd.Timedelta(hours=1)).tz_convert("UTC").to_pydatetime(), expected=1.0,
                         observed=9.0, unit="kWh", reason="test", detected_at=datetime(2026, 11, 1, tzinfo=UTC)))
    return f"{code}|{series}|{began.isoformat()}"


def test_anomalies_opened_and_closed_in_the_month(park):
    settings, engine, store = park
    first = _anomaly(engine, "E1", "anomaly.spike", "2026-10-03 14:00")
    _anomaly(engine, "E1", "anomaly.spike", "2026-10-20 02:00")
    _anomaly(engine, "E2", "anomaly.flatline", "2026-10-31 23:45", series="E2-EL")
    _anomaly(engine, "E1", "anomaly.spike", "2026-09-30 23:00")  # September: not this month's
    _anomaly(engine, "E2", "anomaly.flatline", "2026-11-01 00:00", series="E2-EL")  # November
    with Session(engine) as s, s.begin():
        s.add(AlertAck(park_id="p", key=first, kind="anomaly.spike", enterprise_id="E1", acknowledged_by="admin",
                       acknowledged_at=datetime(2026, 10, 4, tzinfo=UTC)))
    report = monthly(Reader(report_scope(settings, engine, PARK, store, NOW), ReportSettings()),
                     ReportPeriod.parse("2026-10", "month"))
    cases = report.section("anomaly_cases").frame.set_index(["enterprise", "code"])
    assert cases.loc[("E1", "anomaly.spike"), ["opened", "closed", "open"]].tolist() == [2, 1, 1]
    assert cases.loc[("E2", "anomaly.flatline"), ["opened", "closed", "open"]].tolist() == [1, 0, 1]
    assert len(cases) == 2
    assert "name" in report.section("anomaly_cases").frame.columns


def test_an_enterprise_without_data_keeps_its_row_flagged_not_zero(tmp_path):
    silent = Park(**{**PARK.__dict__, "enterprises": (*PARK.enterprises, Enterprise("E4", "丁公司"))})
    settings, engine, store = build(tmp_path, park=silent)
    try:
        report = monthly(Reader(report_scope(settings, engine, silent, store, NOW), ReportSettings()),
                         ReportPeriod.parse("2026-10", "month"))
    finally:
        store.close()
    row = report.section("emissions").frame.set_index("enterprise").loc["E4"]
    assert pd.isna(row["energy_tce"]) and row["coverage"] == 0.0 and not row["complete"]
    assert row["reasons"] == ("activity.no_data",)
    assert any(f.enterprise == "E4" and f.code == "report.completeness" for f in report.failures)


def test_a_period_not_over_yet_says_so(park):
    settings, engine, store = park
    early = build_report(Reader(report_scope(settings, engine, PARK, store, pd.Timestamp("2026-10-20", tz=TZ)),
                                ReportSettings()), "monthly", ReportPeriod.parse("2026-10", "month"))
    after = build_report(Reader(report_scope(settings, engine, PARK, store, NOW), ReportSettings()), "monthly",
                         ReportPeriod.parse("2026-10", "month"))
    assert NOT_OVER in early.notes and NOT_OVER not in after.notes


def test_annual_ets_summary_covers_the_ets_sector_with_the_ets_grid_factor(park):
    """E1's industry (steel) is covered by the national ETS; E2 (textile dyeing) and E3 (chemicals) are not.  Its
    purchased electricity is valued at the ETS notices' national grid factor, 0.5703 tCO2/MWh (FACTORS.md)."""
    settings, engine, store = park
    report = build_report(Reader(report_scope(settings, engine, PARK, store, pd.Timestamp("2027-01-20", tz=TZ)),
                                 ReportSettings()), "annual", ReportPeriod.parse("2026", "year"))
    ets = report.section("ets").frame.set_index("enterprise")
    assert list(ets.index) == ["E1"]
    kwh = len(readings("E1-EL")) * 2.5
    assert ets.loc["E1", "scope2_location_t_co2e"] == pytest.approx(kwh / 1000 * 0.5703, rel=1e-9)
    assert ets.loc["E1", "total_location_t_co2e"] == pytest.approx(
        ets.loc["E1", "scope1_t_co2e"] + ets.loc["E1", "scope2_location_t_co2e"], rel=1e-12)
    assert ets.loc["E1", "credit_code"] == "91320000AAAA"


def test_differences_are_figure_by_figure():
    from portal.reports.content import differences

    old = {"energy|E1|电力 electricity|quantity": 10.0, "products|E1|steel|bar|tce_per_unit": 1.0,
           "emissions|E2||energy_tce": None, "emissions|E3||energy_tce": 5.0}
    new = {"energy|E1|电力 electricity|quantity": 10.0 + 1e-13, "products|E1|steel|bar|tce_per_unit": 1.5,
           "emissions|E2||energy_tce": 2.0}
    assert differences(old, new) == [
        {"section": "emissions", "enterprise": "E2", "item": "", "indicator": "energy_tce", "old_value": None,
         "new_value": 2.0},
        {"section": "emissions", "enterprise": "E3", "item": "", "indicator": "energy_tce", "old_value": 5.0,
         "new_value": None},
        {"section": "products", "enterprise": "E1", "item": "steel|bar", "indicator": "tce_per_unit",
         "old_value": 1.0, "new_value": 1.5}]
