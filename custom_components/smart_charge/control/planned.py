"""One planned write of a rebalance: what goes out, and whether it lowers a reserve."""

from __future__ import annotations

from dataclasses import dataclass

from .sessions import ChargingSession
from .writer import WriteTarget


@dataclass(slots=True)
class PlannedWrite:
    """One planned write and whether it lowers the charger's reserve."""

    target: WriteTarget
    kind: str  # "session" or "default"
    lowers: bool
    session: ChargingSession | None = None
    first: bool = False  # the first limit of this session: always sent
    # A schedule that is higher than what the charger holds at some instants and lower
    # at others: the pointwise minimum of both, sent first when more than one charger
    # is raised in the same round (see `SiteController._rebalance_once`).
    step: WriteTarget | None = None
    phases: int | None = None  # the phases it asks for (None: the charger's)


__all__ = ["PlannedWrite"]
