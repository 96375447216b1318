"""A load sensor that is not there yet while Home Assistant starts is no warning."""

from __future__ import annotations

from datetime import timedelta
import logging

from homeassistant.core import CoreState, HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.smart_charge.const import BUDGET_TICK_S, CONF_LOAD_SENSOR

from .common import panel, site_entry

pytestmark = pytest.mark.usefixtures("socket_enabled")

WARNING = "Load sensor sensor.house unavailable"


def _warnings(caplog: pytest.LogCaptureFixture) -> int:
    return sum(
        1
        for record in caplog.records
        if record.levelno == logging.WARNING and WARNING in record.getMessage()
    )


async def test_missing_load_sensor_warns_once_home_assistant_runs(
    hass: HomeAssistant, free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    hass.set_state(CoreState.starting)
    home = panel("home", "Home", 11.0)
    home["data"] = {**home["data"], CONF_LOAD_SENSOR: "sensor.house"}
    entry = site_entry(free_port, [home])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    # Safe from the first moment: the whole rating counts as used ...
    headroom = hass.states.get("sensor.home_headroom")
    assert headroom is not None
    assert float(headroom.state) <= 0.0
    # ... but the sensor's own integration may simply not be loaded yet.
    assert _warnings(caplog) == 0

    hass.set_state(CoreState.running)
    now = dt_util.utcnow()
    for tick in (1, 2, 3):
        async_fire_time_changed(hass, now + timedelta(seconds=tick * BUDGET_TICK_S))
        await hass.async_block_till_done()
    assert _warnings(caplog) == 1  # still missing once running: said once

    # It comes back: the budget follows, and a later outage is said again.
    hass.states.async_set("sensor.house", "2000", {"unit_of_measurement": "W"})
    await hass.async_block_till_done()
    async_fire_time_changed(hass, now + timedelta(seconds=5 * BUDGET_TICK_S))
    await hass.async_block_till_done()
    headroom = hass.states.get("sensor.home_headroom")
    assert headroom is not None
    assert float(headroom.state) == pytest.approx(11.0 * 0.95 - 2.0, abs=0.01)
    hass.states.async_set("sensor.house", "unavailable")
    await hass.async_block_till_done()
    async_fire_time_changed(hass, now + timedelta(seconds=7 * BUDGET_TICK_S))
    await hass.async_block_till_done()
    assert _warnings(caplog) == 2
    assert await hass.config_entries.async_unload(entry.entry_id)
