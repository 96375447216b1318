"""Bidirectional charging (V2X): how much each car may give back, under every breaker.

Pure math, no I/O. Given the panel tree (with the house load each panel feeds, its
`unmanaged_load_kw`, and the export limits), the V2X sessions (state of charge, the
user's minimum, the car's discharge range) and whether discharging is wanted now (the
price at or above a threshold, or one of the most expensive hours), `allocate_discharge`
returns one discharge power per session such that:

1. the grid never receives more than the root's export limit (None: 0 kW): the total
   discharge minus the house load of the whole site stays at most that limit;
2. a panel with an export limit lets at most that limit plus the load it feeds flow back;
3. no breaker carries more than its rating (after its safety margin) in the reverse
   direction, in kW and, where it has one, in A per phase; the house load is not
   subtracted there (it may stop at any moment, the car's power would then flow through);
4. no car discharges below its minimum state of charge (an unknown state of charge: no
   discharge), or more than its maximum; each gets 0 or at least its minimum;
5. the total is at most what is wanted: the house load plus what may be exported (the
   "cover the house load" rule with an export limit of 0), or `target_kw` if smaller.

Other cars' charging never makes room for a discharge, and a discharge never makes room
for charging: the charging solve counts a discharging car as 0 (if it stops suddenly, at
its minimum state of charge or a fault, no breaker may exceed).

Sessions that can discharge are admitted by state of charge above their minimum (fullest
first, then by key) while their minimum fits, then filled equally (max-min) up to their
maximum. Results are rounded down to 1 W and deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
import math

from .errors import EngineConfigError
from .model import Site

_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class V2XSession:
    """One session that may give power back, as the discharge solve sees it.

    `soc_pct` is the state of charge reported by the car (None: unknown, no discharge);
    `max_discharge_kw` what the car and charger allow (0: none); `min_discharge_kw`
    the smallest discharge they can hold (0 or at least this).
    """

    key: str
    panel_id: str
    soc_pct: float | None
    min_soc_pct: float
    max_discharge_kw: float
    min_discharge_kw: float = 0.0
    phases: int = 3
    voltage_v: float = 230.0

    def __post_init__(self) -> None:
        """Validate the fields."""
        for name in ("min_soc_pct", "max_discharge_kw", "min_discharge_kw"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value):
                raise EngineConfigError(
                    f"{name} must be a finite number, got {value!r}"
                )
            if value < 0:
                raise EngineConfigError(f"{name} must be >= 0, got {value!r}")
        if self.min_soc_pct > 100:
            raise EngineConfigError("min_soc_pct must be at most 100")
        if self.phases not in (1, 2, 3):
            raise EngineConfigError(f"phases must be 1, 2 or 3, got {self.phases!r}")
        if self.voltage_v <= 0:
            raise EngineConfigError("voltage_v must be positive")

    @property
    def amps_per_kw(self) -> float:
        """Return the current per phase that one kW of discharge makes."""
        return 1000.0 / (self.voltage_v * self.phases)

    @property
    def can_discharge(self) -> bool:
        """Return whether this session may give anything back now."""
        return (
            self.soc_pct is not None
            and self.soc_pct > self.min_soc_pct
            and self.max_discharge_kw > 0
            and self.max_discharge_kw + _EPS >= self.min_discharge_kw
        )


def discharge_wanted(price: float | None, threshold: float | None) -> bool:
    """Return whether the price rule asks for discharge: price at or above threshold.

    An unknown price or no threshold: no discharge.
    """
    if price is None or threshold is None:
        return False
    return price >= threshold


def in_most_expensive_hours(
    prices: Mapping[datetime, float], hours: int, now: datetime
) -> bool:
    """Return whether `now` lies in one of the `hours` most expensive price slots.

    `prices` maps each slot's start to its price; a slot lasts until the next start (the
    last one an hour). Ties go to the earlier slot.
    """
    if hours <= 0 or not prices:
        return False
    starts = sorted(prices)
    current = None
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else None
        if start <= now and (end is None or now < end):
            current = start
    if current is None or (
        current == starts[-1] and (now - current).total_seconds() >= 3600
    ):
        return False
    ranked = sorted(starts, key=lambda start: (-prices[start], start))
    return current in ranked[:hours]


@dataclass(frozen=True, slots=True)
class _Constraint:
    """sum(weight[s] * discharge[s] for s in members) <= cap."""

    name: str
    members: tuple[int, ...]
    weights: tuple[float, ...]
    cap: float


def _constraints(site: Site, sessions: Sequence[V2XSession]) -> list[_Constraint]:
    below: list[list[int]] = [[] for _ in site.panels]
    for position, session in enumerate(sessions):
        for ancestor in site.ancestors[site.index[session.panel_id]]:
            below[ancestor].append(position)
    load_below = [0.0 for _ in site.panels]
    for index, panel in enumerate(site.panels):
        for ancestor in site.ancestors[index]:
            load_below[ancestor] += panel.unmanaged_load_kw
    found: list[_Constraint] = []
    for index, panel in enumerate(site.panels):
        members = tuple(below[index])
        if not members:
            continue
        factor = 1.0 - panel.safety_margin_pct / 100.0
        ones = tuple(1.0 for _ in members)
        found.append(
            _Constraint(f"{panel.id} kW", members, ones, panel.limit_kw * factor)
        )
        if panel.phase_limit_a is not None:
            # Every session's current on one phase: conservative for single-phase cars
            # on different phases, exact for three-phase ones.
            found.append(
                _Constraint(
                    f"{panel.id} A",
                    members,
                    tuple(sessions[m].amps_per_kw for m in members),
                    panel.phase_limit_a * factor,
                )
            )
        export = panel.export_limit_kw
        if export is None and site.parents[index] == -1:
            export = 0.0
        if export is not None:
            found.append(
                _Constraint(
                    f"{panel.id} export", members, ones, export + load_below[index]
                )
            )
    return found


def allocate_discharge(
    site: Site,
    sessions: Iterable[V2XSession],
    *,
    active: bool,
    target_kw: float | None = None,
) -> dict[str, float]:
    """Return each session's discharge power (kW, >= 0) under the rules above.

    `active`: whether discharging is wanted now (see `discharge_wanted`,
    `in_most_expensive_hours`); inactive, every session gets 0. Sessions on panels the
    site does not know get 0.
    """
    given = list(sessions)
    result = dict.fromkeys((s.key for s in given), 0.0)
    if not active:
        return result
    root = site.order[0]
    wanted = sum(p.unmanaged_load_kw for p in site.panels)
    root_export = site.panels[root].export_limit_kw
    wanted += 0.0 if root_export is None else root_export
    if target_kw is not None:
        wanted = min(wanted, max(0.0, target_kw))
    eligible = sorted(
        (s for s in given if s.panel_id in site.index and s.can_discharge),
        key=lambda s: (-((s.soc_pct or 0.0) - s.min_soc_pct), s.key),
    )
    if not eligible or wanted <= _EPS:
        return result
    constraints = _constraints(site, eligible)
    constraints.append(
        _Constraint(
            "wanted",
            tuple(range(len(eligible))),
            tuple(1.0 for _ in eligible),
            wanted,
        )
    )
    # Minimums in whole watts, rounded up, so rounding the result down keeps them.
    minimum = [math.ceil(s.min_discharge_kw * 1000 - _EPS) / 1000 for s in eligible]
    maximum = [s.max_discharge_kw for s in eligible]
    used = [0.0 for _ in constraints]
    value = [0.0 for _ in eligible]
    admitted: list[int] = []
    member_of: list[list[tuple[int, float]]] = [[] for _ in eligible]
    for c_index, constraint in enumerate(constraints):
        for member, weight in zip(constraint.members, constraint.weights, strict=True):
            member_of[member].append((c_index, weight))
    for position in range(len(eligible)):
        need = minimum[position]
        if need > maximum[position] + _EPS:
            continue
        if all(
            used[c] + weight * need <= constraints[c].cap + _EPS
            for c, weight in member_of[position]
        ):
            admitted.append(position)
            value[position] = need
            for c, weight in member_of[position]:
                used[c] += weight * need
    _fill(constraints, member_of, admitted, value, maximum, used)
    for position in admitted:
        kw = math.floor(value[position] * 1000 + 1e-6) / 1000
        if kw + _EPS < minimum[position]:
            kw = 0.0
        result[eligible[position].key] = max(0.0, kw)
    return result


def _fill(
    constraints: Sequence[_Constraint],
    member_of: Sequence[Sequence[tuple[int, float]]],
    admitted: Sequence[int],
    value: list[float],
    maximum: Sequence[float],
    used: list[float],
) -> None:
    """Raise the admitted sessions equally until a constraint or their maximum binds."""
    active = {p for p in admitted if value[p] < maximum[p] - _EPS}
    while active:
        step = min(maximum[p] - value[p] for p in active)
        for c_index, constraint in enumerate(constraints):
            weight = sum(
                w
                for m, w in zip(constraint.members, constraint.weights, strict=True)
                if m in active
            )
            if weight > 0:
                step = min(step, (constraint.cap - used[c_index]) / weight)
        step = max(0.0, step)
        for position in active:
            value[position] += step
            for c, weight in member_of[position]:
                used[c] += weight * step
        full = {
            c
            for c, constraint in enumerate(constraints)
            if used[c] >= constraint.cap - _EPS
        }
        done = {
            p
            for p in active
            if value[p] >= maximum[p] - _EPS or any(c in full for c, _ in member_of[p])
        }
        if not done:  # pragma: no cover - a step always binds something
            break
        active -= done


__all__ = [
    "V2XSession",
    "allocate_discharge",
    "discharge_wanted",
    "in_most_expensive_hours",
]
