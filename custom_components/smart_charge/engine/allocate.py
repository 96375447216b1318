"""One solve for a whole site: hierarchical weighted max-min water-filling with floors.

Every managed session i gets x_i = clamp(w_i · t_i, m_i, c_i) where w_i is its weight
(1, or its priority under a PRIORITY panel), m_i its minimum and c_i its ceiling. All
sessions share one rising level t; when a constraint (a panel's kW budget, or one phase of
its current budget) becomes tight, every session that loads it freezes. The events are
processed in order with a heap, so the solve is O(n·d·log n) for n sessions at depth d.

Before filling, sessions are admitted at their minimum, priority class by priority class
(highest first); within a class as many sessions as fit are admitted (`_admit_class`),
ties broken by importance (the rotation's turn order, then oldest first); sessions whose
rotation turn is due come first. The others are paused (0 kW) and reported in
`SiteAllocation.paused`.

Every session's limit reason (`SiteAllocation.limits`) is recorded as the solve runs: the
constraint that froze it, its ceiling when it was capped, or the constraint that had no
room for its minimum when it was paused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from heapq import heappop, heappush
import math

from .errors import EngineConfigError
from .model import (
    PHASES,
    BudgetReason,
    LimitReason,
    PanelAllocation,
    Phase,
    Session,
    SessionKey,
    SessionLimit,
    SessionProfile,
    Site,
    SiteAllocation,
    Strategy,
    time_of_use_multiplier,
)

EPS = 1e-9
"""Tolerance (kW or A) for comparisons against a budget."""

ROUND_EPS = 1e-6
"""Float noise tolerated before rounding down (so 5.9999999 A is sent as 6.0 A)."""

FULL_TOL = 1e-6
"""Relative tolerance for calling a budget used up (`PanelAllocation.full_kw`)."""

ZERO_PRIORITY_WEIGHT = 1e-6
"""The weight of a priority of 0 under PRIORITY: only what the others leave."""

_INF = math.inf
_FLOOR, _RISING, _CAPPED, _FROZEN = 0, 1, 2, 3
_CEILING = -1  # why[i]: the session is at (or paused by) its own ceiling
_SPLIT = 4  # category of split-phase (two-leg) sessions: L1 and L2
_SOURCE_REASONS = {
    BudgetReason.SOLAR: LimitReason.SOLAR,
    BudgetReason.TARIFF: LimitReason.TARIFF,
    BudgetReason.TIME_OF_USE: LimitReason.TIME_OF_USE,
}


def round_down_amps(amps: float) -> float:
    """Round a current down to 0.1 A, tolerating float noise just below a step."""
    if amps <= 0:
        return 0.0
    return math.floor(amps * 10.0 + ROUND_EPS) / 10.0


def round_down_watts(power_kw: float) -> int:
    """Round a power in kW down to whole watts, tolerating float noise."""
    if power_kw <= 0:
        return 0
    return math.floor(power_kw * 1000.0 + ROUND_EPS)


def importance_key(
    session: Session, position: int
) -> tuple[float, float, float, int, int]:
    """Sort key: most important first.

    Highest priority, then the rotation's turn order (lowest `turn` first), then
    oldest, then first added.
    """
    started = (
        session.started_at.timestamp() if session.started_at is not None else -_INF
    )
    return (-session.priority, session.turn, started, session.sequence, position)


def make_profile(session: Session, power_kw: float, paused: bool) -> SessionProfile:
    """Return the rounded-down profile of a session allocated power_kw."""
    watts = math.floor(power_kw * 1000.0 + ROUND_EPS) if power_kw > 0 else 0
    amps = power_kw * 1000.0 / (session.phases * session.voltage_v)
    return SessionProfile._fast(  # noqa: SLF001 - same package, hot path
        {
            "transaction_id": session.transaction_id,
            "client_id": session.client_id,
            "connector_id": session.connector_id,
            "allocated_kw": watts / 1000.0,
            "allocated_w": watts,
            "allocated_amps_per_phase": math.floor(amps * 10.0 + ROUND_EPS) / 10.0
            if amps > 0
            else 0.0,
            "phases": session.phases,
            "paused": paused,
        }
    )


def allocate_site(
    site: Site, sessions: Iterable[Session], *, now: datetime | None = None
) -> SiteAllocation:
    """Allocate the power of every panel of site among the sessions in one solve.

    `now` (an aware datetime) selects the time-of-use windows; default: the current time.
    Raises EngineConfigError for duplicate transaction ids or unknown panel ids.
    """
    all_sessions = list(sessions)
    if now is None:
        now = datetime.now(UTC)
    panels = site.panels
    n_panels = len(panels)
    parents = site.parents
    order = site.order
    root = order[0]

    # Budgets per panel.
    cap_kw = [0.0] * n_panels
    cap_a: list[float | None] = [None] * n_panels
    node_kw = [0.0] * n_panels
    node_a = [[0.0, 0.0, 0.0] for _ in range(n_panels)]
    weighted = [False] * n_panels
    # What a session bound by the panel's kW budget is told (breaker, solar, ...).
    kw_reason = [LimitReason.BREAKER] * n_panels
    balanced = 1000.0 / (3.0 * site.voltage_v)
    for k, panel in enumerate(panels):
        factor = 1.0 - panel.safety_margin_pct / 100.0
        source = _SOURCE_REASONS.get(panel.budget_reason)
        if panel.strategy is Strategy.TIME_OF_USE:
            # Capped at 1; it scales the kW and the per-phase budget alike.
            multiplier = time_of_use_multiplier(
                panel.time_of_use_windows, now, site.zone
            )
            factor *= multiplier
            if source is None and multiplier < 1.0:
                source = LimitReason.TIME_OF_USE
        if source is not None:
            kw_reason[k] = source
        weighted[k] = panel.strategy is Strategy.PRIORITY
        cap_kw[k] = panel.limit_kw * factor
        if panel.phase_limit_a is not None:
            cap_a[k] = panel.phase_limit_a * factor
        node_kw[k] = panel.unmanaged_load_kw
        if panel.unmanaged_phase_a is not None:
            node_a[k] = list(panel.unmanaged_phase_a)
        else:
            per_phase = panel.unmanaged_load_kw * balanced
            node_a[k] = [per_phase, per_phase, per_phase]

    # Sessions: check keys and panels, split managed and unmanaged. The per-session work
    # is done a field at a time in comprehensions (the hot path for thousands of sessions).
    where = _session_panels(all_sessions, site.index, root)
    flags = [session.managed for session in all_sessions]
    if all(flags):
        managed = all_sessions
        session_panel = where
    else:
        managed = []
        session_panel = []
        for session, k in zip(all_sessions, where, strict=True):
            if session.managed:
                managed.append(session)
                session_panel.append(k)
                continue
            node_kw[k] += session.measured_power_kw
            currents = session.phase_currents(session.measured_power_kw)
            row = node_a[k]
            row[0] += currents[0]
            row[1] += currents[1]
            row[2] += currents[2]

    # Unmanaged load of a subtree counts against every panel above it.
    sub_kw = list(node_kw)
    sub_a = [list(row) for row in node_a]
    for k in reversed(order):
        parent = parents[k]
        if parent >= 0:
            sub_kw[parent] += sub_kw[k]
            prow, row = sub_a[parent], sub_a[k]
            prow[0] += row[0]
            prow[1] += row[1]
            prow[2] += row[2]

    # Constraints: kW of panel k is id k; phase p of panel k is id P + 3k + p.
    n_cons = n_panels * 4
    budget = [_INF] * n_cons
    for k in range(n_panels):
        budget[k] = cap_kw[k] - sub_kw[k]
        limit_a = cap_a[k]
        if limit_a is not None:
            base = n_panels + 3 * k
            budget[base] = limit_a - sub_a[k][0]
            budget[base + 1] = limit_a - sub_a[k][1]
            budget[base + 2] = limit_a - sub_a[k][2]
    ancestors = site.ancestors
    # Phase constraints per panel and category (0: three-phase, 1-3: single-phase on L1-L3,
    # 4: split phase on L1 and L2).
    phase_cons: list[list[list[int]]]
    if any(limit is not None for limit in cap_a):
        phase_cons = []
        for k in range(n_panels):
            limited = [j for j in ancestors[k] if cap_a[j] is not None]
            three = [n_panels + 3 * j + p for j in limited for p in range(3)]
            split = [n_panels + 3 * j + p for j in limited for p in range(2)]
            phase_cons.append(
                [
                    three,
                    *([n_panels + 3 * j + p for j in limited] for p in range(3)),
                    split,
                ]
            )
    else:
        phase_cons = [[[], [], [], [], []]] * n_panels  # read only

    # Per-session figures (the same expressions as Session.min_kw, .ceiling_kw and
    # .amps_per_kw(), so the results are identical to the properties').
    n = len(managed)
    floor_kw = [session.min_kw for session in managed]
    ceil_kw = [session.ceiling_kw for session in managed]
    volts = [session.phases * session.voltage_v for session in managed]
    coef = [1000.0 / v for v in volts]
    unable = [c < f or c <= 0.0 for f, c in zip(floor_kw, ceil_kw, strict=True)]
    if any(weighted):
        weight = [
            (float(session.priority) or ZERO_PRIORITY_WEIGHT) if weighted[k] else 1.0
            for session, k in zip(managed, session_panel, strict=True)
        ]
    else:
        weight = [1.0] * n
    category = [
        0
        if session.phases == 3
        else _SPLIT
        if session.phases == 2
        else 1 + session.phase_index
        for session in managed
    ]
    kw_cons = [ancestors[k] for k in session_panel]
    ph_cons = [
        phase_cons[k][cat] for k, cat in zip(session_panel, category, strict=True)
    ]

    # Admission at the minimum, most important first.
    ranked = _rank(managed)
    load, admitted, paused, blocked = _admit(
        ranked, unable, floor_kw, coef, kw_cons, ph_cons, budget, managed
    )

    value, why = _water_fill(
        n_panels=n_panels,
        children=site.children,
        budget=budget,
        load=load,
        session_panel=session_panel,
        admitted=admitted,
        floor_kw=floor_kw,
        ceil_kw=ceil_kw,
        weight=weight,
        coef=coef,
        category=category,
        kw_cons=kw_cons,
        ph_cons=ph_cons,
    )

    # Results, rounded down (the same figures as make_profile). The panel totals add up
    # the rounded values that are sent, not the unrounded solution.
    watts = [math.floor(x * 1000.0 + ROUND_EPS) if x > 0 else 0 for x in value]
    sent_kw = [w / 1000.0 for w in watts]
    amps = [
        math.floor(a * 10.0 + ROUND_EPS) / 10.0 if a > 0 else 0.0
        for a in [x * 1000.0 / v for x, v in zip(value, volts, strict=True)]
    ]
    profiles = _profiles(managed, sent_kw, watts, amps, admitted)
    used_kw = [0.0] * n_panels
    used_a = [[0.0, 0.0, 0.0] for _ in range(n_panels)]
    for k, kw, a, cat in zip(session_panel, sent_kw, amps, category, strict=True):
        # Adding 0.0 for paused sessions leaves a total unchanged.
        used_kw[k] += kw
        row = used_a[k]
        if cat == 0:
            row[0] += a
            row[1] += a
            row[2] += a
        elif cat == _SPLIT:
            row[0] += a
            row[1] += a
        else:
            row[cat - 1] += a
    for k in reversed(order):
        parent = parents[k]
        if parent >= 0:
            used_kw[parent] += used_kw[k]
            prow, row = used_a[parent], used_a[k]
            prow[0] += row[0]
            prow[1] += row[1]
            prow[2] += row[2]
    panel_results: dict[str, PanelAllocation] = {}
    make_panel = PanelAllocation._fast  # noqa: SLF001 - same package, hot path
    negative = False
    # After the fill, `load` is the unrounded load of every constraint.
    full = [
        x >= b - FULL_TOL * max(1.0, abs(b)) for x, b in zip(load, budget, strict=True)
    ]
    for k, panel in enumerate(panels):
        if budget[k] < -EPS:
            negative = True
        full_phases: tuple[Phase, ...] = ()
        if cap_a[k] is not None:
            base = n_panels + 3 * k
            if min(budget[base + p] for p in range(3)) < -EPS:
                negative = True
            full_phases = tuple(PHASES[p] for p in range(3) if full[base + p])
        panel_results[panel.id] = make_panel(
            used_kw[k],  # allocated_kw
            sub_kw[k],  # unmanaged_kw
            cap_kw[k],  # budget_kw
            cap_kw[k] - sub_kw[k] - used_kw[k],  # headroom_kw
            (used_a[k][0], used_a[k][1], used_a[k][2]),  # allocated_phase_a
            (sub_a[k][0], sub_a[k][1], sub_a[k][2]),  # unmanaged_phase_a
            cap_a[k],  # phase_budget_a
            full[k],  # full_kw
            full_phases,
        )
    paused.reverse()
    paused_keys = tuple(managed[i].transaction_id for i in paused)
    return SiteAllocation(
        sessions=profiles,
        panels=panel_results,
        paused=paused_keys,
        over_committed=bool(paused_keys) or negative,
        limits=_limits(
            all_sessions, managed, ceil_kw, why, blocked, site, n_panels, kw_reason
        ),
    )


def _limits(
    all_sessions: list[Session],
    managed: list[Session],
    ceil_kw: list[float],
    why: list[int],
    blocked: dict[int, tuple[int, bool]],
    site: Site,
    n_panels: int,
    kw_reason: list[LimitReason],
) -> dict[SessionKey, SessionLimit]:
    """Return every session's limit reason from what the solve recorded.

    `why[i]` is the constraint that froze managed session i (or `_CEILING`); `blocked`
    holds, for a session paused at admission, the constraint without room for its
    minimum and whether it would have fitted without the more important classes.
    """
    panel_ids = [panel.id for panel in site.panels]
    made: dict[int, SessionLimit] = {}

    def bound(c: int) -> SessionLimit:
        """Return the limit of a session frozen by constraint c (one object per c)."""
        limit = made.get(c)
        if limit is None:
            if c < n_panels:
                limit = SessionLimit(reason=kw_reason[c], panel_id=panel_ids[c])
            else:
                k, p = divmod(c - n_panels, 3)
                limit = SessionLimit(
                    reason=LimitReason.PHASE, panel_id=panel_ids[k], phase=PHASES[p]
                )
            made[c] = limit
        return limit

    ceilings = {
        reason: SessionLimit(reason=reason)
        for reason in (
            LimitReason.CHARGER_MAXIMUM,
            LimitReason.EV_CAP,
            LimitReason.USER_CAP,
            LimitReason.CHARGING_PLAN,
        )
    }
    for c in set(why):
        if c >= 0:
            bound(c)
    # One comprehension over the sessions (the hot path), then the few paused ones.
    # Most ceilings are the charger's maximum: checked first without the property.
    charger_maximum = ceilings[LimitReason.CHARGER_MAXIMUM]
    limits: dict[SessionKey, SessionLimit] = dict(
        zip(
            [session.transaction_id for session in managed],
            [
                made[c]
                if c >= 0
                else charger_maximum
                if session.max_hardware_power_kw == cap
                else ceilings[session.ceiling_reason]
                for session, c, cap in zip(managed, why, ceil_kw, strict=True)
            ],
            strict=True,
        )
    )
    for i, (stop, for_priority) in blocked.items():
        where = bound(stop)
        if for_priority:
            reason = LimitReason.PAUSED_PRIORITY
        elif where.reason in (LimitReason.BREAKER, LimitReason.PHASE):
            reason = LimitReason.PAUSED_NO_ROOM
        else:
            reason = where.reason  # solar, tariff or time of use left no room
        limits[managed[i].transaction_id] = SessionLimit(
            reason=reason, panel_id=where.panel_id, phase=where.phase
        )
    if len(managed) != len(all_sessions):
        not_managed = SessionLimit(reason=LimitReason.NOT_MANAGED)
        offline = SessionLimit(reason=LimitReason.OFFLINE)
        for session in all_sessions:
            if not session.managed:
                limits[session.transaction_id] = (
                    offline if session.offline else not_managed
                )
    return limits


def _session_panels(
    sessions: list[Session], index: Mapping[str, int], root: int
) -> list[int]:
    """Return the panel of every session; raise on duplicate keys or unknown panels."""
    lookup: dict[str | None, int] = {key: k for key, k in index.items()}  # noqa: C416
    lookup[None] = root
    try:
        where = [lookup[session.panel_id] for session in sessions]
    except KeyError:
        pass
    else:
        keys = [session.transaction_id for session in sessions]
        if len(set(keys)) == len(keys):
            return where
    # Something is wrong: find the first problem in input order for the message.
    seen: set[SessionKey] = set()
    for session in sessions:
        key = session.transaction_id
        if key in seen:
            raise EngineConfigError(f"duplicate transaction id {key!r}")
        seen.add(key)
        if session.panel_id is not None and session.panel_id not in index:
            raise EngineConfigError(
                f"session {key!r} is under an unknown panel {session.panel_id!r}"
            )
    raise AssertionError("unreachable")  # pragma: no cover


def _rank(managed: list[Session]) -> list[int]:
    """Return the sessions' positions, most important first (as by importance_key).

    Stable sorts by each part of the key, the last part first, give the order of the
    whole key; each sort compares plain numbers, which is much faster than tuples.
    """
    ranked = list(range(len(managed)))
    sequence = [session.sequence for session in managed]
    ranked.sort(key=sequence.__getitem__)
    started = [
        -_INF if session.started_at is None else session.started_at.timestamp()
        for session in managed
    ]
    ranked.sort(key=started.__getitem__)
    if any(session.turn for session in managed):
        turn = [session.turn for session in managed]
        ranked.sort(key=turn.__getitem__)
    priority = [-session.priority for session in managed]
    ranked.sort(key=priority.__getitem__)
    return ranked


def _profiles(
    managed: list[Session],
    sent_kw: list[float],
    watts: list[int],
    amps: list[float],
    admitted: list[bool],
) -> dict[SessionKey, SessionProfile]:
    """Build the profiles of the sessions (the fields of make_profile), keyed by id."""
    new = object.__new__
    set_attr = object.__setattr__
    profile_cls = SessionProfile
    profiles: dict[SessionKey, SessionProfile] = {}
    # A plain loop: building every dict first leaves more young objects for the GC.
    for session, kw, w, a, adm in zip(
        managed, sent_kw, watts, amps, admitted, strict=True
    ):
        profile = new(profile_cls)
        # The instance dict of the frozen dataclass, set in one go.
        set_attr(
            profile,
            "__dict__",
            {
                "transaction_id": session.transaction_id,
                "client_id": session.client_id,
                "connector_id": session.connector_id,
                "allocated_kw": kw,
                "allocated_w": w,
                "allocated_amps_per_phase": a,
                "phases": session.phases,
                "paused": not adm,
            },
        )
        profiles[session.transaction_id] = profile
    return profiles


def _admit(
    ranked: list[int],
    unable: list[bool],
    floor_kw: list[float],
    coef: list[float],
    kw_cons: list[tuple[int, ...]],
    ph_cons: list[list[int]],
    budget: list[float],
    managed: list[Session],
) -> tuple[list[float], list[bool], list[int], dict[int, tuple[int, bool]]]:
    """Admit sessions at their minimum, class by class, as many of each class as fit.

    Priority classes are admitted in order (highest first), each into what the more
    important classes left; within a class `_admit_class` picks the sessions, first
    among those whose turn is due (`Session.turn_due`), then the rest. Returns the
    load of every constraint, whether each session is admitted, the paused sessions (most
    important first), and for each paused session the first constraint without room and
    whether its minimum would fit beside its own class alone (then the more important
    classes took the room: paused for priority).
    """
    n_cons = len(budget)
    # Fast path: add every minimum; if no constraint ends above its budget, every partial
    # sum was below it too (float addition of non-negative terms is monotonic), so the
    # checked loop below would admit everyone with these very loads.
    load = [0.0] * n_cons
    for i in ranked:
        if unable[i]:
            continue
        floor = floor_kw[i]
        for c in kw_cons[i]:
            load[c] += floor
        cons = ph_cons[i]
        if cons:
            amps = floor * coef[i]
            for c in cons:
                load[c] += amps
    if all(x <= limit + EPS for x, limit in zip(load, budget, strict=True)):
        return load, [not u for u in unable], [], {}

    # The classes, each in ranked order (ranked is by priority first).
    classes: list[list[int]] = []
    current: float | None = None
    for i in ranked:
        if unable[i]:
            continue
        priority = managed[i].priority
        if priority != current or not classes:
            current = priority
            classes.append([])
        classes[-1].append(i)

    load = [0.0] * n_cons
    admitted = [False] * len(unable)
    paused: list[int] = []
    blocked: dict[int, tuple[int, bool]] = {}
    for members in classes:
        due = [i for i in members if managed[i].turn_due]
        if due:
            # Their turn has come: admitted first (in turn order), the rest around them.
            base = list(load)
            chosen = _admit_class(due, floor_kw, coef, kw_cons, ph_cons, budget, base)
            for i in chosen:
                for c, x in _amounts(i, floor_kw, coef, kw_cons, ph_cons):
                    base[c] += x
            rest = [i for i in members if not managed[i].turn_due]
            chosen |= _admit_class(rest, floor_kw, coef, kw_cons, ph_cons, budget, base)
        else:
            chosen = _admit_class(
                members, floor_kw, coef, kw_cons, ph_cons, budget, load
            )
        own: dict[int, float] = {}
        for i in members:
            if i not in chosen:
                continue
            admitted[i] = True
            floor = floor_kw[i]
            amps = floor * coef[i]
            for c in kw_cons[i]:
                load[c] += floor
                own[c] = own.get(c, 0.0) + floor
            for c in ph_cons[i]:
                load[c] += amps
                own[c] = own.get(c, 0.0) + amps
        for i in members:
            if i in chosen:
                continue
            paused.append(i)
            floor = floor_kw[i]
            amps = floor * coef[i]
            stop = next(
                (c for c in kw_cons[i] if load[c] + floor > budget[c] + EPS),
                next(
                    (c for c in ph_cons[i] if load[c] + amps > budget[c] + EPS),
                    kw_cons[i][0],
                ),
            )
            alone = all(
                own.get(c, 0.0) + floor <= budget[c] + EPS for c in kw_cons[i]
            ) and all(own.get(c, 0.0) + amps <= budget[c] + EPS for c in ph_cons[i])
            blocked[i] = (stop, alone)
    return load, admitted, paused, blocked


SWAP_TRIES = 24
"""How many admitted sessions the improvement pass tries to swap out, and against how
many paused candidates (the smallest): bounded, so a class of thousands of
sessions costs O(n·d) plus a constant."""


def _amounts(
    i: int,
    floor_kw: list[float],
    coef: list[float],
    kw_cons: list[tuple[int, ...]],
    ph_cons: list[list[int]],
) -> list[tuple[int, float]]:
    """Return what session i's minimum loads on each of its constraints (kW or A)."""
    floor = floor_kw[i]
    amps = floor * coef[i]
    return [(c, floor) for c in kw_cons[i]] + [(c, amps) for c in ph_cons[i]]


def _admit_class(
    members: list[int],
    floor_kw: list[float],
    coef: list[float],
    kw_cons: list[tuple[int, ...]],
    ph_cons: list[list[int]],
    budget: list[float],
    load: list[float],
) -> set[int]:
    """Return the sessions of one priority class admitted at their minimum.

    `members` is the class in importance order (turn, then older first); `load` is what
    the more important classes use. The aim is the largest number of sessions whose
    minimums fit under every constraint (kW and per phase), ties broken by importance:

    1. three greedy passes: in importance order (the old oldest-first rule); by the
       smallest footprint on the binding constraints (a session's largest share of what
       is left of a constraint the class as a whole overflows); and by the smallest
       pressure (its shares of the binding constraints, each weighted by how far the
       class overflows it); ties always in importance order;
    2. on each, an improvement pass that swaps one admitted session for two or more
       paused ones where that fits, then a fill pass that adds any paused session that
       fits now;
    3. the largest of the sets; on a tie the earlier one (importance order first).

    Exact when one constraint binds the class (or the binding ones are loaded alike by
    every session, as on a single kW panel): taking the smallest minimums first is then
    the most that fit. Under several binding constraints (nested panels, phases) it is a
    heuristic, never worse than oldest-first and always maximal (no paused session fits
    beside the admitted ones); against brute force on small random sites it missed the
    optimum in about 1 in 1000 phase-limited cases. Cost O(n·d + n log n) per class plus
    a bounded improvement pass. Deterministic: every order is fixed by the input.
    """

    need = {i: _amounts(i, floor_kw, coef, kw_cons, ph_cons) for i in members}
    top = [b + EPS for b in budget]

    def greedy(order: list[int]) -> tuple[set[int], list[float]]:
        used = list(load)
        chosen: set[int] = set()
        for i in order:
            row = need[i]
            if all(used[c] + x <= top[c] for c, x in row):
                chosen.add(i)
                for c, x in row:
                    used[c] += x
        return chosen, used

    by_rank, used = greedy(members)
    if len(by_rank) == len(members):
        return by_rank
    demand: dict[int, float] = {}
    for i in members:
        for c, x in need[i]:
            demand[c] = demand.get(c, 0.0) + x
    room = {c: budget[c] - load[c] for c, x in demand.items() if load[c] + x > top[c]}

    def footprint(i: int) -> float:
        worst = 0.0
        for c, x in need[i]:
            free = room.get(c)
            if free is None or x <= 0.0:
                continue
            worst = max(worst, _INF if free <= EPS else x / free)
        return worst

    def pressure(i: int) -> float:
        total = 0.0
        for c, x in need[i]:
            free = room.get(c)
            if free is None or x <= 0.0:
                continue
            if free <= EPS:
                return _INF
            total += x / free * (demand[c] / free)
        return total

    # Stable sorts: ties stay in importance order.
    orders = [
        sorted(members, key={i: footprint(i) for i in members}.__getitem__),
        sorted(members, key={i: pressure(i) for i in members}.__getitem__),
    ]
    best = _improve(by_rank, used, orders[0], members, need, top)
    for order in orders:
        chosen, used = greedy(order)
        chosen = _improve(chosen, used, order, members, need, top)
        if len(chosen) > len(best):
            best = chosen
    return best


def _improve(
    chosen: set[int],
    used: list[float],
    by_size: list[int],
    members: list[int],
    need: dict[int, list[tuple[int, float]]],
    top: list[float],
) -> set[int]:
    """Swap one admitted session for two or more paused ones while that fits; then fill.

    `used` is the load of every constraint with the chosen sessions (updated in place),
    `top` every budget plus the tolerance, `by_size` the class from the smallest session
    to the largest (by footprint or pressure). Tries the SWAP_TRIES largest admitted
    sessions against the SWAP_TRIES smallest paused ones; each accepted swap admits one
    more session. After a swap, the fill pass (importance order) leaves no paused
    session that fits (greedy alone already does).
    """

    def fits(i: int) -> bool:
        return all(used[c] + x <= top[c] for c, x in need[i])

    def add(i: int, sign: float) -> None:
        for c, x in need[i]:
            used[c] += sign * x

    chosen = set(chosen)
    candidates = [i for i in by_size if i not in chosen][:SWAP_TRIES]
    tries = [i for i in reversed(by_size) if i in chosen][:SWAP_TRIES]
    swapped = False
    for out in tries:
        add(out, -1.0)
        added = []
        for i in candidates:
            if i not in chosen and fits(i):
                added.append(i)
                add(i, 1.0)
        if len(added) >= 2:
            chosen.discard(out)
            chosen.update(added)
            swapped = True
            continue
        for i in added:
            add(i, -1.0)
        add(out, 1.0)
    if not swapped:
        return chosen  # greedy left no paused session that fits
    for i in members:
        if i not in chosen and fits(i):
            chosen.add(i)
            add(i, 1.0)
    return chosen


def _water_fill(
    *,
    n_panels: int,
    children: tuple[tuple[int, ...], ...],
    budget: list[float],
    load: list[float],
    session_panel: list[int],
    admitted: list[bool],
    floor_kw: list[float],
    ceil_kw: list[float],
    weight: list[float],
    coef: list[float],
    category: list[int],
    kw_cons: list[tuple[int, ...]],
    ph_cons: list[list[int]],
) -> tuple[list[float], list[int]]:
    """Raise all admitted sessions from their floor along one weighted level.

    Returns the power of every session (0 for sessions not admitted) and the constraint
    that froze each (`_CEILING` for a session at its ceiling or not admitted). `load`
    ends as the load of every constraint.
    """
    n_cons = len(budget)
    value = [f if a else 0.0 for f, a in zip(floor_kw, admitted, strict=True)]
    why = [_CEILING] * len(value)
    moves = [a and c > f for a, f, c in zip(admitted, floor_kw, ceil_kw, strict=True)]
    state = [_FLOOR if m else _FROZEN for m in moves]
    fixed = load  # load of sessions not rising
    slope = [0.0] * n_cons
    rising = [0] * n_cons
    done = [False] * n_cons
    version = [0] * n_cons
    heap: list[tuple[float, int, int]] = []
    mark = [0] * n_cons
    stamp = 0

    movable = [i for i, m in enumerate(moves) if m]
    rise_at = [f / w for f, w in zip(floor_kw, weight, strict=True)]
    cap_at = [c / w for c, w in zip(ceil_kw, weight, strict=True)]
    rises = sorted(movable, key=rise_at.__getitem__)
    caps = sorted(movable, key=cap_at.__getitem__)

    # Members per (panel, category) and children, for freezing a subtree. The members of
    # one (panel, category) share their constraints.
    members: list[list[list[int]]] = [[[], [], [], [], []] for _ in range(n_panels)]
    for i in movable:
        members[session_panel[i]][category[i]].append(i)
    walked = [[False, False, False, False, False] for _ in range(n_panels)]

    def freeze(group: list[int], level: float, cause: int) -> None:
        """Freeze the sessions of one (panel, category) at the level, bound by cause.

        Sessions at their floor stay there. Every constraint sees the same sequence of
        float updates as when the sessions are frozen one by one.
        """
        xs: list[float] = []
        ws: list[float] = []
        axs: list[float] = []
        aws: list[float] = []
        for i in group:
            s = state[i]
            if s == _RISING:
                w = weight[i]
                x = min(ceil_kw[i], max(floor_kw[i], w * level))
                value[i] = x
                a = coef[i]
                xs.append(x)
                ws.append(w)
                axs.append(a * x)
                aws.append(a * w)
                state[i] = _FROZEN
                why[i] = cause
            elif s == _FLOOR:
                state[i] = _FROZEN
                why[i] = cause
        if not xs:
            return
        count = len(xs)
        first = group[0]
        # A constraint counts every rising session of the group, so it reaches zero
        # rising sessions at the group's last one, if at all.
        for c in kw_cons[first]:
            f = fixed[c]
            for x in xs:
                f += x
            fixed[c] = f
            r = rising[c] - count
            rising[c] = r
            if r:
                sl = slope[c]
                for w in ws:
                    sl -= w
                slope[c] = sl
            else:
                slope[c] = 0.0
        for c in ph_cons[first]:
            f = fixed[c]
            for x in axs:
                f += x
            fixed[c] = f
            r = rising[c] - count
            rising[c] = r
            if r:
                sl = slope[c]
                for w in aws:
                    sl -= w
                slope[c] = sl
            else:
                slope[c] = 0.0

    def bind(c: int, level: float) -> None:
        """Constraint c is tight: freeze every session that loads it."""
        done[c] = True
        cats: tuple[int, ...]
        if c < n_panels:
            top, cats = c, (0, 1, 2, 3, _SPLIT)
        else:
            top, phase = divmod(c - n_panels, 3)
            cats = (0, 1 + phase, _SPLIT) if phase < 2 else (0, 1 + phase)
        stack: list[tuple[int, tuple[int, ...]]] = [(top, cats)]
        while stack:
            k, wanted = stack.pop()
            seen = walked[k]
            todo = tuple(cat for cat in wanted if not seen[cat])
            if not todo:
                continue
            groups = members[k]
            for cat in todo:
                seen[cat] = True
                if groups[cat]:
                    freeze(groups[cat], level, c)
            stack.extend((child, todo) for child in children[k])

    level = 0.0
    ri = ci = 0
    n_moving = len(movable)
    while True:
        next_rise = rise_at[rises[ri]] if ri < n_moving else _INF
        next_cap = cap_at[caps[ci]] if ci < n_moving else _INF
        next_event = min(next_rise, next_cap)
        while heap:
            when, c, ver = heap[0]
            if done[c] or ver != version[c]:
                heappop(heap)
                continue
            if when > next_event:
                break
            heappop(heap)
            # Entries are lower bounds: check the real binding level now.
            if not rising[c]:
                continue
            real = (budget[c] - fixed[c]) / slope[c]
            if real > when + EPS * max(1.0, abs(when)):
                version[c] += 1
                heappush(heap, (real, c, version[c]))
                continue
            level = max(level, when)
            bind(c, level)
        if next_event == _INF:
            break
        level = max(level, next_event)
        # Every session event at this level, then one heap entry per touched constraint.
        stamp += 1
        touched: list[int] = []
        while ri < n_moving and rise_at[rises[ri]] <= next_event:
            i = rises[ri]
            ri += 1
            if state[i] != _FLOOR:
                continue
            state[i] = _RISING
            w, m, a = weight[i], floor_kw[i], coef[i]
            for c in kw_cons[i]:
                fixed[c] -= m
                slope[c] += w
                rising[c] += 1
                if mark[c] != stamp:
                    mark[c] = stamp
                    touched.append(c)
            cons = ph_cons[i]
            if cons:
                am, aw = a * m, a * w
                for c in cons:
                    fixed[c] -= am
                    slope[c] += aw
                    rising[c] += 1
                    if mark[c] != stamp:
                        mark[c] = stamp
                        touched.append(c)
        # Caps only raise the level at which a constraint binds, so when no session rose
        # here, the caps below the next rise and the lowest pending binding are taken in
        # one go (each at its own level, as one event per level would).
        limit = next_event
        if not touched:
            limit = min(next_rise, heap[0][0] if heap else _INF)
        while ci < n_moving:
            i = caps[ci]
            at = cap_at[i]
            if at > level:
                if at > next_event and at >= limit:
                    break
                level = at
            ci += 1
            if state[i] != _RISING:
                continue
            state[i] = _CAPPED
            x = ceil_kw[i]
            value[i] = x
            w = weight[i]
            for c in kw_cons[i]:
                fixed[c] += x
                slope[c] -= w
                r = rising[c] - 1
                rising[c] = r
                if not r:
                    slope[c] = 0.0
            cons = ph_cons[i]
            if cons:
                a = coef[i]
                ax, aw = a * x, a * w
                for c in cons:
                    fixed[c] += ax
                    slope[c] -= aw
                    r = rising[c] - 1
                    rising[c] = r
                    if not r:
                        slope[c] = 0.0
        for c in touched:
            if rising[c]:
                version[c] += 1
                when = max(level, (budget[c] - fixed[c]) / slope[c])
                heappush(heap, (when, c, version[c]))
    return value, why
