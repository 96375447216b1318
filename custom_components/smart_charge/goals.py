"""Which goal a session follows: the one set for it, else its charger's default.

A goal belongs to one session. Set while a car is plugged in, it is that session's goal;
set while no car is plugged in, it waits for the next car and becomes its goal when its
session starts. When the session ends, its goal is cleared: the next car does not
inherit it. A session that starts without a goal (an OCPP 1.6 car reports nothing) gets
the charger's default goal, if one is configured, with the next occurrence of its
departure time; what the car reports (NotifyEVChargingNeeds) or the user sets later
replaces it.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import datetime, time, timedelta
import math

from .const import (
    DEFAULT_CHARGING_MODE,
    PLAN_REASON_ENERGY_FALLBACK,
    PLAN_REASON_SOC_UNAVAILABLE,
)
from .runtime_state import GoalState
from .site_config import ChargerSettings


def next_departure(moment: time, now: datetime) -> datetime:
    """Return the next time of day `moment` after `now`, in `now`'s (local) time zone.

    Aware arithmetic keeps the wall clock, so "tomorrow at 7:00" stays 7:00 across a
    change to or from summer time.
    """
    candidate = now.replace(
        hour=moment.hour, minute=moment.minute, second=moment.second, microsecond=0
    )
    return candidate if candidate > now else candidate + timedelta(days=1)


def default_goal(
    charger: ChargerSettings, transaction_id: str, now: datetime
) -> GoalState | None:
    """Return the charger's default goal for a session starting now (None: none set)."""
    mode = charger.default_mode
    if mode is None or mode == DEFAULT_CHARGING_MODE:
        return None
    return GoalState(
        mode=mode,
        energy_kwh=charger.default_energy_kwh,
        departure=next_departure(charger.default_departure, now)
        if charger.default_departure is not None
        else None,
        session=transaction_id,
    )


def goal_at_start(
    goal: GoalState | None,
    charger: ChargerSettings,
    transaction_id: str,
    running: Collection[str],
    now: datetime,
) -> GoalState | None:
    """Return the goal of a charger once a session starts on it.

    A goal waiting for a car, or one of a session still running on another connector,
    stays (the waiting one now belongs to this session); a goal of a session that is no
    longer running (its end was missed) is stale and gives way to the default.
    """
    if goal is not None:
        if goal.session is None:
            return replace(goal, session=transaction_id)
        if goal.session == transaction_id or goal.session in running:
            return goal
    return default_goal(charger, transaction_id, now)


def goal_at_stop(goal: GoalState | None, transaction_id: str) -> GoalState | None:
    """Return the goal of a charger once a session on it ends (its own goal goes)."""
    if goal is not None and goal.session == transaction_id:
        return None
    return goal


def soc_value(state: str | None) -> float | None:
    """Return a state-of-charge sensor's state as a percentage (None: not usable)."""
    try:
        value = float(state) if state is not None else math.nan
    except ValueError:
        return None
    return value if 0.0 <= value <= 100.0 else None


def goal_with_soc(
    goal: GoalState, soc_pct: float | None
) -> tuple[GoalState, str | None]:
    """Return the goal to plan with a charger's SoC sensor reading, and why if not as set.

    A target state of charge (with the battery size) is planned from the sensor's SoC
    (else the SoC the goal was given). Without either, the goal's energy is planned
    instead (`energy_fallback`), or nothing can be planned (`soc_unavailable`). Goals
    without a target SoC are planned as they are.
    """
    if goal.target_soc_pct is None or goal.battery_kwh is None:
        return goal, None
    current = soc_pct if soc_pct is not None else goal.current_soc_pct
    if current is not None:
        return replace(goal, current_soc_pct=current, energy_kwh=None), None
    if goal.energy_kwh is not None:
        return replace(goal, target_soc_pct=None), PLAN_REASON_ENERGY_FALLBACK
    return goal, PLAN_REASON_SOC_UNAVAILABLE
