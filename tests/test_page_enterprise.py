"""The enterprise page: its figures from known readings (exact values, worked out below), and isolation: an
enterprise user's crafted callback requests for another enterprise come back with nothing of it.

Park: Jiangsu (East China grid).  E1 "Alpha Co.": workshop W1 with an electricity meter (10 kWh per quarter hour)
and PV (2 kWh per quarter hour), workshop W2 with an electricity meter (5 kWh per quarter hour), an
enterprise-level gas meter (4 m3 per hour); readings from 1 January 2024 to now, 2024-03-10 12:00, and for March
2023 (8 + 4 kWh per quarter hour, 2 m3 per hour).  E2 "Beta Co.": one electricity meter, 100 kWh per quarter hour.
E3 "Gamma Co.": a meter that never reported.

Factors (carbon/data, as in tests/test_carbon_accounting.py): 2024 activity uses grid data year 2022, location
0.5617 t/MWh (East China) and residual 0.5856 t/MWh (national); 2023 activity data year 2021, location 0.5568
(national: East China has no 2021 row) and residual 0.5942; gas 0.0021621888 tCO2 per m3 (20 000 m3 give
43.24377618 t); tce per kWh 0.1229 kg, per m3 gas 1.33 kg.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from plotly.utils import PlotlyJSONEncoder

from carbon import records, summary
from carbon.quota import QuotaPlan
from park.metadata import create_engine_from_url, import_park
from park.model import Device, Enterprise, Meter, Park, Workshop
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal import audit
from portal.access import Forbidden
from portal.app import create_app
from portal.auth import add_user, load_user
from portal.context import PortalContext
from portal.enterprise_scope import EnterpriseScope
from portal.i18n import LANGUAGES, TEXT
from portal.pages import enterprise as page
from portal.scope import scope_for
from tests.support.portal import callback_body, login_token

TZ = "Asia/Shanghai"
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
PASSWORD = "correct horse battery"
PARK = Park(
    id="p", name="测试园区", name_en="Test Park", province="Jiangsu", grid_region="east_china",
    enterprises=(Enterprise("E1", "甲公司", "Alpha Co.", industry="steel_structures"),
                 Enterprise("E2", "乙公司", "Beta Co.", industry="textile_dyeing"),
                 Enterprise("E3", "丙公司", "Gamma Co.")),
    workshops=(Workshop("E1-W1", "E1", "一车间", "Shop 1"), Workshop("E1-W2", "E1", "二车间", "Shop 2")),
    meters=(Meter("E1-W1-M1", Carrier.ELECTRICITY, "E1", "E1-W1"), Meter("E1-W1-PV", Carrier.PV, "E1", "E1-W1"),
            Meter("E1-W2-M1", Carrier.ELECTRICITY, "E1", "E1-W2"),
            Meter("E1-GAS", Carrier.NATURAL_GAS, "E1", None, interval_s=3600),
            Meter("E2-M1", Carrier.ELECTRICITY, "E2"), Meter("E3-M1", Carrier.ELECTRICITY, "E3")),
    devices=(Device("E1-W1-D1", "E1", "E1-W1", "切割机"), Device("E2-D1", "E2", None, "染色机")),
)
GAS_T_PER_M3 = 43.24377618 / 20_000
LOC_2024, MKT_2024, LOC_2023 = 0.5617, 0.5856, 0.5568
# Quota plans compare allowances with the ETS basis unless they say otherwise: grid electricity at 0.5703 t/MWh.
ETS_GRID = 0.5703
TCE_KWH, TCE_M3 = 0.1229 / 1000, 1.33 / 1000
QH_MONTH, H_MONTH = 912, 228  # quarter hours and hours from 2024-03-01 to 2024-03-10 12:00
QH_YEAR, H_YEAR = 6672, 1668  # ... from 2024-01-01
QH_MARCH_2023, H_MARCH_2023 = 2976, 744


def constant(series: str, start: str, end: str | pd.Timestamp, value: float, freq: str = "15min") -> pd.DataFrame:
    """`value` every `freq` over park-local [start, end)."""
    ts = pd.date_range(pd.Timestamp(start, tz=TZ), pd.Timestamp(end).tz_localize(TZ) if isinstance(end, str) else end,
                       freq=freq, inclusive="left")
    return pd.DataFrame({"ts": ts, "series": series, "value": value})


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("enterprise")
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp / "ts.duckdb", PARK.catalog(), TZ)
    store.write("energy", pd.concat([
        constant("E1-W1-M1", "2024-01-01", NOW, 10.0), constant("E1-W1-PV", "2024-01-01", NOW, 2.0),
        constant("E1-W2-M1", "2024-01-01", NOW, 5.0), constant("E1-GAS", "2024-01-01", NOW, 4.0, "1h"),
        constant("E2-M1", "2024-01-01", NOW, 100.0),
        constant("E1-W1-M1", "2023-03-01", "2023-04-01", 8.0), constant("E1-W2-M1", "2023-03-01", "2023-04-01", 4.0),
        constant("E1-GAS", "2023-03-01", "2023-04-01", 2.0, "1h")]))
    months = pd.to_datetime(["2024-01-01", "2024-02-01", "2024-03-01", "2023-03-01"]).date
    records.record_output_values(engine, "p", pd.DataFrame({"enterprise": "E1", "month": months,
                                                            "output_value_10k_cny": [60.0, 55.0, 50.0, 100.0]}),
                                 actor="test")
    records.record_output_values(engine, "p", pd.DataFrame({"enterprise": ["E2"], "month": [months[2]],
                                                            "output_value_10k_cny": [777.0]}), actor="test")
    records.record_product_output(engine, "p", pd.DataFrame({
        "enterprise": "E1", "month": months[2:], "product": "steel", "quantity": [100.0, 150.0], "unit": "t",
        "workshop": None}), actor="test")
    records.record_instruments(engine, "p", pd.DataFrame([{
        "enterprise": "E1", "kind": "gec", "quantity_mwh": 5.0, "period_start": "2024-03-01",
        "period_end": "2024-03-08", "reference": "GEC-TEST"}]), actor="test")
    for e, allowances in (("E1", 500.0), ("E2", 50.0)):
        records.record_quota_plan(engine, "p", QuotaPlan.absolute(e, 2024, allowances), actor="test")
        records.record_movement(engine, "p", e, 2024, "allocation", allowances, actor="test")
    for name, role, ent in (("admin", "admin", None), ("alpha", "enterprise", "E1")):
        add_user(engine, "p", name, PASSWORD, role, ent)
    yield PortalContext(Settings(data_dir=tmp), engine, PARK, store, clock=lambda: NOW)
    store.close()


def shown(components) -> str:
    """Rendered components as JSON text, non-ASCII kept (what the browser receives)."""
    return json.dumps(json.loads(json.dumps(components, cls=PlotlyJSONEncoder)), ensure_ascii=False)


def scope(ctx, user: str = "alpha", enterprise: str = "E1") -> EnterpriseScope:
    """The request scope of `user` bound to `enterprise` (which it must be allowed to read)."""
    bound = scope_for(ctx, load_user(ctx.engine, user), page.PATH).enterprise(enterprise)
    assert bound is not None
    return bound


@pytest.fixture(scope="module")
def month(ctx):
    return scope(ctx).figures("month", NOW)


# ---- figures ---------------------------------------------------------------------------------------------------
def test_month_totals_by_scope_location_and_market_side_by_side(month):
    kwh = 15 * QH_MONTH  # 13 680 kWh of grid electricity
    scope1 = 4 * H_MONTH * GAS_T_PER_M3
    t = month.totals
    assert t["energy_tce"] == pytest.approx(kwh * TCE_KWH + 2 * QH_MONTH * TCE_KWH + 4 * H_MONTH * TCE_M3)
    assert t["scope1_t_co2e"] == pytest.approx(scope1)
    assert t["scope2_location_t_co2e"] == pytest.approx(kwh / 1000 * LOC_2024)
    # the 5 MWh of certificates (claimed 1-8 March) cover grid electricity at zero, the rest at the residual factor
    assert t["scope2_market_t_co2e"] == pytest.approx((kwh / 1000 - 5) * MKT_2024)
    assert t["total_location_t_co2e"] == pytest.approx(scope1 + kwh / 1000 * LOC_2024)
    assert t["coverage"] == pytest.approx(1.0)
    assert (month.start, month.end) == (pd.Timestamp("2024-03-01", tz=TZ), NOW)


def test_month_by_carrier_and_by_workshop(month):
    c = month.by_carrier.set_index("carrier")
    assert c.loc["electricity", "quantity"] == pytest.approx(15 * QH_MONTH) and c.loc["electricity", "unit"] == "kWh"
    assert c.loc["natural_gas", "quantity"] == pytest.approx(4 * H_MONTH) and c.loc["natural_gas", "unit"] == "m3"
    assert c.loc["pv", "quantity"] == pytest.approx(2 * QH_MONTH) and c.loc["pv", "total_location_t_co2e"] == 0
    assert c.loc["natural_gas", "scope1_t_co2e"] == pytest.approx(4 * H_MONTH * GAS_T_PER_M3)
    assert (c["coverage"] == 1.0).all()
    w = month.by_workshop.set_index(month.by_workshop["workshop"].fillna("-"))
    assert w.loc["E1-W1", "scope2_location_t_co2e"] == pytest.approx(10 * QH_MONTH / 1000 * LOC_2024)
    assert w.loc["E1-W2", "scope2_location_t_co2e"] == pytest.approx(5 * QH_MONTH / 1000 * LOC_2024)
    assert w.loc["-", "scope1_t_co2e"] == pytest.approx(4 * H_MONTH * GAS_T_PER_M3)  # the gate gas meter
    assert w["total_location_t_co2e"].sum() == pytest.approx(month.totals["total_location_t_co2e"])


def test_intensities_against_the_same_days_last_year_and_the_previous_period(month):
    """1-10 March 2024 12:00 compares with 1-10 March 2023 12:00 (not all of March 2023) and 1-10 February 2024
    12:00; output value and product output prorated by the month's hours (9.5 of 31 days).  March 2023 has no PV
    readings, so its coverage (2 x 912 + 228 of 3 x 912 + 228) is below the 90 % threshold: its change is hidden."""
    i = month.intensity.set_index("metric")
    share = QH_MONTH / QH_MARCH_2023
    emissions = 4 * H_MONTH * GAS_T_PER_M3 + 15 * QH_MONTH / 1000 * LOC_2024
    tce = (15 + 2) * QH_MONTH * TCE_KWH + 4 * H_MONTH * TCE_M3
    ly_tce = 12 * QH_MONTH * TCE_KWH + 2 * H_MONTH * TCE_M3
    ly_emissions = 2 * H_MONTH * GAS_T_PER_M3 + 12 * QH_MONTH / 1000 * LOC_2023
    assert month.last_year == (pd.Timestamp("2023-03-01", tz=TZ), pd.Timestamp("2023-03-10 12:00", tz=TZ))
    assert month.previous == (pd.Timestamp("2024-02-01", tz=TZ), pd.Timestamp("2024-02-10 12:00", tz=TZ))
    assert i.loc["output_value_10k_cny", "this_period"] == pytest.approx(50.0 * share)
    assert i.loc["output_value_10k_cny", "last_year"] == pytest.approx(100.0 * share)
    assert i.loc["t_co2e_per_10k_cny", "this_period"] == pytest.approx(emissions / (50 * share))
    assert i.loc["tce_per_10k_cny", "last_year"] == pytest.approx(ly_tce / (100 * share))
    assert i.loc["t_co2e_per_10k_cny", "last_year"] == pytest.approx(ly_emissions / (100 * share))
    assert i.loc["coverage", "last_year"] == pytest.approx((2 * QH_MONTH + H_MONTH) / (3 * QH_MONTH + H_MONTH))
    assert i["change"].isna().all() and month.comparison_flags[0] == "base.low_coverage"
    # February 2024 is fully covered: 1-10 February 12:00, output 55 x 9.5 / 29
    feb = 55.0 * QH_MONTH / (29 * 96)
    assert i.loc["output_value_10k_cny", "previous"] == pytest.approx(feb)
    assert i.loc["tce_per_10k_cny", "previous"] == pytest.approx(tce / feb)
    assert i.loc["tce_per_10k_cny", "change_previous"] == pytest.approx((tce / (50 * share) - tce / feb) / (tce / feb))
    assert month.intensity_flags == ("", "") and month.comparison_flags[1] == ""
    u = month.unit_intensity.set_index("product").loc["steel"]
    assert u["tce_per_unit"] == pytest.approx(tce / (100 * share))
    assert u["tce_per_unit_last_year"] == pytest.approx(ly_tce / (150 * share))
    assert u["t_co2e_per_unit"] == pytest.approx(emissions / (100 * share)) and u["months"] == 1


def test_a_year_without_every_months_output_value_has_no_intensity_and_says_why(ctx):
    year = scope(ctx).figures("year", NOW)
    i = year.intensity.set_index("metric")
    value = 60 + 55 + 50 * QH_MONTH / QH_MARCH_2023  # January to March 2024 recorded, March to date prorated
    assert i.loc["output_value_10k_cny", "this_period"] == pytest.approx(value)
    assert i.loc["tce_per_10k_cny", "this_period"] == pytest.approx(year.totals["energy_tce"] / value)
    assert pd.isna(i.loc["tce_per_10k_cny", "last_year"])  # January and February 2023 have none
    assert year.intensity_flags == ("", "output.missing")


def test_cost_structure_at_the_demo_tariffs_and_the_carbon_price(month):
    c = month.cost.set_index("item")
    assert c.loc["electricity", "cost_cny"] == pytest.approx(15 * QH_MONTH * 0.70)
    assert c.loc["natural_gas", "cost_cny"] == pytest.approx(4 * H_MONTH * 3.60)
    assert pd.isna(c.loc["pv", "cost_cny"])  # on-site PV is not bought: no tariff, no cost (not zero)
    carbon = month.totals["total_location_t_co2e"] * 97.49
    assert c.loc["carbon", "cost_cny"] == pytest.approx(carbon) and c.loc["carbon", "price_unit"] == "CNY/t"
    total = 15 * QH_MONTH * 0.70 + 4 * H_MONTH * 3.60 + carbon
    assert c.loc["carbon", "share"] == pytest.approx(carbon / total)
    assert (c["coverage"] == 1.0).all()


def test_realtime_power_is_the_quarter_hours_energy_over_a_quarter_hour(ctx):
    p = scope(ctx).realtime_power(NOW + pd.Timedelta("7min"))
    el, pv = p[p["carrier"] == "electricity"], p[p["carrier"] == "pv"]
    assert len(el) == 48 and el["start"].iloc[-1] == pd.Timestamp("2024-03-10 11:45", tz=TZ)
    assert (el["kw"] == 60.0).all() and (pv["kw"] == 8.0).all() and (p["coverage"] == 1.0).all()


def test_quota_burn_down_and_position(ctx):
    q = scope(ctx).quota_view(NOW)
    assert q.basis == "ets"
    ytd = 4 * H_YEAR * GAS_T_PER_M3 + 15 * QH_YEAR / 1000 * ETS_GRID
    assert q.emissions_t_co2e == pytest.approx(ytd)
    assert len(q.daily) == 70 and q.daily["cumulative_t_co2e"].iloc[-1] == pytest.approx(ytd)
    assert q.daily["t_co2e"].iloc[0] == pytest.approx(4 * 24 * GAS_T_PER_M3 + 15 * 96 / 1000 * ETS_GRID)
    p = q.position
    assert p["allowances_t"] == 500 and p["remaining_t"] == pytest.approx(500 - ytd)
    assert p["status"] == "surplus" and p["warning"] == "" and p["value_cny"] == pytest.approx((500 - ytd) * 97.49)


def test_a_deficit_carries_the_positions_warning(ctx):
    q = scope(ctx, "admin", "E2").quota_view(NOW)
    ytd = 100 * QH_YEAR / 1000 * ETS_GRID
    assert q.position["status"] == "deficit" and q.position["threshold"] == 1.0
    assert q.position["warning"] == f"{ytd / 50:.0%} of the allowances used; deficit {ytd - 50:,.1f} t"
    assert page._warning(q.position, "en") == f"{ytd / 50:.1%} of the allowances used; deficit {ytd - 50:,.1f} t"
    assert page._warning(q.position, "zh-CN") == f"已使用 {ytd / 50:.1%} 的配额; 缺口 {ytd - 50:,.1f} 吨"


def test_a_year_without_an_allocation_has_no_position_and_says_so(ctx):
    q = scope(ctx).quota_view(NOW)
    assert scope(ctx).quota_position(2023, NOW, 97.49) is None  # nothing in the ledger for 2023
    q.position = None
    text = shown(page.render_quota(q, PARK, "en"))
    assert "No allocation recorded for 2024" in text and "Remaining" not in text


def test_an_enterprise_without_readings_has_missing_figures_not_zeros(ctx):
    f = scope(ctx, "admin", "E3").figures("month", NOW)
    assert all(pd.isna(f.totals[c]) for c in summary.SCOPE_COLUMNS) and f.totals["coverage"] == 0
    text = shown(page.render_summary(f, PARK, "en"))
    assert TEXT["ent.no_data"]["en"] in text and "0.00" not in text and text.count('"—"') == 6
    q = scope(ctx, "admin", "E3").quota_view(NOW)
    assert q.position is None and q.daily["t_co2e"].isna().all() and pd.isna(q.emissions_t_co2e)
    assert scope(ctx, "admin", "E3").realtime_power(NOW)["kw"].isna().all()


# ---- rendering ---------------------------------------------------------------------------------------------------
def graphs(components) -> list:
    """Every dcc.Graph in a rendered component tree."""
    from dash import dcc

    found, todo = [], list(components if isinstance(components, list) else [components])
    while todo:
        c = todo.pop()
        if isinstance(c, dcc.Graph):
            found.append(c)
        children = getattr(c, "children", None)
        todo.extend(children if isinstance(children, list | tuple) else [children] if children is not None else [])
    return found


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_chart_is_what_plotlys_validation_makes_of_it(month, ctx, lang):
    """The charts are built from plain dicts without plotly's validation (its cost): each must come out of
    validation unchanged (a shorthand such as a title given as a string would not, and plotly.js 3 ignores it),
    themed (the park palette) and titled."""
    import plotly.graph_objects as go

    q = scope(ctx).quota_view(NOW)
    now = NOW + pd.Timedelta("7min")
    rendered = [*page.render_summary(month, PARK, lang), *page.render_details(month, PARK, lang),
                *page.render_quota(q, PARK, lang), *page.render_trend(scope(ctx).monthly_trend(NOW), lang),
                *page.render_power(scope(ctx).realtime_power(now), PARK, now, lang)]
    charts = graphs(rendered)
    assert {g.id for g in charts} == {"ent-scopes", "ent-mix", "ent-workshops", "ent-cost", "ent-quota-chart",
                                      "ent-trend-chart", "ent-power-chart"}
    for g in charts:
        sent = json.loads(g.figure.to_json())
        assert json.loads(go.Figure(sent).to_json()) == sent, g.id
        assert sent["layout"]["template"]["layout"]["colorway"][0] == "#2e7d4f"
        assert sent["layout"]["title"]["text"] and sent["layout"]["height"] in (300, 320)
        assert all(isinstance(tr, dict) and tr["type"] for tr in sent["data"])


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_label_is_translated_and_every_figure_has_unit_period_and_coverage(month, ctx, lang):
    assert set(page.TEXT) <= set(TEXT) and all(set(v) == set(LANGUAGES) for v in page.TEXT.values())
    summary = shown(page.render_summary(month, PARK, lang))
    details = shown(page.render_details(month, PARK, lang))
    assert ("Alpha Co." in summary) == (lang == "en") and ("甲公司" in summary) == (lang == "zh-CN")
    assert "2024-03-01 00:00 – 2024-03-10 12:00 (Asia/Shanghai" in summary
    assert summary.count("tCO2e") >= 5 and "tce" in summary and summary.count(TEXT["kpi.coverage"][lang]) == 6
    assert f"{month.totals['total_location_t_co2e']:,.2f}" in summary
    assert TEXT["ent.workshop.none"][lang] in details and TEXT["carrier.natural_gas"][lang] in details
    assert "2023-03-01 00:00 – 2023-03-10 12:00" in details and "2024-02-01 00:00 – 2024-02-10 12:00" in details
    assert TEXT["ent.compare.low_base"][lang].format(threshold="90.0%")[:12] in details
    quota = shown(page.render_quota(scope(ctx).quota_view(NOW), PARK, lang))
    assert "97.49" in quota and "2024-01-01 00:00 – 2024-03-10 12:00" in quota


def test_tables_as_downloaded_have_translated_headers_and_the_figures(month):
    carriers = page.carrier_table(month, "en")
    assert list(carriers.columns[:3]) == ["Carrier", "Quantity", "Unit"]
    assert carriers.set_index("Carrier").loc["Electricity", "Quantity"] == 15 * QH_MONTH
    ws = page.workshop_table(month, PARK, "zh-CN")
    assert set(ws["车间"]) == {"一车间", "二车间", "企业总表（不属于车间）"}
    assert page.cost_table(month, "en").set_index("Item").loc["Electricity", "Cost (CNY)"] == 15 * QH_MONTH * 0.7


# ---- isolation ----------------------------------------------------------------------------------------------------
def login(client, username: str) -> str:
    return login_token(client, username, PASSWORD)


def callback(client, token: str, outputs: list[str], inputs: dict, state: dict | None = None):
    """A crafted POST to Dash's callback endpoint: outputs 'id.prop', inputs and state {'id.prop': value}."""
    return client.post("/_dash-update-component", json=callback_body(outputs, inputs, state),
                       headers={"X-CSRFToken": token})


E2_SECRETS = ("Beta Co.", "乙公司", "E2", "777")


def e2_numbers(ctx) -> list[str]:
    """E2's figures as the page would print them: none of them may reach alpha."""
    f = scope(ctx, "admin", "E2").figures("month", NOW)
    return [f"{f.totals[c]:,.2f}" for c in ("energy_tce", "total_location_t_co2e")]


@pytest.fixture(scope="module")
def app(ctx):
    return create_app(ctx, "k" * 32)


def test_the_admin_gets_any_enterprise_through_the_callbacks(app, ctx):
    client = app.server.test_client()
    token = login(client, "admin")
    resp = callback(client, token, ["ent-summary.children", "ent-details.children"],
                    {"ent-enterprise.value": "E2", "ent-period.value": "month",
                     "ent-range.value": None}, {"lang.data": "en"})
    text = json.dumps(resp.json, ensure_ascii=False)
    assert resp.status_code == 200 and "Beta Co." in text and all(n in text for n in e2_numbers(ctx))


@pytest.mark.parametrize("outputs,inputs,state", [
    (["ent-summary.children", "ent-details.children"], {"ent-enterprise.value": "E2", "ent-period.value": "month",
                     "ent-range.value": None},
     {"lang.data": "en"}),
    (["ent-power.children"], {"ent-enterprise.value": "E2", "ent-tick.n_intervals": 1}, {"lang.data": "en"}),
    (["ent-quota.children"], {"ent-enterprise.value": "E2"}, {"lang.data": "zh-CN"}),
])
def test_an_enterprise_user_asking_for_another_enterprise_gets_nothing_of_it(app, ctx, outputs, inputs, state):
    client = app.server.test_client()
    token = login(client, "alpha")
    resp = callback(client, token, outputs, inputs, state)
    text = json.dumps(resp.json, ensure_ascii=False)
    assert resp.status_code == 200
    assert TEXT["ent.refused"]["en"] in text or TEXT["ent.refused"]["zh-CN"] in text
    assert not any(s in text for s in (*E2_SECRETS, *e2_numbers(ctx)))
    last = audit.events(ctx.engine).iloc[0]
    assert (last["user"], last["action"], last["target"]) == ("alpha", "access_denied", "/enterprise:E2")


@pytest.mark.parametrize("prefix", ["ent-carrier", "ent-workshop", "ent-intensity", "ent-cost"])
def test_a_crafted_download_of_another_enterprise_sends_nothing(app, ctx, prefix):
    client = app.server.test_client()
    token = login(client, "alpha")
    resp = callback(client, token, [f"{prefix}-download.data"], {f"{prefix}-dl-csv.n_clicks": 1,
                                                                 f"{prefix}-dl-xlsx.n_clicks": None},
                    {"lang.data": "en", "ent-enterprise.value": "E2", "ent-period.value": "month",
                     "ent-range.value": None})
    assert resp.status_code == 200 and resp.json["response"] == {}  # no_update: nothing sent
    own = callback(client, token, [f"{prefix}-download.data"], {f"{prefix}-dl-csv.n_clicks": 1,
                                                                f"{prefix}-dl-xlsx.n_clicks": None},
                   {"lang.data": "en", "ent-enterprise.value": "E1", "ent-period.value": "month",
                     "ent-range.value": None})
    content = own.json["response"][f"{prefix}-download"]["data"]
    assert own.status_code == 200 and content["filename"].startswith("enterprise-") and "-p-E1-" in content["filename"]
    assert not any(s in content["content"] for s in E2_SECRETS[:2])


def test_the_enterprise_users_page_has_no_selector_and_its_own_data(app, ctx):
    client = app.server.test_client()
    token = login(client, "alpha")
    shell = callback(client, token, ["app-title.children", "park-name.children", "user-name.children",
                                     "lang-toggle.children", "logout.children", "nav.children", "page.children"],
                     {"url.pathname": "/enterprise", "lang.data": "en"})
    text = json.dumps(shell.json, ensure_ascii=False)
    assert '"type": "hidden"' in text and "Beta Co." not in text and "Select" not in text
    resp = callback(client, token, ["ent-summary.children", "ent-details.children"],
                    {"ent-enterprise.value": None, "ent-period.value": "month",
                     "ent-range.value": None}, {"lang.data": "en"})
    assert "Alpha Co." in json.dumps(resp.json, ensure_ascii=False)


def test_the_access_layer_under_the_page_refuses_too(ctx):
    stolen = EnterpriseScope(scope_for(ctx, load_user(ctx.engine, "alpha"), page.PATH), "E2")  # forged binding
    with pytest.raises(Forbidden, match="E2"):
        stolen.aggregate("energy", NOW.floor("D"), NOW, "hour")
    with pytest.raises(Forbidden, match="E2"):
        stolen.points("current", NOW.floor("D"), NOW)
    with pytest.raises(Forbidden, match="E2"):  # accounted for E2 alone: refused, not computed and cut
        stolen.accounts(NOW.floor("D"), NOW)
    assert stolen.ledger(2024).empty
    assert stolen.output_values(pd.Timestamp("2024-03-01", tz=TZ), NOW).empty
    assert scope_for(ctx, load_user(ctx.engine, "alpha"), page.PATH).enterprise("E2") is None
    assert scope_for(ctx, load_user(ctx.engine, "alpha"), page.PATH).enterprise(None).enterprise == "E1"
    assert scope_for(ctx, load_user(ctx.engine, "admin"), page.PATH).enterprise("E2").enterprise == "E2"


def test_incomplete_accounts_carry_a_visible_badge_with_the_reasons(ctx):
    """E3's meter never reported: its accounts are incomplete (no data), and the page says so beside the figures,
    the reasons in the badge's tooltip; E2's complete accounts carry no badge."""
    f = scope(ctx, "admin", "E3").figures("month", NOW)
    assert not f.accounts.complete and len(f.accounts.reasons()) > 0
    for lang, word in (("zh-CN", "不完整"), ("en", "incomplete")):
        summary_ = json.loads(json.dumps(page.render_summary(f, PARK, lang), cls=PlotlyJSONEncoder))
        badge = next(c for c in summary_[1]["props"]["children"] if isinstance(c, dict))["props"]
        assert badge["children"] == word and badge["id"] == "ent-complete"
        assert set(f.accounts.reasons()["message"]) <= set(badge["title"].split("\n"))
    e2 = scope(ctx, "admin", "E2").figures("month", NOW)
    assert e2.accounts.complete and "incomplete" not in shown(page.render_summary(e2, PARK, "en"))


# ---- speed: one enterprise's accounts, computed for it alone and once per load -----------------------------------
SPANS = [("month", "2024-03-01", NOW), ("month", "2023-03-01", "2023-04-01"), ("day", "2024-01-01", NOW),
         ("year", "2024-01-01", NOW)]


@pytest.mark.parametrize("kind,start,end", SPANS)
@pytest.mark.parametrize("basis", [None, "ets"])
def test_one_enterprises_own_accounting_equals_the_park_wide_one_cut_to_it(ctx, kind, start, end, basis):
    from portal.access import DataAccess, cut_accounts

    start, end = pd.Timestamp(start, tz=TZ), pd.Timestamp(end).tz_convert(TZ) if isinstance(end, pd.Timestamp) \
        else pd.Timestamp(end, tz=TZ)
    admin = load_user(ctx.engine, "admin")

    def fresh() -> DataAccess:  # nothing cached: each accounting computed on its own
        return DataAccess(ctx.store, ctx.park, ctx.engine, now=ctx.now)

    park = fresh().accounts(admin, start, end, kind, basis)
    for e in ("E1", "E2", "E3"):
        alone, want = fresh().accounts(admin, start, end, kind, basis, enterprises=[e]), cut_accounts(park, {e})
        for part in ("lines", "totals", "issues", "fallbacks"):
            pd.testing.assert_frame_equal(getattr(alone, part), getattr(want, part), check_dtype=False)
        assert set(alone.totals["enterprise"]) <= {e} and "park" not in set(alone.totals["level"])


def test_the_enterprise_users_first_load_reads_its_own_rows_and_accounts_each_period_once(ctx, monkeypatch):
    """Every store query under the page's callbacks is restricted to E1 (no park-wide accounting cut afterwards),
    and no accounting (period, kind, basis) is computed twice in one page load."""
    import carbon.emissions
    from portal.context import PortalContext

    fresh = PortalContext(Settings(data_dir=ctx.settings.data_dir), ctx.engine, PARK, ctx.store, clock=lambda: NOW)
    app = create_app(fresh, "k" * 32)
    wheres, computed = [], []
    real_aggregate, real_compute = ctx.store.aggregate, carbon.emissions.compute_accounts

    def aggregate(measurement, start, end, window, by=(), agg=None, where=None):
        wheres.append((measurement, window, (where or {}).get("enterprise")))
        return real_aggregate(measurement, start, end, window, by=by, agg=agg, where=where)

    def compute(activity, registry, regions, policy, period_kind, *a, **kw):
        computed.append((activity["period_start"].min(), str(period_kind), repr(policy)))
        return real_compute(activity, registry, regions, policy, period_kind, *a, **kw)

    monkeypatch.setattr(ctx.store, "aggregate", aggregate)
    monkeypatch.setattr(carbon.emissions, "compute_accounts", compute)
    monkeypatch.setattr("carbon.pipeline.compute_accounts", compute)
    client = app.server.test_client()
    token = login(client, "alpha")
    for outputs, inputs in (
            (["ent-summary.children", "ent-details.children"],
             {"ent-enterprise.value": "E1", "ent-period.value": "month", "ent-range.value": None}),
            (["ent-power.children"], {"ent-enterprise.value": "E1", "ent-tick.n_intervals": None}),
            (["ent-quota.children"], {"ent-enterprise.value": "E1"}),
            (["ent-trend.children"], {"ent-enterprise.value": "E1"})):
        assert callback(client, token, outputs, inputs, {"lang.data": "zh-CN"}).status_code == 200
    assert wheres and all(e in (["E1"], "E1") for _, _, e in wheres), wheres
    assert len(computed) == len(set(computed)), computed


# ---- cut: kept as it is when the access layer has cut already, else the rows of the enterprise ------------------
def test_cut_equals_the_plain_mask_whatever_the_rows_and_index():
    from dataclasses import replace

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from portal.enterprise_scope import cut

    @settings(max_examples=150, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["E1", "E2", None]), st.sampled_from(["enterprise", "park", "workshop"]),
                              st.floats(-5, 5)), max_size=8), st.booleans(), st.sampled_from(["object", "string"]))
    def check(rows, shuffled, dtype):
        frame = pd.DataFrame(rows, columns=["enterprise", "level", "value"])
        frame["enterprise"] = frame["enterprise"].astype(dtype)
        if shuffled:
            frame.index = frame.index[::-1] + 3
        acc = replace(scope_accounts, lines=frame, totals=frame, issues=frame.drop(columns="enterprise"),
                      fallbacks=frame)
        got = cut(acc, "E1")
        plain = frame[(frame["enterprise"] == "E1").fillna(False).to_numpy(dtype=bool)].reset_index(drop=True)
        totals = frame[((frame["level"] != "park") & (frame["enterprise"] == "E1")).fillna(False).to_numpy(
            dtype=bool)].reset_index(drop=True)
        pd.testing.assert_frame_equal(got.lines, plain)
        pd.testing.assert_frame_equal(got.fallbacks, plain)
        pd.testing.assert_frame_equal(got.totals, totals)
        assert got.issues.empty

    from carbon.emissions import Accounts

    scope_accounts = Accounts(*([pd.DataFrame()] * 5), period=None, policy=None, registry_fingerprint="")
    check()
