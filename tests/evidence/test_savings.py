"""Measured savings in the pack (carbon.savings, IPMVP Option C) for the consent's financed project, and their
recomputation by `verify --recompute` from savings.csv and factors.csv alone.

Worked example: a plant whose monthly electricity is 20 000 kWh + 50 kWh per 10k CNY of output value (plus a
small wobble) until a retrofit on 2024-01-01, and 10 % less afterwards.  The adjusted baseline of January-June
2024 is what the old plant would have used at that output; the savings are about 10 % of it."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd
import pytest

from carbon import records
from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal.auth import Role, add_user
from portal.context import PortalContext
from portal.evidence import consent, keys, pack
from portal.evidence.verify import verify
from tests.evidence.conftest import PASSWORD, bank_scope

TZ = "Asia/Shanghai"
PARK = Park(id="s", name="节能园区", name_en="Savings Park", province="Jiangsu", grid_region="east_china",
            enterprises=(Enterprise("S1", "节能公司", "Saver Co.", "machinery"),),
            meters=(Meter("S1-M1", Carrier.ELECTRICITY, "S1"),))
NOW = pd.Timestamp("2024-07-01 12:00", tz=TZ)
MONTHS = pd.date_range("2023-01-01", "2024-06-01", freq="MS", tz=TZ)
OUTPUT = 300 + 120 * np.sin(np.arange(len(MONTHS)) / 2.0) + np.arange(len(MONTHS)) * 3  # 10k CNY
WOBBLE = np.random.default_rng(12).normal(0, 150, len(MONTHS))


def monthly_kwh() -> np.ndarray:
    kwh = 20_000 + 50 * OUTPUT + WOBBLE
    after = np.array([m.year == 2024 for m in MONTHS])  # the retrofit started on 2024-01-01
    return np.where(after, kwh * 0.9, kwh)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("savings")
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp / "ts.duckdb", PARK.catalog(), TZ)
    frames = []
    for start, kwh in zip(MONTHS, monthly_kwh(), strict=True):
        ts = pd.date_range(start, start + pd.DateOffset(months=1), freq="15min", inclusive="left")
        frames.append(pd.DataFrame({"ts": ts, "series": "S1-M1", "value": kwh / len(ts)}))
    store.write("energy", pd.concat(frames, ignore_index=True))
    records.record_output_values(engine, "s", pd.DataFrame({"enterprise": "S1", "month": MONTHS.date,
                                                           "output_value_10k_cny": OUTPUT}), actor="test")
    for name, role, ent in (("bank", Role.BANK, None), ("saver", Role.ENTERPRISE, "S1")):
        add_user(engine, "s", name, PASSWORD, role, ent)
    keys.ensure_key(engine, "s", tmp)
    c = consent.request(engine, "s", "bank", "S1", "post_loan_monitoring", ["energy", "emissions", "savings"],
                        "2023-01", "2024-12", NOW + pd.Timedelta(days=30), now=NOW, project_start="2024-01-01")
    consent.grant(engine, c.id, "saver", now=NOW)
    c = PortalContext(Settings(data_dir=tmp), engine, PARK, store, clock=lambda: NOW)
    yield c
    store.close()


@pytest.fixture(scope="module")
def blob(ctx) -> bytes:
    return pack.issue(ctx, bank_scope(ctx), "S1", "2024", now=NOW)[0]


def members(b: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(b)) as z:
        return {n: z.read(n) for n in z.namelist()}


def test_the_pack_measures_the_retrofits_savings(blob):
    files = members(blob)
    s = json.loads(files["summary.json"])["savings"]
    assert "not_computed" not in s, s
    assert s["baseline_start"].startswith("2023-01-01") and s["reporting_start"].startswith("2024-01-01")
    assert s["n"] == 12 and s["regressors"][0] == "output"
    reporting = monthly_kwh()[12:]
    assert s["reporting_consumption_kWh"] == pytest.approx(reporting.sum(), rel=1e-9)
    would_have = reporting / 0.9
    assert s["adjusted_baseline_kWh"] == pytest.approx(would_have.sum(), rel=0.01)  # the model, not the truth
    assert s["fractional_savings"] == pytest.approx(0.10, abs=0.01)
    factors = {r.split(",")[0]: r.split(",") for r in files["factors.csv"].decode("utf-8-sig").splitlines()[1:]}
    tce_per_kwh = float(factors[s["tce_factor_id"]][7])
    assert s["energy_saved_tce"] == pytest.approx(s["energy_saved_kWh"] * tce_per_kwh, rel=1e-12)
    assert s["co2_factor_id"].startswith("grid/electricity/average/")
    assert "savings.csv" in files


def test_verify_refits_the_savings_from_the_pack_alone(blob):
    res = verify(blob, recompute=True)
    assert res.ok, res.problems
    s = json.loads(members(blob)["summary.json"])["savings"]
    assert res.recomputed["savings_energy_saved_kWh"] == pytest.approx(s["energy_saved_kWh"], rel=1e-9)
    files = members(blob)
    doctored = json.loads(files["summary.json"])
    doctored["savings"]["energy_saved_kWh"] *= 1.05
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for n, b in {**files, "summary.json": json.dumps(doctored).encode()}.items():
            z.writestr(n, b)
    res = verify(out.getvalue(), recompute=True)
    assert any(p.code == "recompute.difference" and "savings energy_saved_kWh" in p.message for p in res.problems)


def test_the_report_states_the_savings(blob, tmp_path):
    import subprocess

    path = tmp_path / "r.pdf"
    path.write_bytes(members(blob)["report.pdf"])
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True).stdout
    s = json.loads(members(blob)["summary.json"])["savings"]
    assert "节能量" in text and f"{s['energy_saved_kWh']:,.0f} kWh" in text
    assert f"{s['co2_avoided_t_co2e']:,.3f} t CO2e" in text


def test_savings_need_a_project_start_and_a_baseline_in_the_consent(ctx):
    with pytest.raises(consent.ConsentError, match="project"):
        consent.request(ctx.engine, "s", "bank", "S1", "loan_application", ["energy", "emissions", "savings"],
                        "2023-01", "2024-12", NOW + pd.Timedelta(days=3), now=NOW)
    short = consent.request(ctx.engine, "s", "bank", "S1", "loan_application", ["energy", "emissions", "savings"],
                            "2023-06", "2024-12", NOW + pd.Timedelta(days=3), now=NOW, project_start="2024-01-01")
    consent.grant(ctx.engine, short.id, "saver", now=NOW)  # newer: it wins for 2024
    files = members(pack.issue(ctx, bank_scope(ctx), "S1", "2024", now=NOW, report=False)[0])
    s = json.loads(files["summary.json"])["savings"]
    assert "baseline too short" in s["not_computed"] and "savings.csv" not in files
    consent.revoke(ctx.engine, short.id, "saver", now=NOW)
