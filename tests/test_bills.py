"""Utility bills as a record of their own (park.bills, migration 0010): import with quarantine by line, overlap and
repeat detection, re-issued bills superseding old ones, and the meter's energy over exactly a billing period."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from park.bills import (
    BillFileError,
    bill_rejects,
    compare,
    import_bills,
    load_bills,
    metered_over,
)
from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.store.embedded import EmbeddedStore
from park.units import Carrier

TZ = "Asia/Shanghai"
PARK = Park(id="p", name="测试园区", name_en="Test Park", province="Jiangsu", grid_region="east_china",
            enterprises=(Enterprise("E1", "甲公司", "Alpha Co.", "machinery", "91320500MA1E1E1E1X"),
                         Enterprise("E2", "乙公司", "Beta Co.", "machinery", "91320500MA2E2E2E2Y")),
            meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"), Meter("E1-G1", Carrier.NATURAL_GAS, "E1"),
                    Meter("E1-S1", Carrier.STEAM, "E1"), Meter("E2-M1", Carrier.ELECTRICITY, "E2")))
NOW = datetime(2024, 4, 10, 4, 0, tzinfo=UTC)

# line 1 is the header; the comment says what each line must give
BILLS = """meter,period_start,period_end,quantity,unit,amount_cny
E1-M1,2024-01-05,2024-02-05,6.5,MWh,5200
E1-G1,2024-01-01,2024-02-01,1.2,万立方米,
E1-M1,2024-01-20,2024-02-20,100,kWh,
NOPE,2024-01-01,2024-02-01,5,kWh,
E2-M1,2024-02-01,2024-01-01,5,kWh,
E2-M1,2024-01-01,2024-02-01,abc,kWh,
E2-M1,2024-01-01,2024-02-01,5,m3,
E2-M1,2024-01-01 00:07,2024-02-01,5,kWh,
E2-M1,2024-01-01,2024-02-01,5208,kWh,
E2-M1,2024-01-01,2024-02-01,5208,kWh,
E1-M1,2024-02-05,2024-03-05,-3,kWh,
E1-S1,2024-01-01,2024-02-01,310,GJ,
E2-M1,2024-02-01,2024-03-01,4872,度,3900.5
E2-M1,2024-03-01,2024-04-01,5208,kWh,lots
"""
EXPECTED_REJECTS = {4: "file.bill_overlap", 5: "series.unknown", 6: "file.bad_period", 7: "reading.not_a_number",
                    8: "reading.unit_mismatch", 9: "file.bad_period", 12: "reading.negative",
                    13: "reading.unit_mismatch", 15: "reading.not_a_number"}


@pytest.fixture
def engine(tmp_path):
    e = create_engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    import_park(e, PARK)
    return e


def write(tmp_path: Path, text: str, name: str = "bills.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=TZ).tz_convert("UTC")


def test_good_rows_go_in_converted_and_bad_ones_are_quarantined_with_their_line(engine, tmp_path):
    report = import_bills(engine, PARK, write(tmp_path, BILLS), actor="test", now=NOW)
    assert (report.rows, report.accepted, report.rejected, report.reported) == (14, 4, 9, 1)
    bills = load_bills(engine, "p")
    got = {(b.meter, b.period_start, b.period_end): (b.quantity, b.unit, None if pd.isna(b.amount_cny)
                                                      else b.amount_cny, b.source_line) for b in bills.itertuples()}
    nan = None  # no amount stated
    assert got == {
        ("E1-M1", local("2024-01-05"), local("2024-02-05")): (6500.0, "kWh", 5200.0, 2),  # MWh -> kWh
        ("E1-G1", local("2024-01-01"), local("2024-02-01")): (12000.0, "m3", nan, 3),  # 万立方米 -> m3
        ("E2-M1", local("2024-01-01"), local("2024-02-01")): (5208.0, "kWh", nan, 10),
        ("E2-M1", local("2024-02-01"), local("2024-03-01")): (4872.0, "kWh", 3900.5, 14),  # 度 is kWh
    }
    rejects = bill_rejects(engine, "p")
    assert dict(zip(rejects["line"], rejects["code"], strict=True)) == EXPECTED_REJECTS
    for r in rejects.itertuples():
        assert r.reason.startswith(f"line {r.line}: ")
    assert "line 2" in rejects.set_index("line").loc[4, "reason"]  # the overlap names the bill it overlaps
    assert "steam" in rejects.set_index("line").loc[13, "reason"]  # GJ for a meter in tonnes: refused, not guessed
    assert report.codes["file.bill_repeat"] == 1 and "line 11" in report.summary()


def test_importing_the_same_file_again_changes_nothing(engine, tmp_path):
    path = write(tmp_path, BILLS)
    import_bills(engine, PARK, path, actor="test", now=NOW)
    before = load_bills(engine, "p")
    again = import_bills(engine, PARK, path, actor="test", now=NOW)
    assert again.accepted == 0
    assert again.codes["file.bill_repeat"] == 5  # the four bills and the repeat of line 10
    pd.testing.assert_frame_equal(load_bills(engine, "p"), before)


def test_a_reissued_bill_supersedes_the_old_one_only_when_asked_and_the_old_one_is_kept(engine, tmp_path):
    import_bills(engine, PARK, write(tmp_path, BILLS), actor="test", now=NOW)
    reissued = write(tmp_path, "meter,period_start,period_end,quantity,unit\nE1-M1,2024-01-05,2024-02-05,6600,kWh\n",
                     "reissued.csv")
    refused = import_bills(engine, PARK, reissued, actor="test", now=NOW)
    assert refused.accepted == 0 and refused.codes["file.bill_differs"] == 1
    assert "--correct" in refused.rejects[0]["reason"]
    assert load_bills(engine, "p", meters=["E1-M1"])["quantity"].tolist() == [6500.0]
    done = import_bills(engine, PARK, reissued, actor="test", correct=True, now=NOW)
    assert (done.accepted, done.superseded) == (1, 1)
    assert load_bills(engine, "p", meters=["E1-M1"])["quantity"].tolist() == [6600.0]
    both = load_bills(engine, "p", meters=["E1-M1"], superseded=True).sort_values("id")
    assert both["quantity"].tolist() == [6500.0, 6600.0]
    assert both["superseded_by"].iloc[0] == both["id"].iloc[1]


def test_a_bill_overlapping_an_imported_one_with_another_period_is_refused(engine, tmp_path):
    import_bills(engine, PARK, write(tmp_path, BILLS), actor="test", now=NOW)
    shifted = write(tmp_path, "meter,period_start,period_end,quantity\nE1-M1,2024-02-01,2024-03-01,7000\n", "s.csv")
    report = import_bills(engine, PARK, shifted, actor="test", now=NOW)
    assert report.codes["file.bill_overlap"] == 1 and report.accepted == 0


def test_a_dry_run_writes_nothing(engine, tmp_path):
    report = import_bills(engine, PARK, write(tmp_path, BILLS), actor="test", dry_run=True, now=NOW)
    assert report.accepted == 4 and "would import" in report.summary()
    assert load_bills(engine, "p").empty and bill_rejects(engine, "p").empty


def test_an_excel_file_with_chinese_headers(engine, tmp_path):
    path = tmp_path / "账单.xlsx"
    pd.DataFrame({"计量点": ["E1-M1"], "起始日期": ["2024-03-05"], "截止日期": ["2024-04-05"], "用量": ["0.65"],
                  "单位": ["万千瓦时"], "金额": ["5100"], "户号": ["3201-778899"]}).to_excel(path, index=False)
    report = import_bills(engine, PARK, path, actor="test", now=NOW)
    assert report.accepted == 1
    b = load_bills(engine, "p").iloc[0]
    assert (b.quantity, b.quantity_stated, b.unit_stated, b.account) == (6500.0, 0.65, "10^4 kWh", "3201-778899")


def test_a_file_without_the_needed_columns_is_refused_whole(engine, tmp_path):
    with pytest.raises(BillFileError, match="missing column.*period_end"):
        import_bills(engine, PARK, write(tmp_path, "meter,period_start,quantity\nE1-M1,2024-01-01,5\n"), actor="t")
    assert load_bills(engine, "p").empty


# ---- metered over a billing period ------------------------------------------------------------------------------
GRID = pd.date_range(pd.Timestamp("2024-01-30", tz=TZ), pd.Timestamp("2024-02-02", tz=TZ), freq="15min",
                     inclusive="left")  # crosses a month boundary: the store's month windows are clipped
RNG = np.random.default_rng(12)
VALUES = pd.Series(RNG.uniform(0, 20, len(GRID)), index=GRID)
PRESENT = pd.Series(RNG.uniform(0, 1, len(GRID)) > 0.1, index=GRID)  # a tenth of the intervals missing


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = EmbeddedStore(tmp_path_factory.mktemp("bills") / "ts.duckdb", PARK.catalog(), TZ)
    kept = VALUES[PRESENT]
    s.write("energy", pd.DataFrame({"ts": kept.index, "series": "E1-M1", "value": kept.to_numpy()}))
    s.write("energy", pd.DataFrame({"ts": GRID, "series": "E2-M1", "value": 1000.0}))  # another meter: not counted
    yield s
    s.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, len(GRID) - 1), st.integers(1, len(GRID)))
def test_metered_over_a_period_is_the_sum_of_the_stores_intervals_within_it(store, i, n):
    j = min(i + n, len(GRID))
    a = GRID[i]
    b = GRID[j] if j < len(GRID) else GRID[-1] + pd.Timedelta(minutes=15)
    got = metered_over(store.aggregate, "E1-M1", a, b)
    grid = GRID
    inside = (grid >= a) & (grid < b)
    want = VALUES[inside & PRESENT.to_numpy()]
    assert got["intervals_expected"] == int(inside.sum())
    assert got["intervals_present"] == len(want)
    if len(want):
        assert got["metered"] == pytest.approx(float(want.sum()), rel=1e-12)
    else:
        assert np.isnan(got["metered"])  # no interval: missing, never 0


def test_compare_flags_agree_differ_incomplete_and_the_stretches_without_a_bill(store):
    def total(a, b):
        grid = GRID
        inside = (grid >= a) & (grid < b)
        return float(VALUES[inside & PRESENT.to_numpy()].sum())

    t1, t2, t3 = (pd.Timestamp(x, tz=TZ) for x in ("2024-01-30 06:00", "2024-01-31 00:00", "2024-02-01 00:00"))
    m1, m2 = total(t1, t2), total(t2, t3)
    full = 1000.0 * 96  # E2-M1: every interval of 31 January, 1000 kWh each
    bills = pd.DataFrame({"id": [1, 2, 3], "meter": ["E1-M1", "E1-M1", "E2-M1"], "period_start": [t1, t2, t2],
                          "period_end": [t2, t3, t3], "quantity": [m1 * 1.01, m2 * 0.9, full * 0.9],
                          "amount_cny": [None, 88.0, None], "source_file": "b.csv", "source_line": [2, 3, 4]})
    end = GRID[-1] + pd.Timedelta(minutes=15)
    out = compare(store.aggregate, bills, [PARK.meters[0], PARK.meters[1], PARK.meters[3]], GRID[0], end)
    assert list(out["meter"].unique()) == ["E1-M1", "E2-M1"]  # a meter without bills is not listed
    e1, e2 = out[out["meter"] == "E1-M1"], out[out["meter"] == "E2-M1"]
    assert list(e1["period_start"]) == [GRID[0], t1, t2, t3]
    # within 2 % agrees even with intervals missing; 10 % off with intervals missing is not yet a disagreement
    assert list(e1["status"]) == ["no_bill", "agree", "incomplete_meter", "no_bill"]
    assert list(e2["status"]) == ["no_bill", "differ", "no_bill"]
    b1, b2 = e1.iloc[1], e1.iloc[2]
    assert b1["metered"] == pytest.approx(m1) and b1["billed"] == pytest.approx(m1 * 1.01)
    assert b1["difference"] == pytest.approx(m1 - m1 * 1.01)
    assert b2["relative_difference"] == pytest.approx((m2 - m2 * 0.9) / (m2 * 0.9))
    assert b1["coverage"] < 1 and b2["coverage"] < 1 and b2["amount_cny"] == 88.0
    d = e2.iloc[1]
    assert (d["metered"], d["billed"], d["coverage"]) == (full, full * 0.9, 1.0)
    assert d["difference"] == pytest.approx(full * 0.1) and d["source"] == "b.csv line 4"


def test_the_command_line_imports_lists_and_quarantines_without_touching_the_store(tmp_path, capsys):
    from park.parkfile import DEMO_PARK_FILE, load_park_file
    from portal.cli import main

    root = tmp_path
    (root / "parkcarbon.toml").write_text(f'park_file = "{DEMO_PARK_FILE}"\ndata_dir = "{root / "state"}"\n')
    config = str(root / "parkcarbon.toml")
    assert main(["--config", config, "init"]) == 0
    meter = next(m for m in load_park_file(DEMO_PARK_FILE).meters if m.carrier == Carrier.ELECTRICITY)
    path = write(root, f"计量点,起始日期,截止日期,用量,单位\n{meter.id},2024-01-05,2024-02-05,6500,kWh\n"
                       f"{meter.id},2024-01-20,2024-02-20,100,kWh\n")
    capsys.readouterr()
    assert main(["--config", config, "bills", "import", str(path)]) == 1  # one row rejected
    out = capsys.readouterr().out
    assert "2 rows read = 1 accepted + 1 rejected" in out and "line 3: " in out and "file.bill_overlap" in out
    assert main(["--config", config, "bills", "list"]) == 0
    assert "6500" in capsys.readouterr().out
    assert main(["--config", config, "bills", "list", "--rejected"]) == 0
    assert "file.bill_overlap" in capsys.readouterr().out
    assert main(["--config", config, "bills", "import", str(root / "missing.csv")]) == 2
    with EmbeddedStore(root / "state" / "timeseries.duckdb", load_park_file(DEMO_PARK_FILE).catalog(), TZ) as s:
        assert s.points("energy", pd.Timestamp("2024-01-01", tz=TZ), pd.Timestamp("2024-03-01", tz=TZ)).empty


def test_the_demo_park_gets_bills_that_agree_with_its_meters_but_one(tmp_path):
    from park.bills import seed_demo_bills

    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    import_park(engine, PARK)
    now = pd.Timestamp("2024-04-10 12:00", tz=TZ)
    ts = pd.date_range(pd.Timestamp("2023-12-01", tz=TZ), now.floor("D"), freq="15min", inclusive="left")
    with EmbeddedStore(tmp_path / "ts.duckdb", PARK.catalog(), TZ) as store:
        store.write("energy", pd.concat([pd.DataFrame({"ts": ts, "series": m, "value": v})
                                         for m, v in (("E1-M1", 10.0), ("E2-M1", 4.0))], ignore_index=True))
        line = seed_demo_bills(engine, store, PARK, now, tmp_path / "bills.csv")
        assert "8 imported" in line  # 5 Dec to 5 Jan, to 5 Feb, to 5 Mar, to 5 Apr: four each for two meters
        bills = load_bills(engine, "p")
        assert set(bills["meter"]) == {"E1-M1", "E2-M1"}
        assert bills["period_start"].min() == local("2023-12-05") and bills["period_end"].max() == local("2024-04-05")
        out = compare(store.aggregate, bills, list(PARK.meters), local("2023-12-05"), local("2024-04-05"))
        assert sorted(out["status"]) == ["agree"] * 7 + ["differ"]
        again = seed_demo_bills(engine, store, PARK, now, tmp_path / "bills.csv")
        assert "0 imported (8 unchanged)" in again


@pytest.mark.postgres
def test_the_same_import_on_postgresql(tmp_path):
    from tests.support.postgres import postgres_server

    with postgres_server() as url:
        engine = create_engine_from_url(url)  # upgraded to head by the migrations, 0010 included
        import_park(engine, PARK)
        report = import_bills(engine, PARK, write(tmp_path, BILLS), actor="test", now=NOW)
        assert (report.accepted, report.rejected, report.reported) == (4, 9, 1)
        rejects = bill_rejects(engine, "p")
        assert dict(zip(rejects["line"], rejects["code"], strict=True)) == EXPECTED_REJECTS
        bills = load_bills(engine, "p")
        assert set(bills["period_start"]) >= {local("2024-01-05"), local("2024-01-01")}
        reissued = write(tmp_path, "meter,period_start,period_end,quantity\nE1-M1,2024-01-05,2024-02-05,6600\n",
                         "r.csv")
        assert import_bills(engine, PARK, reissued, actor="test", correct=True, now=NOW).superseded == 1
        engine.dispose()
