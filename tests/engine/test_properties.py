"""Hypothesis properties: the invariants hold on random trees."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.smart_charge.engine import (
    Panel,
    Phase,
    Session,
    Site,
    Strategy,
    allocate_site,
    plan_transition,
)

from .helpers import check_invariants, loads, subtree

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


@st.composite
def sites(draw: st.DrawFn) -> tuple[Site, list[Session]]:
    count = draw(st.integers(1, 8))
    panels: list[Panel] = []
    depth: dict[str, int] = {}
    for k in range(count):
        parents = [p.id for p in panels if depth[p.id] < 4]
        parent = None if k == 0 else draw(st.sampled_from(parents))
        pid = f"P{k}"
        depth[pid] = 1 if parent is None else depth[parent] + 1
        has_phase_a = draw(st.booleans())
        unmanaged_a = draw(
            st.none() | st.tuples(*(st.floats(0, 20, allow_nan=False),) * 3)
        )
        panels.append(
            Panel(
                id=pid,
                limit_kw=draw(st.sampled_from([0.0, 5.0, 11.0]) | st.floats(0, 120)),
                phase_limit_a=draw(st.floats(0, 80)) if has_phase_a else None,
                safety_margin_pct=draw(st.sampled_from([0.0, 5.0, 10.0])),
                strategy=draw(
                    st.sampled_from([Strategy.EQUAL_SHARE, Strategy.PRIORITY])
                ),
                unmanaged_load_kw=draw(
                    st.sampled_from([0.0, 0.0, 2.5]) | st.floats(0, 10)
                ),
                unmanaged_phase_a=unmanaged_a,
                parent_id=parent,
            )
        )
    site = Site(panels=panels)
    n = draw(st.integers(0, 50))
    sequences = draw(st.permutations(list(range(1, n + 1))))
    sessions = []
    for i in range(n):
        phases = draw(st.sampled_from([1, 3, 3, 2]))
        sessions.append(
            Session(
                transaction_id=i if draw(st.booleans()) else f"tx-{i}",
                client_id=f"CP-{i}",
                max_hardware_power_kw=draw(
                    st.sampled_from([3.7, 7.4, 11.0, 22.0]) | st.floats(0, 30)
                ),
                max_ev_acceptance_power_kw=draw(st.none() | st.floats(0.5, 22)),
                user_cap_kw=draw(st.none() | st.floats(0, 22)),
                cap_from_plan=draw(st.booleans()),
                min_charge_rate_kw=draw(
                    st.none() | st.sampled_from([1.4, 4.14]) | st.floats(0.5, 6)
                ),
                priority=draw(st.sampled_from([1, 1, 2, 3, 5])),
                phases=phases,
                grid_phase=draw(st.sampled_from([None, Phase.L1, Phase.L2, Phase.L3])),
                panel_id=draw(st.sampled_from([None, *[p.id for p in panels]])),
                managed=draw(st.sampled_from([True, True, True, True, False])),
                measured_power_kw=draw(st.floats(0, 11)),
                sequence=sequences[i],
            )
        )
    return site, sessions


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_invariants_on_random_trees(case: tuple[Site, list[Session]]) -> None:
    site, sessions = case
    result = allocate_site(site, sessions, now=NOW)
    check_invariants(site, sessions, result)
    # Deterministic for the same input.
    assert allocate_site(site, sessions, now=NOW) == result


@settings(max_examples=100, deadline=None)
@given(sites())
def test_more_capacity_never_pauses_more(case: tuple[Site, list[Session]]) -> None:
    site, sessions = case
    tight = allocate_site(site, sessions, now=NOW)
    roomy = Site(panels=[_scaled(p) for p in site.panels])
    loose = allocate_site(roomy, sessions, now=NOW)
    check_invariants(roomy, sessions, loose)
    assert len(loose.paused) <= len(tight.paused) or not tight.paused


def _scaled(panel: Panel) -> Panel:
    return Panel(
        id=panel.id,
        limit_kw=panel.limit_kw * 100 + 1000,
        phase_limit_a=None
        if panel.phase_limit_a is None
        else panel.phase_limit_a * 100 + 1000,
        safety_margin_pct=panel.safety_margin_pct,
        strategy=panel.strategy,
        unmanaged_load_kw=panel.unmanaged_load_kw,
        unmanaged_phase_a=panel.unmanaged_phase_a,
        parent_id=panel.parent_id,
    )


keys = st.sampled_from([f"CP-{i}" for i in range(12)])
limits = st.dictionaries(keys, st.floats(0, 50))


@given(limits, limits)
def test_transition_never_exceeds_either_sum(
    previous: dict[str, float], new: dict[str, float]
) -> None:
    plan = plan_transition(previous, new)
    state = dict(previous)
    peak = sum(state.values())
    for change in plan.decreases:
        assert change.new < change.old
        assert state.get(change.key, 0.0) == change.old
        state[change.key] = change.new
        peak = max(peak, sum(state.values()))
    after = sum(state.values())
    assert after <= sum(previous.values()) + 1e-9
    assert after <= sum(new.values()) + 1e-9
    assert plan.after_decreases(previous) == state
    for change in plan.increases:
        assert change.new > change.old
        state[change.key] = change.new
        assert (
            sum(state.values()) <= max(sum(previous.values()), sum(new.values())) + 1e-9
        )
    assert {k: v for k, v in state.items() if v} == {k: v for k, v in new.items() if v}
    changed = {
        k for k in set(previous) | set(new) if previous.get(k, 0.0) != new.get(k, 0.0)
    }
    assert {c.key for c in plan.decreases + plan.increases} == changed
    assert plan.is_empty == (not changed)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sites())
def test_panel_totals_are_the_rounded_values_sent(
    case: tuple[Site, list[Session]],
) -> None:
    """Each panel reports the sum of what its sessions are sent, within its budget."""
    site, sessions = case
    result = allocate_site(site, sessions, now=NOW)
    for s in sessions:
        if not s.managed:
            continue
        p = result.sessions[s.transaction_id]
        # allocated_kw is the watts figure; amps allow at most a watt more.
        assert p.allocated_kw == p.allocated_w / 1000
        amps_kw = p.allocated_amps_per_phase * s.voltage_v * s.phases / 1000
        assert amps_kw <= p.allocated_kw + 0.001 + 1e-9
    for panel in site.panels:
        ids = subtree(site, panel.id)
        below = [
            s for s in sessions if s.managed and (s.panel_id or site.root.id) in ids
        ]
        report = result.panels[panel.id]
        kw = sum(result.sessions[s.transaction_id].allocated_kw for s in below)
        assert abs(report.allocated_kw - kw) <= 1e-9
        for phase in range(3):
            amps = sum(
                result.sessions[s.transaction_id].allocated_amps_per_phase
                for s in below
                if loads(s)[phase]
            )
            assert abs(report.allocated_phase_a[phase] - amps) <= 1e-9
        budget = report.budget_kw - report.unmanaged_kw
        assert report.allocated_kw <= max(budget, 0.0) + 1e-6
        assert report.headroom_kw == pytest.approx(
            budget - report.allocated_kw, abs=1e-9
        )
