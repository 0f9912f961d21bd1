"""Utility bills (电费/燃气/蒸汽账单) as a record of their own, beside the meters (migration 0010).

A bill states what the utility charged for one supply point over one billing period.  It is kept apart from the
time-series store so that it can be held against the park's meter of that supply point (carbon.trust.meter_vs_bill,
the 互证 tier of docs/evidence.md): a bill imported into the store as a period value (`parkcarbon import`, a
periods file) would instead fill the meter's own intervals and could no longer check them.

* A bill names the park's **meter** that measures its supply point (the park file's meter id); the utility's account
  or supply-point number is kept beside it (`account`, optional text).  A bill per supply point without a meter of
  its own cannot be cross-checked, so it is refused (`series.unknown`) rather than kept unmatched.
* **Billing periods** are [period_start, period_end) in the park's time (period_end exclusive, as in periods files:
  a bill for 5 January to 4 February inclusive is written 2024-01-05, 2024-02-05), on the meter's interval grid,
  of any length (billing periods are not calendar months).
* The **quantity** is converted to the meter's (canonical) unit through park.units (MWh -> kWh, 万立方米 -> m3,
  GJ -> GJ); a unit of another dimension (a steam bill in GJ for a meter in tonnes) is refused, never guessed.
  The stated figure and unit are kept too.  An optional **amount in CNY**.
* **Source**: file name, its SHA-256, the line, who imported it and when.
* **Corrections**: a re-issued bill (same meter, overlapping period, other figures) supersedes the bills it
  overlaps only when imported with `correct=True` (`--correct`); the old rows are kept with `superseded_by`.
  Without it the row is quarantined (`file.bill_differs`, `file.bill_overlap`).  An identical repeat is reported and
  not applied (`file.bill_repeat`).
* **Bad rows** are quarantined in the `bill_rejects` table with their line, code and reason; the good rows go in.

The command line is `parkcarbon bills import FILE [--correct] [--dry-run]` and `parkcarbon bills list`.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from park.findings import sentence
from park.metadata import Base, UTCDateTime
from park.units import UnitError, carrier_unit, conversion_factor

CHUNK_ROWS = 10_000
RELATIVE_SAME = 1e-9  # two quantities this close are the same bill figure
ALIASES = {
    "meter": ["meter", "meter_id", "series", "计量点", "电表编号", "表号"],
    "period_start": ["period_start", "start", "起始日期", "开始日期", "起始时间"],
    "period_end": ["period_end", "end", "截止日期", "结束日期", "截止时间"],
    "quantity": ["quantity", "value", "usage", "用量", "数量", "电量", "数值"],
    "unit": ["unit", "单位"],
    "amount_cny": ["amount_cny", "amount", "金额", "金额(元)", "电费"],
    "account": ["account", "account_no", "supply_point", "户号", "用户编号"],
    "carrier": ["carrier", "能源品种"],
}
REQUIRED = ("meter", "period_start", "period_end", "quantity")
BILL_COLUMNS = ["id", "enterprise", "meter", "account", "carrier", "period_start", "period_end", "quantity", "unit",
                "quantity_stated", "unit_stated", "amount_cny", "source_file", "source_line", "imported_at",
                "imported_by", "superseded_by"]


class BillFileError(ValueError):
    """A bills file that cannot be imported at all (unreadable, no usable columns); nothing of it was written."""


# ---- tables ----------------------------------------------------------------------------------------------------
class BillRow(Base):
    """One utility bill of one meter's supply point over one billing period (quantity in the meter's unit)."""

    __tablename__ = "bills"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    park_id: Mapped[str] = mapped_column(String(64))
    enterprise_id: Mapped[str] = mapped_column(String(64), index=True)
    meter_id: Mapped[str] = mapped_column(String(64), index=True)
    account: Mapped[str] = mapped_column(String(64), default="")  # the utility's account / supply-point number
    carrier: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    period_end: Mapped[datetime] = mapped_column(UTCDateTime)  # exclusive
    quantity: Mapped[float] = mapped_column(Float)  # in `unit`, the meter's canonical unit
    unit: Mapped[str] = mapped_column(String(16))
    quantity_stated: Mapped[float] = mapped_column(Float)  # as the bill states it
    unit_stated: Mapped[str] = mapped_column(String(16))
    amount_cny: Mapped[float | None] = mapped_column(Float, nullable=True)
    source_file: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_line: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    imported_by: Mapped[str] = mapped_column(String(64))
    superseded_by: Mapped[int | None] = mapped_column(ForeignKey("bills.id"), nullable=True)
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class BillRejectRow(Base):
    """A bills-file row that was not imported, with its line, code (park.findings) and reason."""

    __tablename__ = "bill_rejects"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    park_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_file: Mapped[str] = mapped_column(Text)
    line: Mapped[int] = mapped_column(Integer)
    meter_id: Mapped[str] = mapped_column(String(64), default="")
    code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    row_text: Mapped[str] = mapped_column(Text, default="")


# ---- import --------------------------------------------------------------------------------------------------
@dataclass
class BillImportReport:
    path: str
    rows: int = 0  # rows read = accepted + rejected + reported
    accepted: int = 0
    rejected: int = 0
    reported: int = 0  # identical repeats, not applied
    superseded: int = 0  # earlier bills replaced by a re-issued one (--correct)
    rejects: list[dict] = field(default_factory=list)  # line, meter, code, reason
    codes: Counter = field(default_factory=Counter)
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        out = [f"{self.path}: {self.rows} rows read = {self.accepted} accepted + {self.rejected} rejected + "
               f"{self.reported} reported; {verb} {self.accepted} bills"
               + (f", superseding {self.superseded} earlier bills" if self.superseded else "")]
        if self.codes:
            out.append("rejected or reported, by code:")
            out += [f"  {code}: {n}" for code, n in self.codes.most_common()]
            out += [f"  {r['reason']}" for r in sorted(self.rejects, key=lambda r: r["line"])[:50]]
        return "\n".join(out)


def _columns(frame: pd.DataFrame, path: Path) -> dict[str, str]:
    lower = {str(c).strip().lower(): c for c in frame.columns if c != "line"}
    found = {key: lower[a.lower()] for key, names in ALIASES.items() for a in reversed(names) if a.lower() in lower}
    missing = [k for k in REQUIRED if k not in found]
    if missing:
        hints = "; ".join(f"{k}: one of {', '.join(ALIASES[k])}" for k in missing)
        raise BillFileError(f"{path}: line 1: missing column(s) {hints}; the header has "
                            f"{', '.join(repr(str(c)) for c in frame.columns if c != 'line')}")
    return found


def _time(text: str, tz: str) -> pd.Timestamp | None:
    text = str(text).strip()
    if not text:
        return None
    try:
        t = pd.Timestamp(text)
    except (ValueError, TypeError):
        return None
    if t is pd.NaT:
        return None
    if t.tzinfo is None:
        try:
            t = t.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
        except (ValueError, TypeError):
            return None
        if t is pd.NaT:
            return None
    return t.tz_convert("UTC")


def _number(text: str) -> float | None:
    text = str(text).strip().replace(",", "")
    try:
        return float(text)
    except ValueError:
        return None


def on_grid(ts: pd.Timestamp, interval_s: int) -> bool:
    """Whether `ts` starts an interval of a meter of `interval_s` (park.store.validate's grid)."""
    step = interval_s if 3600 % interval_s == 0 else math.gcd(interval_s, 3600)
    return int(ts.value) % (step * 1_000_000_000) == 0


def parse_rows(path: Path, park, chunk_rows: int = CHUNK_ROWS) -> tuple[list[dict], list[dict], int]:
    """(good bills, rejects, rows read) of a bills file, each row checked alone (no database needed)."""
    from collectors.sources.files import FileFormatError, read_table

    meters = {m.id: m for m in park.meters}
    good, bad, rows = [], [], 0
    try:
        chunks = read_table(path, chunk_rows)
        cols = None
        for chunk in chunks:
            cols = cols or _columns(chunk, path)
            for _, r in chunk.iterrows():
                rows += 1
                bill, reject = _check_row(r, cols, meters, park.timezone)
                (good if reject is None else bad).append(bill if reject is None else reject)
    except FileFormatError as exc:
        raise BillFileError(str(exc)) from None
    return good, bad, rows


def _reject(line: int, meter: str, code: str, what: str, row_text: str) -> dict:
    return {"line": line, "meter": meter, "code": code, "reason": f"line {line}: {what}: {sentence(code)}",
            "row_text": row_text}


def _check_row(r: pd.Series, cols: dict[str, str], meters: dict, tz: str) -> tuple[dict | None, dict | None]:
    line = int(r["line"])
    get = {k: str(r[c]).strip() if c in r.index else "" for k, c in cols.items()}
    text = ",".join(get.get(k, "") for k in ALIASES)
    meter_id = get["meter"]

    def no(code: str, what: str) -> tuple[None, dict]:
        return None, _reject(line, meter_id, code, what, text)

    meter = meters.get(meter_id)
    if meter is None:
        return no("series.unknown", f"meter {meter_id!r} is not a meter of this park (a bill names the park's meter "
                                    "of its supply point)")
    if get.get("carrier") and get["carrier"] != str(meter.carrier):
        return no("file.bill_carrier", f"carrier {get['carrier']!r} is not meter {meter_id}'s ({meter.carrier})")
    start, end = _time(get["period_start"], tz), _time(get["period_end"], tz)
    if start is None or end is None:
        which = get["period_start"] if start is None else get["period_end"]
        return no("reading.bad_timestamp", f"period bound {which!r} cannot be read as a date")
    if end <= start or not on_grid(start, meter.interval_s) or not on_grid(end, meter.interval_s):
        return no("file.bad_period", f"period {get['period_start']!r} to {get['period_end']!r} must end after it "
                                     f"starts, both on meter {meter_id}'s {meter.interval_s} s interval grid")
    q = _number(get["quantity"])
    if q is None:
        return no("reading.not_a_number", f"quantity {get['quantity']!r} is not a number")
    if not math.isfinite(q):
        return no("reading.not_finite", f"quantity {get['quantity']!r} is not finite")
    if q < 0:
        return no("reading.negative", f"quantity {q} is negative (a credit note is not a bill: correct the bill)")
    unit_stated = get.get("unit") or meter.unit
    try:
        unit = carrier_unit(meter.carrier, unit_stated)
        factor = conversion_factor(unit.symbol, meter.unit)
    except UnitError as exc:
        code = "reading.unknown_unit" if "unknown unit" in str(exc) else "reading.unit_mismatch"
        hint = (" (steam billed by heat cannot be held against a steam meter in tonnes without the steam's "
                "enthalpy: ask the supplier for the billed mass)") if str(meter.carrier) == "steam" else ""
        return no(code, f"unit {unit_stated!r} for meter {meter_id} in {meter.unit}: {exc}{hint}")
    amount = None
    if get.get("amount_cny"):
        amount = _number(get["amount_cny"])
        if amount is None or not math.isfinite(amount):
            return no("reading.not_a_number", f"amount {get['amount_cny']!r} is not a number of CNY")
    return {"line": line, "meter": meter_id, "enterprise": meter.enterprise, "carrier": str(meter.carrier),
            "account": get.get("account", ""), "period_start": start.to_pydatetime(),
            "period_end": end.to_pydatetime(), "quantity": q * factor, "unit": meter.unit, "quantity_stated": q,
            "unit_stated": unit.symbol, "amount_cny": amount}, None


def _same(a: dict, b) -> bool:
    qa, qb = a["quantity"], b.quantity if not isinstance(b, dict) else b["quantity"]
    aa, ab = a["amount_cny"], b.amount_cny if not isinstance(b, dict) else b["amount_cny"]
    same_q = abs(qa - qb) <= RELATIVE_SAME * max(1.0, abs(qb))
    same_a = (aa is None and ab is None) or (aa is not None and ab is not None and abs(aa - ab) <= 0.005)
    return same_q and same_a


def _overlaps(a_start, a_end, b_start, b_end) -> bool:
    return a_start < b_end and b_start < a_end


def import_bills(engine, park, path: str | Path, *, actor: str, correct: bool = False, dry_run: bool = False,
                 now: datetime | None = None) -> BillImportReport:
    """Import a bills file (CSV or Excel): good rows become bills, bad ones are quarantined in `bill_rejects`.

    Within the file, a bill overlapping an earlier row of the same meter is quarantined (`file.bill_overlap`
    naming that line; an identical repeat is reported, `file.bill_repeat`).  Against the bills already imported:
    an identical one is reported; one of the same meter overlapping it with other figures is quarantined
    (`file.bill_differs` for the same period, `file.bill_overlap` otherwise) unless `correct`, when the new bill
    supersedes every bill of the meter it overlaps (the old rows are kept).  Nothing touches the time-series
    store."""
    path = Path(path)
    at = (now or datetime.now(UTC)).astimezone(UTC)
    good, bad, rows = parse_rows(path, park)
    report = BillImportReport(str(path), rows=rows, dry_run=dry_run)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with Session(engine) as s, s.begin():
        current = {}
        for b in s.scalars(select(BillRow).where(BillRow.park_id == park.id, BillRow.superseded_by.is_(None),
                                                 BillRow.meter_id.in_({g["meter"] for g in good}))):
            current.setdefault(b.meter_id, []).append(b)
        kept: dict[str, list[dict]] = {}
        new_rows: list[tuple[BillRow, list[BillRow]]] = []
        reported = []
        for g in sorted(good, key=lambda g: g["line"]):
            m, a, z = g["meter"], g["period_start"], g["period_end"]
            earlier = [k for k in kept.get(m, []) if _overlaps(a, z, k["period_start"], k["period_end"])]
            if earlier:
                k = earlier[0]
                if k["period_start"] == a and k["period_end"] == z and _same(g, k):
                    reported.append(_reject(g["line"], m, "file.bill_repeat", f"the same bill as line {k['line']}",
                                            ""))
                else:
                    bad.append(_reject(g["line"], m, "file.bill_overlap", f"period {_local(a, park)} to "
                                       f"{_local(z, park)} of meter {m} overlaps line {k['line']}'s", ""))
                continue
            stored = [b for b in current.get(m, []) if _overlaps(a, z, _aware(b.period_start),
                                                                  _aware(b.period_end))]
            exact = [b for b in stored if _aware(b.period_start) == a and _aware(b.period_end) == z]
            if len(stored) == 1 and exact and _same(g, exact[0]):
                reported.append(_reject(g["line"], m, "file.bill_repeat", f"bill {exact[0].id} (from "
                                        f"{exact[0].source_file} line {exact[0].source_line}) is the same", ""))
                continue
            if stored and not correct:
                ids = ", ".join(f"{b.id} ({_local(_aware(b.period_start), park)} to "
                                f"{_local(_aware(b.period_end), park)}, {b.quantity:g} {b.unit})" for b in stored)
                code = "file.bill_differs" if exact else "file.bill_overlap"
                bad.append(_reject(g["line"], m, code, f"meter {m} already has bill {ids} over this period; "
                                   "import with --correct to supersede it with this re-issued bill", ""))
                continue
            kept.setdefault(m, []).append(g)
            row = BillRow(park_id=park.id, enterprise_id=g["enterprise"], meter_id=m, account=g["account"],
                          carrier=g["carrier"], period_start=a, period_end=z, quantity=g["quantity"],
                          unit=g["unit"], quantity_stated=g["quantity_stated"], unit_stated=g["unit_stated"],
                          amount_cny=g["amount_cny"], source_file=path.name, source_sha256=digest,
                          source_line=g["line"], imported_at=at, imported_by=actor)
            new_rows.append((row, stored))
            for b in stored:
                current[m].remove(b)
        report.accepted = len(new_rows)
        report.superseded = sum(len(old) for _, old in new_rows)
        report.rejected, report.reported = len(bad), len(reported)
        for r in [*bad, *reported]:
            report.codes[r["code"]] += 1
            report.rejects.append(r)
        if dry_run:
            s.rollback()
            return report
        for row, old in new_rows:
            s.add(row)
            s.flush()
            for b in old:
                b.superseded_by, b.superseded_at = row.id, at
        for r in bad:
            s.add(BillRejectRow(park_id=park.id, received_at=at, source_file=path.name, line=r["line"],
                                meter_id=r["meter"][:64], code=r["code"], reason=r["reason"],
                                row_text=r.get("row_text", "")))
    return report


def _aware(t: datetime) -> datetime:
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)


def _local(t: datetime, park) -> str:
    return pd.Timestamp(t).tz_convert(park.timezone).strftime("%Y-%m-%d %H:%M")


# ---- reading ---------------------------------------------------------------------------------------------------
def load_bills(engine, park_id: str, *, enterprises=None, meters=None, start=None, end=None,
               superseded: bool = False) -> pd.DataFrame:
    """BILL_COLUMNS of the bills in force (and the superseded ones with `superseded`), periods overlapping
    [start, end) when given; period bounds are aware UTC timestamps."""
    q = select(BillRow).where(BillRow.park_id == park_id)
    if not superseded:
        q = q.where(BillRow.superseded_by.is_(None))
    if enterprises is not None:
        q = q.where(BillRow.enterprise_id.in_(list(enterprises)))
    if meters is not None:
        q = q.where(BillRow.meter_id.in_(list(meters)))
    if start is not None:
        q = q.where(BillRow.period_end > pd.Timestamp(start).tz_convert("UTC").to_pydatetime())
    if end is not None:
        q = q.where(BillRow.period_start < pd.Timestamp(end).tz_convert("UTC").to_pydatetime())
    with Session(engine) as s:
        rows = s.scalars(q.order_by(BillRow.meter_id, BillRow.period_start, BillRow.id)).all()
        out = pd.DataFrame([{"id": r.id, "enterprise": r.enterprise_id, "meter": r.meter_id, "account": r.account,
                             "carrier": r.carrier, "period_start": pd.Timestamp(_aware(r.period_start)),
                             "period_end": pd.Timestamp(_aware(r.period_end)), "quantity": r.quantity,
                             "unit": r.unit, "quantity_stated": r.quantity_stated, "unit_stated": r.unit_stated,
                             "amount_cny": r.amount_cny, "source_file": r.source_file, "source_line": r.source_line,
                             "imported_at": pd.Timestamp(_aware(r.imported_at)), "imported_by": r.imported_by,
                             "superseded_by": r.superseded_by} for r in rows], columns=BILL_COLUMNS)
    return out


def bill_rejects(engine, park_id: str) -> pd.DataFrame:
    with Session(engine) as s:
        rows = s.scalars(select(BillRejectRow).where(BillRejectRow.park_id == park_id)
                         .order_by(BillRejectRow.id)).all()
        return pd.DataFrame([{"received_at": r.received_at, "source_file": r.source_file, "line": r.line,
                              "meter": r.meter_id, "code": r.code, "reason": r.reason} for r in rows],
                            columns=["received_at", "source_file", "line", "meter", "code", "reason"])


# ---- metered against billed -----------------------------------------------------------------------------------
COMPARISON_COLUMNS = ["meter", "carrier", "unit", "period_start", "period_end", "metered", "billed", "difference",
                      "relative_difference", "tolerance", "within_tolerance", "status", "coverage",
                      "intervals_expected", "intervals_present", "intervals_measured", "bill_id", "amount_cny",
                      "source"]


def metered_over(aggregate, meter: str, start, end) -> dict:
    """The store's energy of `meter` over exactly [start, end) (bounds on its grid): the sum of its intervals
    starting in the range, with the intervals expected, present and measured.  `aggregate` is a store's (or a
    scope's) `aggregate`; `metered` is NaN without any interval (never 0)."""
    a = aggregate("energy", start, end, "month", by=["series"], where={"series": [meter]})
    a = a[a["series"] == meter]
    present = int(a["count"].sum())
    expected = int(a["expected"].sum())
    return {"metered": float(a["value"].sum(min_count=1)) if present else math.nan, "intervals_expected": expected,
            "intervals_present": present, "intervals_measured": int(a["measured"].sum()),
            "coverage": present / expected if expected else math.nan}


def compare(aggregate, bills: pd.DataFrame, meters: list, start: pd.Timestamp, end: pd.Timestamp,
            tolerance: float | None = None) -> pd.DataFrame:
    """COMPARISON_COLUMNS per billing period of `meters` within [start, end): the meter's total over exactly the
    billing period against the bill (carbon.trust.meter_vs_bill: agree | differ | incomplete_meter when the meter
    missed intervals and disagrees), and per stretch of [start, end) no bill covers, the metered total with status
    no_bill.  Bills reaching outside [start, end) are left out (their stretch inside is then no_bill)."""
    from carbon.trust import BILL_TOLERANCE, meter_vs_bill

    tol = BILL_TOLERANCE if tolerance is None else tolerance
    start, end = pd.Timestamp(start).tz_convert("UTC"), pd.Timestamp(end).tz_convert("UTC")
    bills = bills.assign(period_start=pd.to_datetime(bills["period_start"], utc=True),
                         period_end=pd.to_datetime(bills["period_end"], utc=True))
    frames = []
    for m in meters:
        mine = bills[(bills["meter"] == m.id) & (bills["period_start"] >= start) & (bills["period_end"] <= end)]
        mine = mine.sort_values("period_start")
        rows, billed, cursor = [], [], start
        for b in mine.itertuples():
            if b.period_start > cursor:
                rows.append({"period_start": cursor, "period_end": b.period_start, "bill_id": None,
                             "amount_cny": None, "source": ""} | metered_over(aggregate, m.id, cursor,
                                                                             b.period_start))
            rows.append({"period_start": b.period_start, "period_end": b.period_end, "bill_id": int(b.id),
                         "amount_cny": b.amount_cny, "source": f"{b.source_file} line {b.source_line}"}
                        | metered_over(aggregate, m.id, b.period_start, b.period_end))
            billed.append({"period_start": b.period_start, "billed": float(b.quantity)})
            cursor = max(cursor, b.period_end)
        if not billed:
            continue  # a meter without a bill in the period: nothing to cross-check it against
        if cursor < end:
            rows.append({"period_start": cursor, "period_end": end, "bill_id": None, "amount_cny": None,
                         "source": ""} | metered_over(aggregate, m.id, cursor, end))
        metered = pd.DataFrame(rows)
        checked = meter_vs_bill(metered[["period_start", "metered", "coverage"]],
                                pd.DataFrame(billed, columns=["period_start", "billed"]), tol)
        out = checked.merge(metered.drop(columns=["metered", "coverage"]), on="period_start", how="left")
        frames.append(out.assign(meter=m.id, carrier=str(m.carrier), unit=m.unit))
    if not frames:
        return pd.DataFrame(columns=COMPARISON_COLUMNS)
    out = pd.concat(frames, ignore_index=True)
    return out[COMPARISON_COLUMNS].sort_values(["meter", "period_start"]).reset_index(drop=True)


# ---- demo ------------------------------------------------------------------------------------------------------
DEMO_TARIFF_CNY_PER_KWH = 0.72  # a Jiangsu large-industry average, for the demo's amounts only
DEMO_BILLING_DAY = 5  # billing periods run from the 5th to the 5th (not calendar months)


def demo_supply_points(park) -> list:
    """The demo's billed meters: each enterprise's incoming (enterprise-level) electricity, gas and steam meters;
    an enterprise without an incoming electricity meter has each workshop electricity meter billed on its own."""
    billed = ("electricity", "natural_gas", "steam")
    out = []
    for e in park.enterprises:
        mine = [m for m in park.meters if m.enterprise == e.id and str(m.carrier) in billed]
        incoming = [m for m in mine if m.workshop is None]
        has_power = any(str(m.carrier) == "electricity" for m in incoming)
        out += incoming + ([] if has_power else [m for m in mine if str(m.carrier) == "electricity"
                                                   and m.workshop is not None])
    return out


def seed_demo_bills(engine, store, park, now, path: str | Path | None = None, months: int = 12) -> str:
    """Give the demo park utility bills: for each billed meter (`demo_supply_points`), the complete billing periods
    (5th to 5th, park time, up to `months`) of the store's data before `now`, billed at the meter's total within
    half a per cent, and one bill 6 % above its meter (a disagreement to show).  Written as a bills file (`path`,
    default beside the store) and imported like any other (re-issued on a later run).  Returns a line for the
    demo's output."""
    tz = park.tz
    end = pd.Timestamp(now).tz_convert(tz).normalize()
    end = end.replace(day=DEMO_BILLING_DAY) if end.day >= DEMO_BILLING_DAY else (
        end - pd.DateOffset(months=1)).replace(day=DEMO_BILLING_DAY)
    meters = demo_supply_points(park)
    lines = ["meter,period_start,period_end,quantity,unit,amount_cny"]
    if meters:
        first = end - pd.DateOffset(months=months)
        daily = store.aggregate("energy", first, end, "day", by=["series"], where={"series": [m.id for m in meters]})
        shown_differ = False
        for k, m in enumerate(meters):
            days = daily[daily["series"] == m.id].set_index("start")
            cursor = end
            while cursor > first:
                start = cursor - pd.DateOffset(months=1)
                d = days[(days.index >= start) & (days.index < cursor)]
                if not len(d) or d["count"].sum() < 0.99 * d["expected"].sum():
                    break  # only complete periods: the demo's bills agree with what the meters read
                wobble = 1.0 + 0.004 * math.sin(k * 7 + start.month)  # meter class and reading dates, within 0.5 %
                if not shown_differ and str(m.carrier) == "electricity":
                    wobble, shown_differ = 1.06, True
                q = round(float(d["value"].sum()) * wobble, 3)
                tariff = DEMO_TARIFF_CNY_PER_KWH if str(m.carrier) == "electricity" else None
                lines.append(f"{m.id},{start:%Y-%m-%d},{cursor:%Y-%m-%d},{q!r},{m.unit},"
                             + (repr(round(q * tariff, 2)) if tariff else ""))
                cursor = start
    target = Path(path) if path is not None else Path(getattr(store, "path", ".")).parent / "demo_bills.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_bills(engine, park, target, actor="demo", correct=True,
                          now=pd.Timestamp(now).tz_convert("UTC").to_pydatetime())
    return (f"demo utility bills: {report.accepted} imported ({report.reported} unchanged) for {len(meters)} "
            f"billed meters from {target}; evidence packs hold the meters against them")


# ---- command line ----------------------------------------------------------------------------------------------
def register(sub) -> None:
    """`parkcarbon bills import FILE` and `parkcarbon bills list` (portal/cli.py registers it)."""
    p = sub.add_parser("bills", help="utility bills kept beside the meters (cross-checked in evidence packs)",
                       description="Utility bills as a record of their own (docs/store.md, 'Utility bills'): they "
                       "do not write energy into the time-series store; evidence packs hold each meter against "
                       "its bills.")
    bsub = p.add_subparsers(dest="bills_command", required=True)
    imp = bsub.add_parser("import", help="import a bills file (CSV or Excel)",
                          description="Columns: meter, period_start, period_end (exclusive, park time), quantity"
                          "[, unit, amount_cny, account, carrier].  Bad rows are quarantined with their line and "
                          "reason.  Exit status: 0 imported, no row rejected; 1 imported, some rows rejected; "
                          "2 the file could not be read (nothing imported).")
    imp.add_argument("file", type=Path)
    imp.add_argument("--correct", action="store_true",
                     help="a bill overlapping an imported one of the same meter supersedes it (re-issued bill)")
    imp.add_argument("--dry-run", action="store_true", help="check the file and say what would be imported")
    imp.set_defaults(func=cmd_import)
    ls = bsub.add_parser("list", help="list the bills in force (and the quarantined rows with --rejected)")
    ls.add_argument("--enterprise")
    ls.add_argument("--meter")
    ls.add_argument("--superseded", action="store_true", help="also the bills superseded by a re-issued one")
    ls.add_argument("--rejected", action="store_true", help="list the quarantined rows instead")
    ls.set_defaults(func=cmd_list)


def _engine_and_park(settings):
    from park.metadata import create_engine_from_url, load_park
    from park.migrations import check_schema

    engine = create_engine_from_url(settings.metadata_url, create_tables=False)
    check_schema(engine)
    return engine, load_park(engine)


def cmd_import(args: argparse.Namespace, settings) -> int:
    import getpass

    engine, park = _engine_and_park(settings)
    try:
        report = import_bills(engine, park, args.file, actor=f"{getpass.getuser()} (parkcarbon bills import)",
                              correct=args.correct, dry_run=args.dry_run)
    except (BillFileError, OSError) as exc:
        print(f"parkcarbon bills import: {exc}", file=sys.stderr)
        return 2
    print(report.summary())
    return 1 if report.rejected else 0


def cmd_list(args: argparse.Namespace, settings) -> int:
    engine, park = _engine_and_park(settings)
    if args.rejected:
        frame = bill_rejects(engine, park.id)
    else:
        frame = load_bills(engine, park.id, enterprises=[args.enterprise] if args.enterprise else None,
                           meters=[args.meter] if args.meter else None, superseded=args.superseded)
        for col in ("period_start", "period_end"):
            frame[col] = frame[col].map(lambda t: t.tz_convert(park.timezone).strftime("%Y-%m-%d %H:%M"))
        frame = frame[["id", "meter", "account", "period_start", "period_end", "quantity", "unit", "amount_cny",
                       "source_file", "source_line", "superseded_by"]]
    if frame.empty:
        print("no rows")
        return 0
    print(frame.to_string(index=False))
    return 0
