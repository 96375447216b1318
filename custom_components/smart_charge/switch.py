"""Switch entities: whether a charger is load-managed, and may discharge (V2X)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import SmartChargeConfigEntry
from .entity import ChargerEntity, add_per_subentry, async_action

PARALLEL_UPDATES = 0

MANAGED = SwitchEntityDescription(
    key="managed", translation_key="managed", entity_category=EntityCategory.CONFIG
)
# V2X (OCPP 2.1 bidirectional chargers): off by default; used only when the charger
# and the car report bidirectional support.
ALLOW_DISCHARGE = SwitchEntityDescription(
    key="allow_discharge",
    translation_key="allow_discharge",
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SmartChargeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a managed switch per charger."""
    add_per_subentry(
        entry,
        async_add_entities,
        charger=lambda c, ch: [
            ManagedSwitch(c, ch, MANAGED),
            *([AllowDischargeSwitch(c, ch, ALLOW_DISCHARGE)] if ch.managed else []),
        ],
    )


class ManagedSwitch(ChargerEntity, SwitchEntity):
    """On: the engine limits this charger. Off: never limited, its power still counts."""

    available_offline = True

    @property
    def is_on(self) -> bool | None:
        """Return whether the charger is managed."""
        data = self.charger_data
        return None if data is None else data.managed

    @async_action
    async def async_turn_on(self, /, **kwargs: Any) -> None:
        """Manage the charger."""
        await self.coordinator.async_set_managed(self.charger_id, True)

    @async_action
    async def async_turn_off(self, /, **kwargs: Any) -> None:
        """Stop managing the charger."""
        await self.coordinator.async_set_managed(self.charger_id, False)


class AllowDischargeSwitch(ChargerEntity, SwitchEntity):
    """On: a bidirectional charger may give power back (V2X), never below min SoC."""

    available_offline = True

    @property
    def is_on(self) -> bool | None:
        """Return whether discharge is allowed."""
        data = self.charger_data
        return None if data is None else data.allow_discharge

    @async_action
    async def async_turn_on(self, /, **kwargs: Any) -> None:
        """Allow discharge."""
        await self.coordinator.async_set_allow_discharge(self.charger_id, True)

    @async_action
    async def async_turn_off(self, /, **kwargs: Any) -> None:
        """Forbid discharge."""
        await self.coordinator.async_set_allow_discharge(self.charger_id, False)
