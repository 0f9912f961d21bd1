"""The warnings engine against a real EmbeddedStore and SQLite metadata database: quota thresholds, silent meters,
quarantined rows, scope, and acknowledgements that survive recomputation and are audit-logged."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.orm import Session

from carbon import records
from carbon.quota import QuotaPlan
from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal import audit
from portal.access import Forbidden
from portal.alerts import (
    AlertAck,
    acknowledge,
    acknowledgements,
    current_alerts,
    quarantine_alerts,
    silent_meter_alerts,
)
from portal.auth import add_user, load_user
from portal.context import PortalContext

TZ = "Asia/Shanghai"
PARK = Park(
    id="p", name="测试园区", name_en="Test Park",
    enterprises=(Enterprise("E1", "甲公司", "Alpha Co."), Enterprise("E2", "乙公司", "Beta Co."),
                 Enterprise("E3", "丙公司", "Gamma Co.")),
    meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"), Meter("E1-M2", Carrier.ELECTRICITY, "E1"),
            Meter("E2-M1", Carrier.ELECTRICITY, "E2"), Meter("E2-GAS", Carrier.NATURAL_GAS, "E2", interval_s=3600),
            Meter("E3-M1", Carrier.ELECTRICITY, "E3")),
)
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
PASSWORD = "correct horse battery"
GRID_T_PER_KWH = 0.5366e-3  # national average grid factor of data year 2022, used for 2024 (two years' lag)
# Quota positions are on the plan's basis, by default the national ETS rules: grid electricity at 0.5703 t/MWh
# (MEE, applicable from emission year 2022; docs/methodology.md 6.3).
ETS_T_PER_KWH = 0.5703e-3


def build_ctx(tmp: Path) -> PortalContext:
    """Readings from 1 March to now: E1-M1 2 kWh and E1-M2 1 kWh per quarter hour (E1-M2 silent since 09:00),
    E2-M1 4 kWh, E3-M1 1 kWh; E2's gas meter never reported.  Three rows quarantined: two negative readings of E1-M1
    (lines 7 and 8) and one of an unknown meter.  Allowances: E1 1.7 t, E2 1.5 t, E3 none (not in the scheme)."""
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp / "ts.duckdb", PARK.catalog(), TZ)
    ts = pd.date_range(pd.Timestamp("2024-03-01", tz=TZ), NOW, freq="15min", inclusive="left")
    for series, value, until in (("E1-M1", 2.0, NOW), ("E1-M2", 1.0, pd.Timestamp("2024-03-10 09:00", tz=TZ)),
                                 ("E2-M1", 4.0, NOW), ("E3-M1", 1.0, NOW)):
        store.write("energy", pd.DataFrame({"ts": ts[ts < until], "series": series, "value": value}))
    store.write("energy", pd.DataFrame({"ts": [NOW - pd.Timedelta("1h"), NOW - pd.Timedelta("45min"), NOW],
                                        "series": ["E1-M1", "E1-M1", "X-99"], "value": [-1.0, -2.0, 1.0],
                                        "line": [7, 8, 9]}), source="upload.csv")
    for e, allowances in (("E1", 1.7), ("E2", 1.5)):
        records.record_quota_plan(engine, "p", QuotaPlan.absolute(e, 2024, allowances), actor="test")
        records.record_movement(engine, "p", e, 2024, "allocation", allowances, actor="test")
    for name, role, ent in (("admin", "admin", None), ("alpha", "enterprise", "E1"), ("beta", "enterprise", "E2"),
                            ("reg", "regulator", None), ("bank", "bank", None)):
        add_user(engine, "p", name, PASSWORD, role, ent)
    return PortalContext(Settings(data_dir=tmp), engine, PARK, store, clock=lambda: NOW)


@pytest.fixture
def ctx(tmp_path):
    c = build_ctx(tmp_path)
    yield c
    c.store.close()


def by_key(alerts):
    return {a.key: a for a in alerts}


def test_quota_thresholds_at_80_and_100_percent(ctx):
    alerts = by_key(current_alerts(ctx.access, load_user(ctx.engine, "admin"), NOW))
    # E1: (1824 + 900) kWh x 0.5703 t/MWh (ETS basis) = 1.5534972 t of 1.7 t = 91.4 %; crossed 80 % (1.36 t =
    # 2384.7 kWh) on 9 March (288 kWh a day: 2304 kWh by 8 March, 2592 kWh by 9 March).
    e1 = alerts["quota_80|E1|2024"]
    assert (e1.severity, e1.enterprise, e1.since, e1.since_text()) == (
        "warning", "E1", pd.Timestamp("2024-03-09", tz=TZ), "2024-03-09")
    assert e1.detail["emissions_t"] == pytest.approx(2724 * ETS_T_PER_KWH)
    assert e1.detail["used"] == pytest.approx(2724 * ETS_T_PER_KWH / 1.7)
    # Coverage of 1 January to now: 1824 + 900 measured of 2 x 6672 expected quarter hours.
    assert e1.detail["coverage"] == pytest.approx((912 + 900) / (2 * 6672))
    assert e1.what("en") == ("91.4% of the 2024 allowances used: 1.55 tCO2e to date against 1.70 t "
                             "(data coverage 13.6%)")
    # E2: 3648 kWh = 2.0804544 t of 1.5 t = 138.7 %: only the highest threshold; crossed (1.5 t = 2630.2 kWh) on
    # 7 March (384 kWh a day: 2688 kWh by 7 March).
    e2 = alerts["quota_100|E2|2024"]
    assert (e2.severity, e2.since) == ("critical", pd.Timestamp("2024-03-07", tz=TZ))
    assert e2.detail["used"] == pytest.approx(3648 * ETS_T_PER_KWH / 1.5)
    assert "quota_80|E2|2024" not in alerts
    assert e2.what("zh-CN").startswith("2024 年配额已使用 138.7%")
    # E3 emits without a plan or allowances: not in the quota scheme, no warning.
    assert not [k for k in alerts if k.startswith("quota") and "E3" in k]


def test_a_plan_without_allowances_yet_is_an_over_emission(ctx):
    records.record_quota_plan(ctx.engine, "p", QuotaPlan.absolute("E3", 2024, 1.0), actor="test")  # not allocated
    e3 = by_key(current_alerts(ctx.access, load_user(ctx.engine, "admin"), NOW))["quota_100|E3|2024"]
    assert (e3.severity, e3.since) == ("critical", pd.Timestamp("2024-03-01", tz=TZ))
    assert e3.what("en") == "No 2024 allowances yet: 0.52 tCO2e to date (data coverage 13.7%)"


def test_a_silent_meter_and_one_that_never_reported(ctx):
    alerts = by_key(current_alerts(ctx.access, load_user(ctx.engine, "admin"), NOW))
    silent = alerts["meter_silent|E1-M2|2024-03-10T09:00:00+08:00"]
    assert (silent.severity, silent.enterprise, silent.since_text()) == ("warning", "E1", "2024-03-10 09:00")
    assert silent.detail["missed"] == 12  # 09:00 to 12:00 in quarter hours
    assert silent.what("en") == "E1-M2 (Electricity): no reading for 12 intervals of 15 min"
    never = alerts["meter_silent|E2-GAS|never"]
    assert never.since is None and never.what("zh-CN") == "E2-GAS（天然气）从未上报读数"
    assert {k for k in alerts if k.startswith("meter_silent")} == {silent.key, never.key}


def test_a_meter_is_silent_after_more_than_four_missed_intervals(ctx):
    latest = ctx.store.latest("energy")
    meters = [m for m in PARK.meters if m.id == "E1-M2"]
    assert silent_meter_alerts(latest, meters, pd.Timestamp("2024-03-10 10:14", tz=TZ)) == []  # 4 missed
    late = silent_meter_alerts(latest, meters, pd.Timestamp("2024-03-10 10:15", tz=TZ))
    assert [a.detail["missed"] for a in late] == [5]


def test_quarantined_rows_of_the_last_24_hours(ctx):
    alerts = current_alerts(ctx.access, load_user(ctx.engine, "admin"), NOW)
    quarantine = [a for a in alerts if a.kind == "quarantine"]
    assert [(a.subject, a.enterprise, a.severity, a.detail["rows"], a.detail["codes"]) for a in quarantine] == [
        ("X-99", None, "info", 1, "series.unknown ×1"), ("E1-M1", "E1", "info", 2, "reading.negative ×2")]
    received = ctx.store.quarantined()["received"].max()
    assert quarantine[1].period == received.tz_convert(TZ).strftime("%Y-%m-%d")
    assert quarantine[1].what("en") == "E1-M1: 2 readings quarantined (reading.negative ×2), source upload.csv"
    later = quarantine_alerts(ctx.store.quarantined(), {}, received + pd.Timedelta("24h1s"), PARK.tz)
    assert later == []


def test_an_enterprise_user_gets_its_own_warnings_only(ctx):
    alpha = current_alerts(ctx.access, load_user(ctx.engine, "alpha"), NOW)
    assert {a.enterprise for a in alpha} == {"E1"}
    assert [a.kind for a in alpha] == ["meter_silent", "quota_80", "quarantine"]
    admin = current_alerts(ctx.access, load_user(ctx.engine, "admin"), NOW)
    assert [a.severity for a in admin] == ["critical", "warning", "warning", "warning", "info", "info"]


def test_an_acknowledgement_survives_recomputation_and_is_audited(ctx):
    alpha = load_user(ctx.engine, "alpha")
    ack = acknowledge(ctx.engine, ctx.access, alpha, "quota_80|E1|2024", NOW)
    assert ack.by == "alpha"
    later = NOW + pd.Timedelta("1h")  # recomputed an hour later: the same situations have the same keys
    keys = {a.key for a in current_alerts(ctx.access, alpha, later)}
    assert "quota_80|E1|2024" in keys and "meter_silent|E1-M2|2024-03-10T09:00:00+08:00" in keys
    assert acknowledgements(ctx.engine, "p")["quota_80|E1|2024"].by == "alpha"
    again = acknowledge(ctx.engine, ctx.access, load_user(ctx.engine, "admin"), "quota_80|E1|2024", later)
    assert (again.by, again.at) == (ack.by, ack.at)  # acknowledged once; the second changes nothing
    events = audit.events(ctx.engine)
    acks = events[events["action"] == "ack_warning"]
    assert acks[["user", "target"]].values.tolist() == [["alpha", "quota_80|E1|2024"]]
    assert '"severity": "warning"' in acks["detail"].iloc[0]


def test_a_higher_threshold_is_a_new_warning(ctx):
    alpha = load_user(ctx.engine, "alpha")
    acknowledge(ctx.engine, ctx.access, alpha, "quota_80|E1|2024", NOW)
    records.record_movement(ctx.engine, "p", "E1", 2024, "sale", 0.3, actor="test")  # 1.46 t of 1.4 t: 104 %
    keys = {a.key for a in current_alerts(ctx.access, alpha, NOW)}
    assert "quota_100|E1|2024" in keys and "quota_80|E1|2024" not in keys
    assert "quota_100|E1|2024" not in acknowledgements(ctx.engine, "p")


@pytest.mark.parametrize("username, key", [("alpha", "quota_100|E2|2024"), ("alpha", "made-up|E1|2024"),
                                           ("reg", "quota_100|E2|2024"), ("bank", "quota_80|E1|2024")])
def test_acknowledging_outside_ones_scope_is_refused_and_writes_nothing(ctx, username, key):
    with pytest.raises(Forbidden):
        acknowledge(ctx.engine, ctx.access, load_user(ctx.engine, username), key, NOW)
    with Session(ctx.engine) as s:
        assert s.query(AlertAck).count() == 0
    assert "ack_warning" not in set(audit.events(ctx.engine)["action"])
