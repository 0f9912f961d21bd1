"""A small park for the report tests: three enterprises with a month (October 2026) of 15-minute readings.

E1 (甲公司): electricity 2.5 kWh and natural gas 0.3 m3 every quarter hour, complete;
E2 (乙公司): electricity 7 kWh every quarter hour, with 10 October missing (a late reading fills it);
E3 (丙公司): electricity 4 kWh every quarter hour, with 4.65 days missing: coverage 85 %, below the 90 % rule.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from carbon import records
from park.metadata import create_engine_from_url, import_park
from park.model import Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier

TZ = "Asia/Shanghai"
PARK = Park(id="p", name="测试园区", name_en="Test Park", province="Jiangsu", grid_region="east_china",
            enterprises=(Enterprise("E1", "甲公司", "Alpha Co.", industry="steel", credit_code="91320000AAAA"),
                         Enterprise("E2", "乙公司", "Beta Co.", industry="textile_dyeing"),
                         Enterprise("E3", "丙公司", "Gamma Co.", industry="chemicals")),
            meters=(Meter("E1-EL", Carrier.ELECTRICITY, "E1"), Meter("E1-GAS", Carrier.NATURAL_GAS, "E1"),
                    Meter("E2-EL", Carrier.ELECTRICITY, "E2"), Meter("E3-EL", Carrier.ELECTRICITY, "E3")))
START, END = pd.Timestamp("2026-10-01", tz=TZ), pd.Timestamp("2026-11-01", tz=TZ)
NOW = pd.Timestamp("2026-11-05 06:00", tz=TZ)
VALUES = {"E1-EL": 2.5, "E1-GAS": 0.3, "E2-EL": 7.0, "E3-EL": 4.0}
E2_GAP = (pd.Timestamp("2026-10-10", tz=TZ), pd.Timestamp("2026-10-11", tz=TZ))
E3_GAP = (pd.Timestamp("2026-10-20", tz=TZ), pd.Timestamp("2026-10-20", tz=TZ) + pd.Timedelta(hours=111.6))
ELECTRICITY_KGCE_PER_KWH = 0.1229  # GB/T 2589-2020, calorific equivalent (FACTORS.md)
GAS_KGCE_PER_M3 = 1.3300  # GB/T 2589-2020 at 38 931 kJ/m3 (FACTORS.md)


def readings(series: str, start=START, end=END, gap=None) -> pd.DataFrame:
    ts = pd.date_range(start, end, freq="15min", inclusive="left")
    if gap is not None:
        ts = ts[(ts < gap[0]) | (ts >= gap[1])]
    return pd.DataFrame({"ts": ts, "series": series, "value": VALUES[series]})


def build(tmp: Path, settings_extra: dict | None = None, park: Park = PARK):
    """(settings, engine, store) of the test park (or `park`, which must have PARK's meters), data written,
    output values recorded."""
    settings = Settings(data_dir=tmp, **(settings_extra or {}))
    engine = create_engine_from_url(f"sqlite:///{tmp / 'meta.db'}")
    import_park(engine, park)
    store = EmbeddedStore(tmp / "ts.duckdb", park.catalog(), TZ)
    store.write("energy", pd.concat([readings("E1-EL"), readings("E1-GAS"), readings("E2-EL", gap=E2_GAP),
                                     readings("E3-EL", gap=E3_GAP)], ignore_index=True))
    records.record_output_values(engine, "p", pd.DataFrame({
        "enterprise": ["E1", "E2", "E3"], "month": [pd.Timestamp("2026-10-01").date()] * 3,
        "output_value_10k_cny": [120.0, 300.0, 80.0]}), actor="test")
    return settings, engine, store
