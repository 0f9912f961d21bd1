"""Energy conservation of the register normaliser, as a property (Hypothesis).

A true consumption path is drawn (power per step, times with gaps), rendered as the register readings a meter
would give: wrapping at the register size, reset to zero now and then (meter replaced), with jitter (a re-read a
little below the last one) and 100x misreads (spikes).  Whatever the sequence:

    energy emitted + energy still open in the state - extrapolated - estimated (reported by events)
        == true consumption between the first and last reading - true energy lost before each reset

i.e. everything the normaliser stores is either a register difference of the truth or an estimate it
reports, and no jitter or spike value ever becomes energy (each is rejected, exactly those).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collectors.normalise import ACCEPTED, NS, REJECTED, MeterLimits, step

T0 = 1_709_222_400  # a quarter-hour boundary
M = 100_000.0  # the register wraps here (a 99 999.9 display)
P_MAX = 200.0  # kW, the highest true power drawn
LIMITS = MeterLimits(register_max=M, max_per_h=2 * P_MAX, max_source="test")

op = st.tuples(
    st.sampled_from(["normal", "normal", "normal", "gap", "reset", "jitter", "spike"]),
    st.integers(60, 1800),  # seconds since the previous reading (a gap: 4x that)
    st.floats(0.0, P_MAX),  # true power in kW over the step
    st.floats(0.05, 0.95),  # where in the step a reset happens / how big a jitter is
)


def render(start: float, offset: int, ops: list, register_max_known: bool):
    """Readings [(t, value, kind)] and the truth: total consumption and the energy lost before each reset."""
    t, true_reg, energy = T0 + offset, start, 0.0
    readings = [(t, true_reg, "normal")]
    baseline = true_reg  # the last accepted reading's value
    lost_before_resets = 0.0
    resets = wraps = 0
    previous = "normal"
    for i, (kind, dt, kw, frac) in enumerate(ops):
        if previous != "normal" or i == len(ops) - 1:
            kind = "normal"  # anomalies are isolated, and the sequence ends on a good reading
        if kind == "gap":
            dt *= 4 * 8  # up to 16 h without a reading
        hours = dt / 3600
        d_e = kw * hours
        if not register_max_known and true_reg + d_e >= M:
            d_e = min(d_e, 0.009 * M)  # an unknown register: only a wrap by < 1 % of it is recognisable
        t += dt
        energy += d_e
        if kind == "reset":
            after = d_e * (1 - frac)
            top = 10.0 ** math.floor(math.log10(baseline) + 1) if baseline > 0 else 0.0
            if not (2 * after < baseline < M / 2 and (register_max_known or baseline <= 0.9 * top)):
                kind = "normal"  # not recognisable as a reset (nor by a person): render it as a normal step
            else:
                lost_before_resets += d_e * frac
                true_reg = after
                resets += 1
        if kind != "reset":
            true_reg += d_e
            if true_reg >= M:
                true_reg -= M
                wraps += 1
        value = true_reg
        if kind == "jitter":
            eps = frac * min(1.0, baseline / 4)
            if eps <= 0:
                kind = "normal"
            else:
                value = baseline - eps
        elif kind == "spike":
            spike = 100 * true_reg
            caught = (register_max_known and spike >= M) or spike - baseline > 2 * P_MAX * (hours + 1)
            if true_reg < baseline or not caught:
                kind = "normal"
            else:
                value = spike
        readings.append((t, value, kind if kind in ("jitter", "spike") else "normal"))
        if kind not in ("jitter", "spike"):
            baseline = true_reg
        previous = kind if kind in ("jitter", "spike") else "normal"
    return readings, energy, lost_before_resets, resets, wraps


@settings(max_examples=300, deadline=None)
@given(start=st.one_of(st.floats(0.0, M - 1), st.floats(M - 3000, M - 1)),  # often near the wrap
       offset=st.integers(0, 1799), ops=st.lists(op, min_size=1, max_size=60), register_max_known=st.booleans())
def test_stored_energy_plus_reported_estimates_equals_the_true_consumption(start, offset, ops, register_max_known):
    readings, truth, lost, resets, wraps = render(start, offset, ops, register_max_known)
    limits = LIMITS if register_max_known else MeterLimits(max_per_h=2 * P_MAX, max_source="test")
    state, stored, extrapolated, estimated, codes = None, 0.0, 0.0, 0.0, []
    for t, value, kind in readings:
        state, intervals, events, status = step(state, t * NS, value, limits)
        assert status == (REJECTED if kind in ("jitter", "spike") else ACCEPTED), (t - T0, value, kind, events)
        stored += sum(i.energy for i in intervals)
        extrapolated += sum(i.extrapolated for i in intervals)
        estimated += sum(e.estimated for e in events)
        codes += [e.code for e in events]
    assert state is not None
    measured = stored + state.open_energy - extrapolated - estimated
    assert measured == pytest.approx(truth - lost, abs=1e-6 * (1 + len(readings)))
    assert codes.count("meter.reset") == resets
    assert codes.count("meter.rollover") == wraps
    assert codes.count("reading.backward") == sum(k == "jitter" for *_, k in readings)
    assert codes.count("reading.spike") == sum(k == "spike" for *_, k in readings)
    assert "meter.jump" not in codes


# --- through the pipeline: every row accounted for, batches cut anywhere ---------------------------------

def _pipeline(tmp_path_factory):
    import pandas as pd

    from collectors.pipeline import Pipeline
    from collectors.spool import Spool
    from park.model import SeriesCatalog, SeriesInfo

    catalog = SeriesCatalog([SeriesInfo("M1", "meter", "E1", None, "electricity", "kWh")])
    spool = Spool(tmp_path_factory.mktemp("spool") / "spool.db")
    return Pipeline(catalog, spool, limits={"M1": LIMITS}, clock=lambda: pd.Timestamp("2030-01-01", tz="UTC"))


def _frame(rows):
    import pandas as pd

    return pd.DataFrame({"ts": [pd.Timestamp((T0 + t) * NS, tz="UTC") for t, _ in rows], "series": "M1",
                         "value": [v for _, v in rows], "source": "test", "line": range(2, 2 + len(rows))})


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 20).map(lambda k: k * 300),
                               st.sampled_from([10.0, 12.0, 15.0, 11.9, 1500.0, 5.0, 99_999.0, float("nan")])),
                     max_size=30),
       cuts=st.lists(st.integers(0, 30), max_size=4))
def test_every_row_read_is_accepted_rejected_or_reported(tmp_path_factory, rows, cuts):
    from collectors.readings import Kind

    pipe = _pipeline(tmp_path_factory)
    bounds = sorted({0, len(rows), *[min(c, len(rows)) for c in cuts]})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        done = pipe.process([("energy", Kind.CUMULATIVE, _frame(rows[lo:hi]))])
        pipe.commit_state(done.state)
        assert done.read == hi - lo == done.accepted + len(done.rejects) + done.reported
        assert all(r["code"] and r["line"] is not None for r in done.rejects)
        assert done.reported == sum(e["severity"] == "info" for e in done.events)
    pipe.spool.close()


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.integers(60, 1800), st.floats(0.0, 50.0)), min_size=1, max_size=40),
       cuts=st.lists(st.integers(1, 40), max_size=4))
def test_cutting_a_register_history_into_batches_changes_nothing(tmp_path_factory, steps, cuts):
    from collectors.readings import Kind

    t, v, rows = 0, 1000.0, [(0, 1000.0)]
    for dt, kwh in steps:
        t, v = t + dt, v + kwh
        rows.append((t, v))
    one = _pipeline(tmp_path_factory)
    whole = one.process([("energy", Kind.CUMULATIVE, _frame(rows))])
    one.spool.close()
    pipe = _pipeline(tmp_path_factory)
    parts = []
    bounds = sorted({0, len(rows), *[min(c, len(rows)) for c in cuts]})
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        done = pipe.process([("energy", Kind.CUMULATIVE, _frame(rows[lo:hi]))])
        pipe.commit_state(done.state)
        parts += list(zip(done.rows["ts"], done.rows["value"], done.rows["quality"], strict=True))
    assert [(ts, round(e, 9), q) for ts, e, q in parts] == [
        (ts, round(e, 9), q) for ts, e, q in zip(whole.rows["ts"], whole.rows["value"], whole.rows["quality"],
                                                 strict=True)]
    pipe.spool.close()
