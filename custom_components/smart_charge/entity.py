"""Base entities of Smart Charge: one for panels, one for chargers."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from homeassistant.core import HomeAssistant
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .compat import device_info
from .const import DOMAIN, ROOT_PANEL_ID
from .coordinator import (
    ChargerData,
    PanelData,
    SmartChargeConfigEntry,
    SmartChargeCoordinator,
)
from .site_config import ChargerSettings, PanelConfig


def panel_identifier(entry_id: str, panel_id: str) -> tuple[str, str]:
    """Return the device identifier of a panel."""
    return (DOMAIN, f"{entry_id}_panel_{panel_id}")


def charger_identifier(entry_id: str, charger_id: str) -> tuple[str, str]:
    """Return the device identifier of a charger."""
    return (DOMAIN, f"{entry_id}_charger_{charger_id}")


def panel_device_info(
    hass: HomeAssistant, entry_id: str, panel: PanelConfig
) -> DeviceInfo:
    """Return the device of a panel, below its parent panel."""
    return device_info(
        hass,
        entry_id,
        identifier=panel_identifier(entry_id, panel.panel_id),
        name=panel.name,
        manufacturer="Smart Charge",
        model="Main breaker" if panel.panel_id == ROOT_PANEL_ID else "Panel",
        via=None
        if panel.parent_id is None
        else panel_identifier(entry_id, panel.parent_id),
    )


def charger_device_info(
    hass: HomeAssistant, entry_id: str, charger: ChargerSettings
) -> DeviceInfo:
    """Return the device of a charger, below its panel."""
    return device_info(
        hass,
        entry_id,
        identifier=charger_identifier(entry_id, charger.charger_id),
        name=charger.name,
        manufacturer="Smart Charge",
        model="OCPP charger",
        via=panel_identifier(entry_id, charger.panel_id),
    )


type PanelEntities = Callable[[SmartChargeCoordinator, PanelConfig], Iterable[Entity]]
type ChargerEntities = Callable[
    [SmartChargeCoordinator, ChargerSettings], Iterable[Entity]
]


def add_per_subentry(
    entry: SmartChargeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    *,
    panel: PanelEntities | None = None,
    charger: ChargerEntities | None = None,
) -> None:
    """Add each panel's and each charger's entities to its own config subentry.

    The same is done later for panels and chargers added while the site runs.
    """
    runtime = entry.runtime_data

    def add(panels: list[PanelConfig], chargers: list[ChargerSettings]) -> None:
        if panel is not None:
            for config in panels:
                async_add_entities(
                    panel(runtime.coordinator, config),
                    config_subentry_id=config.subentry_id,
                )
        if charger is not None:
            for settings in chargers:
                async_add_entities(
                    charger(runtime.coordinator, settings),
                    config_subentry_id=settings.subentry_id,
                )

    add(list(runtime.panels.values()), list(runtime.chargers.values()))
    runtime.adders.append(add)


class PanelEntity(CoordinatorEntity[SmartChargeCoordinator]):
    """An entity of a panel device."""

    _attr_has_entity_name = True

    def __init__(
        self,
        coordinator: SmartChargeCoordinator,
        panel: PanelConfig,
        description: EntityDescription,
    ) -> None:
        """Bind the entity to its panel."""
        super().__init__(coordinator)
        self.entity_description = description
        self.panel_id = panel.panel_id
        entry_id = coordinator.config_entry.entry_id
        self._attr_unique_id = f"{entry_id}_panel_{panel.panel_id}_{description.key}"
        self._attr_device_info = panel_device_info(coordinator.hass, entry_id, panel)

    @property
    def panel_data(self) -> PanelData | None:
        """Return this panel's current data."""
        return self.coordinator.data.panels.get(self.panel_id)

    @property
    def available(self) -> bool:
        """Return whether the panel is known to the runtime."""
        return super().available and self.panel_data is not None


class ChargerEntity(CoordinatorEntity[SmartChargeCoordinator]):
    """An entity of a charger device."""

    _attr_has_entity_name = True
    # Entities that still make sense while the charger is offline.
    available_offline = False

    def __init__(
        self,
        coordinator: SmartChargeCoordinator,
        charger: ChargerSettings,
        description: EntityDescription,
    ) -> None:
        """Bind the entity to its charger."""
        super().__init__(coordinator)
        self.entity_description = description
        self.charger_id = charger.charger_id
        entry_id = coordinator.config_entry.entry_id
        self._attr_unique_id = (
            f"{entry_id}_charger_{charger.charger_id}_{description.key}"
        )
        self._attr_device_info = charger_device_info(
            coordinator.hass, entry_id, charger
        )

    @property
    def charger_data(self) -> ChargerData | None:
        """Return this charger's current data."""
        return self.coordinator.data.chargers.get(self.charger_id)

    @property
    def available(self) -> bool:
        """Return whether the charger is connected (or the entity works offline)."""
        data = self.charger_data
        if not super().available or data is None:
            return False
        return data.connected or self.available_offline
