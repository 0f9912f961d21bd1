"""Energy and carbon cost of an enterprise's period: each carrier at its tariff, the emissions at the carbon price.

Pure: the figures come in (per-carrier quantities in canonical units, emissions), the cost structure goes out, each
item with its share of the total and the coverage of its quantity.  Prices are demo defaults until a park records
its contracts: flat industrial prices of the right order for Jiangsu in 2024 (no time-of-use periods), and the
national ETS close at the end of 2024 for carbon (docs/methodology.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from park.units import lookup_unit

# The carbon price every page values allowances and emissions at (CNY/t), until the park records its own.
CARBON_PRICE_CNY_PER_T = 97.49

COST_COLUMNS = ["item", "quantity", "unit", "price_cny", "price_unit", "cost_cny", "coverage", "share"]


@dataclass(frozen=True)
class Tariff:
    """An energy price: CNY per `unit` of the carrier."""

    cny: float
    unit: str


# Demo defaults, not a park's contracts.  A park passes its own tariffs to `cost_structure`.
DEFAULT_TARIFFS: dict[str, Tariff] = {
    "electricity": Tariff(0.70, "kWh"),
    "natural_gas": Tariff(3.60, "m3"),
    "steam": Tariff(230.0, "t"),
    "heat": Tariff(60.0, "GJ"),
    "diesel": Tariff(7800.0, "t"),
}


def cost_structure(by_carrier: pd.DataFrame, emissions_t_co2e: float, coverage: float,
                   tariffs: dict[str, Tariff] | None = None,
                   carbon_price_cny_per_t: float = CARBON_PRICE_CNY_PER_T) -> pd.DataFrame:
    """Energy cost per carrier at `tariffs` and the carbon cost (the given emissions at the carbon price), with each
    item's share of the total and the coverage of its quantity (`coverage`: of the emissions).

    by_carrier: carrier, quantity, unit (any unit park.units knows: converted to the tariff's), coverage.  A carrier
    without a tariff (on-site PV: not bought) has no cost (NaN, not zero); a missing quantity has a missing cost."""
    tariffs = DEFAULT_TARIFFS if tariffs is None else tariffs
    rows = []
    for r in by_carrier.itertuples():
        tariff = tariffs.get(r.carrier)
        if tariff is None:
            rows.append((r.carrier, r.quantity, r.unit, math.nan, "", math.nan, r.coverage))
            continue
        qty = r.quantity * lookup_unit(r.unit).to_base / lookup_unit(tariff.unit).to_base
        rows.append((r.carrier, qty, tariff.unit, tariff.cny, f"CNY/{tariff.unit}", qty * tariff.cny, r.coverage))
    rows.append(("carbon", emissions_t_co2e, "tCO2e", carbon_price_cny_per_t, "CNY/t",
                 emissions_t_co2e * carbon_price_cny_per_t, coverage))
    out = pd.DataFrame(rows, columns=COST_COLUMNS[:-1])
    total = out["cost_cny"].sum(min_count=1)
    out["share"] = out["cost_cny"] / total if total > 0 else math.nan
    return out
