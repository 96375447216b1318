"""How the site treats one charger, and the names of the profile slots we manage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from custom_components.smart_charge.engine import (
    STATION_MAX_2X,
    STATION_MAX_16,
    TX_DEFAULT_PROFILE,
    TX_PROFILE,
    Phase,
    PhasePolicy,
)

# Whether a charger switches between one and three phases when a profile asks.
PHASE_SWITCHING_AUTO: Final = "auto"  # 2.x: as it reports (Phases3to1); 1.6: no
PHASE_SWITCHING_SUPPORTED: Final = "supported"
PHASE_SWITCHING_UNSUPPORTED: Final = "unsupported"
PHASE_SWITCHING_OPTIONS: Final = (
    PHASE_SWITCHING_AUTO,
    PHASE_SWITCHING_SUPPORTED,
    PHASE_SWITCHING_UNSUPPORTED,
)

STATION_MAX_PURPOSES: Final = frozenset({STATION_MAX_16, STATION_MAX_2X})
# Stack levels of the profiles the control layer writes besides the session limits:
# the station ceiling and the boot default on connector 0 at the bottom, each
# connector's own default above the boot default so it always wins over it.
STATION_STACK_LEVEL: Final = 0
CONNECTOR_DEFAULT_STACK_LEVEL: Final = 1


@dataclass(frozen=True, slots=True)
class ChargerConfig:
    """How the site treats one charger.

    `max_current_a` is the circuit's maximum per connector; with `station_ceiling` it is
    also sent as a ChargePointMaxProfile / ChargingStationMaxProfile at stack level 0,
    so nothing above it is drawn even if a session limit goes wrong.

    `plan_cap_a` caps the running session's share (A per phase) where a charging plan
    says so for the slot of now (0: paused); None leaves the share to the engine alone.
    The engine still decides within the cap, so every breaker holds.

    `plan_schedule` is the whole plan of the running session: `(start, A per phase)`
    periods, the last one holding on (empty: no plan). Where the charger takes
    multi-period profiles it is sent as one TxProfile, so the charger follows the plan
    while nobody is watching; each period is capped by what fits beside every other
    limit in force at that instant.

    `phase_switching` says whether a three-phase charger switches to one phase when a
    profile asks (`auto`: as its 2.x variables report; 1.6 reports nothing, so no);
    `phase_policy` drives a charger that does (auto, always one, always three). On one
    phase a session loads `grid_phase` (L1 when None).
    """

    charger_id: str
    panel_id: str
    managed: bool = True
    phases: int = 3
    grid_phase: Phase | None = None
    min_current_a: float = 6.0
    max_current_a: float = 32.0
    priority: float = 1
    profile_purpose: str = TX_PROFILE
    stack_level: int = 1
    password: str | None = None
    voltage_v: float | None = None
    station_ceiling: bool = True
    plan_cap_a: float | None = None
    plan_schedule: tuple[tuple[datetime, float], ...] = ()
    # V2X (OCPP 2.1, bidirectional chargers only): the user allows discharge, never
    # below this state of charge (see `control.discharge`).
    allow_discharge: bool = False
    min_soc_pct: float = 20.0
    phase_switching: str = PHASE_SWITCHING_AUTO
    phase_policy: PhasePolicy = PhasePolicy.AUTO


def station_purpose(version: str | None) -> str:
    """Return the station-wide maximum purpose of an OCPP version."""
    return STATION_MAX_16 if version == "1.6" else STATION_MAX_2X


__all__ = [
    "CONNECTOR_DEFAULT_STACK_LEVEL",
    "PHASE_SWITCHING_AUTO",
    "PHASE_SWITCHING_OPTIONS",
    "PHASE_SWITCHING_SUPPORTED",
    "PHASE_SWITCHING_UNSUPPORTED",
    "STATION_MAX_2X",
    "STATION_MAX_16",
    "STATION_MAX_PURPOSES",
    "STATION_STACK_LEVEL",
    "TX_DEFAULT_PROFILE",
    "TX_PROFILE",
    "ChargerConfig",
    "station_purpose",
]
