"""One or three phases, seen from Home Assistant (#16 part 1).

The real integration with a solar budget from a grid sensor and simulated 2.0.1 and 2.1
chargers that switch phases (they report `SmartChargingCtrlr.Phases3to1`): a surplus of
2.5 kW charges on one phase (a three-phase car would wait), the "phases in use" sensor
shows it, and the per-charger policy select forces one phase.
"""

from __future__ import annotations

from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import (
    CONF_GRID_SENSOR,
    CONF_PHASE_SWITCHING,
    CONF_SOLAR_MODE,
    CONF_SOLAR_START_DELAY,
    CONF_SOLAR_START_KW,
)
from tools.simulator import SimulatedCharger

from .common import charger, chargers, panel, site_entry, state_when, until

pytestmark = pytest.mark.usefixtures("socket_enabled")

W = {"unit_of_measurement": "W"}


async def _site(
    hass: HomeAssistant, port: int, *, solar: bool, switching: str = "auto"
) -> MockConfigEntry:
    home = panel("home", "Home", 11.0)
    if solar:
        home["data"] = {
            **home["data"],
            CONF_SOLAR_MODE: "solar",
            CONF_GRID_SENSOR: "sensor.grid",
            CONF_SOLAR_START_KW: 1.4,
            CONF_SOLAR_START_DELAY: 0,
        }
    cp = charger("CP-1", "home", grid_phase="L3")
    cp["data"] = {**cp["data"], CONF_PHASE_SWITCHING: switching}
    entry = site_entry(port, [home, cp], options={"min_increase_interval_s": 0.0})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def _on_one_phase(sim: SimulatedCharger) -> bool:
    return sim.limit(1).phases == 1 and sim.current_a(1) > 0


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_small_solar_surplus_charges_on_one_phase(
    hass: HomeAssistant, free_port: int, version: str
) -> None:
    hass.states.async_set("sensor.grid", "-2500", W)  # 2.5 kW export
    await _site(hass, free_port, solar=True)
    async with chargers(
        free_port, "CP-1", version=version, phase_switching=True, grid_phase="L3"
    ) as (cp1,):
        await cp1.plug_in()
        await until(lambda: _on_one_phase(cp1))
        # 2.5 kW less the 5 % margin on L3: 10.3 A (three phases would need 4.14 kW).
        assert cp1.phase_currents(1) == {"L3": pytest.approx(10.3)}
        tx = [p for p in cp1.received_profiles if p.purpose == "TxProfile"]
        assert tx[-1].number_phases == 1
        await state_when(hass, "sensor.cp_1_phases_in_use", lambda s: s.state == "1")
        policy = hass.states.get("select.cp_1_phase_switching_policy")
        assert policy is not None and policy.state == "auto"


async def test_policy_select_forces_one_phase(
    hass: HomeAssistant, free_port: int
) -> None:
    await _site(hass, free_port, solar=False)
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: "select.cp_1_phase_switching_policy", ATTR_OPTION: "one"},
        blocking=True,
    )
    policy = hass.states.get("select.cp_1_phase_switching_policy")
    assert policy is not None and policy.state == "one"
    async with chargers(
        free_port, "CP-1", version="2.0.1", phase_switching=True, grid_phase="L3"
    ) as (cp1,):
        await cp1.plug_in()
        # 11 kW of room, but always one phase: the charger's 16 A on L3.
        await until(lambda: _on_one_phase(cp1) and cp1.current_a(1) == 16.0)
        assert cp1.phase_currents(1) == {"L3": 16.0}
        await state_when(hass, "sensor.cp_1_phases_in_use", lambda s: s.state == "1")


async def test_not_supported_has_no_phase_entities(
    hass: HomeAssistant, free_port: int
) -> None:
    await _site(hass, free_port, solar=False, switching="unsupported")
    assert hass.states.get("select.cp_1_phase_switching_policy") is None
    assert hass.states.get("sensor.cp_1_phases_in_use") is None
