"""The time-series store: one interface (`TimeSeriesStore`), two backends (`embedded`, `influx`)."""

from park.store.base import Correction, TimeSeriesStore, to_utc
from park.store.errors import SchemaError, StoreError, StoreRejected, StoreUnavailable
from park.store.schema import Quality, Rejection, Window, WriteResult

__all__ = ["Correction", "TimeSeriesStore", "to_utc", "SchemaError", "StoreError", "StoreRejected", "StoreUnavailable",
           "Quality", "Rejection", "Window", "WriteResult", "open_store"]


def open_store(settings, catalog) -> TimeSeriesStore:
    """The backend the settings name (`embedded` by default, or `influx`)."""
    if settings.store_backend == "influx":
        from park.store.influx import InfluxConfig, InfluxStore

        return InfluxStore(InfluxConfig(**settings.influx), catalog, settings.timezone)
    from park.store.embedded import EmbeddedStore

    return EmbeddedStore(settings.embedded_path, catalog, settings.timezone)
