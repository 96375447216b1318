"""Setup and unload of a Smart Charge site."""

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import CONF_MAIN_BREAKER_KW, CONF_PORT, DOMAIN


async def test_setup_and_unload(hass: HomeAssistant, free_port: int) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN, data={CONF_PORT: free_port, CONF_MAIN_BREAKER_KW: 11.0}
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.main_breaker_kw == 11.0

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
