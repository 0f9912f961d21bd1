"""Measured energy savings of a financed project, IPMVP Option C (whole facility), with ASHRAE Guideline 14
statistics.  Method and worked example: docs/savings.md.

A baseline model (OLS, statsmodels) of the facility's consumption on its output and on the weather (degree days,
when given) or else the calendar (working days per month, day off per day) is fitted over the pre-project period
and applied to the reporting period's conditions:

    avoided energy = adjusted baseline - reporting-period consumption        (IPMVP Core Concepts 2022, Option C)

The savings' uncertainty is given two ways: the fractional savings uncertainty of ASHRAE Guideline 14-2014
Annex B (FSU = t x 1.26 x CV(RMSE) x sqrt(n/n' x (1 + 2/n') / m) / F) and the regression's own prediction
interval of the reporting-period total.  Fit statistics (R2, CV(RMSE), NMBE) are checked against Guideline 14.

Pure: a frame of periods comes in, a `Savings` goes out.  Energy in tce uses the factor registry's coefficient
(carbon.factors, GB/T 2589-2020) through `tce_conversion`; CO2 uses the factor the caller gives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.outliers_influence import variance_inflation_factor

from carbon.errors import CarbonError
from carbon.factors import DEFAULT_POLICY, FactorPolicy, FactorRegistry
from park.units import UnitError, carrier_unit

CONFIDENCE_LEVELS = (0.68, 0.90)
# ASHRAE Guideline 14-2014 criteria on a baseline model, by data frequency: CV(RMSE) and |NMBE| at most (as
# fractions); the savings' FSU at 68 % confidence at most 50 % of the savings (section 4.1.1 / Annex B).
G14_CRITERIA = {"monthly": {"cv_rmse": 0.15, "nmbe": 0.05}, "daily": {"cv_rmse": 0.30, "nmbe": 0.10}}
G14_MAX_FSU_68 = 0.50
G14_MONTHLY_CORRECTION = 1.26  # Guideline 14 Annex B empirical factor of the FSU approximation
MIN_BASELINE_POINTS = {"monthly": 12, "daily": 60}  # a full annual cycle of months; two months of days
MAX_VIF = 10.0  # a regressor with a variance inflation factor above this is (nearly) a mix of the others
DEGREE_DAYS = ("hdd", "cdd")
CALENDAR = {"monthly": "working_days", "daily": "day_off"}
PERIOD_COLUMNS = ["period_start", "consumption", "adjusted_baseline", "savings", "baseline_lower_68",
                  "baseline_upper_68", "baseline_lower_90", "baseline_upper_90"]


class SavingsError(CarbonError, ValueError):
    """Savings that cannot be measured from the data given; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class TceConversion:
    """tce per unit of a carrier (GB/T 2589-2020 coefficient from the factor registry) and the row used."""

    carrier: str
    unit: str
    tce_per_unit: float
    factor_id: str


def tce_conversion(registry: FactorRegistry, carrier: str, unit: str, on: date,
                   regions: Sequence[str] = ("national",), policy: FactorPolicy = DEFAULT_POLICY,
                   enterprise: str | None = None) -> TceConversion:
    """The registry's standard-coal coefficient for `carrier` measured in `unit` on `on` (the same rows
    carbon.energy uses: electricity and PV on the policy's energy basis, other carriers basis 'all').

    Steam by mass has no coefficient of its own (its tce follows from its heat): pass it in GJ."""
    try:
        u = carrier_unit(carrier, unit)
    except UnitError as exc:
        raise SavingsError(str(exc)) from None
    if carrier == "steam":
        if u.dimension != "heat":
            raise SavingsError("steam by mass has no tce coefficient of its own (its tce follows from its heat "
                               "content): give the steam consumption in GJ")
        carrier = "heat"
    basis = policy.energy_basis if registry.has("tce", carrier, policy.energy_basis) else "all"
    row = registry.resolve("tce", carrier, basis, tuple(regions), on, policy, enterprise).row
    return TceConversion(carrier=carrier, unit=u.symbol, tce_per_unit=row.per_base * u.to_base, factor_id=row.id)


@dataclass(frozen=True)
class FitStats:
    """The baseline model's fit (ASHRAE Guideline 14 definitions: p parameters, n - p degrees of freedom)."""

    formula: str
    n: int  # baseline periods
    p: int  # parameters, intercept included
    r2: float
    adj_r2: float
    rmse: float  # in the consumption's unit, sqrt(SSE / (n - p))
    cv_rmse: float  # fraction: rmse / mean baseline consumption
    nmbe: float  # fraction: sum(y - y_hat) / ((n - p) x mean)
    rho: float  # lag-1 autocorrelation of the residuals
    n_eff: float  # n' = n (1 - rho) / (1 + rho) for daily data; n for monthly data
    coefficients: pd.DataFrame  # term, estimate, std_error, t, p_value, vif
    criteria: dict[str, bool]  # cv_rmse, nmbe (Guideline 14, by frequency)


@dataclass(frozen=True)
class Uncertainty:
    """The savings' uncertainty at one confidence level, both ways."""

    confidence: float
    fsu: float  # Guideline 14 fractional savings uncertainty (fraction of the savings); NaN without savings
    fsu_half_width: float  # fsu x savings, in the consumption's unit
    interval_lower: float  # regression prediction interval of the savings (consumption's unit)
    interval_upper: float


@dataclass(frozen=True)
class Savings:
    """Measured savings of one carrier over a reporting period (IPMVP Option C)."""

    carrier: str
    unit: str  # the consumption's unit (kWh, m3, GJ, ...)
    frequency: str  # monthly | daily
    baseline_start: pd.Timestamp
    baseline_end: pd.Timestamp  # exclusive
    reporting_start: pd.Timestamp
    reporting_end: pd.Timestamp  # exclusive
    regressors: tuple[str, ...]
    fit: FitStats
    periods: pd.DataFrame  # PERIOD_COLUMNS, one row per reporting period
    adjusted_baseline: float
    reporting_consumption: float
    energy_saved: float  # in `unit`
    fractional_savings: float
    energy_saved_tce: float
    tce_factor_id: str
    co2_avoided_t_co2e: float
    co2_factor_t_co2e_per_unit: float
    co2_factor_id: str
    uncertainty: dict[float, Uncertainty]
    meets_guideline14: bool
    data: pd.DataFrame  # the periods used: period_start, role (baseline | reporting), consumption, regressors
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> dict:
        """Flat headline figures with units in the keys (for a report or a JSON summary)."""
        u = self.unit
        out = {
            "carrier": self.carrier, "unit": u, "frequency": self.frequency,
            "baseline_start": self.baseline_start.isoformat(), "baseline_end": self.baseline_end.isoformat(),
            "reporting_start": self.reporting_start.isoformat(), "reporting_end": self.reporting_end.isoformat(),
            "regressors": list(self.regressors), "formula": self.fit.formula,
            f"adjusted_baseline_{u}": self.adjusted_baseline, f"reporting_consumption_{u}": self.reporting_consumption,
            f"energy_saved_{u}": self.energy_saved, "fractional_savings": self.fractional_savings,
            "energy_saved_tce": self.energy_saved_tce, "tce_factor_id": self.tce_factor_id,
            "co2_avoided_t_co2e": self.co2_avoided_t_co2e,
            f"co2_factor_t_co2e_per_{u}": self.co2_factor_t_co2e_per_unit, "co2_factor_id": self.co2_factor_id,
            "n": self.fit.n, "p": self.fit.p, "r2": self.fit.r2, "adj_r2": self.fit.adj_r2,
            "cv_rmse": self.fit.cv_rmse, "nmbe": self.fit.nmbe, "rho": self.fit.rho, "n_eff": self.fit.n_eff,
            "meets_guideline14": self.meets_guideline14, "notes": list(self.notes)}
        for level, unc in self.uncertainty.items():
            pct = round(level * 100)
            out[f"fsu_{pct}"] = unc.fsu
            out[f"energy_saved_lower_{pct}_{u}"] = unc.interval_lower
            out[f"energy_saved_upper_{pct}_{u}"] = unc.interval_upper
        return out


# ---- inputs ----------------------------------------------------------------------------------------------------
def frequency_of(starts: pd.Series) -> str:
    """'monthly' when every period starts on the 1st one month after the previous, 'daily' when one day after;
    SavingsError otherwise (gaps must be explicit rows, not missing ones)."""
    s = pd.Series(pd.DatetimeIndex(starts)).reset_index(drop=True)
    if len(s) < 2:
        raise SavingsError("need at least two periods to tell monthly from daily data")
    if (s.dt.day == 1).all() and (s.dt.hour == 0).all() and (s + pd.DateOffset(months=1)).iloc[:-1].eq(
            s.iloc[1:].reset_index(drop=True)).all():
        return "monthly"
    if (s.diff().iloc[1:] == pd.Timedelta(days=1)).all():
        return "daily"
    bad = s[s.diff() != s.diff().iloc[1:].mode().iloc[0]].iloc[1:2]
    where = f" (at {bad.iloc[0].isoformat()})" if len(bad) else ""
    raise SavingsError(f"periods must be consecutive months (starting on the 1st) or consecutive days{where}: "
                       "a missing period must be a row with its consumption, not left out")


def calendar_terms(starts: pd.Series, frequency: str) -> pd.Series:
    """The calendar regressor: working days in each month (statutory holidays and 调休 make-up days from
    chinesecalendar, via forecasting.calendar), or 1 for a day off / 0 for a working day."""
    from forecasting.calendar import day_table, uncovered_years  # the project's one holiday source

    idx = pd.DatetimeIndex(starts)
    missing = uncovered_years(idx)
    if missing:
        raise SavingsError(f"the holiday calendar has no data for {', '.join(map(str, missing))}: give degree "
                           "days or a working_days / day_off column instead")
    if frequency == "daily":
        return pd.Series(day_table(idx.normalize())["day_off"].astype(int).to_numpy(), index=starts.index,
                         name="day_off")
    counts = []
    for s in idx:
        days = pd.date_range(s, s + pd.DateOffset(months=1), freq="D", inclusive="left")
        counts.append(int((~day_table(days)["day_off"]).sum()))
    return pd.Series(counts, index=starts.index, name="working_days")


def _check_column(frame: pd.DataFrame, column: str, what: str) -> None:
    if column not in frame.columns:
        raise SavingsError(f"{what} column {column!r} missing (columns: {', '.join(map(str, frame.columns))})")
    values = pd.to_numeric(frame[column], errors="coerce")
    missing = frame.loc[values.isna(), "period_start"]
    if len(missing):
        first = ", ".join(t.isoformat() for t in missing.iloc[:3])
        raise SavingsError(f"{what} {column!r} missing or not a number in {len(missing)} period(s) ({first}): "
                           "fill them from the source (meter, bill, production record) or shorten the period")


# ---- the method -----------------------------------------------------------------------------------------------
def measured_savings(data: pd.DataFrame, project_start, *, carrier: str, unit: str, tce: TceConversion,
                     t_co2e_per_unit: float, co2_factor_id: str = "", reporting_start=None, reporting_end=None,
                     regressors: Sequence[str] | None = None,
                     min_baseline_points: int | None = None) -> Savings:
    """IPMVP Option C savings of `carrier` from `data`: one row per period with `period_start` (tz-aware,
    consecutive months or days), `consumption` (in `unit`), `output` (production in any one unit), and `hdd`
    and/or `cdd` (degree days) when the weather matters.

    Baseline: the periods ending on or before `project_start`.  Reporting: the periods from `reporting_start`
    (default: the first period boundary at or after `project_start`; a period holding the installation is in
    neither) to `reporting_end` (exclusive; default: the end of the data).  `regressors` default: `output` with
    the degree-day columns present, else `output` and the calendar term (`calendar_terms`).
    `t_co2e_per_unit`: the CO2 factor per `unit` for the avoided emissions (e.g. the grid factor per kWh).
    """
    if tce.unit.lower() != carrier_unit(carrier, unit).symbol.lower() and not (
            carrier == "steam" and tce.carrier == "heat"):
        raise SavingsError(f"the tce conversion is per {tce.unit} of {tce.carrier}, the consumption is in {unit} "
                           f"of {carrier}")
    if "period_start" not in data.columns:
        raise SavingsError("data needs a 'period_start' column (tz-aware period starts)")
    frame = data.sort_values("period_start").reset_index(drop=True).copy()
    if frame["period_start"].dt.tz is None:
        raise SavingsError("period_start must be timezone-aware (park-local or UTC), not naive")
    if frame["period_start"].duplicated().any():
        dup = frame.loc[frame["period_start"].duplicated(), "period_start"].iloc[0]
        raise SavingsError(f"period {dup.isoformat()} appears twice")
    freq = frequency_of(frame["period_start"])
    step = pd.DateOffset(months=1) if freq == "monthly" else pd.DateOffset(days=1)
    frame["period_end"] = frame["period_start"] + step
    tz = frame["period_start"].dt.tz
    start = _aware(project_start, tz, "project_start")
    first, last = frame["period_start"].iloc[0], frame["period_end"].iloc[-1]
    if not first < start < last:
        raise SavingsError(f"project start {start.isoformat()} is outside the data, which covers "
                           f"{first.isoformat()} to {last.isoformat()}: the baseline and the reporting period "
                           "must both be in it")
    r_start = _aware(reporting_start, tz, "reporting_start") if reporting_start is not None else \
        frame.loc[frame["period_start"] >= start, "period_start"].min()
    r_end = _aware(reporting_end, tz, "reporting_end") if reporting_end is not None else last
    if pd.isna(r_start) or r_start < start:
        raise SavingsError(f"reporting start {r_start} must be a period start at or after the project start "
                           f"{start.isoformat()}")
    base = frame[frame["period_end"] <= start]
    rep = frame[(frame["period_start"] >= r_start) & (frame["period_end"] <= r_end)]
    if rep.empty:
        raise SavingsError(f"no complete period between {r_start.isoformat()} and {r_end.isoformat()} to report on")
    need = min_baseline_points or MIN_BASELINE_POINTS[freq]
    if len(base) < need:
        raise SavingsError(f"baseline too short: {len(base)} {freq} period(s) before the project start "
                           f"{start.isoformat()}, at least {need} needed (a full cycle of operation)")
    used = pd.concat([base, rep])
    _check_column(used, "consumption", "consumption")
    if regressors is None:
        weather = [c for c in DEGREE_DAYS if c in frame.columns]
        if "output" not in frame.columns:
            raise SavingsError("output column 'output' missing: Option C for a factory needs its production per "
                               "period (or pass regressors=... without it, and say why in the report)")
        regressors = ["output", *weather] if weather else ["output", CALENDAR[freq]]
    regressors = list(regressors)
    for c in regressors:
        if c in CALENDAR.values() and c not in frame.columns:
            frame[c] = calendar_terms(frame["period_start"], freq)
            used = frame.loc[used.index]
            base, rep = frame.loc[base.index], frame.loc[rep.index]
        _check_column(used, c, "regressor")
    y = base["consumption"].astype(float).to_numpy()
    x_base = _design(base, regressors)
    _check_collinearity(x_base, regressors)
    res = sm.OLS(y, x_base).fit()
    fit = _fit_stats(res, y, x_base, regressors, freq)
    x_rep = _design(rep, regressors)
    notes = _extrapolation_notes(base, rep, regressors)

    per = {}
    for level in CONFIDENCE_LEVELS:
        pct = round(level * 100)
        ci = res.get_prediction(x_rep).summary_frame(alpha=1 - level)
        per[f"baseline_lower_{pct}"] = ci["obs_ci_lower"].to_numpy()
        per[f"baseline_upper_{pct}"] = ci["obs_ci_upper"].to_numpy()
    adjusted = res.predict(x_rep)
    consumption = rep["consumption"].astype(float).to_numpy()
    periods = pd.DataFrame({"period_start": rep["period_start"].to_numpy(), "consumption": consumption,
                            "adjusted_baseline": adjusted, "savings": adjusted - consumption, **per})[PERIOD_COLUMNS]
    adjusted_total, reporting_total = float(adjusted.sum()), float(consumption.sum())
    saved = adjusted_total - reporting_total
    fraction = saved / adjusted_total if adjusted_total else math.nan

    m = len(rep)
    a = x_rep.sum(axis=0)
    sigma2 = float(res.scale)
    se_total = math.sqrt(sigma2 * m + float(a @ res.cov_params() @ a))
    uncertainty = {}
    for level in CONFIDENCE_LEVELS:
        t_pi = stats.t.ppf(0.5 + level / 2, res.df_resid)
        fsu = fractional_savings_uncertainty(fit.cv_rmse, fit.n, fit.n_eff, m, fit.p, fraction, level)
        uncertainty[level] = Uncertainty(confidence=level, fsu=fsu, fsu_half_width=fsu * saved,
                                         interval_lower=float(saved - t_pi * se_total),
                                         interval_upper=float(saved + t_pi * se_total))
    used_data = pd.concat([base.assign(role="baseline"), rep.assign(role="reporting")])[
        ["period_start", "role", "consumption", *regressors]].reset_index(drop=True)
    fsu68 = uncertainty[0.68].fsu
    meets = bool(all(fit.criteria.values()) and math.isfinite(fsu68) and fsu68 <= G14_MAX_FSU_68)
    return Savings(
        carrier=carrier, unit=unit, frequency=freq, baseline_start=base["period_start"].iloc[0],
        baseline_end=base["period_end"].iloc[-1], reporting_start=rep["period_start"].iloc[0],
        reporting_end=rep["period_end"].iloc[-1], regressors=tuple(regressors), fit=fit, periods=periods,
        adjusted_baseline=adjusted_total, reporting_consumption=reporting_total, energy_saved=saved,
        fractional_savings=fraction, energy_saved_tce=saved * tce.tce_per_unit, tce_factor_id=tce.factor_id,
        co2_avoided_t_co2e=saved * t_co2e_per_unit, co2_factor_t_co2e_per_unit=t_co2e_per_unit,
        co2_factor_id=co2_factor_id, uncertainty=uncertainty, meets_guideline14=meets, data=used_data,
        notes=tuple(notes))


def fractional_savings_uncertainty(cv_rmse: float, n: int, n_eff: float, m: int, p: int, fraction: float,
                                   confidence: float) -> float:
    """ASHRAE Guideline 14-2014 Annex B: FSU = t x 1.26 x CV x sqrt(n/n' x (1 + 2/n') / m) / F, t at
    `confidence` (two-sided) with n' - p degrees of freedom.  NaN when there are no savings (F <= 0)."""
    if not fraction > 0 or m <= 0:
        return math.nan
    t = stats.t.ppf(0.5 + confidence / 2, max(n_eff - p, 1.0))
    return float(t * G14_MONTHLY_CORRECTION * cv_rmse * math.sqrt(n / n_eff * (1 + 2 / n_eff) / m) / fraction)


def _aware(t, tz, name: str) -> pd.Timestamp:
    ts = pd.Timestamp(t)
    if ts.tz is None:
        raise SavingsError(f"{name} {ts} must be timezone-aware")
    return ts.tz_convert(tz)


def _design(frame: pd.DataFrame, regressors: list[str]) -> np.ndarray:
    x = frame[regressors].astype(float).to_numpy()
    return np.column_stack([np.ones(len(frame)), x])


def _check_collinearity(x: np.ndarray, regressors: list[str]) -> None:
    """SavingsError when a regressor is constant over the baseline or (nearly) a mix of the others."""
    for i, name in enumerate(regressors, start=1):
        if np.ptp(x[:, i]) == 0:
            raise SavingsError(f"regressor {name!r} does not vary over the baseline (always {x[0, i]:g}): it cannot "
                               "explain consumption; leave it out")
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise SavingsError(f"regressors {', '.join(regressors)} are linearly dependent over the baseline: leave "
                           "one out")
    if len(regressors) > 1:
        vifs = [variance_inflation_factor(x, i) for i in range(1, x.shape[1])]
        worst = int(np.argmax(vifs))
        if vifs[worst] > MAX_VIF:
            corr = np.corrcoef(x[:, 1:], rowvar=False)[worst]
            other = max((j for j in range(len(regressors)) if j != worst), key=lambda j: abs(corr[j]))
            raise SavingsError(f"regressors {regressors[worst]!r} and {regressors[other]!r} are collinear over the "
                               f"baseline (correlation {corr[other]:.3f}, VIF {vifs[worst]:.1f} > {MAX_VIF:g}): "
                               "their effects cannot be told apart; leave one out")


def _fit_stats(res, y: np.ndarray, x: np.ndarray, regressors: list[str], freq: str) -> FitStats:
    n, p = len(y), x.shape[1]
    resid = y - res.fittedvalues
    mean = float(y.mean())
    rmse = math.sqrt(float((resid ** 2).sum()) / (n - p)) if n > p else math.nan
    cv = rmse / mean if mean else math.nan
    nmbe = float(resid.sum()) / ((n - p) * mean) if mean and n > p else math.nan
    rho = float(np.corrcoef(resid[:-1], resid[1:])[0, 1]) if n > 2 and resid.std() > 0 else 0.0
    rho_used = max(rho, 0.0) if freq == "daily" else 0.0  # G14: autocorrelation matters for daily and finer data
    n_eff = n * (1 - rho_used) / (1 + rho_used)
    vifs = [math.nan, *([variance_inflation_factor(x, i) for i in range(1, p)] if p > 2 else [1.0] * (p - 1))]
    terms = ["intercept", *regressors]
    coef = pd.DataFrame({"term": terms, "estimate": res.params, "std_error": res.bse, "t": res.tvalues,
                         "p_value": res.pvalues, "vif": vifs})
    limits = G14_CRITERIA[freq]
    criteria = {"cv_rmse": bool(cv <= limits["cv_rmse"]), "nmbe": bool(abs(nmbe) <= limits["nmbe"])}
    formula = "consumption = " + " + ".join(
        [f"{res.params[0]:.6g}", *(f"{b:.6g} x {t}" for b, t in zip(res.params[1:], regressors, strict=True))])
    return FitStats(formula=formula, n=n, p=p, r2=float(res.rsquared), adj_r2=float(res.rsquared_adj), rmse=rmse,
                    cv_rmse=cv, nmbe=nmbe, rho=rho, n_eff=n_eff, coefficients=coef, criteria=criteria)


def _extrapolation_notes(base: pd.DataFrame, rep: pd.DataFrame, regressors: list[str]) -> list[str]:
    notes = []
    for c in regressors:
        lo, hi = float(base[c].min()), float(base[c].max())
        out = rep[(rep[c] < lo) | (rep[c] > hi)]
        if len(out):
            notes.append(f"{c} in {len(out)} reporting period(s) outside the baseline's range {lo:g} to {hi:g}: "
                         "the model is extrapolated there")
    return notes
