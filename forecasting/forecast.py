"""Train, select and forecast one series; the result carries its model, training time, backtest and notes, and
round-trips through JSON (the nightly job caches it; pages read it).

Bad input never raises out of `forecast_series`: a series too short for the backtest, all zero or constant gets
the daily seasonal-naive (or similar-day) baseline, NAMED as a fallback in `fallback` and in the notes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import pandas as pd

from forecasting import calendar
from forecasting.backtest import Backtest, backtest, freq_label
from forecasting.models import COLUMNS, Model, baselines, candidates
from forecasting.series import SeriesError, fill_for_fit, level_change, problems, regular


@dataclass
class ForecastResult:
    model: str
    trained_at: str  # ISO 8601, UTC
    freq: str
    horizon: int
    index: list[str]  # ISO 8601 timestamps of the forecast steps
    p50: list[float]
    lo80: list[float]
    hi80: list[float]
    lo95: list[float]
    hi95: list[float]
    backtest: Backtest | None
    fallback: str | None = None  # why a baseline was used without a backtest choice
    notes: list[str] = field(default_factory=list)
    calendar_source: str = calendar.SOURCE

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({c: getattr(self, c) for c in COLUMNS}, index=pd.DatetimeIndex(self.index))

    @property
    def mase(self) -> float | None:
        return self.backtest.score(self.model).mase if self.backtest and not self.fallback else None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["backtest"] = self.backtest.to_dict() if self.backtest else None
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> ForecastResult:
        d = json.loads(text)
        d["backtest"] = Backtest.from_dict(d["backtest"]) if d["backtest"] else None
        return cls(**d)


def _model_named(name: str, horizon: int, models: Callable[[int], Sequence[Model]] = candidates) -> Model:
    return next(m for m in models(horizon) if m.name == name)


def _result(model: Model, y: pd.Series, horizon: int, bt: Backtest | None, fallback: str | None,
            notes: list[str]) -> ForecastResult:
    f = model.fit(fill_for_fit(y)).predict(horizon)
    note = calendar.coverage_note(f.index)
    if note:
        notes = [*notes, note]
    return ForecastResult(
        model=model.name, trained_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        freq=bt.freq if bt else freq_label(y.index),
        horizon=horizon, index=[t.isoformat() for t in f.index], backtest=bt, fallback=fallback, notes=notes,
        **{c: [float(v) for v in f[c]] for c in COLUMNS})


def forecast_series(y: pd.Series, horizon: int, origins: int = 6, backtest_horizon: int | None = None,
                    models: Callable[[int], Sequence[Model]] = candidates) -> ForecastResult:
    """Backtest the candidates on `y`, fit the chosen one on all of it and forecast `horizon` steps.

    `backtest_horizon` (default: `horizon`) scores only the first steps of each backtest forecast, with the
    models set up for the whole horizon: a forecast to the year end (up to 365 days) is chosen by how well the
    same models forecast the next month, which a year of history can score at several origins.  `models` gives
    the candidates for a horizon (the nightly job adds the pooled gradient-boosting model, forecasting.pooled)."""
    y = regular(y)
    notes = problems(y)
    if y.notna().sum() == 0:
        raise SeriesError("the series has no values")
    degenerate = any(n.startswith(("the series is all zero", "the series is constant")) for n in notes)
    change = None if degenerate else level_change(y)
    if change is not None:  # the older level would mislead every model: learn from the new level only
        notes.append(f"history before {y.index[change].isoformat()} left out: the level changed there (a new "
                     f"line or a replaced meter?); models learn from the {len(y) - change} points after it")
        y = y.iloc[change:]
    bt: Backtest | None = None
    reason: str | None = None
    if degenerate:
        reason = notes[0]
    else:
        try:
            if backtest_horizon is not None and backtest_horizon < horizon:
                bt = backtest(y, backtest_horizon, origins=origins, models=lambda _h: models(horizon))
                bt.notes.append(f"backtest of the first {backtest_horizon} of {horizon} steps (models set up for "
                                f"{horizon})")
            else:
                bt = backtest(y, horizon, origins=origins, models=models)
        except ValueError as exc:
            reason = str(exc)
        else:
            if bt.chosen is None:
                reason = "no candidate could be scored"
    if reason is None and bt is not None:
        try:
            return _result(_model_named(bt.chosen, horizon, models), y, horizon, bt, None, notes + bt.notes)
        except Exception as exc:  # the chosen model failed on the full history: fall back, say so
            reason = f"the chosen model {bt.chosen} failed on the full history ({type(exc).__name__}: {exc})"
    for base in baselines():
        try:
            return _result(base, y, horizon, bt, f"baseline {base.name} used because {reason}", notes)
        except Exception:  # noqa: S112 - try the next, simpler baseline
            continue
    raise SeriesError(f"no baseline can forecast this series ({reason}); it has {int(y.notna().sum())} values")
