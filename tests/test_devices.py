"""Stale devices: a device no panel or charger of the site owns can be deleted."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.smart_charge.const import DOMAIN

from .common import device

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def _remove(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    device_id: str,
    entry_id: str,
) -> bool:
    """Ask, as the UI's "Delete" button does, to remove a device from the site."""
    client = await hass_ws_client(hass)
    await client.send_json_auto_id(
        {
            "type": "config/device_registry/remove_config_entry",
            "config_entry_id": entry_id,
            "device_id": device_id,
        }
    )
    response = await client.receive_json()
    return bool(response["success"])


async def test_only_stale_devices_can_be_deleted(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    init_site: MockConfigEntry,
) -> None:
    """Configured panels and chargers stay; a leftover device goes."""
    assert await async_setup_component(hass, "config", {})
    entry = init_site
    registry = dr.async_get(hass)
    stale = registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, f"{entry.entry_id}_charger_OLD-ID")},
        name="OLD-ID",
    )

    garage = device(hass, entry.entry_id, "panel", "garage")
    cp1 = device(hass, entry.entry_id, "charger", "CP-1")
    assert not await _remove(hass, hass_ws_client, garage.id, entry.entry_id)
    assert not await _remove(hass, hass_ws_client, cp1.id, entry.entry_id)
    assert await _remove(hass, hass_ws_client, stale.id, entry.entry_id)
    assert registry.async_get(stale.id) is None
    assert registry.async_get(cp1.id) is not None
    assert await hass.config_entries.async_unload(entry.entry_id)
