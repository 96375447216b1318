"""Switching between one and three phases under a solar budget (#16 part 1).

Real server and controller, real `ocpp` clients over loopback (`safety_rig.py`) for 1.6,
2.0.1 and 2.1. A solar surplus of 2.5 kW is below the three-phase minimum (4.14 kW): a
charger that switches charges on one phase (its grid phase); when the surplus rises above
4.5 kW for long enough it switches to three, and not back within the dwell time. The
switch decision's clock is the test's (`phase_clock`), moved step by step; every instant a
simulator's limits change, the breaker promise is evaluated per phase on the phases each
charger really draws on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
import json
from typing import Any

import pytest

from custom_components.smart_charge.control import (
    PHASE_SWITCHING_SUPPORTED,
    PHASE_SWITCHING_UNSUPPORTED,
    SiteController,
)
from custom_components.smart_charge.engine import (
    Panel,
    PhasePolicy,
    PhaseSettings,
    Site,
)
from tests.control.safety_rig import ChargerSpec, ProbedCharger, SafetyRig
from tools.simulator import ReceivedProfile

pytestmark = pytest.mark.usefixtures("socket_enabled")

SETTINGS = PhaseSettings(dwell_s=300, up_margin_kw=0.4, up_delay_s=60)
VERSIONS = ("1.6", "2.0.1", "2.1")


class Clock:
    """The switch decision's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


RigFactory = Callable[..., Awaitable[tuple[SafetyRig, Clock]]]


def solar(kw: float, phase_limit_a: float | None = None) -> list[Panel]:
    return [
        Panel(
            id="solar",
            limit_kw=kw,
            safety_margin_pct=0,
            phase_limit_a=phase_limit_a,
        )
    ]


@pytest.fixture
async def rig_factory() -> AsyncIterator[RigFactory]:
    rigs: list[SafetyRig] = []

    async def factory(kw: float, **options: Any) -> tuple[SafetyRig, Clock]:
        clock = Clock()
        rig = SafetyRig(
            solar(kw, options.pop("phase_limit_a", None)),
            phase_settings=SETTINGS,
            phase_clock=clock,
            **options,
        )
        await rig.start()
        rigs.append(rig)
        return rig, clock

    yield factory
    for rig in rigs:
        await rig.close()


def tx_profiles(charger: ProbedCharger) -> list[ReceivedProfile]:
    return [p for p in charger.received_profiles if p.purpose == "TxProfile"]


def draws(charger: ProbedCharger) -> dict[str, float]:
    return {phase: round(amps, 1) for phase, amps in charger.phase_currents(1).items()}


async def set_solar(rig: SafetyRig, clock: Clock, kw: float, at: float) -> None:
    clock.now = at
    rig.update_site(Site(panels=solar(kw), voltage_v=230))
    await rig.settle()


def spec(version: str, **options: Any) -> ChargerSpec:
    sim_options = {"phase_switching": True, **options.pop("sim_options", {})}
    return ChargerSpec(
        f"PHASE-{version}",
        "solar",
        version=version,
        grid_phase="L2",
        # 1.6 has no standard key for it: the charger setting says it switches.
        phase_switching=PHASE_SWITCHING_SUPPORTED if version == "1.6" else "auto",
        sim_options=sim_options,
        **options,
    )


@pytest.mark.parametrize("version", VERSIONS)
async def test_solar_surplus_charges_on_one_phase_then_three(
    rig_factory: RigFactory, version: str
) -> None:
    rig, clock = await rig_factory(2.5)
    charger = await rig.add(spec(version))
    await charger.plug_in(1)
    await rig.settle()

    # 2.5 kW: one phase, on the charger's grid phase (10.8 A x 230 V <= 2.5 kW).
    assert tx_profiles(charger)[-1].number_phases == 1
    # 2.x chargers that choose their phase (ACPhaseSwitchingSupported) are told it.
    period = tx_profiles(charger)[-1].schedule["chargingSchedulePeriod"][0]
    assert period.get("phaseToUse") == (None if version == "1.6" else 2)
    assert charger.limit(1).phases == 1
    assert draws(charger) == {"L2": 10.8}
    assert rig.controller.phases_in_use(charger.charger_id, 1) == 1

    # 5 kW at 100 s: above the up threshold (4.14 + 0.4 kW), but within the dwell of
    # the switch at 0 s and not yet for the up delay: still one phase, more current.
    await set_solar(rig, clock, 5.0, at=100)
    assert charger.limit(1).phases == 1
    assert draws(charger) == {"L2": 21.7}
    clock.now = 200  # the delay is over, the dwell is not
    await rig.settle()
    assert charger.limit(1).phases == 1

    # After the dwell: three phases, 5000 W / 690 V = 7.2 A each.
    before = len(charger.received_profiles)
    updates = len(charger.dynamic_updates)
    clock.now = 301
    await rig.settle()
    assert charger.limit(1).phases == 3
    assert draws(charger) == {"L1": 7.2, "L2": 7.2, "L3": 7.2}
    assert rig.controller.phases_in_use(charger.charger_id, 1) == 3
    switch = [p for p in charger.received_profiles[before:] if p.purpose == "TxProfile"]
    # The switch was a pause on one phase first (2.1: an UpdateDynamicSchedule of
    # its Dynamic profile), then a new profile on three phases.
    if version == "2.1":
        assert [limit for _, limit in charger.dynamic_updates[updates:]] == [0.0]
        assert len(switch) == 1
    else:
        assert switch[0].number_phases == 1 and switch[0].limit == 0
    assert switch[-1].number_phases == 3 and switch[-1].limit == 7.2

    # Back to 2.5 kW within the dwell: not back and forth; three phases cannot run
    # at 2.5 kW, so the car waits (paused, never between 0 and the minimum).
    before = len(charger.received_profiles)
    await set_solar(rig, clock, 2.5, at=350)
    assert charger.limit(1).phases == 3
    assert charger.current_a(1) == 0
    assert all(
        p.number_phases == 3
        for p in charger.received_profiles[before:]
        if p.purpose == "TxProfile"
    )

    # After the dwell it goes down to one phase again.
    clock.now = 602
    await rig.settle()
    assert charger.limit(1).phases == 1
    assert draws(charger) == {"L2": 10.8}
    assert not rig.violations, "\n".join(map(str, rig.violations))


@pytest.mark.parametrize("version", VERSIONS)
async def test_no_switching_without_the_capability(
    rig_factory: RigFactory, version: str
) -> None:
    """A charger that does not switch (1.6 auto, or unsupported) stays on three."""
    rig, _ = await rig_factory(2.5)
    charger = await rig.add(
        ChargerSpec(
            f"FIXED-{version}",
            "solar",
            version=version,
            phase_switching="auto" if version == "1.6" else PHASE_SWITCHING_UNSUPPORTED,
            sim_options={"phase_switching": True},
        )
    )
    await charger.plug_in(1)
    await rig.settle()
    assert all(p.number_phases == 3 for p in tx_profiles(charger))
    assert charger.current_a(1) == 0  # 2.5 kW is below the three-phase minimum
    assert rig.controller.phases_in_use(charger.charger_id, 1) == 3


async def test_policy_always_one_phase(rig_factory: RigFactory) -> None:
    rig, _ = await rig_factory(11.0)
    charger = await rig.add(spec("2.0.1", phase_policy=PhasePolicy.ONE))
    await charger.plug_in(1)
    await rig.settle()
    # 11 kW of room, but always one phase: the charger's 32 A on L2.
    assert charger.limit(1).phases == 1
    assert draws(charger) == {"L2": 32.0}


async def test_safety_with_phase_switches_and_a_phase_limit(
    rig_factory: RigFactory,
) -> None:
    """Per-phase budget of 32 A with a single-phase car on L2: switches keep it."""
    rig, clock = await rig_factory(2.5, phase_limit_a=32)
    switching = await rig.add(spec("2.0.1"))
    mono = await rig.add(
        ChargerSpec("MONO", "solar", version="1.6", phases=1, grid_phase="L2")
    )
    await switching.plug_in(1)
    await mono.plug_in(1)
    await rig.settle()
    steps = [(12.0, 400), (3.0, 800), (11.0, 1200), (1.5, 1600), (9.0, 2000)]
    for kw, at in steps:
        clock.now = at
        rig.update_site(Site(panels=solar(kw, 32), voltage_v=230))
        await rig.settle()
        clock.now = at + 100  # past the up delay
        await rig.settle()
        held = rig.held("solar")[1]
        assert max(held) <= 32 + 1e-6, held
    assert {p.number_phases for p in tx_profiles(switching)} == {1, 3}
    assert rig.samples > 0
    assert not rig.violations, "\n".join(map(str, rig.violations))
    assert not rig.strong_violations, "\n".join(map(str, rig.strong_violations))


async def test_switch_up_waits_for_the_decreases_it_needs(
    rig_factory: RigFactory,
) -> None:
    """A 1 -> 3 switch that lowers the current still waits for the others' decreases.

    The switching car is capped at 8 A, so on one phase it takes 1.84 kW and a
    three-phase car gets the rest of 9.5 kW (11.1 A). On three phases both get 4.75 kW
    (6.8 A): the other car must come down first. That car is slow to apply profiles;
    sending the switch beside its decrease would put 4.69 + 7.66 kW on a 9.5 kW budget.
    """
    rig, clock = await rig_factory(2.5)
    switching = await rig.add(spec("2.0.1", max_current_a=8))
    await switching.plug_in(1)
    await rig.settle()
    assert switching.limit(1).phases == 1
    other = await rig.add(
        ChargerSpec(
            "SLOW", "solar", version="1.6", sim_options={"profile_delay_s": 0.3}
        )
    )
    await other.plug_in(1)
    await set_solar(rig, clock, 9.5, at=100)
    assert switching.limit(1).phases == 1  # within the dwell
    assert other.limit_in_force(1) == pytest.approx(11.1)
    clock.now = 301
    await rig.settle()
    assert switching.limit(1).phases == 3
    assert switching.limit_in_force(1) == pytest.approx(6.8)
    assert other.limit_in_force(1) == pytest.approx(6.8)
    assert rig.samples > 0
    assert not rig.violations, "\n".join(map(str, rig.violations))


async def test_phases_in_use_survive_a_restart(rig_factory: RigFactory) -> None:
    """The exported state keeps the phases: no pause to switch after a restart."""
    rig, _ = await rig_factory(2.5)
    charger = await rig.add(spec("2.0.1"))
    await charger.plug_in(1)
    await rig.settle()
    assert rig.controller.phases_in_use(charger.charger_id, 1) == 1
    stored = json.loads(json.dumps(rig.controller.export_state()))
    assert stored["phases_in_use"] == {f"{charger.charger_id}#1": 1}
    restarted = SiteController(rig.server, rig.site, rig.configs())
    try:
        restarted.import_state(
            {**stored, "phases_in_use": {"x#1": True, **stored["phases_in_use"]}}
        )
        assert restarted.phases_in_use(charger.charger_id, 1) == 1
    finally:
        await restarted.stop()


async def test_switching_through_default_profiles(rig_factory: RigFactory) -> None:
    """A charger that refuses TxProfiles switches through its TxDefaultProfile."""
    rig, clock = await rig_factory(2.5)
    charger = await rig.add(spec("1.6", sim_options={"reject_purposes": {"TxProfile"}}))
    await charger.plug_in(1)
    await rig.settle()
    assert charger.limit(1).phases == 1
    assert draws(charger) == {"L2": 10.8}
    await set_solar(rig, clock, 6.0, at=100)
    clock.now = 301
    await rig.settle()
    assert charger.limit(1).phases == 3
    assert draws(charger) == {"L1": 8.6, "L2": 8.6, "L3": 8.6}
    defaults = [p for p in charger.received_profiles if p.purpose == "TxDefaultProfile"]
    assert {p.number_phases for p in defaults} >= {1, 3}
    assert not rig.violations, "\n".join(map(str, rig.violations))
