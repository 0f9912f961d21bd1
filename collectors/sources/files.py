"""Manual and file readings: CSV and Excel (meter readings, load profiles, utility bills, deliveries).

Two row shapes, recognised by their columns (English or Chinese headers):
- readings: `ts, meter, value[, unit, kind, quality]`, one interval value (or a cumulative register when
  kind = cumulative) per row; a file of one meter may leave out the meter column (`meter=` names it);
- periods (bills, gas and steam deliveries): `meter, period_start, period_end, value[, unit]`, spread evenly over
  the meter's intervals in the period with quality `substituted` (the total is exact, its shape is not).

A file goes in whole or not at all.  It is read twice: the first pass checks it all (encoding, delimiter,
columns, every row through the pipeline) and stages what it would write; only then is anything written.  A file
that cannot be read is refused with one line (`FileFormatError`); bad rows are quarantined with their line and
reason and the good rows go in.  Every row read is accepted, rejected or reported (an identical repeat, not
applied): the report says so.  Cumulative registers are normalised from the file's own history
(`Pipeline.process(isolated=True)`), so re-importing a file changes nothing.  A file whose values differ from
stored ones is refused (`ValuesDiffer`) unless `correct=True`: then the stored values of those series in the
file's range are replaced and an audit record says who, when, which file, and the old and new totals.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from collectors.pipeline import MAX_CLOCK_SKEW, Pipeline
from collectors.readings import Kind
from collectors.rules import RULES, sentence
from park.store import Correction, Rejection, StoreUnavailable, TimeSeriesStore
from park.store.validate import off_grid, validate

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
_DELIMITERS = (",", "\t", ";", "|")
_BLOCK = 1 << 20
EXAMPLES = 3  # examples shown per event code


class FileFormatError(ValueError):
    """A file that cannot be imported at all (unreadable, undecodable, malformed, no usable columns).
    Nothing of it was written."""


class ValuesDiffer(ValueError):
    """The file gives other values than the store holds for some (series, time); nothing was written.
    `report` is the check's report."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class ImportReport:
    path: str
    rows: int = 0  # rows read (blank lines are not rows) = rows_accepted + rejected + rows_reported
    rows_accepted: int = 0
    rows_reported: int = 0  # not applied and not quarantined: an identical repeat
    rejected: int = 0  # rows quarantined
    accepted: int = 0  # interval values written (or spooled when the store went down), or that would be
    spooled: int = 0
    rejects: list[dict] = field(default_factory=list)  # the first 50, with line and reason
    codes: Counter = field(default_factory=Counter)  # rejections by code, and file.midnight_repaired
    event_codes: Counter = field(default_factory=Counter)  # flags and infos of the pipeline (resets, gaps, ...)
    events: list[dict] = field(default_factory=list)  # the first few of each event code
    series: Counter = field(default_factory=Counter)
    first: pd.Timestamp | None = None
    last: pd.Timestamp | None = None
    notes: list[str] = field(default_factory=list)
    differ: Counter = field(default_factory=Counter)  # values differing from stored ones, by series
    corrected: dict[str, int] = field(default_factory=dict)  # series -> values differing that were replaced
    dry_run: bool = False
    refused: bool = False  # values differ from stored ones and no correction was asked for: nothing written

    def summary(self) -> str:
        verb = "would import" if self.dry_run or self.refused else "imported"
        lines = [f"{self.path}: {self.rows} rows read = {self.rows_accepted} accepted + {self.rejected} rejected + "
                 f"{self.rows_reported} reported; {verb} {self.accepted} interval values for "
                 f"{len(self.series)} series"]
        if self.first is not None:
            lines.append(f"first interval {self.first}, last interval {self.last}")
        if self.spooled:
            lines.append(f"store unavailable: {self.spooled} values spooled; `parkcarbon collect` writes them "
                         "when the store is back")
        for series, n in sorted(self.corrected.items()):
            lines.append(f"corrected: {n} values of {series} replaced (audit record written)")
        lines += [f"note: {n}" for n in self.notes]
        if self.codes:
            lines.append("rejected or repaired, by code:")
            lines += [f"  {code}: {n}" for code, n in self.codes.most_common()]
        lines += [f"  {r['reason']}" for r in sorted(self.rejects, key=lambda r: r.get("line") or 0)[:20]]
        if self.event_codes:
            lines.append("reported (values kept or not applied), by code:")
            for code, n in self.event_codes.most_common():
                lines.append(f"  {code}: {n}")
                lines += [f"    {_where(e)}{e['series']} {_local(e['ts'], self)}: {e['detail']}"
                          for e in self.events if e["code"] == code][:EXAMPLES]
        return "\n".join(lines)

    _tz: str = "UTC"


def _where(e: dict) -> str:
    return f"line {e['line']}: " if e.get("line") is not None else ""


def _local(ts, report: ImportReport) -> str:
    try:
        return str(pd.Timestamp(ts).tz_convert(report._tz))
    except (TypeError, ValueError):
        return str(ts)


# ---- reading a file ------------------------------------------------------------------------------------
def _fail(path: Path, what: str) -> FileFormatError:
    return FileFormatError(f"{path}: {' '.join(str(what).split())}")


def _open_binary(path: Path):
    """The file's bytes (decompressed for .gz) and the raw file, whose position tells the progress."""
    if path.is_dir():
        raise _fail(path, "is a directory; give a CSV or Excel file")
    try:
        raw = open(path, "rb")  # noqa: SIM115 (closed by the caller)
    except PermissionError:
        raise _fail(path, "cannot be read: permission denied") from None
    except OSError as exc:
        raise _fail(path, f"cannot be read: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".gz":
        return gzip.GzipFile(fileobj=raw), raw
    return raw, raw


def _sniff_encoding(path: Path) -> str:
    """Decide the encoding from the whole file before anything is imported: a BOM (UTF-8, UTF-16), else UTF-8 if
    every byte decodes, else GB18030 (Chinese utility exports); a file that is neither is refused."""
    stream, raw = _open_binary(path)
    try:
        head = stream.read(4096)
        if not head:
            raise _fail(path, "is empty (no header row)")
        if head.startswith(codecs.BOM_UTF8):
            candidates = ["utf-8-sig"]
        elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            candidates = ["utf-16"]
        elif b"\x00" in head:
            even, odd = head[0::2].count(0), head[1::2].count(0)
            if odd > len(head) // 4 and even == 0:
                candidates = ["utf-16-le"]
            elif even > len(head) // 4 and odd == 0:
                candidates = ["utf-16-be"]
            else:
                raise _fail(path, "is not a text file (it holds NUL bytes); give a CSV or Excel file")
        else:
            candidates = ["utf-8", "gb18030"]
        for encoding in candidates:
            stream.seek(0)
            decoder = codecs.getincrementaldecoder(encoding)()
            line, ok = 1, True
            try:
                while block := stream.read(_BLOCK):
                    text = decoder.decode(block)
                    if "\x00" in text:
                        raise _fail(path, f"is not a text file (it holds NUL characters near line {line})")
                    line += text.count("\n")
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                ok, bad = False, (line, exc.object[exc.start:exc.start + 4])
            if ok:
                return encoding
        raise _fail(path, f"cannot be decoded as {' or '.join(c.upper() for c in candidates)} (near line "
                    f"{bad[0]}: bytes {bad[1].hex(' ')}); save it as UTF-8 CSV")
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise _fail(path, f"is not a complete gzip file ({exc})") from None
    finally:
        stream.close()
        raw.close()


def _sniff_delimiter(header: str) -> str:
    """The delimiter of the header line: the most frequent of , TAB ; | (a comma when none is present)."""
    counts = {d: header.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


class _Table:
    """A file as chunks of string frames with a `line` column (the line or row number a user sees)."""

    def __init__(self, path: Path, chunk_rows: int) -> None:
        self.path, self.chunk_rows = path, chunk_rows
        self.size = max(path.stat().st_size, 1) if path.is_file() else 1
        self.position = 0
        suffix = path.suffix.lower()
        self.excel = suffix in (".xlsx", ".xlsm", ".xls")
        if not self.excel and suffix not in (".csv", ".txt", ".gz", ".tsv"):
            if path.is_dir():
                raise _fail(path, "is a directory; give a CSV or Excel file")
            raise _fail(path, f"unknown file type {suffix!r}; use .csv (or .csv.gz, .txt) or .xlsx")
        if self.excel:
            self._frame = self._read_excel()
        else:
            self.encoding = _sniff_encoding(path)
            self.sep = self._delimiter()

    def _read_excel(self) -> pd.DataFrame:
        path = self.path
        _open_binary(path)[1].close()  # directory, permission
        if path.suffix.lower() != ".xls" and not zipfile.is_zipfile(path):
            raise _fail(path, "is not an Excel workbook (not a zip archive; a CSV file named .xlsx?)")
        try:
            frame = pd.read_excel(path, dtype=str).fillna("")
        except ImportError as exc:
            raise _fail(path, f"cannot be read: {exc}; save it as .xlsx or CSV") from None
        except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
            raise _fail(path, f"is not an Excel workbook that can be read ({type(exc).__name__}: {exc})") from None
        frame["line"] = np.arange(len(frame)) + 2
        return frame

    def _delimiter(self) -> str:
        stream, raw = _open_binary(self.path)
        with io.TextIOWrapper(stream, encoding=self.encoding, newline="") as text:
            header = text.readline()
        raw.close()
        return _sniff_delimiter(header)

    def chunks(self) -> Iterator[pd.DataFrame]:
        if self.excel:
            for i in range(0, max(len(self._frame), 1), self.chunk_rows):
                self.position = self.size if i + self.chunk_rows >= len(self._frame) else 0
                yield self._frame.iloc[i:i + self.chunk_rows]
            return
        stream, raw = _open_binary(self.path)
        try:
            with io.TextIOWrapper(stream, encoding=self.encoding, newline="") as text:
                reader = pd.read_csv(text, sep=self.sep, dtype=str, chunksize=self.chunk_rows,
                                     skipinitialspace=True, keep_default_na=False, skip_blank_lines=False)
                offset = 2
                for chunk in reader:
                    chunk["line"] = np.arange(len(chunk)) + offset
                    offset += len(chunk)
                    fields = chunk.columns.drop("line")
                    blank = (chunk[fields] == "").all(axis=1)
                    self.position = raw.tell()
                    yield chunk[~blank] if blank.any() else chunk
        except pd.errors.EmptyDataError:
            raise _fail(self.path, "is empty (no header row)") from None
        except pd.errors.ParserError as exc:
            m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if m:
                want, line, saw = m.groups()
                sep = {"\t": "TAB"}.get(self.sep, self.sep)
                raise _fail(self.path, f"line {line}: {saw} fields where the header has {want} (a value holding "
                            f"the delimiter {sep!r} must be quoted); nothing imported") from None
            raise _fail(self.path, f"cannot be parsed as CSV: {exc}") from None
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise _fail(self.path, f"is not a complete gzip file ({exc})") from None
        finally:
            stream.close()
            raw.close()


def read_table(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield string frames with a `line` column (the line/row number a user sees in an editor or Excel)."""
    yield from _Table(Path(path), chunk_rows).chunks()


def _columns(frame: pd.DataFrame, path: Path, meter: str | None) -> dict[str, str]:
    lower = {str(c).strip().lower(): c for c in frame.columns if c != "line"}
    found = {key: lower[a] for key, names in ALIASES.items() for a in names if a in lower}
    if meter is not None:
        if "series" in found:
            raise _fail(path, f"already has a meter column ({found['series']!r}); --meter is for files of one "
                        "meter without one")
        found["series"] = "\x00meter"
    periods = "period_start" in found and "period_end" in found
    need = ["series", "value"] + ([] if periods else ["ts"])
    missing = [k for k in need if k not in found]
    if missing:
        hints = "; ".join(f"{k}: one of {', '.join(ALIASES[k])}" for k in missing)
        extra = " (or name the meter with --meter)" if "series" in missing else ""
        raise _fail(path, f"line 1: missing column(s) {hints}{extra}; the header has "
                    f"{', '.join(repr(str(c)) for c in frame.columns if c != 'line')}")
    return found


# ---- staging between the check and the write ------------------------------------------------------------
class _Stage:
    """What the check pass would write, chunk by chunk; spilled to Arrow files when the file has several chunks
    so a 17-million-row file does not have to fit in memory twice."""

    def __init__(self) -> None:
        self._items: list = []
        self._dir: str | None = None

    def add(self, rows: pd.DataFrame, rejects: list[dict]) -> None:
        if len(self._items) >= 1 and len(rows):
            import pyarrow.feather as feather

            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="parkcarbon-import-")
                self._items = [self._spill(r, q, feather) for r, q in self._items]
            self._items.append(self._spill(rows, rejects, feather))
        else:
            self._items.append((rows, rejects))

    def _spill(self, rows, rejects, feather):
        if not isinstance(rows, pd.DataFrame) or not len(rows):
            return rows, rejects
        name = os.path.join(self._dir, f"{len(os.listdir(self._dir))}.arrow")
        feather.write_feather(rows.astype({"line": "Int64"}) if "line" in rows else rows, name)
        return name, rejects

    def __iter__(self):
        import pyarrow.feather as feather

        for rows, rejects in self._items:
            yield (feather.read_feather(rows) if isinstance(rows, str) else rows), rejects

    def __len__(self) -> int:
        return len(self._items)

    def close(self) -> None:
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


@dataclass
class _SeriesSpan:
    """One series' part of a file: its range, its total, and how it compares with the store."""

    start: pd.Timestamp
    end: pd.Timestamp  # exclusive: the end of the last interval
    total: float = 0.0
    values: int = 0
    differ: int = 0
    example: str = ""


Progress = Callable[[str, int, float], None]  # phase ("checking", "writing"), rows, fraction done


class FileImporter:
    """Imports reading files through the pipeline, straight into the store (the file is its own spool);
    if the store goes down while writing, the rest goes to the spool and is written when it is back."""

    def __init__(self, pipeline: Pipeline, store: TimeSeriesStore, timezone: str) -> None:
        self.pipeline = pipeline
        self.store = store
        self.timezone = timezone

    def import_file(self, path: str | Path, *, dry_run: bool = False, date_format: str | None = None,
                    timestamps: str = "start", kind: str | None = None, repair_midnight: bool = False,
                    meter: str | None = None, correct: bool = False, actor: str = "import",
                    progress: Progress | None = None, chunk_rows: int = 500_000) -> ImportReport:
        path = Path(path)
        if not path.exists():
            raise _fail(path, "no such file")
        if timestamps not in ("start", "end"):
            raise ValueError("timestamps must be 'start' or 'end' (of the interval each row measures)")
        if meter is not None and meter not in self.pipeline.catalog:
            raise _fail(path, f"--meter {meter!r} is not a meter of this park")
        table = _Table(path, chunk_rows)
        report = ImportReport(str(path), dry_run=dry_run)
        report._tz = self.timezone
        stage = _Stage()
        spans: dict[str, _SeriesSpan] = {}
        try:
            self._check(table, report, stage, spans, date_format, timestamps, kind, repair_midnight, meter,
                        progress)
            differ = {s: sp for s, sp in spans.items() if sp.differ}
            report.differ.update({s: sp.differ for s, sp in differ.items()})
            if differ and not correct:
                report.refused, report.accepted = True, sum(report.series.values())
                raise ValuesDiffer(self._differ_message(path, differ), report)
            if dry_run:
                return report
            if differ:
                with self.store.correction("energy", self._corrections(path, differ, report), actor=actor):
                    self._write(path, stage, report, progress, atomic=True)
            else:
                self._write(path, stage, report, progress)
            return report
        finally:
            stage.close()

    # ---- pass 1: check everything, stage what would be written ------------------------------------------
    def _check(self, table: _Table, report: ImportReport, stage: _Stage, spans: dict, date_format, timestamps,
               kind, repair, meter, progress) -> None:
        path, source = table.path, f"file:{table.path.name}"
        last: dict[str, tuple[pd.Timestamp, int]] = {}
        carry: dict = {}
        cols = None
        file_kind: Kind | None = None
        for chunk in table.chunks():
            if cols is None:
                cols = _columns(chunk, path, meter)
            if meter is not None:
                chunk = chunk.assign(**{cols["series"]: meter})
            report.rows += len(chunk)
            rejects: list[dict] = []
            if "period_start" in cols and "period_end" in cols and "ts" not in cols:
                frame = self._periods(chunk, cols, date_format, rejects, source)
                frame = self._off_grid(frame, rejects) if len(frame) else frame
                row_kind = Kind.INTERVAL
            else:
                frame = self._readings(chunk, cols, date_format, timestamps, rejects, source, report)
                row_kind = self._kind(chunk, cols, kind, path)
                if file_kind is not None and row_kind != file_kind:
                    raise _fail(path, f"column {cols['kind']!r} must hold one kind for the whole file; line "
                                f"{int(chunk['line'].iloc[0])} onwards is {row_kind.value}, earlier lines "
                                f"{file_kind.value}")
                file_kind = row_kind
                frame = self._backwards(frame, last, repair, rejects, report, row_kind == Kind.INTERVAL)
            done = self.pipeline.process([("energy", row_kind, frame.assign(source=source))], isolated=True,
                                         carry=carry)
            carry = done.isolated_state
            rows = done.rows if done.rows is not None else pd.DataFrame(columns=["series", "ts", "value", "line"])
            rejects += [self._for_file(r) for r in done.rejects]
            if "period_start" in cols and "ts" not in cols:
                rows, rejects, counts = self._period_rows(chunk, rows, rejects)
            else:
                accepted = getattr(done, "accepted", len(frame) - len(done.rejects))
                counts = (accepted, len(rejects), getattr(done, "reported", 0))
            report.rows_accepted += counts[0]
            report.rejected += counts[1]
            report.rows_reported += counts[2]
            self._events(done.events, report)
            self._tally(report, rows, rejects)
            self._compare(rows, spans)
            if not report.dry_run:
                stage.add(rows, rejects)
            if progress:
                progress("checking", report.rows, table.position / table.size)
        if cols is None:
            raise _fail(path, "is empty (no header row)")
        if report.dry_run:
            report.accepted = sum(report.series.values())

    @staticmethod
    def _kind(chunk, cols, kind, path) -> Kind:
        row_kind = Kind(kind or "interval")
        if "kind" in cols:
            kinds = set(chunk[cols["kind"]].astype(str).str.strip().str.lower()) - {""}
            if len(kinds) > 1 or not kinds <= {"interval", "cumulative"}:
                raise _fail(path, f"column {cols['kind']!r} must hold one of interval, cumulative for the whole "
                            f"file, found {sorted(kinds)}")
            row_kind = Kind(kinds.pop()) if kinds else row_kind
        return row_kind

    def _for_file(self, r: dict) -> dict:
        """A pipeline rejection as a file's user reads it: its line first, times in park time."""
        r = dict(r)
        reason = r["reason"]
        if r["code"] == "reading.future":
            now = self.pipeline.clock().tz_convert(self.timezone)
            when = pd.Timestamp(r["ts"]).tz_convert(self.timezone)
            reason = (f"{when} is in the future: later than now ({now:%Y-%m-%d %H:%M%z}) by more than "
                      f"{int(MAX_CLOCK_SKEW.total_seconds() // 60)} min: {sentence('reading.future')}")
        line = r.get("line")
        if line is not None and not pd.isna(line):
            r["line"] = int(line)
            if not reason.startswith(f"line {int(line)}:"):
                reason = f"line {int(line)}: {reason}"
        r["reason"] = reason
        return r

    def _events(self, events: list[dict], report: ImportReport) -> None:
        for e in events:
            if RULES.get(e["code"]) is not None and RULES[e["code"]].severity == "reject":
                continue  # already a rejection, with its line and reason
            report.event_codes[e["code"]] += 1
            if sum(1 for x in report.events if x["code"] == e["code"]) < EXAMPLES:
                line = e.get("line")
                report.events.append({**e, "line": None if line is None or pd.isna(line) else int(line)})

    def _compare(self, rows: pd.DataFrame, spans: dict[str, _SeriesSpan]) -> None:
        """Extend each series' span and count values that differ from stored ones (same series and time)."""
        if not len(rows):
            return
        codes, names = pd.factorize(rows["series"])
        interval_s = np.array([self.pipeline.catalog[s].interval_s for s in names], dtype="int64")[codes]
        ends = rows["ts"] + pd.to_timedelta(interval_s, unit="s")
        lo, hi = rows["ts"].min(), ends.max()
        names = sorted(names)
        stored = self.store.points("energy", lo, hi, where={"series": names})
        grouped = rows.assign(_end=ends).groupby("series")
        stats = grouped.agg(lo=("ts", "min"), hi=("_end", "max"), total=("value", "sum"), n=("value", "size"))
        for s, st in stats.iterrows():
            sp = spans.get(s)
            if sp is None:
                spans[s] = _SeriesSpan(st["lo"], st["hi"], float(st["total"]), int(st["n"]))
            else:
                sp.start, sp.end = min(sp.start, st["lo"]), max(sp.end, st["hi"])
                sp.total += float(st["total"])
                sp.values += int(st["n"])
        if not len(stored):
            return
        stored = stored.assign(ts=stored["ts"].dt.tz_convert("UTC"))
        both = rows[["series", "ts", "value"]].merge(stored[["series", "ts", "value"]], on=["series", "ts"],
                                                      suffixes=("", "_stored"))
        tol = 1e-9 * np.maximum(1.0, np.abs(both["value_stored"].to_numpy()))
        diff = both[np.abs(both["value"].to_numpy() - both["value_stored"].to_numpy()) > tol]
        for s, part in diff.groupby("series"):
            sp = spans[s]
            if not sp.example:
                r = part.iloc[0]
                unit = self.pipeline.catalog[s].unit
                sp.example = (f"{r['ts'].tz_convert(self.timezone)}: stored {r['value_stored']:g} {unit}, file "
                              f"{r['value']:g} {unit}")
            sp.differ += len(part)

    def _differ_message(self, path: Path, differ: dict[str, _SeriesSpan]) -> str:
        parts = [f"{sp.differ} values of {s} differ from the stored ones between "
                 f"{sp.start.tz_convert(self.timezone)} and {sp.end.tz_convert(self.timezone)} (e.g. {sp.example})"
                 for s, sp in sorted(differ.items())]
        return (f"{path}: " + "; ".join(parts) + "; nothing written. If the file corrects them, re-run with "
                "--correct: the stored values of those series in the file's range are replaced and an audit "
                "record is kept")

    # ---- pass 2: write ------------------------------------------------------------------------------------
    def _corrections(self, path: Path, differ: dict[str, _SeriesSpan], report: ImportReport) -> list[Correction]:
        """Each differing series' range in the file, replaced by the staged rows (`TimeSeriesStore.correction`:
        one transaction on the embedded store, write-then-delete on InfluxDB), with an audit record per series:
        file, range, old and new totals, values written and values that differed."""
        out = []
        for s, sp in sorted(differ.items()):
            old = self.store.points("energy", sp.start, sp.end, where={"series": s})["value"].sum()
            unit = self.pipeline.catalog[s].unit
            reason = (f"corrected from file {path.name} ({path}): old total {old:g} {unit}, new total "
                      f"{sp.total:g} {unit}; {sp.values} values written, {sp.differ} of them differed")
            out.append(Correction(s, sp.start, sp.end, reason, sp.values))
            report.corrected[s] = sp.differ
        return out

    def _write(self, path: Path, stage: _Stage, report: ImportReport, progress, atomic: bool = False) -> None:
        """Write the staged rows; if the store goes down, spool the rest, except in a correction (`atomic`),
        which fails whole instead: spooled rows would be written after the correction had ended."""
        source = f"file:{path.name}"
        store_down = False
        for i, (rows, rejects) in enumerate(stage):
            if not store_down:
                try:
                    if len(rows):
                        self.store.write("energy", rows, source=source)
                    self._quarantine(rejects, source)
                    report.accepted += len(rows)
                    if progress:
                        progress("writing", report.accepted, (i + 1) / len(stage))
                    continue
                except StoreUnavailable as exc:
                    if atomic:
                        raise
                    store_down = True
                    report.notes.append(f"store unavailable ({exc}); the rest is spooled")
            self.pipeline.spool.append(rows if len(rows) else None, rejects, {})
            report.spooled += len(rows)
            report.accepted += len(rows)

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

    def _bad_rows(self, chunk: pd.DataFrame, mask: pd.Series, cols: dict, code: str, what, rejects: list,
                  source: str) -> None:
        """Reject rows; `what(row)` says what is wrong with that row."""
        for _, row in chunk[mask].iterrows():
            line = int(row["line"])
            rejects.append({"measurement": "energy", "source": source, "row": None, "line": line,
                            "series": str(row.get(cols["series"], "")), "ts": str(row.get(cols.get("ts", ""), "")),
                            "value": str(row.get(cols["value"], "")), "code": code,
                            "reason": f"line {line}: {what(row)}: {sentence(code)}"})

    def _readings(self, chunk, cols, date_format, timestamps, rejects, source, report) -> pd.DataFrame:
        ts, bad = self._parse_times(chunk[cols["ts"]], date_format)
        if bad.any():
            fmt = (f"the format {date_format!r}" if date_format else
                   "ISO 8601 (e.g. 2024-03-01 00:15 or 2024-03-01T00:15:00+08:00)")
            hint = ("check --date-format" if date_format else
                    "if the file writes times another way, give it with --date-format, e.g. "
                    "--date-format '%d/%m/%Y %H:%M'")
            self._bad_rows(chunk, bad, cols, "reading.bad_timestamp",
                           lambda row: f"cannot read the time {str(row[cols['ts']])!r} as {fmt}; {hint}", rejects,
                           source)
        frame = pd.DataFrame({"ts": ts, "series": chunk[cols["series"]].astype(str).str.strip(),
                              "value": chunk[cols["value"]], "line": chunk["line"]})
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

    def _off_grid(self, frame: pd.DataFrame, rejects: list[dict]) -> pd.DataFrame:
        """Reject interval values off their series' grid here, with the store's own reason: the pipeline validates
        raw registers, which may be read at any time, so it leaves the grid to the store's write."""
        mask = off_grid(frame["ts"], frame["series"], self.pipeline.catalog)
        if not mask.any():
            return frame
        where = np.flatnonzero(mask)
        valid = validate(frame.iloc[where], "energy", self.pipeline.catalog, grid=True)
        drop = []
        for r in valid.rejected:
            if r.code == "reading.off_grid":
                rejects.append({"measurement": "energy", "source": None, **r.__dict__, "row": None})
                drop.append(where[r.row])
        return frame.drop(index=frame.index[drop]).reset_index(drop=True)

    def _eligible(self, frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
        """Which of `rows` the store would accept and are not in the future: only these may be the reference
        for `file.time_backwards` (a rejected row must not make the good rows after it look late)."""
        part = frame.iloc[rows]
        ok = np.ones(len(rows), dtype=bool)
        ok[[r.row for r in validate(part, "energy", self.pipeline.catalog).rejected]] = False
        return ok & (part["ts"] <= self.pipeline.clock() + MAX_CLOCK_SKEW).to_numpy()

    def _backwards(self, frame, last, repair, rejects, report, intervals: bool) -> pd.DataFrame:
        """Rows of one series must go forward in time.  The known fault of a row dated exactly one day early (every
        day's 00:00 row carrying the previous day's date) can be repaired by rule; anything else is rejected.
        Only rows that go in count as the reference, and only where it matters is that checked row by row."""
        if not len(frame):
            return frame
        frame = frame.reset_index(drop=True)
        if intervals:
            frame = self._off_grid(frame, rejects)
        prev = frame.groupby("series", sort=False)["ts"].shift(1)
        first = prev.isna()
        prev[first] = pd.to_datetime(frame.loc[first, "series"].map(lambda s: last[s][0] if s in last else pd.NaT),
                                     utc=True).astype(prev.dtype)
        suspect = set(frame.loc[(frame["ts"] <= prev).to_numpy(), "series"])
        tails = frame[~frame["series"].isin(suspect)].groupby("series", sort=False).tail(1)
        tail_ok = self._eligible(frame, tails.index.to_numpy())
        suspect |= set(tails.loc[~tail_ok, "series"])  # its last row does not go in: find the one that does
        last.update({s: (t, int(n)) for s, t, n, ok in zip(tails["series"], tails["ts"], tails["line"], tail_ok,
                                                           strict=True) if ok and s not in suspect})
        if not suspect:
            return frame
        keep = np.ones(len(frame), dtype=bool)
        ts = frame["ts"].copy()
        for series in suspect:  # row by row, only where needed
            idx = np.flatnonzero((frame["series"] == series).to_numpy())
            idx = idx[self._eligible(frame, idx)]
            self._backwards_rows(series, frame, idx, ts, keep, last, repair, rejects, report)
        return frame.assign(ts=ts)[keep]

    def _backwards_rows(self, series, frame, idx, ts, keep, last, repair, rejects, report) -> None:
        interval = pd.Timedelta(seconds=self.pipeline.catalog[series].interval_s
                                if series in self.pipeline.catalog else 900)
        repaired = 0
        for i in idx:
            t, line = ts.iloc[i], int(frame["line"].iloc[i])
            prev, prev_line = last.get(series, (None, None))
            if prev is not None and t <= prev:
                fixed = t + pd.Timedelta("1D")
                one_day_early = fixed - prev == interval
                if repair and one_day_early:
                    ts.iloc[i] = fixed
                    repaired += 1
                elif t < prev:
                    keep[i] = False
                    hint = (" (dated exactly one day early, as when every day's 00:00 row carries the previous "
                            "day's date: re-run with --repair-midnight)") if one_day_early else ""
                    rejects.append({"measurement": "energy", "source": None, "row": None, "line": line,
                                    "series": series, "ts": t.isoformat(), "value": str(frame["value"].iloc[i]),
                                    "code": "file.time_backwards",
                                    "reason": f"line {line}: {t.tz_convert(self.timezone)} is earlier than "
                                              f"{prev.tz_convert(self.timezone)} on line {prev_line}, an earlier row "
                                              f"of {series}{hint}: {sentence('file.time_backwards')}"})
                    continue
                # t == prev: a repeated row; the pipeline reports or rejects it
            last[series] = (ts.iloc[i], line)
        if repaired:
            report.codes["file.midnight_repaired"] += repaired

    def _periods(self, chunk, cols, date_format, rejects, source) -> pd.DataFrame:
        start, bad_s = self._parse_times(chunk[cols["period_start"]], date_format)
        end, bad_e = self._parse_times(chunk[cols["period_end"]], date_format)
        series = chunk[cols["series"]].astype(str).str.strip()
        interval = series.map(lambda s: self.pipeline.catalog[s].interval_s if s in self.pipeline.catalog else 900)
        span = (end - start).dt.total_seconds()
        bad = bad_s | bad_e | (span <= 0) | ((span % interval) != 0)
        if bad.any():
            self._bad_rows(chunk, bad, cols, "file.bad_period",
                           lambda row: (f"period {str(row[cols['period_start']])!r} to "
                                        f"{str(row[cols['period_end']])!r} must end after it starts, on whole "
                                        "intervals of the meter"), rejects, source)
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
            "value": np.repeat(np.where(value[ok].notna(), value[ok] / np.maximum(n, 1),
                                        chunk[cols["value"]][ok].astype(object)), n),
            "quality": "substituted",
            "line": np.repeat(chunk["line"][ok].to_numpy(), n),
        })
        if "unit" in cols:
            frame["unit"] = np.repeat(chunk[cols["unit"]][ok].replace("", None).to_numpy(dtype=object), n)
        return frame

    @staticmethod
    def _period_rows(chunk, rows, rejects) -> tuple[pd.DataFrame, list[dict], tuple[int, int, int]]:
        """A bill or delivery is one row spread over many intervals: it goes in whole (its total is exact) or is
        rejected whole, once, with its first reason."""
        by_line: dict[int, dict] = {}
        for r in rejects:
            by_line.setdefault(int(r["line"]), r)
        if by_line and len(rows):
            rows = rows[~rows["line"].astype(int).isin(by_line.keys())]
        return rows, list(by_line.values()), (len(chunk) - len(by_line), len(by_line), 0)

    def _tally(self, report: ImportReport, rows: pd.DataFrame, rejects: list[dict]) -> None:
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
        self.store.quarantine("energy", [Rejection(row=r.get("row") if r.get("row") is not None else -1,
                                                   line=r.get("line"), series=r.get("series") or "",
                                                   ts=r.get("ts") or "", value=r.get("value") or "", code=r["code"],
                                                   reason=r["reason"]) for r in rejects], source)


class ProgressLine:
    """Progress of a long import on a terminal: rows, rate, time left, rewritten in place at most twice a
    second.  The command line uses it only when standard error is a terminal (a log stays quiet)."""

    def __init__(self, stream, name: str, clock=time.monotonic) -> None:
        self.stream, self.name, self.clock = stream, name, clock
        self.started = self.shown = clock()
        self.phase = ""
        self.width = 0

    def __call__(self, phase: str, rows: int, fraction: float) -> None:
        now = self.clock()
        if phase != self.phase:
            self.phase, self.started = phase, now
        elif now - self.shown < 0.5 and fraction < 1:
            return
        self.shown = now
        elapsed = max(now - self.started, 1e-6)
        left = elapsed * (1 - fraction) / fraction if fraction > 0 else None
        text = (f"{self.name}: {phase} {rows:,} rows, {rows / elapsed:,.0f} rows/s, {fraction:.0%}"
                + (f", about {_duration(left)} left" if left is not None and fraction < 1 else ""))
        self.stream.write("\r" + text.ljust(self.width))
        self.width = len(text)
        self.stream.flush()

    def done(self) -> None:
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
