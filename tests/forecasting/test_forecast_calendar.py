"""Calendar features: Chinese public holidays and make-up working days (调休) from chinesecalendar."""

from __future__ import annotations

import pandas as pd

from forecasting.calendar import LAST_YEAR, calendar_features, coverage_note, uncovered_years


def _day(date: str) -> pd.Series:
    return calendar_features(pd.DatetimeIndex([pd.Timestamp(f"{date} 10:00", tz="Asia/Shanghai")])).iloc[0]


def test_spring_festival_2026_make_up_saturday_is_a_working_day():
    # State Council 2026: Spring Festival 15-23 Feb off; Saturday 14 Feb and Saturday 28 Feb are worked
    sat = _day("2026-02-14")
    assert (sat.weekday, sat.weekend, sat.makeup_workday, sat.holiday, sat.day_off) == (5, 1, 1, 0, 0)
    assert _day("2026-02-17").holiday == 1 and _day("2026-02-17").day_off == 1
    assert _day("2026-02-23").day_off == 1  # a Monday inside the festival
    assert _day("2026-02-28").day_off == 0


def test_ordinary_weekend_and_weekday():
    assert _day("2026-03-07").day_off == 1  # a Saturday, no arrangement
    assert _day("2026-03-11").day_off == 0  # a Wednesday
    assert _day("2026-03-11").calendar_known == 1


def test_utc_index_is_classed_by_local_day():
    # 2026-02-13 16:00 UTC is 2026-02-14 00:00 in Shanghai: the make-up Saturday
    row = calendar_features(pd.DatetimeIndex([pd.Timestamp("2026-02-13 16:00", tz="UTC")])).iloc[0]
    assert (row.hour, row.makeup_workday, row.day_off) == (0, 1, 0)


def test_a_year_without_data_is_flagged_not_treated_as_normal():
    year = LAST_YEAR + 1
    idx = pd.date_range(f"{year}-01-01", periods=48, freq="h", tz="Asia/Shanghai")
    cal = calendar_features(idx)
    assert (cal["calendar_known"] == 0).all()
    assert uncovered_years(idx) == [year]
    note = coverage_note(idx)
    assert note is not None and str(year) in note and "weekday only" in note
    assert coverage_note(pd.date_range("2026-06-01", periods=3, freq="D", tz="Asia/Shanghai")) is None
