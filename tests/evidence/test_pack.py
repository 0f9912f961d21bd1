"""The pack: what it holds, read against the store; deterministic; restatements listed in the next pack; the PDF's
text and key numbers against the data files; the signing key's file mode and rotation; no pack without consent."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import subprocess
import zipfile

import pandas as pd
import pytest

from park.settings import Settings
from portal.context import PortalContext
from portal.evidence import consent, keys, pack
from portal.evidence.verify import verify
from tests.evidence.conftest import NOW, PARK, bank_scope, build, readings


def members(blob: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {n: z.read(n) for n in z.namelist()}


def rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "CSV without a byte-order mark"
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def test_the_pack_holds_every_file_and_the_manifest_lists_them(pack_blob):
    files = members(pack_blob)
    assert set(files) == {"README.txt", "report.pdf", "summary.json", "energy_daily.csv", "emissions_monthly.csv",
                          "emissions_lines.csv", "factors.csv", "output_monthly.csv", "utilisation_daily.csv",
                          "restatements.csv", "signing_key.pem", "SHA256SUMS", "manifest.json", "manifest.sig",
                          "trust.csv", "risk_indicators.csv", "capacity_monthly.csv", "shutdown_signals.csv",
                          "crosscheck.csv"}
    manifest = json.loads(files["manifest.json"])
    assert set(manifest["files"]) == set(files) - {"manifest.json", "manifest.sig"}
    assert manifest["enterprise"]["id"] == "E1" and manifest["period"]["label"] == "2024-03"
    assert manifest["consent"]["bank"] == "bank" and manifest["consent"]["purpose"] == "loan_application"
    assert manifest["software"]["version"] and manifest["methodology"]["factor_registry"]
    assert len(files["manifest.sig"]) == 64


def test_daily_energy_is_the_stores_readings_per_meter_and_day(pack_blob):
    energy = rows(members(pack_blob)["energy_daily.csv"])
    r = readings()
    local = r["ts"].dt.tz_convert("Asia/Shanghai")
    march = r[(local >= "2024-03-01") & (local < "2024-04-01")]
    want = march.groupby([local.dt.strftime("%Y-%m-%d"), "series"])["value"].sum()
    got = {(e["date"], e["meter"]): float(e["quantity"]) for e in energy}
    assert {k for k in got if k[1] != "E2-M1"} == set(got) and len(got) == 31 * 2  # E1's meters only
    for (day, meter), value in got.items():
        assert value == pytest.approx(want[(day, meter)], rel=1e-12)
    assert {e["quality"] for e in energy} == {"measured"}


def test_the_monthly_figures_are_the_portals(pack_blob, granted):
    files = members(pack_blob)
    month = rows(files["emissions_monthly.csv"])
    assert [m["month"] for m in month] == ["2024-03"]
    acc = bank_scope(granted).enterprise("E1").accounts(pd.Timestamp("2024-03-01", tz="Asia/Shanghai"),
                                                        pd.Timestamp("2024-04-01", tz="Asia/Shanghai"))
    ent = acc.totals_at("enterprise").iloc[0]
    for col in ("energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e"):
        assert float(month[0][col]) == ent[col]
    summary = json.loads(files["summary.json"])
    assert summary["intensities"]["t_co2e_per_10k_cny"] == pytest.approx(ent["total_location_t_co2e"] / 120.0)
    trust = {r["figure"]: r for r in rows(files["trust.csv"])}
    assert trust["energy_tce"]["tier_zh"] == "他证" and trust["output_value_10k_cny"]["tier_zh"] == "自证"
    assert trust["t_co2e_per_10k_cny"]["tier"] == "declared"  # as weak as its declared output value
    assert summary["trust"]["scope1_t_co2e"] == {"tier": "measured", "tier_zh": "他证"}
    # 互证: the bracelet (20 A 08:00-17:00, 0.2 A otherwise, 380 V, PF 0.85) against the meter, March
    cc = rows(files["crosscheck.csv"])[0]
    expected = 3 ** 0.5 * 380 * 0.85 * (20 * 9 + 0.2 * 15) * 31 / 1000
    assert cc["month"] == "2024-03" and float(cc["estimated_kwh"]) == pytest.approx(expected, rel=1e-3)
    assert float(cc["metered_kwh"]) == float(rows(files["emissions_lines.csv"])[0]["q_base"])
    assert cc["status"] == "agree"
    assert trust["bracelet_estimated_kwh"]["tier_zh"] == "互证"
    quota = summary["quota"]
    assert quota["allowances_t"] == 100.0 and quota["status"] == "surplus"
    assert quota["remaining_t"] == pytest.approx(100.0 - quota["emissions_t_co2e"])
    assert quota["emissions_t_co2e"] > float(month[0]["total_location_t_co2e"])  # the year to the end of March
    risk = {r["indicator"]: r for r in rows(files["risk_indicators.csv"])}
    # a one-month pack cannot give a 3-month window: flagged, not a partial sum
    assert risk["energy_tce"]["latest"] == "" and risk["energy_tce"]["flag"] == "months.missing"
    assert risk["energy_tce"]["peer_count"] == ""  # one peer in the industry: withheld, never shown


def test_the_same_data_gives_the_same_files_and_hashes(granted):
    one = members(pack.issue(granted, bank_scope(granted), "E1", "2024-02", now=NOW)[0])
    two = members(pack.issue(granted, bank_scope(granted), "E1", "2024-02", now=NOW + pd.Timedelta(minutes=5))[0])
    differ = {n for n in one if one[n] != two[n]}
    assert differ == {"manifest.json", "manifest.sig"}
    m1, m2 = json.loads(one["manifest.json"]), json.loads(two["manifest.json"])
    assert m1["files"] == m2["files"]
    assert {k for k in m1 if m1[k] != m2[k]} == {"generated_at"}


def test_a_figure_restated_after_a_pack_was_issued_is_listed_in_the_next(tmp_path):
    ctx = build(tmp_path)
    c = consent.request(ctx.engine, "p", "bank", "E1", "post_loan_monitoring", ["energy", "emissions"], "2024-01",
                        "2024-03", NOW + pd.Timedelta(days=30), now=NOW)
    consent.grant(ctx.engine, c.id, "alpha", now=NOW)
    first = members(pack.issue(ctx, bank_scope(ctx), "E1", "2024-02", now=NOW, report=False)[0])
    assert rows(first["restatements.csv"]) == []
    before = float(rows(first["emissions_monthly.csv"])[0]["scope2_location_t_co2e"])
    fix = readings()
    fix = fix[(fix["series"] == "E1-M1") & (fix["ts"] >= pd.Timestamp("2024-02-10", tz="Asia/Shanghai"))
              & (fix["ts"] < pd.Timestamp("2024-02-11", tz="Asia/Shanghai"))].assign(value=lambda f: f["value"] * 2)
    ctx.store.write("energy", fix)  # a corrected day
    again = PortalContext(Settings(data_dir=tmp_path), ctx.engine, PARK, ctx.store, clock=lambda: NOW)
    second = members(pack.issue(again, bank_scope(again), "E1", "2024-02", now=NOW, report=False)[0])
    restated = {(r["month"], r["figure"]): r for r in rows(second["restatements.csv"])}
    r = restated[("2024-02", "scope2_location_t_co2e")]
    assert float(r["previously_issued"]) == before
    assert float(r["now"]) == float(rows(second["emissions_monthly.csv"])[0]["scope2_location_t_co2e"])
    assert float(r["now"]) - before == pytest.approx(float(r["difference"]))
    assert float(r["difference"]) == pytest.approx(fix["value"].sum() / 2 * 0.5617e-3)
    assert ("2024-02", "scope1_t_co2e") not in restated  # gas unchanged
    assert json.loads(second["summary.json"])["restated_figures"] == len(restated)
    ctx.store.close()


def pdf_text(blob: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(members(blob)["report.pdf"])
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout


def test_the_report_renders_and_its_numbers_are_the_data_files(pack_blob, tmp_path):
    files = members(pack_blob)
    text = pdf_text(pack_blob, tmp_path)
    assert "绿色信贷证据报告" in text and "Green-loan evidence report" in text  # Chinese is extractable: embedded
    summary = json.loads(files["summary.json"])
    t = summary["totals"]
    for key in ("energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e",
                "total_location_t_co2e"):
        assert f"{t[key]:,.3f}" in text, key
    electricity = next(c for c in summary["by_carrier"] if c["carrier"] == "electricity")
    assert f"{electricity['quantity']:,.3f}" in text
    assert f"{summary['intensities']['t_co2e_per_10k_cny']:,.4f}" in text
    for f in rows(files["factors.csv"]):
        assert f["id"][:20] in text.replace("\n", "")
    fonts = subprocess.run(["pdffonts", str(tmp_path / "report.pdf")], capture_output=True, text=True).stdout
    assert "yes" in fonts.split("\n")[2]  # embedded (subset) CJK font
    png = tmp_path / "page"
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(tmp_path / "report.pdf"), str(png)],
                   check=True)
    assert any(p.name.startswith("page") and p.stat().st_size > 2000 for p in tmp_path.iterdir())


def test_the_report_shows_the_utilisation_signal(pack_blob, tmp_path):
    text = pdf_text(pack_blob, tmp_path)
    util = rows(members(pack_blob)["utilisation_daily.csv"])
    assert len(util) == 31 and {u["device"] for u in util} == {"E1-D1"}
    planned = [float(u["utilisation"]) for u in util if u["utilisation"]]  # empty: nothing planned that day
    assert 0 < len(planned) < len(util)
    mean = sum(planned) / len(planned)
    assert re.search(rf"E1-D1\s+切割机\s+{mean * 100:.1f}", text), text[text.find("E1-D1") - 50:][:300]
    assert "生产经营风险指标" in text and "能耗规模" in text and "他证" in text and "自证" in text
    quota = json.loads(members(pack_blob)["summary.json"])["quota"]
    assert "碳配额" in text and f"{quota['remaining_t']:,.3f} t" in text


# ---- the key -----------------------------------------------------------------------------------------------------
def test_the_key_file_is_0600_from_creation_even_under_a_lax_umask(tmp_path, granted):
    old = os.umask(0)
    try:
        key_id = keys.rotate(granted.engine, "p", tmp_path, actor="test")
    finally:
        os.umask(old)
    path = keys.key_dir(tmp_path) / f"{key_id}.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_rotation_keeps_old_keys_published_and_their_packs_valid(tmp_path):
    ctx = build(tmp_path)
    c = consent.request(ctx.engine, "p", "bank", "E1", "loan_application", ["energy", "emissions"], "2024-01",
                        "2024-03", NOW + pd.Timedelta(days=30), now=NOW)
    consent.grant(ctx.engine, c.id, "alpha", now=NOW)
    old_blob, old_manifest = pack.issue(ctx, bank_scope(ctx), "E1", "2024-01", now=NOW, report=False)
    new_id = keys.rotate(ctx.engine, "p", tmp_path, actor="test")
    assert not (keys.key_dir(tmp_path) / f"{old_manifest['key_id']}.pem").exists()  # old private key gone
    listed = {k["key_id"]: k for k in keys.published(ctx.engine, "p")}
    assert listed[old_manifest["key_id"]]["status"] == "retired" and listed[new_id]["status"] == "active"
    new_blob, new_manifest = pack.issue(ctx, bank_scope(ctx), "E1", "2024-01", now=NOW, report=False)
    assert new_manifest["key_id"] == new_id
    readme = members(new_blob)["README.txt"].decode()
    assert f"{old_manifest['key_id']}  retired" in readme and f"{new_id}  active" in readme
    published = keys.published_json(ctx.engine, "p")
    for blob, manifest in ((old_blob, old_manifest), (new_blob, new_manifest)):
        pem = listed.get(manifest["key_id"], {}).get("public_key_pem") or next(
            k["public_key_pem"] for k in keys.published(ctx.engine, "p") if k["key_id"] == manifest["key_id"])
        assert verify(blob, key_pem=pem.encode(), keys_json=published).ok
    keys.revoke(ctx.engine, old_manifest["key_id"], "test", "leaked")
    res = verify(old_blob, keys_json=keys.published_json(ctx.engine, "p"))
    assert [p.code for p in res.problems] == ["key.revoked"]
    ctx.store.close()


# ---- no consent, no pack -------------------------------------------------------------------------------------------
def test_no_pack_without_a_consent_in_force(tmp_path):
    ctx = build(tmp_path)
    scope = bank_scope(ctx)
    with pytest.raises(consent.NoConsent):
        pack.issue(ctx, scope, "E1", "2024-01", now=NOW, report=False)
    c = consent.request(ctx.engine, "p", "bank", "E1", "loan_application", ["energy", "emissions"], "2024-01",
                        "2024-02", NOW + pd.Timedelta(hours=2), now=NOW)
    with pytest.raises(consent.NoConsent):  # requested, not granted
        pack.issue(ctx, scope, "E1", "2024-01", now=NOW, report=False)
    consent.grant(ctx.engine, c.id, "alpha", now=NOW)
    pack.issue(ctx, bank_scope(ctx), "E1", "2024-01", now=NOW, report=False)  # in force: a pack
    with pytest.raises(consent.NoConsent, match="2024-03"):  # a month outside the consent
        pack.issue(ctx, bank_scope(ctx), "E1", "2024-03", now=NOW, report=False)
    with pytest.raises(consent.NoConsent):  # another enterprise
        pack.issue(ctx, bank_scope(ctx), "E2", "2024-01", now=NOW, report=False)
    with pytest.raises(consent.NoConsent):  # another bank
        pack.issue(ctx, bank_scope(ctx, "bank2"), "E1", "2024-01", now=NOW, report=False)
    with pytest.raises(consent.NoConsent):  # expired
        pack.issue(ctx, bank_scope(ctx), "E1", "2024-01", now=NOW + pd.Timedelta(hours=3), report=False)
    consent.revoke(ctx.engine, c.id, "alpha", now=NOW)
    with pytest.raises(consent.NoConsent):  # revoked
        pack.issue(ctx, bank_scope(ctx), "E1", "2024-01", now=NOW, report=False)
    from portal import audit

    log = audit.events(ctx.engine, 1000)
    assert (log["action"] == "refused").sum() >= 7
    assert (log["action"] == "consent_export").sum() == 1
    ctx.store.close()


def test_an_enterprise_or_regulator_gets_no_pack(granted):
    for name in ("alpha", "reg"):
        with pytest.raises(consent.NoConsent, match="only a bank"):
            pack.issue(granted, bank_scope(granted, name), "E1", "2024-03", now=NOW, report=False)


def test_periods_are_a_year_or_a_month():
    with pytest.raises(pack.PackError, match="a year"):
        pack.parse_period("2024-3-1", "Asia/Shanghai", NOW)
    with pytest.raises(pack.PackError, match="not begun"):
        pack.parse_period("2025", "Asia/Shanghai", NOW)
    p = pack.parse_period("2024", "Asia/Shanghai", NOW)
    assert [m.month for m in p.months] == [1, 2, 3, 4] and not p.complete
    assert p.end == pd.Timestamp("2024-04-10 12:00", tz="Asia/Shanghai")
    assert pack.parse_period("2024-02", "Asia/Shanghai", NOW).complete
