"""What the control layer tells its owner, through one typed callback.

These never travel through the OCPP server: the server reports what chargers said, the
controller reports what it concluded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from custom_components.smart_charge.csms.capabilities import ChargerCapabilities


@dataclass(frozen=True, slots=True)
class CapabilitiesLearned:
    """The charger's smart-charging capabilities were read or a working shape found."""

    charger_id: str
    capabilities: ChargerCapabilities


@dataclass(frozen=True, slots=True)
class ChargerRejectsProfiles:
    """The charger refused every profile shape: its hardware maximum stays reserved."""

    charger_id: str


@dataclass(frozen=True, slots=True)
class ChargerNonCompliant:
    """The charger draws more than the limit it accepted (or reports a higher schedule).

    `limit_a` is the limit in force as we wrote it, `seen_a` what the charger drew (per
    phase) or what its composite schedule said; `source` is "meter" or "schedule".
    Until it complies again its real draw is reserved in the budget.
    """

    charger_id: str
    connector_id: int
    limit_a: float
    seen_a: float
    source: str


@dataclass(frozen=True, slots=True)
class ChargerCompliant:
    """A charger reported non-compliant follows its limit again."""

    charger_id: str


type ControlReport = (
    CapabilitiesLearned
    | ChargerRejectsProfiles
    | ChargerNonCompliant
    | ChargerCompliant
)
type ReportCallback = Callable[[ControlReport], None]

__all__ = [
    "CapabilitiesLearned",
    "ChargerCompliant",
    "ChargerNonCompliant",
    "ChargerRejectsProfiles",
    "ControlReport",
    "ReportCallback",
]
