"""Errors of the carbon package, each with a message a user can act on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from park.parkfile import Problem


class CarbonError(Exception):
    """Base class of the carbon package's errors."""


class FactorNotFoundError(CarbonError, LookupError):
    """No factor row applies to (kind, key, parameter) for the regions and date asked."""

    def __init__(self, kind: str, key: str, parameter: str, regions: Iterable[str], on: date,
                 enterprise: str | None = None) -> None:
        self.kind, self.key, self.parameter, self.on = kind, key, parameter, on
        self.regions = tuple(regions)
        self.enterprise = enterprise
        who = f" (enterprise {enterprise})" if enterprise else ""
        super().__init__(
            f"no {kind} factor {key}/{parameter} for regions {' -> '.join(self.regions)} on {on.isoformat()}{who}: "
            f"add a row (kind={kind}, key={key}, parameter={parameter}, a region of the chain, valid_from on or "
            "before that date) to the park factor file and import it")


class FactorFileError(CarbonError, ValueError):
    """A factor file (shipped table or park override file) that cannot be loaded; lists every problem."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.path, p.line))
        if len(self.problems) == 1:
            text = str(self.problems[0])
        else:
            text = "\n".join([f"{len(self.problems)} problems in factor file {self.problems[0].path}:",
                              *(f"  {p}" for p in self.problems)])
        super().__init__(text)


class InputError(CarbonError, ValueError):
    """An input frame or record that the accounting cannot use (missing column, bad unit, negative amount)."""


class NegativeOutputError(InputError):
    """An output value or product output below zero: production is never negative."""


class LedgerError(CarbonError):
    """A quota-ledger movement that is not allowed (selling more than is held, an unknown kind, an update)."""


class CcerCapError(LedgerError):
    """A CCER offset beyond the cap (5 % of the allowances due by default)."""
