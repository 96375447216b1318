"""Number entities: panel grid limits, charger maximum current, priority, goal energy."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfEnergy,
    UnitOfPower,
)

from .coordinator import SmartChargeCoordinator
from .entity import (
    ChargerSettingDescription,
    ChargerSettingEntity,
    PanelEntity,
    async_action,
    per_charger,
    setup_per_subentry,
)
from .models import PanelData
from .site_config import ChargerSettings, PanelConfig

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class PanelNumberDescription(NumberEntityDescription):
    """A panel number, how to read and set it."""

    value_fn: Callable[[PanelData], float]
    set_value_fn: Callable[[SmartChargeCoordinator, str, float], Awaitable[None]]


@dataclass(frozen=True, kw_only=True)
class ChargerNumberDescription(
    NumberEntityDescription, ChargerSettingDescription[float]
):
    """A charger number, how to read and set it, and whether a charger has it."""


GRID_LIMIT = PanelNumberDescription(
    key="grid_limit",
    translation_key="grid_limit",
    device_class=NumberDeviceClass.POWER,
    native_unit_of_measurement=UnitOfPower.KILO_WATT,
    native_min_value=0,
    native_step=0.1,
    mode=NumberMode.BOX,
    value_fn=lambda p: p.limit_kw,
    set_value_fn=lambda rt, panel_id, value: rt.async_set_grid_limit(
        panel_id, value, None
    ),
)

CHARGER_NUMBERS: tuple[ChargerNumberDescription, ...] = (
    ChargerNumberDescription(
        key="max_current",
        translation_key="max_current",
        device_class=NumberDeviceClass.CURRENT,
        entity_category=EntityCategory.CONFIG,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        native_step=0.1,
        mode=NumberMode.BOX,
        value_fn=lambda c: c.max_current_a,
        set_fn=lambda rt, cid, value: rt.async_set_max_current(cid, value),
        has_fn=lambda s: s.managed,
    ),
    ChargerNumberDescription(
        key="priority",
        translation_key="priority",
        entity_category=EntityCategory.CONFIG,
        native_min_value=1,
        native_max_value=100,
        native_step=1,
        mode=NumberMode.BOX,
        value_fn=lambda c: c.priority,
        set_fn=lambda rt, cid, value: rt.async_set_priority(cid, int(value)),
    ),
    ChargerNumberDescription(
        key="energy_to_add",
        translation_key="energy_to_add",
        device_class=NumberDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        native_min_value=0,
        native_max_value=200,
        native_step=0.1,
        mode=NumberMode.BOX,
        value_fn=lambda c: c.goal.energy_kwh if c.goal else None,
        set_fn=lambda rt, cid, value: rt.async_update_goal(cid, energy_kwh=value),
        has_fn=lambda s: s.managed,
    ),
    ChargerNumberDescription(
        key="min_soc",
        translation_key="min_soc",
        device_class=NumberDeviceClass.BATTERY,
        entity_category=EntityCategory.CONFIG,
        native_unit_of_measurement=PERCENTAGE,
        native_min_value=0,
        native_max_value=100,
        native_step=1,
        mode=NumberMode.BOX,
        value_fn=lambda c: c.min_soc_pct,
        set_fn=lambda rt, cid, value: rt.async_set_min_soc(cid, value),
        has_fn=lambda s: s.managed,
    ),
)


class PanelNumber(PanelEntity, NumberEntity):
    """A number of a panel; the grid limit is bounded by the panel's rating."""

    entity_description: PanelNumberDescription

    def __init__(
        self,
        coordinator: SmartChargeCoordinator,
        panel: PanelConfig,
        description: PanelNumberDescription,
    ) -> None:
        """Bound the limit by the rating."""
        super().__init__(coordinator, panel, description)
        self._attr_native_max_value = panel.limit_kw

    @property
    def native_value(self) -> float | None:
        """Return the limit in force."""
        data = self.panel_data
        return None if data is None else self.entity_description.value_fn(data)

    @async_action
    async def async_set_native_value(self, value: float) -> None:
        """Set the limit at runtime (no reload)."""
        await self.entity_description.set_value_fn(
            self.coordinator, self.panel_id, value
        )


class ChargerNumber(ChargerSettingEntity[float], NumberEntity):
    """A number of a charger."""

    entity_description: ChargerNumberDescription

    def __init__(
        self,
        coordinator: SmartChargeCoordinator,
        charger: ChargerSettings,
        description: ChargerNumberDescription,
    ) -> None:
        """Bound the maximum current by the charger's configuration."""
        super().__init__(coordinator, charger, description)
        if description.key == "max_current":
            self._attr_native_min_value = charger.min_current_a
            self._attr_native_max_value = charger.max_current_a

    @property
    def native_value(self) -> float | None:
        """Return the value."""
        return self.setting

    async def async_set_native_value(self, value: float) -> None:
        """Set the value."""
        await self.async_set_setting(value)


# A grid-limit number per panel and the numbers of every charger.
async_setup_entry = setup_per_subentry(
    panel=lambda c, p: [PanelNumber(c, p, GRID_LIMIT)],
    charger=per_charger(ChargerNumber, CHARGER_NUMBERS),
)
