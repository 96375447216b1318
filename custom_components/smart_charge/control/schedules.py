"""Multi-period limits: the arithmetic of a schedule a charger follows by itself.

A `Schedule` is a tuple of `(start, amps)` periods, `start` in seconds since the epoch
(UTC, whole seconds), `amps` per phase, starts strictly increasing. The period that
started last is in force; the last one holds for ever (a charger keeps a schedule's
last period until the profile is replaced). Before the first start the first period
counts (schedules here always start at or before now).

Pure functions, no I/O: what the writer sends as one Absolute TxProfile and what the
orchestrator compares to decide whether (and in which order) to write.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import math

type Schedule = tuple[tuple[float, float], ...]

# Limits closer than this are equal (float noise; the wire has 0.1 A or 1 W).
EPSILON_A = 1e-6


def schedule_at(schedule: Schedule, moment: float) -> float:
    """Return the limit in force at `moment`."""
    value = schedule[0][1]
    for start, amps in schedule:
        if start > moment:
            break
        value = amps
    return value


def merge_schedule(schedule: Iterable[tuple[float, float]]) -> Schedule:
    """Return the schedule with neighbouring equal periods as one."""
    merged: list[tuple[float, float]] = []
    for start, amps in schedule:
        if merged and abs(merged[-1][1] - amps) <= EPSILON_A:
            continue
        merged.append((start, amps))
    return tuple(merged)


def normalize_schedule(periods: Iterable[tuple[float, float]], now: float) -> Schedule:
    """Return a schedule from `now` on: whole-second starts, the first one at now.

    The period in force at now opens the schedule (periods that ended are dropped); a
    later period starting in the same second replaces an earlier one; equal neighbours
    are merged. Raises ValueError for an empty input or a negative limit.
    """
    ordered = sorted(periods)
    if not ordered:
        raise ValueError("a schedule needs at least one period")
    if any(amps < 0 or not math.isfinite(amps) for _, amps in ordered):
        raise ValueError("a schedule's limits must be finite and non-negative")
    origin = float(math.floor(now))
    out: list[tuple[float, float]] = [(origin, schedule_at(tuple(ordered), origin))]
    for start, amps in ordered:
        second = float(math.floor(start))
        if second <= origin:
            continue
        if out[-1][0] == second:
            out[-1] = (second, amps)
        else:
            out.append((second, amps))
    return merge_schedule(out)


def fit_schedule(schedule: Schedule, max_periods: int | None) -> Schedule:
    """Return the schedule within a charger's `ChargingScheduleMaxPeriods`.

    Equal neighbours are merged first; if there are still too many periods, the first
    `max_periods - 1` stay and the last one holds the lowest limit of the rest. The
    result is nowhere above the input, so whatever held for the input still holds.
    """
    merged = merge_schedule(schedule)
    if max_periods is None or len(merged) <= max_periods:
        return merged
    keep = max(1, max_periods) - 1
    rest = merged[keep:]
    last = (rest[0][0], min(amps for _, amps in rest))
    return merge_schedule((*merged[:keep], last))


def _points(a: Schedule, b: Schedule, now: float) -> list[float]:
    """Return every instant from `now` on at which either schedule may change."""
    return sorted({now} | {s for s, _ in a if s > now} | {s for s, _ in b if s > now})


def pointwise_min(a: Schedule, b: Schedule, now: float) -> Schedule:
    """Return the lower of two schedules at every instant from `now` on."""
    points = _points(a, b, now)
    return normalize_schedule(
        ((t, min(schedule_at(a, t), schedule_at(b, t))) for t in points), now
    )


def pointwise_max(a: Schedule, b: Schedule, now: float) -> Schedule:
    """Return the higher of two schedules at every instant from `now` on."""
    points = _points(a, b, now)
    return normalize_schedule(
        ((t, max(schedule_at(a, t), schedule_at(b, t))) for t in points), now
    )


def capped(schedule: Schedule, cap_a: float, now: float) -> Schedule:
    """Return the schedule with no period above `cap_a`."""
    return normalize_schedule(((s, min(a, cap_a)) for s, a in schedule), now)


def schedule_max(schedule: Schedule, now: float) -> float:
    """Return the highest limit in force at any instant from `now` on."""
    return max(
        [schedule_at(schedule, now), *(a for s, a in schedule if s > now)],
    )


def schedule_min(schedule: Schedule, now: float) -> float:
    """Return the lowest limit in force at any instant from `now` on."""
    return min(
        [schedule_at(schedule, now), *(a for s, a in schedule if s > now)],
    )


def compare_schedules(
    new: Schedule, old: Schedule, now: float
) -> tuple[float, float, bool]:
    """Return how `new` differs from `old` from `now` on.

    `(largest increase, largest decrease, resumes)`: `resumes` when some instant goes
    from 0 A to more (a pause ending is never held back by a dead band).
    """
    up = down = 0.0
    resumes = False
    for t in _points(new, old, now):
        after, before = schedule_at(new, t), schedule_at(old, t)
        up = max(up, after - before)
        down = max(down, before - after)
        if before <= EPSILON_A < after:
            resumes = True
    return up, down, resumes


@dataclass(frozen=True, slots=True)
class ScheduleChange:
    """How a new schedule differs from the one a charger holds, from now on.

    `up_now`: the increase of the period in force now; `up_later`: the largest increase
    after it; `down`: the largest decrease at any instant; `resumes`: some instant goes
    from 0 A to more (a new charging period, or a pause ending now).
    """

    up_now: float
    up_later: float
    down: float
    resumes: bool

    def worth_writing(self, dead_band_a: float) -> bool:
        """Return whether the charger must (or should) get the new schedule.

        Every decrease is written (the new limits of the others count on it), a new
        charging period at once (so the charger follows it alone), and an increase of
        now from the dead band on. A top-up of a later period that already charges waits
        until that period is in force: the lower limit is safe, and a replan at every
        slot boundary writes it then, together with any other change (flash-friendly).
        """
        return (
            self.down > EPSILON_A
            or self.resumes
            or self.up_now >= max(dead_band_a, EPSILON_A)
        )


def schedule_change(new: Schedule, old: Schedule, now: float) -> ScheduleChange:
    """Return how `new` differs from `old` from `now` on (see `ScheduleChange`)."""
    up_now = schedule_at(new, now) - schedule_at(old, now)
    up_later, down, resumes = compare_schedules(new, old, now)
    later = [
        schedule_at(new, t) - schedule_at(old, t)
        for t in _points(new, old, now)
        if t > now
    ]
    return ScheduleChange(
        up_now=max(0.0, up_now),
        up_later=max([0.0, *later]),
        down=down,
        resumes=resumes,
    )


__all__ = [
    "EPSILON_A",
    "Schedule",
    "ScheduleChange",
    "capped",
    "compare_schedules",
    "fit_schedule",
    "merge_schedule",
    "normalize_schedule",
    "pointwise_max",
    "pointwise_min",
    "schedule_at",
    "schedule_change",
    "schedule_max",
    "schedule_min",
]
