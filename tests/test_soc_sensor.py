"""A charger's optional state-of-charge sensor feeds its target-SoC goal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import CONF_SOC_SENSOR, DOMAIN
from custom_components.smart_charge.goals import goal_with_soc, soc_value
from custom_components.smart_charge.runtime_state import GoalState

from .common import charger, chargers, device, move_time, site_entry, until

PLANNED = "sensor.cp_1_planned_energy"
SOC = "sensor.car_soc"


def _state(hass: HomeAssistant, entity_id: str) -> State:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state


@pytest.mark.parametrize(
    ("state", "value"),
    [
        ("55.5", 55.5),
        ("0", 0.0),
        ("100", 100.0),
        ("101", None),
        ("-1", None),
        ("unavailable", None),
        ("unknown", None),
        (None, None),
        ("nan", None),
    ],
)
def test_soc_value(state: str | None, value: float | None) -> None:
    assert soc_value(state) == value


def test_goal_with_soc_rules() -> None:
    soc_goal = GoalState(
        mode="by_departure_cheapest", target_soc_pct=80, battery_kwh=60
    )
    # The sensor gives the current SoC.
    assert goal_with_soc(soc_goal, 50.0) == (
        GoalState(
            mode="by_departure_cheapest",
            target_soc_pct=80,
            current_soc_pct=50.0,
            battery_kwh=60,
        ),
        None,
    )
    # Unavailable: nothing to plan, and it says so; with an energy, that is planned.
    assert goal_with_soc(soc_goal, None) == (soc_goal, "soc_unavailable")
    both = GoalState(
        mode="by_departure_cheapest", energy_kwh=7, target_soc_pct=80, battery_kwh=60
    )
    fallback, reason = goal_with_soc(both, None)
    assert reason == "energy_fallback"
    assert fallback.target_soc_pct is None
    assert fallback.energy_kwh == 7
    # An energy goal does not need the sensor.
    energy = GoalState(mode="by_departure_cheapest", energy_kwh=7)
    assert goal_with_soc(energy, None) == (energy, None)


def _site(port: int, *, sensor: bool = True) -> MockConfigEntry:
    cp1 = charger("CP-1")
    if sensor:
        cp1["data"] = {**cp1["data"], CONF_SOC_SENSOR: SOC}
    return site_entry(port, [cp1], options={"min_increase_interval_s": 0.0})


async def _goal(hass: HomeAssistant, entry: MockConfigEntry, **data: Any) -> None:
    await hass.services.async_call(
        DOMAIN,
        "set_charging_goal",
        {
            "device_id": device(hass, entry.entry_id, "charger", "CP-1").id,
            "mode": "by_departure_cheapest",
            "departure": (dt_util.utcnow() + timedelta(hours=8)).isoformat(),
            **data,
        },
        blocking=True,
    )


async def _replanned(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Let the debounced replan run."""
    await move_time(hass, entry, dt_util.utcnow() + timedelta(seconds=2))


def _serves(planned: float | None, needed: float) -> bool:
    """Return whether a plan serves a need: in whole slots at 0 or at least the
    minimum (6 A on three phases, 4.14 kW), it may give up to one hour of that more."""
    return planned is not None and needed - 0.1 <= planned <= needed + 4.2


def _planned(hass: HomeAssistant) -> float | None:
    state = _state(hass, PLANNED).state
    return None if state in ("unknown", "unavailable") else float(state)


@pytest.mark.usefixtures("socket_enabled")
async def test_soc_sensor_plans_the_target_and_follows_it(
    hass: HomeAssistant, free_port: int
) -> None:
    hass.states.async_set(SOC, "50")
    entry = _site(free_port)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        # No current SoC given: the sensor's 50 % of 100 kWh to 80 % is 30 kWh.
        await _goal(hass, entry, target_soc=80, battery_kwh=100)
        await _replanned(hass, entry)
        await until(lambda: _planned(hass) is not None)
        assert _serves(_planned(hass), 30.0)
        assert "reason" not in _state(hass, PLANNED).attributes
        # The car charges: the plan follows the sensor.
        hass.states.async_set(SOC, "70")
        await _replanned(hass, entry)
        await until(lambda: _serves(_planned(hass), 10.0))
        # The sensor goes away: nothing can be planned, and the sensor says why.
        hass.states.async_set(SOC, "unavailable")
        await _replanned(hass, entry)
        await until(lambda: _planned(hass) is None)
        assert _state(hass, PLANNED).attributes["reason"] == "soc_unavailable"
        # With an energy as well, that energy is planned instead.
        await _goal(hass, entry, target_soc=80, battery_kwh=100, energy_kwh=20)
        await _replanned(hass, entry)
        await until(lambda: _planned(hass) is not None)
        assert _serves(_planned(hass), 20.0)
        assert _state(hass, PLANNED).attributes["reason"] == "energy_fallback"
        # Back: the SoC target wins again.
        hass.states.async_set(SOC, "75")
        await _replanned(hass, entry)
        await until(lambda: _serves(_planned(hass), 5.0))
        assert "reason" not in _state(hass, PLANNED).attributes
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.usefixtures("socket_enabled")
async def test_target_soc_without_current_needs_a_sensor(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site(free_port, sensor=False)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as err:
        await _goal(hass, entry, target_soc=80, battery_kwh=60)
    assert err.value.translation_key == "goal_soc_incomplete"
    assert "CP-1" not in entry.runtime_data.state.goals
    assert await hass.config_entries.async_unload(entry.entry_id)
