"""The one/three-phase switch decision: table tests and hypothesis properties."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, strategies as st
import pytest

from custom_components.smart_charge.engine import (
    EngineConfigError,
    Panel,
    Phase,
    PhasePolicy,
    PhaseReason,
    PhaseSettings,
    PhaseState,
    Session,
    SessionKey,
    Site,
    SwitchRequest,
    allocate_site,
    choose_phases,
    decide_phases,
    with_phases,
)

from .helpers import check_invariants

V = 230.0
MIN_ONE = 6 * V / 1000  # 1.38 kW
MIN_THREE = 3 * MIN_ONE  # 4.14 kW
SETTINGS = PhaseSettings(dwell_s=300, up_margin_kw=0.4, up_delay_s=60)


def decide(
    state: PhaseState,
    room_kw: float,
    now: float,
    policy: PhasePolicy = PhasePolicy.AUTO,
    *,
    switchable: bool = True,
) -> tuple[int, PhaseReason, PhaseState]:
    decision = decide_phases(
        state=state,
        room_kw=room_kw,
        min_current_a=6,
        voltage_v=V,
        now=now,
        policy=policy,
        switchable=switchable,
        settings=SETTINGS,
    )
    return decision.phases, decision.reason, decision.state


def test_three_phases_go_to_one_below_the_three_phase_minimum() -> None:
    phases, reason, state = decide(PhaseState(phases=3), 2.5, 0)
    assert (phases, reason) == (1, PhaseReason.BELOW_THREE_MINIMUM)
    assert state == PhaseState(phases=1, switched_at=0)


def test_no_room_for_one_phase_keeps_the_phases() -> None:
    assert decide(PhaseState(phases=3), 1.0, 0)[:2] == (3, PhaseReason.NO_ROOM)
    assert decide(PhaseState(phases=1), 1.0, 0)[:2] == (1, PhaseReason.NO_ROOM)


def test_room_for_three_keeps_three() -> None:
    assert decide(PhaseState(phases=3), MIN_THREE, 0)[:2] == (
        3,
        PhaseReason.ROOM_FOR_THREE,
    )


def test_one_phase_goes_up_after_the_delay_and_the_dwell() -> None:
    state = PhaseState(phases=1, switched_at=0)
    # Between the thresholds: hysteresis, nothing changes.
    assert decide(state, MIN_THREE + 0.2, 400)[:2] == (1, PhaseReason.HYSTERESIS)
    # Above the up threshold: it must stay there for the up delay.
    phases, reason, state = decide(state, 5.0, 400)
    assert (phases, reason, state.above_since) == (1, PhaseReason.WAITING, 400)
    assert decide(state, 5.0, 459)[:2] == (1, PhaseReason.WAITING)
    # A dip below resets the delay.
    _, _, dipped = decide(state, 3.0, 430)
    assert dipped.above_since is None
    phases, reason, state = decide(state, 5.0, 460)
    assert (phases, reason) == (3, PhaseReason.ROOM_FOR_THREE)
    assert state == PhaseState(phases=3, switched_at=460)


def test_no_switch_within_the_dwell_time() -> None:
    state = PhaseState(phases=1, switched_at=100)
    _, _, state = decide(state, 5.0, 150)
    phases, reason, state = decide(state, 5.0, 399)
    assert (phases, reason) == (1, PhaseReason.DWELL)
    assert decide(state, 5.0, 400)[0] == 3
    # And down again only after the dwell.
    down = PhaseState(phases=3, switched_at=400)
    assert decide(down, 2.5, 699)[:2] == (3, PhaseReason.DWELL)
    assert decide(down, 2.5, 700)[:2] == (1, PhaseReason.BELOW_THREE_MINIMUM)


@pytest.mark.parametrize(
    ("policy", "expected"), [(PhasePolicy.ONE, 1), (PhasePolicy.THREE, 3)]
)
def test_policy_forces_the_phases(policy: PhasePolicy, expected: int) -> None:
    for start in (1, 3):
        for room in (0.0, 2.5, 11.0):
            assert decide(PhaseState(phases=start), room, 0, policy)[0] == expected


def test_a_charger_that_cannot_switch_keeps_its_phases() -> None:
    assert decide(PhaseState(phases=3), 2.5, 0, switchable=False)[:2] == (
        3,
        PhaseReason.FIXED,
    )


def test_bad_input_is_refused() -> None:
    with pytest.raises(EngineConfigError):
        decide(PhaseState(phases=2), 2.5, 0)
    with pytest.raises(EngineConfigError):
        decide(PhaseState(phases=3), float("nan"), 0)
    with pytest.raises(EngineConfigError):
        PhaseSettings(dwell_s=-1)


def test_with_phases_keeps_the_current() -> None:
    session = Session(
        transaction_id="t",
        phases=3,
        max_hardware_power_kw=3 * 16 * V / 1000,
        max_ev_acceptance_power_kw=3 * 10 * V / 1000,
        min_charge_rate_kw=MIN_THREE,
    )
    one = with_phases(session, 1, Phase.L2)
    assert one.phases == 1 and one.grid_phase is Phase.L2
    assert one.max_hardware_power_kw == pytest.approx(16 * V / 1000)
    assert one.max_ev_acceptance_power_kw == pytest.approx(10 * V / 1000)
    assert one.min_kw == pytest.approx(MIN_ONE)
    assert one.phase_currents(one.min_kw) == pytest.approx((0.0, 6.0, 0.0))


def solar_site(kw: float, phase_limit_a: float | None = None) -> Site:
    return Site(
        panels=[
            Panel(
                id="solar",
                limit_kw=kw,
                safety_margin_pct=0,
                phase_limit_a=phase_limit_a,
            )
        ]
    )


def car(key: str = "car", grid_phase: Phase | None = None) -> Session:
    return Session(
        transaction_id=key,
        phases=3,
        grid_phase=grid_phase,
        max_hardware_power_kw=3 * 16 * V / 1000,
        min_charge_rate_kw=MIN_THREE,
    )


def test_choose_phases_charges_a_small_surplus_on_one_phase() -> None:
    site = solar_site(2.5)
    request = SwitchRequest(
        state=PhaseState(phases=3), min_current_a=6, grid_phase=Phase.L3
    )
    sessions, decisions = choose_phases(site, [car()], {"car": request}, now=0)
    assert decisions["car"].phases == 1
    result = allocate_site(site, sessions)
    profile = result.sessions["car"]
    assert profile.phases == 1 and not profile.paused
    assert profile.allocated_amps_per_phase == pytest.approx(10.8)
    assert result.panels["solar"].allocated_phase_a == pytest.approx((0, 0, 10.8))
    # On three phases the same surplus pauses the car.
    assert allocate_site(site, [car()]).sessions["car"].paused


@st.composite
def steps(draw: st.DrawFn) -> list[tuple[float, float]]:
    """(seconds since the last step, solar kW) pairs."""
    return draw(
        st.lists(
            st.tuples(
                st.floats(1, 400, allow_nan=False),
                st.floats(0, 12, allow_nan=False),
            ),
            min_size=1,
            max_size=40,
        )
    )


@given(
    steps(),
    st.sampled_from([None, 16.0, 20.0]),
    st.sampled_from([Phase.L1, Phase.L2, Phase.L3]),
    st.booleans(),
)
def test_property_dwell_minimum_and_phase_accounting(
    sequence: list[tuple[float, float]],
    phase_limit_a: float | None,
    grid_phase: Phase,
    second_car: bool,
) -> None:
    """Never two switches within the dwell; 0 or ≥ minimum; every phase holds."""
    states = {"car": PhaseState(phases=3), "other": PhaseState(phases=3)}
    switches: dict[str, list[float]] = {"car": [], "other": []}
    now = 0.0
    for delta, kw in sequence:
        now += delta
        site = solar_site(kw, phase_limit_a)
        cars = [car("car", grid_phase)]
        if second_car:
            cars.append(car("other", Phase.L1))
        requests: dict[SessionKey, SwitchRequest] = {
            s.transaction_id: SwitchRequest(
                state=states[str(s.transaction_id)],
                min_current_a=6,
                grid_phase=s.grid_phase,
            )
            for s in cars
        }
        sessions, decisions = choose_phases(
            site, cars, requests, now=now, settings=SETTINGS
        )
        result = allocate_site(site, sessions)
        check_invariants(site, sessions, result)
        for session in sessions:
            key = str(session.transaction_id)
            decision = decisions[key]
            assert session.phases == decision.phases
            if decision.phases != states[key].phases:
                switches[key].append(now)
            states[key] = decision.state
            profile = result.sessions[key]
            # 0 or at least the minimum on the phases in use.
            assert profile.paused or profile.allocated_amps_per_phase >= 6 - 1e-9
        # Per-phase accounting follows the switch: a one-phase car loads its phase.
        expected = [0.0, 0.0, 0.0]
        for session in sessions:
            amps = result.sessions[session.transaction_id].allocated_amps_per_phase
            for position in range(3):
                if session.phases == 3 or position == session.phase_index:
                    expected[position] += amps
        assert result.panels["solar"].allocated_phase_a == pytest.approx(expected)
    for times in switches.values():
        for earlier, later in pairwise(times):
            assert later - earlier >= SETTINGS.dwell_s - 1e-9
