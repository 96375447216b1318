"""What the entities show: the coordinator's snapshot of a site, and how it is built.

The coordinator fills these from the server's charger states, the controller's limits
and the runtime state; the platforms only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final

from .const import GRID_PHASES, ChargerStatus
from .csms import ChargerState, TransactionState
from .csms.events import ConnectorStatus
from .engine import LimitReason, SessionLimit
from .runtime_state import GoalState
from .site_config import ChargerSettings

if TYPE_CHECKING:
    from .plans import ChargerPlanData, PanelPlanData


@dataclass(frozen=True, kw_only=True)
class PanelData:
    """What the entities of one panel show."""

    limit_kw: float
    rating_kw: float
    strategy: str
    allocated_kw: float
    measured_kw: float
    headroom_kw: float
    budget_kw: float
    active_sessions: int
    budget_reason: str
    # The phases whose current budget is used up (budget reason "phase").
    full_phases: tuple[str, ...] = ()
    # The cars' planned load under the panel, slot by slot (None: no planner yet).
    plan: PanelPlanData | None = None


@dataclass(frozen=True, kw_only=True)
class ChargerData:
    """What the entities of one charger show."""

    connected: bool
    status: str | None
    managed: bool
    priority: int
    max_current_a: float
    allocated_current_a: float | None
    allocated_power_w: float | None
    power_w: float | None
    current_a: tuple[float | None, float | None, float | None]
    session_energy_wh: float | None
    # When the session started: the last reset of its energy (None: no session).
    session_started: datetime | None
    lifetime_energy_wh: float | None
    transaction_id: str | None
    # Why the session gets what it gets (engine.LimitReason), and the panel (its name)
    # and phase that bind it, where there is one.
    limit_reason: str | None = None
    limit_panel: str | None = None
    limit_phase: str | None = None
    # The charging goal (None: as fast as possible) and the plan that serves it.
    goal: GoalState | None = None
    plan: ChargerPlanData | None = None
    # Why the goal is not planned as set (its SoC sensor is unavailable), if it is not.
    plan_reason: str | None = None
    # V2X: the user allows discharge, never below this state of charge (%).
    allow_discharge: bool = False
    min_soc_pct: float = 20.0
    # The phases the running session uses (1 or 3 on a switching charger; None: no
    # session) and the charger's phase switch policy.
    phases_in_use: int | None = None
    phase_policy: str = "auto"


@dataclass(frozen=True, kw_only=True)
class SiteData:
    """The coordinator's data: every panel and charger of the site."""

    panels: dict[str, PanelData] = field(default_factory=dict)
    chargers: dict[str, ChargerData] = field(default_factory=dict)


def limit_reason(
    limit: SessionLimit | None, *, connected: bool, managed: bool
) -> SessionLimit | None:
    """Return the engine's reason for the session; without one, offline or not managed."""
    if limit is not None:
        return limit
    if not connected:
        return SessionLimit(reason=LimitReason.OFFLINE)
    if not managed:
        return SessionLimit(reason=LimitReason.NOT_MANAGED)
    return None  # no car: nothing is limited


# What the OCPP status vocabulary shows as; Unknown (not told yet) shows nothing.
_STATUS_OPTIONS: Final = {
    ConnectorStatus.AVAILABLE: ChargerStatus.AVAILABLE,
    ConnectorStatus.PREPARING: ChargerStatus.PREPARING,
    ConnectorStatus.CHARGING: ChargerStatus.CHARGING,
    ConnectorStatus.SUSPENDED_EV: ChargerStatus.SUSPENDED_EV,
    ConnectorStatus.SUSPENDED_EVSE: ChargerStatus.SUSPENDED_EVSE,
    ConnectorStatus.FINISHING: ChargerStatus.FINISHING,
    ConnectorStatus.RESERVED: ChargerStatus.RESERVED,
    ConnectorStatus.UNAVAILABLE: ChargerStatus.OUT_OF_SERVICE,
    ConnectorStatus.FAULTED: ChargerStatus.FAULTED,
    ConnectorStatus.OCCUPIED: ChargerStatus.OCCUPIED,
}
# Statuses of a plugged-in car that a limit of 0 A turns into "paused".
_PAUSABLE: Final = frozenset(
    {
        None,
        ChargerStatus.PREPARING,
        ChargerStatus.CHARGING,
        ChargerStatus.SUSPENDED_EV,
        ChargerStatus.SUSPENDED_EVSE,
        ChargerStatus.OCCUPIED,
    }
)


def charger_status(
    state: ChargerState | None,
    connector: int,
    transaction: TransactionState | None,
    allocated_a: float | None,
) -> ChargerStatus | None:
    """Return the status sensor option of a connector (None: not known yet)."""
    if state is None or not state.connected:
        return ChargerStatus.OFFLINE
    raw = state.connectors.get(connector)
    status = _STATUS_OPTIONS.get(raw.status) if raw else None
    if transaction is None:
        return status
    if allocated_a == 0 and status in _PAUSABLE:
        return ChargerStatus.PAUSED
    # A transaction restored from before a restart runs, and the reconnected charger
    # has not repeated its status: it charges (it says otherwise when it changes).
    return ChargerStatus.CHARGING if status is None else status


def kw_value(value: float) -> float:
    """Return kW to the watt, without float noise or -0."""
    return round(value, 3) + 0.0


def rounded(value: float | None, digits: int) -> float | None:
    """Round away float noise (9.76000000000001, -1.8e-15); never show -0."""
    if value is None:
        return None
    return round(value, digits) + 0.0


def phase_currents(
    charger: ChargerSettings, currents: tuple[float, ...]
) -> tuple[float | None, float | None, float | None]:
    """Return the current on grid phases L1-L3.

    A single-phase charger's one current is on the grid phase it is wired to,
    whatever phase label its meter uses (its own L1 is the site's L2 on an L2 line).
    """
    if charger.phases == 1:
        shown: list[float | None] = [None, None, None]
        index = GRID_PHASES.index(charger.grid_phase or GRID_PHASES[0])
        shown[index] = rounded(max(currents), 2) if currents else None
        return shown[0], shown[1], shown[2]
    return (
        rounded(currents[0], 2) if len(currents) > 0 else None,
        rounded(currents[1], 2) if len(currents) > 1 else None,
        rounded(currents[2], 2) if len(currents) > 2 else None,
    )
