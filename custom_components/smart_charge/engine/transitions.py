"""Transition plans: apply decreases before increases so no breaker is ever exceeded."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class LimitChange[K: Hashable]:
    """One charger limit that changes from old to new (same unit as the plan's input)."""

    key: K
    old: float
    new: float


@dataclass(frozen=True, kw_only=True, slots=True)
class TransitionPlan[K: Hashable]:
    """The ordered steps from one allocation to the next.

    Send every change in `decreases` first. Send `increases` only after each decrease has
    been acknowledged by its charger or has timed out (a charger that does not answer keeps
    its old limit reserved in the budget). After the decreases the sum of limits is at most
    both the previous and the new sum, so a breaker is never exceeded in between.
    """

    decreases: list[LimitChange[K]]
    increases: list[LimitChange[K]]

    @property
    def is_empty(self) -> bool:
        """Return whether nothing changes."""
        return not self.decreases and not self.increases

    def after_decreases(self, previous: Mapping[K, float]) -> dict[K, float]:
        """Return the limits once the decreases are applied (and the increases are not)."""
        limits = dict(previous)
        for change in self.decreases:
            limits[change.key] = change.new
        return limits


def plan_transition[K: Hashable](
    previous: Mapping[K, float], new: Mapping[K, float]
) -> TransitionPlan[K]:
    """Return the decreases and increases that turn previous into new.

    Unchanged keys are omitted; keys only in `new` are increases from 0, keys only in
    `previous` are decreases to 0. Decreases are ordered largest first (they free the most
    capacity), increases smallest first; ties keep the input order.
    """
    decreases: list[LimitChange[K]] = []
    increases: list[LimitChange[K]] = []
    for key, old in previous.items():
        target = new.get(key, 0.0)
        if target < old:
            decreases.append(LimitChange(key=key, old=old, new=target))
        elif target > old:
            increases.append(LimitChange(key=key, old=old, new=target))
    for key, target in new.items():
        if key not in previous and target > 0:
            increases.append(LimitChange(key=key, old=0.0, new=target))
    decreases.sort(key=lambda change: change.new - change.old)
    increases.sort(key=lambda change: change.new - change.old)
    return TransitionPlan(decreases=decreases, increases=increases)
