"""Turn what Home Assistant knows into planner input, and a plan into what it shows.

Pure helpers around `plan_charging`: price forecast slots to `PlanSlot`s (15 or 60
minutes, as the price data), the solar surplus per slot (forecast PV minus the household
load the plans count), a charger's limits to the planner's `Session`, the planned
current of a moment, and a session plan as a list of periods for chart cards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from .budgets import PriceSlot
from .model import Phase, Session, Site
from .planner_model import PlanSlot, SessionPlan
from .solar_forecast import SolarSlot, mean_solar_kws

PLAN_HORIZON = timedelta(hours=24)
_QUARTER = timedelta(minutes=15)
_HOUR = timedelta(hours=1)


def _floor(moment: datetime, length: timedelta) -> datetime:
    """Return the start of the `length` slot (UTC-aligned) that holds `moment`."""
    epoch = datetime(2000, 1, 1, tzinfo=moment.tzinfo)
    return moment - (moment - epoch) % length


def plan_slots(
    prices: Sequence[PriceSlot],
    now: datetime,
    *,
    horizon: timedelta = PLAN_HORIZON,
) -> tuple[list[PlanSlot], int]:
    """Return the planner slots from now's slot for `horizon`, and their minutes.

    Quarter-hour slots when the price data has slots shorter than an hour, else hourly.
    Each slot takes the price in force at its start. The horizon ends where the known
    prices end (an unknown price is not planned on: a replan follows when new prices
    come); without any price from now on, the slots are hourly at a flat price of 0.
    """
    known = [p for p in prices if p.end > now]
    if not known:
        return _flat(now, horizon), 60
    length = _QUARTER if any(p.end - p.start < _HOUR for p in known) else _HOUR
    minutes = int(length.total_seconds() // 60)
    start = _floor(now, length)
    until = min(now + horizon, max(p.end for p in known))
    slots: list[PlanSlot] = []
    moment = start
    while moment < until:
        price = next((p.price for p in known if p.start <= moment < p.end), None)
        if price is None:
            break  # a gap in the forecast ends the horizon
        slots.append(PlanSlot(start=moment, price=price))
        moment += length
    if not slots:
        return _flat(now, horizon), 60
    return slots, minutes


def household_load_kw(site: Site, slot: PlanSlot) -> float:
    """Return the household load the planner counts in `slot`, over the whole site (kW).

    Per panel the slot's `load_kw` forecast, else its measured `unmanaged_load_kw` (as
    `plan_charging` counts it); cars are not household load.
    """
    return sum(
        slot.load_kw.get(panel.id, panel.unmanaged_load_kw) for panel in site.panels
    )


def with_solar_surplus(
    site: Site,
    slots: Sequence[PlanSlot],
    slot_minutes: int,
    forecast: Sequence[SolarSlot],
) -> list[PlanSlot]:
    """Return the slots with `solar_kw` = forecast PV - household load, clipped at 0.

    The PV power is the forecast's mean over each slot (uncovered time: no sun); the
    load is `household_load_kw`. Without a forecast the slots are returned unchanged.
    """
    if not forecast:
        return list(slots)
    means = mean_solar_kws(
        forecast, [slot.start for slot in slots], timedelta(minutes=slot_minutes)
    )
    return [
        replace(slot, solar_kw=max(0.0, pv_kw - household_load_kw(site, slot)))
        for slot, pv_kw in zip(slots, means, strict=True)
    ]


def _flat(now: datetime, horizon: timedelta) -> list[PlanSlot]:
    """Return hourly slots at a flat price of 0 from now's hour for `horizon`."""
    start = _floor(now, _HOUR)
    count = int(horizon / _HOUR) + (1 if start < now else 0)
    return [PlanSlot(start=start + i * _HOUR) for i in range(count)]


def plan_session(
    *,
    key: str,
    charger_id: str,
    connector_id: int,
    phases: int,
    voltage_v: float,
    grid_phase: Phase | None,
    panel_id: str,
    priority: float,
    min_current_a: float,
    max_current_a: float,
) -> Session:
    """Return the planner's view of a charger's session (limits in kW from amperes)."""
    kw_per_a = phases * voltage_v / 1000.0
    return Session(
        transaction_id=key,
        client_id=charger_id,
        connector_id=connector_id,
        phases=phases,
        voltage_v=voltage_v,
        grid_phase=grid_phase,
        panel_id=panel_id,
        priority=priority,
        max_hardware_power_kw=max_current_a * kw_per_a,
        min_charge_rate_kw=min_current_a * kw_per_a,
    )


def planned_amps(plan: SessionPlan, moment: datetime) -> float | None:
    """Return the planned current per phase at `moment`; None outside the plan.

    From the departure on, the plan has nothing to say (the car shares as today).
    """
    if moment >= plan.departure:
        return None
    for slot in plan.slots:
        if slot.start <= moment < slot.end:
            return slot.amps_per_phase
    return None


def plan_schedule(
    plan: SessionPlan, moment: datetime
) -> tuple[tuple[datetime, float], ...]:
    """Return the plan from `moment` on as `(start, A per phase)` periods.

    Equal neighbouring slots are one period; the schedule ends with 0 A at the
    departure (or where the plan's horizon ends): a charger left alone never charges
    beyond what was planned. Empty when the plan has nothing left.
    """
    periods = [p for p in plan.periods() if p.end > moment and p.start < plan.departure]
    if not periods:
        return ()
    out = [(period.start, period.amps_per_phase) for period in periods]
    end = min(periods[-1].end, plan.departure)
    if out[-1][1] > 0 or end < periods[-1].end:
        out.append((end, 0.0))
    return tuple(out)


def next_boundary(plan: SessionPlan, moment: datetime) -> datetime | None:
    """Return the first slot boundary (or the departure) after `moment`."""
    ends = [slot.end for slot in plan.slots if slot.end > moment]
    if plan.departure > moment:
        ends.append(plan.departure)
    return min(ends, default=None)


def plan_attribute(plan: SessionPlan) -> list[dict[str, Any]]:
    """Return the plan as `[{start, end, power_kw}]`, equal neighbouring slots merged."""
    return [
        {
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "power_kw": round(period.power_kw, 3) + 0.0,
        }
        for period in plan.periods()
    ]


def remaining_kwh(goal_kwh: float | None, delivered_wh: float | None) -> float | None:
    """Return the energy still to add: the goal minus what the session delivered."""
    if goal_kwh is None:
        return None
    return max(0.0, goal_kwh - (delivered_wh or 0.0) / 1000.0)
