"""Runtime of one Smart Charge site: OCPP server, controller, state and entity data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY, ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import discovery_flow
from homeassistant.helpers.event import async_track_point_in_utc_time
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from .const import (
    CONF_CHARGER_ID,
    CONF_UNKNOWN_POLICY,
    DOMAIN,
    LOGGER,
    UnknownChargerPolicy,
)
from .runtime_state import GoalState, GridLimitOverride, RuntimeState
from .site_config import ChargerSettings, PanelConfig

if TYPE_CHECKING:
    from .plans import ChargerPlanData
    from .runtime import SiteRuntime


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


class SmartChargeCoordinator(DataUpdateCoordinator[SiteData]):
    """Push coordinator: the site runtime calls `async_set_updated_data`."""

    config_entry: ConfigEntry

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Create a coordinator without a polling interval."""
        super().__init__(
            hass, LOGGER, config_entry=entry, name=f"{DOMAIN} {entry.title}"
        )
        self.data = SiteData()

    async def _async_update_data(self) -> SiteData:
        """Return the current data (there is nothing to poll)."""
        return self.data


class OverrideTimers:
    """Expire grid-limit overrides that have a duration."""

    def __init__(self, hass: HomeAssistant, on_expire: Callable[[str], None]) -> None:
        """Call `on_expire(panel_id)` when an override ends."""
        self._hass = hass
        self._on_expire = on_expire
        self._cancel: dict[str, CALLBACK_TYPE] = {}

    @callback
    def schedule(self, panel_id: str, until: datetime | None) -> None:
        """(Re)arm the timer of a panel; None disarms it."""
        self.cancel(panel_id)
        if until is None:
            return

        @callback
        def _expired(_now: datetime) -> None:
            self._cancel.pop(panel_id, None)
            self._on_expire(panel_id)

        self._cancel[panel_id] = async_track_point_in_utc_time(
            self._hass, _expired, until
        )

    @callback
    def cancel(self, panel_id: str) -> None:
        """Disarm the timer of a panel."""
        if (unsub := self._cancel.pop(panel_id, None)) is not None:
            unsub()

    @callback
    def cancel_all(self) -> None:
        """Disarm every timer."""
        for panel_id in list(self._cancel):
            self.cancel(panel_id)


def active_limit_kw(panel: PanelConfig, state: RuntimeState) -> float:
    """Return the limit in force for a panel: its override, else its rating."""
    override = state.grid_limits.get(panel.panel_id)
    return override.limit_kw if override is not None else panel.limit_kw


def new_override(limit_kw: float, duration: timedelta | None) -> GridLimitOverride:
    """Return an override for `limit_kw`, ending after `duration` if given."""
    until = dt_util.utcnow() + duration if duration else None
    return GridLimitOverride(limit_kw=limit_kw, until=until)


@callback
def async_start_discovery(
    hass: HomeAssistant, entry: ConfigEntry, charger_id: str
) -> None:
    """Offer to adopt an unknown charger, if the site's policy allows it."""
    policy = entry.data.get(CONF_UNKNOWN_POLICY, UnknownChargerPolicy.ACCEPT_AND_ASK)
    if policy != UnknownChargerPolicy.ACCEPT_AND_ASK:
        return
    discovery_flow.async_create_flow(
        hass,
        DOMAIN,
        context={"source": SOURCE_INTEGRATION_DISCOVERY},
        data={"entry_id": entry.entry_id, CONF_CHARGER_ID: charger_id},
    )


type EntityAdder = Callable[[list[PanelConfig], list[ChargerSettings]], None]


@dataclass(kw_only=True)
class SmartChargeRuntimeData:
    """What async_setup_entry builds for one site."""

    site: SiteRuntime
    coordinator: SmartChargeCoordinator
    panels: dict[str, PanelConfig]
    chargers: dict[str, ChargerSettings]
    # The entry as it was set up, to tell a subentry added live from a change that
    # needs a reload.
    entry_data: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    title: str = ""
    # One per platform: adds the entities of newly added panels and chargers.
    adders: list[EntityAdder] = field(default_factory=list)


type SmartChargeConfigEntry = ConfigEntry[SmartChargeRuntimeData]
