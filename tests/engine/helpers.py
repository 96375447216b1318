"""Independent checks of the allocation invariants (DESIGN.md §2, 1-5)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math

from custom_components.smart_charge.engine import (
    Session,
    SessionProfile,
    Site,
    SiteAllocation,
    Strategy,
)

TOL = 1e-6
W_STEP = 0.001  # kW
A_STEP = 0.1  # A

# Per panel id: its kW budget, its per-phase budgets (None: no phase limit) and the
# managed sessions below it.
type Budgets = dict[str, tuple[float, list[float] | None, list[Session]]]


def subtree(site: Site, panel_id: str) -> set[str]:
    """Ids of panel_id and every panel below it."""
    ids = {panel_id}
    changed = True
    while changed:
        changed = False
        for panel in site.panels:
            if panel.parent_id in ids and panel.id not in ids:
                ids.add(panel.id)
                changed = True
    return ids


def panel_of(site: Site, session: Session) -> str:
    return session.panel_id or site.root.id


def loads(session: Session) -> tuple[bool, bool, bool]:
    if session.phases == 3:
        return (True, True, True)
    if session.phases == 2:  # split phase: both legs
        return (True, True, False)
    index = int((session.grid_phase or "L1")[1]) - 1
    return (index == 0, index == 1, index == 2)


def importance(session: Session, position: int) -> tuple[float, float, int, int]:
    """Most important first: priority, the rotation's turn, sequence (started_at unused)."""
    return (-session.priority, session.turn, session.sequence, position)


def check_invariants(
    site: Site, sessions: Sequence[Session], result: SiteAllocation
) -> None:
    """Assert invariants 1-5 on an allocation of site (started_at unused)."""
    managed = [s for s in sessions if s.managed]
    assert set(result.sessions) == {s.transaction_id for s in managed}
    profile = {s.transaction_id: result.sessions[s.transaction_id] for s in managed}
    balanced = 1000.0 / (3 * site.voltage_v)
    unable = {
        s.transaction_id
        for s in managed
        if s.ceiling_kw < s.min_kw or s.ceiling_kw <= 0
    }

    # Per-panel budgets, computed independently of the engine.
    budgets: Budgets = {}
    for panel in site.panels:
        ids = subtree(site, panel.id)
        factor = 1 - panel.safety_margin_pct / 100
        assert (
            panel.strategy is not Strategy.TIME_OF_USE or not panel.time_of_use_windows
        )
        unmanaged_kw = sum(p.unmanaged_load_kw for p in site.panels if p.id in ids)
        unmanaged_a = [0.0, 0.0, 0.0]
        for inner in site.panels:
            if inner.id in ids:
                extra = (
                    inner.unmanaged_phase_a or (inner.unmanaged_load_kw * balanced,) * 3
                )
                unmanaged_a = [a + b for a, b in zip(unmanaged_a, extra, strict=True)]
        below = [s for s in sessions if panel_of(site, s) in ids]
        for s in below:
            if not s.managed:
                unmanaged_kw += s.measured_power_kw
                unmanaged_a = [
                    a + b
                    for a, b in zip(
                        unmanaged_a, s.phase_currents(s.measured_power_kw), strict=True
                    )
                ]
        kw_budget = panel.limit_kw * factor - unmanaged_kw
        phase_budget = (
            None
            if panel.phase_limit_a is None
            else [panel.phase_limit_a * factor - a for a in unmanaged_a]
        )
        mine = [s for s in below if s.managed]
        budgets[panel.id] = (kw_budget, phase_budget, mine)
        used = sum(profile[s.transaction_id].allocated_kw for s in mine)
        # 1. No panel over its budget (a negative budget leaves everything below paused).
        assert used <= max(kw_budget, 0.0) + TOL, (panel.id, used, kw_budget)
        if phase_budget is not None:
            for phase in range(3):
                amps = sum(
                    profile[s.transaction_id].allocated_amps_per_phase
                    for s in mine
                    if loads(s)[phase]
                )
                assert amps <= max(phase_budget[phase], 0.0) + TOL, (
                    panel.id,
                    phase,
                    amps,
                )

    ancestors: dict[str, list[str]] = {}
    for panel in site.panels:
        chain, current = [], panel
        while True:
            chain.append(current.id)
            if current.parent_id is None:
                break
            current = next(p for p in site.panels if p.id == current.parent_id)
        ancestors[panel.id] = chain

    paused = set(result.paused)
    for s in managed:
        p = profile[s.transaction_id]
        # 5. Rounded down: whole watts, 0.1 A, and the two agree.
        assert isinstance(p.allocated_w, int)
        assert math.isclose(p.allocated_kw * 1000, p.allocated_w, abs_tol=1e-6)
        assert (
            abs(
                round(p.allocated_amps_per_phase * 10) - p.allocated_amps_per_phase * 10
            )
            < 1e-6
        )
        amps_kw = p.allocated_amps_per_phase * s.phases * s.voltage_v / 1000
        assert amps_kw <= p.allocated_kw + W_STEP + TOL
        # 3. Ceiling.
        assert p.allocated_kw <= s.ceiling_kw + TOL
        # 2. Zero or at least the minimum.
        if s.transaction_id in unable:
            assert p.allocated_w == 0 and p.paused
            continue
        if s.transaction_id in paused:
            assert p.allocated_w == 0 and p.paused
            # Paused only because its minimum did not fit beside the sessions admitted
            # in its own and the higher priority classes (within a class the admission
            # serves as many as fit, not the oldest first: #15 item 5).
            more = [
                o
                for o in managed
                if o.transaction_id not in paused
                and o.transaction_id not in unable
                and o.priority >= s.priority
            ]
            assert not _fits(site, s, more, budgets, ancestors), s.transaction_id
            continue
        assert not p.paused
        assert p.allocated_kw >= s.min_kw - W_STEP - TOL, (s, p)

    # 3. Work-conserving: a session below its ceiling sits under a tight constraint.
    for s in managed:
        p = profile[s.transaction_id]
        if p.paused or p.allocated_kw >= s.ceiling_kw - 2 * W_STEP:
            continue
        assert _blocked(s, profile, budgets, ancestors[panel_of(site, s)]), s

    # 4. Equal share among equals, PRIORITY weights.
    groups: dict[tuple[object, ...], list[Session]] = {}
    for s in managed:
        if profile[s.transaction_id].paused:
            continue
        panel = next(p for p in site.panels if p.id == panel_of(site, s))
        weight = s.priority if panel.strategy is Strategy.PRIORITY else 1
        group: tuple[object, ...] = (panel.id, loads(s), s.voltage_v)
        groups.setdefault(group, []).append(s)
        if weight == 1:
            same = (
                group,
                s.ceiling_kw,
                s.min_kw,
                s.priority if panel.strategy is Strategy.PRIORITY else 0,
            )
            groups.setdefault(("eq", *same), []).append(s)
    for key, members in groups.items():
        if key[0] == "eq":
            assert len({profile[m.transaction_id].allocated_w for m in members}) == 1
            continue
        panel = next(p for p in site.panels if p.id == key[0])
        if panel.strategy is not Strategy.PRIORITY:
            continue
        free = [
            m
            for m in members
            if m.min_kw + 2 * W_STEP
            < profile[m.transaction_id].allocated_kw
            < m.ceiling_kw - 2 * W_STEP
        ]
        levels = [profile[m.transaction_id].allocated_kw / m.priority for m in free]
        if levels:
            assert max(levels) - min(levels) <= 2 * W_STEP, levels


def _fits(
    site: Site,
    session: Session,
    others: Sequence[Session],
    budgets: Budgets,
    ancestors: Mapping[str, Sequence[str]],
) -> bool:
    """Whether session's minimum fits beside the others' minimums everywhere above it."""
    for panel_id in ancestors[panel_of(site, session)]:
        kw_budget, phase_budget, mine = budgets[panel_id]
        group = [o for o in others if o in mine]
        if sum(o.min_kw for o in group) + session.min_kw > kw_budget + 1e-9:
            return False
        if phase_budget is not None:
            for p in range(3):
                amps = sum(o.min_kw * o.amps_per_kw() for o in group if loads(o)[p])
                if (
                    loads(session)[p]
                    and amps + session.min_kw * session.amps_per_kw()
                    > phase_budget[p] + 1e-9
                ):
                    return False
    return True


def _blocked(
    session: Session,
    profile: Mapping[str | int, SessionProfile],
    budgets: Budgets,
    chain: Sequence[str],
) -> bool:
    """Whether some constraint above session has no room left (within rounding)."""
    for panel_id in chain:
        kw_budget, phase_budget, mine = budgets[panel_id]
        active = [m for m in mine if not profile[m.transaction_id].paused]
        used = sum(profile[m.transaction_id].allocated_kw for m in active)
        if kw_budget - used <= (len(active) + 1) * W_STEP + TOL:
            return True
        if phase_budget is not None:
            for p in range(3):
                if not loads(session)[p]:
                    continue
                amps = sum(
                    profile[m.transaction_id].allocated_amps_per_phase
                    for m in active
                    if loads(m)[p]
                )
                if phase_budget[p] - amps <= (len(active) + 1) * A_STEP + TOL:
                    return True
    return False
