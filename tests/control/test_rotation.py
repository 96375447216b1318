"""Paused cars take turns when minimums cannot all be met (#15 item 5).

Real server and controller, real ocpp clients over loopback (`safety_rig.py`): three
three-phase cars, room for the minimums of two; and the issue's site (one three-phase
and four single-phase cars on 8 kW). With a rotation period of 0.3 s every car charges
within three periods, and the breaker promise holds at every instant a simulator's
limits change (each swap lowers one car, acknowledged, before it raises the other).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from custom_components.smart_charge.engine import Panel
from tests.control.safety_rig import ChargerSpec, ProbedCharger, SafetyRig

pytestmark = pytest.mark.usefixtures("socket_enabled")

RigFactory = Callable[..., Awaitable[SafetyRig]]
PERIOD_S = 0.3
# 10 kW x 0.95 = 9.5 kW: two minimums of 6 A x 690 V = 4.14 kW fit, three do not.
LIMIT_KW = 10.0


@pytest.fixture
async def rig_factory() -> AsyncIterator[RigFactory]:
    rigs: list[SafetyRig] = []

    async def factory(limit_kw: float = LIMIT_KW, **options: Any) -> SafetyRig:
        rig = SafetyRig([Panel(id="main", limit_kw=limit_kw)], **options)
        await rig.start()
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        await rig.close()


class Charged:
    """Which cars drew current at some sampled instant; wakes a waiter when all did."""

    def __init__(self, rig: SafetyRig) -> None:
        self.rig = rig
        self.cars: set[str] = set()
        self.waited: set[str] = set()  # cars paused (plugged in, 0 A) at some instant
        self.swaps = 0  # instants at which the set of charging cars changed
        self._running: frozenset[str] = frozenset()
        self.all_charged = asyncio.Event()
        self.all_waited = asyncio.Event()
        for charger in rig.chargers.values():
            charger.probe = self.sample

    def sample(self, when: str) -> None:
        self.rig.sample(when)
        drawing = frozenset(
            cid
            for cid, charger in self.rig.chargers.items()
            if charger.running(1) and charger.current_a(1) > 0
        )
        if drawing != self._running:
            self.swaps += 1
            self._running = drawing
        self.cars |= drawing
        self.waited |= {
            cid
            for cid, charger in self.rig.chargers.items()
            if charger.running(1) and cid not in drawing
        }
        if self.cars == set(self.rig.chargers):
            self.all_charged.set()
        if self.waited == set(self.rig.chargers):
            self.all_waited.set()


def assert_promise(rig: SafetyRig) -> None:
    rig.sample("final check")
    assert not rig.probe_errors, rig.probe_errors
    found = [str(v) for v in rig.violations + rig.strong_violations]
    assert not found, "\n".join(found[:6])


async def three_cars(rig: SafetyRig) -> tuple[list[ProbedCharger], float]:
    """Plug in three cars; return them and the loop time before the third arrived."""
    chargers = [
        await rig.add(ChargerSpec("CP1", "main", version="1.6")),
        await rig.add(ChargerSpec("CP2", "main", version="2.0.1")),
        await rig.add(ChargerSpec("CP3", "main", version="2.1")),
    ]
    short_from = 0.0
    for charger in chargers:
        short_from = asyncio.get_running_loop().time()
        await charger.plug_in()
        await rig.settle()
    return chargers, short_from


async def test_three_cars_room_for_two_take_turns(rig_factory: RigFactory) -> None:
    rig = await rig_factory(rotation_period_s=PERIOD_S)
    chargers, short_from = await three_cars(rig)
    # The third car found no room: the first two charge, it waits for its turn.
    assert [c.limit_in_force(1) for c in chargers] == [6.8, 6.8, 0.0]
    charged = Charged(rig)
    charged.sample("all plugged in")
    assert charged.cars == {"CP1", "CP2"}
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(3 * PERIOD_S + 1.0):
        await charged.all_charged.wait()
    # The swap came at the first boundary, not before (the two kept a full turn).
    assert loop.time() - short_from >= PERIOD_S * 0.99
    # The turns go round: by the third period each car has also waited once (the one
    # that ran longest goes to the back first), not the newest car over and over.
    async with asyncio.timeout(2 * PERIOD_S + 1.0):
        await charged.all_waited.wait()
    assert loop.time() - short_from >= 2 * PERIOD_S * 0.99
    await rig.settle()
    # Still two charging at their share, one paused.
    limits = sorted(c.limit_in_force(1) for c in chargers)
    assert limits == [0.0, 6.8, 6.8]
    assert_promise(rig)


async def test_no_rotation_when_everyone_fits(rig_factory: RigFactory) -> None:
    rig = await rig_factory(rotation_period_s=PERIOD_S)
    first = await rig.add(ChargerSpec("CP1", "main"))
    second = await rig.add(ChargerSpec("CP2", "main"))
    await first.plug_in()
    await second.plug_in()
    await rig.settle()
    assert rig.controller._rotation_timer is None  # no boundary to wait for
    assert [first.limit_in_force(1), second.limit_in_force(1)] == [6.8, 6.8]
    assert_promise(rig)


async def test_rotation_off_keeps_the_paused_car_paused(
    rig_factory: RigFactory,
) -> None:
    rig = await rig_factory(rotation_period_s=0)
    chargers, _ = await three_cars(rig)
    assert rig.controller._rotation_timer is None
    assert [c.limit_in_force(1) for c in chargers] == [6.8, 6.8, 0.0]
    assert_promise(rig)


async def test_a_car_that_only_fits_alone_gets_its_turn(
    rig_factory: RigFactory,
) -> None:
    """The issue's site: one three-phase car and four single-phase cars on 8 kW.

    The most that fit is the four single-phase cars; after waiting a full period the
    three-phase car's turn is due and it charges (beside two of them) for one turn.
    """
    rig = await rig_factory(rotation_period_s=PERIOD_S, limit_kw=8.0)
    specs = [ChargerSpec("THREE", "main", version="2.0.1")] + [
        ChargerSpec(f"ONE{k}", "main", phases=1, grid_phase="L1") for k in range(4)
    ]
    chargers = [await rig.add(spec) for spec in specs]
    for charger in chargers:
        await charger.plug_in()
        await rig.settle()
    # Four charge; the three-phase car waits although it arrived first.
    assert chargers[0].limit_in_force(1) == 0.0
    assert all(c.limit_in_force(1) > 0 for c in chargers[1:])
    charged = Charged(rig)
    charged.sample("all plugged in")
    async with asyncio.timeout(3 * PERIOD_S + 1.0):
        await charged.all_charged.wait()
    await rig.settle()
    assert_promise(rig)
