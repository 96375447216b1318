"""Which goal a session starts with: the rules of `goals.goal_at_start`, one by one."""

from __future__ import annotations

from datetime import UTC, datetime, time

from custom_components.smart_charge.goals import goal_at_start, goal_at_stop
from custom_components.smart_charge.runtime_state import GoalState
from custom_components.smart_charge.site_config import ChargerSettings

NOW = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)


def _charger(default_mode: str | None = "by_departure_cheapest") -> ChargerSettings:
    return ChargerSettings(
        charger_id="GAR-1",
        subentry_id="sub-1",
        name="GAR-1",
        panel_id="main",
        managed=True,
        min_current_a=6.0,
        max_current_a=16.0,
        phases=3,
        grid_phase=None,
        priority=1,
        profile_purpose="TxProfile",
        stack_level=1,
        password=None,
        default_mode=default_mode,
        default_energy_kwh=12.0,
        default_departure=time(7, 0),
    )


def test_a_waiting_goal_becomes_the_new_sessions() -> None:
    waiting = GoalState(mode="by_departure_cheapest", energy_kwh=30.0)
    goal = goal_at_start(waiting, _charger(), "tx-2", set(), NOW)
    assert goal is not None
    assert goal.session == "tx-2"
    assert goal.energy_kwh == 30.0


def test_the_same_session_started_again_keeps_its_goal() -> None:
    """A restart reports the running transaction again: its goal is not replaced."""
    own = GoalState(mode="solar_only", energy_kwh=5.0, session="tx-1")
    assert goal_at_start(own, _charger(), "tx-1", {"tx-1"}, NOW) is own


def test_a_goal_of_a_session_still_running_elsewhere_stays() -> None:
    """Connector 2 starts while connector 1's session (with the goal) still runs."""
    other = GoalState(mode="solar_only", energy_kwh=5.0, session="tx-1")
    assert goal_at_start(other, _charger(), "tx-2", {"tx-1"}, NOW) is other


def test_a_stale_goal_gives_way_to_the_default() -> None:
    """The end of tx-1 was never heard: its goal is not the next car's."""
    stale = GoalState(mode="solar_only", energy_kwh=5.0, session="tx-1")
    goal = goal_at_start(stale, _charger(), "tx-2", set(), NOW)
    assert goal is not None
    assert (goal.mode, goal.energy_kwh, goal.session) == (
        "by_departure_cheapest",
        12.0,
        "tx-2",
    )
    assert goal.departure == datetime(2026, 12, 2, 7, 0, tzinfo=UTC)
    # Without a default, nothing carries over at all.
    assert goal_at_start(stale, _charger(None), "tx-2", set(), NOW) is None


def test_a_goal_ends_with_its_own_session_only() -> None:
    own = GoalState(mode="solar_only", energy_kwh=5.0, session="tx-1")
    assert goal_at_stop(own, "tx-1") is None
    assert goal_at_stop(own, "tx-9") is own
