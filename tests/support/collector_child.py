"""A collector process for the crash test: polls a deterministic simulated meter register, runs it through the
real pipeline, spool and writer into an embedded store, and can be killed at any moment.

Register of meter Mk at simulated time t (seconds since T0): 1000*k + sum of a known load = exactly computable,
so the test can check every interval the store holds.  On start it resumes after the last register reading the
pipeline consumed (its state is in the spool), as a real poller simply carries on polling.
"""

from __future__ import annotations

import sys
import threading

import pandas as pd

from collectors.normalise import NS
from collectors.pipeline import Pipeline
from collectors.readings import Kind, RawReading
from collectors.spool import Spool
from collectors.writer import Writer
from park.model import SeriesCatalog, SeriesInfo
from park.store.embedded import EmbeddedStore

TZ = "Asia/Shanghai"
T0 = pd.Timestamp("2024-03-01", tz=TZ)
METERS = [f"M{k}" for k in range(1, 4)]
CATALOG = SeriesCatalog([SeriesInfo(m, "meter", "E1", "W1", "electricity", "kWh") for m in METERS])
POLL_S = 60


def register(k: int, t: int) -> float:
    """kWh on meter k at t seconds: (10 + k) kW steady plus 5 kW for the first half of every hour."""
    hours, within = divmod(t, 3600)
    return 1000.0 * k + (10 + k) * t / 3600 + 5 * (hours * 0.5 + min(within, 1800) / 3600)


def main(folder: str, end_s: int) -> None:
    spool = Spool(f"{folder}/spool.db")
    pipe = Pipeline(CATALOG, spool, clock=lambda: pd.Timestamp("2030-01-01", tz="UTC"))
    store = EmbeddedStore(f"{folder}/ts.duckdb", CATALOG, TZ)
    writer = Writer(spool, store, batch_size=200)
    stop = threading.Event()
    threading.Thread(target=writer.run, args=(stop, 0.05), daemon=True).start()
    state = spool.load_state()
    resume = min((state[m]["ts_ns"] - T0.value) // NS + POLL_S if m in state else 0 for m in METERS)
    for t in range(resume, end_s + 1, POLL_S):
        batch = [RawReading(m, T0 + pd.Timedelta(seconds=t), register(k, t), Kind.CUMULATIVE, source="child")
                 for k, m in enumerate(METERS, 1) if m not in state or (state[m]["ts_ns"] - T0.value) // NS < t]
        pipe.submit(batch)
        print(t, flush=True)
    stop.set()
    while spool.stats().queued:
        writer.drain()
    print("done", flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
