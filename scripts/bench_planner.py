"""Benchmark the charging planner: prints timings, never asserts.

Run: .venv/bin/python scripts/bench_planner.py [runs]   (default 5 runs per figure)
A three-level tree (main 50 kW / 4 sub-panels with a current limit per phase / 2 leaves
each), 192 quarter-hour slots (48 h) with varying prices, household load and a solar day,
cars in the four modes with departures spread over the horizon.

Then the flash writes of an overnight plan per charger: sent slot by slot (a new limit
whenever the plan's current of now changes: every decrease, increases from the dead
band on) against sent as one schedule (written at the arrival, rewritten at a replan
only where the controller's own rule says so: `ScheduleChange.worth_writing`),
replanned at every slot boundary with the energy the car really took (all of the plan,
or 90 %). One car's schedule is its plan rounded down here (nothing else to fit beside).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math
import random
import statistics
import sys
import time

import engine_path  # noqa: F401  (the engine without Home Assistant)

from custom_components.smart_charge.control.schedules import (
    Schedule,
    fit_schedule,
    normalize_schedule,
    schedule_at,
    schedule_change,
)
from custom_components.smart_charge.engine import (
    ChargingGoal,
    Panel,
    Phase,
    PlanMode,
    PlanRequest,
    PlanSlot,
    Session,
    Site,
    plan_charging,
)
from custom_components.smart_charge.engine.plan_inputs import plan_schedule

T0 = datetime(2026, 6, 1, 18, tzinfo=UTC)
SLOTS = 192
RUNS = 5


def tree(cars: int) -> tuple[Site, list[str]]:
    """Main breaker, 4 sub-panels (A per phase), 2 leaves each: 13 panels."""
    scale = max(1.0, cars / 10)
    panels = [Panel(id="main", limit_kw=50.0 * scale, phase_limit_a=80.0 * scale)]
    leaves = []
    for a in range(4):
        panels.append(
            Panel(
                id=f"sub{a}",
                limit_kw=22.0 * scale,
                phase_limit_a=32.0 * scale,
                parent_id="main",
            )
        )
        for b in range(2):
            leaf = f"sub{a}.{b}"
            panels.append(Panel(id=leaf, limit_kw=16.0 * scale, parent_id=f"sub{a}"))
            leaves.append(leaf)
    return Site(panels=panels), leaves


def forecast(rng: random.Random, panel_ids: list[str]) -> list[PlanSlot]:
    """48 h of quarter hours: day/night prices with noise, evening load, a solar bump."""
    slots = []
    for t in range(SLOTS):
        start = T0 + timedelta(minutes=15 * t)
        hour = start.hour + start.minute / 60
        price = 25 + 10 * math.sin((hour - 12) / 24 * 2 * math.pi) + rng.uniform(-3, 3)
        solar = (
            max(0.0, 12 * math.sin((hour - 6) / 14 * math.pi)) if 6 < hour < 20 else 0
        )
        load = {"main": 2 + (3 if 17 <= hour < 21 else 0)}
        load[rng.choice(panel_ids)] = rng.uniform(0, 2)
        slots.append(PlanSlot(start=start, price=price, solar_kw=solar, load_kw=load))
    return slots


def requests(count: int, leaves: list[str], rng: random.Random) -> list[PlanRequest]:
    """Cars: a mix of phases and modes, 10-50 kWh, departures 6-48 h out."""
    out = []
    modes = list(PlanMode)
    for i in range(count):
        phases = rng.choice([1, 3, 3])
        session = Session(
            transaction_id=f"car-{i}",
            max_hardware_power_kw=11.04 if phases == 3 else 7.36,
            phases=phases,
            grid_phase=rng.choice(list(Phase)) if phases == 1 else None,
            panel_id=leaves[i % len(leaves)],
            sequence=i,
        )
        departure = T0 + timedelta(minutes=15 * rng.randint(24, SLOTS))
        mode = modes[i % len(modes)]
        goal = ChargingGoal(
            mode=mode, energy_kwh=rng.uniform(10, 50), departure=departure
        )
        out.append(PlanRequest(session=session, goal=goal))
    return out


def bench(cars: int) -> None:
    rng = random.Random(cars)
    site, leaves = tree(cars)
    slots = forecast(rng, [p.id for p in site.panels])
    reqs = requests(cars, leaves, rng)
    times = []
    plan = None
    for _ in range(RUNS):
        start = time.perf_counter()
        plan = plan_charging(site, reqs, slots, slot_minutes=15, feed_in_price=8.0)
        times.append((time.perf_counter() - start) * 1000.0)
    assert plan is not None
    met = sum(1 for s in plan.sessions.values() if s.goal_met)
    solar_short = sum(
        1
        for s in plan.sessions.values()
        if not s.goal_met and s.mode is PlanMode.SOLAR_ONLY
    )
    periods = max(len(s.periods()) for s in plan.sessions.values())
    print(
        f"  {cars:>3} cars x {SLOTS} slots: {statistics.median(times):8.1f} ms"
        f" (min {min(times):7.1f})  goals met {met}/{cars}"
        f" (short: {solar_short} solar only),"
        f" most periods {periods}, cost {plan.cost:,.0f}"
    )


DEAD_BAND_A = 0.5
MAX_PERIODS = 24


def _overnight(minutes: int, rng: random.Random) -> list[PlanSlot]:
    """18:00 to 08:00: evening peak prices and load, cheap small hours, noise."""
    slots = []
    start = T0
    while start < T0 + timedelta(hours=14):
        hour = (start.hour + start.minute / 60) % 24
        price = (
            38 if 18 <= hour < 21 else 30 if hour >= 21 else 18 if hour < 5 else 26
        ) + rng.uniform(-4, 4)
        load = 3.0 if 18 <= hour < 21 else 0.6
        slots.append(PlanSlot(start=start, price=price, load_kw={"home": load}))
        start += timedelta(minutes=minutes)
    return slots


def _cars() -> list[tuple[str, float, datetime, int]]:
    """(id, kWh, departure, phases): two cars on one 16 kW fuse."""
    return [
        ("car-a", 30.0, T0 + timedelta(hours=13), 3),
        ("car-b", 14.0, T0 + timedelta(hours=12), 1),
    ]


def _writes(minutes: int, taken: float) -> tuple[dict[str, int], dict[str, int]]:
    """Return (slot-by-slot writes, schedule writes) per car for one night."""
    rng = random.Random(minutes)
    site = Site(panels=[Panel(id="home", limit_kw=16.0)])
    forecast = _overnight(minutes, rng)
    remaining = {car: kwh for car, kwh, _, _ in _cars()}
    slot_writes = dict.fromkeys(remaining, 0)
    schedule_writes = dict.fromkeys(remaining, 0)
    last_cap: dict[str, float | None] = dict.fromkeys(remaining)
    installed: dict[str, Schedule | None] = dict.fromkeys(remaining)
    for index, slot in enumerate(forecast):
        now = slot.start
        reqs = [
            PlanRequest(
                session=Session(
                    transaction_id=car,
                    max_hardware_power_kw=16 * 230 * phases / 1000,
                    min_charge_rate_kw=6 * 230 * phases / 1000,
                    phases=phases,
                    grid_phase=Phase.L1 if phases == 1 else None,
                    panel_id="home",
                ),
                goal=ChargingGoal(
                    mode=PlanMode.BY_DEPARTURE_CHEAPEST,
                    energy_kwh=remaining[car],
                    departure=departure,
                ),
            )
            for car, _, departure, phases in _cars()
            if departure > now
        ]
        if not reqs:
            break
        plan = plan_charging(site, reqs, forecast[index:], slot_minutes=minutes)
        for car, session_plan in plan.sessions.items():
            key = str(car)
            periods = plan_schedule(session_plan, now)
            stamp = now.timestamp()
            schedule = fit_schedule(
                normalize_schedule(
                    [(s.timestamp(), math.floor(a * 10) / 10) for s, a in periods],
                    stamp,
                ),
                MAX_PERIODS,
            )
            cap = schedule_at(schedule, stamp)
            old_cap = last_cap[key]
            if (
                old_cap is None
                or cap < old_cap
                or cap - old_cap >= DEAD_BAND_A
                or (old_cap == 0 < cap)
            ):
                slot_writes[key] += 1
                last_cap[key] = cap
            old = installed[key]
            if old is None or schedule_change(schedule, old, stamp).worth_writing(
                DEAD_BAND_A
            ):
                schedule_writes[key] += 1
                installed[key] = schedule
            # The car takes its share of this slot (or less: it drifts from the plan).
            held = schedule_at(installed[key] or schedule, stamp)
            phases = session_plan.phases
            remaining[key] = max(
                0.0, remaining[key] - taken * held * 230 * phases / 1000 * minutes / 60
            )
    return slot_writes, schedule_writes


def writes() -> None:
    """Print the flash writes per charger of one night, slot by slot vs schedules."""
    print(
        "Flash writes per charger, one night (18:00-08:00, 2 cars on a 16 kW fuse,"
        f" dead band {DEAD_BAND_A} A, replanned at every slot):"
    )
    for minutes in (60, 15):
        for taken in (1.0, 0.9):
            slot, sched = _writes(minutes, taken)
            cells = ", ".join(
                f"{car} {slot[car]} -> {sched[car]}" for car in sorted(slot)
            )
            print(
                f"  {minutes:>2}-min slots, car takes {taken:.0%} of the plan:"
                f" slot by slot -> schedule: {cells}"
            )


def main() -> None:
    global RUNS  # noqa: PLW0603 - set once from the command line
    if len(sys.argv) > 1:
        RUNS = int(sys.argv[1])
    print(
        f"plan_charging, 3-level tree (13 panels), quarter-hour slots,"
        f" median of {RUNS} runs (Python {sys.version.split()[0]}):"
    )
    for cars in (10, 100):
        bench(cars)
    writes()


if __name__ == "__main__":
    main()
