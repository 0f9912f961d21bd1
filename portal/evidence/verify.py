"""Verify an evidence pack offline: signature, hashes, and (with `recompute`) every headline figure recomputed from
the pack's own data files and factor rows.

Needs nothing but the pack (and, to establish that the key is the park's, the park's public key or its published
key list): no database, no store, no ParkCarbon carbon code.  This module uses only the standard library and
`cryptography`, so it can be read, and run, on its own.

Each failure is one `Problem` with a stable code and a sentence naming the file and what is wrong:

    pack.unreadable, pack.duplicate_name, pack.bad_name, manifest.missing, manifest.invalid, signature.missing,
    key.mismatch (--key is not the key the manifest names), key.pack_key_mismatch, key.unknown, key.revoked,
    signature.invalid, file.missing, file.added, file.changed, file.swapped, sums.mismatch,
    recompute.difference, recompute.unreadable
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNED = "manifest.json"
SIGNATURE = "manifest.sig"
CO2_PER_C = 44.0 / 12.0
GJ_PER_TCE = 29.307
NOT_ENERGY = frozenset({"water"})  # carbon.energy.NOT_ENERGY: water meters are in energy_daily.csv, not in the accounts
REL_TOL = 1e-9
HEADLINE = ("energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e", "total_location_t_co2e",
            "total_market_t_co2e")


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    file: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclass
class Result:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    manifest: dict | None = None
    recomputed: dict = field(default_factory=dict)
    compared: int = 0  # figures recomputed and compared

    @property
    def ok(self) -> bool:
        return not self.problems

    def fail(self, code: str, message: str, file: str = "") -> None:
        self.problems.append(Problem(code, message, file))


def fingerprint(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).hexdigest()


def load_public(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def verify(pack: bytes | str | Path, *, key_pem: bytes | None = None, keys_json: bytes | None = None,
           recompute: bool = False) -> Result:
    """Check a pack; `key_pem`: the park's public key (else the pack's signing_key.pem, whose key id is then only
    as good as its comparison with the park's published list); `keys_json`: the park's published key list (a
    revoked or unknown key fails)."""
    res = Result()
    blob = Path(pack).read_bytes() if isinstance(pack, str | Path) else pack
    try:
        z = zipfile.ZipFile(io.BytesIO(blob))
        names = z.namelist()
        files = {n: z.read(n) for n in names}
    except (zipfile.BadZipFile, OSError, ValueError, KeyError) as exc:
        res.fail("pack.unreadable", f"the pack is not a readable zip archive: {exc}")
        return res
    for n in sorted({n for n in names if names.count(n) > 1}):
        res.fail("pack.duplicate_name", f"the archive holds {names.count(n)} members named {n}: one was added", n)
    for n in names:
        if "/" in n or "\\" in n or n.startswith("."):
            res.fail("pack.bad_name", f"member {n!r} is not a plain file name", n)
    if SIGNED not in files:
        res.fail("manifest.missing", f"{SIGNED} is missing: nothing says what the pack should hold", SIGNED)
        return res
    try:
        manifest = json.loads(files[SIGNED].decode("utf-8"))
        listed: dict[str, str] = manifest["files"]
        key_id = manifest["key_id"]
    except (ValueError, KeyError, TypeError) as exc:
        res.fail("manifest.invalid", f"{SIGNED} cannot be read as a pack manifest: {exc}", SIGNED)
        return res
    res.manifest = manifest
    _check_signature(res, files, key_id, key_pem, keys_json)
    _check_files(res, files, listed)
    if recompute:
        recompute_figures(res, files)
    return res


def _check_signature(res: Result, files: dict[str, bytes], key_id: str, key_pem: bytes | None,
                     keys_json: bytes | None) -> None:
    try:
        if key_pem is not None:
            key = load_public(key_pem)
            if fingerprint(key) != key_id:
                res.fail("key.mismatch", f"the pack was signed by key {key_id}, not by the key given "
                         f"({fingerprint(key)}): wrong key, or the manifest's key id was changed", SIGNED)
                return
        else:
            if "signing_key.pem" not in files:
                res.fail("file.missing", "signing_key.pem is missing and no --key was given", "signing_key.pem")
                return
            key = load_public(files["signing_key.pem"])
            if fingerprint(key) != key_id:
                res.fail("key.pack_key_mismatch", f"signing_key.pem (key id {fingerprint(key)}) is not the key "
                         f"the manifest names ({key_id})", "signing_key.pem")
                return
            res.notes.append(f"key taken from the pack: its id {key_id} must be on the park's published list "
                             "(--key or --keys establishes that it is the park's)")
    except ValueError as exc:
        res.fail("key.unreadable", f"the public key cannot be read: {exc}")
        return
    if keys_json is not None:
        try:
            published = {k["key_id"]: k for k in json.loads(keys_json)["keys"]}
        except (ValueError, KeyError, TypeError) as exc:
            res.fail("key.list_unreadable", f"the published key list cannot be read: {exc}")
            return
        entry = published.get(key_id)
        if entry is None:
            res.fail("key.unknown", f"key {key_id} is not among the park's published keys: not the park's key",
                     SIGNED)
        elif entry.get("revoked_at"):
            res.fail("key.revoked", f"key {key_id} was revoked at {entry['revoked_at']} "
                     f"({entry.get('revoked_reason') or 'no reason given'}): its signatures are not valid", SIGNED)
    if SIGNATURE not in files:
        res.fail("signature.missing", f"{SIGNATURE} is missing: the manifest is not signed", SIGNATURE)
        return
    try:
        key.verify(files[SIGNATURE], files[SIGNED])
    except InvalidSignature:
        res.fail("signature.invalid", f"the signature in {SIGNATURE} does not verify {SIGNED} with key {key_id}: "
                 "the manifest (or the signature) was changed", SIGNED)


def _check_files(res: Result, files: dict[str, bytes], listed: dict[str, str]) -> None:
    present = {n: hashlib.sha256(b).hexdigest() for n, b in files.items() if n not in (SIGNED, SIGNATURE)}
    by_hash = {h: n for n, h in listed.items()}
    for n in sorted(set(listed) - set(present)):
        res.fail("file.missing", f"{n} is listed in the manifest but missing from the pack: a file was removed", n)
    for n in sorted(set(present) - set(listed)):
        res.fail("file.added", f"{n} is in the pack but not in the manifest: a file was added", n)
    for n in sorted(set(present) & set(listed)):
        if present[n] != listed[n]:
            other = by_hash.get(present[n])
            if other and other != n:
                res.fail("file.swapped", f"{n} holds the content the manifest lists for {other}: files swapped "
                         "or renamed", n)
            else:
                res.fail("file.changed", f"{n} was changed: its SHA-256 is {present[n]}, the manifest says "
                         f"{listed[n]}", n)
    if "SHA256SUMS" in files:
        for line in files["SHA256SUMS"].decode("utf-8", "replace").splitlines():
            digest, _, name = line.partition("  ")
            if name in listed and digest != listed[name]:
                res.fail("sums.mismatch", f"SHA256SUMS gives {name} a hash other than the manifest's", "SHA256SUMS")


# ---- recomputation ----------------------------------------------------------------------------------------------
def _csv(files: dict[str, bytes], name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(files[name].decode("utf-8-sig"), newline="")))


def _f(text: str | None) -> float:
    return float(text) if text not in (None, "") else math.nan


def _same(a: float, b: float) -> bool:
    if (a is None or math.isnan(a)) and (b is None or math.isnan(b)):
        return True
    if a is None or b is None or math.isnan(a) or math.isnan(b):
        return False
    return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b))


def _nsum(values) -> float:
    vals = [v for v in values if not math.isnan(v)]
    return math.fsum(vals) if vals else math.nan


def recompute_line(line: dict[str, str], factor: dict[str, float]) -> dict[str, float]:
    """tce, Scope 1, Scope 2 location- and market-based of one accounting line from its activity and factor rows
    (docs/methodology.md section 3; docs/evidence.md)."""
    role, q, sign = line["role"], _f(line["q_base"]), _f(line["sign"])
    heat = _f(line["heat_gj"])  # signed

    def ids(col: str) -> list[str]:
        return [i for i in line[col].split("|") if i]

    def f(i: str) -> float:
        if i not in factor:
            raise KeyError(f"factor row {i} is not in factors.csv")
        return factor[i]

    out = {}
    tce_ids = ids("tce_factor")
    if role in ("purchased_heat", "purchased_steam"):
        out["tce"] = heat * f(tce_ids[-1]) if tce_ids else math.nan
    elif tce_ids and tce_ids[0].startswith("fuel/"):
        out["tce"] = q * sign * f(tce_ids[0]) / GJ_PER_TCE
    elif tce_ids:
        out["tce"] = q * sign * f(tce_ids[0])
    else:
        out["tce"] = math.nan
    em = ids("emission_factors")
    if role == "fuel" and len(em) >= 3:
        co2 = q * f(em[0]) * f(em[1]) * f(em[2]) * CO2_PER_C
        bio = f(em[3]) if len(em) > 3 else 0.0
        out["scope1_t_co2e"] = co2 * (1.0 - bio)
    else:
        out["scope1_t_co2e"] = 0.0 if not math.isnan(q) else math.nan
    imports = line["flow"] == "import"
    if role == "grid_electricity":
        out["scope2_location_t_co2e"] = q * sign * f(em[0])
        mk = ids("market_factors")
        green = _f(line["green_kwh"]) if line["green_kwh"] else 0.0
        out["scope2_market_t_co2e"] = ((q - green) * f(mk[0])) if imports else 0.0
    elif role in ("purchased_heat", "purchased_steam"):
        out["scope2_location_t_co2e"] = heat * f(em[-1])
        out["scope2_market_t_co2e"] = out["scope2_location_t_co2e"] if imports else 0.0
    else:
        zero = 0.0 if not math.isnan(q) else math.nan
        out["scope2_location_t_co2e"] = out["scope2_market_t_co2e"] = zero
    return out


def recompute_figures(res: Result, files: dict[str, bytes]) -> None:
    """Recompute every headline figure from the data files and factor rows, and list each difference."""
    def differ(what: str, stated: float, computed: float, file: str) -> None:
        res.compared += 1
        if not _same(stated, computed):
            res.fail("recompute.difference", f"{what}: stated {stated!r}, recomputed {computed!r}", file)

    try:
        factor = {r["id"]: float(r["per_base"]) for r in _csv(files, "factors.csv")}
        lines = _csv(files, "emissions_lines.csv")
        monthly = {r["month"]: r for r in _csv(files, "emissions_monthly.csv")}
        summary = json.loads(files["summary.json"])
        energy = _csv(files, "energy_daily.csv")
        output = _csv(files, "output_monthly.csv")
    except (KeyError, ValueError) as exc:
        res.fail("recompute.unreadable", f"a data file needed to recompute is missing or unreadable: {exc}")
        return
    per_month: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    per_carrier: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    store_qty: dict[tuple[str, str], list[float]] = defaultdict(list)
    for n, line in enumerate(lines, start=2):
        where = f"emissions_lines.csv line {n} ({line['month']} {line['carrier']} {line['flow']})"
        try:
            got = recompute_line(line, factor)
        except (KeyError, IndexError) as exc:
            res.fail("recompute.difference", f"{where}: cannot recompute: {exc}", "emissions_lines.csv")
            continue
        for k, v in got.items():
            differ(f"{where}: {k}", _f(line[k]), v, "emissions_lines.csv")
        got["total_location_t_co2e"] = got["scope1_t_co2e"] + got["scope2_location_t_co2e"]
        got["total_market_t_co2e"] = got["scope1_t_co2e"] + got["scope2_market_t_co2e"]
        got["energy_tce"] = got.pop("tce")
        for k, v in got.items():
            per_month[line["month"]][k].append(v)
            per_carrier[line["carrier"]][k].append(v)
        per_carrier[line["carrier"]]["quantity"].append(_f(line["quantity"]) * _f(line["sign"]))
        if line["source"] == "store":
            store_qty[(line["month"], line["carrier"])].append(_f(line["quantity"]) * _f(line["sign"]))
    totals: dict[str, list[float]] = defaultdict(list)
    for month, row in sorted(monthly.items()):
        for k in HEADLINE:
            v = _nsum(per_month[month][k]) if month in per_month else math.nan
            differ(f"emissions_monthly.csv {month} {k}", _f(row[k]), v, "emissions_monthly.csv")
            totals[k].append(v)
            stated = (summary.get("monthly", {}).get(month) or {}).get(k)
            differ(f"summary.json monthly {month} {k}", math.nan if stated is None else stated, v, "summary.json")
    for k in HEADLINE:
        v = _nsum(totals[k])
        res.recomputed[k] = v
        stated = summary["totals"].get(k)
        differ(f"summary.json totals {k}", math.nan if stated is None else stated, v, "summary.json")
    for c in summary.get("by_carrier", []):
        got = per_carrier.get(c["carrier"], {})
        for k in ("quantity", "energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e"):
            stated = c.get(k)
            differ(f"summary.json by_carrier {c['carrier']} {k}", math.nan if stated is None else stated,
                   _nsum(got.get(k, [])), "summary.json")
    daily: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in energy:
        if r["carrier"] not in NOT_ENERGY:  # metered and listed, but never an accounting line
            daily[(r["date"][:7], r["carrier"])].append(_f(r["quantity"]))
    for key in sorted(set(daily) | set(store_qty)):
        differ(f"energy {key[0]} {key[1]}: metered lines of emissions_lines.csv against energy_daily.csv",
               _nsum(store_qty.get(key, [])), _nsum(daily.get(key, [])), "energy_daily.csv")
    _recompute_intensities(res, summary, output, differ)
    if "baseline_monthly.csv" in files:
        _recompute_baseline(res, summary, _csv(files, "baseline_monthly.csv"), differ)
    if "savings.csv" in files:
        _recompute_savings(res, summary.get("savings") or {}, _csv(files, "savings.csv"), factor)
    if "bill_check.csv" in files:
        recompute_bill_check(res, files)


def recompute_bill_check(res: Result, files: dict[str, bytes]) -> None:
    """Meter against utility bill (bill_check.csv): each row's difference (metered - billed), relative difference
    and status (carbon.trust.meter_vs_bill's rules: no_bill, no_meter, agree within the tolerance, else
    incomplete_meter when the meter missed intervals, else differ); a billing period of whole park-local days has
    its metered total and intervals recomputed from energy_daily.csv; the status counts of summary.json."""
    def differ(what: str, stated, computed) -> None:
        res.compared += 1
        same = _same(stated, computed) if isinstance(computed, float) else stated == computed
        if not same:
            res.fail("recompute.difference", f"{what}: stated {stated!r}, recomputed {computed!r}", "bill_check.csv")

    try:
        checks = _csv(files, "bill_check.csv")
        energy = _csv(files, "energy_daily.csv")
        stated_counts = (json.loads(files["summary.json"]).get("meter_vs_bill") or {}).get("status_counts") or {}
    except (KeyError, ValueError) as exc:
        res.fail("recompute.unreadable", f"a data file needed to recompute the bill check is unreadable: {exc}")
        return
    daily: dict[tuple[str, str], dict[str, str]] = {(r["meter"], r["date"]): r for r in energy}
    counts: dict[str, int] = defaultdict(int)
    per_meter: dict[str, list[float]] = defaultdict(list)
    for n, r in enumerate(checks, start=2):
        where = f"bill_check.csv line {n} ({r['meter']} {r['period_start']} to {r['period_end']})"
        metered, billed, tol = _f(r["metered"]), _f(r["billed"]), _f(r["tolerance"])
        start, end = r["period_start"], r["period_end"]
        if start[11:19] == "00:00:00" and end[11:19] == "00:00:00" and start[19:] == end[19:]:  # whole local days
            days = [k for k in daily if k[0] == r["meter"] and start[:10] <= k[1] < end[:10]]
            differ(f"{where}: metered from energy_daily.csv", metered,
                   _nsum([_f(daily[k]["quantity"]) for k in days]))
            for c in ("intervals_expected", "intervals_present"):
                differ(f"{where}: {c} from energy_daily.csv", int(r[c]), sum(int(daily[k][c]) for k in days))
        diff = metered - billed
        differ(f"{where}: difference", _f(r["difference"]), diff)
        rel = diff / billed if not math.isnan(billed) and billed != 0 else math.nan
        differ(f"{where}: relative_difference", _f(r["relative_difference"]), rel)
        agree = (not math.isnan(rel) and abs(rel) <= tol) or (billed == 0 and metered == 0)
        coverage = _f(r["coverage"])
        status = ("no_bill" if math.isnan(billed) else "no_meter" if math.isnan(metered) else "agree" if agree
                  else "incomplete_meter" if coverage < 1 else "differ")
        differ(f"{where}: status", r["status"], status)
        counts[status] += 1
        if not math.isnan(diff):
            per_meter[r["meter"]].append(diff)
    for k in sorted(set(counts) | set(stated_counts)):
        res.compared += 1
        if stated_counts.get(k, 0) != counts.get(k, 0):
            res.fail("recompute.difference", f"summary.json meter_vs_bill status {k}: stated "
                     f"{stated_counts.get(k, 0)}, recomputed {counts.get(k, 0)}", "summary.json")
    res.recomputed["bill_check_differences"] = {m: math.fsum(v) for m, v in sorted(per_meter.items())}


def _recompute_intensities(res: Result, summary: dict, output: list[dict[str, str]], differ) -> None:
    stated = summary.get("intensities") or {}
    months = list(summary.get("monthly", {}))
    have = {r["month"]: _f(r["output_value_10k_cny"]) for r in output}
    missing = [m for m in months if m not in have or math.isnan(have[m])]
    value = math.fsum(have[m] for m in months) if not missing else math.nan
    ok = not missing and value > 0
    rec = {"output_value_10k_cny": value if not missing else math.nan,
           "t_co2e_per_10k_cny": res.recomputed.get("total_location_t_co2e", math.nan) / value if ok else math.nan,
           "tce_per_10k_cny": res.recomputed.get("energy_tce", math.nan) / value if ok else math.nan}
    for k, v in rec.items():
        s = stated.get(k)
        differ(f"summary.json intensities {k}", math.nan if s is None else s, v, "summary.json")
        res.recomputed[k] = v


def _recompute_baseline(res: Result, summary: dict, rows: list[dict[str, str]], differ) -> None:
    """The baseline's intensities and their change from baseline_monthly.csv (the baseline months' totals as
    accounted; their own lines are in a pack of the baseline period) and this period's recomputed intensities."""
    stated = (summary.get("intensities") or {}).get("baseline") or {}
    value = math.fsum(_f(r["output_value_10k_cny"]) for r in rows)
    ok = bool(rows) and not math.isnan(value) and value > 0
    rec = {"energy_tce": math.fsum(_f(r["energy_tce"]) for r in rows),
           "total_location_t_co2e": math.fsum(_f(r["total_location_t_co2e"]) for r in rows)}
    rec["t_co2e_per_10k_cny"] = rec["total_location_t_co2e"] / value if ok else math.nan
    rec["tce_per_10k_cny"] = rec["energy_tce"] / value if ok else math.nan
    for k in ("t_co2e_per_10k_cny", "tce_per_10k_cny"):
        now = res.recomputed.get(k, math.nan)
        rec[f"change_{k}"] = now / rec[k] - 1 if rec[k] and not math.isnan(rec[k]) else math.nan
    for k, v in rec.items():
        s = stated.get(k)
        differ(f"summary.json intensities baseline {k}", math.nan if s is None else s, v, "summary.json")
        res.recomputed[f"baseline_{k}"] = v


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """x with a x = b (Gaussian elimination with partial pivoting; a is small and square)."""
    n = len(b)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        if m[c][c] == 0:
            raise ValueError("the baseline regressors are collinear")
        for r in range(n):
            if r != c:
                k = m[r][c] / m[c][c]
                m[r] = [x - k * y for x, y in zip(m[r], m[c], strict=True)]
    return [m[i][n] / m[i][i] for i in range(n)]


def ols(rows: list[list[float]], y: list[float]) -> list[float]:
    """Least-squares coefficients (intercept first) of y on the rows' regressors, by the normal equations."""
    x = [[1.0, *r] for r in rows]
    p = len(x[0])
    xtx = [[math.fsum(xi[i] * xi[j] for xi in x) for j in range(p)] for i in range(p)]
    xty = [math.fsum(xi[i] * yi for xi, yi in zip(x, y, strict=True)) for i in range(p)]
    return _solve(xtx, xty)


def _recompute_savings(res: Result, stated: dict, periods: list[dict[str, str]], factor: dict[str, float]) -> None:
    """IPMVP Option C from savings.csv alone: refit the baseline regression (consumption on the regressors the
    summary names), apply it to the reporting periods, and compare the adjusted baseline, the reporting
    consumption, the energy saved, its tce (the coefficient's row in factors.csv) and the CO2 avoided."""
    unit, regressors = stated.get("unit", ""), stated.get("regressors") or []
    base = [p for p in periods if p["role"] == "baseline"]
    rep = [p for p in periods if p["role"] == "reporting"]
    try:
        beta = ols([[float(p[r]) for r in regressors] for p in base], [float(p["consumption"]) for p in base])
    except (ValueError, KeyError) as exc:
        res.fail("recompute.difference", f"savings: cannot refit the baseline from savings.csv: {exc}",
                 "savings.csv")
        return
    adjusted = math.fsum(beta[0] + math.fsum(b * float(p[r]) for b, r in zip(beta[1:], regressors, strict=True))
                         for p in rep)
    consumption = math.fsum(float(p["consumption"]) for p in rep)
    saved = adjusted - consumption
    got = {f"adjusted_baseline_{unit}": adjusted, f"reporting_consumption_{unit}": consumption,
           f"energy_saved_{unit}": saved,
           "energy_saved_tce": saved * factor.get(stated.get("tce_factor_id", ""), math.nan),
           "co2_avoided_t_co2e": saved * factor.get(stated.get("co2_factor_id", ""), math.nan)}
    for k, v in got.items():
        s = stated.get(k)
        # a regression refitted in another order of summation agrees to about 1e-9 of the consumption
        res.compared += 1
        if s is None or not abs(s - v) <= 1e-7 * max(1.0, abs(adjusted)):
            res.fail("recompute.difference", f"savings {k}: stated {s!r}, recomputed {v!r}", "savings.csv")
        res.recomputed[f"savings_{k}"] = v


def report(res: Result) -> str:
    """The verification result as text: what was checked and exactly what failed."""
    m = res.manifest or {}
    head = []
    if m:
        head.append(f"pack: {m.get('enterprise', {}).get('id')} {m.get('period', {}).get('label')}, consent "
                    f"#{m.get('consent', {}).get('id')}, key {m.get('key_id')}, generated {m.get('generated_at')}")
    if res.ok:
        head.append("OK: signature valid, every file's SHA-256 as in the manifest, no file added or missing"
                    + (f"; {res.compared} figures recomputed, no difference" if res.compared else ""))
    else:
        head.append(f"FAILED: {len(res.problems)} problem(s)")
        head.extend(f"  {p}" for p in res.problems)
    head.extend(f"note: {n}" for n in res.notes)
    return "\n".join(head)
