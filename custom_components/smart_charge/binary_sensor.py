"""Binary sensors: whether a charger is connected to the OCPP server."""

from __future__ import annotations

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory

from .entity import ChargerEntity, setup_per_subentry

PARALLEL_UPDATES = 0

CONNECTED = BinarySensorEntityDescription(
    key="connected",
    translation_key="connected",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
)


class ConnectedSensor(ChargerEntity, BinarySensorEntity):
    """On while the charger holds a websocket to the server."""

    available_offline = True

    @property
    def is_on(self) -> bool | None:
        """Return whether the charger is connected."""
        data = self.charger_data
        return None if data is None else data.connected


# A connectivity sensor per charger.
async_setup_entry = setup_per_subentry(
    charger=lambda c, ch: [ConnectedSensor(c, ch, CONNECTED)]
)
