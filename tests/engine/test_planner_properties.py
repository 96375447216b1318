"""Hypothesis properties of the charging planner on random trees, sessions and forecasts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import math

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

from custom_components.smart_charge.engine import (
    ChargingGoal,
    ChargingPlan,
    Panel,
    Phase,
    PlanMode,
    PlanRequest,
    PlanSlot,
    Session,
    Site,
    plan_charging,
)

from .helpers import loads, subtree

T0 = datetime(2026, 3, 1, 22, tzinfo=UTC)
TOL = 1e-6


@dataclass
class Case:
    site: Site
    requests: list[PlanRequest]
    slots: list[PlanSlot]
    minutes: int
    feed_in: float
    now: datetime | None = None


@st.composite
def sites(draw: st.DrawFn) -> Site:
    count = draw(st.integers(1, 6))
    panels: list[Panel] = []
    depth: dict[str, int] = {}
    for k in range(count):
        parents = [p.id for p in panels if depth[p.id] < 3]
        parent = None if k == 0 else draw(st.sampled_from(parents))
        pid = f"P{k}"
        depth[pid] = 1 if parent is None else depth[parent] + 1
        panels.append(
            Panel(
                id=pid,
                limit_kw=draw(
                    st.sampled_from([0.0, 5.0, 11.0, 22.0]) | st.floats(0, 60)
                ),
                phase_limit_a=draw(st.none() | st.floats(0, 63)),
                safety_margin_pct=draw(st.sampled_from([0.0, 5.0, 10.0])),
                unmanaged_load_kw=draw(st.sampled_from([0.0, 1.0]) | st.floats(0, 5)),
                parent_id=parent,
            )
        )
    return Site(panels=panels)


@st.composite
def cases(draw: st.DrawFn, *, max_sessions: int = 8) -> Case:
    site = draw(sites())
    ids = [p.id for p in site.panels]
    minutes = draw(st.sampled_from([15, 60]))
    n_slots = draw(st.integers(1, 16))
    step = timedelta(minutes=minutes)
    slots = [
        PlanSlot(
            start=T0 + t * step,
            price=draw(st.sampled_from([-2.0, 5.0, 10.0, 30.0]) | st.floats(-5, 50)),
            load_kw=draw(st.dictionaries(st.sampled_from(ids), st.floats(0, 8))),
            solar_kw=draw(st.sampled_from([0.0, 0.0, 4.14]) | st.floats(0, 15)),
            multiplier=draw(
                st.none()
                | st.sampled_from([0.5, 1.0, 1.5])
                | st.dictionaries(st.sampled_from(ids), st.floats(0, 2))
            ),
        )
        for t in range(n_slots)
    ]
    horizon = n_slots * step
    requests = []
    for i in range(draw(st.integers(1, max_sessions))):
        phases = draw(st.sampled_from([1, 3]))
        session = Session(
            transaction_id=f"tx-{i}",
            max_hardware_power_kw=draw(
                st.sampled_from([3.68, 7.36, 11.04, 22.08]) | st.floats(0, 25)
            ),
            min_charge_rate_kw=draw(st.none() | st.sampled_from([1.38, 4.14])),
            priority=draw(st.sampled_from([1, 1, 2])),
            phases=phases,
            grid_phase=draw(st.sampled_from([None, Phase.L1, Phase.L2, Phase.L3])),
            panel_id=draw(st.sampled_from([None, *ids])),
            managed=draw(st.sampled_from([True, True, True, True, False])),
            measured_power_kw=draw(st.floats(0, 7)),
            sequence=i,
        )
        mode = draw(st.sampled_from(PlanMode))
        energy = draw(st.none() | st.floats(0, 60))
        if energy is None and mode in (
            PlanMode.BY_DEPARTURE_CHEAPEST,
            PlanMode.BY_DEPARTURE_SOLAR_FIRST,
        ):
            energy = 10.0
        departure = draw(st.none() | st.floats(0, 1.2).map(lambda f: T0 + f * horizon))
        requests.append(
            PlanRequest(
                session=session,
                goal=ChargingGoal(mode=mode, energy_kwh=energy, departure=departure),
                min_current_a=draw(st.none() | st.sampled_from([6.0, 8.0])),
                max_current_a=draw(st.none() | st.floats(0, 32)),
            )
        )
    now = draw(st.none() | st.floats(0, 1.5).map(lambda f: T0 + f * step))
    return Case(site, requests, slots, minutes, draw(st.sampled_from([0.0, 8.0])), now)


def plan_of(case: Case) -> ChargingPlan:
    return plan_charging(
        case.site,
        case.requests,
        case.slots,
        slot_minutes=case.minutes,
        feed_in_price=case.feed_in,
        now=case.now,
    )


def amp_range(request: PlanRequest) -> tuple[float, float]:
    """The session's current range (A per phase), computed independently."""
    session = request.session
    kw_per_a = session.phases * session.voltage_v / 1000
    low = (
        request.min_current_a
        if request.min_current_a is not None
        else session.min_kw / kw_per_a
    )
    high = session.ceiling_kw / kw_per_a
    if request.max_current_a is not None:
        high = min(high, request.max_current_a)
    return low, high


def budgets(
    case: Case, panel: Panel, t: int
) -> tuple[float, tuple[float, float, float] | None]:
    """What the cars below panel may use in slot t (kW, A per phase), independently."""
    slot = case.slots[t]
    ids = subtree(case.site, panel.id)
    given = slot.multiplier
    factor = given.get(panel.id, 1.0) if isinstance(given, Mapping) else given
    factor = min(1.0, 1.0 if factor is None else factor)
    factor *= 1 - panel.safety_margin_pct / 100
    load_kw = 0.0
    load_a = [0.0, 0.0, 0.0]
    balanced = 1000 / (3 * case.site.voltage_v)
    for p in case.site.panels:
        if p.id not in ids:
            continue
        kw = slot.load_kw.get(p.id, p.unmanaged_load_kw)
        load_kw += kw
        load_a = [a + kw * balanced for a in load_a]
    for request in case.requests:
        s = request.session
        if not s.managed and (s.panel_id or case.site.root.id) in ids:
            load_kw += s.measured_power_kw
            load_a = [
                a + b
                for a, b in zip(
                    load_a, s.phase_currents(s.measured_power_kw), strict=True
                )
            ]
    kw = panel.limit_kw * factor - load_kw
    if panel.phase_limit_a is None:
        return kw, None
    limit = panel.phase_limit_a * factor
    return kw, (limit - load_a[0], limit - load_a[1], limit - load_a[2])


def check_plan(case: Case, plan: ChargingPlan) -> None:
    managed = [r for r in case.requests if r.session.managed]
    assert set(plan.sessions) == {r.session.transaction_id for r in managed}
    ends = [s.start + timedelta(minutes=case.minutes) for s in case.slots]
    for request in managed:
        s = request.session
        sp = plan.sessions[s.transaction_id]
        low, high = amp_range(request)
        departure = request.goal.departure or ends[-1]
        energy = 0.0
        for t, slot in enumerate(sp.slots):
            # Zero, or within [minimum, maximum].
            a = slot.amps_per_phase
            assert a == 0 or low - TOL <= a <= high + TOL, (a, low, high)
            # Nothing after the departure.
            if case.slots[t].start >= departure:
                assert a == 0 and slot.energy_kwh == 0
            if slot.energy_kwh > 0:
                assert slot.end <= departure
                assert case.now is None or slot.start >= case.now
            energy += slot.energy_kwh
        assert math.isclose(energy, sp.energy_kwh, abs_tol=TOL)
        if math.isinf(sp.needed_kwh):
            assert sp.goal_met  # no goal: whatever fits
        elif sp.goal_met:
            assert sp.energy_kwh >= sp.needed_kwh - 1e-4
        else:
            assert sp.shortfall_kwh > 0
        # Periods, capped or not, never exceed the plan at any time.
        for limit in (None, 3, 1):
            for period in sp.periods(limit):
                for slot in sp.slots:
                    if slot.start < period.end and period.start < slot.end:
                        assert period.amps_per_phase <= slot.amps_per_phase + TOL
    # Every breaker holds in every slot, in kW and per phase.
    for panel in case.site.panels:
        ids = subtree(case.site, panel.id)
        below = [r.session for r in managed if (r.session.panel_id or "P0") in ids]
        for t in range(len(case.slots)):
            kw_budget, phase_budget = budgets(case, panel, t)
            cars_kw = sum(
                plan.sessions[s.transaction_id].slots[t].amps_per_phase
                * s.phases
                * s.voltage_v
                / 1000
                for s in below
            )
            assert cars_kw <= max(kw_budget, 0.0) + TOL, (panel.id, t, cars_kw)
            assert math.isclose(plan.panels[panel.id].load_kw[t], cars_kw, abs_tol=TOL)
            if phase_budget is None:
                continue
            for p in range(3):
                amps = sum(
                    plan.sessions[s.transaction_id].slots[t].amps_per_phase
                    for s in below
                    if loads(s)[p]
                )
                assert amps <= max(phase_budget[p], 0.0) + TOL, (panel.id, t, p)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_slot_respects_every_breaker_and_minimum(case: Case) -> None:
    plan = plan_of(case)
    check_plan(case, plan)
    # Deterministic: the same input gives the same plan.
    assert plan_of(case) == plan


def alone_capacity(case: Case, request: PlanRequest) -> float:
    """The most energy the session alone can get by its departure (independently)."""
    s = request.session
    low, high = amp_range(request)
    low_u = max(1, math.ceil(low * 10 - 1e-6))
    high_u = math.floor(high * 10 + 1e-6)
    if high_u < low_u:
        return 0.0
    kw_per_a = s.phases * s.voltage_v / 1000
    step = timedelta(minutes=case.minutes)
    departure = request.goal.departure or case.slots[-1].start + step
    chain = []
    panel_id: str | None = s.panel_id or case.site.root.id
    while panel_id is not None:
        panel = next(p for p in case.site.panels if p.id == panel_id)
        chain.append(panel)
        panel_id = panel.parent_id
    total = 0.0
    for t, slot in enumerate(case.slots):
        begin = slot.start if case.now is None else max(slot.start, case.now)
        hours = (min(slot.start + step, departure) - begin).total_seconds() / 3600
        if hours <= 0:
            continue
        room = high_u
        for panel in chain:
            kw_budget, phase_budget = budgets(case, panel, t)
            room = min(room, math.floor(kw_budget / (kw_per_a * 0.1) + 1e-9))
            if phase_budget is not None:
                for p in range(3):
                    if loads(s)[p]:
                        room = min(room, math.floor(phase_budget[p] * 10 + 1e-9))
        if room >= low_u:
            total += room * 0.1 * kw_per_a * hours
    return total


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(max_sessions=1))
def test_a_goal_feasible_alone_on_an_empty_site_is_met(case: Case) -> None:
    request = case.requests[0]
    if not request.session.managed or request.goal.mode is PlanMode.SOLAR_ONLY:
        return
    plan = plan_of(case)
    check_plan(case, plan)
    sp = plan.sessions[request.session.transaction_id]
    capacity = alone_capacity(case, request)
    if request.goal.needed_kwh() <= capacity - 1e-6:
        assert sp.goal_met, (sp.needed_kwh, capacity, sp.energy_kwh)
    else:
        # Not feasible: it gets everything it can.
        assert math.isclose(sp.energy_kwh, capacity, rel_tol=1e-6, abs_tol=1e-6)


def min_cost_flow_optimum(
    fuse: int,
    maxima: list[int],
    needs: list[int],
    deadlines: list[int],
    prices: list[int],
) -> tuple[int, int]:
    """Exact optimum on one fuse without minimums, as a min-cost flow (0.1 A·h units).

    Source -> car i (its need) -> slot t before its deadline (its maximum) -> sink (the
    fuse, at the slot's price). Successive shortest paths (Bellman-Ford); returns the
    most energy that fits and its least cost.
    """
    n, n_slots = len(needs), len(prices)
    size = 2 + n + n_slots
    source, sink = 0, size - 1
    graph: list[list[list[int]]] = [[] for _ in range(size)]  # [to, cap, cost, rev]

    def edge(a: int, b: int, cap: int, cost: int) -> None:
        graph[a].append([b, cap, cost, len(graph[b])])
        graph[b].append([a, 0, -cost, len(graph[a]) - 1])

    for i in range(n):
        edge(source, 1 + i, needs[i], 0)
        for t in range(min(deadlines[i], n_slots)):
            edge(1 + i, 1 + n + t, maxima[i], 0)
    for t in range(n_slots):
        edge(1 + n + t, sink, fuse, prices[t])
    flow = cost = 0
    while True:
        dist = [math.inf] * size
        back: list[tuple[int, int] | None] = [None] * size
        dist[source] = 0
        for _ in range(size):
            changed = False
            for a in range(size):
                if dist[a] == math.inf:
                    continue
                for k, (b, cap, c, _) in enumerate(graph[a]):
                    if cap > 0 and dist[a] + c < dist[b]:
                        dist[b] = dist[a] + c
                        back[b] = (a, k)
                        changed = True
            if not changed:
                break
        if dist[sink] == math.inf:
            return flow, cost
        push = math.inf
        node = sink
        while node != source:
            step = back[node]
            assert step is not None
            a, k = step
            push = min(push, graph[a][k][1])
            node = a
        node = sink
        while node != source:
            step = back[node]
            assert step is not None
            a, k = step
            graph[a][k][1] -= int(push)
            rev = graph[a][k][3]
            graph[node][rev][1] += int(push)
            node = a
        flow += int(push)
        cost += int(push * dist[sink])


@st.composite
def one_fuse_cases(draw: st.DrawFn, *, below_fuse: bool) -> tuple[object, ...]:
    fuse = draw(st.integers(60, 320))  # 0.1 A
    n_slots = draw(st.integers(1, 8))
    prices = draw(st.lists(st.integers(0, 40), min_size=n_slots, max_size=n_slots))
    n = draw(st.integers(1, 4))
    maxima = [
        draw(st.integers(10, fuse) if below_fuse else st.integers(fuse, 320))
        for _ in range(n)
    ]
    needs = [draw(st.integers(0, 4 * fuse)) for _ in range(n)]
    deadlines = [draw(st.integers(1, n_slots)) for _ in range(n)]
    return fuse, maxima, needs, deadlines, prices


def plan_one_fuse(
    fuse: int,
    maxima: list[int],
    needs: list[int],
    deadlines: list[int],
    prices: list[int],
) -> ChargingPlan:
    site = Site(
        panels=[
            Panel(
                id="fuse", limit_kw=1000, phase_limit_a=fuse / 10, safety_margin_pct=0
            )
        ]
    )
    requests = [
        PlanRequest(
            session=Session(transaction_id=i, max_hardware_power_kw=100, sequence=i),
            goal=ChargingGoal(
                energy_kwh=needs[i] * 0.1 * 0.69,
                departure=T0 + timedelta(hours=deadlines[i]),
            ),
            min_current_a=0.1,
            max_current_a=maxima[i] / 10,
        )
        for i in range(len(needs))
    ]
    slots = [
        PlanSlot(start=T0 + timedelta(hours=t), price=p) for t, p in enumerate(prices)
    ]
    return plan_charging(site, requests, slots, slot_minutes=60)


@settings(max_examples=60, deadline=None)
@given(one_fuse_cases(below_fuse=False))
def test_one_fuse_matches_the_min_cost_flow_optimum(case: tuple[object, ...]) -> None:
    """One fuse, no minimum, car maxima at least the fuse: the exact optimum.

    Most energy, then least cost, as the min-cost flow: the docstring's claim.
    """
    flow, cost = min_cost_flow_optimum(*case)  # type: ignore[arg-type]
    plan = plan_one_fuse(*case)  # type: ignore[arg-type]
    energy = sum(s.energy_kwh for s in plan.sessions.values())
    assert energy == pytest.approx(flow * 0.069, abs=1e-6)
    assert plan.cost == pytest.approx(cost * 0.069, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(one_fuse_cases(below_fuse=True))
def test_one_fuse_below_the_fuse_gets_the_most_energy(case: tuple[object, ...]) -> None:
    """Car maxima below the fuse: the most energy, and never cheaper than the optimum.

    The cost is a heuristic's there (see the next test for a case it misses).
    """
    flow, cost = min_cost_flow_optimum(*case)  # type: ignore[arg-type]
    plan = plan_one_fuse(*case)  # type: ignore[arg-type]
    energy = sum(s.energy_kwh for s in plan.sessions.values())
    assert energy == pytest.approx(flow * 0.069, abs=1e-6)
    assert plan.cost >= cost * 0.069 - 1e-6


@pytest.mark.xfail(
    strict=True,
    reason="heuristic: a cheaper plan needs car 1 to leave a full cheap slot so car 2"
    " can take it (a two-car exchange the improvement pass does not search)",
)
def test_known_gap_two_car_exchange_through_a_full_slot() -> None:
    """Found by hypothesis: 16 units in the dear slot where 2 suffice."""
    case = (216, [10, 216, 15], [31, 228, 46], [4, 4, 4], [0, 0, 14, 0])
    flow, cost = min_cost_flow_optimum(*case)
    plan = plan_one_fuse(*case)
    assert plan.cost == pytest.approx(cost * 0.069, abs=1e-6)
