"""An evidence pack holds each meter against its utility bills (互证): per billing period, the store's energy over
exactly that period, the bill, their difference and a status; the verifier recomputes it from the pack's files."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import zipfile

import pandas as pd
import pytest

from park.bills import import_bills
from portal.evidence import consent, pack
from portal.evidence.verify import verify
from tests.evidence.conftest import NOW, PARK, TZ, bank_scope, build, readings


def members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {n: z.read(n) for n in z.namelist()}


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def store_total(meter: str, start: str, end: str) -> float:
    """The meter's energy over [start, end) straight from the readings written to the store, not through it."""
    r = readings()
    a, b = pd.Timestamp(start, tz=TZ), pd.Timestamp(end, tz=TZ)
    return float(r[(r["series"] == meter) & (r["ts"] >= a) & (r["ts"] < b)]["value"].sum())


M1 = store_total("E1-M1", "2024-03-05", "2024-03-20")
M2 = store_total("E1-M1", "2024-03-20", "2024-04-01")
BILLS = ("meter,period_start,period_end,quantity,unit,amount_cny\n"
         "E1-M1,2024-02-20,2024-03-05,3000,kWh,2400\n"  # reaches into February: not compared in a March pack
         f"E1-M1,2024-03-05,2024-03-20,{M1 * 1.01 / 1000!r},MWh,6000\n"  # 1 % above the meter: agrees
         f"E1-M1,2024-03-20 08:00,2024-04-01,{M2 * 0.9!r},kWh,\n")  # 10 % below, from 08:00: differs


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("billpack")
    c = build(tmp)
    grant = consent.request(c.engine, "p", "bank", "E1", "loan_application", ["energy", "emissions"], "2024-01",
                            "2024-12", NOW + pd.Timedelta(days=60), now=NOW)
    consent.grant(c.engine, grant.id, "alpha", now=NOW)
    path = tmp / "bills.csv"
    path.write_text(BILLS, encoding="utf-8")
    report = import_bills(c.engine, PARK, path, actor="test", now=NOW.to_pydatetime())
    assert report.accepted == 3, report.summary()
    yield c
    c.store.close()


@pytest.fixture(scope="module")
def blob(ctx) -> bytes:
    return pack.issue(ctx, bank_scope(ctx), "E1", "2024-03", now=NOW)[0]


def test_the_pack_lists_metered_against_billed_per_billing_period_with_the_difference(blob):
    files = members(blob)
    got = rows(files["bill_check.csv"])
    assert [(r["meter"], r["period_start"][:16], r["period_end"][:16], r["status"]) for r in got] == [
        ("E1-M1", "2024-03-01T00:00", "2024-03-05T00:00", "no_bill"),
        ("E1-M1", "2024-03-05T00:00", "2024-03-20T00:00", "agree"),
        ("E1-M1", "2024-03-20T00:00", "2024-03-20T08:00", "no_bill"),
        ("E1-M1", "2024-03-20T08:00", "2024-04-01T00:00", "differ"),
    ]  # the gas meter has no bill: not listed
    agree, differ = got[1], got[3]
    assert float(agree["metered"]) == pytest.approx(M1, rel=1e-12)
    assert float(agree["billed"]) == pytest.approx(M1 * 1.01, rel=1e-12)
    assert float(agree["difference"]) == pytest.approx(M1 - M1 * 1.01, rel=1e-9)
    assert float(agree["amount_cny"]) == 6000.0 and agree["source"] == "bills.csv line 3"
    m2 = store_total("E1-M1", "2024-03-20 08:00", "2024-04-01")  # exactly the billing period, not the day
    assert m2 != M2
    assert float(differ["metered"]) == pytest.approx(m2, rel=1e-12)
    assert float(differ["difference"]) == pytest.approx(m2 - M2 * 0.9, rel=1e-9)
    assert float(differ["relative_difference"]) == pytest.approx((m2 - M2 * 0.9) / (M2 * 0.9), rel=1e-9)
    assert float(differ["coverage"]) == 1.0
    summary = json.loads(files["summary.json"])["meter_vs_bill"]
    assert summary["available"] is True and summary["bills_compared"] == 2 and summary["bills_outside_period"] == 1
    assert summary["status_counts"] == {"agree": 1, "differ": 1, "no_bill": 2}


def test_the_energy_figure_names_the_bill_check_in_its_trust_tier(blob):
    """Energy from the park's meters stays measured (他证); the bills are a check it names, with the summed
    difference of the compared periods (one agreeing, one differing: the check as a whole is outside tolerance)."""
    trust = {r["figure"]: r for r in rows(members(blob)["trust.csv"])}
    energy = trust["energy_tce"]
    assert energy["tier"] == "measured"
    assert "the electricity utility bills (kWh)" in energy["reason"]
    difference = (M1 - M1 * 1.01) + (store_total("E1-M1", "2024-03-20 08:00", "2024-04-01") - M2 * 0.9)
    assert f"difference {difference:,.1f}" in energy["reason"] and "outside" in energy["reason"]


def test_the_report_shows_the_comparison(blob, tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(members(blob)["report.pdf"])
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    flat = " ".join(text.split())
    assert "Meter against utility bill" in flat
    assert f"{M1:,.1f}" in flat and f"{M1 * 1.01:,.1f}" in flat  # metered and billed of the agreeing period


def test_the_verifier_recomputes_the_bill_check_and_catches_an_edited_difference(blob):
    res = verify(blob, recompute=True)
    assert res.ok, [str(p) for p in res.problems]
    assert "bill_check_differences" in res.recomputed
    files = members(blob)
    text = files["bill_check.csv"].decode("utf-8-sig")
    got = rows(files["bill_check.csv"])
    edited = text.replace(got[3]["difference"], repr(float(got[3]["difference"]) + 1.0))
    from portal.evidence.verify import Result, recompute_bill_check

    res = Result()
    recompute_bill_check(res, {**files, "bill_check.csv": b"\xef\xbb\xbf" + edited.encode()})
    assert not res.ok and any(p.file == "bill_check.csv" for p in res.problems)
