"""Switching a session between one and three phases: a pure, deterministic decision.

A three-phase car cannot charge below 6 A x 3 x 230 V = 4.14 kW; on one phase it can from
1.38 kW. A charger that can switch is asked for fewer phases in its profile
(`numberPhases`). `decide_phases` chooses, per session, from what the session could get
in this solve (`room_kw`, the share it would get on three phases with the single-phase
minimum as its floor):

- policy `ONE` / `THREE` (or a charger that cannot switch): that, always;
- `AUTO` on three phases: down to one when the room is below the three-phase minimum
  (three phases would pause the car) and at least the single-phase minimum;
- `AUTO` on one phase: up to three once the room has stayed at or above the three-phase
  minimum plus `up_margin_kw` for `up_delay_s` (hysteresis: between the two thresholds
  nothing changes);
- never a switch within `dwell_s` of the last one (contactors wear, cars dislike it).

The engine keeps no clock: `now` is the caller's (seconds, any monotonic origin), and the
state it returns is the caller's to keep for the next call.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
import math
from typing import Final

from .allocate import allocate_site
from .errors import EngineConfigError
from .model import Phase, Session, SessionKey, Site

DEFAULT_DWELL_S: Final = 300.0
DEFAULT_UP_MARGIN_KW: Final = 0.4
DEFAULT_UP_DELAY_S: Final = 60.0


class PhasePolicy(StrEnum):
    """How a charger that can switch phases is driven."""

    AUTO = "auto"
    ONE = "one"
    THREE = "three"


class PhaseReason(StrEnum):
    """Why a session uses the phases it uses."""

    FIXED = "fixed"  # the charger cannot switch (or is single phase)
    POLICY = "policy"  # always 1 / always 3
    ROOM_FOR_THREE = "room_for_three"
    BELOW_THREE_MINIMUM = "below_three_minimum"
    HYSTERESIS = "hysteresis"  # between the thresholds: unchanged
    WAITING = "waiting"  # above the up threshold, not yet for long enough
    DWELL = "dwell"  # a switch is wanted, but the last one was too recent
    NO_ROOM = "no_room"  # not even one phase fits: unchanged (paused either way)


@dataclass(frozen=True, kw_only=True, slots=True)
class PhaseSettings:
    """The thresholds and times of the switch decision."""

    dwell_s: float = DEFAULT_DWELL_S
    up_margin_kw: float = DEFAULT_UP_MARGIN_KW
    up_delay_s: float = DEFAULT_UP_DELAY_S

    def __post_init__(self) -> None:
        """Validate: finite and not negative."""
        for name in ("dwell_s", "up_margin_kw", "up_delay_s"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise EngineConfigError(f"{name} must be a number ≥ 0, got {value!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class PhaseState:
    """What the decision remembers of one session between calls.

    `switched_at` is the time of the last switch (None: never switched, the first
    choice is free); `above_since` when the room last rose to the up threshold
    (None: it is below now).
    """

    phases: int
    switched_at: float | None = None
    above_since: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class PhaseDecision:
    """The phases to use now, why, and the state to keep for the next call."""

    phases: int
    reason: PhaseReason
    state: PhaseState


def minimum_kw(min_current_a: float, voltage_v: float, phases: int) -> float:
    """Return the minimum charging power (kW) on `phases` phases."""
    return min_current_a * voltage_v * phases / 1000.0


def decide_phases(
    *,
    state: PhaseState,
    room_kw: float,
    min_current_a: float,
    voltage_v: float,
    now: float,
    policy: PhasePolicy = PhasePolicy.AUTO,
    switchable: bool = True,
    settings: PhaseSettings | None = None,
) -> PhaseDecision:
    """Return the phases (1 or 3) a switchable three-phase session uses now.

    `room_kw` is what the session could get in this solve; `state.phases` what it uses
    now. A non-switchable charger keeps `state.phases`.
    """
    settings = settings or PhaseSettings()
    if state.phases not in (1, 3):
        raise EngineConfigError(f"phases must be 1 or 3, got {state.phases!r}")
    if isinstance(room_kw, bool) or math.isnan(room_kw) or room_kw < 0:
        raise EngineConfigError(f"room_kw must be a number ≥ 0, got {room_kw!r}")
    current = state.phases

    def keep(reason: PhaseReason, above_since: float | None) -> PhaseDecision:
        return PhaseDecision(
            phases=current,
            reason=reason,
            state=replace(state, above_since=above_since),
        )

    def switch(to: int, reason: PhaseReason) -> PhaseDecision:
        if to == current:
            return keep(reason, None)
        if state.switched_at is not None and now - state.switched_at < settings.dwell_s:
            return keep(PhaseReason.DWELL, state.above_since)
        return PhaseDecision(
            phases=to,
            reason=reason,
            state=PhaseState(phases=to, switched_at=now, above_since=None),
        )

    if not switchable:
        return keep(PhaseReason.FIXED, None)
    if policy == PhasePolicy.ONE:
        return switch(1, PhaseReason.POLICY)
    if policy == PhasePolicy.THREE:
        return switch(3, PhaseReason.POLICY)
    min_one = minimum_kw(min_current_a, voltage_v, 1)
    min_three = minimum_kw(min_current_a, voltage_v, 3)
    up = min_three + settings.up_margin_kw
    if current == 3:
        if room_kw >= min_three - 1e-9:
            return keep(PhaseReason.ROOM_FOR_THREE, None)
        if room_kw >= min_one - 1e-9:
            return switch(1, PhaseReason.BELOW_THREE_MINIMUM)
        return keep(PhaseReason.NO_ROOM, None)
    # On one phase.
    if room_kw < up - 1e-9:
        return keep(
            PhaseReason.HYSTERESIS
            if room_kw >= min_one - 1e-9
            else PhaseReason.NO_ROOM,
            None,
        )
    since = now if state.above_since is None else state.above_since
    if now - since < settings.up_delay_s:
        return keep(PhaseReason.WAITING, since)
    return switch(3, PhaseReason.ROOM_FOR_THREE)


@dataclass(frozen=True, kw_only=True, slots=True)
class SwitchRequest:
    """One session of a charger that may switch, with what the decision needs."""

    state: PhaseState
    min_current_a: float
    policy: PhasePolicy = PhasePolicy.AUTO
    grid_phase: Phase | None = None


def with_phases(session: Session, phases: int, grid_phase: Phase | None) -> Session:
    """Return the session on `phases` phases: every kW figure scaled, current kept.

    The caps and the minimum of a session are currents per phase times its phases, so
    a car that takes 16 A on three phases takes 16 A on one. On one phase it loads
    `grid_phase` (L1 when None).
    """
    if phases == session.phases:
        return session
    factor = phases / session.phases

    def scaled(value: float | None) -> float | None:
        return None if value is None else value * factor

    return replace(
        session,
        phases=phases,
        grid_phase=(grid_phase or Phase.L1) if phases == 1 else session.grid_phase,
        max_hardware_power_kw=scaled(session.max_hardware_power_kw),
        max_ev_acceptance_power_kw=scaled(session.max_ev_acceptance_power_kw),
        min_charge_rate_kw=scaled(session.min_charge_rate_kw),
        user_cap_kw=scaled(session.user_cap_kw),
        measured_power_kw=session.measured_power_kw,
    )


def choose_phases(
    site: Site,
    sessions: Sequence[Session],
    requests: Mapping[SessionKey, SwitchRequest],
    *,
    now: float,
    settings: PhaseSettings | None = None,
) -> tuple[list[Session], dict[SessionKey, PhaseDecision]]:
    """Decide the phases of every session in `requests` and return the sessions to solve.

    `sessions` are as configured (a switching charger's sessions on three phases);
    each requested session's room is its share in a probe solve where it runs on three
    phases with the single-phase minimum as its floor. The returned sessions carry the
    chosen phases (one phase on its `grid_phase`), so the real solve accounts each
    phase as the charger will load it.
    """
    settings = settings or PhaseSettings()
    managed = {
        s.transaction_id: s
        for s in sessions
        if s.managed and s.transaction_id in requests and s.phases == 3
    }
    if not managed:
        return list(sessions), {}
    probe: list[Session] = []
    for session in sessions:
        request = requests.get(session.transaction_id)
        if session.transaction_id in managed and request is not None:
            probe.append(
                replace(
                    session,
                    min_charge_rate_kw=minimum_kw(
                        request.min_current_a, session.voltage_v, 1
                    ),
                )
            )
        else:
            probe.append(session)
    allocation = allocate_site(site, probe)
    decisions: dict[SessionKey, PhaseDecision] = {}
    chosen: list[Session] = []
    for session in sessions:
        request = requests.get(session.transaction_id)
        if session.transaction_id not in managed or request is None:
            chosen.append(session)
            continue
        profile = allocation.sessions[session.transaction_id]
        decision = decide_phases(
            state=request.state,
            room_kw=0.0 if profile.paused else profile.allocated_kw,
            min_current_a=request.min_current_a,
            voltage_v=session.voltage_v,
            now=now,
            policy=request.policy,
            settings=settings,
        )
        decisions[session.transaction_id] = decision
        chosen.append(with_phases(session, decision.phases, request.grid_phase))
    return chosen, decisions


__all__ = [
    "DEFAULT_DWELL_S",
    "DEFAULT_UP_DELAY_S",
    "DEFAULT_UP_MARGIN_KW",
    "PhaseDecision",
    "PhasePolicy",
    "PhaseReason",
    "PhaseSettings",
    "PhaseState",
    "SwitchRequest",
    "choose_phases",
    "decide_phases",
    "minimum_kw",
    "with_phases",
]
