"""A timed grid limit that ends while the site is stopped is gone when it starts again.

`set_grid_limit` with a duration arms a timer; unloading the site disarms it (the limit
is stored with its end). If that end passes before the site is set up again, the panel
is back at its rating at once, not only when a timer would have fired.
"""

from __future__ import annotations

from datetime import timedelta

from freezegun.api import FrozenDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import DOMAIN

from .common import device, value_of

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_a_limit_that_ended_while_stopped_is_dropped_at_start(
    hass: HomeAssistant, init_site: MockConfigEntry, freezer: FrozenDateTimeFactory
) -> None:
    garage = device(hass, init_site.entry_id, "panel", "garage")
    await hass.services.async_call(
        DOMAIN,
        "set_grid_limit",
        {"limit_kw": 4.0, "duration": {"hours": 1}},
        target={"device_id": garage.id},
        blocking=True,
    )
    assert value_of(hass, "number.garage_grid_limit") == "4.0"
    assert await hass.config_entries.async_unload(init_site.entry_id)
    await hass.async_block_till_done()

    # Still within the hour: the limit comes back with the site.
    freezer.tick(timedelta(minutes=30))
    assert await hass.config_entries.async_setup(init_site.entry_id)
    await hass.async_block_till_done()
    assert value_of(hass, "number.garage_grid_limit") == "4.0"
    assert await hass.config_entries.async_unload(init_site.entry_id)
    await hass.async_block_till_done()

    # The hour ends while the site is stopped: at start the rating is back.
    freezer.tick(timedelta(hours=1))
    assert await hass.config_entries.async_setup(init_site.entry_id)
    await hass.async_block_till_done()
    assert value_of(hass, "number.garage_grid_limit") == "11.0"
