"""The data-quality page: coverage per enterprise and meter for a chosen period, silent meters, quarantined rows
and restatements, with exact values from a real store; administrators only, on the server too."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from carbon import pipeline, records
from portal import audit
from portal.app import create_app
from portal.auth import load_user
from portal.i18n import LANGUAGES
from portal.pages import quality
from portal.scope import scope_for
from tests.test_alerts import GRID_T_PER_KWH, NOW, TZ, build_ctx
from tests.test_page_warnings import dash_post
from tests.test_portal_access import csrf, dash_render, login

FACTORS = ("kind,key,parameter,region,enterprise,value,unit,valid_from,valid_to,source,publication,verified\n"
           "grid,electricity,average,national,,0.6,tCO2/MWh,2022-01-01,2022-12-31,park grid study,"
           "study 2024,false\n")


@pytest.fixture
def ctx(tmp_path):
    c = build_ctx(tmp_path)
    yield c
    c.store.close()


@pytest.fixture
def admin(ctx):
    """The administrator's request scope on the quality page."""
    return scope_for(ctx, load_user(ctx.engine, "admin"), quality.PATH)


def test_period_bounds_run_to_the_last_quarter_hour():
    now = pd.Timestamp("2024-03-10 12:07", tz=TZ)
    assert quality.period_bounds("month", now) == (pd.Timestamp("2024-03-01", tz=TZ), pd.Timestamp("2024-03-10 12:00",
                                                                                                     tz=TZ))
    assert quality.period_bounds("7d", now)[0] == pd.Timestamp("2024-03-04", tz=TZ)
    assert quality.period_bounds("today", pd.Timestamp("2024-03-10 00:05", tz=TZ))[1] == pd.Timestamp(
        "2024-03-10 00:15", tz=TZ)  # never an empty period


def test_coverage_by_enterprise_for_the_chosen_period(ctx, admin):
    month = quality.coverage_by_enterprise(admin, "month", "en").set_index("Enterprise")
    assert list(month.columns) == ["Expected intervals", "Intervals present", "Measured intervals", "Coverage"]
    # 1 March to 10 March 12:00: 912 quarter hours per meter; E1-M2 silent since 09:00 (900); E2's gas meter hourly
    # (228 expected) never reported.
    assert month.loc["Alpha Co."].tolist() == [1824, 1812, 1812, round(1812 / 1824, 4)]
    assert month.loc["Beta Co."].tolist() == [912 + 228, 912, 912, 0.8]
    assert month.loc["Gamma Co.", "Coverage"] == 1.0
    today = quality.coverage_by_enterprise(admin, "today", "en").set_index("Enterprise")
    assert today.loc["Alpha Co."].tolist() == [96, 84, 84, 0.875]
    truth = ctx.store.coverage("energy", pd.Timestamp("2024-03-01", tz=TZ), NOW, by=["enterprise"])
    assert month["Coverage"].tolist() == truth["coverage"].round(4).tolist()


def test_coverage_by_meter_lists_the_worst_first(ctx, admin):
    meters = quality.coverage_by_meter(admin, "month", "zh-CN")
    assert list(meters.columns) == ["计量表", "企业", "能源品种", "计量区间 (分钟)", "应有区间数", "已有区间数",
                                    "实测区间数", "数据完整率"]
    assert meters["计量表"].tolist()[:2] == ["E2-GAS", "E1-M2"]
    assert meters.iloc[0][["计量区间 (分钟)", "应有区间数", "数据完整率"]].tolist() == [60, 228, 0.0]
    assert meters.iloc[1]["数据完整率"] == round(900 / 912, 4)


def test_silent_meters_and_quarantined_readings(ctx, admin):
    silent = quality.silent_meters(admin, "en")
    assert silent.values.tolist() == [["E1-M2", "Alpha Co.", "Electricity", "2024-03-10 09:00", 12, 15],
                                      ["E2-GAS", "Beta Co.", "Natural gas", "—", None, 60]]
    q = quality.quarantined(admin, "en")
    assert list(q.columns) == ["Received", "Source", "Line", "Meter", "Reading time", "Value as received",
                               "Rule code", "Handling", "Reason"]
    assert q[["Line", "Meter", "Value as received", "Rule code", "Handling"]].values.tolist() == [
        [7, "E1-M1", "-1.0", "reading.negative", "rejected"], [8, "E1-M1", "-2.0", "reading.negative", "rejected"],
        [9, "X-99", "1.0", "series.unknown", "rejected"]]
    assert set(q["Source"]) == {"upload.csv"} and q["Reason"].iloc[0].startswith("line 7: value -1.0")


def test_restatements_after_a_factor_import(ctx, admin, tmp_path):
    path = tmp_path / "factors.csv"
    path.write_text(FACTORS, encoding="utf-8")
    imported = records.import_factor_file(ctx.engine, "p", path, actor="operator", reason="park grid study")
    pipeline.restate_factor_import(ctx.store, ctx.engine, ctx.park, imported, pd.Timestamp("2024-03-01", tz=TZ),
                                   pd.Timestamp("2024-04-01", tz=TZ), actor="operator")
    r = quality.restatements(admin, "en")
    row = r[(r["Enterprise"] == "Alpha Co.") & (r["Metric"] == "Total, location-based")].iloc[0]
    assert row["Old value"] == pytest.approx(2724 * GRID_T_PER_KWH) and row["New value"] == pytest.approx(2724 * 6e-4)
    assert (row["Unit"], row["Reason"], row["By"], row["Period"]) == ("tCO2e", "park grid study", "operator",
                                                                      "2024-03")
    assert quality.restatements(admin, "zh-CN")["层级"].iloc[0] in {"园区", "企业", "车间"}


def test_downloads_follow_the_chosen_period_and_are_logged(ctx, admin):
    client = create_app(ctx, "k" * 32).server.test_client()
    login(client, "admin")
    resp = dash_post(client, [("quality-enterprises-download", "data")],
                     [("quality-enterprises-dl-csv", "n_clicks", 1), ("quality-enterprises-dl-xlsx", "n_clicks", None)],
                     [("lang", "data", "en"), ("quality-period", "value", "today"), ("quality-range", "value", None)],
                     ["quality-enterprises-dl-csv.n_clicks"])
    data = resp.json["response"]["quality-enterprises-download"]["data"]
    shown = quality.coverage_by_enterprise(admin, "today", "en")
    assert pd.read_csv(io.StringIO(data["content"])).equals(shown)
    assert data["filename"] == "coverage-enterprises-p-today-20240310-1200.csv"
    last = audit.events(ctx.engine).iloc[0]
    assert (last["user"], last["action"], last["target"]) == ("admin", "download", data["filename"])


@pytest.mark.parametrize("username", ["alpha", "reg", "bank"])
def test_only_administrators_get_the_page_and_its_callbacks(ctx, username):
    client = create_app(ctx, "k" * 32).server.test_client()
    login(client, username)
    page = json.dumps(dash_render(client, "/quality", {"X-CSRFToken": csrf(client)}).json)
    assert "Your role may not open this page" in page and "X-99" not in page
    period = dash_post(client, [("quality-period-body", "children")],
                       [("quality-period", "value", "month"), ("quality-range", "value", None)],
                       [("lang", "data", "en")], ["quality-period.value"])
    download = dash_post(client, [("quality-quarantine-download", "data")],
                         [("quality-quarantine-dl-csv", "n_clicks", 1),
                          ("quality-quarantine-dl-xlsx", "n_clicks", None)],
                         [("lang", "data", "en")], ["quality-quarantine-dl-csv.n_clicks"])
    assert (period.status_code, download.status_code) == (403, 403)
    assert audit.events(ctx.engine)["action"].tolist()[:2] == ["refused", "refused"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_page_is_translated(ctx, admin, lang):
    page = json.dumps(quality.layout(admin, lang).to_plotly_json(), default=lambda o: o.to_plotly_json(),
                      ensure_ascii=False)
    assert ("Data coverage by meter" in page) == (lang == "en") and ("各计量表数据完整率" in page) == (lang == "zh-CN")
    assert "Asia/Shanghai" in page and "reading.negative" in page


def test_a_picked_range_covers_its_days_to_now_and_names_the_download(ctx, admin):
    now = pd.Timestamp("2024-03-10 12:00", tz="Asia/Shanghai")
    assert quality.chosen("range", ["2024-03-09", "2024-03-08"]) == "2024-03-08..2024-03-09"
    assert quality.chosen("range", None) == quality.DEFAULT_PERIOD == quality.chosen("nonsense", None)
    assert quality.period_bounds("2024-03-08..2024-03-09", now) == (
        pd.Timestamp("2024-03-08", tz="Asia/Shanghai"), pd.Timestamp("2024-03-10", tz="Asia/Shanghai"))
    assert quality.period_bounds("2024-03-09..2024-03-12", now)[1] == now  # clipped to now
    client = create_app(ctx, "k" * 32).server.test_client()
    login(client, "admin")
    resp = dash_post(client, [("quality-enterprises-download", "data")],
                     [("quality-enterprises-dl-csv", "n_clicks", 1), ("quality-enterprises-dl-xlsx", "n_clicks", None)],
                     [("lang", "data", "en"), ("quality-period", "value", "range"),
                      ("quality-range", "value", ["2024-03-08", "2024-03-09"])],
                     ["quality-enterprises-dl-csv.n_clicks"])
    data = resp.json["response"]["quality-enterprises-download"]["data"]
    shown = quality.coverage_by_enterprise(admin, "2024-03-08..2024-03-09", "en")
    assert pd.read_csv(io.StringIO(data["content"])).equals(shown)
    assert data["filename"].startswith("coverage-enterprises-p-20240308-20240309-")
