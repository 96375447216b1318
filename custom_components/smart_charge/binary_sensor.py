"""Binary sensors: whether a charger is connected to the OCPP server."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import SmartChargeConfigEntry
from .entity import ChargerEntity, add_per_subentry

PARALLEL_UPDATES = 0

CONNECTED = BinarySensorEntityDescription(
    key="connected",
    translation_key="connected",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SmartChargeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a connectivity sensor per charger."""
    add_per_subentry(
        entry,
        async_add_entities,
        charger=lambda c, ch: [ConnectedSensor(c, ch, CONNECTED)],
    )


class ConnectedSensor(ChargerEntity, BinarySensorEntity):
    """On while the charger holds a websocket to the server."""

    available_offline = True

    @property
    def is_on(self) -> bool | None:
        """Return whether the charger is connected."""
        data = self.charger_data
        return None if data is None else data.connected
