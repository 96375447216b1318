"""Datetime entities: the departure of each managed charger's charging goal."""

from __future__ import annotations

from datetime import datetime

from homeassistant.components.datetime import DateTimeEntity, DateTimeEntityDescription

from .entity import ChargerEntity, async_action, setup_per_subentry

PARALLEL_UPDATES = 0

DEPARTURE = DateTimeEntityDescription(key="departure", translation_key="departure")


class DepartureDateTime(ChargerEntity, DateTimeEntity):
    """When the car at a charger leaves (its goal's departure)."""

    available_offline = True

    @property
    def native_value(self) -> datetime | None:
        """Return the departure of the goal, if any."""
        data = self.charger_data
        return data.goal.departure if data is not None and data.goal else None

    @async_action
    async def async_set_value(self, value: datetime) -> None:
        """Set the departure and replan."""
        await self.coordinator.async_update_goal(self.charger_id, departure=value)


# A departure per managed charger.
async_setup_entry = setup_per_subentry(
    charger=lambda c, ch: [DepartureDateTime(c, ch, DEPARTURE)] if ch.managed else []
)
