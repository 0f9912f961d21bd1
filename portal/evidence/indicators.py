"""What a pack says beyond the accounts, computed by the wings: the trust tier of each headline figure
(carbon.trust: 自证 declared / 互证 cross-checked / 他证 measured), the production and energy risk indicators with
trend, own history and anonymised industry peers (carbon.risk), and the shutdown-risk signals of the bracelets.
This module only gathers their inputs from the pack's data and the scope."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd

TRUST_COLUMNS = ["figure", "value", "unit", "tier", "tier_zh", "reason"]
SIGNAL_COLUMNS = ["code", "severity", "subject", "value", "threshold", "message"]


def bracelets_vs_meter(points: pd.DataFrame, devices: list, lines: pd.DataFrame, period,
                       sampled: dict | None = None) -> pd.DataFrame | None:
    """Per month: the enterprise's metered grid electricity against its bracelets' energy estimate
    (collectors.bracelet.estimated_energy_kwh, carbon.trust.meter_vs_bracelets); None without bracelets.
    `sampled`: utilisation.samples by device, when already computed."""
    from carbon.trust import meter_vs_bracelets

    if not devices or lines.empty:
        return None
    grid = lines[(lines["carrier"] == "electricity") & (lines["flow"] == "import")]
    metered = grid.groupby("period_start", as_index=False)["q_base"].sum(min_count=1).rename(
        columns={"q_base": "metered_kwh"})
    by_series = points if isinstance(points, dict) else dict(tuple(points.groupby("series"))) if len(points) else {}
    bounds = []
    for m in period.months:
        a = max(pd.Timestamp(m).tz_localize(period.start.tz), period.start)
        bounds.append((a, min(a + pd.DateOffset(months=1), period.end)))
    per_month = {d.id: monthly_estimates(by_series[d.id], d, bounds, (sampled or {}).get(d.id))
                 for d in devices if d.id in by_series}
    rows = []
    for i, (a, _) in enumerate(bounds):
        known = [d for d in devices if d.id in per_month and per_month[d.id][i] is not None]
        if known:  # a month without a single bracelet reading has no estimate, not an estimate of 0
            rows.append({"period_start": a, "estimated_kwh": sum(per_month[d.id][i] for d in known)})
    estimated = pd.DataFrame(rows, columns=["period_start", "estimated_kwh"])
    return meter_vs_bracelets(metered, estimated)


def monthly_estimates(readings: pd.DataFrame, device, bounds: list[tuple], sampled=None) -> list[float | None]:
    """collectors.bracelet.estimated_energy_kwh of the readings within each [a, b) of `bounds` (None for a month
    without readings), with the readings sorted once: the same arithmetic on the same slices (the last reading of
    a month stands for one interval, as it does when the month is passed alone).  `sampled`:
    utilisation.samples(readings, device) when already computed."""
    from collectors.bracelet import DEFAULT_PARAMS, SQRT3, _ns, _samples

    ts, current, hold_end, _ = sampled if sampled is not None else _samples(readings, device, DEFAULT_PARAMS)
    interval = int(device.interval_s * 1_000_000_000)
    out: list[float | None] = []
    for a, b in bounds:
        t0, t1 = _ns(a), _ns(b)
        i0, i1 = np.searchsorted(ts, t0, side="left"), np.searchsorted(ts, t1, side="left")
        if i1 <= i0:
            out.append(None)
            continue
        t, c, h = ts[i0:i1], current[i0:i1], hold_end[i0:i1].copy()
        h[-1] = t[-1] + interval
        seconds = (np.clip(h, t0, t1) - np.clip(t, t0, t1)) / 1_000_000_000
        out.append(SQRT3 * device.rated_voltage_v * device.power_factor * (float(np.sum(c * seconds)) / 3600) / 1000)
    return out


def trust_table(data) -> pd.DataFrame:
    """Each headline figure with its trust tier: energy and emissions from the park's meters are measured (他证),
    from figures the enterprise entered declared (自证); output value is declared; intensities take the weaker.
    With bracelets, their energy estimate is held against the meters (互证 when it does not exceed them); with utility
    bills, the meters are held against them per carrier (the check is named in the energy figure's reason)."""
    from carbon.trust import check_rows, classify_figures, summary_figures
    from portal.evidence.pack import HEADLINE

    sources = set(data.lines["source"].dropna()) if len(data.lines) else {"store"}
    source = "store" if sources <= {"store"} else "input"  # any entered figure makes the total declared
    value = data.intensities.get("output_value_10k_cny")
    figures = summary_figures({k: data.totals[k] for k in HEADLINE}, {k: source for k in HEADLINE},
                              value if value is not None and math.isfinite(value) else None)
    checks = None
    cc = data.crosscheck
    if cc is not None and cc["within_tolerance"].notna().any():
        estimate = float(cc["estimated_kwh"].sum(min_count=1))
        figures = pd.concat([figures, pd.DataFrame([{"figure": "bracelet_estimated_kwh", "value": estimate,
                                                     "unit": "kWh", "source": "bracelet_estimate",
                                                     "derived_from": []}])], ignore_index=True)
        checks = pd.concat([check_rows("bracelet_estimated_kwh", "bracelets", "the park's electricity meters", cc),
                            check_rows("energy_tce", "meters", "the bracelets' estimate", cc)], ignore_index=True)
    billed = [r for r in ((data.bill_check or {}).get("compared") or [])
              if r.get("bill_id") is not None and r.get("within_tolerance") is not None]
    if billed:  # the meters against the utility bills, one check per carrier and unit (never summed across units)
        frame = pd.DataFrame(billed)
        checks = pd.concat([c for c in [checks] if c is not None] + [
            check_rows("energy_tce", "meters", f"the {carrier} utility bills ({unit})", g)
            for (carrier, unit), g in frame.groupby(["carrier", "unit"], sort=True)], ignore_index=True)
    out = classify_figures(figures, checks)
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


def savings_for(es, data, consent_row) -> tuple[object | None, str]:
    """Measured savings of the financed project (carbon.savings, IPMVP Option C) on the enterprise's grid
    electricity, monthly, against its declared output value and the calendar: (Savings, "") or (None, why not).

    The data run from the first consented month to the pack's period end, so the baseline (at least 12 months
    before the project start) must be within the consent.  The tce coefficient and the CO2 factor are the rows
    the pack's own accounting lines use for electricity (in factors.csv)."""
    if "savings" not in consent_row.data or consent_row.project_start is None:
        return None, "no financed project in the consent"
    from carbon.errors import CarbonError
    from carbon.savings import SavingsError, TceConversion, measured_savings  # statsmodels: seconds to import
    tz = data.period.start.tz
    start = pd.Timestamp(consent_row.period_from).tz_localize(tz)
    end = data.period.end
    acc = es.accounts(start, end, "month")
    lines = acc.lines[(acc.lines["carrier"] == "electricity") & (acc.lines["flow"] == "import")]
    own = data.lines[(data.lines["carrier"] == "electricity") & (data.lines["flow"] == "import")]
    if lines.empty or own.empty:
        return None, "no metered grid electricity"
    consumption = lines.groupby("period_start")["q_base"].sum(min_count=1)
    covered = lines.groupby("period_start")["coverage"].min()
    ov = es.output_values(start, end)
    output = pd.Series(ov["output_value_10k_cny"].to_numpy(),
                       index=pd.to_datetime(ov["month"]).dt.tz_localize(tz).to_numpy())
    frame = pd.DataFrame({"period_start": consumption.index, "consumption": consumption.to_numpy()})
    frame["output"] = frame["period_start"].map(output)
    # whole months only: the running month (and a month the meter barely covered) would read as savings
    full_end = pd.Timestamp(end.year, end.month, 1, tz=tz)
    frame = frame[(frame["period_start"] < full_end)
                  & frame["period_start"].map(covered).ge(0.9)].reset_index(drop=True)
    tce_id = own["tce_factor"].iloc[-1]
    co2_id = own["emission_factors"].iloc[-1]
    f = data.factors.set_index("id")["per_base"]
    try:
        tce = TceConversion(carrier="electricity", unit="kWh", tce_per_unit=float(f[tce_id]), factor_id=tce_id)
        s = measured_savings(frame, pd.Timestamp(consent_row.project_start).tz_localize(tz), carrier="electricity",
                             unit="kWh", tce=tce, t_co2e_per_unit=float(f[co2_id]), co2_factor_id=co2_id)
    except (SavingsError, CarbonError, KeyError) as exc:
        return None, str(exc)
    return s, ""


BASELINE_COLUMNS = ["month", "energy_tce", "total_location_t_co2e", "output_value_10k_cny", "coverage", "complete"]


def baseline_for(es, data, consent_row) -> tuple[pd.DataFrame | None, dict]:
    """Intensities against a baseline: the same months one year before the pack's period, read only when the
    consent covers them (the bank asks for them with the period, the enterprise grants them; nothing outside the
    consent is read).  (BASELINE_COLUMNS per month, the baseline block of summary.json) or (None, the block saying
    why there is none)."""
    from portal.evidence.pack import intensities

    period = data.period
    months = [date(m.year - 1, m.month, 1) for m in period.months]
    label = f"{months[0]:%Y-%m} – {months[-1]:%Y-%m}"
    if not consent_row.covers(months):
        return None, {"period": label, "used": False,
                      "note": f"no baseline: the consent covers {consent_row.periods}, not the same months a "
                              f"year earlier ({label})"}
    tz = period.start.tz
    start = period.start - pd.DateOffset(years=1)
    end = period.end - pd.DateOffset(years=1)
    tot = es.accounts(start, end, "month").totals_at("enterprise").sort_values("period_start")
    ov = es.output_values(start, end)
    out = dict(zip(pd.to_datetime(ov["month"]).dt.strftime("%Y-%m"), ov["output_value_10k_cny"], strict=True))
    frame = pd.DataFrame({"month": tot["period_start"].dt.strftime("%Y-%m"), "energy_tce": tot["energy_tce"],
                          "total_location_t_co2e": tot["total_location_t_co2e"], "coverage": tot["coverage"],
                          "complete": tot["complete"]}).reset_index(drop=True)
    frame["output_value_10k_cny"] = frame["month"].map(out)
    frame = frame[BASELINE_COLUMNS]
    base_period = type(period)(label, start.tz_convert(tz), end.tz_convert(tz), tuple(months), period.complete)
    totals = {"energy_tce": float(frame["energy_tce"].sum(skipna=False)),
              "total_location_t_co2e": float(frame["total_location_t_co2e"].sum(skipna=False))}
    i = intensities(totals, frame, frame[["month", "output_value_10k_cny"]].dropna(), base_period)
    now = data.intensities
    change = {k: (now[k] / i[k] - 1 if now.get(k) is not None and i[k] not in (None, 0) else None)
              for k in ("t_co2e_per_10k_cny", "tce_per_10k_cny")}
    note = "" if frame["complete"].all() and len(frame) == len(months) else \
        "the baseline months are not all complete (see coverage in baseline_monthly.csv)"
    return frame, {"period": label, "used": True, "energy_tce": totals["energy_tce"],
                   "total_location_t_co2e": totals["total_location_t_co2e"], **i,
                   "change_t_co2e_per_10k_cny": change["t_co2e_per_10k_cny"],
                   "change_tce_per_10k_cny": change["tce_per_10k_cny"], "note": note}
