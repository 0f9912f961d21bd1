"""`parkcarbon forecast backtest FILE`: backtest the candidate models on a user's own CSV of (time, value).

The file is read by the importer's reader (encoding, delimiter, .gz, Excel, clear errors with line numbers).
A file that cannot be used is refused whole with one line saying why (exit 2); nothing is guessed silently:
naive times are taken as Asia/Shanghai, empty values are gaps (counted, never scored), a time going backwards
is an error unless --repair-midnight.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from collectors.sources.files import ALIASES, FileFormatError, read_table
from forecasting.backtest import REFERENCE, Backtest, backtest
from forecasting.calendar import LOCAL_TZ
from forecasting.series import problems, regular

FREQS = {"15min": "15min", "30min": "30min", "H": "1h", "h": "1h", "1h": "1h", "D": "1D", "d": "1D", "1D": "1D"}
_GUESS_FORMATS = ["%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M", "%Y/%m/%d %H:%M", "%d/%m/%Y %H:%M:%S", "%m/%d/%Y %H:%M:%S",
                  "%Y/%m/%d %H:%M:%S", "%d/%m/%Y", "%m/%d/%Y", "%Y/%m/%d", "%d.%m.%Y %H:%M"]


def _fail(path: Path, what: str) -> FileFormatError:
    return FileFormatError(f"{path}: {what}")


def _pick(columns: list[str], wanted: str | None, aliases: list[str], path: Path, role: str) -> str | None:
    if wanted is not None:
        if wanted not in columns:
            raise _fail(path, f"line 1: no column {wanted!r} ({role}); the header has {', '.join(map(repr, columns))}")
        return wanted
    lower = {c.strip().lower(): c for c in columns}
    return next((lower[a] for a in aliases if a in lower), None)


def _parse_times(text: pd.Series, lines: pd.Series, fmt: str | None, path: Path) -> pd.DatetimeIndex:
    text = text.str.strip()
    empty = text == ""
    if empty.any():
        raise _fail(path, f"line {int(lines[empty].iloc[0])}: the time is empty")
    if fmt is None:
        has_offset = text.str.contains(r"(?:Z|[+-]\d\d:?\d\d)$", regex=True)
        if has_offset.any() and not has_offset.all():
            i = int(np.flatnonzero((has_offset != has_offset.iloc[0]).to_numpy())[0])
            raise _fail(path, f"line {int(lines.iloc[i])}: time {text.iloc[i]!r} "
                        f"{'has no' if has_offset.iloc[0] else 'has a'} UTC offset unlike line "
                        f"{int(lines.iloc[0])}; give every time an offset or none (then Asia/Shanghai)")
        t = pd.to_datetime(text, format="ISO8601", errors="coerce", utc=bool(has_offset.any()))
        if t.isna().any():
            fits = [f for f in _GUESS_FORMATS if pd.to_datetime(text, format=f, errors="coerce").notna().all()]
            if len(fits) > 1 and {"%d/%m/%Y %H:%M", "%m/%d/%Y %H:%M"} <= set(fits) or (
                    {"%d/%m/%Y", "%m/%d/%Y"} <= set(fits)):
                raise _fail(path, f"times such as {text.iloc[0]!r} could be day/month or month/day; give "
                            "--date-format (e.g. '%d/%m/%Y %H:%M')")
            if fits:
                t = pd.to_datetime(text, format=fits[0])
    else:
        t = pd.to_datetime(text, format=fmt, errors="coerce")
    bad = t.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(path, f"line {int(lines.iloc[i])}: time {text.iloc[i]!r} is not "
                    f"{'in the format ' + repr(fmt) if fmt else 'ISO 8601 or a dd/mm/yyyy HH:MM-like date'}")
    idx = pd.DatetimeIndex(t)
    idx = idx.as_unit("ns")
    return idx.tz_convert(LOCAL_TZ) if idx.tz is not None else idx.tz_localize(LOCAL_TZ, ambiguous="raise")


def read_series(path: Path, time_column: str | None = None, value_column: str | None = None,
                date_format: str | None = None, repair_midnight: bool = False,
                timestamps: str = "start") -> tuple[pd.Series, str, list[str]]:
    """The (time, value) series of a file at its own interval, its value column's name, and notes."""
    path = Path(path)
    frame = pd.concat(list(read_table(path, chunk_rows=200_000)), ignore_index=True)
    columns = [str(c) for c in frame.columns if c != "line"]
    if len(frame) == 0:
        raise _fail(path, "has a header but no rows")
    tcol = _pick(columns, time_column, ALIASES["ts"], path, "time") or columns[0]
    vcol = _pick(columns, value_column, ALIASES["value"], path, "value")
    if vcol is None:
        for c in columns:
            if c != tcol and pd.to_numeric(frame[c].replace("", np.nan), errors="coerce").notna().sum() > 0 and (
                    pd.to_numeric(frame[c].replace("", np.nan), errors="coerce").notna()
                    == (frame[c] != "")).all():
                vcol = c
                break
    if vcol is None or vcol == tcol:
        raise _fail(path, f"line 1: no numeric value column found (give --value-column); the header has "
                    f"{', '.join(map(repr, columns))}")
    lines = frame["line"]
    t = _parse_times(frame[tcol].astype(str), lines, date_format, path)
    raw = frame[vcol].astype(str).str.strip()
    values = pd.to_numeric(raw.replace("", np.nan), errors="coerce")
    bad = values.isna() & (raw != "")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(path, f"line {int(lines.iloc[i])}: value {raw.iloc[i]!r} in column {vcol!r} is not a number")
    notes: list[str] = []
    ns = t.asi8.copy()
    day = 86_400 * 10**9
    step = np.diff(ns)
    if repair_midnight and len(ns) > 2:
        slot = int(np.median(step[step > 0])) if (step > 0).any() else 0
        local = t.tz_localize(None).asi8
        midnight = (local[1:] % day) == 0
        back = midnight & (step == -(day - slot))
        if back.any():
            ns[1:][back] += day
            notes.append(f"{int(back.sum())} midnight row(s) carrying the previous day's date moved forward a day "
                         "(--repair-midnight)")
        step = np.diff(ns)
    if (step <= 0).any():
        i = int(np.flatnonzero(step <= 0)[0]) + 1
        what = "repeats" if step[i - 1] == 0 else "goes backwards from"
        hint = "" if repair_midnight else " (a 00:00 row carrying the previous day's date? use --repair-midnight)"
        raise _fail(path, f"line {int(lines.iloc[i])}: time {frame[tcol].iloc[i]!r} {what} line "
                    f"{int(lines.iloc[i - 1])}'s{hint}")
    index = pd.DatetimeIndex(pd.to_datetime(ns, utc=True)).tz_convert(LOCAL_TZ)
    if timestamps == "end" and len(index) > 1:
        index = index - pd.Timedelta(int(np.median(np.diff(ns))), "ns")
    if values.isna().any():
        notes.append(f"{int(values.isna().sum())} empty value(s) are gaps: not scored")
    return pd.Series(values.to_numpy(dtype=float), index=index, name=vcol), vcol, notes


def resample(y: pd.Series, freq: str, how: str = "sum") -> tuple[pd.Series, list[str]]:
    """The series on `freq` bins; a bin missing any of its source points is a gap (NaN), never a partial sum."""
    if freq not in FREQS:
        raise ValueError(f"unknown --freq {freq!r}; use one of H, D, 15min, 30min")
    rule = pd.Timedelta(FREQS[freq])
    native = pd.Series(y.index).diff().dropna().min() if len(y) > 1 else rule
    if native > rule:
        raise ValueError(f"the file's interval ({native}) is longer than --freq {freq}")
    per_bin = int(rule // native)
    out = y.resample(rule).mean() if how == "mean" else y.resample(rule).sum(min_count=1)
    counts = y.resample(rule).count()
    partial = counts < per_bin
    notes = []
    if partial.any():
        out[partial] = np.nan
        notes.append(f"{int(partial.sum())} {freq} bin(s) with fewer than {per_bin} source values are gaps")
    return out, notes


def _fmt(v: float | None, pattern: str) -> str:
    return "-" if v is None else pattern.format(v)


def report_text(bt: Backtest, path: Path, column: str, n: int, notes: list[str]) -> str:
    lines = [f"backtest of {path} ({column}): {n} points at {bt.freq}, horizon {bt.horizon} steps, "
             f"{len(bt.origins)} origin(s) {bt.origins[0] if bt.origins else ''} .. "
             f"{bt.origins[-1] if bt.origins else ''}; MASE season {bt.season} steps",
             f"{'model':<22} {'MASE':>6} {'vs SN':>7} {'MAPE %':>8} {'cov80':>6} {'cov95':>6} {'s/fit':>6}"]
    for s in bt.scores:
        if s.error:
            lines.append(f"{s.model:<22} failed: {s.error}")
            continue
        mark = "  <- chosen" if s.model == bt.chosen else ""
        lines.append(f"{s.model:<22} {_fmt(s.mase, '{:6.3f}')} {_fmt(s.mase_vs_reference, '{:7.3f}')} "
                     f"{_fmt(s.mape, '{:8.1f}')} {_fmt(s.coverage_80, '{:6.2f}')} {_fmt(s.coverage_95, '{:6.2f}')} "
                     f"{s.fit_seconds:6.2f}{mark}")
    if bt.chosen:
        s = bt.score(bt.chosen)
        rel = s.mase_vs_reference
        vs = f"{100 * (1 - rel):.0f} % lower MASE than {REFERENCE}" if rel is not None else "no reference"
        lines.append(f"chosen: {bt.chosen} (MASE {s.mase:.3f}; {vs}; nominal coverage 0.80 / 0.95)")
    else:
        lines.append("chosen: none (no model could be scored)")
    lines += [f"note: {n}" for n in [*notes, *bt.notes]]
    return "\n".join(lines)


def report_json(bt: Backtest, path: Path, column: str, n: int, notes: list[str]) -> str:
    models = [{"model": s.model, "mase": s.mase, "mape": s.mape, "mape_skipped_zero_actuals": s.mape_skipped,
               "coverage_80": s.coverage_80, "coverage_95": s.coverage_95,
               "mase_vs_seasonal_naive": s.mase_vs_reference, "points": s.points, "fit_seconds": s.fit_seconds,
               "error": s.error, "chosen": s.model == bt.chosen} for s in bt.scores]
    return json.dumps({"file": str(path), "column": column, "points": n, "freq": bt.freq, "horizon": bt.horizon,
                       "origins": bt.origins, "mase_season": bt.season, "reference": REFERENCE,
                       "chosen": bt.chosen, "models": models, "notes": [*notes, *bt.notes]}, indent=1)


def cmd_forecast_backtest(args: argparse.Namespace, settings=None) -> int:
    path = Path(args.file)
    y, column, notes = read_series(path, args.time_column, args.value_column, args.date_format,
                                   args.repair_midnight, args.timestamps)
    try:
        y, more = resample(y, args.freq, args.agg)
        y = regular(y)
    except ValueError as exc:
        raise _fail(path, str(exc)) from None
    notes += more + [p for p in problems(y) if not p.endswith("they are not scored")]
    if args.horizon < 1:
        raise _fail(path, "--horizon must be at least 1")
    try:
        bt = backtest(y, args.horizon, origins=args.origins, step=args.step)
    except ValueError as exc:
        raise _fail(path, str(exc)) from None
    print(report_json(bt, path, column, len(y), notes) if args.json else report_text(bt, path, column, len(y),
                                                                                        notes))
    return 0 if bt.chosen else 1


def register(sub) -> argparse.ArgumentParser:
    """Add `forecast` (with `backtest`) to the parkcarbon sub-parsers."""
    fc = sub.add_parser("forecast", help="forecasting: backtest the models on your own data (forecast backtest FILE)")
    fsub = fc.add_subparsers(dest="forecast_command", required=True, metavar="ACTION")
    bt = fsub.add_parser(
        "backtest", help="rolling-origin backtest of every model on a CSV of (time, value)",
        description="Backtest the candidate models (seasonal naive daily and weekly, similar day, exponential "
        "smoothing, gradient boosting) on a CSV or Excel file of (time, value) with a rolling origin, and print "
        "each model's MASE (scaled by in-sample seasonal-naive error), MAPE (zero actuals skipped), 80 %% and "
        "95 %% interval coverage, and the model chosen (lowest MASE). Naive times are Asia/Shanghai.")
    bt.add_argument("file", type=Path)
    bt.add_argument("--freq", default="H", help="resample to H (default), D, 15min or 30min")
    bt.add_argument("--horizon", type=int, default=24, help="steps ahead (default 24)")
    bt.add_argument("--origins", type=int, default=8, help="number of forecast origins (default 8)")
    bt.add_argument("--step", type=int, help="steps between origins (default: the horizon)")
    bt.add_argument("--agg", choices=["sum", "mean"], default="sum",
                    help="how values combine into a bin: sum (energy per interval, default) or mean (power)")
    bt.add_argument("--time-column", help="the time column (default: ts/time/date..., else the first)")
    bt.add_argument("--value-column", help="the value column (default: value/usage..., else the first numeric)")
    bt.add_argument("--date-format", help="strptime format of the time column, e.g. '%%d/%%m/%%Y %%H:%%M'")
    bt.add_argument("--timestamps", choices=["start", "end"], default="start",
                    help="whether a row's time is the start (default) or the end of its interval")
    bt.add_argument("--repair-midnight", action="store_true",
                    help="move 00:00 rows carrying the previous day's date forward one day")
    bt.add_argument("--json", action="store_true", help="print JSON: one object per model and the chosen one")
    bt.set_defaults(func=cmd_forecast_backtest)
    return fc
