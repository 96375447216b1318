"""V2X in Home Assistant: the allow-discharge switch and minimum-SoC number.

The real integration, a real 2.1 bidirectional simulator over loopback; the price rule
comes from the panel's tariff (threshold mode): discharge at or above the threshold.
"""

from __future__ import annotations

from homeassistant.components.number.const import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.const import (
    ATTR_ENTITY_ID,
    SERVICE_TURN_OFF,
    SERVICE_TURN_ON,
    Platform,
)
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import ServiceValidationError
import pytest

from custom_components.smart_charge.const import (
    CONF_EXPORT_LIMIT,
    CONF_LOAD_SENSOR,
    CONF_PRICE_SENSOR,
    CONF_TARIFF_MODE,
)
from custom_components.smart_charge.coordinator import SmartChargeConfigEntry
from tools.simulator import SimulatedCharger

from .common import charger, chargers, panel, site_entry, until

pytestmark = pytest.mark.usefixtures("socket_enabled")

SWITCH = "switch.v2x_allow_discharge"
MIN_SOC = "number.v2x_minimum_state_of_charge"
HOUSE_W = 5000.0


async def _site(
    hass: HomeAssistant, port: int, export_kw: float | None = None
) -> SmartChargeConfigEntry:
    hass.states.async_set("sensor.house", str(HOUSE_W), {"unit_of_measurement": "W"})
    hass.states.async_set("sensor.price", "0.50")
    home = panel("home", "Home", 22.0)
    home["data"] = {
        **home["data"],
        CONF_LOAD_SENSOR: "sensor.house",
        CONF_TARIFF_MODE: "threshold",
        CONF_PRICE_SENSOR: "sensor.price",
        "price_threshold": 0.30,
    }
    entry = site_entry(
        port,
        [home, charger("V2X", "home")],
        options={
            "min_increase_interval_s": 0.0,
            **({CONF_EXPORT_LIMIT: export_kw} if export_kw is not None else {}),
        },
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    typed: SmartChargeConfigEntry = entry
    return typed


def _state(hass: HomeAssistant, entity_id: str) -> str:
    state: State | None = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state.state


def _setpoints(sim: SimulatedCharger) -> list[float]:
    return [
        float(period["setpoint"])
        for p in sim.received_profiles
        for period in p.schedule["chargingSchedulePeriod"]
        if "setpoint" in period
    ]


async def test_switch_and_minimum_soc(hass: HomeAssistant, free_port: int) -> None:
    entry = await _site(hass, free_port)
    assert _state(hass, SWITCH) == "off"  # off by default
    assert float(_state(hass, MIN_SOC)) == 20.0
    async with chargers(
        free_port, "V2X", version="2.1", bidirectional=True, soc_pct=60.0
    ) as (sim,):
        await sim.plug_in(1)
        await sim.send_meter_values(1)
        await until(
            lambda: any(p.purpose == "TxProfile" for p in sim.received_profiles)
        )
        assert _setpoints(sim) == []  # not allowed yet, however high the price

        await hass.services.async_call(
            Platform.NUMBER,
            SERVICE_SET_VALUE,
            {ATTR_ENTITY_ID: MIN_SOC, ATTR_VALUE: 55},
            blocking=True,
        )
        await hass.services.async_call(
            Platform.SWITCH, SERVICE_TURN_ON, {ATTR_ENTITY_ID: SWITCH}, blocking=True
        )
        assert _state(hass, SWITCH) == "on"
        await until(lambda: sim.discharge_w(1) > 0)
        # The house load is covered, nothing goes to the grid (no export limit set).
        assert sim.discharge_w(1) <= HOUSE_W
        assert sim.discharge_w(1) >= 0.98 * HOUSE_W
        stored = entry.runtime_data.state.as_dict()
        assert stored["allow_discharge"] == {"V2X": True}
        assert stored["min_soc_pct"] == {"V2X": 55.0}

        # The price falls below the threshold: it stops.
        hass.states.async_set("sensor.price", "0.10")
        await until(lambda: sim.discharge_w(1) == 0.0)
        hass.states.async_set("sensor.price", "0.60")
        await until(lambda: sim.discharge_w(1) > 0)

        await hass.services.async_call(
            Platform.SWITCH, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: SWITCH}, blocking=True
        )
        await until(lambda: sim.discharge_w(1) == 0.0)
        assert _setpoints(sim)[-1] == 0.0 or sim.received_profiles[-1].schedule[
            "chargingSchedulePeriod"
        ][0].get("operationMode") in (None, "ChargingOnly")

        with pytest.raises(ServiceValidationError):
            await hass.services.async_call(
                Platform.NUMBER,
                SERVICE_SET_VALUE,
                {ATTR_ENTITY_ID: MIN_SOC, ATTR_VALUE: 120},
                blocking=True,
            )


async def test_export_limit_option(hass: HomeAssistant, free_port: int) -> None:
    entry = await _site(hass, free_port, export_kw=2.0)
    async with chargers(
        free_port, "V2X", version="2.1", bidirectional=True, soc_pct=60.0
    ) as (sim,):
        await hass.services.async_call(
            Platform.SWITCH, SERVICE_TURN_ON, {ATTR_ENTITY_ID: SWITCH}, blocking=True
        )
        await sim.plug_in(1)
        await sim.send_meter_values(1)
        await until(lambda: sim.discharge_w(1) > HOUSE_W)
        # The house load plus 2 kW to the grid, never more.
        assert sim.discharge_w(1) <= HOUSE_W + 2000.0
        assert sim.discharge_w(1) >= 0.98 * (HOUSE_W + 2000.0)

    # The option is checked like the others: a negative export limit is refused.
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_EXPORT_LIMIT: -1.0}
    )
    assert result["errors"] == {CONF_EXPORT_LIMIT: "invalid_export_limit"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_EXPORT_LIMIT: 0.0}
    )
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert entry.options[CONF_EXPORT_LIMIT] == 0.0
