"""Hypothesis properties: the invariants hold on random trees."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings, strategies as st

from custom_components.smart_charge.engine import (
    Panel,
    Phase,
    Session,
    Site,
    Strategy,
    allocate_site,
    plan_transition,
)

from .helpers import check_invariants

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
        phases = draw(st.sampled_from([1, 3]))
        sessions.append(
            Session(
                transaction_id=i if draw(st.booleans()) else f"tx-{i}",
                client_id=f"CP-{i}",
                max_hardware_power_kw=draw(
                    st.sampled_from([3.7, 7.4, 11.0, 22.0]) | st.floats(0, 30)
                ),
                max_ev_acceptance_power_kw=draw(st.none() | st.floats(0.5, 22)),
                user_cap_kw=draw(st.none() | st.floats(0, 22)),
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
