"""bench.mqtt_load's steady-state figures, on made-up runs whose true rates are known."""

from __future__ import annotations

import pytest

from bench.mqtt_load import analyse, goal

RATE = 10_000.0  # messages/s published, half to each of two writers


def run(keep_up: float, seconds: float = 30.0, every_s: float = 2.0, drain_s: float = 0.3, tail_s: float = 0.8):
    """Samples and drains of a run: each writer drains every `every_s` (out of phase), storing `keep_up` of what
    its spool received up to the drain's start; after the last publish each stores the rest `tail_s` later."""
    n = int(RATE * seconds)
    drains, done = [], {0: 0.0, 1: 0.0}
    for k in range(int(seconds / every_s) + 1):
        for w in (0, 1):
            start = 1.0 + k * every_s + w * every_s / 2
            if start + drain_s >= seconds:
                continue
            due = keep_up * RATE / 2 * start - done[w]
            drains.append((w, start, start + drain_s, int(due)))
            done[w] += int(due)
    for w in (0, 1):
        drains.append((w, seconds + tail_s - drain_s, seconds + tail_s, int(n / 2 - done[w])))
    samples = []
    for i in range(int((seconds + tail_s) * 10) + 1):
        t = i / 10
        stored = sum(d[3] for d in drains if d[2] <= t)
        samples.append((t, int(min(t, seconds) * RATE), stored))
    return analyse(samples, drains, 0.0, seconds, n), n


def verdict(res, n):
    return goal({**res, "lost": 0, "doubled": 0}, RATE)


def test_a_writer_that_keeps_up_in_batches_is_measured_at_the_published_rate():
    res, n = run(keep_up=1.0)
    assert res["published_per_s_steady"] == pytest.approx(RATE, rel=0.005)
    assert res["stored_per_s_steady"] == pytest.approx(RATE, rel=0.005)  # the staircase's corners, not its steps
    assert res["backlog_bounded"] and res["backlog_at_end"] == 0
    assert res["tail_s"] == pytest.approx(0.8)
    assert res["end_to_end_per_s"] == pytest.approx(n / 30.8)  # below the rate by the tail alone
    assert verdict(res, n)["met"]


def test_a_writer_that_falls_behind_by_ten_percent_misses_the_goal_and_its_backlog_grows():
    res, n = run(keep_up=0.9)
    assert res["stored_per_s_steady"] == pytest.approx(0.9 * RATE, rel=0.01)
    assert not res["backlog_bounded"]
    checks = verdict(res, n)
    assert not checks["steady_stored_ge_99pct_published"] and not checks["met"]


def test_two_percent_short_is_seen_by_the_rate_though_the_backlog_looks_bounded_in_30_s():
    res, n = run(keep_up=0.98)
    assert res["stored_per_s_steady"] == pytest.approx(0.98 * RATE, rel=0.005)
    assert not verdict(res, n)["met"]
