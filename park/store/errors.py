"""Errors of the time-series store, each with a message a user can act on."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of the store's errors."""


class SchemaError(StoreError):
    """A batch whose shape is wrong as a whole (a missing column, an unknown measurement)."""


class StoreUnavailable(StoreError):
    """The store could not be reached within the configured timeout and retries; nothing was written."""


class StoreRejected(StoreError):
    """The store refused the request (authentication, a field type conflict, a bad query)."""

    def __init__(self, message: str, *, status: int | None = None, dropped: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.dropped = dropped
