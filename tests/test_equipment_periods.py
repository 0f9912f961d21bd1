"""The equipment page's date-range picker, through the Flask test client calling its callbacks: for a chosen
(non-default) period the metered electricity and each device's estimated energy shown equal figures computed here
from the store's raw readings; utilisation is by day of the period; a range that is not one says why in the page's
language; the downloads carry the period in their names.  The park and readings are tests/test_page_equipment's
(D1 reads on Friday 2024-03-08 only, E1's meter 15 kWh a quarter hour)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from portal.app import create_app
from portal.i18n import t
from tests.test_page_enterprise import callback, login
from tests.test_page_equipment import KW_PER_A, TZ, ctx  # noqa: F401  (the module's fixture)

PICKED = ["2024-03-07", "2024-03-08"]
START, END = pd.Timestamp("2024-03-07", tz=TZ), pd.Timestamp("2024-03-09", tz=TZ)


@pytest.fixture(scope="module")
def client(ctx):  # noqa: F811
    c = create_app(ctx, "k" * 32).server.test_client()
    return c, login(c, "alpha")


def period(client, picked, lang="en") -> str:
    c, token = client
    resp = callback(c, token, ["eq-period.children"], {"eq-enterprise.value": "E1", "eq-range.value": picked},
                    {"lang.data": lang})
    assert resp.status_code == 200, resp.data[:500]
    return json.dumps(resp.json["response"], ensure_ascii=False)


def rows(shown: str, grid_id: str) -> list[dict]:
    def find(node):
        if isinstance(node, dict):
            if node.get("props", {}).get("id") == grid_id:
                return node["props"]["rowData"]
            return next((f for v in node.values() if (f := find(v)) is not None), None)
        if isinstance(node, list):
            return next((f for v in node if (f := find(v)) is not None), None)
        return None

    return find(json.loads(shown))


def test_the_chosen_period_drives_the_energy_and_the_utilisation(client, ctx):  # noqa: F811
    shown = period(client, PICKED)
    metered = ctx.store.points("energy", START, END)
    metered = float(metered[metered["series"] == "E1-W1-M1"]["value"].sum())
    assert metered == 15 * 96 * 2
    assert f"{metered:,.1f}" in shown and "2024-03-07 00:00 – 2024-03-09 00:00" in shown
    amps = ctx.store.points("current", START, END)
    d1 = float(amps[amps["series"] == "E1-W1-D1"]["value"].sum()) / 60 * KW_PER_A  # a reading a minute
    energy = {r[t("eq.col.device", "en")]: r for r in rows(shown, "eq-period-energy-table")}
    assert energy["E1-W1-D1 切割机 1"][t("eq.col.estimated", "en")] == pytest.approx(d1, abs=1e-3)
    days = rows(shown, "eq-period-day-table")
    assert sorted({r[t("eq.col.day", "en")] for r in days}) == ["2024-03-07", "2024-03-08"]
    thursday = [r for r in days if r[t("eq.col.day", "en")] == "2024-03-07"]
    assert all(r[t("eq.col.utilisation", "en")] is None for r in thursday)  # nothing seen: no data, not 0


def test_the_default_period_is_this_month(client, ctx):  # noqa: F811
    shown = period(client, None)
    assert "2024-03-01 00:00 – 2024-03-10 12:00" in shown
    assert f"{15 * (9 * 96 + 48):,.1f}" in shown  # E1's meter, 1 March to now


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("picked,key", [(["2024-03-08", "2024-03-01"], "period.order"),
                                        (["2024-03-08", "2024-03-12"], "period.future"),
                                        (["2024-01-20", "2024-02-29"], "period.too_long")])  # 41 > 31 days
def test_a_range_that_is_not_one_says_why(client, picked, key, lang):
    shown = period(client, picked, lang)
    assert "eq-period-error" in shown and t(key, lang).split("{")[0] in shown and "Traceback" not in shown


@pytest.mark.parametrize("prefix,name", [("eq-period-day", "equipment-utilisation-by-day"),
                                         ("eq-period-energy", "equipment-energy")])
def test_the_downloads_carry_the_chosen_period_in_their_names(client, prefix, name):
    c, token = client
    resp = callback(c, token, [f"{prefix}-download.data"],
                    {f"{prefix}-dl-csv.n_clicks": 1, f"{prefix}-dl-xlsx.n_clicks": None},
                    {"lang.data": "en", "eq-enterprise.value": "E1", "eq-range.value": PICKED})
    assert resp.json["response"][f"{prefix}-download"]["data"]["filename"].startswith(
        f"{name}-p-E1-20240307-20240308-")


def test_another_enterprises_period_is_refused(client):
    c, token = client
    resp = callback(c, token, ["eq-period.children"], {"eq-enterprise.value": "E2", "eq-range.value": PICKED},
                    {"lang.data": "en"})
    text = json.dumps(resp.json, ensure_ascii=False)
    assert "eq-period-refused" in text and "E2-D1" not in text and "37.7" not in text
