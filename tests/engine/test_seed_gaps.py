"""Issue 15 item 6: gaps between the engine and the seed's API, each with its case."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from custom_components.smart_charge.engine import (
    GridOverCommitted,
    LimitReason,
    Panel,
    Phase,
    Session,
    SessionLimit,
    Site,
    SmartChargingEngine,
    Strategy,
    TimeOfUseWindow,
    allocate_site,
)
from custom_components.smart_charge.engine.model import time_of_use_multiplier

from .test_engine import Recorder, kw

NOON = datetime(2025, 1, 15, 12, tzinfo=UTC)
LIFT = TimeOfUseWindow(peak_start_hour=10, peak_end_hour=14, peak_power_multiplier=1.5)
HALF = TimeOfUseWindow(peak_start_hour=10, peak_end_hour=14, peak_power_multiplier=0.5)


def test_time_of_use_above_one_never_lifts_a_budget_above_the_breaker() -> None:
    """16 kW x 1.5 used to allocate 22 kW; the multiplier is capped at 1."""
    engine = SmartChargingEngine(
        "SITE",
        16,
        Recorder(),
        algorithm=Strategy.TIME_OF_USE,
        safety_margin_pct=0,
        time_of_use_windows=[LIFT],
    )
    engine.add_session(transaction_id="a", max_hardware_power_kw=22)
    engine.add_session(transaction_id="b", max_hardware_power_kw=22)
    assert kw(engine.optimize(now=NOON)) == {"a": 8.0, "b": 8.0}
    assert engine.effective_limit_kw(NOON) == 16.0
    assert time_of_use_multiplier([LIFT], NOON, ZoneInfo("UTC")) == 1.0
    # The smallest window still wins where several match.
    assert time_of_use_multiplier([LIFT, HALF], NOON, ZoneInfo("UTC")) == 0.5


def test_time_of_use_scales_the_per_phase_limit_too() -> None:
    """A window of 0.5 halves a panel's kW budget and its current per phase alike."""
    site = Site(
        panels=[
            Panel(
                id="main",
                limit_kw=100,
                phase_limit_a=32,
                safety_margin_pct=0,
                strategy=Strategy.TIME_OF_USE,
                time_of_use_windows=(HALF,),
            )
        ]
    )
    sessions = [Session(transaction_id="a", phases=1, grid_phase=Phase.L1)]
    result = allocate_site(site, sessions, now=NOON)
    assert result.panels["main"].phase_budget_a == 16.0
    assert result.sessions["a"].allocated_amps_per_phase == 16.0
    assert result.limits["a"] == SessionLimit(
        reason=LimitReason.PHASE, panel_id="main", phase=Phase.L1
    )
    lifted = Site(panels=[replace(site.panels[0], time_of_use_windows=(LIFT,))])
    result = allocate_site(lifted, sessions, now=NOON)
    assert result.panels["main"].phase_budget_a == 32.0
    assert result.sessions["a"].allocated_amps_per_phase == 32.0


def test_a_session_without_hardware_maximum_is_uncapped() -> None:
    engine = SmartChargingEngine("SITE", 11, Recorder(), safety_margin_pct=0)
    session = engine.add_session(transaction_id="a", client_id="CP-1")
    assert session.max_hardware_power_kw is None
    assert session.ceiling_kw == float("inf")
    assert kw(engine.optimize(now=NOON)) == {"a": 11.0}
    assert engine.last_limits["a"] == SessionLimit(
        reason=LimitReason.BREAKER, panel_id="SITE"
    )
    # A car cap still holds; the snapshot keeps the missing maximum.
    engine.update_session("a", max_ev_acceptance_power_kw=7.4)
    assert kw(engine.optimize(now=NOON)) == {"a": 7.4}
    assert engine.last_limits["a"].reason is LimitReason.EV_CAP
    assert engine.snapshot()["sessions"][0]["max_hardware_power_kw"] is None


def test_priorities_of_zero_share_equally() -> None:
    engine = SmartChargingEngine(
        "SITE", 30, Recorder(), algorithm=Strategy.PRIORITY, safety_margin_pct=0
    )
    for tx in ("a", "b", "c"):
        engine.add_session(transaction_id=tx, max_hardware_power_kw=22, priority=0)
    assert kw(engine.optimize(now=NOON)) == {"a": 10.0, "b": 10.0, "c": 10.0}


def test_a_priority_of_zero_gets_what_the_others_leave() -> None:
    engine = SmartChargingEngine(
        "SITE", 20, Recorder(), algorithm=Strategy.PRIORITY, safety_margin_pct=0
    )
    engine.add_session(transaction_id="none", max_hardware_power_kw=22, priority=0)
    engine.add_session(transaction_id="some", max_hardware_power_kw=11, priority=1)
    result = kw(engine.optimize(now=NOON))
    assert result["some"] == 11.0
    assert result["none"] == pytest.approx(9.0, abs=0.002)
    # Admission ranks it last: on a panel with room for one minimum it is paused.
    engine.set_grid_limit(5)
    profiles = {p.transaction_id: p for p in engine.optimize(now=NOON)}
    assert profiles["none"].paused and not profiles["some"].paused
    assert engine.last_limits["none"].reason is LimitReason.PAUSED_PRIORITY


def test_split_phase_forty_amps_is_nine_point_six_kilowatts() -> None:
    """North-American split phase: two 120 V legs, 40 A at 240 V is 9.6 kW."""
    engine = SmartChargingEngine(
        "HOUSE", 12, Recorder(), safety_margin_pct=0, phases=2, voltage_v=120
    )
    session = engine.add_session(transaction_id="a", max_hardware_power_kw=9.6)
    assert session.phases == 2
    assert session.min_kw == pytest.approx(1.44)  # 6 A on 2 x 120 V
    assert session.phase_currents(9.6) == pytest.approx((40.0, 40.0, 0.0))
    (profile,) = engine.optimize(now=NOON)
    assert profile.allocated_kw == 9.6
    assert profile.allocated_amps_per_phase == 40.0
    assert profile.phases == 2


def test_split_phase_counts_on_both_legs_of_a_per_phase_limit() -> None:
    site = Site(
        panels=[Panel(id="main", limit_kw=50, phase_limit_a=48, safety_margin_pct=0)],
        voltage_v=120,
    )
    sessions = [
        Session(transaction_id="ev", phases=2, voltage_v=120),
        Session(transaction_id="l2", phases=1, voltage_v=120, grid_phase=Phase.L2),
    ]
    result = allocate_site(site, sessions, now=NOON)
    # Equal power: 3.84 kW each, 16 A on both legs and 32 A on L2; L2 carries both.
    assert result.sessions["ev"].allocated_kw == result.sessions["l2"].allocated_kw
    assert result.sessions["ev"].allocated_amps_per_phase == 16.0
    assert result.sessions["l2"].allocated_amps_per_phase == 32.0
    assert result.panels["main"].allocated_phase_a == (16.0, 48.0, 0.0)
    assert result.panels["main"].full_phases == (Phase.L2,)


def test_grid_over_committed_carries_the_seed_fields() -> None:
    engine = SmartChargingEngine("SITE", 10, Recorder(), safety_margin_pct=10)
    events: list[GridOverCommitted] = []
    engine.on("grid_over_committed", events.append)
    vip = engine.add_session(
        transaction_id="vip", max_hardware_power_kw=22, managed=False
    )
    first = engine.add_session(
        transaction_id="a", max_hardware_power_kw=22, min_charge_rate_kw=5
    )
    second = engine.add_session(
        transaction_id="b", max_hardware_power_kw=22, min_charge_rate_kw=5
    )
    engine.optimize(now=NOON)
    (event,) = events
    assert event.feasible  # pausing b keeps the grid limit
    assert event.requested_kw == 10.0 == event.required_kw
    assert event.effective_limit_kw == 9.0
    assert event.available_kw == 9.0
    assert event.paused == ("b",)
    assert event.starved_sessions == (second,)
    # Load the engine cannot limit above the budget: not feasible, everyone starved.
    engine.update_session(vip.transaction_id, measured_power_kw=12)
    engine.optimize(now=NOON)
    event = events[-1]
    assert not event.feasible
    assert event.available_kw == pytest.approx(-3.0)
    assert event.effective_limit_kw == 9.0
    assert {s.transaction_id for s in event.starved_sessions} == {
        first.transaction_id,
        second.transaction_id,
    }
