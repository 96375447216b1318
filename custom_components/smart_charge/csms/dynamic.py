"""OCPP 2.1 PullDynamicScheduleUpdate: the charger asks for a Dynamic profile's limit.

The central system knows no budgets: its owner gives it a `DynamicScheduleProvider`, a
plain synchronous callable (it runs inside the frame handler, on the loop) that answers
`(charger_id, charging_profile_id)` with the schedule update meant for that profile now,
or None when the profile is not one of ours (the charger then gets `Rejected`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class DynamicScheduleUpdate:
    """What a Dynamic profile's period should carry now, in the profile's rate unit.

    `setpoint` / `discharge_limit` (2.1 V2X, `operationMode` CentralSetpoint) are negative
    while the EV discharges; None leaves them out.
    """

    limit: float
    setpoint: float | None = None
    discharge_limit: float | None = None

    def to_wire(self) -> dict[str, Any]:
        """Return the snake_case `scheduleUpdate` object the library serialises."""
        update: dict[str, Any] = {"limit": self.limit}
        if self.setpoint is not None:
            update["setpoint"] = self.setpoint
        if self.discharge_limit is not None:
            update["discharge_limit"] = min(0.0, self.discharge_limit)
        return update


type DynamicScheduleProvider = Callable[[str, int], DynamicScheduleUpdate | None]


def no_dynamic_schedules(_charger_id: str, _profile_id: int) -> None:
    """Know no Dynamic profile (the default provider: every pull is Rejected)."""
    return


__all__ = ["DynamicScheduleProvider", "DynamicScheduleUpdate", "no_dynamic_schedules"]
