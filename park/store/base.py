"""The time-series store interface shared by the `embedded` (DuckDB) and `influx` backends.

Both backends implement the same small set of primitives (`_write_valid`, `_aggregate`, `_latest`,
`_delete`, quarantine and audit records); everything users see (windows in park-local time, a full
grid of windows with gaps left as NaN, coverage against the catalog's expected intervals) is built
here once, so both backends answer the same question the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from park.model import SeriesCatalog
from park.store.errors import SchemaError
from park.store.schema import AGGS, MEASUREMENTS, TAGS, Rejection, Window, WriteResult
from park.store.validate import validate

Where = Mapping[str, str | Sequence[str]]
STAT_COLUMNS = ["sum", "count", "measured", "min", "max"]


@dataclass(frozen=True)
class Correction:
    """One series' range that a correction replaces: its stored readings in [start, end) give way to the
    readings written inside `TimeSeriesStore.correction()`; `reason` and `rows` make its audit record."""

    series: str
    start: pd.Timestamp
    end: pd.Timestamp
    reason: str
    rows: int | None = None


def to_utc(t: datetime | str | pd.Timestamp, name: str = "time") -> pd.Timestamp:
    """A timezone-aware instant in UTC; naive input is refused rather than guessed."""
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        raise ValueError(f"{name} {t!r} has no time zone; pass an aware datetime (store UTC, show local)")
    return ts.tz_convert("UTC")


class TimeSeriesStore(ABC):
    """Interval readings per series, with quality codes, roll-ups, coverage, quarantine and audit."""

    backend: str = "abstract"

    def __init__(self, catalog: SeriesCatalog, timezone: str = "Asia/Shanghai") -> None:
        self.catalog = catalog
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)

    # ---- writing ---------------------------------------------------------------------------
    def write(self, measurement: str, frame: pd.DataFrame, *, source: str = "api") -> WriteResult:
        """Write a batch idempotently: the same (series, ts) written twice holds one value (the last).

        Columns: ts (aware), series, value; optional quality, unit, line.  Bad rows are quarantined
        with their reason and returned in the result; the good rows of the same batch are written.
        Interval values (energy) must start on their series' interval grid (`reading.off_grid`)."""
        batch = validate(frame, measurement, self.catalog, grid=True)
        if batch.rejected:
            self._quarantine(measurement, batch.rejected, source)
        written = self._write_valid(measurement, batch.frame) if len(batch.frame) else 0
        return WriteResult(written=written, rejected=batch.rejected)

    @abstractmethod
    def _write_valid(self, measurement: str, frame: pd.DataFrame) -> int:
        """Write validated rows and refresh the roll-ups they touch; return the rows written."""

    def quarantine(self, measurement: str, rejected: list[Rejection], source: str) -> None:
        """Keep rejected input for review (the collectors' own rejections come this way)."""
        if rejected:
            self._quarantine(measurement, rejected, source)

    @abstractmethod
    def _quarantine(self, measurement: str, rejected: list[Rejection], source: str) -> None: ...

    # ---- reading ---------------------------------------------------------------------------
    def aggregate(
        self,
        measurement: str,
        start: datetime,
        end: datetime,
        window: Window | str,
        by: Sequence[str] = (),
        agg: str | None = None,
        where: Where | None = None,
    ) -> pd.DataFrame:
        """Aggregate over [start, end) by window, grouped by tags.

        Returns one row per window and group of the catalog, gaps included (value NaN, never 0):
        `start` (park-local), the `by` tags, `value` (the aggregate), `count` (intervals present),
        `measured` (intervals with quality measured), `expected` (intervals the catalog expects) and
        `coverage` = measured / expected.
        """
        spec = self._spec(measurement)
        window = Window(window)
        agg = agg or spec.default_agg
        if agg not in AGGS:
            raise ValueError(f"unknown aggregate {agg!r}; use one of {', '.join(AGGS)}")
        by = self._check_tags(by)
        start_u, end_u = to_utc(start, "start"), to_utc(end, "end")
        if end_u < start_u:
            raise ValueError(f"reversed range: end {end} is before start {start}")
        if end_u == start_u:  # an empty range (the first quarter hour of a day or a month): no window, no row
            return self._empty_aggregate(by)
        stats = self._pieces(measurement, start_u, end_u, window, by, self._where(where))
        return self._finish(measurement, stats, start_u, end_u, window, by, agg, where)

    def _empty_aggregate(self, by: Sequence[str]) -> pd.DataFrame:
        """`aggregate`'s frame with no row, its columns typed as they are when it has rows."""
        columns: dict[str, pd.Series] = {"start": pd.Series([], dtype=f"datetime64[us, {self.tz}]")}
        columns.update({tag: pd.Series([], dtype=object) for tag in by})
        columns.update({"value": pd.Series([], dtype="float64"), "count": pd.Series([], dtype="int64"),
                        "measured": pd.Series([], dtype="int64"), "expected": pd.Series([], dtype="int64"),
                        "coverage": pd.Series([], dtype="float64")})
        return pd.DataFrame(columns)

    def coverage(
        self, measurement: str, start: datetime, end: datetime, by: Sequence[str] = ("series",),
        where: Where | None = None,
    ) -> pd.DataFrame:
        """Expected vs present vs measured intervals over [start, end) per group."""
        by = self._check_tags(by)
        start_u, end_u = to_utc(start, "start"), to_utc(end, "end")
        stats = self._pieces(measurement, start_u, end_u, None, by, self._where(where))
        out = self._finish(measurement, stats, start_u, end_u, None, by, "count", where)
        return out.drop(columns=["value"]).rename(columns={"count": "present"})

    def latest(self, measurement: str, where: Where | None = None) -> pd.DataFrame:
        """The newest reading of each series: series, ts (park-local), value, quality."""
        self._spec(measurement)
        out = self._latest(measurement, self._where(where))
        out["ts"] = pd.to_datetime(out["ts"], utc=True).dt.tz_convert(self.tz)
        return out.sort_values("series").reset_index(drop=True)

    def points(self, measurement: str, start: datetime, end: datetime, where: Where | None = None) -> pd.DataFrame:
        """Raw readings over [start, end): series, ts (park-local), value, quality."""
        self._spec(measurement)
        out = self._points(measurement, to_utc(start, "start"), to_utc(end, "end"), self._where(where))
        out["ts"] = pd.to_datetime(out["ts"], utc=True).dt.tz_convert(self.tz)
        return out.sort_values(["series", "ts"]).reset_index(drop=True)

    def series_values(self, measurement: str, series: str, start: datetime, end: datetime,
                      where: Where | None = None) -> pd.DataFrame:
        """One series' raw readings over [start, end): ts (UTC), value, in time order: what `points` gives for it
        without the series and quality columns and the park-local times (a year of one-minute bracelet currents
        is half a million rows: reading two columns is several times cheaper).  `where` may narrow further
        (e.g. an access layer's enterprise filter)."""
        self._spec(measurement)
        w = self._where(where)
        w["series"] = [s for s in w.get("series", [series]) if s == series]
        out = self._series_values(measurement, to_utc(start, "start"), to_utc(end, "end"), w)
        out = out.assign(ts=pd.to_datetime(out["ts"], utc=True))
        return out.sort_values("ts", kind="stable").reset_index(drop=True)

    def _series_values(self, measurement: str, start: pd.Timestamp, end: pd.Timestamp,
                       where: dict[str, list[str]]) -> pd.DataFrame:
        """ts, value of the readings `_points` selects (a backend may select the two columns alone)."""
        return self._points(measurement, start, end, where)[["ts", "value"]]

    def delete(self, measurement: str, series: str, start: datetime, end: datetime, *, actor: str,
               reason: str, action: str = "delete", rows: int | None = None) -> int:
        """Delete one series' readings in [start, end), refresh its roll-ups and record who and why.

        `action` and `rows` name the audit record when the deletion is part of something larger: a file
        import's correction ("correct") clears a range that it then writes anew, and records the values written."""
        self._spec(measurement)
        if series not in self.catalog:
            raise KeyError(f"series {series!r} is not a meter or device of this park")
        if not reason.strip():
            raise ValueError("a deletion needs a reason for the audit log")
        return self._delete(measurement, series, to_utc(start, "start"), to_utc(end, "end"), actor, reason,
                            action=action, audit_rows=rows)

    def correction(self, measurement: str, corrections: Sequence[Correction], *,
                   actor: str) -> AbstractContextManager[None]:
        """Replace ranges of series with what is written inside the `with` block, as safely as the backend allows.

        After the block, each correction's range holds exactly the readings written in it (the stored readings
        the block did not write again are gone) and has an audit record (action "correct").  If the block or
        the correction fails, no reading of a range is lost: the embedded store does all of it in one
        transaction (all or nothing); InfluxDB writes first (a reading of the same series and time is
        overwritten in place) and deletes the readings the block did not write only after every write
        succeeded, so a failure leaves each time with its old or its new value."""
        self._spec(measurement)
        checked = []
        for c in corrections:
            if c.series not in self.catalog:
                raise KeyError(f"series {c.series!r} is not a meter or device of this park")
            if not c.reason.strip():
                raise ValueError("a correction needs a reason for the audit log")
            checked.append(Correction(c.series, to_utc(c.start, "start"), to_utc(c.end, "end"), c.reason, c.rows))
        return self._correction(measurement, checked, actor)

    def _correction(self, measurement: str, corrections: list[Correction],
                    actor: str) -> AbstractContextManager[None]:
        raise NotImplementedError(f"the {self.backend} store does not implement corrections")

    def _pieces(self, measurement: str, start: pd.Timestamp, end: pd.Timestamp, window: Window | None,
                by: list[str], where: dict[str, list[str]]) -> pd.DataFrame:
        """Split [start, end) at park-local midnights (hours for hourly windows) so the aligned middle reads the
        coarsest roll-up and only the ragged ends read finer data ("today until now" costs a day of hourly
        roll-ups, not a month of them); then combine the pieces' stats per window and group."""
        if window is Window.QUARTER_HOUR:
            return self._aggregate(measurement, start, end, window, by, where)
        if window is Window.HOUR:
            first, last = start.ceil("h"), end.floor("h")
        else:
            local_s, local_e = start.tz_convert(self.tz), end.tz_convert(self.tz)
            first = local_s.floor("D") + (pd.DateOffset(days=1) if local_s != local_s.floor("D") else pd.DateOffset(0))
            first, last = first.tz_convert("UTC"), local_e.floor("D").tz_convert("UTC")
        if first >= last or (first == start and last == end):
            return self._aggregate(measurement, start, end, window, by, where)
        parts = [(start, first), (first, last), (last, end)]
        frames = [self._aggregate(measurement, a, b, window, by, where) for a, b in parts if a < b]
        frames = [f for f in frames if len(f)]
        if not frames:
            return self._aggregate(measurement, start, end, window, by, where)
        stats = pd.concat(frames, ignore_index=True)
        if window is None:
            stats["start"] = start
        stats["start"] = pd.to_datetime(stats["start"], utc=True)
        for col in by:
            stats[col] = stats[col].astype(object)
        grouped = stats.groupby(["start", *by], sort=False, dropna=False)  # None (no workshop) is a group too
        out = grouped[["count", "measured"]].sum()
        out["sum"] = grouped["sum"].sum(min_count=1)  # a group of gaps stays NaN, never 0
        out["min"], out["max"] = grouped["min"].min(), grouped["max"].max()
        out = out.reset_index()
        for col in by:
            values = out[col].astype(object)
            out[col] = values.where(values.notna(), None)
        return out

    @abstractmethod
    def _aggregate(self, measurement: str, start: pd.Timestamp, end: pd.Timestamp, window: Window | None,
                   by: list[str], where: dict[str, list[str]]) -> pd.DataFrame:
        """Stats per window start (UTC; `start` for window None) and group: sum, count, measured, min, max.
        Day and month windows are park-local."""

    @abstractmethod
    def _latest(self, measurement: str, where: dict[str, list[str]]) -> pd.DataFrame: ...

    @abstractmethod
    def _points(self, measurement: str, start: pd.Timestamp, end: pd.Timestamp,
                where: dict[str, list[str]]) -> pd.DataFrame: ...

    @abstractmethod
    def _delete(self, measurement: str, series: str, start: pd.Timestamp, end: pd.Timestamp, actor: str,
                reason: str, *, action: str = "delete", audit_rows: int | None = None) -> int:
        """Delete, refresh roll-ups, and write the audit record (`audit_rows`, else the rows deleted)."""

    @abstractmethod
    def quarantined(self, measurement: str | None = None) -> pd.DataFrame:
        """Quarantined input rows: received (UTC), measurement, source, row, line, series, ts, value,
        code, reason."""

    @abstractmethod
    def audit_log(self) -> pd.DataFrame:
        """Audit records: at (UTC), actor, action, measurement, series, start, end, rows, reason."""

    def refresh_rollups(self) -> int:
        """Fold pending writes into the roll-ups; return the ranges done.  A backend that refreshes inside
        each write (embedded) has none pending."""
        return 0

    def close(self) -> None:  # noqa: B027 (optional hook)
        """Release connections."""

    def __enter__(self) -> TimeSeriesStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- shared helpers ----------------------------------------------------------------------
    @staticmethod
    def _spec(measurement: str):
        try:
            return MEASUREMENTS[measurement]
        except KeyError:
            raise SchemaError(f"unknown measurement {measurement!r}; known: {', '.join(MEASUREMENTS)}") from None

    @staticmethod
    def _check_tags(by: Sequence[str]) -> list[str]:
        by = [by] if isinstance(by, str) else list(by)
        unknown = [b for b in by if b not in TAGS]
        if unknown:
            raise ValueError(f"cannot group by {', '.join(unknown)}; tags are {', '.join(TAGS)}")
        return by

    def _where(self, where: Where | None) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for key, val in (where or {}).items():
            if key not in TAGS:
                raise ValueError(f"cannot filter on {key!r}; tags are {', '.join(TAGS)}")
            out[key] = [val] if isinstance(val, str) else [str(v) for v in val]
        return out

    def window_starts(self, start: pd.Timestamp, end: pd.Timestamp, window: Window | None) -> pd.DatetimeIndex:
        """Window starts (UTC) covering [start, end); day and month windows begin at park-local midnight."""
        if window is None:
            return pd.DatetimeIndex([start])
        if window in (Window.QUARTER_HOUR, Window.HOUR):
            freq = "15min" if window is Window.QUARTER_HOUR else "h"
            return pd.date_range(start.floor(freq), end, freq=freq, inclusive="left")
        first = start.tz_convert(self.tz)
        local_start = first.floor("D") if window is Window.DAY else pd.Timestamp(first.year, first.month, 1,
                                                                               tz=self.tz)
        freq = "D" if window is Window.DAY else "MS"
        local = pd.date_range(local_start, end.tz_convert(self.tz), freq=freq, inclusive="left")
        return local.tz_convert("UTC")

    def _window_ends(self, starts: pd.DatetimeIndex, window: Window | None, end: pd.Timestamp) -> pd.DatetimeIndex:
        if window is None:
            return pd.DatetimeIndex([end])
        if window in (Window.QUARTER_HOUR, Window.HOUR):
            return starts + pd.Timedelta("15min" if window is Window.QUARTER_HOUR else "1h")
        local = starts.tz_convert(self.tz)
        nxt = local + (pd.DateOffset(days=1) if window is Window.DAY else pd.DateOffset(months=1))
        return pd.DatetimeIndex(nxt).tz_convert("UTC")

    def _series_frame(self, measurement: str, where: Where | None) -> pd.DataFrame:
        kind = MEASUREMENTS[measurement].kind
        rows = [(s.id, s.enterprise, s.workshop, s.carrier, s.interval_s) for s in self.catalog.series
                if s.kind == kind]
        frame = pd.DataFrame(rows, columns=["series", "enterprise", "workshop", "carrier", "interval_s"])
        for key, vals in self._where(where).items():
            frame = frame[frame[key].isin(vals)]
        return frame

    def _finish(self, measurement: str, stats: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                window: Window | None, by: list[str], agg: str, where: Where | None) -> pd.DataFrame:
        """Full grid of windows x groups, the aggregate, and coverage against the catalog."""
        series = self._series_frame(measurement, where)
        starts = self.window_starts(start, end, window)
        ends = self._window_ends(starts, window, end)
        # Clip windows to the asked range: a partial first or last window expects fewer intervals.
        clip_s = (np.minimum(ends, end) - np.maximum(starts, start)).total_seconds()
        grid = pd.DataFrame({"start": starts, "_span_s": np.asarray(clip_s, dtype=float)})
        series = series.assign(_rate=1.0 / series["interval_s"])
        if by:
            groups = series.groupby(by, dropna=False)["_rate"].sum().reset_index()
        else:
            groups = pd.DataFrame({"_rate": [series["_rate"].sum()]})
        full = grid.merge(groups, how="cross")
        full["expected"] = np.floor(full["_span_s"] * full["_rate"] + 1e-9).astype("int64")
        stats = stats.copy()
        stats["start"] = pd.to_datetime(stats["start"], utc=True)
        for col in by:
            full[col] = full[col].astype(object).where(full[col].notna(), None)
            stats[col] = stats[col].astype(object).where(stats[col].notna(), None)
        keys = ["start", *by]
        merged = full.merge(stats, on=keys, how="left") if len(stats) else full.assign(
            **{c: np.nan for c in STAT_COLUMNS})
        merged["count"] = merged["count"].fillna(0).astype("int64")
        merged["measured"] = merged["measured"].fillna(0).astype("int64")
        with np.errstate(divide="ignore", invalid="ignore"):
            value = {
                "sum": merged["sum"],
                "mean": merged["sum"] / merged["count"].replace(0, np.nan),
                "min": merged["min"],
                "max": merged["max"],
                "count": merged["count"].astype(float),
            }[agg]
        merged["value"] = value.where(merged["count"] > 0)
        merged["coverage"] = (merged["measured"] / merged["expected"].replace(0, np.nan)).clip(upper=1.0)
        merged["start"] = merged["start"].dt.tz_convert(self.tz)
        cols = ["start", *by, "value", "count", "measured", "expected", "coverage"]
        return merged[cols].sort_values(keys, na_position="first").reset_index(drop=True)
