"""Manual and file readings: CSV and Excel (meter readings, load profiles, utility bills, deliveries).

Two row shapes, recognised by their columns (English or Chinese headers):
- readings: `ts, meter, value[, unit, kind, quality]`, one interval value (or a cumulative register when
  kind = cumulative) per row;
- periods (bills, gas and steam deliveries): `meter, period_start, period_end, value[, unit]`, spread evenly over
  the meter's intervals in the period with quality `substituted` (the total is exact, its shape is not).

Timestamps without an offset are read in the park's time zone, and the report says so.  Every bad row is
reported with its file, line and reason and quarantined; the good rows of the file go in.  Re-importing a
file changes nothing (store writes are idempotent).  `dry_run` reports what would be imported.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from collectors.pipeline import Pipeline
from collectors.readings import Kind
from collectors.rules import sentence
from park.store import StoreUnavailable, TimeSeriesStore

ALIASES = {
    "ts": ["ts", "time", "timestamp", "datetime", "date", "时间", "日期时间", "采集时间", "抄表时间"],
    "series": ["series", "meter", "meter_id", "device", "表号", "计量点", "电表编号"],
    "value": ["value", "reading", "usage", "读数", "用量", "数值", "usage_kwh"],
    "unit": ["unit", "单位"],
    "kind": ["kind", "类型"],
    "quality": ["quality", "数据质量"],
    "period_start": ["period_start", "start", "起始时间", "开始日期", "起始日期"],
    "period_end": ["period_end", "end", "截止时间", "结束日期", "截止日期"],
}
_OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")


class FileFormatError(ValueError):
    """A file that cannot be imported at all (unreadable, no usable columns)."""


@dataclass
class ImportReport:
    path: str
    rows: int = 0
    accepted: int = 0  # interval values written (or spooled when the store is down)
    spooled: int = 0
    rejected: int = 0
    rejects: list[dict] = field(default_factory=list)  # the first 50, with line and reason
    codes: Counter = field(default_factory=Counter)
    series: Counter = field(default_factory=Counter)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        lines = [f"{self.path}: {self.rows} rows read; {verb} {self.accepted} interval values for "
                 f"{len(self.series)} series; {self.rejected} rejected"]
        if self.first is not None:
            lines.append(f"first interval {self.first}, last interval {self.last}")
        if self.spooled:
            lines.append(f"store unavailable: {self.spooled} values spooled, to be written when it is back")
        lines += [f"note: {n}" for n in self.notes]
        lines += [f"  {code}: {n}" for code, n in self.codes.most_common()]
        lines += [f"  line {r.get('line')}: {r['reason']}" for r in self.rejects[:20]]
        return "\n".join(lines)


def read_table(path: Path, chunk_rows: int):
    """Yield string frames with a `line` column (the line/row number a user sees in an editor or Excel)."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        frame = pd.read_excel(path, dtype=str)
        frame["line"] = np.arange(len(frame)) + 2
        yield frame
        return
    if suffix not in (".csv", ".txt", ".gz"):
        raise FileFormatError(f"{path}: unknown file type {suffix!r}; use .csv or .xlsx")
    for encoding in ("utf-8-sig", "gb18030"):  # Chinese utility exports are often GBK
        try:
            offset = 2
            for chunk in pd.read_csv(path, dtype=str, chunksize=chunk_rows, encoding=encoding,
                                     skipinitialspace=True, keep_default_na=False):
                chunk["line"] = np.arange(len(chunk)) + offset
                offset += len(chunk)
                yield chunk
            return
        except UnicodeDecodeError:
            if encoding != "utf-8-sig" or offset != 2:
                raise
    raise FileFormatError(f"{path}: cannot be decoded as UTF-8 or GB18030")


def _columns(frame: pd.DataFrame, path: Path) -> dict[str, str]:
    lower = {str(c).strip().lower(): c for c in frame.columns}
    found = {key: lower[a] for key, names in ALIASES.items() for a in names if a in lower}
    periods = "period_start" in found and "period_end" in found
    need = ["series", "value"] + ([] if periods else ["ts"])
    missing = [k for k in need if k not in found]
    if missing:
        hints = "; ".join(f"{k}: one of {', '.join(ALIASES[k])}" for k in missing)
        raise FileFormatError(f"{path}: line 1: missing column(s) {hints}")
    return found


class FileImporter:
    """Imports reading files through the pipeline, straight into the store (the file is its own spool);
    if the store is down, the rest goes to the spool and is written when it is back."""

    def __init__(self, pipeline: Pipeline, store: TimeSeriesStore, timezone: str) -> None:
        self.pipeline = pipeline
        self.store = store
        self.timezone = timezone

    def import_file(self, path: str | Path, *, dry_run: bool = False, date_format: str | None = None,
                    timestamps: str = "start", kind: str | None = None, repair_midnight: bool = False,
                    chunk_rows: int = 500_000) -> ImportReport:
        path = Path(path)
        if not path.exists():
            raise FileFormatError(f"{path}: no such file")
        if timestamps not in ("start", "end"):
            raise ValueError("timestamps must be 'start' or 'end' (of the interval each row measures)")
        report = ImportReport(str(path), dry_run=dry_run)
        source = f"file:{path.name}"
        last_ts: dict[str, pd.Timestamp] = {}
        store_down = False
        for chunk in read_table(path, chunk_rows):
            cols = _columns(chunk, path)
            report.rows += len(chunk)
            rejects: list[dict] = []
            if "period_start" in cols and "period_end" in cols and "ts" not in cols:
                frame = self._periods(chunk, cols, date_format, rejects, source, report)
                row_kind = Kind.INTERVAL
            else:
                frame = self._readings(chunk, cols, date_format, timestamps, rejects, source, report)
                frame = self._backwards(frame, last_ts, repair_midnight, rejects, report)
                row_kind = Kind(kind or "interval")
                if "kind" in cols:
                    kinds = set(chunk[cols["kind"]].str.strip().str.lower()) - {""}
                    if len(kinds) > 1 or not kinds <= {"interval", "cumulative"}:
                        raise FileFormatError(f"{path}: column {cols['kind']!r} must hold one of interval, "
                                              f"cumulative for the whole file, found {sorted(kinds)}")
                    row_kind = Kind(kinds.pop()) if kinds else row_kind
            done = self.pipeline.process([("energy", row_kind, frame.assign(source=source))])
            rejects += done.rejects
            rows = done.rows if done.rows is not None else pd.DataFrame()
            self._tally(report, rows, rejects)
            if dry_run:
                continue
            if not store_down:
                try:
                    if len(rows):
                        self.store.write("energy", rows, source=source)
                    self._quarantine(rejects, source)
                    self.pipeline.spool.append(None, [], done.state_json())
                    self.pipeline.commit_state(done.state)
                    report.accepted += len(rows)
                    continue
                except StoreUnavailable as exc:
                    store_down = True
                    report.notes.append(f"store unavailable ({exc}); the rest is spooled")
            self.pipeline.spool.append(rows if len(rows) else None, rejects, done.state_json())
            self.pipeline.commit_state(done.state)
            report.spooled += len(rows)
            report.accepted += len(rows)
        if dry_run:
            report.accepted = sum(report.series.values())
        return report

    # ---- row shapes ------------------------------------------------------------------------------
    def _parse_times(self, raw: pd.Series, date_format: str | None) -> tuple[pd.Series, pd.Series]:
        """Aware timestamps (UTC) and a mask of rows that could not be read.  No offset: park time zone."""
        text = raw.fillna("").astype(str).str.strip()
        has_offset = text.str.contains(_OFFSET)
        out = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns, UTC]")
        if has_offset.any():
            out[has_offset] = pd.to_datetime(text[has_offset], format=date_format or "ISO8601", utc=True,
                                              errors="coerce")
        naive = ~has_offset
        if naive.any():
            local = pd.to_datetime(text[naive], format=date_format or "ISO8601", errors="coerce")
            if not isinstance(local.dtype, pd.DatetimeTZDtype):
                local = local.dt.tz_localize(self.timezone, ambiguous="NaT", nonexistent="NaT")
            out[naive] = local.dt.tz_convert("UTC")
        return out, out.isna()

    def _bad_rows(self, chunk: pd.DataFrame, mask: pd.Series, cols: dict, code: str, what: str, rejects: list,
                  source: str) -> None:
        for r in chunk[mask].itertuples(index=False):
            row = r._asdict() if hasattr(r, "_asdict") else dict(zip(chunk.columns, r, strict=True))
            rejects.append({"measurement": "energy", "source": source, "row": None, "line": int(row["line"]),
                            "series": str(row.get(cols["series"], "")), "ts": str(row.get(cols.get("ts", ""), "")),
                            "value": str(row.get(cols["value"], "")), "code": code,
                            "reason": f"line {int(row['line'])}: {what}: {sentence(code)}"})

    def _readings(self, chunk, cols, date_format, timestamps, rejects, source, report) -> pd.DataFrame:
        ts, bad = self._parse_times(chunk[cols["ts"]], date_format)
        if bad.any():
            fmt = date_format or "ISO 8601 (e.g. 2024-03-01 00:15 or 2024-03-01T00:15:00+08:00)"
            self._bad_rows(chunk, bad, cols, "reading.bad_timestamp", f"cannot read the time as {fmt}", rejects,
                           source)
        frame = pd.DataFrame({"ts": ts, "series": chunk[cols["series"]].str.strip(), "value": chunk[cols["value"]],
                              "line": chunk["line"]})
        for key in ("unit", "quality"):
            if key in cols:
                frame[key] = chunk[cols[key]].replace("", None)
        frame = frame[~bad]
        if timestamps == "end":
            step = frame["series"].map(lambda s: self.pipeline.catalog[s].interval_s
                                       if s in self.pipeline.catalog else 900)
            frame["ts"] = frame["ts"] - pd.to_timedelta(step, unit="s")
        note = (f"times without an offset were read as {self.timezone} (park time); timestamps mark the interval "
                f"{timestamps}")
        if note not in report.notes and (~chunk[cols["ts"]].astype(str).str.strip().str.contains(_OFFSET)).any():
            report.notes.append(note)
        return frame

    def _backwards(self, frame, last_ts, repair, rejects, report) -> pd.DataFrame:
        """Rows of one series must go forward in time.  The known fault of a row dated exactly one day early (every
        day's 00:00 row carrying the previous day's date) can be repaired by rule; anything else is rejected."""
        if not len(frame):
            return frame
        prev = frame.groupby("series", sort=False)["ts"].shift(1)
        first = prev.isna()
        prev[first] = frame.loc[first, "series"].map(last_ts).astype("datetime64[ns, UTC]")
        suspect = frame.loc[(frame["ts"] <= prev).to_numpy(), "series"].unique()
        clean = ~frame["series"].isin(suspect)
        last_ts.update(frame[clean].groupby("series", sort=False)["ts"].last().to_dict())
        if not len(suspect):
            return frame
        parts = [frame[clean]]
        for series, rows in frame[~clean].groupby("series", sort=False):  # row by row, only where needed
            parts.append(self._backwards_rows(series, rows, last_ts, repair, rejects, report))
        return pd.concat(parts).sort_index()

    def _backwards_rows(self, series, rows, last_ts, repair, rejects, report) -> pd.DataFrame:
        keep = np.ones(len(rows), dtype=bool)
        ts = list(rows["ts"])
        interval = pd.Timedelta(seconds=self.pipeline.catalog[series].interval_s
                                if series in self.pipeline.catalog else 900)
        repaired = 0
        for i, t in enumerate(ts):
            prev = last_ts.get(series)
            if prev is not None and t <= prev:
                fixed = t + pd.Timedelta("1D")
                one_day_early = fixed - prev == interval
                if repair and one_day_early:
                    ts[i] = fixed
                    repaired += 1
                elif t < prev:
                    keep[i] = False
                    line = int(rows["line"].iloc[i])
                    hint = (" (dated exactly one day early, as when every day's 00:00 row carries the previous "
                            "day's date: re-run with --repair-midnight)") if one_day_early else ""
                    rejects.append({"measurement": "energy", "source": None, "row": None, "line": line,
                                    "series": series, "ts": t.isoformat(), "value": str(rows["value"].iloc[i]),
                                    "code": "file.time_backwards",
                                    "reason": f"line {line}: {t.tz_convert(self.timezone)} comes after "
                                              f"{prev.tz_convert(self.timezone)}{hint}: "
                                              f"{sentence('file.time_backwards')}"})
                    continue
                # t == prev: a repeated row; the later value wins (idempotent), harmless
            last_ts[series] = ts[i]
        if repaired:
            report.codes["file.midnight_repaired"] += repaired
        rows = rows.assign(ts=pd.Series(ts, index=rows.index, dtype="datetime64[ns, UTC]"))
        return rows[keep]

    def _periods(self, chunk, cols, date_format, rejects, source, report) -> pd.DataFrame:
        start, bad_s = self._parse_times(chunk[cols["period_start"]], date_format)
        end, bad_e = self._parse_times(chunk[cols["period_end"]], date_format)
        series = chunk[cols["series"]].str.strip()
        interval = series.map(lambda s: self.pipeline.catalog[s].interval_s if s in self.pipeline.catalog else 900)
        span = (end - start).dt.total_seconds()
        bad = bad_s | bad_e | (span <= 0) | ((span % interval) != 0)
        if bad.any():
            self._bad_rows(chunk, bad, cols, "file.bad_period",
                           "the period must end after it starts, on whole intervals of the meter", rejects, source)
        ok = ~bad
        value = pd.to_numeric(chunk[cols["value"]], errors="coerce")
        n = (span[ok] // interval[ok]).astype(int).to_numpy()
        starts = np.repeat(start[ok].astype("int64").to_numpy(), n)
        offsets = np.concatenate([np.arange(k) for k in n]) if len(n) else np.array([], dtype=int)
        steps = np.repeat(interval[ok].to_numpy(), n) * 1_000_000_000
        frame = pd.DataFrame({
            "ts": pd.to_datetime(starts + offsets * steps, unit="ns", utc=True),
            "series": np.repeat(series[ok].to_numpy(dtype=object), n),
            # a non-number stays text so the store's validation names it
            "value": np.repeat(np.where(value[ok].notna(), value[ok] / np.maximum(n, 1), chunk[cols["value"]][ok]),
                               n),
            "quality": "substituted",
            "line": np.repeat(chunk["line"][ok].to_numpy(), n),
        })
        if "unit" in cols:
            frame["unit"] = np.repeat(chunk[cols["unit"]][ok].replace("", None).to_numpy(dtype=object), n)
        return frame

    def _tally(self, report: ImportReport, rows: pd.DataFrame, rejects: list[dict]) -> None:
        report.rejected += len(rejects)
        for r in rejects:
            report.codes[r["code"]] += 1
            if len(report.rejects) < 50:
                report.rejects.append(r)
        if len(rows):
            report.series.update(rows["series"].value_counts().to_dict())
            lo, hi = rows["ts"].min().tz_convert(self.timezone), rows["ts"].max().tz_convert(self.timezone)
            report.first = lo if report.first is None else min(report.first, lo)
            report.last = hi if report.last is None else max(report.last, hi)

    def _quarantine(self, rejects: list[dict], source: str) -> None:
        from park.store import Rejection

        self.store.quarantine("energy", [Rejection(row=r.get("row") if r.get("row") is not None else -1,
                                                   line=r.get("line"), series=r.get("series") or "",
                                                   ts=r.get("ts") or "", value=r.get("value") or "", code=r["code"],
                                                   reason=r["reason"]) for r in rejects], source)
