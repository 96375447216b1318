"""Charging plans as multi-period schedules: the arithmetic, the writes, the promise.

The pure schedule functions get table tests and hypothesis properties. The rig runs a
real server and controller with simulated 2.0.1/2.1/1.6 chargers on one clock that the
test moves through the schedules' period boundaries: the breaker promise is sampled at
every instant a charger's limit changes by itself, not only when a write is answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
import json

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.smart_charge.control import (
    ChargerBook,
    ChargerNonCompliant,
    Installed,
    SiteController,
)
from custom_components.smart_charge.control.schedules import (
    Schedule,
    compare_schedules,
    fit_schedule,
    merge_schedule,
    normalize_schedule,
    pointwise_min,
    schedule_at,
    schedule_change,
)
from custom_components.smart_charge.csms import MeterValuesReceived
from custom_components.smart_charge.engine import Panel, Site
from tests.control.safety_rig import ChargerSpec, ProbedCharger, SafetyRig
from tools.simulator import ReceivedProfile

pytestmark = pytest.mark.usefixtures("socket_enabled")

HOUR = timedelta(hours=1)
KW_PER_A = 3 * 230 / 1000.0


def _periods(received: ReceivedProfile) -> list[tuple[int, float]]:
    return [
        (int(p.get("startPeriod", 0)), float(p["limit"]))
        for p in received.schedule["chargingSchedulePeriod"]
    ]


def _tx(charger: ProbedCharger) -> list[ReceivedProfile]:
    return [p for p in charger.received_profiles if p.purpose == "TxProfile"]


# ------------------------------------------------------------------ arithmetic


def test_normalize_starts_now_and_merges() -> None:
    now = 1000.7
    schedule = normalize_schedule(
        [(0.0, 6.0), (500.0, 10.0), (2000.0, 10.0), (3000.2, 0.0), (3000.9, 8.0)],
        now,
    )
    # The period in force at now opens it (floored to the second); equal neighbours
    # are one period; a later period in the same second replaces the earlier one.
    assert schedule == ((1000.0, 10.0), (3000.0, 8.0))
    with pytest.raises(ValueError):
        normalize_schedule([], now)
    with pytest.raises(ValueError):
        normalize_schedule([(0.0, -1.0)], now)


def test_fit_merges_then_holds_the_minimum_of_the_rest() -> None:
    schedule: Schedule = (
        (0.0, 10.0),
        (10.0, 10.0),
        (20.0, 6.0),
        (30.0, 16.0),
        (40.0, 8.0),
        (50.0, 12.0),
    )
    assert fit_schedule(schedule, None) == merge_schedule(schedule)
    assert fit_schedule(schedule, 5) == ((0.0, 10.0), (20.0, 6.0), (30.0, 16.0),
                                         (40.0, 8.0), (50.0, 12.0))  # fmt: skip
    # Three periods: the first two stay, the third holds the lowest of the rest.
    assert fit_schedule(schedule, 3) == ((0.0, 10.0), (20.0, 6.0), (30.0, 8.0))
    assert fit_schedule(schedule, 1) == ((0.0, 6.0),)


def test_pointwise_min_and_compare() -> None:
    old: Schedule = ((0.0, 16.0), (3600.0, 0.0))
    new: Schedule = ((0.0, 0.0), (3600.0, 16.0))
    assert pointwise_min(old, new, 0.0) == ((0.0, 0.0),)
    assert compare_schedules(new, old, 0.0) == (16.0, 16.0, True)
    assert compare_schedules(old, old, 10.0) == (0.0, 0.0, False)
    # Only what is still ahead counts: from 3600 on, `new` only raises.
    assert compare_schedules(((0.0, 20.0),), new, 3600.0) == (4.0, 0.0, False)


def test_what_is_worth_a_flash_write() -> None:
    held: Schedule = ((0.0, 10.0), (3600.0, 0.0), (7200.0, 8.0))
    # Same, or a later period that already charges topped up: it waits for its slot.
    assert not schedule_change(held, held, 0.0).worth_writing(0.5)
    later = schedule_change(((0.0, 10.0), (3600.0, 0.0), (7200.0, 9.5)), held, 0.0)
    assert later.up_later == 1.5
    assert not later.worth_writing(0.5)
    # ... and goes out once that period is the one in force.
    assert schedule_change(((7200.0, 9.5),), held, 7200.0).worth_writing(0.5)
    # Any decrease, a new charging period, an increase of now from the dead band on.
    assert schedule_change(((0.0, 10.0), (7200.0, 7.9)), held, 0.0).worth_writing(0.5)
    new_period = ((0.0, 10.0), (3600.0, 6.0), (7200.0, 8.0))
    assert schedule_change(new_period, held, 0.0).worth_writing(0.5)
    now_up = ((0.0, 10.4), (3600.0, 0.0), (7200.0, 8.0))
    assert not schedule_change(now_up, held, 0.0).worth_writing(0.5)
    now_up = ((0.0, 10.5), (3600.0, 0.0), (7200.0, 8.0))
    assert schedule_change(now_up, held, 0.0).worth_writing(0.5)


def test_the_book_keeps_a_schedule_and_reserves_the_worst() -> None:
    book = ChargerBook()
    book.slots[1, "default"] = Installed("TxDefaultProfile", 1, 0.0)
    book.slots[1, "tx"] = Installed(
        "TxProfile",
        1,
        16.0,
        transaction_id="T1",
        schedule=((0.0, 0.0), (3600.0, 16.0)),
        pending_a=10.0,
        pending_schedule=((0.0, 10.0), (3600.0, 6.0)),
    )
    # Unanswered: either may be in force, so the higher of both at every instant.
    assert book.held_schedule(1, "T1", 32.0, 0.0) == ((0.0, 10.0), (3600.0, 16.0))
    assert book.in_force_at(1, "T1", 32.0, 10.0) == 10.0
    # A charger we cannot reach keeps the schedule's highest period reserved.
    assert book.reserve(1, "T1", 32.0) == 16.0
    # Another transaction: its connector default.
    assert book.held_schedule(1, "T2", 32.0, 0.0) == ((0.0, 0.0),)
    again = ChargerBook.from_dict(book.to_dict())
    assert again.slots == book.slots
    with pytest.raises(ValueError):
        Installed.from_dict({**book.slots[1, "tx"].to_dict(), "schedule": []})


_schedules = st.lists(
    st.tuples(
        st.integers(0, 20).map(lambda k: k * 900.0),
        st.sampled_from([0.0, 6.0, 8.5, 10.0, 16.0, 32.0]),
    ),
    min_size=1,
    max_size=12,
).map(lambda periods: normalize_schedule(periods, 0.0))


@given(_schedules, st.integers(1, 6))
def test_fit_never_exceeds_the_input(schedule: Schedule, max_periods: int) -> None:
    fitted = fit_schedule(schedule, max_periods)
    assert len(fitted) <= max_periods
    for t in [s for s, _ in schedule] + [s for s, _ in fitted]:
        assert schedule_at(fitted, t) <= schedule_at(schedule, t) + 1e-9


@given(_schedules, _schedules, st.integers(0, 20).map(lambda k: k * 900.0))
def test_pointwise_min_is_below_both(a: Schedule, b: Schedule, now: float) -> None:
    low = pointwise_min(a, b, now)
    up_a, _, _ = compare_schedules(low, a, now)
    up_b, _, _ = compare_schedules(low, b, now)
    assert up_a == 0.0
    assert up_b == 0.0
    for t in [now] + [s for s, _ in (*a, *b) if s > now]:
        assert schedule_at(low, t) == min(schedule_at(a, t), schedule_at(b, t))


# ------------------------------------------------------------------- the rig


@pytest.fixture
async def rig() -> AsyncIterator[SafetyRig]:
    """One 22 kW panel (20.9 kW budget: 30.3 A of three-phase), a clock we move."""
    # A minute ahead of the wall clock: limits stamped with the wall clock are in force.
    start = (datetime.now(UTC) + timedelta(minutes=1)).replace(microsecond=0)
    rig = SafetyRig([Panel(id="P0", limit_kw=22.0)], clock=start)
    await rig.start()
    try:
        yield rig
    finally:
        await rig.close()


def _spec(charger_id: str, version: str = "2.0.1", **sim: object) -> ChargerSpec:
    return ChargerSpec(
        charger_id, "P0", version=version, max_current_a=16.0, sim_options=sim
    )


async def test_a_plan_is_one_schedule_the_charger_follows(rig: SafetyRig) -> None:
    t0 = rig.clock()
    cp = await rig.add(_spec("A"))
    rig.set_plan("A", ((t0, 0.0), (t0 + HOUR, 16.0), (t0 + 3 * HOUR, 8.0),
                       (t0 + 5 * HOUR, 0.0)))  # fmt: skip
    await cp.plug_in()
    await rig.settle()
    (profile,) = _tx(cp)
    assert profile.profile["chargingProfileKind"] == "Absolute"
    assert _periods(profile) == [(0, 0.0), (3600, 16.0), (10800, 8.0), (18000, 0.0)]
    # The charger follows it by itself as the clock passes each boundary.
    seen = []
    for hours in (0.5, 1.5, 3.5, 5.5):
        await rig.advance(t0 + hours * HOUR)
        seen.append(cp.limit_in_force(1))
        # The controller's own view of the limit in force agrees, period by period.
        assert rig.controller.in_force_a("A", 1) == seen[-1]
        assert rig.controller.snapshot().chargers["A"].limit_acked_a == seen[-1]
    assert seen == [0.0, 16.0, 8.0, 0.0]
    # Replanned with the same plan at a boundary: nothing is rewritten.
    rig.set_plan("A", ((t0 + 5 * HOUR, 0.0),))
    await rig.settle()
    assert len(_tx(cp)) == 1
    assert rig.violations == []


async def test_two_step_write_when_two_schedules_swap(rig: SafetyRig) -> None:
    t0 = rig.clock()
    a = await rig.add(_spec("A"))
    b = await rig.add(_spec("B", version="2.1"))
    rig.set_plan("A", ((t0, 16.0), (t0 + HOUR, 0.0)))
    rig.set_plan("B", ((t0, 0.0), (t0 + HOUR, 16.0)))
    await a.plug_in()
    await b.plug_in()
    await rig.settle()
    assert _periods(_tx(a)[-1]) == [(0, 16.0), (3600, 0.0)]
    assert _periods(_tx(b)[-1]) == [(0, 0.0), (3600, 16.0)]
    before = {cp.charger_id: len(_tx(cp)) for cp in (a, b)}

    # The plans swap: each schedule is lower now and higher later. 16 A + 16 A does not
    # fit (30.3 A), so neither new schedule may be in force while the other charger
    # still holds its old one: both go to the pointwise minimum (0 A) first.
    rig.set_plan("A", ((t0, 0.0), (t0 + HOUR, 16.0)))
    rig.set_plan("B", ((t0, 16.0), (t0 + HOUR, 0.0)))
    await rig.settle()
    steps, finals = [], []
    for cp in (a, b):
        step, final = _tx(cp)[before[cp.charger_id] :]
        assert [limit for _, limit in _periods(step)] == [0.0]
        steps.append(step)
        finals.append(final)
    assert _periods(finals[0]) == [(0, 0.0), (3600, 16.0)]
    assert _periods(finals[1]) == [(0, 16.0), (3600, 0.0)]
    # Every step was answered before any new schedule went out.
    answered = max(
        cp.profile_answered_at[s.sequence] for cp, s in zip((a, b), steps, strict=True)
    )
    assert answered <= min(f.received_at for f in finals)
    await rig.advance(t0 + 2 * HOUR)
    assert (a.limit_in_force(1), b.limit_in_force(1)) == (16.0, 0.0)
    assert rig.samples > 0
    assert rig.violations == []
    assert rig.strong_violations == []


async def test_arrival_and_grid_drop_while_a_schedule_is_installed(
    rig: SafetyRig,
) -> None:
    t0 = rig.clock()
    a = await rig.add(_spec("A"))
    c = await rig.add(_spec("C", version="1.6"))
    rig.set_plan("A", ((t0, 6.0), (t0 + HOUR, 16.0), (t0 + 3 * HOUR, 0.0)))
    await a.plug_in()
    await rig.settle()
    assert _periods(_tx(a)[-1]) == [(0, 6.0), (3600, 16.0), (10800, 0.0)]

    # A car without a plan arrives: it gets its share of now (16 A beside A's 6 A) for
    # good, so A's planned 16 A from the next hour no longer fits beside it: A's
    # schedule is lowered there before C's limit goes out.
    await rig.advance(t0 + timedelta(minutes=10))
    await c.plug_in()
    await rig.settle()
    assert c.limit_in_force(1) == 16.0
    budget_a = 22.0 * 0.95 / KW_PER_A
    later = dict(_periods(_tx(a)[-1]))
    assert later[0] == 6.0
    assert 16.0 + max(later.values()) <= budget_a + 1e-9

    # The grid limit drops to 16 kW (22.0 A): only A's minimum fits beside C's share
    # now, and in the planned hours too.
    rig.update_site(Site(panels=[Panel(id="P0", limit_kw=16.0)], voltage_v=230.0))
    await rig.settle()
    budget_low = 16.0 * 0.95 / KW_PER_A
    for hours in (0.5, 1.5, 2.5, 3.5):
        await rig.advance(t0 + hours * HOUR)
        assert a.limit_in_force(1) + c.limit_in_force(1) <= budget_low + 1e-9
    assert rig.samples > 10
    assert rig.violations == []
    assert rig.strong_violations == []


async def test_max_periods_are_respected_and_one_period_keeps_slot_by_slot(
    rig: SafetyRig,
) -> None:
    t0 = rig.clock()
    four = await rig.add(_spec("F", max_periods=4))
    one = await rig.add(_spec("O", version="1.6", max_periods=1))
    plan = tuple(
        (t0 + k * HOUR, a) for k, a in enumerate([6.0, 16.0, 8.0, 12.0, 10.0, 0.0])
    )
    rig.set_plan("F", plan)
    rig.set_plan("O", plan)
    await four.plug_in()
    await one.plug_in()
    await rig.settle()
    # Four periods: the last holds the lowest of the rest (never above the plan).
    periods = _periods(_tx(four)[-1])
    assert len(periods) <= 4
    assert periods[:3] == [(0, 6.0), (3600, 16.0), (7200, 8.0)]
    assert periods[3] == (10800, 0.0)
    # One period only: the limit of now, as today (the plan's cap of now).
    assert [_periods(p) for p in _tx(one)] == [[(0, 6.0)]]

    # Through the night, replanned at every hour: slot by slot, a write at every
    # change. Four periods: at 1 h the real-time share of now (15.1 A each: O wants
    # 16 A too) lowers F's now while a charging period comes into sight at 3 h; with O
    # raised in the same round, F first gets the pointwise minimum, then the new
    # schedule. At 2 h the next new period (10 A at 4 h) comes into sight.
    for hour in range(1, 6):
        await rig.advance(t0 + hour * HOUR)
        rig.set_plan("F", plan)
        rig.set_plan("O", plan)
        await rig.settle()
    assert [_periods(p)[0][1] for p in _tx(one)] == [6.0, 15.1, 8.0, 12.0, 10.0, 0.0]
    assert [_periods(p) for p in _tx(four)[1:]] == [
        [(0, 15.1), (3600, 8.0), (7200, 0.0)],
        [(0, 15.1), (3600, 8.0), (7200, 12.0), (10800, 0.0)],
        [(0, 8.0), (3600, 12.0), (7200, 10.0), (10800, 0.0)],
    ]
    assert rig.violations == []


async def test_a_charger_refusing_schedules_gets_one_limit_at_a_time(
    rig: SafetyRig,
) -> None:
    t0 = rig.clock()
    cp = await rig.add(_spec("R"))
    cp.max_periods = 1  # advertised 24, refuses more than one period all the same
    rig.set_plan("R", ((t0, 8.0), (t0 + HOUR, 16.0), (t0 + 2 * HOUR, 0.0)))
    await cp.plug_in()
    await rig.settle()
    *refused, accepted = _tx(cp)
    # Refused in amps and in watts; then the plan's limit of now alone, in force.
    assert [len(_periods(p)) for p in refused] == [3, 3]
    assert {cp.profile_answers[p.sequence] for p in refused} == {"Rejected"}
    assert _periods(accepted) == [(0, 8.0)]
    assert cp.limit_in_force(1) == 8.0
    assert "R" in rig.controller.writer.schedules_refused
    assert rig.violations == []


# ------------------------------------------------------- random plans, one promise

_PLAN_AMPS = st.sampled_from([0.0, 6.0, 10.0, 16.0])


@st.composite
def _random_nights(draw: st.DrawFn) -> dict[str, object]:
    """A panel, 2-3 chargers of any version, random (not even feasible) plans."""
    chargers = []
    for i in range(draw(st.integers(2, 3))):
        phases = draw(st.sampled_from([1, 3, 3]))
        chargers.append(
            {
                "id": f"N{i}",
                "version": draw(st.sampled_from(["1.6", "2.0.1", "2.1"])),
                "phases": phases,
                "grid_phase": draw(st.sampled_from(["L1", "L2"]))
                if phases == 1
                else None,
                "plan": draw(st.none() | st.lists(_PLAN_AMPS, min_size=4, max_size=4)),
                "late": draw(st.booleans()),
            }
        )
    return {
        "limit_kw": draw(st.sampled_from([11.0, 16.0, 22.0])),
        "phase_limit_a": draw(st.sampled_from([None, 25.0])),
        "drop_kw": draw(st.sampled_from([None, 7.0, 11.0])),
        "chargers": chargers,
    }


async def _night(night: dict[str, object]) -> tuple[int, list[str]]:
    """Run one night; return (samples, violations as text)."""
    start = (datetime.now(UTC) + timedelta(minutes=1)).replace(microsecond=0)
    main = Panel(
        id="P0",
        limit_kw=float(night["limit_kw"]),  # type: ignore[arg-type]
        phase_limit_a=night["phase_limit_a"],  # type: ignore[arg-type]
    )
    rig = SafetyRig([main], clock=start, call_timeout_s=0.5)
    await rig.start()
    try:
        specs: list[dict[str, object]] = night["chargers"]  # type: ignore[assignment]
        sims: dict[str, ProbedCharger] = {}
        for spec in specs:
            cid = str(spec["id"])
            sims[cid] = await rig.add(
                ChargerSpec(
                    cid,
                    "P0",
                    version=str(spec["version"]),
                    phases=int(spec["phases"]),  # type: ignore[call-overload]
                    grid_phase=spec["grid_phase"],  # type: ignore[arg-type]
                    max_current_a=16.0,
                )
            )

        def plan(spec: dict[str, object]) -> None:
            amps: list[float] | None = spec["plan"]  # type: ignore[assignment]
            if amps is not None:
                rig.set_plan(
                    str(spec["id"]),
                    tuple((start + k * HOUR, a) for k, a in enumerate([*amps, 0.0])),
                )

        for spec in specs:
            plan(spec)
            if not spec["late"]:
                await sims[str(spec["id"])].plug_in()
        await rig.settle()
        await rig.advance(start + timedelta(minutes=20))
        for spec in specs:  # the late cars arrive while schedules are installed
            if spec["late"]:
                await sims[str(spec["id"])].plug_in()
        await rig.settle()
        if night["drop_kw"] is not None:
            rig.update_site(
                Site(
                    panels=[replace(main, limit_kw=float(night["drop_kw"]))],  # type: ignore[arg-type]
                    voltage_v=230.0,
                )
            )
            await rig.settle()
        for hour in range(1, 6):  # every boundary, replanned at each hour as HA does
            await rig.advance(start + hour * HOUR)
            for spec in specs:
                plan(spec)
            await rig.settle()
        return rig.samples, [str(v) for v in rig.violations + rig.strong_violations]
    finally:
        await rig.close()


@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(_random_nights())
def test_random_plans_keep_every_instant_within_the_budget(
    socket_enabled: None, night: dict[str, object]
) -> None:
    loop = asyncio.new_event_loop()
    try:
        samples, violations = loop.run_until_complete(_night(night))
    finally:
        loop.close()
    assert samples > 0
    assert violations == [], violations[:3]


async def test_a_restart_keeps_the_installed_schedule(rig: SafetyRig) -> None:
    t0 = rig.clock()
    cp = await rig.add(_spec("A"))
    plan = ((t0, 0.0), (t0 + HOUR, 16.0), (t0 + 2 * HOUR, 0.0))
    rig.set_plan("A", plan)
    await cp.plug_in()
    await rig.settle()
    assert len(_tx(cp)) == 1
    # Home Assistant restarts: the controller's state goes through JSON (its Store).
    stored = json.loads(json.dumps(rig.controller.export_state()))
    await rig.controller.stop()
    fresh = SiteController(
        rig.server,
        rig.site,
        rig.configs(),
        clock=rig.clock,
        on_report=rig.reports.append,
    )
    fresh.import_state(stored)
    rig.controller = fresh
    await rig.advance(t0 + HOUR + timedelta(minutes=1))
    rig.set_plan("A", plan)  # the same plan, replanned after the restart
    await rig.settle()
    assert len(_tx(cp)) == 1  # the schedule it holds is the plan: not rewritten
    assert cp.limit_in_force(1) == 16.0
    assert fresh.in_force_a("A", 1) == 16.0
    assert rig.violations == []


async def test_a_charger_not_following_a_later_period_is_non_compliant() -> None:
    start = (datetime.now(UTC) + timedelta(minutes=1)).replace(microsecond=0)
    rig = SafetyRig(
        [Panel(id="P0", limit_kw=22.0)],
        clock=start,
        verify_grace_s=0.0,
        verify_samples=3,
    )
    await rig.start()
    try:
        # Accepts its schedule, follows it down to 9 A and no lower.
        cp = await rig.add(_spec("S", stuck_at_a=9.0, meter_interval_s=0.05))
        rig.set_plan("S", ((start, 16.0), (start + HOUR, 6.0), (start + 2 * HOUR, 0.0)))
        await cp.plug_in()
        await rig.settle()
        assert cp.limit_in_force(1) == 16.0
        await rig.advance(start + HOUR + timedelta(minutes=1))
        assert cp.limit_in_force(1) == 6.0
        seen = len(rig.of(MeterValuesReceived, "S"))
        await rig.wait_event(
            MeterValuesReceived,
            lambda _: len(rig.of(MeterValuesReceived, "S")) >= seen + 4,
        )
        # Judged on the period of now (6 A), not on the schedule's highest (16 A).
        flagged = [r for r in rig.reports if isinstance(r, ChargerNonCompliant)]
        assert [(r.limit_a, r.seen_a) for r in flagged] == [(6.0, 9.0)]
    finally:
        await rig.close()
