"""The evidence pack: one zip per enterprise and period, signed with the park's Ed25519 key.

Files (docs/evidence.md):

    README.txt              how to verify, with our command and with openssl + sha256sum alone
    report.pdf              the bilingual report (portal/evidence/report.py over portal/pdf.py)
    summary.json            headline figures, as the report shows them
    energy_daily.csv        energy per meter and park-local day, intervals measured / estimated / missing, quality
    emissions_monthly.csv   Scope 1, Scope 2 location- and market-based, tce per month (the enterprise's totals)
    emissions_lines.csv     the accounting lines (carrier, flow, month) with activity, factor ids and results
    factors.csv             every factor row used, with value, unit, value per base unit, source, publication
    output_monthly.csv      declared output value per month (自证: declared by the enterprise)
    utilisation_daily.csv   equipment utilisation per bracelet and day
    baseline_monthly.csv    the same months a year earlier, when the consent covers them (baseline intensities)
    restatements.csv        figures that differ from those in a pack issued before
    signing_key.pem         the public key that signed (compare its key id with the park's published list)
    SHA256SUMS              `sha256sum -c` format, every file above
    manifest.json           enterprise, period, consent, generated-at, versions, key id, SHA-256 of every file
    manifest.sig            Ed25519 signature of manifest.json (64 raw bytes)

Deterministic: the data files, the report and their hashes depend only on the data (the report's date is the data's
"as of", not the build time; CSV numbers are written as the shortest text that reads back to the same float);
only manifest.json (generated_at) and manifest.sig change between two builds of unchanged data.  The zip itself
has fixed member times and order.

Data is read through the request's scope (portal.scope.Scope and its EnterpriseScope): a bank's scope holds only
enterprises that granted it consent, and `issue` checks the consent covers the period before reading anything.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from importlib import metadata

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.evidence import consent as consents
from portal.evidence import keys
from portal.evidence.tables import PackLogRow

FORMAT = "parkcarbon-evidence-pack/1"
METHODOLOGY = "ParkCarbon carbon methodology (docs/methodology.md): GB/T 32150, GB/T 2589-2020, GHG Protocol Scope 2"
DATA_FILES = ("energy_daily.csv", "emissions_monthly.csv", "emissions_lines.csv", "factors.csv", "output_monthly.csv",
              "utilisation_daily.csv", "restatements.csv")
HEADLINE = ("energy_tce", "scope1_t_co2e", "scope2_location_t_co2e", "scope2_market_t_co2e", "total_location_t_co2e",
            "total_market_t_co2e")
ZIP_TIME = (2000, 1, 1, 0, 0, 0)
TOLERANCE = 1e-9  # relative: what counts as "the same figure" when comparing with an earlier pack


class PackError(ValueError):
    """A pack that cannot be built as asked (period, enterprise, data); the message says why."""


@dataclass(frozen=True)
class PackPeriod:
    label: str  # "2024" or "2024-03"
    start: pd.Timestamp  # park-local
    end: pd.Timestamp  # exclusive; the last complete quarter hour when the period is still running
    months: tuple[date, ...]
    complete: bool


def parse_period(text: str, tz, now) -> PackPeriod:
    """'YYYY' (a year) or 'YYYY-MM' (a month), to the last complete quarter hour when it is still running."""
    text = str(text).strip()
    try:
        if len(text) == 4 and text.isdigit():
            start = pd.Timestamp(int(text), 1, 1, tz=tz)
            full_end = start + pd.DateOffset(years=1)
        elif len(text) == 7 and text[4] == "-":
            start = pd.Timestamp(int(text[:4]), int(text[5:]), 1, tz=tz)
            full_end = start + pd.DateOffset(months=1)
        else:
            raise ValueError
    except ValueError:
        raise PackError(f"period {text!r} must be a year (2024) or a month (2024-03)") from None
    last = pd.Timestamp(now).tz_convert(tz).floor("15min")
    end = min(full_end, last)
    if end <= start:
        raise PackError(f"period {text} has not begun yet")
    months = tuple(d.date() for d in pd.date_range(start.tz_localize(None), end.tz_localize(None) - pd.Timedelta(1),
                                                   freq="MS"))
    if not months or months[0] != start.date():
        months = (start.date(), *months)
    return PackPeriod(text, start, end, tuple(dict.fromkeys(months)), end == full_end)


# ---- CSV -------------------------------------------------------------------------------------------------------
def number(v) -> str:
    """A number as the shortest text that reads back to the same float; '' for a missing one."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "" if math.isnan(f) else repr(f)


def cell(v) -> str:
    if isinstance(v, float | int) or (hasattr(v, "dtype") and pd.api.types.is_number(v)):
        return number(v)
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, pd.Timestamp | datetime):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, date):
        return v.isoformat()
    try:
        if pd.isna(v):
            return ""
    except (TypeError, ValueError):
        pass
    return str(v)


def to_csv(columns: list[str], rows) -> bytes:
    """UTF-8 with a byte-order mark (Excel on Windows reads the Chinese), CRLF line ends (RFC 4180: a text holding
    a CR or LF is then quoted, so it cannot split a row), minimal quoting."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([cell(v) for v in r])
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def frame_csv(frame: pd.DataFrame, columns: list[str]) -> bytes:
    """`to_csv` of the frame's columns, converted a column at a time: a float64, int64 or bool column's values are
    Python floats, ints or bools, whose `cell` is known (repr, str, true/false; NaN empty); any other column goes
    through `cell` value by value.  The same bytes as `to_csv` of the rows."""
    if not len(frame) or frame.columns.duplicated().any():
        return to_csv(columns, frame[columns].itertuples(index=False, name=None) if len(frame) else [])
    cells = []
    for c in columns:
        col = frame[c]
        kind = col.dtype.kind if isinstance(col.dtype, np.dtype) else ""
        values = col.tolist() if kind and kind in "fib" else list(col)
        if kind == "f":
            cells.append(["" if v != v else repr(v) for v in values])
        elif kind == "i":
            cells.append([str(v) for v in values])
        elif kind == "b":
            cells.append(["true" if v else "false" for v in values])
        else:
            cells.append([cell(v) for v in values])
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(columns)
    w.writerows(zip(*cells, strict=True))
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- the data ----------------------------------------------------------------------------------------------------
ENERGY_COLUMNS = ["date", "meter", "carrier", "workshop", "unit", "quantity", "intervals_expected", "intervals_present",
                  "intervals_measured", "intervals_estimated", "intervals_missing", "coverage", "quality"]
MONTHLY_COLUMNS = ["month", *HEADLINE, "renewable_tce", "biogenic_t_co2", "coverage", "complete", "reasons"]
LINE_COLUMNS = ["month", "workshop", "carrier", "flow", "source", "role", "quantity", "unit", "q_base", "sign",
                "share", "coverage", "heat_gj", "tce_factor", "tce", "emission_factors", "scope1_t_co2e",
                "biogenic_t_co2", "scope2_location_t_co2e", "grid_kwh", "green_kwh", "market_factors",
                "scope2_market_t_co2e"]
FACTOR_COLUMNS = ["id", "kind", "key", "parameter", "region", "value", "unit", "per_base", "valid_from", "valid_to",
                  "data_year", "source", "publication", "published", "verified", "origin", "note"]
OUTPUT_COLUMNS = ["month", "output_value_10k_cny", "trust"]
UTILISATION_COLUMNS = ["date", "device", "name", "running_h", "idle_h", "off_h", "unknown_h", "planned_h",
                       "running_in_shift_h", "utilisation", "coverage"]
CAPACITY_COLUMNS = ["month", "devices", "rated_kw", "utilisation", "capacity_kw", "running_rated_kwh", "coverage"]
SIGNAL_COLUMNS = ["code", "severity", "subject", "value", "threshold", "message"]
CROSSCHECK_COLUMNS = ["month", "metered_kwh", "estimated_kwh", "difference_kwh", "ratio", "tolerance",
                      "within_tolerance", "status"]
TRUST_COLUMNS = ["figure", "value", "unit", "tier", "tier_zh", "reason"]
RESTATEMENT_COLUMNS = ["month", "figure", "previously_issued", "now", "difference", "previous_pack_manifest_sha256",
                       "previous_pack_generated_at"]


def quality_code(expected: float, present: float, measured: float) -> str:
    """One code per meter-day: measured (every expected interval read), estimated (some estimated or entered by
    hand), partial (some missing), no_data."""
    if present <= 0:
        return "no_data"
    if present < expected:
        return "partial"
    return "measured" if measured >= present else "estimated"


@dataclass
class PackData:
    """Everything a pack holds, read through the scope."""

    enterprise: object  # park.model.Enterprise
    period: PackPeriod
    accounts: object  # carbon.emissions.Accounts, cut to the enterprise
    energy_daily: pd.DataFrame  # ENERGY_COLUMNS
    monthly: pd.DataFrame  # MONTHLY_COLUMNS
    lines: pd.DataFrame  # LINE_COLUMNS
    factors: pd.DataFrame  # FACTOR_COLUMNS
    output: pd.DataFrame  # OUTPUT_COLUMNS
    utilisation: pd.DataFrame  # UTILISATION_COLUMNS
    carriers: pd.DataFrame  # carbon.summary.carrier_figures
    totals: dict
    intensities: dict
    meters: list
    devices: list
    rated_kw: dict | None = None  # per bracelet-monitored device (carbon.risk.rated_kw_estimate)
    trust: pd.DataFrame | None = None  # portal.evidence.indicators.TRUST_COLUMNS
    risk: pd.DataFrame | None = None  # carbon.risk.INDICATOR_COLUMNS
    capacity: pd.DataFrame | None = None  # carbon.risk.capacity_scale
    signals: pd.DataFrame | None = None  # carbon.risk.SIGNAL_COLUMNS
    savings: object | None = None  # carbon.savings.Savings of the consent's financed project
    savings_note: str = ""  # why there are no savings figures
    quota: dict | None = None  # the enterprise's quota position for the period's year at its end (carbon.quota)
    crosscheck: pd.DataFrame | None = None  # carbon.trust.meter_vs_bracelets per month (bracelets vs the meters)
    baseline: pd.DataFrame | None = None  # indicators.BASELINE_COLUMNS: the same months a year earlier
    baseline_summary: dict | None = None  # the baseline's intensities and their change, or why there is none
    bill_check: dict | None = None  # meter against utility bill (互证): bill_check()


def gather(es, period: PackPeriod) -> PackData:
    """Read and compute what the pack holds for the enterprise scope `es` (portal.enterprise_scope.EnterpriseScope)."""
    from carbon.summary import carrier_figures, totals
    scope = es.scope
    park = scope.park
    ent = next(e for e in park.enterprises if e.id == es.enterprise)
    start, end = period.start, period.end
    acc = es.accounts(start, end, "month")
    meters = [m for m in park.meters if m.enterprise == ent.id]
    carrier_of = {m.id: (str(m.carrier), m.workshop or "", m.unit) for m in meters}
    daily = es.aggregate("energy", start, end, "day", by=["series"])
    daily = daily[daily["series"].isin(carrier_of)].sort_values(["start", "series"]).reset_index(drop=True)
    energy = pd.DataFrame({
        "date": daily["start"].dt.strftime("%Y-%m-%d"), "meter": daily["series"],
        "carrier": daily["series"].map(lambda s: carrier_of[s][0]),
        "workshop": daily["series"].map(lambda s: carrier_of[s][1]),
        "unit": daily["series"].map(lambda s: carrier_of[s][2]),
        "quantity": daily["value"].where(daily["count"] > 0),
        "intervals_expected": daily["expected"].astype(int), "intervals_present": daily["count"].astype(int),
        "intervals_measured": daily["measured"].astype(int),
        "intervals_estimated": (daily["count"] - daily["measured"]).astype(int),
        "intervals_missing": (daily["expected"] - daily["count"]).clip(lower=0).astype(int),
        "coverage": daily["coverage"]})
    energy["quality"] = [quality_code(e, p, m) for e, p, m in zip(energy["intervals_expected"],
                                                                   energy["intervals_present"],
                                                                   energy["intervals_measured"], strict=True)]
    tot = acc.totals_at("enterprise").sort_values("period_start").reset_index(drop=True)
    monthly = tot.assign(month=tot["period_start"].dt.strftime("%Y-%m"),
                         reasons=tot["reasons"].map(lambda r: ", ".join(r) if isinstance(r, list | tuple) else r))
    lines = acc.lines.sort_values(["period_start", "workshop", "carrier", "flow", "on"], na_position="first")
    lines = lines.assign(month=lines["period_start"].dt.strftime("%Y-%m"), workshop=lines["workshop"].fillna(""))
    lines = lines.reset_index(drop=True)
    used = set()
    for col in ("tce_factor", "emission_factors", "market_factors", "heat_factors"):
        for ids in lines.get(col, pd.Series(dtype=object)).fillna(""):
            used.update(i for i in str(ids).split("|") if i)
    factors = acc.factors[acc.factors["id"].isin(used)].sort_values("id").reset_index(drop=True)
    ov = es.output_values(start, end)
    ov = ov.assign(month=pd.to_datetime(ov["month"]).dt.strftime("%Y-%m")).sort_values("month")
    output = ov.assign(trust="declared")[["month", "output_value_10k_cny", "trust"]].reset_index(drop=True)
    devices = es.devices()
    pts: dict[str, pd.DataFrame] = {}
    sampled: dict = {}
    if devices:
        from collectors.bracelet_analytics import lead_time
        from portal.evidence.utilisation import daily_utilisation, samples

        # one read per bracelet of its times and currents only (series_values: a year of one-minute currents is
        # half a million rows each, and every use below is per device), sampled once for the state machine and
        # the energy estimate
        pts = {d.id: es.scope.series_values("current", d.id, start - lead_time(devices), end) for d in devices}
        sampled = {d.id: samples(pts[d.id], d) for d in devices}
        util = daily_utilisation(pts, devices, start, end, sampled=sampled)
    else:
        util = pd.DataFrame(columns=UTILISATION_COLUMNS)
    utilisation_frame = util[UTILISATION_COLUMNS].reset_index(drop=True)
    carriers = carrier_figures(acc).sort_values("carrier").reset_index(drop=True)
    t = totals(acc)
    rated = {}
    if devices:
        from carbon.risk import rated_kw_estimate

        rated = rated_kw_estimate(pts, devices)
    data = PackData(ent, period, acc, energy, monthly, lines, factors, output, utilisation_frame, carriers,
                    t, intensities(t, monthly, output, period), meters, devices, rated)
    from portal.evidence.indicators import bracelets_vs_meter, risk_tables, trust_table

    data.crosscheck = bracelets_vs_meter(pts, devices, lines, period, sampled)
    data.bill_check = bill_check(es, period, meters, energy)
    data.trust = trust_table(data)
    data.quota = es.quota_position(period.start.year, period.end)
    data.risk, data.capacity, data.signals = risk_tables(scope, data, rated)
    return data


BILL_CHECK_COLUMNS = ["meter", "carrier", "unit", "period_start", "period_end", "metered", "billed", "difference",
                      "relative_difference", "tolerance", "within_tolerance", "status", "coverage",
                      "intervals_expected", "intervals_present", "intervals_measured", "bill_id", "amount_cny",
                      "source"]


def bill_check(es, period: PackPeriod, meters: list, energy: pd.DataFrame) -> dict:
    """Meter against utility bill (互证, carbon.trust.meter_vs_bill via park.bills.compare): per billing period of
    the enterprise's meters within the pack's period, the store's energy over exactly the billing period against
    the bill (park.bills: bills kept beside the meters, never in the store), with the difference and a status
    (agree | differ | incomplete_meter | no_meter), and the stretches no bill covers (no_bill).  `compared` rows
    are BILL_CHECK_COLUMNS (bill_check.csv); bills reaching outside the period are counted, not compared."""
    from park.bills import compare

    hand = energy[energy["intervals_estimated"] > 0] if len(energy) else energy
    tz = period.start.tz
    bills = es.scope.bills(period.start, period.end)
    bills = bills[bills["enterprise"] == es.enterprise]
    inside = (bills["period_start"] >= period.start) & (bills["period_end"] <= period.end)
    table = compare(es.aggregate, bills[inside], meters, period.start, period.end)
    rows = [{c: (pd.Timestamp(r[c]).tz_convert(tz).isoformat() if c in ("period_start", "period_end")
                 else r[c]) for c in BILL_CHECK_COLUMNS} for r in table.to_dict("records")]
    for r in rows:
        r["within_tolerance"] = None if pd.isna(r["within_tolerance"]) else bool(r["within_tolerance"])
        r["bill_id"] = None if pd.isna(r["bill_id"]) else int(r["bill_id"])
        r["amount_cny"] = None if r["amount_cny"] is None or pd.isna(r["amount_cny"]) else float(r["amount_cny"])
        for c in ("intervals_expected", "intervals_present", "intervals_measured"):
            r[c] = int(r[c])
    status = table["status"].value_counts().to_dict() if len(table) else {}
    billed = int(table["bill_id"].notna().sum()) if len(table) else 0
    outside = int((~inside).sum())
    if billed:
        note = (f"{billed} billing periods of {table['meter'].nunique()} meters compared with the meters' energy over "
                f"exactly each billing period: {status.get('agree', 0)} agree within "
                f"{float(table['tolerance'].iloc[0]):.0%}, {status.get('differ', 0)} differ, "
                f"{status.get('incomplete_meter', 0)} with the meter incomplete, {status.get('no_meter', 0)} "
                f"without meter data; {status.get('no_bill', 0)} stretches without a bill (bill_check.csv)")
    else:
        note = "no utility bill of the enterprise's meters lies within the period (parkcarbon bills import)"
    partial = int(((table["coverage"] < 1) & table["bill_id"].notna()).sum()) if len(table) else 0
    if partial:
        note += f"; the meter missed intervals in {partial} billing periods (coverage below 1 in bill_check.csv)"
    if outside:
        note += f"; {outside} bills reaching outside the period not compared"
    return {"available": bool(billed), "compared": rows, "bills_compared": billed, "bills_outside_period": outside,
            "status_counts": {k: int(v) for k, v in sorted(status.items())},
            "estimated_or_entered_meter_days": int(len(hand)), "note": note}


def intensities(totals: dict, monthly: pd.DataFrame, output: pd.DataFrame, period: PackPeriod) -> dict:
    """t CO2e (location-based) and tce per 10k CNY of declared output value over the period; None unless every
    month of the period has its output value (a partial sum would flatter the ratio)."""
    months = [m.strftime("%Y-%m") for m in period.months]
    have = dict(zip(output["month"], output["output_value_10k_cny"], strict=True))
    missing = [m for m in months if m not in have or not math.isfinite(have[m])]
    value = sum(have[m] for m in months) if not missing else math.nan
    ok = not missing and value > 0
    return {"output_value_10k_cny": value if not missing else None,
            "t_co2e_per_10k_cny": totals["total_location_t_co2e"] / value if ok else None,
            "tce_per_10k_cny": totals["energy_tce"] / value if ok else None,
            "missing_output_months": missing}


def _clean(v):
    if isinstance(v, float):
        return None if not math.isfinite(v) else float(v)
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def month_figures(monthly: pd.DataFrame) -> dict:
    return {r["month"]: {h: _clean(float(r[h])) for h in HEADLINE} for _, r in monthly.iterrows()}


def summary(data: PackData, restated: pd.DataFrame) -> dict:
    e = data.enterprise
    return _clean({
        "enterprise": {"id": e.id, "name": e.name, "name_en": e.name_en, "credit_code": e.credit_code,
                       "industry": e.industry},
        "period": {"label": data.period.label, "start": data.period.start.isoformat(),
                   "end": data.period.end.isoformat(), "complete": data.period.complete},
        "totals": {h: float(data.totals[h]) for h in HEADLINE} | {"coverage": float(data.totals["coverage"])},
        "by_carrier": [{"carrier": r.carrier, "quantity": float(r.quantity), "unit": r.unit,
                        "energy_tce": float(r.energy_tce), "scope1_t_co2e": float(r.scope1_t_co2e),
                        "scope2_location_t_co2e": float(r.scope2_location_t_co2e),
                        "scope2_market_t_co2e": float(r.scope2_market_t_co2e), "coverage": float(r.coverage)}
                       for r in data.carriers.itertuples()],
        "intensities": data.intensities | {"baseline": data.baseline_summary or {
            "used": False, "note": "no baseline: not read (the pack was built without its consent's baseline)"}},
        "monthly": month_figures(data.monthly),
        "complete": bool(data.monthly["complete"].all()) if len(data.monthly) else False,
        "restated_figures": len(restated),
        "trust": {r.figure: {"tier": r.tier, "tier_zh": r.tier_zh} for r in data.trust.itertuples()}
        if data.trust is not None else {},
        "risk": [{"indicator": r.indicator, "latest": r.latest, "change": r.change, "peer_count": r.peer_count,
                  "peer_median": r.peer_median, "peer_percentile_rank": r.peer_percentile_rank, "flag": r.flag}
                 for r in data.risk.itertuples()] if data.risk is not None else [],
        "signals": list(data.signals["code"]) if data.signals is not None else [],
        "meter_vs_bill": data.bill_check,
        "savings": data.savings.summary() if data.savings is not None else {"not_computed": data.savings_note},
        "quota": {k: data.quota.get(k) for k in ("year", "basis", "allowances_t", "ccer_usable_t",
                                                 "emissions_t_co2e", "remaining_t", "used_share", "status")}
        if data.quota else None,
    })


# ---- restatements --------------------------------------------------------------------------------------------------
def restatements(engine, park_id: str, enterprise: str, figures: dict) -> pd.DataFrame:
    """Figures of this pack that differ from the latest earlier pack that issued them (same month and figure)."""
    with Session(engine) as s:
        rows = s.scalars(select(PackLogRow).where(PackLogRow.park_id == park_id,
                                                  PackLogRow.enterprise_id == enterprise)
                         .order_by(PackLogRow.id)).all()
        issued = {}
        for r in rows:
            for month, figs in json.loads(r.figures).items():
                for name, v in figs.items():
                    issued[(month, name)] = (v, r.manifest_sha256, r.generated_at.isoformat())
    out = []
    for month, figs in sorted(figures.items()):
        for name in HEADLINE:
            if (month, name) not in issued:
                continue
            before, sha, at = issued[(month, name)]
            now = figs.get(name)
            same = (before is None and now is None) or (
                before is not None and now is not None and abs(now - before) <= TOLERANCE * max(1.0, abs(before)))
            if not same:
                diff = now - before if before is not None and now is not None else None
                out.append([month, name, before, now, diff, sha, at])
    return pd.DataFrame(out, columns=RESTATEMENT_COLUMNS)


# ---- the archive ---------------------------------------------------------------------------------------------------
def readme(manifest_base: dict, public_keys_url: str, published: list[dict] | None = None) -> bytes:
    from portal.evidence.instructions import readme_text

    return readme_text(manifest_base, public_keys_url, published).encode("utf-8")


def build(data: PackData, *, park, consent_row, issued_to: str, key_id: str, private_key: Ed25519PrivateKey,
          generated_at: datetime, restated: pd.DataFrame, public_keys_url: str,
          report: bool = True, published: list[dict] | None = None) -> tuple[bytes, dict]:
    """The signed zip and its manifest."""
    files: dict[str, bytes] = {}
    as_of = data.period.end.tz_convert("UTC").to_pydatetime()
    summ = summary(data, restated)
    if report:
        from portal.evidence.report import report_pdf

        files["report.pdf"] = report_pdf(data, summ, restated, park=park, key_id=key_id, as_of=as_of,
                                         consent_row=consent_row)
    files["summary.json"] = (json.dumps(summ, ensure_ascii=False, indent=2, sort_keys=True,
                                        default=lambda o: o.item() if hasattr(o, "item") else str(o)) + "\n").encode()
    files["energy_daily.csv"] = frame_csv(data.energy_daily, ENERGY_COLUMNS)
    files["emissions_monthly.csv"] = frame_csv(data.monthly, MONTHLY_COLUMNS)
    files["emissions_lines.csv"] = frame_csv(data.lines, LINE_COLUMNS)
    files["factors.csv"] = frame_csv(data.factors, FACTOR_COLUMNS)
    files["output_monthly.csv"] = frame_csv(data.output, OUTPUT_COLUMNS)
    if "utilisation" in consent_row.data:  # only the data kinds the consent covers
        files["utilisation_daily.csv"] = frame_csv(data.utilisation, UTILISATION_COLUMNS)
    if "risk" in consent_row.data:
        from carbon.risk import INDICATOR_COLUMNS

        files["risk_indicators.csv"] = frame_csv(data.risk, INDICATOR_COLUMNS)
        files["capacity_monthly.csv"] = frame_csv(data.capacity.assign(
            month=data.capacity["month"].map(lambda m: pd.Timestamp(m).strftime("%Y-%m"))), CAPACITY_COLUMNS)
        files["shutdown_signals.csv"] = frame_csv(data.signals, SIGNAL_COLUMNS)
    if data.savings is not None:
        used = data.savings.data.assign(period_start=data.savings.data["period_start"].map(
            lambda m: pd.Timestamp(m).strftime("%Y-%m")))
        files["savings.csv"] = frame_csv(used, list(used.columns))
    if "utilisation" in consent_row.data and data.crosscheck is not None and len(data.crosscheck):
        cc = data.crosscheck.assign(month=data.crosscheck["period_start"].map(lambda m: f"{m:%Y-%m}"))
        files["crosscheck.csv"] = frame_csv(cc, CROSSCHECK_COLUMNS)
    if data.baseline is not None:
        from portal.evidence.indicators import BASELINE_COLUMNS

        files["baseline_monthly.csv"] = frame_csv(data.baseline, BASELINE_COLUMNS)
    files["trust.csv"] = frame_csv(data.trust, TRUST_COLUMNS)
    if data.bill_check and data.bill_check.get("compared"):  # meter against utility bill, per billing period
        files["bill_check.csv"] = to_csv(BILL_CHECK_COLUMNS, ([r[c] for c in BILL_CHECK_COLUMNS]
                                                              for r in data.bill_check["compared"]))
    files["restatements.csv"] = frame_csv(restated, RESTATEMENT_COLUMNS)
    files["signing_key.pem"] = keys.public_pem(private_key.public_key()).encode()
    e = data.enterprise
    base = {
        "format": FORMAT, "park": {"id": park.id, "name": park.name, "name_en": park.name_en},
        "enterprise": {"id": e.id, "name": e.name, "name_en": e.name_en, "credit_code": e.credit_code},
        "period": {"label": data.period.label, "start": data.period.start.isoformat(),
                   "end": data.period.end.isoformat(), "complete": data.period.complete},
        "consent": {"id": consent_row.id, "bank": consent_row.bank, "purpose": consent_row.purpose,
                    "data": list(consent_row.data), "expires_at": consent_row.expires_at.isoformat()},
        "issued_to": issued_to, "key_id": key_id, "algorithm": "Ed25519", "public_keys_url": public_keys_url,
    }
    files["README.txt"] = readme(base, public_keys_url, published)
    names = sorted(files)
    files["SHA256SUMS"] = "".join(f"{sha256(files[n])}  {n}\n" for n in names).encode()
    manifest = {
        **base,
        "generated_at": generated_at.astimezone(UTC).isoformat(),
        "data_as_of": as_of.isoformat(),
        "software": {"name": "parkcarbon", "version": _version()},
        "methodology": {"description": METHODOLOGY, "factor_registry": data.accounts.registry_fingerprint,
                        "policy": str(data.accounts.policy)},
        "files": {n: sha256(files[n]) for n in sorted(files)},
    }
    manifest_bytes = (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
    files["manifest.json"] = manifest_bytes
    files["manifest.sig"] = private_key.sign(manifest_bytes)
    return zip_files(files), manifest


def zip_files(files: dict[str, bytes]) -> bytes:
    """A zip with fixed member times and order (README first, the manifest and signature last)."""
    order = sorted(files, key=lambda n: (n != "README.txt", n in ("manifest.json", "manifest.sig"), n))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name in order:
            info = zipfile.ZipInfo(f"{name}", ZIP_TIME)
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".pdf") else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, files[name])
    return buf.getvalue()


def _version() -> str:
    try:
        return metadata.version("parkcarbon")
    except metadata.PackageNotFoundError:
        return "unknown"


# ---- issuing: consent, data through the scope, sign, log ------------------------------------------------------
def pack_name(park_id: str, enterprise: str, period: str) -> str:
    return f"evidence-{park_id}-{enterprise}-{period}.zip"


def issue(ctx, scope, enterprise: str, period: str, *, bank: str | None = None, report: bool = True,
          public_keys_url: str = keys.PUBLIC_KEYS_PATH, now: datetime | None = None) -> tuple[bytes, dict]:
    """Build, sign and log the pack of `enterprise` and `period` for the scope's user.

    A bank gets a pack only under a consent in force covering the enterprise, every month of the period and the
    data kinds energy and emissions (NoConsent otherwise, logged `refused`); the park administrator issues one on
    a bank's behalf (`bank`), under that bank's consent.  Every pack issued is an export in the consent's history
    and the audit log, and a row of the pack log."""
    from portal.auth import Role

    user = scope.user
    who = bank if user.role is Role.ADMIN else user.username
    if user.role not in (Role.BANK, Role.ADMIN) or who is None:
        scope.record("refused", f"evidence:{enterprise}:{period}", reason="only a bank (or the administrator for "
                     "a bank) receives evidence packs")
        raise consents.NoConsent("only a bank (or the park administrator on a bank's behalf: --bank) receives "
                                 "evidence packs")
    at = consents._now(scope.now() if now is None else now)  # the portal's clock (injectable), not the wall's
    tz = ctx.park.tz
    p = parse_period(period, tz, scope.now())
    try:
        grant = consents.covering(ctx.engine, who, enterprise, list(p.months), "emissions", now=at)
        if "energy" not in grant.data:
            raise consents.NoConsent(f"consent {grant.id} does not cover energy data")
    except consents.NoConsent as exc:
        scope.record("refused", f"evidence:{enterprise}:{period}", reason=str(exc), bank=who)
        raise
    if user.role is Role.BANK and enterprise not in scope.consents:  # the scope agrees with the consent
        raise consents.NoConsent(f"enterprise {enterprise} is not in the scope of {who}")
    es = scope.enterprise(enterprise)
    if es is None:
        raise consents.NoConsent(f"enterprise {enterprise} is not visible to {user.username}")
    key_id, private = keys.active_key(ctx.engine, ctx.park.id, ctx.settings.data_dir)
    data = gather(es, p)
    from portal.evidence.indicators import baseline_for, savings_for

    data.savings, data.savings_note = savings_for(es, data, grant)
    data.baseline, data.baseline_summary = baseline_for(es, data, grant)
    figures = month_figures(data.monthly)
    restated = restatements(ctx.engine, ctx.park.id, enterprise, figures)
    blob, manifest = build(data, park=ctx.park, consent_row=grant, issued_to=who, key_id=key_id,
                           private_key=private, generated_at=at, restated=restated,
                           public_keys_url=public_keys_url, report=report,
                           published=keys.published(ctx.engine, ctx.park.id))
    manifest_sha = sha256(_manifest_bytes(blob))
    with Session(ctx.engine) as s, s.begin():
        s.add(PackLogRow(park_id=ctx.park.id, enterprise_id=enterprise, period=p.label, consent_id=grant.id,
                         issued_to=who, key_id=key_id, generated_at=at, manifest_sha256=manifest_sha,
                         figures=json.dumps(figures)))
    consents.record_export(ctx.engine, grant, user.username, f"evidence pack {enterprise} {p.label}", now=at,
                           key_id=key_id, manifest_sha256=manifest_sha)
    return blob, manifest


def _manifest_bytes(blob: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        return z.read("manifest.json")


def pack_log(engine, park_id: str, *, issued_to: str | None = None, enterprise: str | None = None) -> pd.DataFrame:
    q = select(PackLogRow).where(PackLogRow.park_id == park_id)
    if issued_to is not None:
        q = q.where(PackLogRow.issued_to == issued_to)
    if enterprise is not None:
        q = q.where(PackLogRow.enterprise_id == enterprise)
    with Session(engine) as s:
        rows = s.scalars(q.order_by(PackLogRow.id.desc())).all()
        return pd.DataFrame([{"id": r.id, "enterprise": r.enterprise_id, "period": r.period, "consent": r.consent_id,
                              "issued_to": r.issued_to, "key_id": r.key_id, "generated_at": r.generated_at,
                              "manifest_sha256": r.manifest_sha256} for r in rows],
                            columns=["id", "enterprise", "period", "consent", "issued_to", "key_id", "generated_at",
                                     "manifest_sha256"])
