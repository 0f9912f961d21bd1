"""The synthetic park generator: reproducible, chunk-independent, realistic enough, and accepted by the store."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from park.model import Park
from park.synth import (
    STEEL_CSV,
    load_steel_profile,
    public_holidays,
    synth_currents,
    synth_park,
    synth_readings,
)
from park.units import Carrier


@pytest.fixture(scope="module")
def park() -> Park:
    return synth_park(12, 10, seed=7, devices_per_enterprise=2)


def _read(park: Park, start: str, end: str, seed: int = 1, **kw) -> pd.DataFrame:
    return pd.concat(synth_readings(park, start, end, seed, **kw), ignore_index=True)


# ---- the steel profile -----------------------------------------------------------------------------------


def test_profile_repair_gives_a_strict_15_minute_year():
    s = load_steel_profile()
    assert len(s) == 35040
    assert s.index[0] == pd.Timestamp("2018-01-01 00:00", tz="Asia/Shanghai")
    assert s.index[-1] == pd.Timestamp("2018-12-31 23:45", tz="Asia/Shanghai")
    steps = np.diff(s.index.asi8)
    assert (steps == 15 * 60 * 10**9).all()
    raw = pd.read_csv(STEEL_CSV, usecols=["Usage_kWh"])
    assert s.sum() == pytest.approx(raw["Usage_kWh"].sum(), rel=1e-12)
    # the midnight row labelled 01/01/2018 00:00 is the interval 23:45-24:00 of 1 January
    assert s.loc[pd.Timestamp("2018-01-01 23:45", tz="Asia/Shanghai")] == 3.42


def test_profile_refuses_a_file_broken_in_another_way(tmp_path):
    with gzip.open(STEEL_CSV, "rt") as fh:
        lines = fh.read().splitlines()
    del lines[500]  # a missing interval is not the documented fault
    bad = tmp_path / "broken.csv.gz"
    with gzip.open(bad, "wt") as fh:
        fh.write("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="line 501 .* by 15 minutes"):
        load_steel_profile(bad)


# ---- the park --------------------------------------------------------------------------------------------


def test_park_is_reproducible_and_complete(park):
    assert synth_park(12, 10, seed=7, devices_per_enterprise=2) == park
    assert synth_park(12, 10, seed=8, devices_per_enterprise=2) != park
    assert len(park.enterprises) == 12 and len(park.meters) == 120 and len(park.devices) == 24
    ids = [m.id for m in park.meters] + [d.id for d in park.devices]
    assert len(set(ids)) == len(ids)
    catalog = park.catalog()
    assert all(i in catalog for i in ids) and len(catalog) == len(ids)
    for e in park.enterprises:
        ws = [w for w in park.workshops if w.enterprise == e.id]
        assert 1 <= len(ws) <= 4
        assert e.name and e.name_en and e.industry and len(e.credit_code) == 18
        mine = [m for m in park.meters if m.enterprise == e.id]
        assert sum(m.carrier == Carrier.ELECTRICITY for m in mine) >= 6
    assert park.meters[0].id == "E0001-M001"


def test_park_round_trips_through_the_park_file(park):
    parkfile = pytest.importorskip("park.parkfile")
    assert parkfile.parse_park(parkfile.dump_park(park)) == park


def test_benchmark_size_park():
    big = synth_park(200, 10, seed=1)
    assert len(big.meters) == 2000 and len(big.catalog()) == 2000
    carriers = {m.carrier for m in big.meters}
    assert {Carrier.ELECTRICITY, Carrier.NATURAL_GAS, Carrier.STEAM, Carrier.WATER, Carrier.PV} <= carriers


# ---- readings ----------------------------------------------------------------------------------------------


def test_readings_are_reproducible(park):
    a = _read(park, "2024-03-04", "2024-03-06", seed=1)
    b = _read(park, "2024-03-04", "2024-03-06", seed=1)
    c = _read(park, "2024-03-04", "2024-03-06", seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not np.array_equal(a["value"].to_numpy(), c["value"].to_numpy())


def test_every_meter_every_interval_non_negative_rounded(park):
    f = _read(park, "2024-03-04", "2024-03-05")
    assert list(f.columns) == ["ts", "series", "value", "quality"]
    assert len(f) == 120 * 96
    assert set(f["series"].astype(str)) == {m.id for m in park.meters}
    assert str(f["ts"].dt.tz) == "Asia/Shanghai"
    assert f["ts"].min() == pd.Timestamp("2024-03-04", tz="Asia/Shanghai")
    assert f["ts"].is_monotonic_increasing
    assert (f["value"] >= 0).all() and np.isfinite(f["value"]).all()
    assert np.allclose(f["value"] * 100, np.round(f["value"] * 100))
    assert (f["quality"] == "measured").all()
    assert not f.duplicated(["series", "ts"]).any()


def test_chunking_does_not_change_the_data(park):
    start, end = "2024-01-30 10:15", "2024-02-02 03:00"
    one = _read(park, start, end, chunk="year", gap_rate=0.01)
    by_day = _read(park, start, end, chunk="day", gap_rate=0.01)
    odd = _read(park, start, end, chunk=pd.Timedelta("7h"), gap_rate=0.01)
    pd.testing.assert_frame_equal(one, by_day)
    pd.testing.assert_frame_equal(one, odd)
    # a sub-range is the same rows as the slice of a larger range
    inner = _read(park, "2024-01-31", "2024-02-01", chunk="year", gap_rate=0.01)
    sliced = one[(one["ts"] >= inner["ts"].min()) & (one["ts"] <= inner["ts"].max())].reset_index(drop=True)
    pd.testing.assert_frame_equal(inner, sliced)


def test_gap_rate_leaves_rows_out(park):
    full = _read(park, "2024-03-04", "2024-03-11")
    gappy = _read(park, "2024-03-04", "2024-03-11", gap_rate=0.05)
    share = 1 - len(gappy) / len(full)
    assert 0.03 < share < 0.07
    merged = gappy.merge(full, on=["ts", "series"], suffixes=("", "_full"))
    assert len(merged) == len(gappy) and (merged["value"] == merged["value_full"]).all()


def test_pv_is_zero_at_night_and_positive_at_noon(park):
    pv = [m.id for m in park.meters if m.carrier == Carrier.PV]
    if not pv:
        pytest.skip("no PV meter in this park")
    f = _read(park, "2024-06-01", "2024-06-08")
    f = f[f["series"].isin(pv)]
    hour = f["ts"].dt.hour
    assert (f.loc[(hour < 4) | (hour >= 20), "value"] == 0).all()
    assert (f.loc[(hour >= 11) & (hour < 13), "value"] > 0).all()


def _electricity_per_day(park: Park, start: str, end: str) -> pd.Series:
    el = {m.id for m in park.meters if m.carrier == Carrier.ELECTRICITY}
    f = _read(park, start, end)
    f = f[f["series"].isin(el)]
    return f.groupby(f["ts"].dt.date)["value"].sum()


def test_holidays_are_low(park):
    holidays = public_holidays(2024)
    assert holidays[pd.Timestamp("2024-02-12").date()] == "spring_festival"
    assert holidays[pd.Timestamp("2024-10-03").date()] == "holiday"
    spring = _electricity_per_day(park, "2024-02-12", "2024-02-15")  # Mon-Wed of the Spring Festival
    normal = _electricity_per_day(park, "2024-03-11", "2024-03-14")  # Mon-Wed of an ordinary week
    national = _electricity_per_day(park, "2024-10-02", "2024-10-03")
    assert spring.max() < 0.85 * normal.min()
    assert national.max() < 0.95 * normal.min()


def test_weekday_shape_of_a_one_shift_plant():
    one_shift = synth_park(30, 6, seed=3)
    ents = {e.id for e in one_shift.enterprises if e.industry in ("machinery", "logistics", "printing")}
    el = {m.id for m in one_shift.meters if m.carrier == Carrier.ELECTRICITY and m.enterprise in ents}
    f = _read(one_shift, "2024-03-11", "2024-03-18")  # Mon-Sun
    f = f[f["series"].isin(el)]
    ts = f["ts"]
    weekday = ts.dt.day_of_week < 5
    day = weekday & (ts.dt.hour >= 9) & (ts.dt.hour < 16)
    night = weekday & (ts.dt.hour < 5)
    sunday = ts.dt.day_of_week == 6
    assert f.loc[day, "value"].mean() > 3 * f.loc[night, "value"].mean()
    assert f.loc[day, "value"].mean() > 2 * f.loc[sunday, "value"].mean()


def test_readings_are_accepted_by_the_store(park):
    from park.store.embedded import EmbeddedStore

    frame = _read(park, "2024-03-04", "2024-03-05", gap_rate=0.002)
    with EmbeddedStore(":memory:", park.catalog(), park.timezone) as store:
        result = store.write("energy", frame)
        assert result.ok and result.written == len(frame)
        currents = pd.concat(synth_currents(park, "2024-03-04 08:00", "2024-03-04 09:00", 1), ignore_index=True)
        assert len(currents) == 24 * 60 and (currents["value"] >= 0).all()
        assert store.write("current", currents).ok


def test_bad_arguments():
    park = synth_park(1, 2, seed=1)
    with pytest.raises(ValueError, match="gap_rate"):
        list(synth_readings(park, "2024-01-01", "2024-01-02", 1, gap_rate=1.5))
    with pytest.raises(ValueError, match="empty range"):
        list(synth_readings(park, "2024-01-02", "2024-01-01", 1))


def test_demo_park_industries_follow_their_load_shape():
    from park.synth import industry_of

    assert industry_of("textile_dyeing").pattern == "continuous"
    assert industry_of("steel_structures").pattern == "two_shift"
    assert industry_of("something_new").key == "machinery"
