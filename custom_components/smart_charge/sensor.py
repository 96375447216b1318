"""Sensors of Smart Charge panels and chargers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    DOMAIN as SENSOR_DOMAIN,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import BUDGET_REASONS, CHARGER_STATUSES, DOMAIN, GRID_PHASES, LIMIT_REASONS
from .coordinator import SmartChargeConfigEntry, SmartChargeCoordinator
from .entity import (
    ChargerEntity,
    PanelEntity,
    add_per_subentry,
    charger_unique_id,
    per_charger,
)
from .models import ChargerData, PanelData
from .sensor_kinds import current_a, energy_kwh, energy_wh, power_kw, power_w
from .site_config import ChargerSettings, switches_phases
from .tag_sensor import async_setup_tag_sensors

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PanelSensorDescription(SensorEntityDescription):
    """A panel sensor and how to read it."""

    value_fn: Callable[[PanelData], float | int | str | None]
    attr_fn: Callable[[PanelData], dict[str, Any]] | None = None


@dataclass(frozen=True, kw_only=True)
class ChargerSensorDescription(SensorEntityDescription):
    """A charger sensor, how to read it and whether a charger has it."""

    value_fn: Callable[[ChargerData], float | int | str | datetime | None]
    has_fn: Callable[[ChargerSettings], bool] = lambda _: True
    available_offline: bool = False
    last_reset_fn: Callable[[ChargerData], datetime | None] | None = None
    attr_fn: Callable[[ChargerData], dict[str, Any]] | None = None


def _kw_sensor(
    key: str, value_fn: Callable[[PanelData], float]
) -> PanelSensorDescription:
    return PanelSensorDescription(
        key=key, translation_key=key, **power_kw(), value_fn=value_fn
    )


PANEL_SENSORS: tuple[PanelSensorDescription, ...] = (
    _kw_sensor("allocated_power", lambda p: p.allocated_kw),
    _kw_sensor("measured_power", lambda p: p.measured_kw),
    _kw_sensor("headroom", lambda p: p.headroom_kw),
    _kw_sensor("budget", lambda p: p.budget_kw),
    PanelSensorDescription(
        key="active_sessions",
        translation_key="active_sessions",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda p: p.active_sessions,
    ),
    PanelSensorDescription(
        key="budget_reason",
        translation_key="budget_reason",
        device_class=SensorDeviceClass.ENUM,
        options=list(BUDGET_REASONS),
        value_fn=lambda p: p.budget_reason,
        attr_fn=lambda p: {"phases": list(p.full_phases)} if p.full_phases else {},
    ),
    PanelSensorDescription(
        key="planned_peak",
        translation_key="planned_peak",
        **power_kw(measurement=False),
        # The highest planned load of the cars under the panel; the plan per slot as
        # periods with their power, for chart cards.
        value_fn=lambda p: p.plan.peak_kw if p.plan else None,
        attr_fn=lambda p: {"plan": p.plan.plan if p.plan else []},
    ),
)


def _phase_current(index: int) -> ChargerSensorDescription:
    phase = GRID_PHASES[index]
    return ChargerSensorDescription(
        key=f"current_{phase.lower()}",
        translation_key=f"current_{phase.lower()}",
        **current_a(),
        value_fn=lambda c: c.current_a[index],
        # A single-phase charger has the one of the grid phase it is wired to.
        has_fn=lambda s: s.phases == 3 or (s.grid_phase or GRID_PHASES[0]) == phase,
        # Detail for a per-phase fuse: enable it where a phase limit matters.
        entity_registry_enabled_default=False,
    )


CHARGER_SENSORS: tuple[ChargerSensorDescription, ...] = (
    ChargerSensorDescription(
        key="status",
        translation_key="status",
        device_class=SensorDeviceClass.ENUM,
        options=list(CHARGER_STATUSES),
        value_fn=lambda c: c.status,
        available_offline=True,
    ),
    ChargerSensorDescription(
        key="allocated_current",
        translation_key="allocated_current",
        **current_a(),
        value_fn=lambda c: c.allocated_current_a,
        has_fn=lambda s: s.managed,
    ),
    ChargerSensorDescription(
        key="allocated_power",
        translation_key="allocated_power",
        **power_w(),
        value_fn=lambda c: c.allocated_power_w,
        has_fn=lambda s: s.managed,
    ),
    ChargerSensorDescription(
        key="power",
        translation_key="power",
        **power_w(),
        value_fn=lambda c: c.power_w,
    ),
    *(_phase_current(index) for index in range(3)),
    ChargerSensorDescription(
        key="session_energy",
        translation_key="session_energy",
        # A total that starts again with every session: its last reset is the
        # session's start, so long-term statistics begin a new cycle there instead
        # of recording the drop to 0 as negative energy (total_increasing would read
        # any dip of the charger's meter as a reset; the start is known exactly, and
        # stays the same across restarts because it comes from the charger).
        **energy_wh(SensorStateClass.TOTAL),
        value_fn=lambda c: c.session_energy_wh,
        last_reset_fn=lambda c: c.session_started,
    ),
    ChargerSensorDescription(
        key="lifetime_energy",
        translation_key="lifetime_energy",
        **energy_wh(SensorStateClass.TOTAL_INCREASING),
        value_fn=lambda c: c.lifetime_energy_wh,
    ),
    ChargerSensorDescription(
        key="limit_reason",
        translation_key="limit_reason",
        device_class=SensorDeviceClass.ENUM,
        options=list(LIMIT_REASONS),
        value_fn=lambda c: c.limit_reason,
        attr_fn=lambda c: {
            key: value
            for key, value in (("panel", c.limit_panel), ("phase", c.limit_phase))
            if value is not None
        },
        available_offline=True,
    ),
    ChargerSensorDescription(
        key="phases_in_use",
        translation_key="phases_in_use",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda c: c.phases_in_use,
        # A three-phase charger that may switch to one phase.
        has_fn=lambda s: s.managed and s.phases == 3 and switches_phases(s),
    ),
    ChargerSensorDescription(
        key="planned_finish",
        translation_key="planned_finish",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda c: c.plan.finish if c.plan else None,
        has_fn=lambda s: s.managed,
        available_offline=True,
    ),
    ChargerSensorDescription(
        key="planned_energy",
        translation_key="planned_energy",
        **energy_kwh(),
        value_fn=lambda c: c.plan.energy_kwh if c.plan else None,
        # The plan as periods with their power, for chart cards; and why the goal
        # is not planned as set (its SoC sensor is unavailable), if it is not.
        attr_fn=lambda c: {
            "plan": c.plan.plan if c.plan else [],
            **({"reason": c.plan_reason} if c.plan_reason else {}),
        },
        has_fn=lambda s: s.managed,
        available_offline=True,
    ),
    ChargerSensorDescription(
        key="next_charging_start",
        translation_key="next_charging_start",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda c: c.plan.next_start if c.plan else None,
        has_fn=lambda s: s.managed,
        available_offline=True,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SmartChargeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every panel and charger, each to its subentry.

    A charger's sensors that its settings no longer give (a phase current after a
    change of phases or grid phase) leave the registry instead of staying unavailable.
    """
    registry = er.async_get(hass)
    for settings in entry.runtime_data.chargers.values():
        for description in CHARGER_SENSORS:
            unique_id = charger_unique_id(
                entry.entry_id, settings.charger_id, description.key
            )
            if not description.has_fn(settings) and (
                entity_id := registry.async_get_entity_id(
                    SENSOR_DOMAIN, DOMAIN, unique_id
                )
            ):
                registry.async_remove(entity_id)
    add_per_subentry(
        entry,
        async_add_entities,
        panel=lambda c, p: (PanelSensor(c, p, d) for d in PANEL_SENSORS),
        charger=per_charger(ChargerSensor, CHARGER_SENSORS),
    )
    async_setup_tag_sensors(hass, entry, async_add_entities)


class PanelSensor(PanelEntity, SensorEntity):
    """A sensor of a panel."""

    entity_description: PanelSensorDescription

    @property
    def native_value(self) -> float | int | str | None:
        """Return the sensor value."""
        data = self.panel_data
        return None if data is None else self.entity_description.value_fn(data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return what the description adds to the state (e.g. the full phases)."""
        data, attr_fn = self.panel_data, self.entity_description.attr_fn
        return None if data is None or attr_fn is None else attr_fn(data)


class ChargerSensor(ChargerEntity, SensorEntity):
    """A sensor of a charger."""

    entity_description: ChargerSensorDescription

    def __init__(
        self,
        coordinator: SmartChargeCoordinator,
        charger: ChargerSettings,
        description: ChargerSensorDescription,
    ) -> None:
        """Bind the sensor to its charger."""
        super().__init__(coordinator, charger, description)
        self.available_offline = description.available_offline

    @property
    def native_value(self) -> float | int | str | datetime | None:
        """Return the sensor value."""
        data = self.charger_data
        return None if data is None else self.entity_description.value_fn(data)

    @property
    def last_reset(self) -> datetime | None:
        """Return when the value last started again from 0 (the session start)."""
        data = self.charger_data
        last_reset_fn = self.entity_description.last_reset_fn
        if data is None or last_reset_fn is None:
            return None
        return last_reset_fn(data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return what the description adds to the state (e.g. the binding panel)."""
        data, attr_fn = self.charger_data, self.entity_description.attr_fn
        return None if data is None or attr_fn is None else attr_fn(data)
