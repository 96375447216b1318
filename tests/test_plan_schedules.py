"""End to end: a car's needs become a plan, the plan one schedule the charger follows.

A 2.0.1 (and a 2.1) simulated charger reports its needs (NotifyEVChargingNeeds: energy
and departure) under hourly prices that vary; the site plans the car's energy into the
cheap hours and sends the whole plan as one multi-period Absolute TxProfile. The
charger's clock moves with Home Assistant's through the slot boundaries: it follows the
plan by itself, nothing is rewritten at the boundaries, and it keeps following it after
Home Assistant is gone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
import math
from typing import Any

from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import CONF_PRICE_SENSOR
from tools.simulator import ReceivedProfile, SimulatedCharger

from .common import charger, chargers, move_time, panel, site_entry, until

pytestmark = pytest.mark.usefixtures("socket_enabled")

MODE = "select.cp_1_charging_mode"
PLANNED = "sensor.cp_1_planned_energy"
KW_PER_A = 3 * 230 / 1000.0
# Dear, cheap, dear, cheapest, then dear: 16 kWh go into hours 1 and 3.
PRICES = [0.40, 0.10, 0.40, 0.05] + [0.40] * 20


def _prices(start: datetime) -> dict[str, Any]:
    return {
        "prices": [
            {
                "start": (start + timedelta(hours=h)).isoformat(),
                "end": (start + timedelta(hours=h + 1)).isoformat(),
                "price": price,
            }
            for h, price in enumerate(PRICES)
        ]
    }


def _tx(sim: SimulatedCharger) -> list[ReceivedProfile]:
    return [p for p in sim.received_profiles if p.purpose == "TxProfile"]


def _planned_a(plan: list[dict[str, Any]], moment: datetime) -> float:
    """Return the planned current of `moment` from the plan sensor's attribute."""
    for period in plan:
        start = dt_util.parse_datetime(period["start"])
        end = dt_util.parse_datetime(period["end"])
        assert start is not None
        assert end is not None
        if start <= moment < end:
            return float(period["power_kw"]) / KW_PER_A
    return 0.0


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_needs_become_one_schedule_followed_without_home_assistant(
    hass: HomeAssistant, free_port: int, version: str
) -> None:
    start = dt_util.utcnow().replace(minute=0, second=0, microsecond=0)
    hass.states.async_set("sensor.price", "0.40", _prices(start))
    home = panel("home", "Home", 11.0)
    home["data"] = {**home["data"], CONF_PRICE_SENSOR: "sensor.price"}
    entry: MockConfigEntry = site_entry(
        free_port,
        [home, charger("CP-1", "home")],
        options={"min_increase_interval_s": 0.0},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: MODE, ATTR_OPTION: "by_departure_cheapest"},
        blocking=True,
    )
    # The charger's clock: Home Assistant's while it runs, then the test's alone.
    moved = [dt_util.utcnow()]

    def clock() -> datetime:
        return max(dt_util.utcnow(), moved[0])

    async def move(when: datetime) -> None:
        moved[0] = when
        if entry.state is ConfigEntryState.LOADED:
            await move_time(hass, entry, when)

    async with chargers(free_port, "CP-1", version=version, clock=clock) as (cp1,):
        await cp1.plug_in()
        await cp1.notify_ev_charging_needs(
            energy_wh=16000, departure=start + timedelta(hours=6)
        )
        await move(dt_util.utcnow() + timedelta(seconds=2))  # the replan's debounce
        await until(lambda: len(_tx(cp1)[-1].schedule["chargingSchedulePeriod"]) > 2)
        schedule = _tx(cp1)[-1]
        assert schedule.profile["chargingProfileKind"] == "Absolute"
        assert "startSchedule" in schedule.schedule
        planned = hass.states.get(PLANNED)
        assert planned is not None
        plan = planned.attributes["plan"]
        assert float(planned.state) == pytest.approx(16.0, abs=0.2)
        sent = len(_tx(cp1))

        # Hour 1 (cheap), with Home Assistant watching: the charger moves by itself,
        # and the replan at the boundary finds nothing to rewrite.
        seen: dict[int, float] = {}
        for hour in (1, 2):
            moment = start + timedelta(hours=hour, seconds=1)
            await move(moment)
            seen[hour] = cp1.limit_in_force(1)
        assert len(_tx(cp1)) == sent

        # Home Assistant stops: the charger follows the rest of the plan alone.
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
        await until(lambda: not cp1.connected)
        for hour in (3, 4):
            moment = start + timedelta(hours=hour, seconds=1)
            await move(moment)
            seen[hour] = cp1.limit_in_force(1)
        for hour, amps in seen.items():
            wanted = _planned_a(plan, start + timedelta(hours=hour, seconds=1))
            # The plan's current, rounded down to 0.1 A on the wire.
            assert math.floor(wanted * 10) / 10 - 0.1 - 1e-6 <= amps <= wanted + 1e-6
        assert seen[1] >= 6.0  # the cheap hour and the cheapest charge
        assert seen[3] >= 6.0
        assert seen[2] == 0.0  # the dear hour between them waits
        assert seen[4] == 0.0  # done before the departure
        assert len(_tx(cp1)) == sent
