"""The spool forgets exactly the rows the writer acknowledges (a run of ids is deleted as a range), and a claim
gives the rows back with their types."""

from __future__ import annotations

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.spool import Spool

T0 = pd.Timestamp("2024-03-01 00:00", tz="UTC")


def rows(n: int, start: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"measurement": "current", "series": [f"D{i % 3}" for i in range(start, start + n)],
                         "ts": [T0 + pd.Timedelta(minutes=i) for i in range(start, start + n)],
                         "value": [float(i) for i in range(start, start + n)], "quality": "measured",
                         "source": "mqtt:x", "line": None})


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 20), st.integers(0, 25), st.sets(st.integers(0, 24))), min_size=1,
                max_size=6))
def test_ack_forgets_exactly_the_acknowledged_rows(tmp_path_factory, steps):
    """Rows are told apart by their value (SQLite reuses the ids of an emptied table)."""
    spool = Spool(tmp_path_factory.mktemp("spool") / "spool.db")
    kept: list[float] = []  # values queued, oldest first
    n = 0
    for append, limit, pick in steps:
        spool.append(rows(append, n))
        kept += [float(i) for i in range(n, n + append)]
        n += append
        claimed = spool.claim(limit)
        assert claimed["value"].tolist() == kept[:limit]
        chosen = [i for i in sorted(pick) if i < len(claimed)]  # a subset of the claim: runs and gaps
        spool.ack(claimed["id"].iloc[chosen])
        gone = set(claimed["value"].iloc[chosen])
        kept = [v for v in kept if v not in gone]
        assert spool.stats().queued == len(kept)
    assert spool.claim(10_000)["value"].tolist() == kept
    spool.close()


def test_a_claim_gives_the_rows_back_with_their_types(tmp_path):
    spool = Spool(tmp_path / "spool.db")
    frame = rows(3)
    frame.loc[1, "line"] = 17
    spool.append(frame)
    got = spool.claim(10)
    assert got["id"].tolist() == [1, 2, 3] and str(got["id"].dtype) == "int64"
    assert got["ts"].tolist() == frame["ts"].tolist() and str(got["ts"].dtype) == "datetime64[ns, UTC]"
    assert got["value"].tolist() == [0.0, 1.0, 2.0] and got["series"].tolist() == ["D0", "D1", "D2"]
    assert got["line"].tolist() == [None, 17, None] and got["source"].tolist() == ["mqtt:x"] * 3
    assert spool.claim(10).equals(got) and len(spool.claim(0)) == 0
    spool.close()
