"""Production and energy risk indicators (carbon.risk): capacity, output and energy scale, elasticity, trends,
anonymised peers, and the shutdown-risk signals of the bracelets."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from carbon.risk import (
    RiskError,
    TooFewPeersError,
    capacity_scale,
    elasticity,
    elasticity_windows,
    peer_stats,
    rated_kw_estimate,
    risk_indicators,
    shutdown_signals,
    trend,
)

TZ = "Asia/Shanghai"


def _months(n: int, start: str = "2024-01-01") -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n, freq="MS", tz=TZ)


def _day(d: str) -> pd.Timestamp:
    return pd.Timestamp(d, tz=TZ)


def test_capacity_scale_weights_utilisation_by_rated_power():
    by_day = pd.DataFrame({
        "day": [_day("2025-03-03"), _day("2025-03-03"), _day("2025-03-04"), _day("2025-03-04")],
        "device": ["a", "b", "a", "b"], "planned_h": [8.0, 8.0, 8.0, 8.0],
        "running_in_shift_h": [4.0, 8.0, 0.0, 8.0], "running_h": [5.0, 9.0, 0.0, 8.0],
        "coverage": [1.0, 1.0, 0.5, 1.0]})
    out = capacity_scale(by_day, {"a": 10.0, "b": 30.0}).iloc[0]
    # (10 x 4 + 30 x 8 + 10 x 0 + 30 x 8) / (10 x 16 + 30 x 16) = 520 / 640
    assert out["utilisation"] == pytest.approx(520 / 640)
    assert out["rated_kw"] == 40.0 and out["devices"] == 2
    assert out["capacity_kw"] == pytest.approx(40 * 520 / 640)
    assert out["running_rated_kwh"] == pytest.approx(10 * 5 + 30 * 9 + 30 * 8)
    assert out["coverage"] == pytest.approx(0.875)
    assert out["month"] == _day("2025-03-01")
    with pytest.raises(RiskError, match="no rated power for device\\(s\\) b"):
        capacity_scale(by_day, {"a": 10.0})


def test_elasticity_month_by_month_and_its_refusals():
    m = _months(7)
    monthly = pd.DataFrame({"month": m, "energy_tce": [100.0, 110.0, 121.0, 0.0, 50.0, 55.0, 60.0],
                            "output": [200.0, 220.0, 220.0, 100.0, 120.0, -10.0, 50.0]})
    out = elasticity(monthly).set_index("month")
    assert out.loc[m[1], "elasticity"] == pytest.approx(1.0)  # +10 % energy for +10 % output
    assert out.loc[m[0], "flag"] == "base.missing" and math.isnan(out.loc[m[0], "elasticity"])
    assert out.loc[m[2], "flag"] == "output.unchanged" and math.isnan(out.loc[m[2], "elasticity"])
    assert out.loc[m[3], "elasticity"] == pytest.approx((0 - 121) / 121 / ((100 - 220) / 220))
    assert out.loc[m[4], "flag"] == "base.zero"  # energy base 0: no percentage change
    assert out.loc[m[5], "elasticity"] == pytest.approx(0.1 / ((-10 - 120) / 120))
    assert out.loc[m[6], "flag"] == "base.negative"
    gap = monthly.drop(index=3)
    assert elasticity(gap).set_index("month").loc[m[4], "flag"] == "base.missing"  # no silent jump over a gap


def test_elasticity_of_three_month_windows_against_last_year():
    m = _months(15)
    energy = [100.0] * 12 + [120.0] * 3
    output = [50.0] * 12 + [55.0] * 3
    out = elasticity_windows(pd.DataFrame({"month": m, "energy_tce": energy, "output": output})).set_index("month")
    assert out.loc[m[14], "elasticity"] == pytest.approx(0.2 / 0.1)
    assert out.loc[m[14], "energy_tce"] == 360.0
    assert out.loc[m[13], "flag"] == "base.missing"  # its window a year earlier starts before the data


def test_trend_last_three_months_slope_and_own_history():
    m = _months(24)
    s = pd.Series(np.arange(24, dtype=float) * 2 + 10, index=m)
    t = trend(s, m[23], "sum")
    assert t["latest"] == (56 + 54 + 52) and t["same_months_last_year"] == (32 + 30 + 28)
    assert t["change"] == pytest.approx(162 / 90 - 1)
    assert t["slope_per_month"] == pytest.approx(2.0)
    assert t["history_percentile"] == 100.0  # highest ever
    m2 = m[21] + pd.DateOffset(months=0)
    assert trend(s, m2, "mean")["latest"] == pytest.approx((52 + 50 + 48) / 3)
    holes = s.drop(index=m[22])
    assert math.isnan(trend(holes, m[23], "sum")["latest"])  # a missing month is not a zero


def test_peer_stats_are_anonymous_and_need_three_peers():
    ps = peer_stats(5.0, pd.Series([1.0, 3.0, 5.0, 7.0]))
    assert ps.peer_count == 4 and ps.peer_median == 4.0 and ps.percentile_rank == pytest.approx(62.5)
    with pytest.raises(TooFewPeersError, match="2 peer\\(s\\) with a value, at least 3"):
        peer_stats(5.0, pd.Series([1.0, 3.0, np.nan]))


def _park(n_peers: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    names = ["target", *[f"peer-company-{i}" for i in range(n_peers)], "other-industry"]
    for k, ent in enumerate(names):
        for i, month in enumerate(_months(24)):
            scale = 1 + 0.2 * k
            rows.append({"enterprise": ent, "industry": "metal" if ent != "other-industry" else "food",
                         "month": month, "energy_tce": scale * (100 + i) + rng.normal(0, 1),
                         "output": scale * (500 + 3 * i), "capacity_kw": scale * 80.0})
    return pd.DataFrame(rows)


def test_risk_indicators_with_trend_history_and_anonymised_peers():
    park = _park()
    out = risk_indicators(park, "target", _day("2025-12-15")).set_index("indicator")
    assert list(out.index) == ["capacity_kw", "output", "energy_tce", "elasticity"]
    assert out.loc["output", "latest"] == pytest.approx(sum(500 + 3 * i for i in (21, 22, 23)))
    assert out.loc["output", "same_months_last_year"] == pytest.approx(sum(500 + 3 * i for i in (9, 10, 11)))
    assert out.loc["output", "slope_per_month"] == pytest.approx(3.0)
    assert out.loc["capacity_kw", "latest"] == pytest.approx(80.0)
    assert out.loc["energy_tce", "peer_count"] == 4  # the food enterprise is not a peer; itself neither
    assert out.loc["energy_tce", "peer_percentile_rank"] == 0.0  # the smallest of its industry
    peers_latest = [(1 + 0.2 * k) * sum(500 + 3 * i for i in (21, 22, 23)) for k in range(1, 5)]
    assert out.loc["output", "peer_median"] == pytest.approx(float(np.median(peers_latest)))
    el = out.loc["elasticity"]
    assert math.isfinite(el["latest"]) and el["flag"] == "" and el["indicator_zh"] == "弹性系数"
    text = out.to_csv()
    assert "peer-company" not in text and "other-industry" not in text


def test_peer_figures_are_withheld_below_three_peers():
    park = _park(n_peers=2)
    out = risk_indicators(park, "target", _day("2025-12-01")).set_index("indicator")
    assert out["peer_count"].isna().all() and out["peer_median"].isna().all()
    assert out.loc["energy_tce", "peer_note"].startswith("2 peer(s) with a value, at least 3 needed")
    with pytest.raises(RiskError, match="no monthly figures for enterprise 'nobody'"):
        risk_indicators(park, "nobody", _day("2025-12-01"))


def _by_day(running: dict[str, list[float]], coverage: dict[str, list[float]] | None = None) -> pd.DataFrame:
    rows = []
    for dev, hours in running.items():
        for i, h in enumerate(hours):
            cov = coverage[dev][i] if coverage else 1.0
            rows.append({"day": _day("2025-06-01") + pd.Timedelta(days=i), "device": dev, "running_h": h,
                         "running_in_shift_h": min(h, 8.0), "planned_h": 8.0, "coverage": cov})
    return pd.DataFrame(rows)


def test_shutdown_signals_falling_utilisation_idle_and_silent_machines():
    days = 35
    a = [8.0] * 28 + [0.0] * 7  # stopped for the last week
    b = [8.0] * 28 + [4.0] * 7
    c = [6.0] * 28 + [0.0] * 7  # its bracelet went silent: nothing known
    silent = {"a": [1.0] * days, "b": [1.0] * days, "c": [1.0] * 28 + [0.0] * 7}
    out = shutdown_signals(_by_day({"a": a, "b": b, "c": c}, silent), _day("2025-07-05")).set_index("code")
    # utilisation: before (8 + 8 + 6) / 24 = 0.9167; last week (0 + 4) / 16 = 0.25, c's unknown days left out
    assert out.loc["utilisation.falling", "value"] == pytest.approx(1 - (4 / 16) / (22 / 24))
    assert out.loc["machines.idle", "subject"] == "a"  # c's bracelet was silent: unknown, not idle
    assert out.loc["machines.idle", "value"] == pytest.approx(1 / 3)
    assert out.loc["bracelets.silent", "subject"] == "c"
    steady = shutdown_signals(_by_day({"a": [8.0] * days}), _day("2025-07-05"))
    assert steady.empty


def test_energy_falling_signal():
    m = _months(15)
    energy = pd.Series([100.0] * 12 + [40.0] * 3, index=m)
    out = shutdown_signals(_by_day({"a": [8.0] * 35}), _day("2025-07-05"), monthly_energy=energy)
    assert list(out["code"]) == ["energy.falling"] and out["value"].iloc[0] == pytest.approx(0.6)
    energy.iloc[-3:] = 60.0
    assert shutdown_signals(_by_day({"a": [8.0] * 35}), _day("2025-07-05"), monthly_energy=energy).empty


def test_bracelet_readings_to_capacity_scale_and_idle_signal():
    """collectors.bracelet_analytics.utilisation_by_day feeds capacity_scale and shutdown_signals."""
    from datetime import time

    from collectors.bracelet import Shift, ShiftCalendar
    from collectors.bracelet_analytics import utilisation_by_day
    from park.model import Device

    cal = ShiftCalendar({d: (Shift(time(8), time(16)),) for d in range(7)})
    press = Device("P1", "E1", idle_current_a=1.0, run_current_a=5.0, interval_s=600)
    lathe = Device("L1", "E1", idle_current_a=1.0, run_current_a=5.0, interval_s=600)
    start, end = _day("2025-06-01"), _day("2025-06-11")
    ts = pd.date_range(start - pd.Timedelta(hours=1), end, freq="10min", inclusive="left")
    local_h = ts.hour
    # the press runs 08:00-12:00 every day (half its shift); the lathe idles at 2 A all the time
    press_a = np.where((local_h >= 8) & (local_h < 12), 20.0, 0.0)
    points = pd.concat([pd.DataFrame({"ts": ts, "series": "P1", "value": press_a}),
                        pd.DataFrame({"ts": ts, "series": "L1", "value": 2.0})], ignore_index=True)
    by_day = utilisation_by_day([press, lathe], points, start, end, cal)
    assert len(by_day) == 20 and set(by_day["device"]) == {"P1", "L1"}
    press_days = by_day[by_day["device"] == "P1"]
    assert press_days["utilisation"].to_numpy() == pytest.approx(np.full(10, 0.5), abs=0.03)
    cap = capacity_scale(by_day, {"P1": 30.0, "L1": 10.0}).iloc[0]
    # rated-power weighted: (30 x 0.5 + 10 x 0) / 40 = 0.375
    assert cap["utilisation"] == pytest.approx(0.375, abs=0.02)
    assert cap["capacity_kw"] == pytest.approx(15.0, abs=0.8)
    signals = shutdown_signals(by_day, _day("2025-06-10")).set_index("code")
    assert signals.loc["machines.idle", "subject"] == "L1"


def test_rated_kw_estimate_from_running_currents():
    from park.model import Device

    d = Device("P1", "E1", rated_voltage_v=380.0, power_factor=0.85, run_current_a=5.0)
    never = Device("N1", "E1")
    points = pd.DataFrame({"series": ["P1"] * 4 + ["N1"], "value": [2.0, 20.0, 20.0, 20.0, 1.0]})
    got = rated_kw_estimate(points, [d, never])
    assert got == {"P1": pytest.approx(math.sqrt(3) * 380 * 20 * 0.85 / 1000)}  # 11.19 kW; idle 2 A ignored
