"""The charging planner: every session's current per slot until its departure.

Pure Python, no I/O, deterministic. `plan_charging(site, requests, slots, ...)` takes the
panel tree (`Site`), the sessions with their goals (`PlanRequest`), and the forecast slots
(`PlanSlot`: price, household load per panel, solar surplus, time-of-use multiplier), and
returns a `ChargingPlan`: per session and slot a current per phase (0 or within the
session's [minimum, maximum]), the energy by the departure, whether the goal is met (else
the shortfall), the cost, and per panel and slot the planned load.

**Limits.** In every slot, for every panel: the cars below it plus its forecast load (the
slot's `load_kw` for the panel, else its `unmanaged_load_kw`, plus the measured power of
unmanaged sessions) stay within `limit_kw * (1 - margin) * multiplier` and, with a current
limit, each phase within `phase_limit_a * (1 - margin) * multiplier` (a single-phase car
loads only its grid phase; forecast load is spread evenly on the three phases). The
multiplier is capped at 1 and scales both, as the live engine does. Currents are planned on
a 0.1 A grid (what amps-mode profiles carry): maxima are rounded down, minima up, so a plan
sent as is never exceeds a budget. Solar surplus is a site-wide forecast that never lifts a
breaker's budget (conservative: the sub-panels carry the current either way); it only makes
energy cheaper. The cost of a slot's car energy: up to the surplus at
`min(feed-in price, price)`, the rest at the price; each session pays its share in
proportion to its power.

**Algorithm** (greedy by urgency, then repair and local improvement):

1. Sessions are ranked by departure (earliest first), then priority (highest first), then
   `sequence` and input order; *solar only* sessions come last (they take what is left).
2. Each session in turn fills its slots in the order of its mode until its need is met:
   *as fast as possible*: earliest first; *by departure — cheapest*: cheapest marginal
   cost first (solar at the feed-in price), ties earliest; *solar first*: slots with
   surplus left first, then by price; *solar only*: only the surplus left. A slot gets
   `min(maximum, room in every panel and phase above, need)`; a slot whose room is below the
   minimum gets nothing. The last piece of a goal smaller than the minimum is given at the
   minimum and the excess is taken back from the session's most expensive slots (never
   below the minimum), so goals are met within one 0.1 A step.
3. Repair: for a goal still short, where a shared breaker (not the car's own maximum)
   stops it in a slot, another car's energy in that slot is moved elsewhere when that
   gives the short car more and leaves the other car's goal no worse (at most 200 trials).
4. Improvement (the two *by departure* modes): each session moves energy from its most
   expensive slot to a cheaper one with room (same slot length, minimums kept) until no
   move lowers its cost; then pairwise exchanges: car b, held back by a shared breaker in
   a cheaper slot c where car a charges, takes a's place there while a moves to a slot
   cheaper than b's dearest (at most 2000 trials), and the single moves run again.

**Where it is optimal.** With one price per slot for everyone, all cars plugged in from
the first slot, one binding fuse, minimums that do not bind and car maxima at least the
fuse's room, the cost depends only on how much energy each slot holds, and serving the
earliest departure first from its cheapest slots is optimal: by an exchange argument, a
slot the earlier car takes is also in every later car's window, so giving it to a later
car instead cannot make anything cheaper. Car maxima below the fuse break that for the
greedy alone (two cars of 10 A on a 16 A fuse: 48 instead of the optimum 44,
`test_exchange_reaches_the_optimum_with_car_maxima_below_the_fuse`); the repair and
exchange steps fix such cases. `test_one_fuse_matches_the_min_cost_flow_optimum` checks
one-fuse sites without minimums, maxima above or below the fuse, against an exact
min-cost flow (most energy, then least cost). The table tests (two cars on one fuse with
hourly prices, a solar day, a goal that cannot be met) match their hand-computed optima.
**Where it is a heuristic:** trees where different cars are bound by different
sub-panels or phases, minimums that make slots all-or-nothing, surplus valued differently
by different modes, partial slots at a departure, and the trial caps. The result is then
a local optimum for single moves, displacements and pairwise exchanges, not a proven
global one (that needs a mixed-integer program).

Every charging slot carries a reason: `as_fast_as_possible`, `solar`, `cheapest`, or
`needed_for_departure` (a cheaper slot was full, so a dearer one had to be used).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
import math

from .errors import EngineConfigError
from .model import Session, SessionKey, Site, Strategy, time_of_use_multiplier
from .planner_model import (
    ChargingPlan,
    PanelPlan,
    PlanMode,
    PlanReason,
    PlanRequest,
    PlanSlot,
    SessionPlan,
    ShortfallReason,
    SlotPlan,
)

UNIT_A = 0.1
"""The planner's current step (A): the resolution of amps-mode charging profiles."""

SLOT_MINUTES = (15, 60)
_EPS = 1e-9
_ENERGY_EPS = 1e-6
_MAX_ROUNDS = 20
_MAX_REPAIRS = 200
_MAX_EXCHANGES = 2000


@dataclass(slots=True)
class _Car:
    """One managed session in the planner's units (0.1 A steps)."""

    position: int
    request: PlanRequest
    mode: PlanMode
    departure: datetime
    need: float  # kWh still missing (inf: no goal)
    needed: float
    min_u: int
    max_u: int
    kw_u: float  # kW per 0.1 A step
    cons: tuple[tuple[int, float], ...]  # (constraint, load per step)
    hours: list[float]  # usable hours in each slot (0 outside the window)


class _State:
    """The plan being built: steps per car and slot, free room per constraint and slot."""

    def __init__(
        self,
        free: list[list[float]],
        cars: list[_Car],
        solar: list[float],
        prices: list[float],
        feed_in: float,
    ) -> None:
        self.free = free
        self.cars = cars
        self.solar = solar
        self.prices = prices
        self.solar_price = [min(feed_in, p) for p in prices]
        self.power = [0.0] * len(prices)  # kW of all cars per slot
        self.steps = [[0] * len(prices) for _ in cars]
        self.reasons = [[PlanReason.IDLE] * len(prices) for _ in cars]

    def save(
        self, *cars: _Car
    ) -> tuple[list[list[float]], list[float], list[list[int]], list[list[PlanReason]]]:
        """Return a copy of what a trial on cars may change."""
        return (
            [list(row) for row in self.free],
            list(self.power),
            [list(self.steps[car.position]) for car in cars],
            [list(self.reasons[car.position]) for car in cars],
        )

    def restore(
        self,
        saved: tuple[
            list[list[float]], list[float], list[list[int]], list[list[PlanReason]]
        ],
        *cars: _Car,
    ) -> None:
        """Put back what save returned (the cars' needs are the caller's)."""
        for row, copy in zip(self.free, saved[0], strict=True):
            row[:] = copy
        self.power[:] = saved[1]
        for car, steps, reasons in zip(cars, saved[2], saved[3], strict=True):
            self.steps[car.position][:] = steps
            self.reasons[car.position][:] = reasons

    def room(self, car: _Car, t: int) -> int:
        """Return how many steps car may add in slot t under every constraint."""
        free = self.free[t]
        room = car.max_u - self.steps[car.position][t]
        for c, per_step in car.cons:
            fits = math.floor(free[c] / per_step + _EPS)
            room = min(room, fits)
        return room

    def solar_steps(self, car: _Car, t: int) -> int:
        """Return how many steps of car the surplus left in slot t covers."""
        left = self.solar[t] - self.power[t]
        return math.floor(left / car.kw_u + _EPS) if left > 0 else 0

    def apply(self, car: _Car, t: int, steps: int) -> None:
        """Add (or with a negative count remove) steps of car in slot t."""
        self.steps[car.position][t] += steps
        free = self.free[t]
        for c, per_step in car.cons:
            free[c] -= steps * per_step
        self.power[t] += steps * car.kw_u
        car.need -= steps * car.kw_u * car.hours[t]

    def add_cost(self, car: _Car, t: int) -> float:
        """Return the marginal cost per kWh of more power in slot t for car's mode."""
        solar_left = self.solar[t] - self.power[t] > car.kw_u * 0.5
        if car.mode is PlanMode.BY_DEPARTURE_SOLAR_FIRST and solar_left:
            return -math.inf
        return self.solar_price[t] if solar_left else self.prices[t]

    def remove_value(self, car: _Car, t: int) -> float:
        """Return the marginal cost per kWh saved by less power in slot t for car's mode."""
        on_grid = self.power[t] - self.solar[t] > car.kw_u * 0.5
        if car.mode is PlanMode.BY_DEPARTURE_SOLAR_FIRST and not on_grid:
            return -math.inf
        return self.prices[t] if on_grid else self.solar_price[t]


def plan_charging(
    site: Site,
    requests: Sequence[PlanRequest],
    slots: Sequence[PlanSlot],
    *,
    slot_minutes: int,
    now: datetime | None = None,
    feed_in_price: float = 0.0,
) -> ChargingPlan:
    """Plan every request's current per slot (see the module docstring).

    `slots` start at increasing aware times, each `slot_minutes` (15 or 60) long; `now`
    (default: the first slot's start) cuts the part of a slot already past; solar surplus
    costs `feed_in_price` per kWh (0: free). Unmanaged sessions count as load at their
    measured power and get no plan. Raises EngineConfigError on invalid input.
    """
    starts, ends = _slot_times(slots, slot_minutes)
    horizon_start = starts[0] if now is None else now
    if horizon_start.tzinfo is None:
        raise EngineConfigError("now must be an aware datetime")
    if not math.isfinite(feed_in_price):
        raise EngineConfigError("feed_in_price must be finite")
    free, budgets = _budgets(site, requests, slots)
    cars = _cars(site, requests, starts, ends, horizon_start)
    state = _State(
        free,
        cars,
        [slot.solar_kw for slot in slots],
        [float(slot.price) for slot in slots],
        feed_in_price,
    )
    ranked = sorted(cars, key=_rank)
    for car in ranked:
        _fill(state, car)
    _repair(state, ranked)
    for car in ranked:
        if car.mode in _IMPROVED:
            _improve(state, car)
    exchanged = _exchange(state, ranked)
    for car in ranked:
        if car.position in exchanged:
            _improve(state, car)
    return _result(site, state, starts, ends, budgets, horizon_start)


def _slot_times(
    slots: Sequence[PlanSlot], slot_minutes: int
) -> tuple[list[datetime], list[datetime]]:
    """Return the slots' starts and ends; check the length and the order."""
    if slot_minutes not in SLOT_MINUTES:
        raise EngineConfigError(f"slot_minutes must be 15 or 60, got {slot_minutes!r}")
    if not slots:
        raise EngineConfigError("a plan needs at least one slot")
    length = timedelta(minutes=slot_minutes)
    starts = [slot.start for slot in slots]
    for before, after in pairwise(starts):
        if after < before + length:
            raise EngineConfigError(
                f"slots must not overlap and must be in order: {after} after {before}"
            )
    return starts, [start + length for start in starts]


def _multiplier(site: Site, slot: PlanSlot, k: int) -> float:
    """Return the time-of-use factor of panel k in slot, capped at 1."""
    panel = site.panels[k]
    given = slot.multiplier
    value = given.get(panel.id) if isinstance(given, Mapping) else given
    if value is None:
        if panel.strategy is Strategy.TIME_OF_USE:
            value = time_of_use_multiplier(
                panel.time_of_use_windows, slot.start, site.zone
            )
        else:
            value = 1.0
    return min(1.0, float(value))


def _budgets(
    site: Site, requests: Sequence[PlanRequest], slots: Sequence[PlanSlot]
) -> tuple[list[list[float]], list[list[float]]]:
    """Return the free room per slot and constraint, and a copy of it (the budgets).

    Constraint k is panel k's kW; n + 3k + p is phase p of panel k (inf without a limit).
    """
    panels = site.panels
    n = len(panels)
    balanced = 1000.0 / (3.0 * site.voltage_v)
    fixed_kw = [0.0] * n
    fixed_a = [[0.0, 0.0, 0.0] for _ in range(n)]
    for request in requests:
        session = request.session
        if session.managed:
            continue
        k = _panel_index(site, session)
        fixed_kw[k] += session.measured_power_kw
        for p, amps in enumerate(session.phase_currents(session.measured_power_kw)):
            fixed_a[k][p] += amps
    free: list[list[float]] = []
    for slot in slots:
        node_kw = list(fixed_kw)
        node_a = [list(row) for row in fixed_a]
        for k, panel in enumerate(panels):
            if panel.id in slot.load_kw:
                load = slot.load_kw[panel.id]
                extra = (load * balanced,) * 3
            else:
                load = panel.unmanaged_load_kw
                extra = panel.unmanaged_phase_a or (load * balanced,) * 3
            node_kw[k] += load
            for p in range(3):
                node_a[k][p] += extra[p]
        for k in reversed(site.order):
            parent = site.parents[k]
            if parent >= 0:
                node_kw[parent] += node_kw[k]
                for p in range(3):
                    node_a[parent][p] += node_a[k][p]
        row = [math.inf] * (4 * n)
        for k, panel in enumerate(panels):
            factor = (1.0 - panel.safety_margin_pct / 100.0) * _multiplier(
                site, slot, k
            )
            row[k] = panel.limit_kw * factor - node_kw[k]
            if panel.phase_limit_a is not None:
                for p in range(3):
                    row[n + 3 * k + p] = panel.phase_limit_a * factor - node_a[k][p]
        free.append(row)
    return free, [list(row) for row in free]


def _panel_index(site: Site, session: Session) -> int:
    if session.panel_id is None:
        return site.order[0]
    try:
        return site.index[session.panel_id]
    except KeyError as err:
        raise EngineConfigError(
            f"session {session.transaction_id!r} is under an unknown panel "
            f"{session.panel_id!r}"
        ) from err


def _cars(
    site: Site,
    requests: Sequence[PlanRequest],
    starts: list[datetime],
    ends: list[datetime],
    horizon_start: datetime,
) -> list[_Car]:
    """Return the managed requests in the planner's units."""
    n = len(site.panels)
    seen: set[SessionKey] = set()
    cars: list[_Car] = []
    for request in requests:
        session = request.session
        key = session.transaction_id
        if key in seen:
            raise EngineConfigError(f"duplicate transaction id {key!r}")
        seen.add(key)
        k = _panel_index(site, session)
        if not session.managed:
            continue
        kw_per_a = session.phases * session.voltage_v / 1000.0
        min_a = (
            request.min_current_a
            if request.min_current_a is not None
            else session.min_kw / kw_per_a
        )
        max_a = session.ceiling_kw / kw_per_a
        if request.max_current_a is not None:
            max_a = min(max_a, request.max_current_a)
        min_u = max(1, math.ceil(min_a / UNIT_A - 1e-6))
        max_u = math.floor(max_a / UNIT_A + 1e-6)
        cons: list[tuple[int, float]] = []
        for j in site.ancestors[k]:
            cons.append((j, kw_per_a * UNIT_A))
            if site.panels[j].phase_limit_a is not None:
                loaded = range(3) if session.phases == 3 else (session.phase_index,)
                cons.extend((n + 3 * j + p, UNIT_A) for p in loaded)
        goal = request.goal
        departure = goal.departure if goal.departure is not None else ends[-1]
        hours = [
            max(0.0, (min(end, departure) - max(start, horizon_start)).total_seconds())
            / 3600.0
            for start, end in zip(starts, ends, strict=True)
        ]
        needed = goal.needed_kwh()
        cars.append(
            _Car(
                position=len(cars),
                request=request,
                mode=goal.mode,
                departure=departure,
                need=needed,
                needed=needed,
                min_u=min_u,
                max_u=max_u,
                kw_u=kw_per_a * UNIT_A,
                cons=tuple(cons),
                hours=hours,
            )
        )
    return cars


def _rank(car: _Car) -> tuple[int, float, float, int, int]:
    """Sort key: solar-only last, then earliest departure, highest priority, sequence."""
    session = car.request.session
    return (
        1 if car.mode is PlanMode.SOLAR_ONLY else 0,
        car.departure.timestamp(),
        -session.priority,
        session.sequence,
        car.position,
    )


_SOLAR, _GRID = 0, 1
_IMPROVED = (PlanMode.BY_DEPARTURE_CHEAPEST, PlanMode.BY_DEPARTURE_SOLAR_FIRST)


def _candidates(
    state: _State, car: _Car
) -> list[tuple[tuple[float, float, int, int], int, int]]:
    """Return (key, slot, part) in the order car's mode fills them."""
    out: list[tuple[tuple[float, float, int, int], int, int]] = []
    for t, hours in enumerate(car.hours):
        if hours <= 0:
            continue
        has_solar = state.solar[t] - state.power[t] > _EPS
        price = state.prices[t]
        if car.mode is PlanMode.AS_FAST_AS_POSSIBLE:
            out.append(((0.0, 0.0, t, 0), t, _GRID))
        elif car.mode is PlanMode.SOLAR_ONLY:
            if has_solar:
                out.append(((0.0, 0.0, t, 0), t, _SOLAR))
        elif car.mode is PlanMode.BY_DEPARTURE_SOLAR_FIRST:
            if has_solar:
                out.append(((0.0, state.solar_price[t], t, 0), t, _SOLAR))
            out.append(((1.0, price, t, 1), t, _GRID))
        else:
            if has_solar:
                out.append(((state.solar_price[t], 0.0, t, 0), t, _SOLAR))
            out.append(((price, 0.0, t, 1), t, _GRID))
    out.sort()
    return out


def _fill(
    state: _State,
    car: _Car,
    *,
    only: int | None = None,
    skip: int | None = None,
) -> None:
    """Give car its cheapest (by its mode) slots until its need is met.

    `only` restricts the fill to one slot, `skip` leaves one out (for the repair).
    """
    if car.max_u < car.min_u:
        return
    chosen: list[int] = []
    blocked: tuple[float, float, int, int] | None = None
    steps = state.steps[car.position]
    for key, t, part in _candidates(state, car):
        if car.need <= _ENERGY_EPS:
            break
        if t == skip or (only is not None and t != only):
            continue
        room = state.room(car, t)
        cap = room
        if part == _SOLAR:
            cap = min(cap, state.solar_steps(car, t))
        per_step = car.kw_u * car.hours[t]
        want = (
            cap
            if math.isinf(car.need)
            else math.ceil(car.need / per_step - _ENERGY_EPS)
        )
        add = min(cap, want)
        have = steps[t]
        if add > 0 and have + add < car.min_u:
            # A piece below the minimum: the last piece of the goal can be given at the
            # minimum (the excess is taken back from the dearest slots); else nothing.
            add = car.min_u if have == 0 and want < car.min_u <= cap else 0
        if add <= 0:
            if cap < car.max_u - have and blocked is None:
                blocked = key
            continue
        state.apply(car, t, add)
        chosen.append(t)
        state.reasons[car.position][t] = _reason(car, part, blocked, key)
        if add == cap and cap < car.max_u - have and blocked is None:
            blocked = key
        if car.need < -_ENERGY_EPS:
            _shave(state, car, chosen)


def _repair(state: _State, ranked: list[_Car]) -> None:
    """Free room for goals the greedy left short, by moving other cars' energy away.

    For a car short of its goal and a slot in its window where a breaker (not its own
    maximum) stops it, each other car charging there under a shared breaker is tried:
    its energy in that slot is taken out and placed elsewhere where possible, and the
    short car fills the room that is left (see _try_displace). The trial is kept only when the short car gets more and the other
    car's goal is no worse; else everything is put back. At most _MAX_REPAIRS trials.
    """
    trials = 0
    shared = [frozenset(c for c, _ in car.cons) for car in ranked]
    for index, car in enumerate(ranked):
        if (
            car.mode is PlanMode.SOLAR_ONLY
            or math.isinf(car.need)
            or car.need <= _ENERGY_EPS
            or car.max_u < car.min_u
        ):
            continue
        steps = state.steps[car.position]
        for t, hours in enumerate(car.hours):
            if car.need <= _ENERGY_EPS:
                break
            if hours <= 0 or state.room(car, t) >= car.max_u - steps[t]:
                continue
            for other_index, other in enumerate(ranked):
                if (
                    other is car
                    or state.steps[other.position][t] == 0
                    or not shared[index] & shared[other_index]
                ):
                    continue
                if trials >= _MAX_REPAIRS:
                    return
                trials += 1
                _try_displace(state, car, other, t)
                if state.room(car, t) >= car.max_u - steps[t]:
                    break


def _try_displace(state: _State, car: _Car, other: _Car, t: int) -> bool:
    """Move other's energy out of slot t so that car can use it; undo unless better.

    Two variants, the first that helps is kept: (1) other moves what it can elsewhere,
    takes back in t only what it still lacks, and car fills the rest of t; (2) car fills
    t first and other refills wherever it can.
    """
    need, other_need = car.need, other.need
    for variant in (1, 2):
        saved = state.save(car, other)
        state.apply(other, t, -state.steps[other.position][t])
        state.reasons[other.position][t] = PlanReason.IDLE
        if variant == 1:
            _fill(state, other, skip=t)
            _fill(state, other, only=t)
            _fill(state, car, only=t)
        else:
            _fill(state, car, only=t)
            _fill(state, other)
        if (
            car.need < need - _ENERGY_EPS
            and other.need <= max(other_need, 0.0) + _ENERGY_EPS
        ):
            return True
        state.restore(saved, car, other)
        car.need, other.need = need, other_need
    return False


def _reason(
    car: _Car,
    part: int,
    blocked: tuple[float, float, int, int] | None,
    key: tuple[float, float, int, int],
) -> PlanReason:
    if car.mode is PlanMode.AS_FAST_AS_POSSIBLE:
        return PlanReason.AS_FAST_AS_POSSIBLE
    if part == _SOLAR:
        return PlanReason.SOLAR
    if blocked is not None and blocked[:2] < key[:2]:
        return PlanReason.DEPARTURE
    return PlanReason.CHEAPEST


def _shave(state: _State, car: _Car, chosen: list[int]) -> None:
    """Take back an excess (need < 0) from the car's dearest slots, keeping minimums."""
    steps = state.steps[car.position]
    for t in reversed(chosen[:-1]):
        per_step = car.kw_u * car.hours[t]
        excess = -car.need
        back = min(steps[t] - car.min_u, math.floor(excess / per_step + _EPS))
        if back > 0:
            state.apply(car, t, -back)
        if car.need > -per_step:
            break


def _improve(state: _State, car: _Car) -> None:
    """Move energy from car's dearest slots to cheaper ones while that saves money.

    Rounds over the car's slots, dearest first, each tried against the cheaper slots with
    room, cheapest first; it stops after a round without a move (or _MAX_ROUNDS).
    """
    steps = state.steps[car.position]
    hours = car.hours
    window = [t for t, h in enumerate(hours) if h > 0]
    for _ in range(_MAX_ROUNDS):
        moved = False
        targets = sorted(window, key=lambda t: (state.add_cost(car, t), t))
        used = [t for t in window if steps[t] > 0]
        used.sort(key=lambda t: (-state.remove_value(car, t), -t))
        for u in used:
            value = state.remove_value(car, u)
            for v in targets:
                if steps[u] == 0 or state.add_cost(car, v) >= value - _EPS:
                    break
                if v == u or hours[v] != hours[u]:
                    continue
                room = state.room(car, v)
                if room <= 0 or steps[v] + min(steps[u], room) < car.min_u:
                    continue
                if _move(state, car, u, v, room):
                    moved = True
                    value = state.remove_value(car, u)
        if not moved:
            return


def _move(state: _State, car: _Car, u: int, v: int, room: int) -> bool:
    """Move steps of car from slot u to slot v if that lowers the site's cost.

    Tried amounts: everything in u, what fits in v, and what stays within the surplus
    (in v) or the grid part (in u); each keeps both slots at 0 or within the range. The
    amount that lowers the cost most is kept.
    """
    steps = state.steps[car.position]
    tries = {
        steps[u],
        min(steps[u], room),
        min(steps[u], room, state.solar_steps(car, v)),
    }
    over = state.power[u] - state.solar[u]
    if over > 0:
        tries.add(min(steps[u], room, math.ceil(over / car.kw_u - _EPS)))
    best, best_score = 0, _score(state, car, u, v)
    for amount in sorted(tries, reverse=True):
        left = steps[u] - amount
        if (
            amount <= 0
            or amount > room
            or 0 < left < car.min_u
            or steps[v] + amount < car.min_u
        ):
            continue
        state.apply(car, u, -amount)
        state.apply(car, v, amount)
        score = _score(state, car, u, v)
        state.apply(car, v, -amount)
        state.apply(car, u, amount)
        if score < best_score:
            best, best_score = amount, score
    if best <= 0:
        return False
    state.apply(car, u, -best)
    state.apply(car, v, best)
    reason = state.reasons[car.position]
    if state.solar[v] >= state.power[v] - _EPS:
        reason[v] = PlanReason.SOLAR
    elif reason[v] is PlanReason.IDLE:
        reason[v] = reason[u]
    if steps[u] == 0:
        reason[u] = PlanReason.IDLE
    return True


def _score(state: _State, car: _Car, u: int, v: int) -> tuple[float, float]:
    """Return what a move between slots u and v minimises for car's mode (lexicographic).

    Solar first: the surplus left unused, then the cost; other modes: the cost only. A
    move counts only when it improves by more than float noise.
    """
    cost = _slot_cost(state, u) + _slot_cost(state, v)
    cost = round(cost, 9)
    if car.mode is not PlanMode.BY_DEPARTURE_SOLAR_FIRST:
        return (0.0, cost)
    used = min(state.power[u], state.solar[u]) + min(state.power[v], state.solar[v])
    return (-round(used, 9), cost)


def _exchange(state: _State, ranked: list[_Car]) -> set[int]:
    """Pairwise exchanges between *by departure* cars that lower the site's cost.

    Car b has energy in a dear slot u and is held back by a shared breaker in a cheaper
    slot c, where car a charges; a moves some energy from c to a slot d cheaper than u,
    and b moves from u into the room a left in c. Each car keeps its energy; kept only
    when the site's cost falls. Returns the positions of the cars that changed.
    """
    cars = [c for c in ranked if c.mode in _IMPROVED and c.max_u >= c.min_u]
    shared = {c.position: frozenset(x for x, _ in c.cons) for c in cars}
    trials = 0
    changed: set[int] = set()
    while trials < _MAX_EXCHANGES:
        done = False
        for b, a, c, d, u in _exchange_candidates(state, cars, shared):
            trials += 1
            if trials > _MAX_EXCHANGES:
                return changed
            if _try_exchange(state, a, b, c, d, u):
                changed.update((a.position, b.position))
                done = True
                break
        if not done:
            return changed
    return changed  # pragma: no cover - the loop returns


def _exchange_candidates(
    state: _State, cars: list[_Car], shared: dict[int, frozenset[int]]
) -> Iterator[tuple[_Car, _Car, int, int, int]]:
    """Yield (b, a, c, d, u) for _exchange, most promising first per car b."""
    prices = state.prices
    by_price = sorted(range(len(prices)), key=lambda t: (prices[t], t))
    for b in cars:
        steps_b = state.steps[b.position]
        used = [t for t in reversed(by_price) if steps_b[t] > 0]
        for u in used:
            for c in by_price:
                if prices[c] >= prices[u] - _EPS or steps_b[u] == 0:
                    break
                if c == u or b.hours[c] != b.hours[u]:
                    continue
                if state.room(b, c) >= min(steps_b[u], b.max_u - steps_b[c]):
                    continue  # not held back: _improve's job
                for a in cars:
                    if (
                        a is b
                        or state.steps[a.position][c] == 0
                        or not shared[a.position] & shared[b.position]
                    ):
                        continue
                    for d in by_price:
                        if prices[d] >= prices[u] - _EPS:
                            break
                        if d != c and a.hours[d] == a.hours[c]:
                            yield b, a, c, d, u


def _try_exchange(state: _State, a: _Car, b: _Car, c: int, d: int, u: int) -> bool:
    """Try the exchange of _exchange; keep the best amount if it lowers the cost."""
    steps_a, steps_b = state.steps[a.position], state.steps[b.position]
    room_a = state.room(a, d)
    if room_a <= 0:
        return False
    wanted = min(steps_b[u], b.max_u - steps_b[c])
    options = {
        min(steps_a[c], room_a),
        min(steps_a[c], room_a, math.ceil(wanted * b.kw_u / a.kw_u - _EPS)),
    }
    before = _slot_cost(state, c) + _slot_cost(state, d) + _slot_cost(state, u)
    best, best_cost = 0, before - _EPS
    for option in sorted(options, reverse=True):
        move_a = option
        if 0 < steps_a[c] - move_a < a.min_u:
            move_a = steps_a[c] - a.min_u
        if move_a <= 0 or steps_a[d] + move_a < a.min_u:
            continue
        needs = a.need, b.need
        state.apply(a, c, -move_a)
        state.apply(a, d, move_a)
        move_b = min(steps_b[u], state.room(b, c))
        if 0 < steps_b[u] - move_b < b.min_u:
            move_b = steps_b[u] - b.min_u
        cost = math.inf
        if move_b > 0 and steps_b[c] + move_b >= b.min_u:
            state.apply(b, u, -move_b)
            state.apply(b, c, move_b)
            cost = _slot_cost(state, c) + _slot_cost(state, d) + _slot_cost(state, u)
            state.apply(b, c, -move_b)
            state.apply(b, u, move_b)
        state.apply(a, d, -move_a)
        state.apply(a, c, move_a)
        a.need, b.need = needs
        if cost < best_cost:
            best, best_cost = move_a, cost
    if best <= 0:
        return False
    state.apply(a, c, -best)
    state.apply(a, d, best)
    move_b = min(steps_b[u], state.room(b, c))
    if 0 < steps_b[u] - move_b < b.min_u:
        move_b = steps_b[u] - b.min_u
    if move_b <= 0 or steps_b[c] + move_b < b.min_u:  # float noise changed the room
        state.apply(a, d, -best)
        state.apply(a, c, best)
        return False
    state.apply(b, u, -move_b)
    state.apply(b, c, move_b)
    for car, slot in ((a, d), (b, c)):
        reasons = state.reasons[car.position]
        if reasons[slot] is PlanReason.IDLE:
            reasons[slot] = PlanReason.CHEAPEST
    for car, slot in ((a, c), (b, u)):
        if state.steps[car.position][slot] == 0:
            state.reasons[car.position][slot] = PlanReason.IDLE
    return True


def _slot_cost(state: _State, t: int) -> float:
    """Return the cost rate (per hour) of all car power in slot t."""
    power = state.power[t]
    solar = min(power, state.solar[t])
    return solar * state.solar_price[t] + (power - solar) * state.prices[t]


def _result(
    site: Site,
    state: _State,
    starts: list[datetime],
    ends: list[datetime],
    budgets: list[list[float]],
    horizon_start: datetime,
) -> ChargingPlan:
    """Build the plan's result types from the state."""
    n = len(site.panels)
    n_slots = len(starts)
    unit_cost = [
        _slot_cost(state, t) / state.power[t] if state.power[t] > _EPS else 0.0
        for t in range(n_slots)
    ]
    sessions: dict[SessionKey, SessionPlan] = {}
    total_cost = 0.0
    for car in state.cars:
        session = car.request.session
        steps = state.steps[car.position]
        slot_plans: list[SlotPlan] = []
        energy = 0.0
        cost = 0.0
        finish: datetime | None = None
        for t in range(n_slots):
            amps = round(steps[t] * UNIT_A, 1)
            power = steps[t] * car.kw_u
            kwh = power * car.hours[t]
            energy += kwh
            cost += kwh * unit_cost[t]
            if car.hours[t] > 0:
                start = max(starts[t], horizon_start)
                end = min(ends[t], car.departure)
            else:
                start = end = starts[t]
            if steps[t] > 0:
                finish = end
            slot_plans.append(
                SlotPlan(
                    start=start,
                    end=end,
                    amps_per_phase=amps,
                    power_kw=power,
                    energy_kwh=kwh,
                    reason=state.reasons[car.position][t]
                    if steps[t] > 0
                    else PlanReason.IDLE,
                )
            )
        total_cost += cost
        short = 0.0 if math.isinf(car.needed) else max(0.0, car.needed - energy)
        met = short <= _ENERGY_EPS * max(1.0, car.needed)
        if met:
            short, why = 0.0, ShortfallReason.NONE
        elif car.mode is PlanMode.SOLAR_ONLY:
            why = ShortfallReason.SOLAR_ONLY
        else:
            why = ShortfallReason.NO_ROOM
        sessions[session.transaction_id] = SessionPlan(
            transaction_id=session.transaction_id,
            mode=car.mode,
            departure=car.departure,
            phases=session.phases,
            voltage_v=session.voltage_v,
            needed_kwh=car.needed,
            energy_kwh=energy,
            goal_met=met,
            shortfall_kwh=short,
            shortfall_reason=why,
            cost=cost,
            finish=finish,
            slots=tuple(slot_plans),
        )
    panels: dict[str, PanelPlan] = {}
    phase_sums = _phase_sums(site, state)
    for k, panel in enumerate(site.panels):
        limited = panel.phase_limit_a is not None
        load_kw = []
        phase_a: list[tuple[float, float, float]] = []
        phase_budget: list[tuple[float, float, float] | None] = []
        for t in range(n_slots):
            load_kw.append(budgets[t][k] - state.free[t][k])
            if limited:
                base = n + 3 * k
                used = tuple(
                    budgets[t][base + p] - state.free[t][base + p] for p in range(3)
                )
                phase_a.append((used[0], used[1], used[2]))
                phase_budget.append(
                    (budgets[t][base], budgets[t][base + 1], budgets[t][base + 2])
                )
            else:
                row = phase_sums[k][t]
                phase_a.append((row[0], row[1], row[2]))
                phase_budget.append(None)
        panels[panel.id] = PanelPlan(
            panel_id=panel.id,
            load_kw=tuple(load_kw),
            phase_a=tuple(phase_a),
            budget_kw=tuple(budgets[t][k] for t in range(n_slots)),
            phase_budget_a=tuple(phase_budget),
        )
    return ChargingPlan(
        starts=tuple(starts),
        ends=tuple(ends),
        sessions=sessions,
        panels=panels,
        cost=total_cost,
    )


def _phase_sums(site: Site, state: _State) -> list[list[list[float]]]:
    """Return the cars' current per phase [panel][slot][phase] at every panel."""
    n_slots = len(state.prices)
    amps = [[[0.0, 0.0, 0.0] for _ in range(n_slots)] for _ in site.panels]
    for car in state.cars:
        session = car.request.session
        loaded = range(3) if session.phases == 3 else (session.phase_index,)
        chain = site.ancestors[_panel_index(site, session)]
        for t, steps in enumerate(state.steps[car.position]):
            if not steps:
                continue
            current = steps * UNIT_A
            for j in chain:
                row = amps[j][t]
                for p in loaded:
                    row[p] += current
    return amps
