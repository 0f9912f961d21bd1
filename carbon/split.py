"""Split activity windows where a factor changes, so that each part is accounted with the factor in force.

A month of activity is one line; a factor row may start or end inside it (a supplier's new steam condition from
the 15th, a park override from mid-month).  Looking the factor up on the window's first day would ignore the
change, so a line whose window holds a validity boundary of a relevant factor row is split there into parts,
each looked up on its own first day.  The quantity is apportioned by time (a month's reading carries no finer
profile; daily windows give the exact split).  Docs: docs/methodology.md section 2.2.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd

from carbon.factors import FactorPolicy, FactorRegistry

SCALED = ("quantity", "q_base", "count", "measured", "expected")


def _keys(carrier: str) -> set[str]:
    return {carrier, "heat"} if carrier == "steam" else {carrier}


def _boundaries(registry: FactorRegistry, carrier: str, regions: tuple[str, ...],
                enterprise: str | None) -> list[tuple[str, str, frozenset[date]]]:
    """(kind, parameter, boundary dates) of the factor rows a carrier's accounting may use for an enterprise in
    `regions`: the first day of each row and the day after its last, in the row's own (data-year) time."""
    keys = _keys(carrier)
    groups: dict[tuple[str, str], set[date]] = {}
    for r in registry.rows:
        if r.key in keys and r.region in regions and (r.enterprise is None or r.enterprise == enterprise):
            b = groups.setdefault((r.kind, r.parameter), set())
            b.add(r.valid_from)
            if r.valid_to is not None:
                b.add(r.valid_to + timedelta(days=1))
    return [(k, p, frozenset(b)) for (k, p), b in groups.items()]


def split_days(registry: FactorRegistry, policy: FactorPolicy, carrier: str, on: date, until: date,
               regions: tuple[str, ...], enterprise: str | None = None) -> list[date]:
    """Days strictly inside [on, until) on which a factor row relevant to `carrier` (for an enterprise in
    `regions`) starts or stops applying."""
    groups = _boundaries(registry, carrier, regions, enterprise)
    out = []
    d = on + timedelta(days=1)
    while d < until:
        if any(policy.target_date(kind, parameter, d) in b for kind, parameter, b in groups):
            out.append(d)
        d += timedelta(days=1)
    return out


def split_lines(lines: pd.DataFrame, registry: FactorRegistry, policy: FactorPolicy) -> pd.DataFrame:
    """Lines (prepared: carrier, on, until) with every window that holds a factor boundary split into parts.

    A part keeps its window (period_start, period_end: it rolls up as before) and gets its own `on` / `until`,
    `share` of the window's time, and the window's quantities, counts and intervals times that share.
    """
    out = lines.copy(deep=False)
    out["share"] = 1.0
    specific = {r.key for r in registry.rows if r.enterprise}
    carriers = out["carrier"].to_numpy(dtype=object)
    own = {c: bool(_keys(c) & specific) for c in pd.unique(carriers)}  # carriers with enterprise-specific rows
    who = np.where([own[c] for c in carriers], out["enterprise"].to_numpy(dtype=object), None)
    ons, untils = out["on"].tolist(), out["until"].tolist()
    # Boundaries per distinct (carrier, window, regions, enterprise if it has rows of its own): looked up once
    key = np.zeros(len(out), dtype=np.int64)
    for values in (carriers, out["on"].to_numpy(dtype=object), out["until"].to_numpy(dtype=object),
                   out["regions"].to_numpy(dtype=object), who):
        c = pd.factorize(values)[0].astype(np.int64) + 1
        key = pd.factorize(key * (int(c.max(initial=0)) + 1) + c)[0].astype(np.int64)
    split_days_of: dict[int, list[date]] = {}
    for g, i in zip(*np.unique(key, return_index=True), strict=True):
        on, until = ons[i], untils[i]
        if (until - on).days > 1:
            days = split_days(registry, policy, carriers[i], on, until, out["regions"].iat[i], who[i])
            if days:
                split_days_of[int(g)] = days
    split_at: dict[int, list[date]] = {}
    if split_days_of:
        for i, g in enumerate(key.tolist()):
            if g in split_days_of:
                split_at[i] = split_days_of[g]
    if not split_at:
        return out
    # Lines without a boundary stay one part with their own dates and a share of exactly 1.
    parts = np.ones(len(out), dtype=np.int64)
    new_on: list[date] = []
    new_until: list[date] = []
    share: list[float] = []
    for i, (on, until) in enumerate(zip(ons, untils, strict=True)):
        days = split_at.get(i)
        if days is None:
            new_on.append(on)
            new_until.append(until)
            share.append(1.0)
            continue
        edges = [on, *days, until]
        total = (until - on).days
        parts[i] = len(edges) - 1
        for a, b in zip(edges[:-1], edges[1:], strict=True):
            new_on.append(a)
            new_until.append(b)
            share.append((b - a).days / total if total else 1.0)
    split = out.iloc[np.repeat(np.arange(len(out)), parts)].reset_index(drop=True)
    split["on"] = new_on
    split["until"] = new_until
    split["share"] = np.array(share)
    for col in SCALED:
        if col in split.columns:
            split[col] = pd.to_numeric(split[col], errors="coerce") * split["share"].to_numpy()
    return split
