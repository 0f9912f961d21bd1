"""A small park for the evidence tests: two enterprises with an electricity meter each (E1 also a gas meter and a
bracelet), output values, a bank with users, and the park's signing key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import carbon.records  # noqa: F401  (the carbon tables)
from carbon import records
from park.metadata import create_engine_from_url, import_park
from park.model import Device, Enterprise, Meter, Park
from park.settings import Settings
from park.store.embedded import EmbeddedStore
from park.units import Carrier
from portal.auth import Role, add_user
from portal.context import PortalContext
from portal.evidence import keys

TZ = "Asia/Shanghai"
PARK = Park(id="p", name="测试园区", name_en="Test Park", province="Jiangsu", grid_region="east_china",
            enterprises=(Enterprise("E1", "甲公司", "Alpha Co.", "machinery", "91320500MA1E1E1E1X"),
                         Enterprise("E2", "乙公司", "Beta Co.", "machinery", "91320500MA2E2E2E2Y")),
            meters=(Meter("E1-M1", Carrier.ELECTRICITY, "E1"), Meter("E1-G1", Carrier.NATURAL_GAS, "E1"),
                    Meter("E2-M1", Carrier.ELECTRICITY, "E2")),
            devices=(Device("E1-D1", "E1", None, "切割机"),))
NOW = pd.Timestamp("2024-04-10 12:00", tz=TZ)
START = pd.Timestamp("2024-01-01", tz=TZ)
PASSWORD = "correct horse battery"
USERS = {"admin": (Role.ADMIN, None), "alpha": (Role.ENTERPRISE, "E1"), "beta": (Role.ENTERPRISE, "E2"),
         "bank": (Role.BANK, None), "bank2": (Role.BANK, None), "reg": (Role.REGULATOR, None)}


def readings() -> pd.DataFrame:
    ts = pd.date_range(START, NOW.floor("D"), freq="15min", inclusive="left")
    hour = ts.hour.to_numpy()
    load = np.where((hour >= 8) & (hour < 20), 12.5, 3.25)
    return pd.concat([pd.DataFrame({"ts": ts, "series": "E1-M1", "value": load}),
                      pd.DataFrame({"ts": ts, "series": "E1-G1", "value": load / 50.0}),
                      pd.DataFrame({"ts": ts, "series": "E2-M1", "value": 7.0})], ignore_index=True)


def currents() -> pd.DataFrame:
    ts = pd.date_range(pd.Timestamp("2024-03-01", tz=TZ), NOW.floor("D"), freq="60s", inclusive="left")
    hour = ts.hour.to_numpy()
    return pd.DataFrame({"ts": ts, "series": "E1-D1", "value": np.where((hour >= 8) & (hour < 17), 20.0, 0.2)})


def build(tmp_path) -> PortalContext:
    engine = create_engine_from_url(f"sqlite:///{tmp_path / 'meta.db'}")
    import_park(engine, PARK)
    store = EmbeddedStore(tmp_path / "ts.duckdb", PARK.catalog(), TZ)
    store.write("energy", readings())
    store.write("current", currents())
    months = [pd.Timestamp(f"2024-{m:02d}-01").date() for m in (1, 2, 3, 4)]
    records.record_output_values(engine, "p", pd.DataFrame({
        "enterprise": ["E1"] * 4 + ["E2"] * 4, "month": months * 2,
        "output_value_10k_cny": [100.0, 80.0, 120.0, 50.0, 300.0, 280.0, 310.0, 90.0]}), actor="test")
    records.record_movement(engine, "p", "E1", 2024, "allocation", 100.0, actor="test", note="free allocation")
    for name, (role, ent) in USERS.items():
        add_user(engine, "p", name, PASSWORD, role, ent)
    keys.ensure_key(engine, "p", tmp_path)
    return PortalContext(Settings(data_dir=tmp_path), engine, PARK, store, clock=lambda: NOW)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    c = build(tmp_path_factory.mktemp("evidence"))
    yield c
    c.store.close()


@pytest.fixture(scope="module")
def granted(ctx):
    """ctx with the bank's consent to E1's energy, emissions, utilisation and risk for 2024, in force at NOW."""
    from portal.evidence import consent

    c = consent.request(ctx.engine, "p", "bank", "E1", "loan_application",
                        ["energy", "emissions", "utilisation", "risk"], "2024-01", "2024-12",
                        NOW + pd.Timedelta(days=60), now=NOW)
    consent.grant(ctx.engine, c.id, "alpha", now=NOW)
    return ctx


def bank_scope(ctx, name: str = "bank"):
    from portal.auth import load_user
    from portal.scope import scope_for

    return scope_for(ctx, load_user(ctx.engine, name), "test")


@pytest.fixture(scope="module")
def pack_blob(granted) -> bytes:
    """E1's pack of March 2024 for the bank (PDF included)."""
    from portal.evidence import pack

    blob, _ = pack.issue(granted, bank_scope(granted), "E1", "2024-03", now=NOW)
    return blob
