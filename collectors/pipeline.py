"""The ingestion pipeline shared by every source: validate -> normalise -> quality codes -> spool.

Sources hand over `RawReading`s (collectors/readings.py).  Validation is the store's own
(park/store/validate.py), so a row the pipeline accepts is one the store will accept.  Cumulative registers
become interval energy (collectors/normalise.py) with their counter state saved in the spool in the same
transaction as the intervals, so a restart neither loses nor doubles energy.  Rejections are spooled too and
reach the store's quarantine with their reason; nothing is dropped silently.

Every reading read ends accepted, rejected (quarantined) or reported (an info finding such as an identical
duplicate: not applied, not quarantined): read = accepted + rejected + reported.  Every finding of the
normaliser (flags, infos and its rejects) and `reading.future` is returned as an event with series, ts, line,
code, severity and detail, plus `since` and `estimated` (energy in `unit` added as an estimate) where an event
concerns a window, so the import summary and the collector log can show them.  A pipeline built without
`limits` derives them for every meter of its catalogue (collectors/limits.py).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd

from collectors.limits import meter_limits
from collectors.normalise import NS, REJECTED, CounterState, MeterLimits, step
from collectors.readings import Kind, RawReading
from collectors.rules import RULES, sentence
from collectors.spool import Spool
from park.model import SeriesCatalog
from park.store.validate import validate

MAX_CLOCK_SKEW = pd.Timedelta("5min")


@dataclass
class Processed:
    rows: pd.DataFrame | None  # measurement, series, tags, ts, value, quality, source, line
    rejects: list[dict]
    state: dict[str, CounterState]
    events: list[dict]
    isolated_state: dict[str, CounterState] = field(default_factory=dict)  # process(isolated=True) only
    read: int = 0  # rows handed in ...
    accepted: int = 0  # ... = accepted (for registers: readings applied, not intervals made)
    reported: int = 0  # + reported (info, not applied, not quarantined) + len(rejects)

    def state_json(self) -> dict[str, dict]:
        return {s: st.to_json() for s, st in self.state.items()}


@dataclass
class SubmitResult:
    queued: int = 0  # values spooled (for registers: intervals)
    rejected: int = 0
    events: list[dict] = field(default_factory=list)  # every finding: series, ts, line, code, severity, detail
    read: int = 0  # readings handed in = accepted + rejected + reported
    accepted: int = 0
    reported: int = 0


def _numbers(values: list) -> pd.Series:
    """Floats when every value is a real number (the usual case: fast validation), else the raw objects so that
    validation can name the bad ones."""
    if all(type(v) in (float, int) for v in values):
        return pd.Series(values, dtype="float64")
    return pd.Series(values, dtype=object)


def _show(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else repr(value)


class Pipeline:
    """Turns raw readings into spooled interval values.  Thread-safe (sources run in several threads)."""

    def __init__(self, catalog: SeriesCatalog, spool: Spool, limits: dict[str, MeterLimits] | None = None,
                 clock=lambda: pd.Timestamp.now(tz="UTC"),
                 on_events: Callable[[list[dict]], None] | None = None) -> None:
        """`limits`: per series; by default derived from the catalogue's meters (collectors/limits.py).
        `on_events`: called with the events of every submit that found any (the collector service logs them)."""
        self.catalog = catalog
        self.on_events = on_events
        self.spool = spool
        self.limits = limits if limits is not None else meter_limits(catalog.meters.values(), strict=False)
        self.clock = clock
        self._lock = threading.Lock()
        self._state = {s: CounterState(**d) for s, d in spool.load_state().items()}

    def _limits(self, series: str) -> MeterLimits:
        if series in self.limits:
            return self.limits[series]
        return MeterLimits(interval_s=self.catalog[series].interval_s)

    def submit(self, readings: Iterable[RawReading]) -> SubmitResult:
        """Validate, normalise and spool a batch of readings from one or more sources."""
        groups: dict[tuple[str, str], list[RawReading]] = defaultdict(list)
        for r in readings:
            groups[(r.measurement, r.kind)].append(r)
        frames = []
        for (measurement, kind), batch in groups.items():
            def column(values: list) -> pd.Series:  # object columns: no costly per-element type inference
                return pd.Series(values, dtype=object)

            frame = pd.DataFrame({
                "ts": column([r.ts for r in batch]), "series": column([r.series for r in batch]),
                "value": _numbers([r.value for r in batch]), "unit": column([r.unit for r in batch]),
                "quality": column([r.quality for r in batch]), "line": column([r.line for r in batch]),
                "source": column([r.source for r in batch])})
            if frame["unit"].isna().all():
                frame = frame.drop(columns=["unit"])
            frames.append((measurement, Kind(kind), frame))
        return self.submit_frames(frames)

    def submit_frames(self, frames: list[tuple[str, Kind, pd.DataFrame]], *, isolated: bool = False
                      ) -> SubmitResult:
        """The columnar path (files, simulators): frames of ts, series, value, source and optional unit, quality,
        line.  Everything lands in the spool in one transaction.  `isolated`: see `process`."""
        with self._lock:
            done = self.process(frames, isolated=isolated)
            queued = self.spool.append(done.rows, done.rejects, done.state_json())
            self._state.update(done.state)
        if done.events and self.on_events is not None:
            self.on_events(done.events)
        return SubmitResult(queued=queued, rejected=len(done.rejects), events=done.events, read=done.read,
                            accepted=done.accepted, reported=done.reported)

    def process(self, frames: list[tuple[str, Kind, pd.DataFrame]], *, isolated: bool = False,
                carry: dict[str, CounterState] | None = None) -> Processed:
        """Validate and normalise without side effects: rows to store, rejections, new counter state.
        The caller persists the state together with the rows (`spool.append`) and then `commit_state`.

        `isolated=True` (a file that carries its own register history): cumulative series start from a fresh
        state, or from `carry` (the `isolated_state` of the file's previous chunk), never from the live counter
        state; the state reached is returned in `Processed.isolated_state` and `Processed.state` is empty, so
        nothing is persisted to or merged into the live state.  Re-importing a file gives the same intervals."""
        rows, rejects, state, events = [], [], {}, []
        start = dict(carry or {}) if isolated else self._state
        count = {"read": 0, "accepted": 0, "reported": 0}
        for measurement, kind, frame in frames:
            count["read"] += len(frame)
            valid = validate(frame, measurement, self.catalog, grid=kind is Kind.INTERVAL)
            sources = frame["source"].to_numpy(dtype=object)
            for rej in valid.rejected:
                rejects.append({"measurement": measurement, "source": sources[rej.row], **rej.__dict__})
            lines = frame["line"].to_numpy(dtype=object) if "line" in frame else [None] * len(frame)
            good = valid.frame.assign(source=sources[valid.frame["row"].to_numpy()],
                                      line=[lines[i] for i in valid.frame["row"]])
            seen = np.zeros(len(frame), dtype=bool)
            seen[[rej.row for rej in valid.rejected]] = True
            seen[good["row"].to_numpy()] = True
            if not seen.all():  # validation keeps the last of a (series, ts) within a batch: say what it dropped
                self._batch_duplicates(measurement, frame, np.flatnonzero(~seen), good, rejects, events, count)
            future = good["ts"] > self.clock() + MAX_CLOCK_SKEW
            for r in good[future].itertuples():
                detail = f"{r.ts.isoformat()} is ahead of the collector's clock by more than {MAX_CLOCK_SKEW}"
                rejects.append(self._reject(measurement, r, "reading.future", detail))
                events.append(self._event(r, "reading.future", detail))
            good = good[~future]
            if kind == Kind.CUMULATIVE:
                good = self._intervals(good, rejects, state, events, start, count)
            else:
                count["accepted"] += len(good)
            rows.append(good.assign(measurement=measurement))
        frame = pd.concat(rows, ignore_index=True) if rows else None
        if isolated:
            return Processed(frame, rejects, {}, events, isolated_state=state, **count)
        return Processed(frame, rejects, state, events, **count)

    def commit_state(self, state: dict[str, CounterState]) -> None:
        with self._lock:
            self._state.update(state)

    def reject(self, *, source: str, code: str, detail: str, series: str = "", ts: str = "", value: str = "",
               measurement: str = "energy", line: int | None = None) -> None:
        """Quarantine input a source could not even turn into a reading (a malformed payload, a failed read)."""
        self.spool.append(rejects=[{"measurement": measurement, "source": source, "row": None, "line": line,
                                    "series": series, "ts": ts, "value": value, "code": code,
                                    "reason": f"{detail}: {sentence(code)}"}])

    @staticmethod
    def _reject(measurement: str, r, code: str, detail: str) -> dict:
        return {"measurement": measurement, "source": r.source, "row": None, "line": r.line, "series": r.series,
                "ts": r.ts.isoformat(), "value": repr(r.value), "code": code, "reason": f"{detail}: {sentence(code)}"}

    def _batch_duplicates(self, measurement: str, frame: pd.DataFrame, dropped: np.ndarray, good: pd.DataFrame,
                          rejects: list, events: list, count: dict[str, int]) -> None:
        """Rows of a batch repeating the (series, ts) of a later row: the later one stands; an identical
        repeat is reported (`reading.duplicate`), one with another value is quarantined (`reading.conflict`)."""
        df = frame.reset_index(drop=True)
        kept = {(s, pd.Timestamp(t).value): int(i) for s, t, i in zip(good["series"], good["ts"], good["row"],
                                                                      strict=True)}
        unit = df["unit"] if "unit" in df else pd.Series(None, index=df.index, dtype=object)
        for i in dropped:
            ts = pd.Timestamp(df["ts"].iloc[i]).tz_convert("UTC")
            k = kept[(str(df["series"].iloc[i]), ts.value)]
            r = SimpleNamespace(series=str(df["series"].iloc[i]), ts=ts, value=df["value"].iloc[i],
                                line=df["line"].iloc[i] if "line" in df else None, source=df["source"].iloc[i])
            later = f"line {df['line'].iloc[k]}" if r.line is not None else f"row {k}"
            if (r.value, unit.iloc[i]) == (df["value"].iloc[k], unit.iloc[k]):
                count["reported"] += 1
                events.append(self._event(r, "reading.duplicate", f"{_show(r.value)} repeated later in the batch "
                                          f"({later}); nothing changes"))
            else:
                detail = (f"{_show(r.value)} at a time given again later in the batch with "
                          f"{_show(df['value'].iloc[k])} ({later}); the later value stands")
                rejects.append(self._reject(measurement, r, "reading.conflict", detail))
                events.append(self._event(r, "reading.conflict", detail))

    def _event(self, r, code: str, detail: str, since_ns: int | None = None, estimated: float = 0.0) -> dict:
        """A finding as the import summary and the collector log show it."""
        unit = self.catalog[r.series].unit if r.series in self.catalog else None
        return {"series": r.series, "ts": r.ts, "line": r.line, "source": r.source, "code": code,
                "severity": RULES[code].severity, "detail": detail,
                "since": None if since_ns is None else pd.Timestamp(since_ns, unit="ns", tz="UTC"),
                "estimated": estimated, "unit": unit}

    def _intervals(self, good: pd.DataFrame, rejects: list, state: dict, events: list,
                   start: dict[str, CounterState], count: dict[str, int]) -> pd.DataFrame:
        out = []
        for series, readings in good.sort_values(["series", "ts"], kind="stable").groupby("series", sort=False):
            st = state.get(series, start.get(series))
            limits = self._limits(series)
            for r in readings.itertuples():
                ts_ns = int(r.ts.value)
                st, intervals, found, status = step(st, ts_ns, float(r.value), limits)
                if status != REJECTED:  # rejections are counted by `rejects`
                    count[status] += 1
                for ev in found:
                    events.append(self._event(r, ev.code, ev.detail, ev.since_ns, ev.estimated))
                    if status == REJECTED and RULES[ev.code].severity == "reject":
                        rejects.append(self._reject("energy", r, ev.code, ev.detail))
                for iv in intervals:
                    out.append((series, r.enterprise, r.workshop, r.carrier, iv.start_ns, iv.energy,
                                "estimated" if iv.estimated else "measured", r.source, r.line))
            if st is not None:
                state[series] = st
        frame = pd.DataFrame(out, columns=["series", "enterprise", "workshop", "carrier", "ts", "value", "quality",
                                           "source", "line"])
        frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ns", utc=True)
        return frame


__all__ = ["Pipeline", "SubmitResult", "NS"]
