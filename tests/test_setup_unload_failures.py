"""Setup and unload that Home Assistant cannot finish: the port is freed or kept as due.

Platforms failing to load or unload cannot be made to happen with real parts (they are
our own modules), so Home Assistant's forwarding call is the one thing replaced here; the
OCPP server and the port are real.
"""

from __future__ import annotations

import socket
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import ConfigEntries, ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest

from custom_components.smart_charge.compat import async_get_device
from custom_components.smart_charge.devices import (
    async_register_panels,
    panel_identifier,
)
from custom_components.smart_charge.site_config import PanelConfig

from .common import chargers, entry_state, panel, site_entry, until

pytestmark = pytest.mark.usefixtures("socket_enabled")


def _port_is_free(port: int) -> bool:
    """Return whether nothing listens on `port` (a closed connection may linger)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _panel(panel_id: str, *, parent_id: str | None) -> PanelConfig:
    return PanelConfig(
        panel_id=panel_id,
        name=panel_id.title(),
        limit_kw=11.0,
        phase_limit_a=None,
        parent_id=parent_id,
        strategy="equal_share",
        safety_margin_pct=5.0,
        load_sensor=None,
        subentry_id=None,
    )


@pytest.mark.setup_error_expected
async def test_platforms_that_fail_to_load_free_the_port(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = site_entry(free_port, [panel("garage", "Garage", 11.0)])
    entry.add_to_hass(hass)

    async def broken(*args: Any, **kwargs: Any) -> None:
        assert not _port_is_free(free_port)  # the server was listening by then
        raise RuntimeError("a platform did not load")

    with patch.object(ConfigEntries, "async_forward_entry_setups", broken):
        assert not await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entry_state(entry) is ConfigEntryState.SETUP_ERROR
    assert _port_is_free(free_port)
    # Set up again, it listens on the same port.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry_state(entry) is ConfigEntryState.LOADED
    assert not _port_is_free(free_port)


async def test_platforms_that_stay_keep_the_server(
    hass: HomeAssistant, free_port: int
) -> None:
    """Unloading fails while entities remain: their server goes on serving chargers."""
    entry = site_entry(free_port, [panel("garage", "Garage", 11.0)])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    async def refuse(*args: Any, **kwargs: Any) -> bool:
        return False

    with patch.object(ConfigEntries, "async_unload_platforms", refuse):
        assert not await hass.config_entries.async_unload(entry.entry_id)
    assert entry_state(entry) is ConfigEntryState.FAILED_UNLOAD
    server = entry.runtime_data.server
    async with chargers(free_port, "CP-1") as (cp1,):
        await until(lambda: "CP-1" in server.chargers)
        assert cp1.connected
    await entry.runtime_data.async_stop()
    assert _port_is_free(free_port)


async def test_a_panel_tree_with_a_missing_parent_registers_what_it_can(
    hass: HomeAssistant, free_port: int
) -> None:
    """Setup refuses such a tree; the registration itself stops, it does not spin."""
    entry = site_entry(free_port, [])
    entry.add_to_hass(hass)
    panels = {
        "garage": _panel("garage", parent_id=None),
        "shed": _panel("shed", parent_id="gone"),
    }
    async_register_panels(hass, entry.entry_id, panels)
    garage = panel_identifier(entry.entry_id, "garage")
    shed = panel_identifier(entry.entry_id, "shed")
    assert async_get_device(hass, garage, entry.entry_id) is not None
    assert async_get_device(hass, shed, entry.entry_id) is None
