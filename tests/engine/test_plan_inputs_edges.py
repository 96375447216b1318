"""Plan inputs at their edges: forecasts that start late, plans seen from odd moments.

Plans are built slot by slot here (what `plan_charging` returns), so each schedule
below can be read off the slots by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from custom_components.smart_charge.engine.budgets import PriceSlot
from custom_components.smart_charge.engine.plan_inputs import (
    next_boundary,
    plan_schedule,
    plan_slots,
    planned_amps,
)
from custom_components.smart_charge.engine.planner_model import (
    PlanMode,
    PlanReason,
    SessionPlan,
    ShortfallReason,
    SlotPlan,
)

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _plan(amps: list[float], departure: datetime, start: datetime = T0) -> SessionPlan:
    """Return a 3-phase 230 V plan with one hourly slot per current from `start`."""
    slots = tuple(
        SlotPlan(
            start=start + i * HOUR,
            end=start + (i + 1) * HOUR,
            amps_per_phase=a,
            power_kw=a * 0.69,
            energy_kwh=a * 0.69,
            reason=PlanReason.CHEAPEST if a else PlanReason.IDLE,
        )
        for i, a in enumerate(amps)
    )
    return SessionPlan(
        transaction_id="CP-1/1",
        mode=PlanMode.BY_DEPARTURE_CHEAPEST,
        departure=departure,
        phases=3,
        voltage_v=230.0,
        needed_kwh=10.0,
        energy_kwh=sum(s.energy_kwh for s in slots),
        goal_met=True,
        shortfall_kwh=0.0,
        shortfall_reason=ShortfallReason.NONE,
        cost=0.0,
        finish=None,
        slots=slots,
    )


def test_a_forecast_that_starts_later_is_no_forecast_for_now() -> None:
    """Prices only from 12:00: nothing is known for now's slot, so the plan is flat.

    From 10:30 the flat horizon is 24 hourly slots plus the started one (10:00).
    """
    prices = [PriceSlot(start=T0 + 2 * HOUR, end=T0 + 3 * HOUR, price=0.1)]
    slots, minutes = plan_slots(prices, T0 + HOUR / 2)
    assert minutes == 60
    assert len(slots) == 25
    assert slots[0].start == T0
    assert {s.price for s in slots} == {0.0}


def test_schedule_ends_with_zero_at_the_departure() -> None:
    """16 A, 16 A, 8 A with the departure at 12:30: two periods, then 0 A at 12:30."""
    plan = _plan([16, 16, 8], T0 + 2.5 * HOUR)
    assert plan_schedule(plan, T0 + HOUR / 4) == (
        (T0, 16.0),
        (T0 + 2 * HOUR, 8.0),
        (T0 + 2.5 * HOUR, 0.0),
    )


def test_schedule_that_already_ends_at_zero_gets_no_extra_period() -> None:
    """16 A then a pause to the departure: the pause is the end (no 0 A added)."""
    plan = _plan([16, 0], T0 + 2 * HOUR)
    assert plan_schedule(plan, T0) == ((T0, 16.0), (T0 + HOUR, 0.0))


def test_schedule_is_empty_once_the_plan_is_over() -> None:
    """At or after the last slot's end nothing is left to send."""
    plan = _plan([16, 8], T0 + 2 * HOUR)
    assert plan_schedule(plan, T0 + 2 * HOUR) == ()
    assert plan_schedule(plan, T0 + 3 * HOUR) == ()


def test_a_moment_before_the_plan_has_no_cap_and_the_first_boundary() -> None:
    """Before the first slot the plan says nothing; its first boundary is that slot's end.

    After the departure there is no boundary left at all.
    """
    plan = _plan([10, 12], T0 + 2 * HOUR, start=T0 + HOUR)
    assert planned_amps(plan, T0) is None
    assert planned_amps(plan, T0 + 1.5 * HOUR) == 10.0
    assert next_boundary(plan, T0) == T0 + HOUR * 2
    assert next_boundary(plan, T0 + 3 * HOUR) is None
