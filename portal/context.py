"""What the portal runs on: settings, the metadata engine, the park, the store, the access layer, the clock and
the consent provider.  Pages never get this: they get a per-request `portal.scope.Scope` built from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import Engine

from park.model import Park
from park.settings import Settings
from park.store import TimeSeriesStore
from portal.access import DataAccess
from portal.scope import ConsentProvider


@dataclass
class PortalContext:
    settings: Settings
    engine: Engine
    park: Park
    store: TimeSeriesStore
    clock: object = field(default=lambda: pd.Timestamp.now(tz="UTC"))  # injectable for tests and demos
    consents: ConsentProvider | None = None  # a bank's enterprises with consent in force (portal.evidence.consent)
    access: DataAccess = field(init=False)
    warmer: object | None = None  # portal.warm.Warmer, when this process keeps the park-wide pages warm

    def __post_init__(self) -> None:
        if self.consents is None:
            from portal.evidence.consent import provider

            self.consents = provider(self.engine, self.now)
        self.access = DataAccess(self.store, self.park, self.engine, consents=self.consents, now=self.now)

    def now(self) -> datetime:
        return pd.Timestamp(self.clock()).tz_convert(self.park.tz)
