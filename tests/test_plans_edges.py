"""Charging plans at their edges: goals that are not planned, a site the planner refuses.

`ChargingPlans` is driven as the coordinator drives it (its site, candidates and price
sensor as callables), without chargers: these branches need no OCPP traffic.
"""

from __future__ import annotations

from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.smart_charge.const import DEFAULT_CHARGING_MODE, PLAN_DEBOUNCE_S
from custom_components.smart_charge.control import ChargerConfig
from custom_components.smart_charge.csms import TransactionState
from custom_components.smart_charge.engine import Panel, Site
from custom_components.smart_charge.plans import ChargingPlans, PlanCandidate
from custom_components.smart_charge.runtime_state import GoalState


def _candidate(mode: str, panel_id: str = "home") -> PlanCandidate:
    return PlanCandidate(
        config=ChargerConfig(charger_id="CP-1", panel_id=panel_id, max_current_a=16.0),
        voltage_v=230.0,
        goal=GoalState(
            mode=mode,
            energy_kwh=10.0,
            departure=dt_util.utcnow() + timedelta(hours=8),
        ),
        transaction=TransactionState(
            transaction_id="1",
            connector_id=1,
            id_tag=None,
            meter_start_wh=0.0,
            started=dt_util.utcnow(),
        ),
    )


def _plans(
    hass: HomeAssistant, candidates: list[PlanCandidate]
) -> tuple[ChargingPlans, list[int]]:
    changes: list[int] = []
    plans = ChargingPlans(
        hass,
        site=lambda: Site(panels=[Panel(id="home", limit_kw=11.0)]),
        candidates=lambda: candidates,
        price_entity=lambda: None,
        on_change=lambda: changes.append(1),
    )
    return plans, changes


async def test_a_goal_as_fast_as_possible_is_not_planned(hass: HomeAssistant) -> None:
    """The default mode shares as today: no plan, no cap; a by-departure goal is."""
    plans, _ = _plans(hass, [_candidate(DEFAULT_CHARGING_MODE)])
    plans.async_start()
    assert plans.data("CP-1") is None
    assert plans.cap_a("CP-1") is None
    plans.async_stop()

    planned, _ = _plans(hass, [_candidate("by_departure_cheapest")])
    planned.async_start()
    data = planned.data("CP-1")
    assert data is not None
    assert data.energy_kwh >= 10.0  # whole slots: the goal or a little more
    assert data.next_start is not None
    planned.async_stop()


async def test_a_plan_the_engine_refuses_is_logged_and_empty(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    """A session on a panel the site does not have: the plan fails with a warning."""
    plans, _ = _plans(hass, [_candidate("by_departure_cheapest", panel_id="nowhere")])
    plans.async_start()
    assert "Charging plan failed" in caplog.text
    assert plans.data("CP-1") is None
    assert plans.schedule("CP-1") == ()
    plans.async_stop()


async def test_requests_before_start_and_after_stop_are_ignored(
    hass: HomeAssistant,
) -> None:
    """Only a running site replans: a request outside start..stop changes nothing."""
    plans, changes = _plans(hass, [_candidate("by_departure_cheapest")])
    plans.request()
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=PLAN_DEBOUNCE_S + 1)
    )
    await hass.async_block_till_done()
    assert changes == []
    assert plans.data("CP-1") is None

    plans.async_start()
    plans.request()
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=PLAN_DEBOUNCE_S + 1)
    )
    await hass.async_block_till_done()
    assert changes == [1]  # the debounced replan ran once

    plans.async_stop()
    plans.request()
    async_fire_time_changed(
        hass, dt_util.utcnow() + timedelta(seconds=2 * PLAN_DEBOUNCE_S + 2)
    )
    await hass.async_block_till_done()
    assert changes == [1]
