"""The ingestion pipeline shared by every source: validate -> normalise -> quality codes -> spool.

Sources hand over `RawReading`s (collectors/readings.py).  Validation is the store's own
(park/store/validate.py), so a row the pipeline accepts is one the store will accept.  Cumulative registers
become interval energy (collectors/normalise.py) with their counter state saved in the spool in the same
transaction as the intervals, so a restart neither loses nor doubles energy.  Rejections are spooled too and
reach the store's quarantine with their reason; nothing is dropped silently.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from collectors.normalise import NS, CounterState, MeterLimits, step
from collectors.readings import Kind, RawReading
from collectors.rules import sentence
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

    def state_json(self) -> dict[str, dict]:
        return {s: st.to_json() for s, st in self.state.items()}


@dataclass
class SubmitResult:
    queued: int = 0
    rejected: int = 0
    events: list[dict] = field(default_factory=list)  # flags such as meter.reset, meter.gap


def _numbers(values: list) -> pd.Series:
    """Floats when every value is a real number (the usual case: fast validation), else the raw objects so that
    validation can name the bad ones."""
    if all(type(v) in (float, int) for v in values):
        return pd.Series(values, dtype="float64")
    return pd.Series(values, dtype=object)


class Pipeline:
    """Turns raw readings into spooled interval values.  Thread-safe (sources run in several threads)."""

    def __init__(self, catalog: SeriesCatalog, spool: Spool, limits: dict[str, MeterLimits] | None = None,
                 clock=lambda: pd.Timestamp.now(tz="UTC")) -> None:
        self.catalog = catalog
        self.spool = spool
        self.limits = limits or {}
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
        return SubmitResult(queued=queued, rejected=len(done.rejects), events=done.events)

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
        for measurement, kind, frame in frames:
            valid = validate(frame, measurement, self.catalog)
            sources = frame["source"].to_numpy(dtype=object)
            for rej in valid.rejected:
                rejects.append({"measurement": measurement, "source": sources[rej.row], **rej.__dict__})
            lines = frame["line"].to_numpy(dtype=object) if "line" in frame else [None] * len(frame)
            good = valid.frame.assign(source=sources[valid.frame["row"].to_numpy()],
                                      line=[lines[i] for i in valid.frame["row"]])
            future = good["ts"] > self.clock() + MAX_CLOCK_SKEW
            for r in good[future].itertuples():
                rejects.append(self._reject(measurement, r, "reading.future", f"{r.ts.isoformat()} is ahead "
                                            f"of the collector's clock by more than {MAX_CLOCK_SKEW}"))
            good = good[~future]
            if kind == Kind.CUMULATIVE:
                good = self._intervals(good, rejects, state, events, start)
            rows.append(good.assign(measurement=measurement))
        frame = pd.concat(rows, ignore_index=True) if rows else None
        if isolated:
            return Processed(frame, rejects, {}, events, isolated_state=state)
        return Processed(frame, rejects, state, events)

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

    def _intervals(self, good: pd.DataFrame, rejects: list, state: dict, events: list,
                   start: dict[str, CounterState]) -> pd.DataFrame:
        out = []
        for series, readings in good.sort_values(["series", "ts"], kind="stable").groupby("series", sort=False):
            st = state.get(series, start.get(series))
            limits = self._limits(series)
            for r in readings.itertuples():
                ts_ns = int(r.ts.value)
                st, intervals, found, accepted = step(st, ts_ns, float(r.value), limits)
                for ev in found:
                    if ev.code in ("reading.spike", "reading.out_of_order", "reading.duplicate"):
                        rejects.append(self._reject("energy", r, ev.code, ev.detail))
                    else:
                        events.append({"series": series, "code": ev.code, "ts": r.ts, "detail": ev.detail})
                for iv in intervals:
                    out.append((series, r.enterprise, r.workshop, r.carrier, iv.start_ns, iv.energy,
                                "estimated" if iv.estimated else "measured", r.source, r.line))
            state[series] = st
        frame = pd.DataFrame(out, columns=["series", "enterprise", "workshop", "carrier", "ts", "value", "quality",
                                           "source", "line"])
        frame["ts"] = pd.to_datetime(frame["ts"].astype("int64"), unit="ns", utc=True)
        return frame


__all__ = ["Pipeline", "SubmitResult", "NS"]
