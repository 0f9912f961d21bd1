"""Anomalies in meter and bracelet data: robust seasonal residuals and an isolation forest (docs/warnings.md,
`anomaly.*`).

Per meter, hourly energy (kWh), and per equipment bracelet, hourly mean current (A), from the store through the
access layer.  The *expected* value of an hour is the
median of the same hour on the previous 28 days of the same kind (working day or day off, Chinese calendar with
its make-up working days); the residual is observed - expected; its scale is the robust standard deviation
(1.4826 x the median absolute deviation) of the meter's residuals before the examined window, per hour of the day
and kind of day, never below a tenth of the meter's typical (median positive) hourly value.  A series with fewer
than 14 days of history before the window is not examined.  Rules:

* anomaly.spike: |residual| > 6 robust sd in one hour;
* anomaly.level_shift: the day's median residual beyond 3 robust sd, the same sign, two days or more in a row;
* anomaly.off_hours: night (22:00-06:00) or day-off hours above the history's 99th percentile of such hours plus
  3 robust sd;
* anomaly.flatline: at least 6 hours of one repeated value (often 0) where the meter was expected to vary;
* anomaly.profile_mismatch: the meter's daily energy stopped following the rest of its enterprise (correlation
  on the working days of the last 14 days below 0.2 after at least 0.6 over the 8 weeks before);
* anomaly.unusual_day: an isolation forest trained on the meter's previous days (24-hour profiles) scores a day
  as an outlier, outside every training day's score;
* anomaly.outage: half or more of the park's meters at zero or silent in the same hours where they were expected to
  consume: ONE warning for the park (a storm is one warning, not one per meter), and the meters' own findings in
  those hours are dropped.

Consecutive findings of one kind on one series merge into one (its start the first, its end the last, observed
and expected those of the largest deviation).  Missing hours are never read as zero: they are not scored (a meter
without readings is warning.meter_silent).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from forecasting.calendar import LOCAL_TZ, day_table

SPIKE, LEVEL_SHIFT, OFF_HOURS = "anomaly.spike", "anomaly.level_shift", "anomaly.off_hours"
FLATLINE, PROFILE, UNUSUAL_DAY, OUTAGE = ("anomaly.flatline", "anomaly.profile_mismatch", "anomaly.unusual_day",
                                          "anomaly.outage")
SEVERITY = {SPIKE: "warning", LEVEL_SHIFT: "warning", OFF_HOURS: "warning", FLATLINE: "warning", PROFILE: "info",
            UNUSUAL_DAY: "info", OUTAGE: "critical"}
PARK_SERIES = "park"
REFERENCE_DAYS = 28
SPIKE_SD, SHIFT_SD, OFF_SD = 6.0, 3.0, 3.0
FLAT_HOURS = 6
NIGHT = (22, 6)  # night hours: from 22:00 to 06:00
OUTAGE_SHARE = 0.5
MIN_HISTORY_DAYS = 14  # a series with fewer days of history before the examined window is not examined


@dataclass(frozen=True)
class Anomaly:
    code: str
    severity: str
    series: str
    enterprise: str | None
    start: pd.Timestamp  # park-local
    end: pd.Timestamp  # park-local, exclusive
    expected: float | None
    observed: float | None
    unit: str
    reason: str  # one line, with expected and observed
    detected_at: datetime

    @property
    def key(self) -> str:
        """Like a warning's key (portal.alerts.Alert.key: kind|subject|period), so acknowledgements attach."""
        return f"{self.code}|{self.series}|{pd.Timestamp(self.start).isoformat()}"


@dataclass
class _Hit:
    code: str
    series: str
    start: pd.Timestamp
    end: pd.Timestamp
    expected: float | None
    observed: float | None
    deviation: float


def _matrix(values: pd.Series, days: pd.DatetimeIndex) -> np.ndarray:
    """(days, 24) hourly values of a series indexed by local hour starts (NaN where missing)."""
    idx = values.index
    day_pos = days.get_indexer(idx.normalize())
    out = np.full((len(days), 24), np.nan)
    ok = day_pos >= 0
    out[day_pos[ok], idx.hour[ok]] = values.to_numpy(dtype=float)[ok]
    return out


def expected_matrix(m: np.ndarray, day_off: np.ndarray, ref_days: int = REFERENCE_DAYS) -> np.ndarray:
    """Per day and hour, the median of the same hour over the previous `ref_days` days of the same kind (NaN when
    fewer than 3 such days)."""
    out = np.full(m.shape, np.nan)
    for d in range(len(m)):
        lo = max(0, d - ref_days)
        same = np.flatnonzero(day_off[lo:d] == day_off[d]) + lo
        if len(same) >= 3:
            with np.errstate(all="ignore"):
                block = m[same]
                if np.isfinite(block).any():
                    import warnings

                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", RuntimeWarning)
                        out[d] = np.nanmedian(block, axis=0)
    return out


def robust_sd(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return float("nan")
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _merge(hits: list[_Hit], gap: pd.Timedelta) -> list[_Hit]:
    """Consecutive hits of one kind on one series (each starting within `gap` of the previous one's end) as one,
    keeping the largest deviation's observed and expected."""
    out: list[_Hit] = []
    for h in sorted(hits, key=lambda h: (h.code, h.series, h.start)):
        last = out[-1] if out else None
        if last and last.code == h.code and last.series == h.series and h.start <= last.end + gap:
            big = h if h.deviation > last.deviation else last
            out[-1] = _Hit(h.code, h.series, last.start, max(last.end, h.end), big.expected, big.observed,
                           big.deviation)
        else:
            out.append(h)
    return out


def _series_hits(series: str, m: np.ndarray, days: pd.DatetimeIndex, day_off: np.ndarray, first: int,
                 hours: pd.Timedelta) -> tuple[list[_Hit], np.ndarray, float]:
    """Spike, level shift, off-hours and flat-line hits of one meter in days[first:]; also its expected matrix
    and the residuals' robust sd per day and hour."""
    exp = expected_matrix(m, day_off)
    res = m - exp
    history = m[:first]
    positive = history[np.isfinite(history) & (history > 0)]
    level = float(np.median(positive)) if len(positive) else 0.0
    overall = robust_sd(res[:first].ravel())
    if not np.isfinite(overall) or int(np.isfinite(history).any(axis=1).sum()) < MIN_HISTORY_DAYS:
        return [], exp, np.full(m.shape, np.nan)  # too little history to know what is normal
    # the residuals' scale per hour of the day and kind of day (a day shift varies more than the night), never
    # below a tenth of the meter's typical level: a very regular meter is not flagged for a few per cent
    floor = max(0.5 * overall, 0.1 * level, 1e-9)
    sd = np.full(m.shape, floor)
    for kind in (False, True):
        rows = np.flatnonzero(day_off[:first] == kind)
        for h in range(24):
            v = robust_sd(res[rows, h]) if len(rows) >= 5 else float("nan")
            sd[day_off == kind, h] = max(v, floor) if np.isfinite(v) else max(overall, floor)
    z = res / sd
    hits: list[_Hit] = []

    def at(d: int, h: int) -> pd.Timestamp:
        return days[d] + pd.Timedelta(hours=h)

    # level shift: whole days off the same way, two or more in a row
    day_med = np.array([np.nanmedian(r) if np.isfinite(r).any() else np.nan for r in z])
    shifted = np.zeros(len(days), dtype=bool)
    for d in range(first, len(days)):
        run = [d]
        sign = np.sign(day_med[d])
        if not np.isfinite(day_med[d]) or abs(day_med[d]) <= SHIFT_SD:
            continue
        for e in (d - 1, d + 1):
            if 0 <= e < len(days) and np.isfinite(day_med[e]) and abs(day_med[e]) > SHIFT_SD and np.sign(
                    day_med[e]) == sign:
                run.append(e)
        if len(run) >= 2:
            shifted[d] = True
            obs, ex = float(np.nanmean(m[d])), float(np.nanmean(exp[d]))  # the day's hourly average
            hits.append(_Hit(LEVEL_SHIFT, series, days[d], days[d] + pd.Timedelta(days=1), ex, obs,
                             abs(day_med[d])))
    # spikes (outside the shifted days) and night or day-off use above anything such hours saw
    night = np.zeros(24, dtype=bool)
    night[NIGHT[0]:] = True
    night[:NIGHT[1]] = True
    quiet = day_off[:, None] | night[None, :]  # (days, 24): night or day-off hours
    off_ref = m[:first][quiet[:first]]
    off_ref = off_ref[np.isfinite(off_ref)]
    off_sd = robust_sd(res[:first][quiet[:first]])
    off_sd = max(off_sd, floor) if np.isfinite(off_sd) else floor
    off_limit = float(np.quantile(off_ref, 0.99)) + OFF_SD * off_sd if len(off_ref) >= 24 else np.inf
    for d in range(first, len(days)):
        for h in range(24):
            o, e = m[d, h], exp[d, h]
            if not np.isfinite(o):
                continue
            if not shifted[d] and np.isfinite(e) and abs(z[d, h]) > SPIKE_SD:
                hits.append(_Hit(SPIKE, series, at(d, h), at(d, h) + hours, float(e), float(o), abs(z[d, h])))
            elif quiet[d, h] and o > off_limit:
                hits.append(_Hit(OFF_HOURS, series, at(d, h), at(d, h) + hours,
                                 float(e) if np.isfinite(e) else None, float(o), (o - off_limit) / off_sd))
    # flat line: FLAT_HOURS or more of one repeated value where the expectation was to vary from it
    flat = m[first:].ravel()
    expf = exp[first:].ravel()
    run_start = None
    for i in range(len(flat) + 1):
        same = i < len(flat) and i > 0 and np.isfinite(flat[i]) and flat[i] == flat[i - 1]
        if same and run_start is None:
            run_start = i - 1
        if not same and run_start is not None:
            n = i - run_start
            seg_o, seg_e = flat[run_start:i], expf[run_start:i]
            off = np.abs(z[first:].ravel()[run_start:i]) > SHIFT_SD
            if n >= FLAT_HOURS and np.nanmean(off) >= 0.5:
                d0, h0 = divmod(run_start, 24)
                s = at(first + d0, h0)
                hits.append(_Hit(FLATLINE, series, s, s + n * hours, float(np.nanmean(seg_e)), float(seg_o[0]),
                                 float(np.nanmean(np.abs(z[first:].ravel()[run_start:i])))))
            run_start = None
    return hits, exp, sd


def _unusual_days(series: str, m: np.ndarray, days: pd.DatetimeIndex, first: int, seed: int = 0) -> list[_Hit]:
    """Isolation forest on the meter's complete 24-hour day profiles before `first`; days from `first` scored."""
    from sklearn.ensemble import IsolationForest

    complete = np.isfinite(m).all(axis=1)
    train = m[:first][complete[:first]]
    if len(train) < 14:
        return []
    forest = IsolationForest(n_estimators=50, contamination=0.01, random_state=seed).fit(train)
    floor = float(forest.score_samples(train).min())
    totals = train.mean(axis=1)
    hits = []
    for d in range(first, len(days)):
        if not complete[d]:
            continue
        score = float(forest.score_samples(m[d:d + 1])[0])
        if forest.predict(m[d:d + 1])[0] == -1 and score < floor:
            hits.append(_Hit(UNUSUAL_DAY, series, days[d], days[d] + pd.Timedelta(days=1), float(np.median(totals)),
                             float(m[d].mean()), floor - score))
    return hits


def _profile_mismatch(series: str, daily: pd.DataFrame, enterprise_of: dict[str, str], end_day: pd.Timestamp
                      ) -> list[_Hit]:
    """Daily energy of `series` against the rest of its enterprise: recent 14 days vs the 8 weeks before."""
    ent = enterprise_of.get(series)
    mates = [s for s, e in enterprise_of.items() if e == ent and s != series and s in daily.columns]
    if not mates or series not in daily.columns:
        return []
    rest = daily[mates].sum(axis=1, min_count=1)
    # working days only: on days off every meter drops, which says nothing about following the enterprise
    working = ~day_table(pd.DatetimeIndex(daily.index))["day_off"].to_numpy(dtype=bool)
    recent = working & (daily.index >= end_day - pd.Timedelta(days=14))
    before = working & (daily.index < end_day - pd.Timedelta(days=14)) & (
        daily.index >= end_day - pd.Timedelta(days=70))

    def corr(mask) -> float | None:
        a, b = daily.loc[mask, series], rest[mask]
        ok = a.notna() & b.notna()
        if ok.sum() < 7 or a[ok].std() == 0 or b[ok].std() == 0:
            return None
        return float(np.corrcoef(a[ok], b[ok])[0, 1])

    r_before, r_recent = corr(before), corr(recent)
    if r_before is None or r_recent is None or not (r_before >= 0.6 and r_recent < 0.2):
        return []
    start = daily.index[daily.index >= end_day - pd.Timedelta(days=14)][0]
    return [_Hit(PROFILE, series, start, end_day, r_before, r_recent, r_before - r_recent)]


def detect(hourly: pd.DataFrame, enterprise_of: dict[str, str], since: pd.Timestamp, end: pd.Timestamp,
           detected_at: datetime, tz: str = LOCAL_TZ, unit: str = "kWh", forest: bool = True) -> list[Anomaly]:
    """Anomalies of the hours [since, end) (park-local day boundaries) from hourly energy per meter.

    hourly: start (aware), series, value (NaN = missing); the history before `since` (8 weeks or more) is the
    reference.  enterprise_of: series -> enterprise id."""
    since, end = pd.Timestamp(since).tz_convert(tz).floor("D"), pd.Timestamp(end).tz_convert(tz)
    frame = hourly.copy()
    frame["start"] = pd.DatetimeIndex(frame["start"]).tz_convert(tz)
    first_day = frame["start"].min().floor("D") if len(frame) else since
    days = pd.date_range(first_day, end, freq="D", inclusive="left")
    if len(days) == 0 or since not in days:
        return []
    first = int(days.get_loc(since))
    day_off = day_table(days)["day_off"].to_numpy(dtype=bool)
    hour = pd.Timedelta(hours=1)
    hits: list[_Hit] = []
    matrices: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for series, g in frame.groupby("series", sort=True):
        values = pd.Series(g["value"].to_numpy(dtype=float), index=pd.DatetimeIndex(g["start"]))
        m = _matrix(values, days)
        if not np.isfinite(m[:first]).any():
            continue  # no history to compare with
        found, exp, sd = _series_hits(str(series), m, days, day_off, first, hour)
        if not np.isfinite(sd).any():
            continue  # too little history: not examined, and not counted among the meters of an outage
        matrices[str(series)] = (m, exp, sd)
        hits += found
        if forest:
            hits += _unusual_days(str(series), m, days, first)
    # park-wide storm: many meters at zero or silent where they were expected to consume, in the same hours
    storm_hours: set[pd.Timestamp] = set()
    if matrices:
        n_meters = len(matrices)
        down = np.zeros((len(days) - first, 24))
        for m, exp, sd in matrices.values():
            expected_on = np.isfinite(exp[first:]) & (exp[first:] > SHIFT_SD * sd[first:])
            dead = ~np.isfinite(m[first:]) | (m[first:] <= 0)
            down += expected_on & dead
        share = down / n_meters
        storm = []
        for d, h in zip(*np.nonzero(share >= OUTAGE_SHARE), strict=True):
            t = days[first + d] + pd.Timedelta(hours=int(h))
            if t + hour <= end:
                storm_hours.add(t)
                storm.append(_Hit(OUTAGE, PARK_SERIES, t, t + hour, float(n_meters), float(n_meters - down[d, h]),
                                  float(share[d, h])))
        if n_meters >= 4:  # a storm needs a park, not one or two meters
            hits = [h for h in hits if not (h.code in (SPIKE, FLATLINE, LEVEL_SHIFT, UNUSUAL_DAY, OFF_HOURS)
                                            and _overlaps(h, storm_hours, hour))] + storm
    # profile mismatch on daily energy
    daily = frame.assign(day=frame["start"].dt.floor("D")).pivot_table(index="day", columns="series",
                                                                          values="value", aggfunc="sum")
    end_day = end.floor("D")
    for series in matrices:
        hits += _profile_mismatch(series, daily, enterprise_of, end_day)
    merged = _merge([h for h in hits if h.code in (SPIKE, OFF_HOURS, FLATLINE, OUTAGE)], hour) + _merge(
        [h for h in hits if h.code in (LEVEL_SHIFT, UNUSUAL_DAY)], pd.Timedelta(0)) + [
        h for h in hits if h.code == PROFILE]
    return [_anomaly(h, enterprise_of, detected_at, unit) for h in sorted(merged, key=lambda h: (h.start, h.code,
                                                                                                  h.series))]


def _overlaps(h: _Hit, hours: set[pd.Timestamp], step: pd.Timedelta) -> bool:
    t = h.start
    while t < h.end:
        if t in hours:
            return True
        t += step
    return False


def _fmt(v: float | None, unit: str) -> str:
    return "—" if v is None or not np.isfinite(v) else f"{v:,.2f} {unit}"


def _anomaly(h: _Hit, enterprise_of: dict[str, str], detected_at: datetime, unit: str) -> Anomaly:
    when = f"{h.start:%Y-%m-%d %H:%M}–{h.end:%Y-%m-%d %H:%M}"
    if h.code == OUTAGE:
        reason = (f"park-wide outage {when}: {h.observed:.0f} of {h.expected:.0f} meters consuming "
                  f"(expected {h.expected:.0f})")
    elif h.code == PROFILE:
        reason = (f"daily energy no longer follows the rest of the enterprise since {h.start:%Y-%m-%d}: "
                  f"correlation {h.observed:.2f}, expected {h.expected:.2f} as in the 8 weeks before")
    elif h.code in (LEVEL_SHIFT, UNUSUAL_DAY):
        label = "level shift" if h.code == LEVEL_SHIFT else "unusual day (isolation forest)"
        reason = (f"{label} {when}: observed {_fmt(h.observed, unit)} per hour on average over the day, "
                  f"expected {_fmt(h.expected, unit)}")
    else:
        label = {SPIKE: "spike", OFF_HOURS: "night or day-off use", FLATLINE: "flat line"}[h.code]
        reason = (f"{label} {when}: observed {_fmt(h.observed, unit)} per hour, expected "
                  f"{_fmt(h.expected, unit)}")
    unit_of = "r" if h.code == PROFILE else ("meters" if h.code == OUTAGE else unit)
    return Anomaly(h.code, SEVERITY[h.code], h.series, enterprise_of.get(h.series), h.start, h.end, h.expected,
                   h.observed, unit_of, reason, detected_at)


def detect_park(access, user, since, end, now: datetime, history_days: int = 56) -> list[Anomaly]:
    """Read every meter's hourly electricity and every bracelet's hourly mean current through the access layer
    (history of `history_days` before `since`) and detect anomalies in [since, end).  Meters and bracelets are
    examined apart (an outage is counted among meters; bracelets get no outage or profile rule)."""
    park = access.park
    tz = park.timezone
    since = pd.Timestamp(since).tz_convert(tz).floor("D")
    start = since - pd.Timedelta(days=history_days)
    agg = access.aggregate(user, "energy", start, end, "hour", by=["series"], where={"carrier": "electricity"})
    agg = agg.assign(value=agg["value"].where(agg["coverage"] > 0))
    enterprise_of = {m.id: m.enterprise for m in park.meters}
    found = detect(agg[["start", "series", "value"]], enterprise_of, since, end, now, tz)
    devices = {d.id: d.enterprise for d in park.devices}
    if devices:
        cur = access.aggregate(user, "current", start, end, "hour", by=["series"], agg="mean")
        cur = cur.assign(value=cur["value"].where(cur["coverage"] > 0))
        found += [a for a in detect(cur[["start", "series", "value"]], devices, since, end, now, tz, unit="A")
                  if a.code not in (OUTAGE, PROFILE)]
    return found
