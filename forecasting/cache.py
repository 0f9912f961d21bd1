"""The forecast cache in the metadata database: what the nightly job computed, for the pages to read.

Pages never train: they read the latest cached forecast of a series (its model, when it was trained, the
backtest's MASE and coverage, the quota burn-down) and the anomalies the job found.  Tables are made by migration
0008 (park/migrations/versions/0008_forecasts.py), never by importing this module.

* `forecasts`: one row per park and series key (the latest run replaces it): `subject` (an enterprise id or
  "park"), `quantity` (energy_tce, total_location_t_co2e, total_market_t_co2e, quota_t_co2e,
  electricity_kwh), `freq` (D or h), the forecast result as JSON (forecasting.forecast.ForecastResult) and, for
  the quota series, the burn-down as JSON (forecasting.quota.BurnDown).
* `anomalies`: one row per anomaly warning (forecasting.anomalies.Anomaly), keyed like the warnings
  (`code|series|period`), so an acknowledgement (portal.alerts, table alert_acks) stays attached to it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import pandas as pd
from sqlalchemy import Double, Engine, ForeignKey, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from forecasting.forecast import ForecastResult
from park.metadata import Base, UTCDateTime

PARK = "park"  # the subject of park-wide series


def series_key(subject: str, quantity: str, freq: str) -> str:
    """The cache key of a series: subject:quantity:freq, e.g. E0001:energy_tce:D or park:electricity_kwh:h."""
    return f"{subject}:{quantity}:{freq}"


class ForecastRow(Base):
    """The latest forecast of one series of a park."""

    __tablename__ = "forecasts"

    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[str] = mapped_column(String(64))
    freq: Mapped[str] = mapped_column(String(8))
    unit: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(64))
    fallback: Mapped[str | None] = mapped_column(Text, nullable=True)
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data_end: Mapped[datetime] = mapped_column(UTCDateTime)  # the forecast origin: history before it
    mase: Mapped[float | None] = mapped_column(Double, nullable=True)
    coverage_80: Mapped[float | None] = mapped_column(Double, nullable=True)
    coverage_95: Mapped[float | None] = mapped_column(Double, nullable=True)
    result: Mapped[str] = mapped_column(Text)  # ForecastResult JSON
    burn_down: Mapped[str | None] = mapped_column(Text, nullable=True)  # BurnDown JSON (quota series only)


class AnomalyRow(Base):
    """An anomaly the nightly job found in a meter's or device's data."""

    __tablename__ = "anomalies"

    park_id: Mapped[str] = mapped_column(ForeignKey("parks.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(320), primary_key=True)
    code: Mapped[str] = mapped_column(String(48))
    severity: Mapped[str] = mapped_column(String(16))
    series: Mapped[str] = mapped_column(String(128))
    enterprise_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    end: Mapped[datetime] = mapped_column(UTCDateTime)
    expected: Mapped[float | None] = mapped_column(Double, nullable=True)
    observed: Mapped[float | None] = mapped_column(Double, nullable=True)
    unit: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)


@dataclass(frozen=True)
class CachedForecast:
    """A cached forecast as a page reads it."""

    key: str
    subject: str
    quantity: str
    freq: str
    unit: str
    model: str
    fallback: str | None
    trained_at: datetime
    data_end: datetime
    mase: float | None
    coverage_80: float | None
    coverage_95: float | None
    result: ForecastResult | None  # None when loaded without it (lists and warnings need only the summary)
    burn_down: dict | None

    def age(self, now: datetime) -> pd.Timedelta:
        """How old the forecast is at `now` (since it was trained)."""
        return pd.Timestamp(now).tz_convert("UTC") - pd.Timestamp(self.trained_at).tz_convert("UTC")


def save_forecast(engine: Engine, park_id: str, subject: str, quantity: str, unit: str, result: ForecastResult,
                  data_end: datetime, burn_down: dict | None = None) -> str:
    """Store (replace) the latest forecast of a series; returns its key."""
    key = series_key(subject, quantity, result.freq)
    score = result.backtest.score(result.model) if result.backtest and not result.fallback else None
    with Session(engine) as s, s.begin():
        row = s.get(ForecastRow, (park_id, key)) or ForecastRow(park_id=park_id, key=key)
        row.subject, row.quantity, row.freq, row.unit = subject, quantity, result.freq, unit
        row.model, row.fallback = result.model, result.fallback
        row.trained_at = pd.Timestamp(result.trained_at).to_pydatetime()
        row.data_end = pd.Timestamp(data_end).tz_convert("UTC").to_pydatetime()
        row.mase = score.mase if score else None
        row.coverage_80 = score.coverage_80 if score else None
        row.coverage_95 = score.coverage_95 if score else None
        row.result = result.to_json()
        row.burn_down = json.dumps(burn_down) if burn_down is not None else None
        s.add(row)
    return key


def _cached(row: ForecastRow, with_result: bool = True) -> CachedForecast:
    return CachedForecast(
        key=row.key, subject=row.subject, quantity=row.quantity, freq=row.freq, unit=row.unit, model=row.model,
        fallback=row.fallback, trained_at=row.trained_at, data_end=row.data_end, mase=row.mase,
        coverage_80=row.coverage_80, coverage_95=row.coverage_95,
        result=ForecastResult.from_json(row.result) if with_result else None,
        burn_down=json.loads(row.burn_down) if row.burn_down else None)


def load_forecast(engine: Engine, park_id: str, key: str) -> CachedForecast | None:
    with Session(engine) as s:
        row = s.get(ForecastRow, (park_id, key))
        return _cached(row) if row else None


def load_forecasts(engine: Engine, park_id: str, quantity: str | None = None,
                   subjects: set[str] | None = None, with_result: bool = True) -> list[CachedForecast]:
    """The cached forecasts of a park (of one quantity, of some subjects), ordered by key; `with_result=False`
    leaves the whole forecast and backtest out (a list or a warning needs the summary and the burn-down only)."""
    q = select(ForecastRow).where(ForecastRow.park_id == park_id)
    if quantity is not None:
        q = q.where(ForecastRow.quantity == quantity)
    with Session(engine) as s:
        rows = s.scalars(q.order_by(ForecastRow.key)).all()
        return [_cached(r, with_result) for r in rows if subjects is None or r.subject in subjects]


def save_anomalies(engine: Engine, park_id: str, anomalies: list, since: datetime) -> int:
    """Replace the park's anomalies that end at or after `since` (the window the job examined) by `anomalies`
    (forecasting.anomalies.Anomaly); older ones stay as history.  Returns how many were written."""
    since_u = pd.Timestamp(since).tz_convert("UTC").to_pydatetime()
    with Session(engine) as s, s.begin():
        s.execute(delete(AnomalyRow).where(AnomalyRow.park_id == park_id, AnomalyRow.end >= since_u))
        seen = set()
        for a in anomalies:
            if a.key in seen:
                continue
            seen.add(a.key)
            s.merge(AnomalyRow(
                park_id=park_id, key=a.key, code=a.code, severity=a.severity, series=a.series,
                enterprise_id=a.enterprise, start=pd.Timestamp(a.start).tz_convert("UTC").to_pydatetime(),
                end=pd.Timestamp(a.end).tz_convert("UTC").to_pydatetime(), expected=a.expected,
                observed=a.observed, unit=a.unit, reason=a.reason,
                detected_at=pd.Timestamp(a.detected_at).tz_convert("UTC").to_pydatetime()))
    return len(seen)


def load_anomalies(engine: Engine, park_id: str, since: datetime | None = None,
                   enterprises: set[str] | None = None) -> list[AnomalyRow]:
    """The park's cached anomalies ending at or after `since` (of `enterprises`: None = all, park-wide rows
    included), oldest first."""
    q = select(AnomalyRow).where(AnomalyRow.park_id == park_id)
    if since is not None:
        q = q.where(AnomalyRow.end >= pd.Timestamp(since).tz_convert("UTC").to_pydatetime())
    with Session(engine) as s:
        rows = list(s.scalars(q.order_by(AnomalyRow.start, AnomalyRow.key)).all())
        s.expunge_all()
    return [r for r in rows if enterprises is None or r.enterprise_id in enterprises]
