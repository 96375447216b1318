"""The breaker promise as a hypothesis state machine, measured on the charger side.

A random site (1-3 panels in a tree, 2-4 chargers of OCPP 1.6, 2.0.1 and 2.1, one or
three phases, some strict, some amps-only, some with two connectors) runs random
sequences of: a car plugs in or leaves (also while its charger is offline), two sessions
stop at the same instant, a charger becomes slow, refuses, stops answering, vanishes,
comes back or reboots, a panel limit changes. The invariant of DESIGN §3b is sampled at
every instant a simulator's limits may change (every profile answered, every clear,
every transaction start and end) and once more after the controller settled; see
`safety_rig.py`.

The chargers are real `ocpp` clients over loopback; the state machine runs its async
steps in the test's own event loop. `SAFETY_EXAMPLES=40` runs a deeper hunt (about
two minutes); the default stays within a minute for both variants.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import replace
import functools
import os
from typing import Any

from hypothesis import HealthCheck, Phase as HypothesisPhase, settings, strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
import pytest

from custom_components.smart_charge.engine import Panel, Site
from tests.control.safety_rig import ChargerSpec, ProbedCharger, SafetyRig, Violation

VERSIONS = ("1.6", "2.0.1", "2.1")
GRID_PHASES = ("L1", "L2", "L3")
CALL_TIMEOUT_S = 0.45
SLOW_S = 0.3

SETTINGS = settings(
    max_examples=int(os.environ.get("SAFETY_EXAMPLES", "12")),
    stateful_step_count=12,
    deadline=None,
    derandomize=True,
    database=None,
    # No shrinking: each example is a real site over loopback; the falsifying steps
    # are printed as they ran.
    phases=[HypothesisPhase.explicit, HypothesisPhase.generate],
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@st.composite
def random_sites(draw: st.DrawFn) -> tuple[list[Panel], list[ChargerSpec]]:
    """Draw a tree of 1-3 panels and 2-4 chargers under them."""
    count = draw(st.integers(1, 3))
    panels = [
        Panel(
            id="P0",
            limit_kw=draw(st.sampled_from([11.0, 16.0, 22.0, 30.0])),
            phase_limit_a=draw(st.sampled_from([None, None, 32.0])),
        )
    ]
    for i in range(1, count):
        parent = draw(st.integers(0, i - 1))
        panels.append(
            Panel(
                id=f"P{i}",
                limit_kw=draw(st.sampled_from([5.0, 8.0, 11.0, 16.0])),
                phase_limit_a=draw(st.sampled_from([None, 16.0, 25.0])),
                parent_id=f"P{parent}",
            )
        )
    specs = []
    for j in range(draw(st.integers(2, 4))):
        version = draw(st.sampled_from(VERSIONS))
        phases = draw(st.sampled_from([1, 3]))
        specs.append(
            ChargerSpec(
                f"CP{j}",
                panel_id=f"P{draw(st.integers(0, count - 1))}",
                version=version,
                phases=phases,
                grid_phase=draw(st.sampled_from(GRID_PHASES)) if phases == 1 else None,
                connectors=draw(st.sampled_from([1, 1, 2])),
                strict=draw(st.booleans()),
                amps_only=version == "1.6" and draw(st.booleans()),
                max_current_a=draw(st.sampled_from([16.0, 32.0])),
            )
        )
    return panels, specs


def live[**P](step: Callable[P, None]) -> Callable[P, None]:
    """Skip a step once the example's site is gone (after a recorded failure)."""

    @functools.wraps(step)
    def run_step(*args: P.args, **kwargs: P.kwargs) -> None:
        machine = args[0]
        assert isinstance(machine, BreakerPromise)
        if machine.rig is not None:
            step(*args, **kwargs)

    return run_step


class BreakerPromise(RuleBasedStateMachine):
    """Random steps against a random site; the promise is checked at every instant."""

    loop: asyncio.AbstractEventLoop
    strong: bool = False
    # The first broken promise, with the steps that led to it. Recorded rather than
    # raised: the chargers are real clients over loopback, so a failing run may not
    # fail again step for step, and hypothesis would report a flaky test instead.
    failures: list[str]
    examples: list[int]

    def __init__(self) -> None:
        """Nothing runs before `build`."""
        super().__init__()
        self.rig: SafetyRig | None = None
        self.trace: list[str] = []

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run one async step in the test's event loop."""
        return self.loop.run_until_complete(asyncio.wait_for(coro, 30))

    @property
    def site(self) -> SafetyRig:
        assert self.rig is not None
        return self.rig

    def charger(self, index: int) -> ProbedCharger:
        chargers = list(self.site.chargers.values())
        return chargers[index % len(chargers)]

    # ------------------------------------------------------------------ setup

    @initialize(layout=random_sites())
    def build(self, layout: tuple[list[Panel], list[ChargerSpec]]) -> None:
        if self.failures:
            return  # one broken promise is enough: the others are skipped
        self.examples.append(1)
        panels, specs = layout
        self.rig = SafetyRig(panels, call_timeout_s=CALL_TIMEOUT_S)

        async def start() -> None:
            await self.site.start()
            for spec in specs:
                await self.site.add(spec)

        self.trace.append(
            "site: "
            + "; ".join(
                f"{p.id}({p.parent_id or 'root'}) {p.limit_kw} kW"
                + (f" {p.phase_limit_a} A/phase" if p.phase_limit_a else "")
                for p in panels
            )
        )
        self.trace.append(
            "chargers: "
            + "; ".join(
                f"{c.charger_id} on {c.panel_id}: {c.version} {c.phases}P"
                f"{' ' + c.grid_phase if c.grid_phase else ''} x{c.connectors}"
                f" max {c.max_current_a} A{' strict' if c.strict else ''}"
                f"{' amps-only' if c.amps_only else ''}"
                for c in specs
            )
        )
        self.run(start())
        self.verify("boot")

    def teardown(self) -> None:
        if self.rig is not None:
            self.run(self.rig.close())
            self.rig = None

    # ------------------------------------------------------------------ checks

    def verify(self, step: str) -> None:
        """Settle, then check the promise held during the step and holds now."""
        rig = self.site
        self.trace.append(step)
        problem: str | None = None
        try:
            self.run(rig.settle())
        except TimeoutError:
            problem = f"the controller did not settle after {step!r}"
        rig.settled()
        rig.sample(f"settled after {step}")
        found: list[Violation] = (
            rig.strong_violations if self.strong else rig.violations
        )
        if rig.probe_errors:
            problem = f"the probe failed: {rig.probe_errors}"
        elif found:
            problem = (
                f"{'strong ' if self.strong else ''}invariant broken during "
                f"{step!r} ({len(found)} samples):\n"
                + "\n".join(str(v) for v in found[:6])
            )
        rig.violations.clear()
        rig.strong_violations.clear()
        if problem is not None:
            steps = "\n  ".join(self.trace)
            history = "\n  ".join(rig.history)
            self.failures.append(
                f"{problem}\nsteps:\n  {steps}\nlast samples:\n  {history}"
            )
            self.teardown()

    @invariant()
    def sampled(self) -> None:
        if self.rig is not None:
            assert self.rig.samples > 0

    # ------------------------------------------------------------------ steps

    @rule(index=st.integers(0, 3), connector=st.integers(0, 1))
    @live
    def car_toggles(self, index: int, connector: int) -> None:
        """A car plugs in (or leaves); offline chargers start it locally."""
        charger = self.charger(index)
        cid = connector % len(charger.connectors) + 1
        if charger.connectors[cid].plugged:
            step = f"{charger.charger_id}#{cid} unplugs"
            self.run(charger.unplug(cid))
        else:
            online = "online" if charger.connected else "offline"
            step = f"{charger.charger_id}#{cid} plugs in ({online})"
            self.run(charger.plug_in(cid))
        self.verify(step)

    @rule()
    @live
    def two_stop_at_once(self) -> None:
        """Two sessions on online chargers end in the same instant."""
        rig = self.site

        def running() -> list[tuple[ProbedCharger, int]]:
            return [
                (charger, cid)
                for charger in rig.chargers.values()
                if charger.connected
                for cid, connector in charger.connectors.items()
                if connector.in_transaction
            ]

        async def stops() -> None:
            free = [
                (charger, cid)
                for charger in rig.chargers.values()
                if charger.connected
                for cid, connector in charger.connectors.items()
                if not connector.plugged
            ]
            for charger, cid in free[: max(0, 2 - len(running()))]:
                await charger.plug_in(cid)
            await rig.settle()
            pair = running()[:2]
            await asyncio.gather(*(charger.unplug(cid) for charger, cid in pair))

        self.run(stops())
        self.verify("two sessions stop at once")

    @rule(index=st.integers(0, 3))
    @live
    def goes_slow(self, index: int) -> None:
        charger = self.charger(index)
        charger.profile_delay_s = SLOW_S
        self.verify(f"{charger.charger_id} answers after {SLOW_S} s")

    @rule(index=st.integers(0, 3), count=st.integers(1, 2))
    @live
    def refuses(self, index: int, count: int) -> None:
        charger = self.charger(index)
        charger.refuse_next(count)
        self.verify(f"{charger.charger_id} refuses its next {count} profiles")

    @rule(index=st.integers(0, 3))
    @live
    def stops_answering(self, index: int) -> None:
        charger = self.charger(index)
        charger.ignore_actions.add("SetChargingProfile")
        self.verify(f"{charger.charger_id} stops answering SetChargingProfile")

    @rule(index=st.integers(0, 3))
    @live
    def heals(self, index: int) -> None:
        charger = self.charger(index)
        charger.heal()
        if charger.connected:
            self.run(charger.heartbeat())
        self.verify(f"{charger.charger_id} behaves again")

    @rule(index=st.integers(0, 3))
    @live
    def vanishes(self, index: int) -> None:
        charger = self.charger(index)
        if charger.connected:
            self.run(self.site.vanish(charger))
        self.verify(f"{charger.charger_id} vanishes")

    @rule(index=st.integers(0, 3))
    @live
    def comes_back(self, index: int) -> None:
        charger = self.charger(index)
        if not charger.connected:
            self.run(charger.reconnect())
        self.verify(f"{charger.charger_id} comes back")

    @rule(index=st.integers(0, 3))
    @live
    def reboots(self, index: int) -> None:
        charger = self.charger(index)
        if charger.connected:
            self.run(charger.reboot())
        self.verify(f"{charger.charger_id} reboots")

    @rule(
        panel=st.integers(0, 2),
        limit_kw=st.sampled_from([0.0, 4.0, 7.0, 11.0, 16.0, 22.0, 30.0]),
    )
    @live
    def panel_limit_changes(self, panel: int, limit_kw: float) -> None:
        rig = self.site
        panels = list(rig.site.panels)
        target = panels[panel % len(panels)]
        panels[panel % len(panels)] = replace(target, limit_kw=limit_kw)
        new_site = Site(panels=panels, voltage_v=rig.site.voltage_v)

        async def change() -> None:
            rig.update_site(new_site)

        self.run(change())
        self.verify(f"panel {target.id} limit {target.limit_kw} -> {limit_kw} kW")


@pytest.mark.parametrize("strong", [False, True], ids=["in_force", "strong"])
def test_breaker_promise_state_machine(socket_enabled: None, strong: bool) -> None:
    """No panel above its budget at any sampled instant, for random sequences.

    `in_force`: a running connector counts at its limit in force, an idle one at what
    a car would start at. `strong`: every connector at max(in force, start limit).
    """

    class Machine(BreakerPromise):
        pass

    # A loop of its own: pytest-asyncio 1.x (the newest lane) has no `event_loop` fixture.
    loop = asyncio.new_event_loop()
    Machine.loop = loop
    Machine.strong = strong
    Machine.failures = []
    Machine.examples = []
    try:
        run_state_machine_as_test(Machine, settings=SETTINGS)  # type: ignore[no-untyped-call]
    finally:
        loop.close()
    assert not Machine.failures, Machine.failures[0]
    assert Machine.examples
