"""The site's access settings reach the OCPP server; failsafe and rejecting chargers."""

from __future__ import annotations

import asyncio

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from websockets.exceptions import InvalidStatus

from custom_components.smart_charge.const import CONF_PASSWORD, DOMAIN
from custom_components.smart_charge.csms.simulator import SimulatedCharger

from .common import charger, chargers, site_entry

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def _setup(hass: HomeAssistant, entry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_password_and_reject_policy(hass: HomeAssistant, free_port: int) -> None:
    locked = charger("CP-1")
    locked["data"] = {**locked["data"], CONF_PASSWORD: "s3cret"}
    await _setup(hass, site_entry(free_port, [locked], policy="reject"))
    url = f"ws://127.0.0.1:{free_port}"

    for sim, status in (
        (SimulatedCharger("CP-1", url), 401),  # no credentials
        (SimulatedCharger("CP-1", url, password="wrong"), 401),
        (SimulatedCharger("CP-X", url), 404),  # unknown identity, policy reject
    ):
        with pytest.raises(InvalidStatus) as err:
            await sim.start()
        assert err.value.response.status_code == status
        await sim.stop()

    good = SimulatedCharger("CP-1", url, password="s3cret")
    await good.start()
    assert hass.states.get("binary_sensor.cp_1_connected").state == "on"
    await good.stop()
    # The rejected unknown charger started no discovery flow.
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_failsafe_profile_at_boot(hass: HomeAssistant, free_port: int) -> None:
    await _setup(hass, site_entry(free_port, [charger("CP-1")]))
    async with chargers(free_port, "CP-1") as (cp1,):
        received = await cp1.wait_for_profile(lambda p: p.purpose == "TxDefaultProfile")
        assert received.limit == 6.0  # the site's failsafe current


async def test_charger_rejecting_everything_is_a_repair(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = site_entry(free_port, [charger("CP-1")], main_kw=5.0)
    await _setup(hass, entry)
    issue_id = f"charger_rejects_profiles_{entry.entry_id}_CP-1"
    async with chargers(free_port, "CP-1", profile_status="Rejected") as (cp1,):
        await cp1.plug_in()
        async with asyncio.timeout(10):
            while ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None:
                await asyncio.sleep(0.05)
