"""Intensities against a baseline: the same months a year earlier, read only when the consent covers them."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from carbon import records
from tests.evidence.conftest import NOW, TZ, bank_scope, build


@pytest.fixture(scope="module")
def with_2023(tmp_path_factory):
    """The evidence park with March 2023 metered (E1's electricity 10 kWh a quarter hour, gas 0.2 m3) and its output
    value declared (200 x 10k CNY)."""
    ctx = build(tmp_path_factory.mktemp("baseline"))
    ts = pd.date_range(pd.Timestamp("2023-03-01", tz=TZ), pd.Timestamp("2023-04-01", tz=TZ), freq="15min",
                       inclusive="left")
    ctx.store.write("energy", pd.concat([pd.DataFrame({"ts": ts, "series": "E1-M1", "value": 10.0}),
                                         pd.DataFrame({"ts": ts, "series": "E1-G1", "value": 0.2})],
                                        ignore_index=True))
    records.record_output_values(ctx.engine, "p", pd.DataFrame({
        "enterprise": ["E1"], "month": [pd.Timestamp("2023-03-01").date()], "output_value_10k_cny": [200.0]}),
        actor="test")
    yield ctx
    ctx.store.close()


def _pack(ctx, period_from: str) -> tuple[dict, dict[str, bytes]]:
    from portal.evidence import consent, pack

    c = consent.request(ctx.engine, "p", "bank", "E1", "loan_application", ["energy", "emissions"], period_from,
                        "2024-12", NOW + pd.Timedelta(days=60), now=NOW)
    consent.grant(ctx.engine, c.id, "alpha", now=NOW)
    blob, _ = pack.issue(ctx, bank_scope(ctx), "E1", "2024-03", now=NOW)
    consent.revoke(ctx.engine, c.id, "alpha", now=NOW)
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        files = {n: z.read(n) for n in z.namelist()}
    return json.loads(files["summary.json"]), files


def test_baseline_is_the_same_months_a_year_earlier_when_consented(with_2023):
    summ, files = _pack(with_2023, "2023-03")
    bl = summ["intensities"]["baseline"]
    assert bl["used"] and bl["period"] == "2023-03 – 2023-03"
    # March 2023 from the metered quantities: 31 days x 96 quarter hours x 10 kWh, gas 0.2 m3 each
    kwh, m3 = 31 * 96 * 10.0, 31 * 96 * 0.2
    rows = {r.split(",")[0]: r.split(",") for r in files["factors.csv"].decode("utf-8-sig").splitlines()[1:]}
    lines = pd.read_csv(io.BytesIO(files["emissions_lines.csv"]), encoding="utf-8-sig", dtype={"tce_factor": str})
    tce = {c: float(rows[lines.loc[lines["carrier"] == c, "tce_factor"].iloc[0]][7])
           for c in ("electricity", "natural_gas")}
    assert bl["energy_tce"] == pytest.approx(kwh * tce["electricity"] + m3 * tce["natural_gas"], rel=1e-9)
    assert bl["tce_per_10k_cny"] == pytest.approx(bl["energy_tce"] / 200.0, rel=1e-12)
    assert bl["t_co2e_per_10k_cny"] == pytest.approx(bl["total_location_t_co2e"] / 200.0, rel=1e-12)
    now = summ["intensities"]["tce_per_10k_cny"]
    assert bl["change_tce_per_10k_cny"] == pytest.approx(now / bl["tce_per_10k_cny"] - 1, rel=1e-12)
    assert "baseline_monthly.csv" in files and b"2023-03" in files["baseline_monthly.csv"]


def test_no_baseline_outside_the_consent_and_the_pack_says_why(with_2023):
    summ, files = _pack(with_2023, "2024-01")
    bl = summ["intensities"]["baseline"]
    assert not bl["used"] and "2023-03" in bl["note"] and "2024-01 – 2024-12" in bl["note"]
    assert "baseline_monthly.csv" not in files


def test_verify_recomputes_the_baseline_intensities(with_2023):
    from portal.evidence import verify

    summ, files = _pack(with_2023, "2023-03")
    summ["intensities"]["baseline"]["tce_per_10k_cny"] *= 1.01
    res = verify.Result()
    verify.recompute_figures(res, files | {"summary.json": json.dumps(summ).encode()})
    assert any("baseline tce_per_10k_cny" in p.message for p in res.problems), res.problems
    assert not np.isnan(res.recomputed["baseline_tce_per_10k_cny"])


def test_meter_against_bill_without_bills_says_so_and_counts_hand_entered_days(with_2023):
    """This park has no bills imported: the check says no bill lies within the period and compares nothing (the
    comparison itself is tested with bills in tests/test_bills_pack.py)."""
    summ, _ = _pack(with_2023, "2024-01")
    bc = summ["meter_vs_bill"]
    assert bc["available"] is False and bc["bills_compared"] == 0
    assert "no utility bill" in bc["note"] and "within the period" in bc["note"]
    assert not [r for r in bc["compared"] if r["bill_id"] is not None]
    assert bc["estimated_or_entered_meter_days"] == 0  # every interval of the test park is measured
