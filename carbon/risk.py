"""Production and energy risk indicators a bank scores an SME on (生产经营风险指标), with their trends, the
enterprise's own history and its anonymised industry peers in the park, and the shutdown-risk signals of its
equipment bracelets.

* 产能规模 capacity scale: the rated power of the bracelet-monitored machines x their utilisation (开工率, running
  time in shift / planned time, collectors.bracelet), as effective capacity in kW;
* 产量规模 output scale: production (or output value) per month, as the enterprise records it;
* 能耗规模 energy scale: comprehensive energy consumption in tce per month (carbon.energy, GB/T 2589-2020);
* 弹性系数 elasticity: the change of energy over the change of output, Δenergy% / Δoutput% (the energy
  consumption elasticity coefficient of Chinese energy statistics, applied to one enterprise's months).

What banks look at follows the project's indicator notes (bank section: evidence the business is real and running,
shutdown-risk warnings).  Peers are the other enterprises of the same industry in the park: only their count,
median and the enterprise's percentile rank are shown, never names, and nothing with fewer than MIN_PEERS.
Pure: frames in, frames out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from carbon.errors import CarbonError

MIN_PEERS = 3
TREND_MONTHS = 3  # the last 3 months against the same months a year earlier
SLOPE_MONTHS = 12  # the slope over the last 12 months
INDICATORS = {  # name -> (中文, unit, how months combine)
    "capacity_kw": ("产能规模", "kW", "mean"),
    "output": ("产量规模", "", "sum"),
    "energy_tce": ("能耗规模", "tce", "sum"),
    "elasticity": ("弹性系数", "1", "ratio"),
}
ELASTICITY_COLUMNS = ["month", "energy_tce", "output", "energy_change", "output_change", "elasticity", "flag"]
INDICATOR_COLUMNS = ["indicator", "indicator_zh", "unit", "months", "latest", "same_months_last_year", "change",
                     "slope_per_month", "slope_relative", "history_median", "history_percentile",
                     "peer_count", "peer_median", "peer_percentile_rank", "peer_note", "flag"]
SIGNAL_COLUMNS = ["code", "severity", "subject", "value", "threshold", "message"]
# Shutdown-risk thresholds (project choices, documented in docs/methodology.md section 8).
FALLING_RELATIVE = 0.30  # utilisation of the last week at least 30 % below the four weeks before
IDLE_DAYS = 7  # a machine that has not run for a week while its bracelet reported
ENERGY_FALL = 0.50  # energy of the last 3 months at least 50 % below the same months last year


class RiskError(CarbonError, ValueError):
    """Input the risk indicators cannot use (missing column, unknown device power)."""


class TooFewPeersError(RiskError):
    """Peer statistics asked for a group smaller than MIN_PEERS: they could identify the peers."""


# ---- the four scales -------------------------------------------------------------------------------------------
def capacity_scale(by_day: pd.DataFrame, rated_kw: Mapping[str, float], tz: str = "Asia/Shanghai") -> pd.DataFrame:
    """产能规模 per month from bracelet utilisation by day (collectors.bracelet_analytics `by_day`: day, device,
    running_in_shift_h, planned_h, running_h, coverage) and each device's rated power in kW.

    Out: month, devices, rated_kw (installed, monitored), utilisation (rated-power weighted: sum(kW x running in
    shift) / sum(kW x planned)), capacity_kw (effective: rated_kw x utilisation), running_rated_kwh (sum of kW x
    running hours), coverage (mean of the devices' daily coverage)."""
    cols = {"day", "device", "running_in_shift_h", "planned_h", "running_h", "coverage"}
    missing = cols - set(by_day.columns)
    if missing:
        raise RiskError(f"by_day needs columns {', '.join(sorted(missing))} (collectors.bracelet_analytics)")
    unknown = sorted(set(by_day["device"]) - set(rated_kw))
    if unknown:
        raise RiskError(f"no rated power for device(s) {', '.join(map(str, unknown[:5]))}: give rated_kw for every "
                        "bracelet-monitored machine (its nameplate kW)")
    f = by_day.copy()
    f["kw"] = f["device"].map(rated_kw).astype(float)
    day = pd.DatetimeIndex(f["day"])
    day = day.tz_convert(tz) if day.tz is not None else day.tz_localize(tz)
    f["month"] = day.tz_localize(None).to_period("M").to_timestamp().tz_localize(tz)
    f["w_run"] = f["kw"] * f["running_in_shift_h"]
    f["w_plan"] = f["kw"] * f["planned_h"]
    f["w_hours"] = f["kw"] * f["running_h"]
    g = f.groupby("month")
    out = pd.DataFrame({"devices": g["device"].nunique(), "w_run": g["w_run"].sum(), "w_plan": g["w_plan"].sum(),
                        "running_rated_kwh": g["w_hours"].sum(), "coverage": g["coverage"].mean()})
    out["rated_kw"] = f.drop_duplicates(["month", "device"]).groupby("month")["kw"].sum()
    out["utilisation"] = out["w_run"] / out["w_plan"].where(out["w_plan"] > 0)
    out["capacity_kw"] = out["rated_kw"] * out["utilisation"]
    return out.reset_index()[["month", "devices", "rated_kw", "utilisation", "capacity_kw", "running_rated_kwh",
                              "coverage"]]


def rated_kw_estimate(points: pd.DataFrame | Mapping[str, pd.DataFrame], devices, quantile: float = 0.95
                      ) -> dict[str, float]:
    """Rated power in kW per device when the nameplate is unknown: sqrt(3) x V x I x PF / 1000 at the `quantile` of
    the currents it drew while running (at or above its run threshold), with V and PF of the device (the
    three-phase formula of docs/bracelets.md).  A device that never ran is left out: its power is unknown, not 0.
    points: series (device id), value (current in A); or a mapping of device id to its readings (value)."""
    out = {}
    for d in devices:
        if isinstance(points, Mapping):
            own = points.get(d.id)
            values = own["value"] if own is not None else pd.Series([], dtype=float)
        else:
            values = points.loc[points["series"] == d.id, "value"]
        running = values[values >= d.run_current_a]
        if len(running):
            current = float(running.quantile(quantile))
            out[d.id] = math.sqrt(3) * d.rated_voltage_v * current * d.power_factor / 1000
    return out


def elasticity(monthly: pd.DataFrame, basis: str = "previous_month") -> pd.DataFrame:
    """弹性系数 month by month: (ΔE / E0) / (ΔO / O0) between each month and its base (the previous month, or the
    same month a year earlier with basis="last_year"); monthly: month, energy_tce, output.

    No number where it would mislead, with a `flag` instead: base.missing (no base month or value), base.zero or
    base.negative (a base of energy or output <= 0: the percentage change is undefined), output.unchanged (ΔO = 0:
    division by zero)."""
    if basis not in ("previous_month", "last_year"):
        raise RiskError(f"basis {basis!r} must be 'previous_month' or 'last_year'")
    f = monthly[["month", "energy_tce", "output"]].sort_values("month").reset_index(drop=True)
    shift = pd.DateOffset(months=1) if basis == "previous_month" else pd.DateOffset(years=1)
    base = f.assign(month=f["month"] + shift).rename(columns={"energy_tce": "e0", "output": "o0"})
    f = f.merge(base, on="month", how="left")
    f["energy_change"] = (f["energy_tce"] - f["e0"]) / f["e0"].where(f["e0"] > 0)
    f["output_change"] = (f["output"] - f["o0"]) / f["o0"].where(f["o0"] > 0)
    missing = f[["energy_tce", "output", "e0", "o0"]].isna().any(axis=1)
    negative = ~missing & ((f["e0"] < 0) | (f["o0"] < 0))
    zero = ~missing & ~negative & ((f["e0"] == 0) | (f["o0"] == 0))
    unchanged = ~missing & ~negative & ~zero & (f["output_change"] == 0)
    f["flag"] = np.select([missing, negative, zero, unchanged],
                          ["base.missing", "base.negative", "base.zero", "output.unchanged"], "")
    f["elasticity"] = (f["energy_change"] / f["output_change"]).where(f["flag"] == "")
    return f[ELASTICITY_COLUMNS]


def elasticity_windows(monthly: pd.DataFrame, months: int = TREND_MONTHS) -> pd.DataFrame:
    """Elasticity of each `months`-month window (ending on `month`) against the same window a year earlier: the
    sums of energy and output over the window, then `elasticity(..., basis="last_year")` (same flags).  A window
    with a missing month has no sums (base.missing)."""
    f = monthly[["month", "energy_tce", "output"]].sort_values("month").set_index("month")
    full = pd.date_range(f.index.min(), f.index.max(), freq="MS", tz=f.index.tz) if len(f) else f.index
    f = f.reindex(full)
    sums = f.rolling(months, min_periods=months).sum()
    sums[f.isna().rolling(months, min_periods=1).max().astype(bool).to_numpy()] = np.nan
    return elasticity(sums.rename_axis("month").reset_index(), basis="last_year")


# ---- trends and comparisons ------------------------------------------------------------------------------------
def _window(series: pd.Series, end: pd.Timestamp, months: int) -> pd.Series:
    start = end - pd.DateOffset(months=months - 1)
    return series[(series.index >= start) & (series.index <= end)]


def _combine(values: pd.Series, how: str, months: int) -> float:
    if len(values) < months or values.isna().any():
        return math.nan
    return float(values.sum() if how == "sum" else values.mean())


def trend(series: pd.Series, as_of: pd.Timestamp, how: str = "sum", months: int = TREND_MONTHS) -> dict:
    """The last `months` months to `as_of` (a month start) against the same months a year earlier (`change`,
    relative), the OLS slope per month over the last SLOPE_MONTHS (and relative to their mean), and the latest
    window against the enterprise's own history of such windows (median and the percentile of the latest)."""
    s = series.dropna().sort_index()
    latest = _combine(_window(s, as_of, months), how, months)
    prev = _combine(_window(s, as_of - pd.DateOffset(years=1), months), how, months)
    change = (latest - prev) / prev if prev and math.isfinite(prev) and prev > 0 else math.nan
    last12 = _window(s, as_of, SLOPE_MONTHS)
    if len(last12) >= 3:
        x = np.array([(m.year - as_of.year) * 12 + m.month - as_of.month for m in last12.index], dtype=float)
        slope = float(np.polyfit(x, last12.to_numpy(dtype=float), 1)[0])
        mean = float(last12.mean())
        slope_rel = slope / mean if mean else math.nan
    else:
        slope = slope_rel = math.nan
    roll = s.rolling(months).sum() if how == "sum" else s.rolling(months).mean()
    history = roll[roll.index < as_of - pd.DateOffset(months=months - 1)].dropna()
    if len(history) and math.isfinite(latest):
        hist_median = float(history.median())
        hist_pct = float(((history < latest).sum() + 0.5 * (history == latest).sum()) / len(history) * 100)
    else:
        hist_median = hist_pct = math.nan
    return {"latest": latest, "same_months_last_year": prev, "change": change, "slope_per_month": slope,
            "slope_relative": slope_rel, "history_median": hist_median, "history_percentile": hist_pct}


@dataclass(frozen=True)
class PeerStats:
    peer_count: int
    peer_median: float
    percentile_rank: float  # share of peers below the enterprise (ties half), in %


def peer_stats(value: float, peers: pd.Series, min_peers: int = MIN_PEERS) -> PeerStats:
    """Where `value` stands among its peers' values (the enterprise itself excluded): count, median, percentile
    rank.  TooFewPeersError below `min_peers`: a median of two enterprises tells each one the other's figure."""
    p = peers.dropna().astype(float)
    if len(p) < min_peers:
        raise TooFewPeersError(f"{len(p)} peer(s) with a value, at least {min_peers} needed: peer statistics are "
                               "not shown, so that no peer's figure can be inferred")
    rank = ((p < value).sum() + 0.5 * (p == value).sum()) / len(p) * 100 if math.isfinite(value) else math.nan
    return PeerStats(peer_count=len(p), peer_median=float(p.median()), percentile_rank=float(rank))


def _window_value(monthly: pd.DataFrame, column: str, how: str, as_of: pd.Timestamp) -> pd.Series:
    """Per enterprise: the indicator over the last TREND_MONTHS months ending with `as_of`: trend's `latest`, and
    for the elasticity `elasticity_windows` at `as_of` (all enterprises' windows at once, `_elasticity_at`)."""
    if how == "ratio":
        return _elasticity_at(monthly, as_of)
    fast = _latest_at(monthly, column, how, as_of)
    if fast is not None:
        return fast
    out = {}
    for ent, g in monthly.groupby("enterprise"):
        if column not in g.columns:
            out[ent] = math.nan
            continue
        s = g.set_index("month").sort_index()[column].dropna().sort_index()  # trend's latest, without the rest
        out[ent] = _combine(_window(s, as_of, TREND_MONTHS), how, TREND_MONTHS)
    return pd.Series(out, dtype=float)


def _latest_at(monthly: pd.DataFrame, column: str, how: str, as_of: pd.Timestamp, months: int = TREND_MONTHS
               ) -> pd.Series | None:
    """trend(...)["latest"] of `column` for every enterprise at once: the `months` months ending with `as_of` as
    rows of a month x enterprise table, summed (or averaged) where all are there, NaN elsewhere; None (take the
    per-enterprise path) unless the months are unique month starts per enterprise and `as_of` one too."""
    if column not in monthly.columns or monthly.empty:
        return None
    f = monthly[["enterprise", "month", column]]
    month = pd.DatetimeIndex(f["month"])
    as_of = pd.Timestamp(as_of)
    if (not ((month.day == 1) & (month == month.normalize())).all() or as_of != as_of.normalize()
            or as_of.day != 1 or f.duplicated(["enterprise", "month"]).any() or f["enterprise"].isna().any()):
        return None
    ents = list(f.groupby("enterprise").groups)
    window = pd.date_range(as_of - pd.DateOffset(months=months - 1), as_of, freq="MS")
    x = f.pivot(index="month", columns="enterprise", values=column).reindex(index=window, columns=ents)
    x = x.astype(float)
    value = x.sum(axis=0) if how == "sum" else x.mean(axis=0)
    return pd.Series(value.where(x.notna().all(axis=0)).to_numpy(dtype=float), index=ents, dtype=float)


def _elasticity_at(monthly: pd.DataFrame, as_of: pd.Timestamp, months: int = TREND_MONTHS) -> pd.Series:
    """Per enterprise: elasticity_windows(its rows)'s elasticity at `as_of` (NaN where flagged or absent), for
    every enterprise at once: its months as one column of a month x enterprise table over the union of their
    months, rolled with the same window sums (a column's months before its first are empty, which leaves its
    window sums as they are alone), then the same arithmetic and refusals as `elasticity`.  Months that are not
    month starts take the per-enterprise path."""
    f = monthly[["enterprise", "month", "energy_tce", "output"]]
    groups = f.groupby("enterprise")
    month = pd.DatetimeIndex(f["month"])
    if f.empty or not ((month.day == 1) & (month == month.normalize())).all():
        return pd.Series({ent: float(elasticity_windows(g).set_index("month")["elasticity"].get(as_of, math.nan))
                          for ent, g in groups}, dtype=float)
    ents = list(groups.groups)
    full = pd.date_range(month.min(), month.max(), freq="MS", tz=month.tz)

    def window_sums(column: str) -> pd.DataFrame:
        x = f.pivot(index="month", columns="enterprise", values=column).reindex(index=full, columns=ents)
        x = x.astype(float)
        sums = x.rolling(months, min_periods=months).sum()
        sums[x.isna().rolling(months, min_periods=1).max().astype(bool).to_numpy()] = np.nan
        return sums

    def at(sums: pd.DataFrame, when: pd.Timestamp) -> pd.Series:
        return sums.loc[when] if when in sums.index else pd.Series(np.nan, index=ents)

    energy, output = window_sums("energy_tce"), window_sums("output")
    base = as_of - pd.DateOffset(years=1)
    e, o, e0, o0 = at(energy, as_of), at(output, as_of), at(energy, base), at(output, base)
    energy_change = (e - e0) / e0.where(e0 > 0)
    output_change = (o - o0) / o0.where(o0 > 0)
    missing = e.isna() | o.isna() | e0.isna() | o0.isna()
    negative = ~missing & ((e0 < 0) | (o0 < 0))
    zero = ~missing & ~negative & ((e0 == 0) | (o0 == 0))
    unchanged = ~missing & ~negative & ~zero & (output_change == 0)
    out = (energy_change / output_change).where(~(missing | negative | zero | unchanged))
    return pd.Series(out.to_numpy(dtype=float), index=ents, dtype=float)


def risk_indicators(monthly: pd.DataFrame, enterprise: str, as_of, min_peers: int = MIN_PEERS) -> pd.DataFrame:
    """The four indicators of `enterprise` over the TREND_MONTHS months ending with the month `as_of`, with trend,
    own history and anonymised peers (the other enterprises of its industry in `monthly`).

    monthly: enterprise, industry, month (tz-aware month starts), and the columns it has of capacity_kw,
    output, energy_tce (elasticity needs both of the last two).  Out: INDICATOR_COLUMNS, one row per indicator
    the data allow; `peer_note` says why peer figures are missing; `flag` why a figure is."""
    need = {"enterprise", "industry", "month"} - set(monthly.columns)
    if need:
        raise RiskError(f"monthly needs columns {', '.join(sorted(need))}")
    own = monthly[monthly["enterprise"] == enterprise]
    if own.empty:
        raise RiskError(f"no monthly figures for enterprise {enterprise!r}")
    tz = monthly["month"].dt.tz
    as_of = pd.Timestamp(as_of)
    as_of = (as_of.tz_convert(tz) if as_of.tz is not None else as_of.tz_localize(tz))
    as_of = pd.Timestamp(as_of.year, as_of.month, 1, tz=tz)
    industry = own["industry"].iloc[0]
    peers_frame = monthly[(monthly["industry"] == industry) & (monthly["enterprise"] != enterprise)]
    series = own.set_index("month").sort_index()
    rows = []
    for name, (zh, unit, how) in INDICATORS.items():
        if how == "ratio":
            if not {"energy_tce", "output"} <= set(monthly.columns):
                continue
            windows = elasticity_windows(own).set_index("month")
            t = trend(windows["elasticity"], as_of, "mean", months=1)
            t["change"] = math.nan  # a ratio of changes: its own relative change means nothing
            got = windows["flag"].get(as_of, "base.missing")
            flag = "" if math.isfinite(t["latest"]) else f"elasticity.{got or 'undefined'}"
        else:
            if name not in monthly.columns:
                continue
            t = trend(series[name], as_of, how)
            flag = "" if math.isfinite(t["latest"]) else "months.missing"
        peer_note = ""
        pc = pm = pr = math.nan
        try:
            ps = peer_stats(t["latest"], _window_value(peers_frame, name, how, as_of), min_peers)
            pc, pm, pr = ps.peer_count, ps.peer_median, ps.percentile_rank
        except TooFewPeersError as exc:
            peer_note = str(exc)
        if not industry:
            peer_note = "no industry recorded: no peer group"
            pc = pm = pr = math.nan
        rows.append({"indicator": name, "indicator_zh": zh, "unit": unit, "months": TREND_MONTHS, **t,
                     "peer_count": pc, "peer_median": pm, "peer_percentile_rank": pr, "peer_note": peer_note,
                     "flag": flag})
    return pd.DataFrame(rows, columns=INDICATOR_COLUMNS)


# ---- shutdown risk --------------------------------------------------------------------------------------------
def shutdown_signals(by_day: pd.DataFrame, as_of_day, monthly_energy: pd.Series | None = None) -> pd.DataFrame:
    """Shutdown-risk signals (停工风险) from bracelet utilisation by day (collectors.bracelet_analytics `by_day`:
    day, device, running_h, running_in_shift_h, planned_h, coverage) up to `as_of_day` (inclusive), and optionally
    the metered energy per month (tce, indexed by month start):

    * utilisation.falling: the last 7 days' utilisation at least FALLING_RELATIVE below the 28 days before;
    * machines.idle: machines that did not run in the last IDLE_DAYS days while their bracelet reported;
    * bracelets.silent: machines whose bracelet reported nothing in those days (state unknown, not idle);
    * energy.falling: the last 3 months' energy at least ENERGY_FALL below the same months a year earlier.
    Out: SIGNAL_COLUMNS (empty when nothing signals)."""
    f = by_day.copy()
    day = pd.Timestamp(as_of_day)
    f = f[f["day"] <= day]
    week = f[f["day"] > day - pd.Timedelta(days=IDLE_DAYS)]
    before = f[(f["day"] <= day - pd.Timedelta(days=IDLE_DAYS)) & (f["day"] > day - pd.Timedelta(days=35))]
    signals = []

    def util(frame: pd.DataFrame) -> float:
        frame = frame[frame["coverage"] > 0]  # a silent bracelet's day is unknown, not a stopped machine
        plan = frame["planned_h"].sum()
        return float(frame["running_in_shift_h"].sum() / plan) if plan > 0 else math.nan

    u_now, u_before = util(week), util(before)
    if math.isfinite(u_now) and math.isfinite(u_before) and u_before > 0:
        drop = (u_before - u_now) / u_before
        if drop >= FALLING_RELATIVE:
            signals.append({"code": "utilisation.falling", "severity": "warning", "subject": "enterprise",
                            "value": drop, "threshold": FALLING_RELATIVE,
                            "message": f"utilisation of the last 7 days {u_now:.0%} against {u_before:.0%} in the "
                                       f"4 weeks before ({drop:.0%} lower)"})
    per = week.groupby("device").agg(running_h=("running_h", "sum"), coverage=("coverage", "mean"),
                                     days=("day", "nunique"))
    idle = per[(per["running_h"] == 0) & (per["coverage"] > 0) & (per["days"] >= IDLE_DAYS)]
    silent = per[per["coverage"] == 0]
    if len(per) and len(idle):
        signals.append({"code": "machines.idle", "severity": "warning" if len(idle) < len(per) else "critical",
                        "subject": ", ".join(map(str, idle.index)), "value": len(idle) / len(per),
                        "threshold": IDLE_DAYS,
                        "message": f"{len(idle)} of {len(per)} machines did not run in the last {IDLE_DAYS} days"})
    if len(silent):
        signals.append({"code": "bracelets.silent", "severity": "info", "subject": ", ".join(map(str, silent.index)),
                        "value": len(silent) / len(per), "threshold": IDLE_DAYS,
                        "message": f"{len(silent)} of {len(per)} bracelets reported nothing in the last "
                                   f"{IDLE_DAYS} days: their machines' state is unknown"})
    if monthly_energy is not None and len(monthly_energy):
        last = monthly_energy.sort_index().index[-1]
        t = trend(monthly_energy, last, "sum")
        if math.isfinite(t["change"]) and t["change"] <= -ENERGY_FALL:
            signals.append({"code": "energy.falling", "severity": "warning", "subject": "enterprise",
                            "value": -t["change"], "threshold": ENERGY_FALL,
                            "message": f"energy of the last 3 months {-t['change']:.0%} below the same months a "
                                       "year earlier"})
    return pd.DataFrame(signals, columns=SIGNAL_COLUMNS)
