"""Services of Smart Charge, registered once and targeting panel or charger devices."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    entity_registry as er,
)
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .compat import async_devices_and_entities_of_groups
from .const import CHARGING_MODES, DEFAULT_CHARGING_MODE, DOMAIN, STRATEGIES
from .coordinator import SmartChargeConfigEntry
from .csms import CsmsError
from .entity import translated_error
from .runtime_state import GoalState

ATTR_LIMIT_KW = "limit_kw"
ATTR_DURATION = "duration"
ATTR_PRIORITY = "priority"
ATTR_STRATEGY = "strategy"
ATTR_ID_TAG = "id_tag"
ATTR_CONNECTOR_ID = "connector_id"
ATTR_MODE = "mode"
ATTR_ENERGY_KWH = "energy_kwh"
ATTR_TARGET_SOC = "target_soc"
ATTR_CURRENT_SOC = "current_soc"
ATTR_BATTERY_KWH = "battery_kwh"
ATTR_DEPARTURE = "departure"

SERVICE_SET_GRID_LIMIT = "set_grid_limit"
SERVICE_CLEAR_GRID_LIMIT = "clear_grid_limit"
SERVICE_SET_PRIORITY = "set_priority"
SERVICE_SET_STRATEGY = "set_strategy"
SERVICE_START_CHARGING = "start_charging"
SERVICE_STOP_CHARGING = "stop_charging"
SERVICE_SET_CHARGING_GOAL = "set_charging_goal"
SERVICE_CLEAR_CHARGING_GOAL = "clear_charging_goal"


@dataclass(frozen=True)
class Target:
    """A panel or charger of a loaded site."""

    entry: SmartChargeConfigEntry
    kind: str  # "panel" or "charger"
    key: str  # panel id or charger identity
    name: str
    # Named in the call (a device or entity), not reached through an area, floor or
    # label: a wrong kind is then an error, not skipped.
    explicit: bool = True


def _targets(hass: HomeAssistant, call: ServiceCall) -> list[Target]:
    """Resolve the call's devices, entities, areas, floors and labels to targets.

    Devices and entities named in the call must be panels or chargers; of what an
    area, floor or label reaches, only the Smart Charge devices count.
    """
    device_ids: set[str] = set(cv.ensure_list(call.data.get("device_id")))
    ent_reg = er.async_get(hass)
    for entity_id in cv.ensure_list(call.data.get("entity_id")):
        if (entity := ent_reg.async_get(entity_id)) and entity.device_id:
            device_ids.add(entity.device_id)
    grouped, grouped_entities = async_devices_and_entities_of_groups(hass, call)
    for entity_id in grouped_entities:
        if (entity := ent_reg.async_get(entity_id)) and entity.device_id:
            grouped.add(entity.device_id)
    dev_reg = dr.async_get(hass)
    targets: list[Target] = []
    for device_id in sorted(device_ids):
        device = dev_reg.async_get(device_id)
        target = _target_of(hass, device) if device else None
        if target is None:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="not_a_panel",
                translation_placeholders={
                    "target": (device.name if device else None) or device_id
                },
            )
        targets.append(target)
    for device_id in sorted(grouped - device_ids):
        device = dev_reg.async_get(device_id)
        if device is not None and (target := _target_of(hass, device)) is not None:
            targets.append(replace(target, explicit=False))
    if not targets:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="no_target"
        )
    return targets


def _target_of(hass: HomeAssistant, device: dr.DeviceEntry) -> Target | None:
    for domain, identifier in device.identifiers:
        if domain != DOMAIN or "_" not in identifier:
            continue
        entry_id, rest = identifier.split("_", 1)
        entry: SmartChargeConfigEntry | None = hass.config_entries.async_get_entry(
            entry_id
        )
        if entry is None or entry.state is not ConfigEntryState.LOADED:
            continue
        kind, _, key = rest.partition("_")
        if kind in ("panel", "charger"):
            return Target(entry, kind, key, device.name_by_user or device.name or key)
    return None


def _only(targets: list[Target], kind: str) -> list[Target]:
    """Return the targets of the wanted kind, or raise a translated error.

    A device named in the call of the other kind is an error; one reached through an
    area, floor or label is left out (an area holds panels and chargers alike).
    """
    for target in targets:
        if target.kind != kind and target.explicit:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key=f"not_a_{kind}",
                translation_placeholders={"target": target.name},
            )
    wanted = [target for target in targets if target.kind == kind]
    if not wanted:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key=f"no_{kind}_in_target",
        )
    return wanted


async def _set_grid_limit(hass: HomeAssistant, call: ServiceCall) -> None:
    limit: float = call.data[ATTR_LIMIT_KW]
    duration: timedelta | None = call.data.get(ATTR_DURATION)
    targets = _only(_targets(hass, call), "panel")
    if limit < 0:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="limit_negative"
        )
    for target in targets:
        rating = target.entry.runtime_data.panels[target.key].limit_kw
        if limit > rating:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="limit_above_rating",
                translation_placeholders={
                    "limit": f"{limit:g}",
                    "panel": target.name,
                    "rating": f"{rating:g}",
                },
            )
    for target in targets:
        await target.entry.runtime_data.async_set_grid_limit(
            target.key, limit, duration
        )


async def _clear_grid_limit(hass: HomeAssistant, call: ServiceCall) -> None:
    for target in _only(_targets(hass, call), "panel"):
        await target.entry.runtime_data.async_clear_grid_limit(target.key)


async def _set_strategy(hass: HomeAssistant, call: ServiceCall) -> None:
    strategy: str = call.data[ATTR_STRATEGY]
    if strategy not in STRATEGIES:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_strategy",
            translation_placeholders={"strategy": strategy},
        )
    for target in _only(_targets(hass, call), "panel"):
        await target.entry.runtime_data.async_set_strategy(target.key, strategy)


async def _set_priority(hass: HomeAssistant, call: ServiceCall) -> None:
    for target in _only(_targets(hass, call), "charger"):
        await target.entry.runtime_data.async_set_priority(
            target.key, call.data[ATTR_PRIORITY]
        )


async def _start_charging(hass: HomeAssistant, call: ServiceCall) -> None:
    for target in _only(_targets(hass, call), "charger"):
        await _charger_call(
            target,
            target.entry.runtime_data.async_start_charging(
                target.key,
                call.data.get(ATTR_ID_TAG, "HomeAssistant"),
                call.data.get(ATTR_CONNECTOR_ID, 1),
            ),
        )


async def _stop_charging(hass: HomeAssistant, call: ServiceCall) -> None:
    for target in _only(_targets(hass, call), "charger"):
        await _charger_call(
            target, target.entry.runtime_data.async_stop_charging(target.key)
        )


# Modes that need no energy: they charge whatever fits (or the sun gives).
_GOAL_FREE_MODES = frozenset({DEFAULT_CHARGING_MODE, "solar_only"})


def _goal(call: ServiceCall) -> GoalState:
    """Return the goal a set_charging_goal call describes, or raise a translated error."""
    data = call.data
    mode: str = data.get(ATTR_MODE, DEFAULT_CHARGING_MODE)
    if mode not in CHARGING_MODES:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_charging_mode",
            translation_placeholders={"mode": mode},
        )
    energy: float | None = data.get(ATTR_ENERGY_KWH)
    target: float | None = data.get(ATTR_TARGET_SOC)
    current: float | None = data.get(ATTR_CURRENT_SOC)
    battery: float | None = data.get(ATTR_BATTERY_KWH)
    # Without the current SoC, a charger's SoC sensor gives it (checked per target).
    if target is not None and energy is None and battery is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="goal_soc_incomplete"
        )
    if current is not None and target is not None and current > target:
        raise ServiceValidationError(
            translation_domain=DOMAIN, translation_key="goal_soc_reached"
        )
    if mode not in _GOAL_FREE_MODES and energy is None and target is None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="goal_needs_energy",
            translation_placeholders={"mode": mode},
        )
    departure: datetime | None = data.get(ATTR_DEPARTURE)
    if departure is not None:
        departure = dt_util.as_utc(
            departure
            if departure.tzinfo
            else departure.replace(tzinfo=dt_util.get_default_time_zone())
        )
        if departure <= dt_util.utcnow():
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="departure_in_past",
                translation_placeholders={"departure": departure.isoformat()},
            )
    return GoalState(
        mode=mode,
        energy_kwh=energy,
        target_soc_pct=target,
        current_soc_pct=current,
        battery_kwh=battery,
        departure=departure,
    )


async def _set_charging_goal(hass: HomeAssistant, call: ServiceCall) -> None:
    targets = _only(_targets(hass, call), "charger")
    goal = _goal(call)
    for target in targets:
        settings = target.entry.runtime_data.chargers[target.key]
        if not settings.managed:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="goal_not_managed",
                translation_placeholders={"target": target.name},
            )
        if (
            goal.target_soc_pct is not None
            and goal.energy_kwh is None
            and goal.current_soc_pct is None
            and settings.soc_sensor is None
        ):
            raise ServiceValidationError(
                translation_domain=DOMAIN, translation_key="goal_soc_incomplete"
            )
    for target in targets:
        await target.entry.runtime_data.async_set_goal(target.key, goal)


async def _clear_charging_goal(hass: HomeAssistant, call: ServiceCall) -> None:
    for target in _only(_targets(hass, call), "charger"):
        await target.entry.runtime_data.async_clear_goal(target.key)


async def _charger_call(target: Target, call: Awaitable[Any]) -> None:
    """Await a call to a charger and translate what can go wrong."""
    try:
        await call
    except CsmsError as err:
        raise translated_error(err, target.key) from err


TARGET_SCHEMA = vol.Schema(cv.TARGET_SERVICE_FIELDS)

type ServiceHandler = Callable[[HomeAssistant, ServiceCall], Coroutine[Any, Any, None]]

SERVICES: dict[str, tuple[ServiceHandler, vol.Schema]] = {
    SERVICE_SET_GRID_LIMIT: (
        _set_grid_limit,
        TARGET_SCHEMA.extend(
            {
                vol.Required(ATTR_LIMIT_KW): vol.Coerce(float),
                vol.Optional(ATTR_DURATION): cv.positive_time_period,
            }
        ),
    ),
    SERVICE_CLEAR_GRID_LIMIT: (_clear_grid_limit, TARGET_SCHEMA),
    SERVICE_SET_STRATEGY: (
        _set_strategy,
        TARGET_SCHEMA.extend({vol.Required(ATTR_STRATEGY): cv.string}),
    ),
    SERVICE_SET_PRIORITY: (
        _set_priority,
        TARGET_SCHEMA.extend(
            {
                vol.Required(ATTR_PRIORITY): vol.All(
                    vol.Coerce(int), vol.Range(min=1, max=100)
                ),
            }
        ),
    ),
    SERVICE_START_CHARGING: (
        _start_charging,
        TARGET_SCHEMA.extend(
            {
                vol.Optional(ATTR_ID_TAG): cv.string,
                vol.Optional(ATTR_CONNECTOR_ID): vol.All(
                    vol.Coerce(int), vol.Range(min=1)
                ),
            }
        ),
    ),
    SERVICE_STOP_CHARGING: (_stop_charging, TARGET_SCHEMA),
    SERVICE_SET_CHARGING_GOAL: (
        _set_charging_goal,
        TARGET_SCHEMA.extend(
            {
                vol.Optional(ATTR_MODE): cv.string,
                vol.Optional(ATTR_ENERGY_KWH): vol.All(
                    vol.Coerce(float), vol.Range(min=0, max=500)
                ),
                vol.Optional(ATTR_TARGET_SOC): vol.All(
                    vol.Coerce(float), vol.Range(min=0, max=100)
                ),
                vol.Optional(ATTR_CURRENT_SOC): vol.All(
                    vol.Coerce(float), vol.Range(min=0, max=100)
                ),
                vol.Optional(ATTR_BATTERY_KWH): vol.All(
                    vol.Coerce(float), vol.Range(min=1, max=500)
                ),
                vol.Optional(ATTR_DEPARTURE): cv.datetime,
            }
        ),
    ),
    SERVICE_CLEAR_CHARGING_GOAL: (_clear_charging_goal, TARGET_SCHEMA),
}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register every Smart Charge service."""
    for name, (handler, schema) in SERVICES.items():
        hass.services.async_register(
            DOMAIN, name, partial(handler, hass), schema=schema
        )
