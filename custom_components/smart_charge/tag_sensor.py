"""Sensors of tags: energy this month and in total, cost this month, the last session.

Each tag subentry is a device with these sensors (set up from the sensor platform).
They read the site's session history and change when a session finishes, when tags
change, and at midnight (a new month starts from zero).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.dispatcher import async_dispatcher_connect
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_time_change
from homeassistant.util import dt as dt_util

from .compat import device_info
from .const import DOMAIN
from .coordinator import SmartChargeConfigEntry
from .history import SessionHistory, TagTotals, sessions_signal
from .sensor_kinds import energy_wh, money
from .tag_config import TagConfig
from .tags import tags_signal


@dataclass(frozen=True, kw_only=True)
class TagSensorDescription(SensorEntityDescription):
    """A tag sensor and how to read it from the tag's totals."""

    value_fn: Callable[[TagTotals], float | datetime | None]
    monetary: bool = False


TAG_SENSORS: tuple[TagSensorDescription, ...] = (
    TagSensorDescription(
        key="tag_energy_month",
        translation_key="tag_energy_month",
        # Falls to 0 when a month starts: a meter reset for the statistics.
        **energy_wh(SensorStateClass.TOTAL_INCREASING),
        value_fn=lambda t: t.energy_month_wh,
    ),
    TagSensorDescription(
        key="tag_energy_total",
        translation_key="tag_energy_total",
        **energy_wh(SensorStateClass.TOTAL_INCREASING),
        value_fn=lambda t: t.energy_total_wh,
    ),
    TagSensorDescription(
        key="tag_cost_month",
        translation_key="tag_cost_month",
        **money(),
        value_fn=lambda t: round(t.cost_month, 4),
        monetary=True,
    ),
    TagSensorDescription(
        key="tag_last_session",
        translation_key="tag_last_session",
        device_class=SensorDeviceClass.TIMESTAMP,
        value_fn=lambda t: None
        if t.last_session is None
        else t.last_session.ended or t.last_session.started,
    ),
)


def tag_device_info(hass: HomeAssistant, entry_id: str, tag: TagConfig) -> DeviceInfo:
    """Return the device of a tag."""
    return device_info(
        hass,
        entry_id,
        identifier=(DOMAIN, f"{entry_id}_tag_{tag.subentry_id}"),
        name=tag.name,
        manufacturer="Smart Charge",
        model="Tag",
    )


@callback
def async_setup_tag_sensors(
    hass: HomeAssistant,
    entry: SmartChargeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the sensors of every tag, and of tags added later, each to its subentry."""
    site = entry.runtime_data
    added: set[str] = set()

    @callback
    def add_new() -> None:
        for tag in site.tags.tags.values():
            if tag.subentry_id in added:
                continue
            added.add(tag.subentry_id)
            async_add_entities(
                (TagSensor(site.history, entry.entry_id, tag, d) for d in TAG_SENSORS),
                config_subentry_id=tag.subentry_id,
            )

    add_new()
    entry.async_on_unload(
        async_dispatcher_connect(hass, tags_signal(entry.entry_id), add_new)
    )


class TagSensor(SensorEntity):
    """A sensor of a tag, read from the session history."""

    _attr_has_entity_name = True
    _attr_should_poll = False
    entity_description: TagSensorDescription

    def __init__(
        self,
        history: SessionHistory,
        entry_id: str,
        tag: TagConfig,
        description: TagSensorDescription,
    ) -> None:
        """Bind the sensor to its tag."""
        self.entity_description = description
        self._history = history
        self._entry_id = entry_id
        self._subentry_id = tag.subentry_id
        self._id_tag = tag.id_tag
        self._attr_unique_id = f"{entry_id}_tag_{tag.subentry_id}_{description.key}"
        self._attr_device_info = tag_device_info(history.hass, entry_id, tag)

    async def async_added_to_hass(self) -> None:
        """Follow the history, the tags and the calendar."""
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, sessions_signal(self._entry_id), self._changed
            )
        )
        self.async_on_remove(
            async_dispatcher_connect(
                self.hass, tags_signal(self._entry_id), self._changed
            )
        )
        self.async_on_remove(
            async_track_time_change(
                self.hass, self._midnight, hour=0, minute=0, second=0
            )
        )

    @callback
    def _changed(self) -> None:
        tag = next(
            (
                t
                for t in self._history.tags.tags.values()
                if t.subentry_id == self._subentry_id
            ),
            None,
        )
        if tag is not None:
            self._id_tag = tag.id_tag
        self.async_write_ha_state()

    @callback
    def _midnight(self, _now: datetime) -> None:
        self.async_write_ha_state()

    @property
    def _totals(self) -> TagTotals:
        return self._history.totals(self._id_tag, dt_util.utcnow())

    @property
    def native_value(self) -> float | datetime | None:
        """Return the sensor value."""
        return self.entity_description.value_fn(self._totals)

    @property
    def native_unit_of_measurement(self) -> str | None:
        """Return the unit (the tariff's currency for the cost)."""
        if self.entity_description.monetary:
            return self._totals.currency or self.hass.config.currency
        return self.entity_description.native_unit_of_measurement

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Return the last session's numbers on the last-session sensor."""
        if self.entity_description.key != "tag_last_session":
            return None
        last = self._totals.last_session
        if last is None:
            return None
        exported = last.export()
        return {
            key: exported[key]
            for key in (
                "charger_id",
                "started",
                "ended",
                "energy_kwh",
                "peak_power_kw",
                "cost",
                "currency",
            )
        }
