"""Runtime state of a site that is not configuration: overrides, persisted in a Store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN

if TYPE_CHECKING:
    from .site_config import PanelConfig

STORAGE_VERSION = 1
SAVE_DELAY_S = 5


@dataclass(kw_only=True)
class GridLimitOverride:
    """A panel limit set at runtime, optionally until a point in time."""

    limit_kw: float
    until: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "limit_kw": self.limit_kw,
            "until": self.until.isoformat() if self.until else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GridLimitOverride:
        """Read the JSON form."""
        until = data.get("until")
        return cls(
            limit_kw=float(data["limit_kw"]),
            until=dt_util.parse_datetime(until) if until else None,
        )


@dataclass(frozen=True, kw_only=True)
class ChargerInfo:
    """What a charger said about itself in its last BootNotification."""

    vendor: str
    model: str
    serial: str | None = None
    firmware: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "vendor": self.vendor,
            "model": self.model,
            "serial": self.serial,
            "firmware": self.firmware,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChargerInfo:
        """Read the JSON form."""
        return cls(
            vendor=str(data["vendor"]),
            model=str(data["model"]),
            serial=None if data.get("serial") is None else str(data["serial"]),
            firmware=None if data.get("firmware") is None else str(data["firmware"]),
        )


@dataclass(frozen=True, kw_only=True)
class GoalState:
    """A charger's charging goal: how, how much (kWh or a SoC) and by when."""

    mode: str
    energy_kwh: float | None = None
    target_soc_pct: float | None = None
    current_soc_pct: float | None = None
    battery_kwh: float | None = None
    departure: datetime | None = None
    # The transaction the goal belongs to (None: set with no car, for the next one);
    # it ends with that session.
    session: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {
            "mode": self.mode,
            "session": self.session,
            "energy_kwh": self.energy_kwh,
            "target_soc_pct": self.target_soc_pct,
            "current_soc_pct": self.current_soc_pct,
            "battery_kwh": self.battery_kwh,
            "departure": self.departure.isoformat() if self.departure else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GoalState:
        """Read the JSON form."""

        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        departure = data.get("departure")
        return cls(
            mode=str(data["mode"]),
            energy_kwh=number("energy_kwh"),
            target_soc_pct=number("target_soc_pct"),
            current_soc_pct=number("current_soc_pct"),
            battery_kwh=number("battery_kwh"),
            departure=dt_util.parse_datetime(departure) if departure else None,
            session=None if data.get("session") is None else str(data["session"]),
        )


@dataclass(kw_only=True)
class RuntimeState:
    """What users and automations changed at runtime, and the sessions in flight."""

    grid_limits: dict[str, GridLimitOverride] = field(default_factory=dict)
    strategies: dict[str, str] = field(default_factory=dict)
    priorities: dict[str, int] = field(default_factory=dict)
    managed: dict[str, bool] = field(default_factory=dict)
    max_current_a: dict[str, float] = field(default_factory=dict)
    # V2X, by charger identity: the user allows discharge, never below this SoC (%).
    allow_discharge: dict[str, bool] = field(default_factory=dict)
    min_soc_pct: dict[str, float] = field(default_factory=dict)
    controller: dict[str, Any] = field(default_factory=dict)
    # By charger identity, also of chargers not adopted yet: their device shows it.
    charger_info: dict[str, ChargerInfo] = field(default_factory=dict)
    # Charging goals by charger identity.
    goals: dict[str, GoalState] = field(default_factory=dict)
    # Phase switch policy (auto / one / three) by charger identity.
    phase_policies: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form stored on disk."""
        return {
            "grid_limits": {k: v.as_dict() for k, v in self.grid_limits.items()},
            "strategies": self.strategies,
            "priorities": self.priorities,
            "managed": self.managed,
            "max_current_a": self.max_current_a,
            "allow_discharge": self.allow_discharge,
            "min_soc_pct": self.min_soc_pct,
            "controller": self.controller,
            "charger_info": {k: v.as_dict() for k, v in self.charger_info.items()},
            "goals": {k: v.as_dict() for k, v in self.goals.items()},
            "phase_policies": self.phase_policies,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RuntimeState:
        """Read the JSON form; unknown or broken parts are dropped, not fatal."""
        return cls(
            grid_limits={
                k: GridLimitOverride.from_dict(v)
                for k, v in data.get("grid_limits", {}).items()
            },
            strategies=dict(data.get("strategies", {})),
            priorities={k: int(v) for k, v in data.get("priorities", {}).items()},
            managed={k: bool(v) for k, v in data.get("managed", {}).items()},
            max_current_a={
                k: float(v) for k, v in data.get("max_current_a", {}).items()
            },
            allow_discharge={
                k: bool(v) for k, v in data.get("allow_discharge", {}).items()
            },
            min_soc_pct={k: float(v) for k, v in data.get("min_soc_pct", {}).items()},
            controller=dict(data.get("controller", {})),
            charger_info=_charger_info(data.get("charger_info")),
            goals=_goals(data.get("goals")),
            phase_policies={
                str(k): str(v) for k, v in data.get("phase_policies", {}).items()
            },
        )


def _charger_info(data: Any) -> dict[str, ChargerInfo]:
    """Read the stored charger infos; one that cannot be read is left out."""
    infos: dict[str, ChargerInfo] = {}
    if isinstance(data, dict):
        for charger_id, info in data.items():
            try:
                infos[str(charger_id)] = ChargerInfo.from_dict(info)
            except (KeyError, TypeError, AttributeError):
                continue
    return infos


def _goals(data: Any) -> dict[str, GoalState]:
    """Read the stored goals; one that cannot be read is left out."""
    goals: dict[str, GoalState] = {}
    if isinstance(data, dict):
        for charger_id, goal in data.items():
            try:
                goals[str(charger_id)] = GoalState.from_dict(goal)
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
    return goals


def active_limit_kw(panel: PanelConfig, state: RuntimeState) -> float:
    """Return the limit in force for a panel: its override, else its rating."""
    override = state.grid_limits.get(panel.panel_id)
    return override.limit_kw if override is not None else panel.limit_kw


def new_override(limit_kw: float, duration: timedelta | None) -> GridLimitOverride:
    """Return an override for `limit_kw`, ending after `duration` if given."""
    until = dt_util.utcnow() + duration if duration else None
    return GridLimitOverride(limit_kw=limit_kw, until=until)


class RuntimeStore:
    """Load and save the runtime state of one site."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Bind the store to a config entry."""
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}"
        )

    async def async_load(self) -> RuntimeState:
        """Return the stored state, or a fresh one."""
        data = await self._store.async_load()
        return RuntimeState.from_dict(data) if data else RuntimeState()

    def async_schedule_save(self, data: Callable[[], dict[str, Any]]) -> None:
        """Save what `data()` returns soon, coalescing bursts of changes."""
        self._store.async_delay_save(data, SAVE_DELAY_S)

    async def async_save(self, state: RuntimeState) -> None:
        """Save now (on unload)."""
        await self._store.async_save(state.as_dict())

    async def async_remove(self) -> None:
        """Delete the stored state (entry removed)."""
        await self._store.async_remove()
