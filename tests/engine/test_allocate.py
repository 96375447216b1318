"""Table tests of the site solver, the model's validation and transition plans."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from custom_components.smart_charge.engine import (
    EngineConfigError,
    LimitChange,
    Panel,
    PanelAllocation,
    Phase,
    Session,
    Site,
    Strategy,
    TimeOfUseWindow,
    allocate_site,
    plan_transition,
)
from custom_components.smart_charge.engine.model import time_of_use_multiplier

from .helpers import check_invariants

NOW = datetime(2025, 1, 15, 12, tzinfo=UTC)


def s(tx: Any, panel: str | None = None, **kwargs: Any) -> Session:
    kwargs.setdefault("max_hardware_power_kw", 22)
    return Session(transaction_id=tx, panel_id=panel, **kwargs)


def kw(site: Site, sessions: list[Session]) -> dict[Any, float]:
    result = allocate_site(site, sessions, now=NOW)
    check_invariants(site, sessions, result)
    return {k: p.allocated_kw for k, p in result.sessions.items()}


def test_seed_site_in_one_solve_flows_unused_power_to_siblings() -> None:
    site = Site(
        panels=[
            Panel(id="main", limit_kw=100, safety_margin_pct=0),
            Panel(id="floor1", limit_kw=80, parent_id="main", safety_margin_pct=0),
            Panel(id="floor2", limit_kw=80, parent_id="main", safety_margin_pct=0),
            Panel(id="vip", limit_kw=50, parent_id="main", safety_margin_pct=0),
        ]
    )
    sessions = [
        s("a", "floor1", max_hardware_power_kw=50),
        s("b", "floor1", max_hardware_power_kw=50),
        s("c", "floor2", max_hardware_power_kw=7.4),
        s("v", "vip", managed=False, measured_power_kw=20),
    ]
    result = allocate_site(site, sessions, now=NOW)
    check_invariants(site, sessions, result)
    assert {k: p.allocated_kw for k, p in result.sessions.items()} == {
        "a": 36.3,
        "b": 36.3,
        "c": 7.4,
    }
    assert "v" not in result.sessions
    main = result.panels["main"]
    assert main.unmanaged_kw == 20 and main.budget_kw == 100
    assert main.headroom_kw == pytest.approx(0.0)
    assert result.panels["vip"].allocated_kw == 0 and not result.over_committed


def test_single_phase_chargers_on_different_phases_share_a_phase_breaker() -> None:
    site = Site(
        panels=[Panel(id="p", limit_kw=100, phase_limit_a=32, safety_margin_pct=0)]
    )
    sessions = [
        s(1, phases=1, grid_phase=Phase.L1, max_hardware_power_kw=7.4),
        s(2, phases=1, grid_phase="L2", max_hardware_power_kw=7.4),
        s(3, phases=1, grid_phase="L3", max_hardware_power_kw=7.4),
        s(4, phases=1, grid_phase="L3", max_hardware_power_kw=7.4),
    ]
    result = allocate_site(site, sessions, now=NOW)
    check_invariants(site, sessions, result)
    amps = {k: p.allocated_amps_per_phase for k, p in result.sessions.items()}
    assert amps == {1: 32.0, 2: 32.0, 3: 16.0, 4: 16.0}
    assert result.panels["p"].allocated_phase_a == (32.0, 32.0, 32.0)


def test_three_phase_blocked_by_one_loaded_phase() -> None:
    site = Site(
        panels=[
            Panel(
                id="p",
                limit_kw=100,
                phase_limit_a=32,
                safety_margin_pct=0,
                unmanaged_phase_a=(0.0, 20.0, 0.0),
            )
        ]
    )
    sessions = [s("3ph"), s("1ph", phases=1, grid_phase="L1")]
    result = allocate_site(site, sessions, now=NOW)
    check_invariants(site, sessions, result)
    # Equal kW: L1 carries 5.52 kW three-phase (8 A) plus 5.52 kW single-phase (24 A).
    assert result.sessions["3ph"].allocated_amps_per_phase == 8.0
    assert result.sessions["1ph"].allocated_amps_per_phase == 24.0


def test_zero_kw_panel_pauses_everything_below() -> None:
    site = Site(
        panels=[
            Panel(id="root", limit_kw=50),
            Panel(id="off", limit_kw=0, parent_id="root"),
        ]
    )
    sessions = [s(1, "off"), s(2, "off"), s(3)]
    result = allocate_site(site, sessions, now=NOW)
    check_invariants(site, sessions, result)
    assert (
        result.sessions[1].paused
        and result.sessions[2].paused
        and not result.sessions[3].paused
    )
    assert result.paused == (2, 1) and result.over_committed  # least important first


def test_unmanaged_load_above_budget_is_over_committed() -> None:
    site = Site(
        panels=[Panel(id="root", limit_kw=10, unmanaged_load_kw=12, phase_limit_a=10)]
    )
    result = allocate_site(site, [], now=NOW)
    assert result.over_committed and result.panels["root"].headroom_kw < 0
    site = Site(
        panels=[
            Panel(
                id="root", limit_kw=100, phase_limit_a=10, unmanaged_phase_a=(0, 20, 0)
            )
        ]
    )
    assert allocate_site(site, [], now=NOW).over_committed


def test_priority_panel_and_ceiling_below_minimum() -> None:
    site = Site(
        panels=[
            Panel(
                id="root", limit_kw=40, strategy=Strategy.PRIORITY, safety_margin_pct=0
            )
        ]
    )
    sessions = [
        s("a", priority=3, max_hardware_power_kw=50),
        s("b", priority=1, max_hardware_power_kw=50),
        s("tiny", max_hardware_power_kw=22, max_ev_acceptance_power_kw=1.0),
        s("zero", max_hardware_power_kw=0, min_charge_rate_kw=0),
    ]
    result = allocate_site(site, sessions, now=NOW)
    check_invariants(site, sessions, result)
    assert (
        result.sessions["a"].allocated_kw == 30
        and result.sessions["b"].allocated_kw == 10
    )
    assert result.sessions["tiny"].paused and result.paused == ()
    assert result.sessions["zero"].paused


def test_time_of_use_panel_in_site_time_zone() -> None:
    window = TimeOfUseWindow(
        peak_start_hour=17, peak_end_hour=21, peak_power_multiplier=0.25
    )
    site = Site(
        panels=[
            Panel(
                id="root",
                limit_kw=40,
                safety_margin_pct=0,
                strategy="time_of_use",  # type: ignore[arg-type]  # read as a Strategy
                time_of_use_windows=(window,),
            )
        ],
        time_zone="America/New_York",
    )
    sessions = [s(1, max_hardware_power_kw=50)]
    assert (
        allocate_site(site, sessions, now=datetime(2025, 1, 15, 23, tzinfo=UTC))
        .sessions[1]
        .allocated_kw
        == 10
    )
    assert (
        allocate_site(site, sessions, now=datetime(2025, 1, 15, 17, tzinfo=UTC))
        .sessions[1]
        .allocated_kw
        == 40
    )
    # Naive times are read in the site's zone; no windows -> 1.
    assert (
        time_of_use_multiplier(
            (window,),
            datetime(2025, 1, 1, 18, tzinfo=UTC).replace(tzinfo=None),
            site.zone,
        )
        == 0.25
    )
    assert time_of_use_multiplier((), NOW, site.zone) == 1.0
    overlapping = (
        window,
        TimeOfUseWindow(
            peak_start_hour=18, peak_end_hour=19, peak_power_multiplier=0.1
        ),
    )
    assert (
        time_of_use_multiplier(
            overlapping,
            datetime(2025, 1, 1, 18, 30, tzinfo=UTC).replace(tzinfo=None),
            site.zone,
        )
        == 0.1
    )
    assert allocate_site(site, sessions).sessions[1].allocated_kw in (10, 40)


def test_equal_sessions_started_at_decide_who_pauses() -> None:
    site = Site(panels=[Panel(id="root", limit_kw=9, safety_margin_pct=0)])
    old = datetime(2025, 1, 1, tzinfo=UTC)
    sessions = [s("new", started_at=NOW), s("old", started_at=old), s("x")]
    result = allocate_site(site, sessions, now=NOW)
    assert result.paused == ("new",)


@pytest.mark.parametrize(
    ("panels", "message"),
    [
        (
            [Panel(id="a", limit_kw=1), Panel(id="a", limit_kw=1, parent_id="a")],
            "duplicate",
        ),
        ([Panel(id="a", limit_kw=1), Panel(id="b", limit_kw=1)], "exactly one root"),
        ([], "exactly one root"),
        (
            [Panel(id="a", limit_kw=1), Panel(id="b", limit_kw=1, parent_id="zz")],
            "unknown parent",
        ),
        (
            [
                Panel(id="r", limit_kw=1),
                Panel(id="a", limit_kw=1, parent_id="b"),
                Panel(id="b", limit_kw=1, parent_id="a"),
            ],
            "cycle",
        ),
    ],
)
def test_site_validation(panels: list[Panel], message: str) -> None:
    with pytest.raises(EngineConfigError, match=message):
        Site(panels=panels)


def test_allocate_validation() -> None:
    site = Site(panels=[Panel(id="root", limit_kw=5)], time_zone="UTC")
    assert site.root.id == "root"
    with pytest.raises(EngineConfigError, match="duplicate"):
        allocate_site(site, [s(1), s(1)])
    with pytest.raises(EngineConfigError, match="unknown panel"):
        allocate_site(site, [s(1, "nope")])
    with pytest.raises(EngineConfigError, match="time zone"):
        Site(panels=[Panel(id="root", limit_kw=5)], time_zone="Nowhere/City")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": ""},
        {"limit_kw": -1},
        {"limit_kw": float("inf")},
        {"limit_kw": "10"},
        {"phase_limit_a": -3},
        {"safety_margin_pct": 100},
        {"unmanaged_load_kw": -1},
        {"unmanaged_phase_a": (1.0, 2.0)},
        {"unmanaged_phase_a": (1.0, 2.0, -3.0)},
        {"strategy": "cheapest"},
        {"time_of_use_windows": ({"peak_start_hour": 1},)},
        {"time_of_use_windows": (42,)},
    ],
)
def test_panel_validation(kwargs: dict[str, Any]) -> None:
    values: dict[str, Any] = {"id": "p", "limit_kw": 10}
    values.update(kwargs)
    with pytest.raises(EngineConfigError):
        Panel(**values)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"transaction_id": 1.5},
        {"transaction_id": True},
        {"phases": 4},
        {"max_hardware_power_kw": -1},
        {"voltage_v": 0},
        {"priority": -1},
        {"priority": True},
        {"offline": True},  # an offline session needs managed=False
        {"grid_phase": "L4"},
        {"connector_id": -1},
        {"user_cap_kw": float("nan")},
        {"measured_power_kw": -2},
    ],
)
def test_session_validation(kwargs: dict[str, Any]) -> None:
    values: dict[str, Any] = {"transaction_id": "t", "max_hardware_power_kw": 11}
    values.update(kwargs)
    with pytest.raises(EngineConfigError):
        Session(**values)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"peak_start_hour": 25, "peak_end_hour": 3, "peak_power_multiplier": 1},
        {"peak_start_hour": 3, "peak_end_hour": 3, "peak_power_multiplier": 1},
        {"peak_start_hour": 0, "peak_end_hour": 24, "peak_power_multiplier": 1},
        {"peak_start_hour": 1.5, "peak_end_hour": 3, "peak_power_multiplier": 1},
        {"peak_start_hour": 1, "peak_end_hour": 3, "peak_power_multiplier": -1},
    ],
)
def test_window_validation(kwargs: dict[str, Any]) -> None:
    with pytest.raises(EngineConfigError):
        TimeOfUseWindow(**kwargs)


def test_window_hours_and_round_trip() -> None:
    wrap = TimeOfUseWindow(
        peak_start_hour=22, peak_end_hour=6, peak_power_multiplier=0.5
    )
    assert [h for h in range(24) if wrap.contains_hour(h)] == [0, 1, 2, 3, 4, 5, 22, 23]
    assert TimeOfUseWindow.coerce(wrap.as_dict()) == wrap
    session = s("x", phases=1, grid_phase="L2", started_at=NOW, user_cap_kw=3)
    assert Session.from_dict(session.as_dict()) == session
    assert session.phase_currents(2.3) == pytest.approx((0.0, 10.0, 0.0))
    assert session.min_kw == pytest.approx(1.38)


def test_transition_plan_table() -> None:
    plan = plan_transition(
        {"a": 10.0, "b": 5.0, "c": 7.0, "z": 0.0},
        {"a": 4.0, "b": 9.0, "c": 7.0, "d": 3.0, "e": 0.0},
    )
    assert plan.decreases == [LimitChange(key="a", old=10.0, new=4.0)]
    assert plan.increases == [
        LimitChange(key="d", old=0.0, new=3.0),
        LimitChange(key="b", old=5.0, new=9.0),
    ]
    removed = plan_transition({"a": 6.0}, {})
    assert (
        removed.decreases == [LimitChange(key="a", old=6.0, new=0.0)]
        and not removed.increases
    )
    assert plan_transition({"a": 1.0}, {"a": 1.0}).is_empty


def test_panel_totals_add_up_the_rounded_values_sent() -> None:
    # 10 kW over three sessions: 3.333… kW each, sent as 3333 W and 4.8 A (3.312 kW).
    site = Site(
        panels=[
            Panel(id="main", limit_kw=10, safety_margin_pct=0),
            Panel(id="sub", limit_kw=10, parent_id="main", safety_margin_pct=0),
        ]
    )
    sessions = [
        s(tx, panel, min_charge_rate_kw=1.4)
        for tx, panel in enumerate(["sub", "sub", None])
    ]
    result = allocate_site(site, sessions, now=NOW)
    check_invariants(site, sessions, result)
    for profile in result.sessions.values():
        assert profile.allocated_w == 3333
        assert profile.allocated_kw == 3.333
        assert profile.allocated_amps_per_phase == 4.8
    main, sub = result.panels["main"], result.panels["sub"]
    assert main.allocated_kw == pytest.approx(9.999, abs=1e-12)
    assert main.headroom_kw == pytest.approx(0.001, abs=1e-12)
    assert main.allocated_phase_a == pytest.approx((14.4, 14.4, 14.4), abs=1e-12)
    assert sub.allocated_kw == pytest.approx(6.666, abs=1e-12)
    assert sub.headroom_kw == pytest.approx(3.334, abs=1e-12)
    assert sub.allocated_phase_a == pytest.approx((9.6, 9.6, 9.6), abs=1e-12)


def test_fast_panel_allocation_equals_the_dataclass() -> None:
    fields: dict[str, Any] = {
        "allocated_kw": 1.5,
        "unmanaged_kw": 0.5,
        "budget_kw": 3.0,
        "headroom_kw": 1.0,
        "allocated_phase_a": (1.0, 2.0, 3.0),
        "unmanaged_phase_a": (0.1, 0.2, 0.3),
        "phase_budget_a": 16.0,
    }
    fast = PanelAllocation._fast(*fields.values())
    assert fast == PanelAllocation(**fields)
    assert hash(fast) == hash(PanelAllocation(**fields))
    assert repr(fast) == repr(PanelAllocation(**fields))


def test_site_derives_children_and_ancestors() -> None:
    site = Site(
        panels=[
            Panel(id="b", limit_kw=1, parent_id="a"),
            Panel(id="a", limit_kw=1),
            Panel(id="c", limit_kw=1, parent_id="b"),
            Panel(id="d", limit_kw=1, parent_id="a"),
        ]
    )
    assert site.children == ((2,), (0, 3), (), ())
    assert site.ancestors == ((0, 1), (1,), (2, 0, 1), (3, 1))
