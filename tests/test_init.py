"""End to end: the integration with its real OCPP server and simulated chargers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
import socket

import pytest

from custom_components.smart_charge.const import DOMAIN
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.util import dt as dt_util

from pytest_homeassistant_custom_component.common import async_fire_time_changed

from .common import charger, chargers, panel, site_entry

pytestmark = pytest.mark.usefixtures("socket_enabled")

# A 3-phase 230 V session: kW per A per phase.
KW_PER_A = 3 * 230 / 1000


async def _until(predicate, timeout: float = 5.0) -> None:  # noqa: ANN001
    """Wait until `predicate()` is true, letting the server and HA work."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def _panel_device(hass: HomeAssistant, entry_id: str, panel_id: str) -> str:
    device = dr.async_get(hass).async_get_device(
        identifiers={(DOMAIN, f"{entry_id}_panel_{panel_id}")}
    )
    assert device is not None
    return device.id


async def test_setup_unload_frees_port(hass: HomeAssistant, free_port: int) -> None:
    entry = site_entry(free_port, [])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", free_port))  # the port is free again


async def test_port_in_use_is_not_ready(hass: HomeAssistant, free_port: int) -> None:
    entry = site_entry(free_port, [])
    entry.add_to_hass(hass)
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", free_port))
        busy.listen()
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_two_sessions_share_panel_and_grid_limit(
    hass: HomeAssistant, free_port: int
) -> None:
    """Two cars under an 11 kW panel get equal limits; set_grid_limit lowers then restores."""
    entry = site_entry(
        free_port,
        [
            panel("garage", "Garage", 11.0),
            charger("CP-1", "garage"),
            charger("CP-2", "garage"),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    async with chargers(free_port, "CP-1", "CP-2") as (cp1, cp2):
        await cp1.plug_in()
        await cp2.plug_in()
        budget_a = 11.0 * 0.95 / KW_PER_A
        await _until(
            lambda: cp1.received_profiles
            and cp2.received_profiles
            and cp1.received_profiles[-1].limit == cp2.received_profiles[-1].limit
            and cp1.received_profiles[-1].limit > 0
        )
        equal = cp1.received_profiles[-1].limit
        assert equal * 2 <= budget_a
        assert equal >= round(budget_a / 2, 1) - 0.1

        state = hass.states.get("sensor.garage_allocated_power")
        assert state is not None
        assert 2 * equal * KW_PER_A - 0.01 <= float(state.state) <= 11.0 * 0.95

        # Demand response: 4.2 kW for an hour.
        before = (len(cp1.received_profiles), len(cp2.received_profiles))
        await hass.services.async_call(
            DOMAIN,
            "set_grid_limit",
            {"limit_kw": 4.2, "duration": {"hours": 1}},
            target={"device_id": _panel_device(hass, entry.entry_id, "garage")},
            blocking=True,
        )
        await _until(
            lambda: len(cp1.received_profiles) > before[0]
            and len(cp2.received_profiles) > before[1]
        )
        low = cp1.received_profiles[-1].limit
        assert low == cp2.received_profiles[-1].limit
        assert 2 * low * KW_PER_A <= 4.2 * 0.95
        assert hass.states.get("number.garage_grid_limit").state == "4.2"

        # The duration ends: the configured limit returns.
        async_fire_time_changed(hass, dt_util.utcnow() + timedelta(hours=1, seconds=1))
        await hass.async_block_till_done()
        await _until(lambda: cp1.received_profiles[-1].limit == equal)
        await _until(lambda: cp2.received_profiles[-1].limit == equal)
        assert hass.states.get("number.garage_grid_limit").state == "11.0"

    assert await hass.config_entries.async_unload(entry.entry_id)
