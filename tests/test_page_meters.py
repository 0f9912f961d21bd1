"""Drill down to a meter: an enterprise's meters with their energy, coverage and quarantined rows over a chosen
date range, and one meter's readings with the rule codes of what was quarantined, checked against the readings
written (tests/test_alerts.build_ctx: now 10 March 2024 12:00; E1-M1 2 kWh per quarter hour and two negative rows
quarantined at 11:00 and 11:15; E1-M2 1 kWh until 09:00)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from portal.access import Forbidden
from portal.app import create_app
from portal.auth import load_user
from portal.pages import meters
from portal.scope import scope_for
from tests.test_alerts import NOW, TZ, build_ctx
from tests.test_page_warnings import dash_post
from tests.test_portal_access import login

TODAY = pd.Timestamp("2024-03-10", tz=TZ)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    c = build_ctx(tmp_path_factory.mktemp("meters"))
    yield c
    c.store.close()


def e1(ctx, user="alpha"):
    return scope_for(ctx, load_user(ctx.engine, user), meters.PATH).enterprise("E1")


def test_the_meter_list_sums_each_meters_readings_over_the_range(ctx):
    table = e1(ctx).meter_table(TODAY, NOW).set_index("meter")
    assert table.loc["E1-M1", "value"] == pytest.approx(2.0 * 48)
    assert table.loc["E1-M2", "value"] == pytest.approx(1.0 * 36)  # silent since 09:00
    assert table.loc["E1-M1", "coverage"] == pytest.approx(1.0)
    assert table.loc["E1-M2", "coverage"] == pytest.approx(36 / 48)
    assert (table.loc["E1-M1", "quarantined"], table.loc["E1-M2", "quarantined"]) == (2, 0)
    assert list(table.index) == ["E1-M1", "E1-M2"]


def test_a_meters_readings_and_quarantined_rows_carry_their_rule_codes(ctx):
    view = e1(ctx).meter_view("E1-M1", TODAY, NOW)
    assert len(view.readings) == 48 and view.value == pytest.approx(96.0)
    assert view.qualities == {"measured": 48} and view.coverage == pytest.approx(1.0)
    q = view.quarantined.sort_values("line")
    assert q["code"].tolist() == ["reading.negative", "reading.negative"]
    assert q["line"].tolist() == [7, 8] and q["value"].tolist() == ["-1.0", "-2.0"]  # as received
    assert set(q["severity"]) == {"reject"}
    assert set(q["sentence"]) == {"interval or cumulative value is negative"}
    # A range before the bad rows: nothing quarantined in it.
    assert e1(ctx).meter_view("E1-M1", TODAY, TODAY + pd.Timedelta("10h")).quarantined.empty


def test_another_enterprises_meter_is_refused(ctx):
    with pytest.raises(Forbidden):
        e1(ctx, "admin").meter_view("E2-M1", TODAY, NOW)


def test_a_picked_date_range_runs_from_the_first_day_to_the_end_of_the_last_clipped_to_now():
    assert meters.date_range(["2024-03-08", "2024-03-09"], NOW, TZ) == (
        pd.Timestamp("2024-03-08", tz=TZ), pd.Timestamp("2024-03-10", tz=TZ))
    assert meters.date_range(["2024-03-10", "2024-03-08"], NOW, TZ) == (pd.Timestamp("2024-03-08", tz=TZ), NOW)
    assert meters.date_range(None, NOW, TZ) == (pd.Timestamp("2024-03-04", tz=TZ), NOW)
    assert meters.date_range(["nonsense", "2024-03-08"], NOW, TZ) is None


def post_detail(client, enterprise: str, meter: str):
    return dash_post(client, [("mt-detail", "children")],
                     [("mt-enterprise", "value", enterprise), ("mt-meter", "value", meter),
                      ("mt-range", "value", ["2024-03-10", "2024-03-10"])],
                     [("lang", "data", "en")], ["mt-meter.value"])


def test_the_meter_view_over_http_shows_the_readings_and_refuses_other_enterprises(ctx):
    app = create_app(ctx, "k" * 32)
    client = app.server.test_client()
    login(client, "alpha")
    ok = post_detail(client, "E1", "E1-M1")
    assert ok.status_code == 200
    shown = json.dumps(ok.get_json())
    assert "96.00" in shown and "reading.negative" in shown and "E1-M1" in shown
    assert post_detail(client, "E1", "E2-M1").status_code == 403  # E2's meter under E1
    refused = post_detail(client, "E2", "E2-M1")
    assert refused.status_code == 200 and "E2-M1" not in json.dumps(refused.get_json())


def test_the_monthly_trend_is_the_months_readings_and_marks_the_running_month_partial(ctx):
    from portal.pages.enterprise import render_trend
    from tests.test_alerts import GRID_T_PER_KWH

    trend = e1(ctx).monthly_trend(NOW)
    march = trend[trend["month"] == pd.Timestamp("2024-03-01", tz=TZ)].iloc[0]
    # 1-10 March 12:00: E1-M1 2 kWh x 912 quarter hours, E1-M2 1 kWh x 900.
    assert march["total_location_t_co2e"] == pytest.approx((2 * 912 + 900) * GRID_T_PER_KWH)
    assert bool(march["partial"]) and trend["partial"].sum() == 1
    earlier = trend[trend["month"] < pd.Timestamp("2024-03-01", tz=TZ)]
    assert earlier["total_location_t_co2e"].isna().all()  # no data is a gap, never 0
    bars = render_trend(trend, "en")[2].figure.data[0]
    assert bars.marker.pattern.shape[-1] == "/" and set(bars.marker.pattern.shape[:-1]) <= {""}


def test_the_enterprise_page_accounts_a_picked_date_range_against_the_span_before_and_last_year(ctx):
    from portal.pages.enterprise import RANGE, figures
    from tests.test_alerts import GRID_T_PER_KWH

    f = figures(e1(ctx), RANGE, ["2024-03-09", "2024-03-09"])
    day = pd.Timestamp("2024-03-09", tz=TZ)
    assert (f.start, f.end) == (day, day + pd.Timedelta(days=1))
    assert f.previous == (day - pd.Timedelta(days=1), day)
    assert f.last_year == (pd.Timestamp("2023-03-09", tz=TZ), pd.Timestamp("2023-03-10", tz=TZ))
    # 9 March: E1-M1 2 kWh and E1-M2 1 kWh in each of 96 quarter hours.
    assert f.totals["total_location_t_co2e"] == pytest.approx(3 * 96 * GRID_T_PER_KWH)
    assert figures(e1(ctx), RANGE, ["2024-03-11", "2024-03-12"]) is None  # after now: nothing to account
    assert figures(e1(ctx), RANGE, None) is None
