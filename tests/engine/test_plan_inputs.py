"""Planner input from price forecasts, and plans as caps and chart periods."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custom_components.smart_charge.engine import Panel, Site
from custom_components.smart_charge.engine.budgets import PriceSlot
from custom_components.smart_charge.engine.plan_inputs import (
    next_boundary,
    plan_attribute,
    plan_session,
    plan_slots,
    planned_amps,
    remaining_kwh,
)
from custom_components.smart_charge.engine.planner import plan_charging
from custom_components.smart_charge.engine.planner_model import (
    ChargingGoal,
    PlanMode,
    PlanRequest,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
QUARTER = timedelta(minutes=15)


def _hourly(prices: list[float]) -> list[PriceSlot]:
    return [
        PriceSlot(start=T0 + i * HOUR, end=T0 + (i + 1) * HOUR, price=p)
        for i, p in enumerate(prices)
    ]


def test_hourly_prices_give_hourly_slots_until_the_forecast_ends() -> None:
    slots, minutes = plan_slots(_hourly([0.3, 0.1, 0.2]), T0 + timedelta(minutes=20))
    assert minutes == 60
    assert [s.start for s in slots] == [T0, T0 + HOUR, T0 + 2 * HOUR]
    assert [s.price for s in slots] == [0.3, 0.1, 0.2]


def test_quarter_hour_prices_give_quarter_slots_within_the_horizon() -> None:
    prices = [
        PriceSlot(start=T0 + i * QUARTER, end=T0 + (i + 1) * QUARTER, price=i)
        for i in range(200)
    ]
    slots, minutes = plan_slots(prices, T0 + timedelta(minutes=7))
    assert minutes == 15
    assert slots[0].start == T0
    assert len(slots) == 97  # 24 h from 10:07, the first quarter already begun
    assert slots[-1].start == T0 + 96 * QUARTER


def test_no_forecast_is_hourly_and_flat() -> None:
    slots, minutes = plan_slots([], T0 + timedelta(minutes=30))
    assert minutes == 60
    assert len(slots) == 25
    assert {s.price for s in slots} == {0.0}
    # Past prices are no forecast either.
    slots, _ = plan_slots(_hourly([0.5]), T0 + 2 * HOUR)
    assert slots[0].start == T0 + 2 * HOUR
    assert {s.price for s in slots} == {0.0}


def test_a_gap_ends_the_horizon() -> None:
    prices = [
        *_hourly([0.3, 0.1]),
        PriceSlot(start=T0 + 3 * HOUR, end=T0 + 4 * HOUR, price=0.0),
    ]
    slots, _ = plan_slots(prices, T0)
    assert [s.start for s in slots] == [T0, T0 + HOUR]


def test_a_plan_as_caps_boundaries_and_periods() -> None:
    site = Site(panels=[Panel(id="home", limit_kw=11.0, safety_margin_pct=0)])
    session = plan_session(
        key="CP-1/1",
        charger_id="CP-1",
        connector_id=1,
        phases=3,
        voltage_v=230.0,
        grid_phase=None,
        panel_id="home",
        priority=1,
        min_current_a=6.0,
        max_current_a=16.0,
    )
    assert session.max_hardware_power_kw == 16 * 0.69
    assert session.min_kw == 6 * 0.69
    slots, minutes = plan_slots(_hourly([0.4, 0.4, 0.05, 0.3]), T0)
    goal = ChargingGoal(
        mode=PlanMode.BY_DEPARTURE_CHEAPEST,
        energy_kwh=5.0,
        departure=T0 + 4 * HOUR,
    )
    plan = plan_charging(
        site,
        [PlanRequest(session=session, goal=goal)],
        slots,
        slot_minutes=minutes,
        now=T0,
    ).sessions["CP-1/1"]
    assert planned_amps(plan, T0) == 0.0
    amps = planned_amps(plan, T0 + 2 * HOUR + QUARTER)
    assert amps is not None
    assert 7.2 <= amps <= 7.3
    assert planned_amps(plan, T0 + 4 * HOUR) is None  # departed: no cap
    assert next_boundary(plan, T0 + timedelta(minutes=5)) == T0 + HOUR
    periods = plan_attribute(plan)
    assert [p["power_kw"] > 0 for p in periods] == [False, True, False]
    assert periods[0] == {
        "start": T0.isoformat(),
        "end": (T0 + 2 * HOUR).isoformat(),
        "power_kw": 0.0,
    }


def test_remaining_energy_counts_the_session() -> None:
    assert remaining_kwh(None, 1000) is None
    assert remaining_kwh(10.0, None) == 10.0
    assert remaining_kwh(10.0, 4000) == 6.0
    assert remaining_kwh(3.0, 4000) == 0.0
