"""Snapshots of every entity: registry entries (unique ids, translation keys) and states."""

from __future__ import annotations

from unittest.mock import patch

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import snapshot_platform
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from .common import charger, panel, site_entry

pytestmark = pytest.mark.usefixtures("socket_enabled")

ENTRY_ID = "01JSMARTCHARGESNAPSHOT0000"


@pytest.mark.parametrize(
    "platform",
    [
        Platform.BINARY_SENSOR,
        Platform.NUMBER,
        Platform.SELECT,
        Platform.SENSOR,
        Platform.SWITCH,
    ],
)
async def test_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    free_port: int,
    platform: Platform,
) -> None:
    entry = site_entry(
        free_port,
        [
            panel("garage", "Garage", 11.0),
            charger("CP-1", "garage"),
            charger("VIP-1", "garage", managed=False, phases=1),
        ],
        entry_id=ENTRY_ID,
    )
    entry.add_to_hass(hass)
    with patch("custom_components.smart_charge.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    await snapshot_platform(
        hass,
        entity_registry,
        snapshot.use_extension(HomeAssistantSnapshotExtension),
        entry.entry_id,
    )
    assert await hass.config_entries.async_unload(entry.entry_id)
