"""Measured savings, IPMVP Option C (carbon.savings): the worked example of docs/savings.md, the recovery of a known
saving from synthetic data, the Guideline 14 statistics and the refusals."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.factors import FactorRegistry
from carbon.savings import (
    SavingsError,
    TceConversion,
    calendar_terms,
    fractional_savings_uncertainty,
    measured_savings,
    tce_conversion,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "savings.md"
TZ = "Asia/Shanghai"
KWH_TCE = TceConversion("electricity", "kWh", 0.1229e-3, "tce/electricity/equivalent/national/2020-01-01")


def _tables(text: str) -> dict[str, list[list[str]]]:
    """Markdown tables of the doc by their header line (first cell)."""
    tables, current = {}, None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = cells[0]
                tables[current] = []
            elif not set("".join(cells)) <= set("-:"):
                tables[current].append(cells)
        else:
            current = None
    return tables


def _close(actual: float, shown: str) -> None:
    """`actual` rounded to the decimals `shown` equals it (a wrong digit fails)."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    if "e" in shown:  # 1.16e-08: three significant digits
        assert float(f"{actual:.3g}") == pytest.approx(float(shown), rel=1e-9), (actual, shown)
        return
    assert round(actual, decimals) == pytest.approx(float(shown), abs=10 ** -(decimals + 3)), (actual, shown)


def _doc_example():
    tables = _tables(DOC.read_text(encoding="utf-8"))
    rows = tables["month"]  # the first table headed "month": the data
    starts = pd.DatetimeIndex([pd.Timestamp(r[0] + "-01", tz=TZ) for r in rows])
    data = pd.DataFrame({"period_start": starts, "output": [float(r[2]) for r in rows],
                         "consumption": [float(r[3]) for r in rows]})
    working_days = [int(r[1]) for r in rows]
    return tables, data, working_days


def test_worked_example_in_docs_savings_md():
    tables, data, working_days = _doc_example()
    assert list(calendar_terms(data["period_start"], "monthly")) == working_days
    tce = tce_conversion(FactorRegistry.shipped(), "electricity", "kWh", dt.date(2025, 1, 1))
    s = measured_savings(data, pd.Timestamp("2025-01-01", tz=TZ), carrier="electricity", unit="kWh", tce=tce,
                         t_co2e_per_unit=0.5703e-3, co2_factor_id="grid/electricity/ets/national/2023-01-01")
    coef = s.fit.coefficients.set_index("term")
    for term, est, se, t, p, vif in tables["term"]:
        _close(coef.loc[term, "estimate"], est)
        _close(coef.loc[term, "std_error"], se)
        _close(coef.loc[term, "t"], t)
        _close(coef.loc[term, "p_value"], p)
        if vif:
            _close(coef.loc[term, "vif"], vif)
    text = DOC.read_text(encoding="utf-8")
    per_rows = tables["reporting month"]
    assert len(per_rows) == len(s.periods) == 6
    for cells, row in zip(per_rows, s.periods.itertuples(), strict=True):
        assert cells[0] == f"{row.period_start:%Y-%m}"
        _close(row.consumption, cells[1])
        _close(row.adjusted_baseline, cells[2])
        _close(row.savings, cells[3])
        lo, hi = cells[4].split(" to ")
        _close(row.baseline_lower_90, lo)
        _close(row.baseline_upper_90, hi)
    summary = s.summary()
    assert len(tables["figure"]) >= 20
    for key, shown in tables["figure"]:
        value = summary[key]
        if isinstance(value, bool):
            assert str(value).lower() == shown
        else:
            _close(value, shown)
    # the prose mirrors the same figures
    assert round(s.fit.rmse, 1) == 6592.3
    assert s.fit.formula == "consumption = 40396.3 + 397.866 x output + 4340.73 x working_days"
    assert "234 600 kWh (8.2 %" in text
    assert round(s.energy_saved, -2) == 234600 and round(s.fractional_savings, 3) == 0.082
    assert "28.832 tce and 133.79 tCO2" in text
    assert "195 952.5 to 273 247.5 kWh" in text
    assert round(s.uncertainty[0.9].interval_lower, 1) == 195952.5
    assert round(s.uncertainty[0.9].interval_upper, 1) == 273247.5
    assert "68 % is 9.6 % of the savings" in text and "CV(RMSE) is 1.35 %" in text and "RMSE 6 592.3 kWh" in text
    assert round(s.uncertainty[0.68].fsu, 3) == 0.096 and round(s.fit.cv_rmse, 4) == 0.0135
    assert s.meets_guideline14


def _synthetic(seed: int, saving_fraction: float, noise_kwh: float, months: int = 24, reporting: int = 12):
    """Monthly consumption = 50 000 + 400 x output + 3 000 x working days (+ noise), less a known saving after
    the project start; returns the frame, the project start and the true saving in kWh."""
    rng = np.random.default_rng(seed)
    starts = pd.date_range("2023-01-01", periods=months + reporting, freq="MS", tz=TZ)
    output = rng.uniform(600, 1200, len(starts)).round()
    wd = calendar_terms(pd.Series(starts), "monthly").to_numpy()
    model = 50000 + 400 * output + 3000 * wd
    kwh = model + rng.normal(0, noise_kwh, len(starts))
    kwh[months:] -= saving_fraction * model[months:]
    true_saving = float(saving_fraction * model[months:].sum())
    data = pd.DataFrame({"period_start": starts, "consumption": kwh, "output": output})
    return data, starts[months], true_saving


@settings(max_examples=40, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), fraction=st.floats(0.03, 0.3), noise=st.floats(500, 8000))
def test_known_saving_is_recovered_within_its_interval(seed, fraction, noise):
    data, start, true = _synthetic(seed, fraction, noise)
    s = measured_savings(data, start, carrier="electricity", unit="kWh", tce=KWH_TCE, t_co2e_per_unit=0.5703e-3)
    u = s.uncertainty[0.9]
    half = (u.interval_upper - u.interval_lower) / 2
    # Within twice the 90 % half-width (about 3.3 standard errors: a miss would be a one-in-a-thousand event);
    # a wrong sign or scale of the saving lands far outside.
    assert abs(s.energy_saved - true) <= 2 * half
    assert u.interval_lower < s.energy_saved < u.interval_upper
    assert s.energy_saved_tce == pytest.approx(s.energy_saved * 0.1229e-3)
    assert s.co2_avoided_t_co2e == pytest.approx(s.energy_saved * 0.5703e-3)
    assert s.fractional_savings == pytest.approx(s.energy_saved / s.adjusted_baseline)


def test_the_interval_covers_the_known_saving_about_as_often_as_it_says():
    hits68 = hits90 = 0
    runs = 60
    for seed in range(runs):
        data, start, true = _synthetic(seed, 0.1, 6000)
        s = measured_savings(data, start, carrier="electricity", unit="kWh", tce=KWH_TCE, t_co2e_per_unit=0.0)
        hits68 += s.uncertainty[0.68].interval_lower <= true <= s.uncertainty[0.68].interval_upper
        hits90 += s.uncertainty[0.9].interval_lower <= true <= s.uncertainty[0.9].interval_upper
    assert 0.5 <= hits68 / runs <= 0.85
    assert 0.78 <= hits90 / runs <= 1.0


def test_no_saving_gives_an_interval_around_zero_and_no_fsu():
    data, start, _ = _synthetic(3, 0.0, 3000)
    s = measured_savings(data, start, carrier="electricity", unit="kWh", tce=KWH_TCE, t_co2e_per_unit=0.0)
    assert s.uncertainty[0.9].interval_lower < 0 < s.uncertainty[0.9].interval_upper or abs(s.fractional_savings) < 0.01
    if s.fractional_savings <= 0:
        assert math.isnan(s.uncertainty[0.68].fsu) and not s.meets_guideline14


def test_fsu_formula_of_guideline_14_annex_b():
    # t(0.68 two-sided, 12 - 3 = 9 dof) = 1.0525; 1.0525 x 1.26 x 0.05 x sqrt(1 x (1 + 2/12) / 6) / 0.10 = 0.2924
    fsu = fractional_savings_uncertainty(0.05, 12, 12.0, 6, 3, 0.10, 0.68)
    assert fsu == pytest.approx(1.05252 * 1.26 * 0.05 * math.sqrt((1 + 2 / 12) / 6) / 0.10, rel=1e-4)
    assert round(fsu, 4) == 0.2924
    # autocorrelation: n' < n widens it
    assert fractional_savings_uncertainty(0.05, 12, 6.0, 6, 3, 0.10, 0.68) > fsu
    assert math.isnan(fractional_savings_uncertainty(0.05, 12, 12.0, 6, 3, -0.02, 0.68))


def test_degree_days_are_used_when_given():
    data, start, true = _synthetic(5, 0.1, 1000)
    rng = np.random.default_rng(1)
    hdd = rng.uniform(0, 400, len(data)).round()
    data["hdd"] = hdd
    data["consumption"] += 120 * hdd
    s = measured_savings(data, start, carrier="electricity", unit="kWh", tce=KWH_TCE, t_co2e_per_unit=0.0)
    assert s.regressors == ("output", "hdd")
    assert s.fit.coefficients.set_index("term").loc["hdd", "estimate"] == pytest.approx(120, rel=0.1)


def test_daily_data_use_daily_criteria_and_autocorrelation():
    rng = np.random.default_rng(2)
    starts = pd.date_range("2024-01-01", periods=150, freq="D", tz=TZ)
    output = rng.uniform(20, 40, 150)
    e = np.zeros(150)
    for i in range(1, 150):  # AR(1) residuals, rho 0.7
        e[i] = 0.7 * e[i - 1] + rng.normal(0, 300)
    kwh = 2000 + 150 * output + e
    kwh[100:] -= 2000
    data = pd.DataFrame({"period_start": starts, "consumption": kwh, "output": output})
    s = measured_savings(data, starts[100], carrier="electricity", unit="kWh", tce=KWH_TCE, t_co2e_per_unit=0.0,
                         regressors=["output"])
    assert s.frequency == "daily"
    assert s.fit.rho > 0.4 and s.fit.n_eff < s.fit.n / 2
    assert s.energy_saved == pytest.approx(50 * 2000, rel=0.3)
    assert s.fit.cv_rmse < 0.30 and s.fit.criteria == {"cv_rmse": True, "nmbe": True}


def test_tce_conversion_uses_the_registry_rows():
    reg = FactorRegistry.shipped()
    e = tce_conversion(reg, "electricity", "MWh", dt.date(2025, 3, 1))
    assert e.tce_per_unit == pytest.approx(0.1229) and e.factor_id.startswith("tce/electricity/equivalent")
    g = tce_conversion(reg, "natural_gas", "10^4 m3", dt.date(2025, 3, 1))
    assert g.tce_per_unit == pytest.approx(13.3)
    s = tce_conversion(reg, "steam", "GJ", dt.date(2025, 3, 1))
    assert s.tce_per_unit == pytest.approx(0.03412)
    with pytest.raises(SavingsError, match="steam by mass"):
        tce_conversion(reg, "steam", "t", dt.date(2025, 3, 1))
    with pytest.raises(SavingsError, match="cannot be measured in"):
        tce_conversion(reg, "electricity", "m3", dt.date(2025, 3, 1))


def _run(data, start, **kw):
    return measured_savings(data, start, carrier="electricity", unit="kWh", tce=KWH_TCE, t_co2e_per_unit=0.0, **kw)


def test_short_baseline_is_refused_with_counts():
    data, _, _ = _synthetic(1, 0.1, 1000)
    with pytest.raises(SavingsError, match=r"baseline too short: 8 monthly period\(s\).*at least 12"):
        _run(data, pd.Timestamp("2023-09-01", tz=TZ))


def test_project_start_outside_the_data_is_refused():
    data, _, _ = _synthetic(1, 0.1, 1000)
    for start in ("2022-06-01", "2026-02-01"):
        with pytest.raises(SavingsError, match="outside the data, which covers 2023-01-01"):
            _run(data, pd.Timestamp(start, tz=TZ))


def test_missing_output_is_refused():
    data, start, _ = _synthetic(1, 0.1, 1000)
    with pytest.raises(SavingsError, match="output column 'output' missing"):
        _run(data.drop(columns="output"), start)
    data.loc[3, "output"] = np.nan
    with pytest.raises(SavingsError, match=r"'output' missing or not a number in 1 period\(s\) \(2023-04-01"):
        _run(data, start)


def test_missing_consumption_is_refused_not_dropped():
    data, start, _ = _synthetic(1, 0.1, 1000)
    data.loc[30, "consumption"] = np.nan
    with pytest.raises(SavingsError, match="consumption 'consumption' missing"):
        _run(data, start)


def test_collinear_regressors_are_refused():
    data, start, _ = _synthetic(1, 0.1, 1000)
    data["output_value"] = data["output"] * 0.8 + np.random.default_rng(0).normal(0, 1, len(data))
    with pytest.raises(SavingsError, match="'output_value' and 'output' are collinear|'output' and 'output_value' "
                                           "are collinear"):
        _run(data, start, regressors=["output", "output_value"])
    data["flat"] = 5.0
    with pytest.raises(SavingsError, match="'flat' does not vary"):
        _run(data, start, regressors=["output", "flat"])


def test_gaps_and_naive_times_are_refused():
    data, start, _ = _synthetic(1, 0.1, 1000)
    with pytest.raises(SavingsError, match="consecutive months"):
        _run(data.drop(index=5), start)
    naive = data.assign(period_start=data["period_start"].dt.tz_localize(None))
    with pytest.raises(SavingsError, match="timezone-aware"):
        _run(naive, start)


def test_installation_month_is_in_neither_period_and_extrapolation_is_noted():
    data, _, _ = _synthetic(1, 0.1, 1000)
    s = _run(data, pd.Timestamp("2025-01-15", tz=TZ))
    assert s.baseline_end == pd.Timestamp("2025-01-01", tz=TZ)
    assert s.reporting_start == pd.Timestamp("2025-02-01", tz=TZ)
    data.loc[len(data) - 1, "output"] = 5000
    s = _run(data, pd.Timestamp("2025-01-01", tz=TZ))
    assert any("output in 1 reporting period(s) outside the baseline's range" in n for n in s.notes)


def test_guideline_14_criteria_fail_on_a_noisy_model():
    data, start, _ = _synthetic(4, 0.05, 100000)
    s = _run(data, start)
    assert s.fit.cv_rmse > 0.15 and not s.fit.criteria["cv_rmse"] and not s.meets_guideline14


def test_daily_data_get_the_day_off_calendar_term():
    rng = np.random.default_rng(8)
    starts = pd.date_range("2024-03-01", periods=120, freq="D", tz=TZ)
    day_off = calendar_terms(pd.Series(starts), "daily").to_numpy()
    assert day_off[:3].tolist() == [0, 1, 1]  # 2024-03-01 Friday, then the weekend
    output = rng.uniform(10, 40, 120)  # weekend orders too: output does not follow the calendar
    kwh = 3000 - 1500 * day_off + 100 * output + rng.normal(0, 100, 120)
    kwh[90:] -= 300
    data = pd.DataFrame({"period_start": starts, "consumption": kwh, "output": output})
    s = _run(data, starts[90])
    assert s.regressors == ("output", "day_off")
    assert s.fit.coefficients.set_index("term").loc["day_off", "estimate"] == pytest.approx(-1500, rel=0.2)
    assert s.energy_saved == pytest.approx(30 * 300, rel=0.3)


def test_summary_is_plain_json_and_the_data_used_are_kept_for_recomputing():
    import json

    data, start, _ = _synthetic(2, 0.1, 2000)
    s = _run(data, start)
    text = json.dumps(s.summary())
    assert '"energy_saved_kWh"' in text and '"fsu_68"' in text
    assert list(s.data.columns) == ["period_start", "role", "consumption", "output", "working_days"]
    assert (s.data["role"] == "baseline").sum() == s.fit.n == 24
    again = measured_savings(s.data.drop(columns="role"), start, carrier="electricity", unit="kWh", tce=KWH_TCE,
                             t_co2e_per_unit=0.0)
    assert again.energy_saved == s.energy_saved and again.fit.r2 == s.fit.r2
