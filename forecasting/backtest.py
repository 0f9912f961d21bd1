"""Rolling-origin backtest: fit each candidate on the data before an origin, forecast `horizon` steps, score
against what happened; repeat for several origins; choose the model with the lowest mean MASE.

Metrics (per origin, then averaged over the origins):
- MASE: mean absolute error / mean absolute seasonal-naive error IN SAMPLE (the training data before that
  origin; season one day for intra-day series, one week for daily series). Below 1 beats seasonal naive.
- MAPE (%): mean |error| / |actual| over the points whose actual is not zero; zero actuals are skipped and
  counted in `mape_skipped` (a percentage of zero is undefined). None when every actual is zero.
- coverage_80 / coverage_95: the share of actuals inside the 80 % / 95 % interval (nominal 0.80 / 0.95).
Points whose actual is missing are not scored. Nothing after an origin reaches the model fitted at it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from forecasting.models import Model, candidates, mase_season, steps_per_day
from forecasting.series import fill_for_fit

REFERENCE = "seasonal_naive_daily"


@dataclass
class ModelScore:
    model: str
    mase: float | None
    mape: float | None
    mape_skipped: int
    coverage_80: float | None
    coverage_95: float | None
    points: int
    origins: int
    fit_seconds: float
    residual_acf1: float | None = None
    mase_vs_reference: float | None = None  # this model's MASE / the reference's (seasonal naive, daily)
    error: str | None = None


@dataclass
class Backtest:
    freq: str
    horizon: int
    season: int
    origins: list[str]
    scores: list[ModelScore]
    chosen: str | None
    reference: str = REFERENCE
    notes: list[str] = field(default_factory=list)
    chosen_errors: list[list[float | None]] = field(default_factory=list)  # actual - p50, per origin and step

    def score(self, model: str) -> ModelScore:
        return next(s for s in self.scores if s.model == model)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> Backtest:
        d = dict(d)
        d["scores"] = [ModelScore(**s) for s in d["scores"]]
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> Backtest:
        return cls.from_dict(json.loads(text))


def origin_positions(n: int, horizon: int, origins: int, step: int | None, min_train: int) -> list[int]:
    """Positions (count of training points) of the origins, oldest first: the last origin leaves exactly
    `horizon` points to score; earlier ones every `step` (default: the horizon) points before."""
    step = step or horizon
    pos = [n - horizon - i * step for i in range(origins)]
    return sorted(p for p in pos if p >= min_train)


def forecast_at(y: pd.Series, origin: int, horizon: int, model: Model) -> pd.DataFrame:
    """Fit `model` on the first `origin` points only (gaps filled) and forecast `horizon` steps."""
    train = fill_for_fit(y.iloc[:origin].copy())
    return model.fit(train).predict(horizon)


def _scale(train: np.ndarray, m: int) -> float:
    d = np.abs(train[m:] - train[:-m])
    d = d[np.isfinite(d)]
    return float(d.mean()) if len(d) else float("nan")


def _acf1(errors: list[np.ndarray]) -> float | None:
    num = den = 0.0
    for e in errors:
        e = e[np.isfinite(e)]
        if len(e) < 3:
            continue
        c = e - e.mean()
        num += float((c[1:] * c[:-1]).sum())
        den += float((c * c).sum())
    return num / den if den > 0 else None


def backtest(y: pd.Series, horizon: int, origins: int = 8, step: int | None = None,
             models: Callable[[int], Sequence[Model]] = candidates, min_train: int | None = None) -> Backtest:
    """Rolling-origin backtest of every candidate on `y` (a regular series, NaN = missing)."""
    m = mase_season(y.index)
    min_train = min_train if min_train is not None else 14 * steps_per_day(y.index)  # two weeks
    values = y.to_numpy(dtype=float)
    pos = origin_positions(len(y), horizon, origins, step, min_train)
    notes: list[str] = []
    if not pos:
        raise ValueError(f"the series has {len(y)} points: too short for a backtest with horizon {horizon} "
                         f"(needs at least {min_train + horizon})")
    scores: list[ModelScore] = []
    errors_by_model: dict[str, list[list[float | None]]] = {}
    for model in models(horizon):
        name = model.name
        mase_o, ape, skipped, in80, in95, npts, errs = [], [], 0, 0, 0, 0, []
        t0 = time.perf_counter()
        try:
            for o in pos:
                f = forecast_at(y, o, horizon, model)
                actual = values[o:o + horizon]
                ok = np.isfinite(actual)
                e = actual - f["p50"].to_numpy()
                errs.append(e)
                scale = _scale(values[:o], m)
                if ok.any() and scale > 0:
                    mase_o.append(float(np.abs(e[ok]).mean() / scale))
                nz = ok & (actual != 0)
                skipped += int((ok & (actual == 0)).sum())
                ape.extend(np.abs(e[nz] / actual[nz]).tolist())
                in80 += int(((actual >= f["lo80"].to_numpy()) & (actual <= f["hi80"].to_numpy()) & ok).sum())
                in95 += int(((actual >= f["lo95"].to_numpy()) & (actual <= f["hi95"].to_numpy()) & ok).sum())
                npts += int(ok.sum())
        except Exception as exc:  # a candidate that cannot fit this series is reported, not fatal
            scores.append(ModelScore(name, None, None, 0, None, None, 0, len(pos), time.perf_counter() - t0,
                                     error=f"{type(exc).__name__}: {exc}"))
            continue
        secs = (time.perf_counter() - t0) / len(pos)
        scores.append(ModelScore(
            model=name, mase=float(np.mean(mase_o)) if mase_o else None,
            mape=100.0 * float(np.mean(ape)) if ape else None, mape_skipped=skipped,
            coverage_80=in80 / npts if npts else None, coverage_95=in95 / npts if npts else None,
            points=npts, origins=len(pos), fit_seconds=round(secs, 4), residual_acf1=_acf1(errs)))
        errors_by_model[name] = [[None if not np.isfinite(v) else float(v) for v in e] for e in errs]
    ref = next((s for s in scores if s.model == REFERENCE and s.mase), None)
    for s in scores:
        if ref is not None and s.mase is not None:
            s.mase_vs_reference = s.mase / ref.mase
    usable = [s for s in scores if s.mase is not None]
    if not usable:
        notes.append("no model could be scored (MASE undefined: the series does not vary, or every candidate "
                     "failed)")
    chosen = min(usable, key=lambda s: s.mase).model if usable else None
    if any(s.mape_skipped for s in scores):
        notes.append("MAPE skips actuals equal to zero (undefined); mape_skipped counts them")
    return Backtest(freq=freq_label(y.index), horizon=horizon, season=m,
                    origins=[y.index[o].isoformat() for o in pos], scores=scores, chosen=chosen, notes=notes,
                    chosen_errors=errors_by_model.get(chosen, []) if chosen else [])


def freq_label(index: pd.DatetimeIndex) -> str:
    step = pd.Timedelta(index.freq) if index.freq is not None else pd.Timedelta(index[1] - index[0])
    return "D" if step == pd.Timedelta(days=1) else pd.tseries.frequencies.to_offset(step).freqstr
