"""Several processes on one InfluxDB store: a writer process and concurrent readers never see wrong totals.

The writer (a separate process, as `parkcarbon collect` is) keeps rewriting days of a finished month with the
same values (a re-import: every write touches roll-ups that already exist) and appends today's intervals one
at a time.  Readers (threads, each with its own store, as portal workers are) read the month per enterprise and
today's total from the roll-ups all the while.  Values are multiples of 1/4, so every sum is exact in binary
floating point and a correct read equals the truth exactly, whatever the order of summation.

- A monthly read is right when it equals the month's known total (the rewrites do not change it).
- Today's total only grows: a read that began after k appends had completed and ended before append j began
  must lie between the totals after k and after j appends.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from park.model import SeriesCatalog, SeriesInfo

TZ = "Asia/Shanghai"
ENTERPRISES = ("E1", "E2", "E3")
METERS_PER_ENTERPRISE = 4
MONTH = pd.Timestamp("2024-11-01", tz=TZ)
NEXT_MONTH = pd.Timestamp("2024-12-01", tz=TZ)
TODAY = pd.Timestamp("2024-12-02", tz=TZ)
SECONDS = 12.0
MIN_APPENDS = 8


def catalog() -> SeriesCatalog:
    return SeriesCatalog([SeriesInfo(f"{e}-M{i}", "meter", e, f"{e}-W1", "electricity", "kWh")
                          for e in ENTERPRISES for i in range(1, METERS_PER_ENTERPRISE + 1)])


def series_ids() -> list[str]:
    return [s.id for s in catalog().series]


def month_day(day: int) -> pd.DataFrame:
    """All meters' 96 intervals of one November day; value = a multiple of 1/4 from (meter, interval)."""
    ts = pd.date_range(MONTH + pd.Timedelta(days=day), periods=96, freq="15min")
    frames = []
    for k, s in enumerate(series_ids()):
        values = 0.25 * ((np.arange(96) * 7 + k * 3 + day * 5) % 40 + 1)
        frames.append(pd.DataFrame({"ts": ts, "series": s, "value": values}))
    return pd.concat(frames, ignore_index=True)


def month_truth() -> dict[str, float]:
    full = pd.concat([month_day(d) for d in range(30)])
    full["enterprise"] = full["series"].str.split("-").str[0]
    return full.groupby("enterprise")["value"].sum().to_dict()


def today_interval(i: int) -> pd.DataFrame:
    """The i-th 15-minute interval of today, all meters."""
    return pd.DataFrame({"ts": TODAY + pd.Timedelta(minutes=15 * i), "series": series_ids(),
                         "value": [0.25 * ((i + k) % 9 + 1) for k in range(len(series_ids()))]})


def today_totals(n: int) -> list[float]:
    """Today's park total after 0, 1, ..., n appends."""
    return [0.0, *np.cumsum([today_interval(i)["value"].sum() for i in range(n)]).tolist()]


def open_store(url: str, database: str):
    from park.store.influx import InfluxConfig, InfluxStore

    return InfluxStore(InfluxConfig(url=url, database=database), catalog(), TZ)


def writer(url: str, database: str, log_path: str, seconds: float) -> None:
    """Rewrite November days and append today's intervals until `seconds` have passed; log each append."""
    store = open_store(url, database)
    deadline = time.time() + seconds
    i, day = 0, 0
    with open(log_path, "w") as log:
        while (time.time() < deadline or i < MIN_APPENDS) and i < 96:  # enough work even on a slow machine
            store.write("energy", month_day(day % 30))  # same values again: the month total does not change
            day += 7
            t0 = time.time()
            store.write("energy", today_interval(i))
            log.write(json.dumps({"start": t0, "end": time.time(), "k": i + 1}) + "\n")
            log.flush()
            i += 1
    store.close()


def reader(url: str, database: str, stop: threading.Event, out: list[dict]) -> None:
    store = open_store(url, database)
    try:
        while not stop.is_set():
            t0 = time.time()
            month = store.aggregate("energy", MONTH, NEXT_MONTH, "month", by=["enterprise"])
            t1 = time.time()
            out.append({"what": "month", "start": t0, "end": t1,
                        "value": dict(zip(month["enterprise"], month["value"], strict=True))})
            t0 = time.time()
            day = store.aggregate("energy", TODAY, TODAY + pd.Timedelta(days=1), "day")
            t1 = time.time()
            out.append({"what": "today", "start": t0, "end": t1, "value": float(np.nan_to_num(day["value"].sum()))})
    finally:
        store.close()


def wrong_reads(reads: list[dict], appends: list[dict], truth: dict[str, float]) -> tuple[int, int, int, int, list]:
    totals = today_totals(len(appends))
    wrong_month = wrong_today = n_month = n_today = 0
    examples = []
    for r in reads:
        if r["what"] == "month":
            n_month += 1
            if r["value"] != truth:
                wrong_month += 1
                examples.append(r)
        else:
            n_today += 1
            done = sum(1 for a in appends if a["end"] < r["start"])  # completed before the read began
            begun = sum(1 for a in appends if a["start"] < r["end"])  # begun before the read ended
            if not totals[done] <= r["value"] <= totals[begun]:
                wrong_today += 1
                examples.append({**r, "lo": totals[done], "hi": totals[begun]})
    return wrong_month, n_month, wrong_today, n_today, examples


def test_readers_never_see_wrong_totals_while_another_process_writes(influx_server, tmp_path: Path):
    database = "concurrency"
    store = open_store(influx_server.url, database)
    for d in range(30):
        store.write("energy", month_day(d))
    store.refresh_rollups()
    truth = month_truth()
    first = store.aggregate("energy", MONTH, NEXT_MONTH, "month", by=["enterprise"])
    assert dict(zip(first["enterprise"], first["value"], strict=True)) == truth  # exact: multiples of 1/4
    store.close()

    log_path = tmp_path / "appends.jsonl"
    proc = multiprocessing.get_context("spawn").Process(
        target=writer, args=(influx_server.url, database, str(log_path), SECONDS))
    proc.start()
    stop = threading.Event()
    reads: list[dict] = []
    threads = [threading.Thread(target=reader, args=(influx_server.url, database, stop, reads)) for _ in range(2)]
    while not log_path.exists() and proc.is_alive():
        time.sleep(0.05)
    for t in threads:
        t.start()
    proc.join(300)
    stop.set()  # the readers finish their current read
    for t in threads:
        t.join(120)
    assert proc.exitcode == 0, "the writer process failed"
    appends = [json.loads(line) for line in log_path.read_text().splitlines()]
    wrong_month, n_month, wrong_today, n_today, examples = wrong_reads(reads, appends, truth)
    assert n_month >= 5 and n_today >= 5 and len(appends) >= MIN_APPENDS, (
        f"too few reads to judge: {n_month} monthly, {n_today} today's, {len(appends)} appends")
    assert (wrong_month, wrong_today) == (0, 0), (
        f"{wrong_month} of {n_month} monthly and {wrong_today} of {n_today} today's reads were wrong; "
        f"first: {examples[:3]}")
    # And after the writer: the roll-ups equal the raw totals.
    store = open_store(influx_server.url, database)
    raw = store.points("energy", TODAY, TODAY + pd.Timedelta(days=1))["value"].sum()
    assert store.aggregate("energy", TODAY, TODAY + pd.Timedelta(days=1), "day")["value"].sum() == raw
    assert raw == today_totals(len(appends))[-1]
    store.close()
