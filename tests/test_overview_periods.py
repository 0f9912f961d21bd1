"""The overview's date-range picker and its like-with-like comparisons, through the Flask test client calling the
page's callbacks: the figures shown for a chosen (non-default) period equal figures computed here from the store's
raw readings; the previous period and the same days last year are beside them; a change whose base is covered
below the park's threshold is hidden and flagged; a range that is not one says why in the page's language; the
downloads carry the period in their file names.

Readings (kWh a quarter hour): E1 reads 10 x the day of the month (so every day differs), E2 reads 100, from
2024-01-01 to now (2024-03-10 12:00); in February 2023 only every fourth quarter hour of both (coverage 25 %, below
the 90 % threshold).  The chosen period is 5-7 February 2024.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal.app import create_app
from portal.auth import add_user
from portal.components import PeriodError, picked_period
from portal.context import PortalContext
from portal.i18n import t
from tests.support.portal import callback_body, login_token

TZ = "Asia/Shanghai"
NOW = pd.Timestamp("2024-03-10 12:00", tz=TZ)
PASSWORD = "correct horse battery"
PARK = Park(
    id="p", name="测试园区", name_en="Test Park", province="Jiangsu",
    enterprises=(Enterprise("E1", "甲公司", "Alpha Co."), Enterprise("E2", "乙公司", "Beta Co.")),
    meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"), Meter("E2-M1", Carrier.ELECTRICITY, "E2")),
)
PICKED = ["2024-02-05", "2024-02-07"]
START, END = pd.Timestamp("2024-02-05", tz=TZ), pd.Timestamp("2024-02-08", tz=TZ)


def readings(start: str, end: str, every: int = 1) -> pd.DataFrame:
    ts = pd.date_range(pd.Timestamp(start, tz=TZ), pd.Timestamp(end, tz=TZ), freq="15min", inclusive="left")[::every]
    e1 = pd.DataFrame({"ts": ts, "series": "E1-M1", "value": [d * 10.0 for d in ts.day]})
    return pd.concat([e1, pd.DataFrame({"ts": ts, "series": "E2-M1", "value": 100.0})], ignore_index=True)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("overview-periods")
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp / "ts.duckdb", PARK.catalog(), TZ)
    store.write("energy", readings("2023-02-01", "2023-03-01", every=4))
    store.write("energy", readings("2024-01-01", "2024-03-10 12:00"))
    add_user(engine, "p", "reg", PASSWORD, "regulator", None)
    yield PortalContext(Settings(data_dir=tmp), engine, PARK, store, clock=lambda: NOW)
    store.close()


@pytest.fixture(scope="module")
def client(ctx):
    c = create_app(ctx, "k" * 32).server.test_client()
    return c, login_token(c, "reg", PASSWORD)


def post(client, outputs, inputs, state=None):
    c, token = client
    resp = c.post("/_dash-update-component", json=callback_body(outputs, inputs, state),
                  headers={"X-CSRFToken": token})
    if resp.status_code == 204:  # no_update: nothing changes on the page
        return {}
    assert resp.status_code == 200, resp.data[:500]
    return resp.json["response"]


def body(client, picked, lang="en") -> tuple[str, str]:
    """The page's body for a picked value as its two callbacks answer it (the figures, then the comparison), and
    the period message; "{}" when the figures shown stay."""
    r = post(client, ["ov-top.children", "ov-rest.children", "ov-period-message.children"],
             {"ov-range.value": picked}, {"lang.data": lang})
    c = post(client, ["ov-compare.children"], {"ov-range.value": picked}, {"lang.data": lang})
    shown = [r[k] for k in ("ov-top", "ov-rest") if k in r] + ([c] if c else [])
    return (json.dumps(shown, ensure_ascii=False) if shown else "{}",
            json.dumps(r["ov-period-message"]["children"], ensure_ascii=False))


def kwh(ctx, start, end, series=None) -> float:
    """Electricity over [start, end) summed from the store's raw readings (not through any aggregate)."""
    p = ctx.store.points("energy", start, end)
    return float(p[p["series"].isin(series or ["E1-M1", "E2-M1"])]["value"].sum())


def grid_rows(shown: str, grid_id: str) -> list[dict]:
    """The rows of an AG Grid in a rendered body."""
    def find(node):
        if isinstance(node, dict):
            if node.get("props", {}).get("id") == grid_id:
                return node["props"]["rowData"]
            for v in node.values():
                found = find(v)
                if found is not None:
                    return found
        elif isinstance(node, list):
            for v in node:
                found = find(v)
                if found is not None:
                    return found
        return None

    return find(json.loads(shown))


def test_the_chosen_period_drives_the_cards_the_table_and_the_comparison(client, ctx):
    shown, message = body(client, PICKED)
    assert message == "[]"
    total = kwh(ctx, START, END)
    # 3 days x 96 quarter hours: E1 reads 50, 60, 70; E2 100 -> 96 x (180 + 300) = 46,080 kWh
    assert total == pytest.approx(96 * (50 + 60 + 70 + 3 * 100))
    assert f"{total:,.1f}" in shown and "Energy, chosen period" in shown
    assert "2024-02-05 00:00 – 2024-02-08 00:00" in shown
    rows = {r[t("col.enterprise", "en")]: r for r in grid_rows(shown, "enterprise-table")}
    assert rows["Alpha Co."][t("col.energy", "en")] == pytest.approx(kwh(ctx, START, END, ["E1-M1"]))
    # Like with like: the previous period is the 3 days before (2-4 February), fully covered: its change is shown;
    # energy in tce is proportional to kWh, so the relative change equals the kWh one.
    prev = kwh(ctx, START - pd.Timedelta(days=3), START)
    compare = {r[t("ov.compare.metric", "en")]: r for r in grid_rows(shown, "ov-compare-table")}
    energy = compare[t("ov.metric.energy_tce", "en")]
    assert energy[t("ov.compare.change_previous", "en")] == pytest.approx((total - prev) / prev, rel=1e-3)
    assert energy[t("ov.compare.this_period", "en")] / energy[t("ov.compare.previous", "en")] == pytest.approx(
        total / prev, rel=5e-3)  # shown rounded to 0.01 tce
    # ... the same days last year are covered 25 %, below the park's threshold: the change is hidden and flagged
    assert energy[t("ov.compare.change", "en")] is None
    assert energy[t("ov.compare.last_year", "en")] / energy[t("ov.compare.this_period", "en")] == pytest.approx(
        kwh(ctx, START - pd.DateOffset(years=1), END - pd.DateOffset(years=1)) / total, rel=5e-3)
    assert "ov-compare-low-base" in shown
    coverage = compare[t("ov.metric.coverage", "en")]
    assert coverage[t("ov.compare.last_year", "en")] == pytest.approx(25.0)
    # the year to date runs from 1 January to the period's end
    ytd = kwh(ctx, pd.Timestamp("2024-01-01", tz=TZ), END)
    assert energy[t("ov.compare.ytd", "en")] / energy[t("ov.compare.this_period", "en")] == pytest.approx(
        ytd / total, rel=5e-3)


def test_the_default_period_is_this_month_compared_with_the_same_days_of_last_month(client, ctx):
    shown, _ = body(client, ["2024-03-01", "2024-03-10"])  # exactly the page's default
    compare = {r[t("ov.compare.metric", "en")]: r for r in grid_rows(shown, "ov-compare-table")}
    energy = compare[t("ov.metric.energy_tce", "en")]
    cur = kwh(ctx, pd.Timestamp("2024-03-01", tz=TZ), NOW)
    prev = kwh(ctx, pd.Timestamp("2024-02-01", tz=TZ), pd.Timestamp("2024-02-10 12:00", tz=TZ))
    assert energy[t("ov.compare.change_previous", "en")] == pytest.approx((cur - prev) / prev, rel=1e-3)
    assert "Energy this month" in shown


@pytest.mark.parametrize("picked,key", [
    (["2024-02-07", "2024-02-05"], "period.order"),
    (["2024-03-01", "2024-03-11"], "period.future"),
    (["2023-01-01", "2024-03-01"], "period.too_long"),
    (["2024-02-30", "2024-03-01"], "period.bad"),
])
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_range_that_is_not_one_says_why_in_the_pages_language(client, picked, key, lang):
    shown, message = body(client, picked, lang)
    assert shown == "{}"  # the figures shown stay
    with pytest.raises(PeriodError) as err:
        picked_period(picked, NOW, TZ)
    assert err.value.key == key and err.value.message(lang) in message
    assert "Traceback" not in message and "ov-period-error" in message


def test_a_range_ending_today_runs_to_the_last_complete_quarter_hour():
    assert picked_period(["2024-03-09", "2024-03-10"], NOW, TZ) == (pd.Timestamp("2024-03-09", tz=TZ), NOW)
    assert picked_period(["2024-03-10", None], NOW, TZ) is None  # half a range: the page's default


@pytest.mark.parametrize("prefix,name", [("overview", "enterprises-month"), ("ov-compare", "overview-comparison")])
def test_the_downloads_carry_the_chosen_period_in_their_names(client, prefix, name):
    r = post(client, [f"{prefix}-download.data"], {f"{prefix}-dl-csv.n_clicks": 1, f"{prefix}-dl-xlsx.n_clicks": None},
             {"lang.data": "en", "ov-range.value": PICKED})
    data = r[f"{prefix}-download"]["data"]
    assert data["filename"].startswith(f"{name}-p-20240205-20240207-")
    if prefix == "overview":  # E1 over the chosen period: 96 x (50 + 60 + 70) kWh
        assert "Alpha Co.,Electricity,17280.0,kWh,1.0" in data["content"]
    else:
        assert "This period" in data["content"] and "Same days last year" in data["content"]


# ---- invariants ----------------------------------------------------------------------------------------------------

DAYS = st.dates(min_value=pd.Timestamp("2022-01-01").date(), max_value=pd.Timestamp("2024-03-20").date())
TEXTS = st.one_of(DAYS.map(str), st.text(max_size=12), st.none())


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXTS, min_size=0, max_size=3))
def test_a_picked_value_is_a_valid_period_the_default_or_a_period_error(values):
    """Whatever the picker sends: a non-empty [start, end) within 366 days ending by the last complete quarter hour,
    None (the default), or a PeriodError with a message in every language; never anything else."""
    try:
        period = picked_period(values, NOW, TZ)
    except PeriodError as exc:
        assert all(exc.message(lang) for lang in ("zh-CN", "en"))
        return
    if period is None:
        return
    start, end = period
    assert start < end <= NOW and start == start.normalize()
    assert (end - start) <= pd.Timedelta(days=366)


@settings(max_examples=200, deadline=None)
@given(DAYS, st.integers(min_value=1, max_value=366))
def test_a_picked_ranges_previous_period_is_the_span_just_before_it(first, days):
    from carbon.compare import bases

    start = pd.Timestamp(first).tz_localize(TZ)
    end = start + pd.Timedelta(days=days)
    b = bases(start, end)
    assert b["previous"] == (start - (end - start), start)
    ly_start, ly_end = b["last_year"]
    assert (ly_start.month, ly_start.day) == (start.month, start.day) or (start.month, start.day) == (2, 29)
    assert ly_start.year == start.year - 1 and ly_end > ly_start
