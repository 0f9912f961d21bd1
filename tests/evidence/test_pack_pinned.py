"""The pack's data files pinned by their SHA-256 on a small synthetic park (like bench.evidence's: 12 enterprises, four
of them plastics makers, two bracelets each, 100 days of 2024), so that a change made for speed provably changes no
figure: every data file of the pack must stay byte-identical. The readings are quantised to 1/16 of a unit so that
every sum of them is exact: the store's roll-ups add in whatever order its threads take (two builds of the same
readings may differ in the last bit of a day's energy), which is not what these hashes guard. The hashes were taken
from the code before the speed-up of the evidence pack (gather, utilisation, risk indicators, peers); a deliberate
change of a figure updates them here, with the reason in its commit."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pandas as pd
import pytest

from bench import evidence as bench
from park.metadata import create_engine_from_url
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.synth import synth_park

PINNED = {
    "capacity_monthly.csv": "0650bb15b847dc9e221447fb8debb01cd049dd02a4c3cc030427b3b3168083f7",
    "crosscheck.csv": "490655bc91306b483e202aebe5fe35b91c1ff7bafa0c8e9d94200436b7a38fd0",
    "emissions_lines.csv": "22a3664021888182bb2ba3d8eb9fc955ca48ef56f7635051fe05b289a42b0f2e",
    "emissions_monthly.csv": "a8ad289590a822eaa0f9a0b9f276ca3cf64a2650b302fd35528cd11a406f35d7",
    "energy_daily.csv": "2c83e30d0f2c8c3590f2867dbec470b707d6837b55f7d7f17feb4d1ac19b33ed",
    "factors.csv": "0a31bdb8be34bc8aed92ab6507a76715f2a1916204d5d5587dc636aca623a320",
    "output_monthly.csv": "c9de0975bfafafa6cd24d7c9ee36cd68d6d4e5a838134c75cd7452ea726a377d",
    "restatements.csv": "fcbd7aa3d06e44e083692c591d4a4335636b508e893a62a3a4239837feb044fb",
    "risk_indicators.csv": "8bbd8e5fcacc37b2186b78f7cd1c94d57e3e9c5505f49365bf342e3a59e57aad",
    "shutdown_signals.csv": "409cbdbb0c89229f9d358878826e428938faa706424ae912089f202b78613599",
    "summary.json (without meter_vs_bill)": "a51b3e38678ebe4e72e44490da28b8f7d5a7b590fac758e7c3e2a758f4d38f1f",
    "trust.csv": "70284e7a806d70279be0ae28f1a72d6ab89e4a165d63dc41f6941ce5fd713561",
    "utilisation_daily.csv": "a87919612957f6a7977a63637c59e15c21ecbe912bb7ebb2f616c4060a562d17",
}
NOW = pd.Timestamp("2024-04-10 12:00", tz="Asia/Shanghai")


def build(park, store_path, meta_path, key_dir, enterprise: str) -> None:
    """bench.evidence.build over 100 days, with quantised readings (its own synth functions, wrapped)."""
    from park import synth

    def quantised(frames):
        for f in frames:
            yield f.assign(value=(f["value"] * 16).round() / 16)

    real = synth.synth_readings, synth.synth_currents
    synth.synth_readings = lambda *a, **k: quantised(real[0](*a, **k))
    synth.synth_currents = lambda *a, **k: quantised(real[1](*a, **k))
    try:
        bench.build(park, store_path, meta_path, key_dir, 2024, enterprise, 100)
    finally:
        synth.synth_readings, synth.synth_currents = real


def pack_files(tmp, also=None) -> tuple[dict[str, bytes], object]:
    """The pack's files (no PDF) of the park's first plastics maker for 2024, as the bank API builds it, and what
    `also(scope, enterprise, period)` returns on the same store (None without it)."""
    from portal.auth import load_user
    from portal.context import PortalContext
    from portal.evidence import consent, keys, pack
    from portal.evidence.indicators import baseline_for, savings_for
    from portal.scope import scope_for

    park = synth_park(12, 2, bench.SEED, devices_per_enterprise=2)
    ent = next(e.id for e in park.enterprises if e.industry == "plastics")
    store_path, meta_path = tmp / "ts.duckdb", tmp / "meta.db"
    build(park, store_path, meta_path, tmp, ent)
    settings = Settings(data_dir=tmp, metadata_url=f"sqlite:///{meta_path}", embedded_path=store_path)
    engine = create_engine_from_url(settings.metadata_url, create_tables=False)
    store = EmbeddedStore(store_path, park.catalog(), park.timezone)
    try:
        ctx = PortalContext(settings, engine, park, store, clock=lambda: NOW)
        scope = scope_for(ctx, load_user(engine, "bench-bank"), "/api/v1/evidence")
        period = pack.parse_period("2024", park.tz, NOW)
        grant = consent.covering(engine, "bench-bank", ent, list(period.months), "emissions", now=NOW)
        es = scope.enterprise(ent)
        data = pack.gather(es, period)
        data.savings, data.savings_note = savings_for(es, data, grant)
        data.baseline, data.baseline_summary = baseline_for(es, data, grant)
        restated = pack.restatements(engine, park.id, ent, pack.month_figures(data.monthly))
        key_id, private = keys.active_key(engine, park.id, tmp)
        blob, _ = pack.build(data, park=park, consent_row=grant, issued_to="bench-bank", key_id=key_id,
                             private_key=private, generated_at=NOW.to_pydatetime(), restated=restated,
                             public_keys_url=keys.PUBLIC_KEYS_PATH, report=False)
        extra = also(scope, ent, period) if also else None
    finally:
        store.close()
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return {n: z.read(n) for n in z.namelist()}, extra


def peers_both_ways(scope, enterprise: str, period) -> tuple[pd.DataFrame, pd.DataFrame]:
    """scope.peer_months, and the same frame from the park's whole accounting cut to the industry (how peer_months
    computed it before it accounted the industry alone)."""
    from portal.auth import Role, User

    fast = scope.peer_months(enterprise, period.start, period.end)  # first: a park-wide accounting cached
    park = scope.park                                                # before would serve it (cut)
    industry = next(e.industry for e in park.enterprises if e.id == enterprise)
    group = [e.id for e in park.enterprises if e.industry == industry]
    whole = User(username="test:peers", park_id=park.id, role=Role.REGULATOR, enterprise_id=None)
    tot = scope._access.accounts(whole, period.start, period.end, "month").totals_at("enterprise")
    tot = tot[tot["enterprise"].isin(group)]
    out = scope._access.output_values(whole, period.start, period.end)
    out = out[out["enterprise"].isin(group)].assign(month=lambda f: pd.to_datetime(f["month"]).dt.tz_localize(park.tz))
    frame = pd.DataFrame({"enterprise": tot["enterprise"], "month": tot["period_start"],
                          "energy_tce": tot["energy_tce"]})
    frame = frame.merge(out[["enterprise", "month", "output_value_10k_cny"]], on=["enterprise", "month"],
                        how="left").rename(columns={"output_value_10k_cny": "output"})
    alias = {e: f"peer-{i}" for i, e in enumerate(sorted(set(group) - {enterprise}), start=1)}
    alias[enterprise] = enterprise
    frame = frame.assign(enterprise=frame["enterprise"].map(alias), industry=industry).reset_index(drop=True)
    return fast, frame


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[dict[str, bytes], tuple[pd.DataFrame, pd.DataFrame]]:
    return pack_files(tmp_path_factory.mktemp("pinned"), also=peers_both_ways)


@pytest.fixture(scope="module")
def files(built) -> dict[str, bytes]:
    return built[0]


def test_peers_are_the_park_accounting_cut_to_the_industry(built):
    fast, whole = built[1]
    assert len(set(fast["enterprise"])) == 4 and len(fast) == 16  # the plastics maker and 3 peers, 4 months
    key = ["enterprise", "month"]
    pd.testing.assert_frame_equal(fast.sort_values(key).reset_index(drop=True),
                                  whole.sort_values(key).reset_index(drop=True), check_exact=True)


def digests(files: dict[str, bytes]) -> dict[str, str]:
    out = {n: hashlib.sha256(b).hexdigest() for n, b in files.items() if n.endswith(".csv") and n != "bill_check.csv"}
    summary = json.loads(files["summary.json"])
    summary.pop("meter_vs_bill", None)  # the meter-against-bill check is another part's (bill_check)
    out["summary.json (without meter_vs_bill)"] = hashlib.sha256(
        json.dumps(summary, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return out


def test_the_pack_exercises_peers_bracelets_and_signals(files):
    risk = files["risk_indicators.csv"].decode("utf-8-sig")
    assert ",3," in risk or ",3.0," in risk, risk  # three anonymised peers compared
    assert len(files["utilisation_daily.csv"].splitlines()) > 150  # two bracelets, 100 days
    assert len(files["capacity_monthly.csv"].splitlines()) == 5  # header + January..April


def test_every_data_file_is_byte_identical_to_the_pinned_one(files):
    assert digests(files) == PINNED
