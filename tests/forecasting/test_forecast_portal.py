"""The pages read the nightly job's cache: the enterprise page's fan chart (its p50 year end checked against a
burn-down recomputed from the store), the overview's deficit list, the projection and anomaly warnings with
their acknowledgements, each user seeing only its own enterprises."""

from __future__ import annotations

import pandas as pd
import pytest

from carbon.pipeline import account_park
from carbon.quota import quota_basis_policy
from forecasting.anomalies import SPIKE, Anomaly
from forecasting.cache import save_anomalies
from forecasting.quota import burn_down_from_forecast
from portal import forecast_figures
from portal.access import Forbidden
from portal.alerts import current_alerts
from portal.auth import add_user, load_user
from portal.context import PortalContext
from portal.scope import scope_for
from tests.forecasting.conftest import ALLOWANCES, ORIGIN, TZ

PASSWORD = "correct horse battery"


@pytest.fixture(scope="module")
def portal(job_run):
    ctx = job_run.ctx
    for name, role, ent in (("fadmin", "admin", None), ("falpha", "enterprise", "E0001"),
                            ("fbeta", "enterprise", "E0002")):
        add_user(ctx.engine, "p", name, PASSWORD, role, ent)
    now = pd.Timestamp(ctx.now)
    return PortalContext(ctx.settings, ctx.engine, job_run.park, ctx.store, clock=lambda: now)


def scope(portal, name):
    return scope_for(portal, load_user(portal.engine, name), page="test")


def year_to_date(job_run, enterprise):
    """Daily emissions to date on the plan's basis, straight from the pipeline (not through the job's reads)."""
    ctx = job_run.ctx
    policy, column = quota_basis_policy("ets")
    acc = account_park(ctx.store, ctx.engine, job_run.park, pd.Timestamp("2026-01-01", tz=TZ), ORIGIN, "day",
                       policy, strict=False, as_of=ORIGIN).totals_at("enterprise")
    ytd = acc[acc["enterprise"] == enterprise].set_index("period_start")[column].fillna(0.0)
    return ytd


def test_fan_chart_p50_year_end_is_the_independently_recomputed_projection(portal, job_run):
    c = scope(portal, "falpha").quota_forecast("E0001")
    ytd = year_to_date(job_run, "E0001")
    again = burn_down_from_forecast(ytd, c.result, ALLOWANCES["E0001"])
    fig = forecast_figures.quota_fan(c, "en")
    p50 = next(tr for tr in fig.data if tr.name == "Forecast median (p50)")
    assert p50.y[-1] == pytest.approx(again.year_end_p50_t, rel=1e-12)
    assert pd.Timestamp(p50.x[-1]) == pd.Timestamp("2027-01-01")  # the cumulative at the end of 31 December
    # the fan opens at the actual year to date
    actual = next(tr for tr in fig.data if tr.name == "Actual to date")
    assert actual.y[-1] == pytest.approx(float(ytd.sum()), rel=1e-9) and p50.y[0] == pytest.approx(actual.y[-1])
    allocation = next(tr for tr in fig.data if tr.name == "Allowances")
    assert set(allocation.y) == {ALLOWANCES["E0001"]}
    # the 80 % band lies inside the 95 % band, and holds the median
    lo95, hi95, lo80, hi80 = fig.data[:4]
    assert (hi95.name, hi80.name) == ("95% interval", "80% interval")
    for a, b in ((lo95.y, lo80.y), (lo80.y, p50.y), (p50.y, hi80.y), (hi80.y, hi95.y)):
        assert all(x <= y + 1e-9 for x, y in zip(a, b, strict=True))


def test_the_section_says_which_model_when_trained_how_old_its_mase_and_coverage(portal):
    s = scope(portal, "falpha")
    c = s.quota_forecast("E0001")
    out = forecast_figures.render_quota_forecast(c, 2026, s.now(), s.park.tz, "en")
    text = str(out)
    assert c.model in text and "trained 2026-11-01 02:33 (0.0 h ago)" in text
    assert f"{c.mase:,.3f}" in text and "fc-quota-fan" in text and "fc-quota-deficit" in text


def test_an_enterprise_user_reads_only_its_own_forecast(portal):
    s = scope(portal, "falpha")
    assert {c.subject for c in s.forecasts()} <= {"E0001"}
    with pytest.raises(Forbidden):
        s.quota_forecast("E0002")


def test_overview_lists_the_enterprise_heading_for_a_deficit(portal):
    s = scope(portal, "fadmin")
    d = forecast_figures.deficits(s.forecasts("quota_t_co2e"), 2026, s.park.tz)
    assert d["enterprise"].tolist() == ["E0001"]
    c = s.quota_forecast("E0001")
    assert d["gap_t"].iloc[0] == pytest.approx(c.burn_down["year_end_p50_t"] - ALLOWANCES["E0001"])
    assert forecast_figures.deficits(s.forecasts("quota_t_co2e"), 2027, s.park.tz).empty  # another year: none


def test_projection_and_anomaly_warnings_join_the_warnings_and_can_be_acknowledged(portal, job_run):
    spike = Anomaly(SPIKE, "warning", "E0002-M001", "E0002", pd.Timestamp("2026-10-31 03:00", tz=TZ),
                    pd.Timestamp("2026-10-31 04:00", tz=TZ), 10.0, 95.0, "kWh",
                    "spike 2026-10-31 03:00–04:00: observed 95.00 kWh per hour, expected 10.00 kWh",
                    job_run.ctx.now)
    save_anomalies(portal.engine, "p", [spike], pd.Timestamp("2026-10-31", tz=TZ))
    admin = scope(portal, "fadmin")
    keys = {a.key: a for a in admin.alerts()}
    projected = keys["quota_projected|E0001|2026"]
    assert projected.code == "warning.quota_projected" and "E0002" not in {
        a.subject for a in admin.alerts() if a.kind == "quota_projected"}
    assert f"{admin.quota_forecast('E0001').burn_down['year_end_p50_t']:,.1f}" in projected.what("en")
    anomaly = keys[spike.key]
    assert anomaly.code == SPIKE and "expected 10.00 kWh" in anomaly.what("en") and anomaly.severity == "warning"
    # each enterprise sees its own only
    alpha_keys = {a.key for a in scope(portal, "falpha").alerts()}
    beta_keys = {a.key for a in scope(portal, "fbeta").alerts()}
    assert "quota_projected|E0001|2026" in alpha_keys and spike.key not in alpha_keys
    assert spike.key in beta_keys and "quota_projected|E0001|2026" not in beta_keys
    ack = scope(portal, "fbeta").acknowledge(spike.key)
    assert ack.by == "fbeta" and spike.key in scope(portal, "fadmin").acknowledgements()
    with pytest.raises(Forbidden):
        scope(portal, "falpha").acknowledge(spike.key)
    assert {a.key for a in current_alerts(portal.access, load_user(portal.engine, "fadmin"), portal.now())} == set(
        keys)


def test_the_enterprise_page_shows_the_fan_through_its_callback_and_the_overview_lists_the_deficit(portal):
    """Through the real app: the quota callback answers with the fan chart and the provenance line for the
    enterprise's own user, nothing of another enterprise's; the overview page names the deficit."""
    import json

    from portal.app import create_app
    from tests.support.portal import callback_body, login_token, render_body

    app = create_app(portal, "k" * 32)
    client = app.server.test_client()
    token = login_token(client, "falpha", PASSWORD)
    resp = client.post("/_dash-update-component", json=callback_body(
        ["ent-quota.children"], {"ent-enterprise.value": "E0001"}, {"lang.data": "en"}),
        headers={"X-CSRFToken": token})
    text = json.dumps(resp.json, ensure_ascii=False)
    c = scope(portal, "falpha").quota_forecast("E0001")
    assert resp.status_code == 200 and "fc-quota-fan" in text and f"model {c.model}" in text
    assert f"{c.burn_down['year_end_p50_t']:,.1f}" in text
    other = client.post("/_dash-update-component", json=callback_body(
        ["ent-quota.children"], {"ent-enterprise.value": "E0002"}, {"lang.data": "en"}),
        headers={"X-CSRFToken": token})
    assert "fc-quota-fan" not in json.dumps(other.json if other.is_json else other.get_data(as_text=True))
    admin = app.server.test_client()
    admin_token = login_token(admin, "fadmin", PASSWORD)
    page = admin.post("/_dash-update-component", json=render_body("/", "en"), headers={"X-CSRFToken": admin_token})
    shown = json.dumps(page.json, ensure_ascii=False)
    assert page.status_code == 200 and "fc-deficit-table" in shown and "Enterprises heading for a deficit" in shown
