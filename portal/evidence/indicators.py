"""What a pack says beyond the accounts, computed by the wings: the trust tier of each headline figure
(carbon.trust: 自证 declared / 互证 cross-checked / 他证 measured), the production and energy risk indicators with
trend, own history and anonymised industry peers (carbon.risk), and the shutdown-risk signals of the bracelets.
This module only gathers their inputs from the pack's data and the scope."""

from __future__ import annotations

import math

import pandas as pd

TRUST_COLUMNS = ["figure", "value", "unit", "tier", "tier_zh", "reason"]
SIGNAL_COLUMNS = ["code", "severity", "subject", "value", "threshold", "message"]


def trust_table(data) -> pd.DataFrame:
    """Each headline figure with its trust tier: energy and emissions from the park's meters are measured (他证),
    from figures the enterprise entered declared (自证); output value is declared; intensities take the weaker."""
    from carbon.trust import classify_figures, summary_figures
    from portal.evidence.pack import HEADLINE

    sources = set(data.lines["source"].dropna()) if len(data.lines) else {"store"}
    source = "store" if sources <= {"store"} else "input"  # any entered figure makes the total declared
    value = data.intensities.get("output_value_10k_cny")
    figures = summary_figures({k: data.totals[k] for k in HEADLINE}, {k: source for k in HEADLINE},
                              value if value is not None and math.isfinite(value) else None)
    out = classify_figures(figures)
    return out[TRUST_COLUMNS].reset_index(drop=True)


def utilisation_by_day(data) -> pd.DataFrame:
    """The pack's utilisation rows in carbon.risk's by_day shape (day as park-local midnight)."""
    u = data.utilisation
    if u.empty:
        return pd.DataFrame(columns=["day", "device", "running_h", "running_in_shift_h", "planned_h", "coverage"])
    tz = data.period.start.tz
    return u.assign(day=pd.to_datetime(u["date"]).dt.tz_localize(tz))


def risk_tables(scope, data, rated_kw: dict[str, float]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(indicators, capacity per month, shutdown signals) of the pack's enterprise over its period.

    Peers are the other enterprises of its industry in the park (scope.peer_months, anonymised); capacity comes
    from the bracelets' utilisation x each machine's rated power (`rated_kw`, estimated from its running currents
    when no nameplate is recorded)."""
    from carbon.risk import INDICATOR_COLUMNS, RiskError, capacity_scale, risk_indicators, shutdown_signals

    ent = data.enterprise.id
    by_day = utilisation_by_day(data)
    monthly = scope.peer_months(ent, data.period.start, data.period.end)
    capacity = pd.DataFrame(columns=["month", "devices", "rated_kw", "utilisation", "capacity_kw",
                                     "running_rated_kwh", "coverage"])
    if len(by_day) and rated_kw:
        # a day without readings is unknown, not a stopped machine: it does not count against utilisation
        known = by_day[by_day["device"].isin(rated_kw) & (by_day["coverage"] > 0)]
        if len(known):
            capacity = capacity_scale(known, rated_kw, str(data.period.start.tz))
            monthly = monthly.merge(capacity[["month", "capacity_kw"]].assign(enterprise=ent),
                                    on=["enterprise", "month"], how="left")
    last_month = pd.Timestamp(data.period.months[-1]).tz_localize(data.period.start.tz)
    try:
        indicators = risk_indicators(monthly, ent, last_month)
    except RiskError as exc:
        indicators = pd.DataFrame([{"indicator": "-", "flag": str(exc)}], columns=INDICATOR_COLUMNS)
    energy = monthly[monthly["enterprise"] == ent].set_index("month")["energy_tce"]
    last_day = (data.period.end - pd.Timedelta(seconds=1)).floor("D")
    signals = (shutdown_signals(by_day, last_day, energy) if len(by_day)
               else pd.DataFrame(columns=SIGNAL_COLUMNS))
    return indicators, capacity, signals
