"""A panel's planned load: the sum of the planned cars under it, slot by slot."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from homeassistant.core import HomeAssistant, State
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import CONF_PRICE_SENSOR, DOMAIN

from .common import charger, chargers, device, move_time, panel, site_entry, until

pytestmark = pytest.mark.usefixtures("socket_enabled")

PEAK = "sensor.home_planned_peak"
MAIN_PEAK = "sensor.smart_charge_main_breaker_planned_peak"


def _state(hass: HomeAssistant, entity_id: str) -> State:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state


def _hour() -> datetime:
    return dt_util.utcnow().replace(minute=0, second=0, microsecond=0)


def _prices(start: datetime, prices: list[float]) -> dict[str, Any]:
    return {
        "prices": [
            {
                "start": (start + timedelta(hours=h)).isoformat(),
                "end": (start + timedelta(hours=h + 1)).isoformat(),
                "price": price,
            }
            for h, price in enumerate(prices)
        ]
    }


def _power_at(periods: list[dict[str, Any]], moment: datetime) -> float:
    """Return the power of the period of `periods` that covers `moment` (else 0)."""
    for period in periods:
        start = dt_util.parse_datetime(period["start"])
        end = dt_util.parse_datetime(period["end"])
        assert start is not None
        assert end is not None
        if start <= moment < end:
            return float(period["power_kw"])
    return 0.0


async def _goal(hass: HomeAssistant, entry: MockConfigEntry, charger_id: str) -> None:
    await hass.services.async_call(
        DOMAIN,
        "set_charging_goal",
        {
            "device_id": device(hass, entry.entry_id, "charger", charger_id).id,
            "mode": "by_departure_cheapest",
            "energy_kwh": 8,
            "departure": (_hour() + timedelta(hours=8)).isoformat(),
        },
        blocking=True,
    )


async def test_two_planned_cars_sum_per_slot(
    hass: HomeAssistant, free_port: int
) -> None:
    start = _hour()
    # One cheap hour that cannot hold both goals (11 kW panel, two 6.9 kW cars, 16 kWh):
    # both charge in it, the rest goes to the next-cheapest hour.
    hass.states.async_set(
        "sensor.price", "0.40", _prices(start, [0.40, 0.05, 0.10] + [0.30] * 21)
    )
    home = panel("home", "Home", 11.0)
    home["data"] = {**home["data"], CONF_PRICE_SENSOR: "sensor.price"}
    entry = site_entry(
        free_port,
        [
            home,
            charger("CP-1", "home", max_a=10.0),
            charger("CP-2", "home", max_a=10.0),
        ],
        options={"min_increase_interval_s": 0.0},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    # Nothing planned yet: no load planned.
    assert float(_state(hass, PEAK).state) == 0.0
    assert _state(hass, PEAK).attributes["plan"] == []
    plans = entry.runtime_data.plans
    async with chargers(free_port, "CP-1", "CP-2", clock=plans.now) as sims:
        for sim in sims:
            await sim.plug_in()
        await _goal(hass, entry, "CP-1")
        await _goal(hass, entry, "CP-2")
        await move_time(hass, entry, dt_util.utcnow() + timedelta(seconds=2))
        await until(lambda: float(_state(hass, PEAK).state) > 0.0)

        cars = [
            _state(hass, f"sensor.{cid}_planned_energy").attributes["plan"]
            for cid in ("cp_1", "cp_2")
        ]
        state = _state(hass, PEAK)
        periods = state.attributes["plan"]
        assert periods
        both = 0
        for period in periods:
            moment = dt_util.parse_datetime(period["start"])
            assert moment is not None
            one, two = (_power_at(car, moment) for car in cars)
            assert period["power_kw"] == pytest.approx(one + two, abs=0.01)
            both += one > 0 and two > 0
        # Both cars charge together in some slot, within the panel's 11 kW.
        assert both >= 1
        assert 0.0 < float(state.state) <= 11.0
        assert float(state.state) == max(p["power_kw"] for p in periods)
        # Equal neighbours are merged, and the periods follow each other.
        for first, second in pairwise(periods):
            assert first["end"] == second["start"]
            assert first["power_kw"] != second["power_kw"]
        # The main breaker above carries the same planned cars.
        assert _state(hass, MAIN_PEAK).attributes["plan"] == periods
    assert await hass.config_entries.async_unload(entry.entry_id)
