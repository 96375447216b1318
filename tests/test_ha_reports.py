"""No deprecated call and no blocking call on the event loop, on every tested HA.

Setup, a session per OCPP version (a charger connects, starts a transaction and gets a
profile) and unload, with Home Assistant's frame helper and loop-blocking detector
watching.
"""

from __future__ import annotations

from collections.abc import Callable

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .common import charger, chargers, device, panel

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize(
    "site_subentries",
    [[panel("garage", "Garage", 11.0), charger("CP-1")]],
    ids=["cp_1_on_main"],
)
async def test_session_reports_nothing(
    hass: HomeAssistant,
    free_port: int,
    ha_reports: Callable[[], list[str]],
    version: str,
    init_site: MockConfigEntry,
) -> None:
    entry = init_site
    async with chargers(free_port, "CP-1", version=version) as (cp1,):
        await cp1.plug_in()
        profile = await cp1.wait_for_profile(lambda p: p.purpose == "TxProfile")
        assert profile.limit > 0
        await cp1.unplug()
        await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert ha_reports() == []


async def test_devices_nest(hass: HomeAssistant, init_site: MockConfigEntry) -> None:
    """Each charger is linked below its panel, each panel below its parent."""
    entry = init_site
    main = device(hass, entry.entry_id, "panel", "main")
    garage = device(hass, entry.entry_id, "panel", "garage")
    cp_1 = device(hass, entry.entry_id, "charger", "CP-1")
    assert main.via_device_id is None
    assert garage.via_device_id == main.id
    assert cp_1.via_device_id == garage.id
    assert await hass.config_entries.async_unload(entry.entry_id)
