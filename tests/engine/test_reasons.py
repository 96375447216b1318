"""Limit reasons: what froze each session in the solve, and which panel budgets are full."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.smart_charge.engine import (
    BudgetReason,
    LimitReason,
    Panel,
    Phase,
    Session,
    SessionLimit,
    Site,
    SiteAllocation,
    Strategy,
    TimeOfUseWindow,
    allocate_site,
)

from .helpers import check_invariants, loads, subtree
from .test_properties import sites

NOW = datetime(2025, 1, 15, 12, tzinfo=UTC)
W_STEP = 0.001  # kW
A_STEP = 0.1  # A
TOL = 1e-6


def s(tx: Any, panel: str | None = None, **kwargs: Any) -> Session:
    kwargs.setdefault("max_hardware_power_kw", 22)
    return Session(transaction_id=tx, panel_id=panel, **kwargs)


def solve(site: Site, sessions: list[Session]) -> SiteAllocation:
    result = allocate_site(site, sessions, now=NOW)
    if all(p.strategy is not Strategy.TIME_OF_USE for p in site.panels):
        check_invariants(site, sessions, result)  # it knows no time of use
    check_reasons(site, sessions, result)
    return result


def one(limit_kw: float, **kwargs: Any) -> Site:
    kwargs.setdefault("safety_margin_pct", 0)
    return Site(panels=[Panel(id="main", limit_kw=limit_kw, **kwargs)])


def test_home_1_is_held_by_phase_l2_of_the_main_fuse() -> None:
    """Issue 14: 6.45 kW headroom, HOME-1 at 6 A, because L2 of the main fuse is full."""
    site = Site(
        panels=[
            Panel(
                id="main",
                limit_kw=17.3,
                phase_limit_a=25,  # 23.75 A per phase after the 5 % margin
                unmanaged_load_kw=4.454,
                unmanaged_phase_a=(3.0, 11.7, 4.7),  # the house loads L2
            )
        ]
    )
    sessions = [
        s("HOME-1", max_hardware_power_kw=11.04),  # three-phase, 16 A
        s("HOME-2", max_hardware_power_kw=7.36, phases=1, grid_phase=Phase.L2),
    ]
    result = solve(site, sessions)
    assert result.sessions["HOME-1"].allocated_amps_per_phase == 6.0
    assert result.sessions["HOME-2"].allocated_amps_per_phase == 6.0
    main = result.panels["main"]
    assert main.headroom_kw == pytest.approx(6.45, abs=0.01)
    phase_l2 = SessionLimit(reason=LimitReason.PHASE, panel_id="main", phase=Phase.L2)
    assert result.limits["HOME-1"] == phase_l2
    assert result.limits["HOME-2"] == phase_l2
    # The panel names its per-phase limit, not its kW (the old reason said "load").
    assert main.full_phases == (Phase.L2,)
    assert not main.full_kw
    assert main.budget_reason is BudgetReason.PHASE


@pytest.mark.parametrize(
    ("site", "sessions", "expected"),
    [
        pytest.param(
            one(50),
            [s("a", max_hardware_power_kw=7.4)],
            {"a": SessionLimit(reason=LimitReason.CHARGER_MAXIMUM)},
            id="charger_maximum",
        ),
        pytest.param(
            one(50),
            [s("a", max_ev_acceptance_power_kw=3.7)],
            {"a": SessionLimit(reason=LimitReason.EV_CAP)},
            id="ev_cap",
        ),
        pytest.param(
            one(50),
            [s("a", max_ev_acceptance_power_kw=0)],  # a full battery: paused
            {"a": SessionLimit(reason=LimitReason.EV_CAP)},
            id="ev_cap_paused",
        ),
        pytest.param(
            one(50),
            [s("a", user_cap_kw=5)],
            {"a": SessionLimit(reason=LimitReason.USER_CAP)},
            id="user_cap",
        ),
        pytest.param(
            one(50),
            [s("a", user_cap_kw=5, cap_from_plan=True)],  # the plan's current now
            {"a": SessionLimit(reason=LimitReason.CHARGING_PLAN)},
            id="charging_plan",
        ),
        pytest.param(
            one(11),
            [s("a"), s("b", max_hardware_power_kw=3.7)],
            {
                "a": SessionLimit(reason=LimitReason.BREAKER, panel_id="main"),
                "b": SessionLimit(reason=LimitReason.CHARGER_MAXIMUM),
            },
            id="breaker",
        ),
        pytest.param(
            Site(
                panels=[
                    Panel(id="main", limit_kw=50, safety_margin_pct=0),
                    Panel(
                        id="garage", limit_kw=7, parent_id="main", safety_margin_pct=0
                    ),
                ]
            ),
            [s("a", "garage"), s("b")],
            {
                "a": SessionLimit(reason=LimitReason.BREAKER, panel_id="garage"),
                "b": SessionLimit(reason=LimitReason.CHARGER_MAXIMUM),
            },
            id="breaker_of_a_sub_panel",
        ),
        pytest.param(
            Site(
                panels=[
                    Panel(
                        id="main",
                        limit_kw=50,
                        phase_limit_a=32,
                        safety_margin_pct=0,
                        unmanaged_phase_a=(0, 0, 20),
                    )
                ]
            ),
            [
                s("a", phases=1, grid_phase=Phase.L3),
                s("b", phases=1, max_hardware_power_kw=3.7),
            ],
            {
                "a": SessionLimit(
                    reason=LimitReason.PHASE, panel_id="main", phase=Phase.L3
                ),
                "b": SessionLimit(reason=LimitReason.CHARGER_MAXIMUM),
            },
            id="phase",
        ),
        pytest.param(
            one(3, budget_reason=BudgetReason.SOLAR),
            [s("a")],
            {"a": SessionLimit(reason=LimitReason.SOLAR, panel_id="main")},
            id="solar",
        ),
        pytest.param(
            one(0, budget_reason=BudgetReason.SOLAR),
            [s("a")],
            {"a": SessionLimit(reason=LimitReason.SOLAR, panel_id="main")},
            id="solar_paused",
        ),
        pytest.param(
            one(0, budget_reason=BudgetReason.TARIFF),
            [s("a")],
            {"a": SessionLimit(reason=LimitReason.TARIFF, panel_id="main")},
            id="tariff_paused",
        ),
        pytest.param(
            one(
                22,
                strategy=Strategy.TIME_OF_USE,
                time_of_use_windows=(
                    TimeOfUseWindow(
                        peak_start_hour=11, peak_end_hour=14, peak_power_multiplier=0.5
                    ),
                ),
            ),
            [s("a")],
            {"a": SessionLimit(reason=LimitReason.TIME_OF_USE, panel_id="main")},
            id="time_of_use",
        ),
        pytest.param(
            one(
                22,
                strategy=Strategy.TIME_OF_USE,
                time_of_use_windows=(
                    TimeOfUseWindow(
                        peak_start_hour=17, peak_end_hour=21, peak_power_multiplier=0.5
                    ),
                ),
            ),
            [s("a")],
            {"a": SessionLimit(reason=LimitReason.BREAKER, panel_id="main")},
            id="time_of_use_outside_its_window",
        ),
        pytest.param(
            one(5),
            [
                s("low", min_charge_rate_kw=4.14),
                s("high", min_charge_rate_kw=4.14, priority=2),
            ],
            {
                "low": SessionLimit(
                    reason=LimitReason.PAUSED_PRIORITY, panel_id="main"
                ),
                "high": SessionLimit(reason=LimitReason.BREAKER, panel_id="main"),
            },
            id="paused_for_priority",
        ),
        pytest.param(
            one(5),
            [
                s("old", min_charge_rate_kw=4.14, sequence=1),
                s("new", min_charge_rate_kw=4.14, sequence=2),
            ],
            {
                "old": SessionLimit(reason=LimitReason.BREAKER, panel_id="main"),
                "new": SessionLimit(reason=LimitReason.PAUSED_NO_ROOM, panel_id="main"),
            },
            id="paused_no_room",
        ),
        pytest.param(
            one(3),
            [
                s("big", min_charge_rate_kw=4.14, priority=2),
                s("small", min_charge_rate_kw=4.14),
            ],
            {
                "big": SessionLimit(reason=LimitReason.PAUSED_NO_ROOM, panel_id="main"),
                # The more important one did not fit either: no room, not priority.
                "small": SessionLimit(
                    reason=LimitReason.PAUSED_NO_ROOM, panel_id="main"
                ),
            },
            id="paused_no_room_for_anyone",
        ),
        pytest.param(
            one(22),
            [
                s("vip", managed=False, measured_power_kw=7),
                s("gone", managed=False, offline=True, measured_power_kw=4),
                s("a"),
            ],
            {
                "vip": SessionLimit(reason=LimitReason.NOT_MANAGED),
                "gone": SessionLimit(reason=LimitReason.OFFLINE),
                "a": SessionLimit(reason=LimitReason.BREAKER, panel_id="main"),
            },
            id="not_managed_and_offline",
        ),
    ],
)
def test_limit_reasons(
    site: Site, sessions: list[Session], expected: dict[str, SessionLimit]
) -> None:
    assert dict(solve(site, sessions).limits) == expected


def test_every_reason_is_covered_above() -> None:
    """The tables of this module name every limit reason at least once."""
    source = Path(__file__).read_text(encoding="utf-8")
    for reason in LimitReason:
        assert f"LimitReason.{reason.name}" in source, reason


def test_split_phase_session_is_held_by_either_leg() -> None:
    """A split-phase car loads L1 and L2: a full L2 holds it."""
    site = Site(
        panels=[
            Panel(
                id="main",
                limit_kw=40,
                phase_limit_a=100,
                safety_margin_pct=0,
                unmanaged_phase_a=(0, 70, 0),
            )
        ],
        voltage_v=120,
    )
    sessions = [s("a", phases=2, voltage_v=120, max_hardware_power_kw=9.6)]
    result = solve(site, sessions)
    assert result.sessions["a"].allocated_amps_per_phase == 30.0
    assert result.limits["a"] == SessionLimit(
        reason=LimitReason.PHASE, panel_id="main", phase=Phase.L2
    )
    assert result.panels["main"].allocated_phase_a == (30.0, 30.0, 0.0)


def check_reasons(site: Site, sessions: list[Session], result: SiteAllocation) -> None:
    """Each reason's constraint is really tight (or really had no room)."""
    assert set(result.limits) == {x.transaction_id for x in sessions}
    panels = {p.id: p for p in site.panels}
    below: dict[str, list[Session]] = {}
    for panel in site.panels:
        ids = subtree(site, panel.id)
        below[panel.id] = [
            x for x in sessions if x.managed and (x.panel_id or site.root.id) in ids
        ]
    for x in sessions:
        limit = result.limits[x.transaction_id]
        if not x.managed:
            assert limit.reason is (
                LimitReason.OFFLINE if x.offline else LimitReason.NOT_MANAGED
            )
            continue
        profile = result.sessions[x.transaction_id]
        reason = limit.reason
        if reason in (
            LimitReason.CHARGER_MAXIMUM,
            LimitReason.EV_CAP,
            LimitReason.USER_CAP,
            LimitReason.CHARGING_PLAN,
        ):
            cap = {
                LimitReason.CHARGER_MAXIMUM: x.max_hardware_power_kw,
                LimitReason.EV_CAP: x.max_ev_acceptance_power_kw,
                LimitReason.USER_CAP: x.user_cap_kw,
                LimitReason.CHARGING_PLAN: x.user_cap_kw,
            }[reason]
            assert (reason is LimitReason.CHARGING_PLAN) is (
                reason in (LimitReason.USER_CAP, LimitReason.CHARGING_PLAN)
                and x.cap_from_plan
            )
            assert cap is not None and cap == pytest.approx(x.ceiling_kw)
            assert limit.panel_id is None and limit.phase is None
            if profile.paused:  # a ceiling below the minimum
                assert x.ceiling_kw < x.min_kw or x.ceiling_kw <= 0
            else:  # at its ceiling
                assert profile.allocated_kw >= x.ceiling_kw - W_STEP - TOL
            continue
        assert limit.panel_id is not None
        panel = panels[limit.panel_id]
        report = result.panels[panel.id]
        count = len(below[panel.id])
        assert x in below[panel.id]
        if limit.phase is None:
            used = report.allocated_kw + report.unmanaged_kw
            budget = report.budget_kw
            slack = count * W_STEP
        else:
            p = limit.phase.position
            assert panel.phase_limit_a is not None and loads(x)[p]
            assert report.phase_budget_a is not None
            used = report.allocated_phase_a[p] + report.unmanaged_phase_a[p]
            budget = report.phase_budget_a
            slack = count * A_STEP
        if reason in (LimitReason.PAUSED_PRIORITY, LimitReason.PAUSED_NO_ROOM) or (
            profile.paused
        ):
            assert profile.paused
            need = x.min_kw if limit.phase is None else x.min_kw * x.amps_per_kw()
            # Its minimum did not fit beside what was admitted before it.
            assert used + slack + need > budget - TOL, (x, limit, used, budget)
            if reason is LimitReason.PAUSED_PRIORITY:
                assert any(
                    o.priority > x.priority
                    and not result.sessions[o.transaction_id].paused
                    for o in below[panel.id]
                )
            continue
        assert not profile.paused
        # The constraint that froze it is tight.
        assert used >= budget - slack - TOL, (x, limit, used, budget)
        if limit.phase is None:
            assert report.full_kw
        else:
            assert limit.phase in report.full_phases
        kind = {
            BudgetReason.SOLAR: LimitReason.SOLAR,
            BudgetReason.TARIFF: LimitReason.TARIFF,
        }.get(panel.budget_reason)
        if limit.phase is not None:
            assert reason is LimitReason.PHASE
        elif kind is not None:
            assert reason is kind
        else:
            assert reason in (LimitReason.BREAKER, LimitReason.TIME_OF_USE)


budget_reasons = st.sampled_from(
    [BudgetReason.LIMIT, BudgetReason.LIMIT, BudgetReason.SOLAR, BudgetReason.TARIFF]
)


@st.composite
def roomy_sites(draw: st.DrawFn) -> tuple[Site, list[Session]]:
    """The random trees of the invariant tests, but with budgets that let most cars
    charge, so that breakers, phases and priorities bind more often than "no room"."""
    site, sessions = draw(sites())
    panels = [
        replace(
            panel,
            limit_kw=draw(st.floats(5, 80)),
            phase_limit_a=None
            if panel.phase_limit_a is None
            else draw(st.floats(16, 100)),
            unmanaged_load_kw=min(panel.unmanaged_load_kw, 2.0),
            unmanaged_phase_a=None,
        )
        for panel in site.panels
    ]
    return Site(panels=panels), sessions


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sites() | roomy_sites(),
    st.lists(budget_reasons, min_size=8, max_size=8),
    st.booleans(),
)
def test_reasons_name_a_tight_constraint(
    case: tuple[Site, list[Session]],
    reasons: list[BudgetReason],
    offline: bool,
) -> None:
    site, sessions = case
    site = Site(
        panels=[
            replace(panel, budget_reason=reason)
            for panel, reason in zip(site.panels, reasons, strict=False)
        ]
    )
    if offline:
        sessions = [replace(x, offline=True) if not x.managed else x for x in sessions]
    result = allocate_site(site, sessions, now=NOW)
    check_reasons(site, sessions, result)
