"""Phase switching: which phases a session runs on, and the pause that moves it.

`PhaseSwitching` keeps, per session, the engine's switch decision (`PhaseState`) and
the phases of the limit the charger acknowledged last, asks `engine.choose_phases`
for the phases of each switching charger's session, and plans the writes of a switch.
A switch is a pause first: 0 A on the old phases (a decrease, acknowledged before
anything is raised), then the limit on the new phases as an increase from 0.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from custom_components.smart_charge.engine import (
    PhaseDecision,
    PhaseReason,
    PhaseSettings,
    PhaseState,
    Session,
    Site,
    SwitchRequest,
    choose_phases,
)

from .config import (
    PHASE_SWITCHING_SUPPORTED,
    PHASE_SWITCHING_UNSUPPORTED,
    STATION_MAX_PURPOSES,
    ChargerConfig,
)
from .planned import PlannedWrite
from .sessions import ChargingSession
from .writer import SLOT_TX, ProfileWriter, WriteTarget

# Plans a session's limit as any session's (the orchestrator's `_session_writes`).
type SessionWrites = Callable[
    [ChargingSession, ChargerConfig, float, dict[tuple[str, int], float]],
    list[PlannedWrite],
]


class PhaseSwitching:
    """The phases of the sessions of chargers that switch between one and three."""

    def __init__(
        self,
        writer: ProfileWriter,
        settings: PhaseSettings,
        *,
        on_wake: Callable[[], None],
    ) -> None:
        """Plan switches over `writer`'s books; `on_wake` rebalances at a wake-up."""
        self.writer = writer
        self.settings = settings
        self._on_wake = on_wake
        # Per session: the switch decision's memory, and the phases of the limit the
        # charger acknowledged last (absent: the charger's own phases).
        self.state: dict[str, PhaseState] = {}
        self.acked: dict[str, int] = {}
        self.timer: asyncio.TimerHandle | None = None
        self._stopped = False

    def switches(self, config: ChargerConfig) -> bool:
        """Return whether this charger switches between one and three phases."""
        if (
            config.phases != 3
            or config.phase_switching == PHASE_SWITCHING_UNSUPPORTED
            # A station-wide limit carries no session's phases: it is never switched.
            or config.profile_purpose in STATION_MAX_PURPOSES
        ):
            return False
        if config.phase_switching == PHASE_SWITCHING_SUPPORTED:
            return True
        capabilities = self.writer.capabilities.get(config.charger_id)
        return capabilities is not None and capabilities.phase_switching is True

    def phases(self, key: str, config: ChargerConfig) -> int:
        """Return the phases of a session's acknowledged limit."""
        return self.acked.get(key, config.phases)

    def stop(self) -> None:
        """Cancel the wake-up; none is set after this."""
        self._stopped = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def choose(
        self,
        site: Site,
        chargers: Mapping[str, ChargerConfig],
        keys: Iterable[str],
        running: list[Session],
        controlled: list[ChargingSession],
        now: float,
    ) -> tuple[list[Session], dict[str, PhaseDecision]]:
        """Put the sessions of switching chargers on the phases the engine picks.

        `keys`: every session in the book (the memory of the others is dropped).
        """
        keep = set(keys)
        for book in (self.state, self.acked):
            for key in [key for key in book if key not in keep]:
                del book[key]
        requests: dict[Any, SwitchRequest] = {}
        for session in controlled:
            config = chargers[session.charger_id]
            if not self.switches(config):
                continue
            state = self.state.get(session.key) or PhaseState(
                phases=self.acked.get(session.key, config.phases)
            )
            requests[session.key] = SwitchRequest(
                state=state,
                min_current_a=config.min_current_a,
                policy=config.phase_policy,
                grid_phase=config.grid_phase,
            )
        if not requests:
            return running, {}
        chosen, decisions = choose_phases(
            site, running, requests, now=now, settings=self.settings
        )
        wake: float | None = None
        settings = self.settings
        for engine_key, decision in decisions.items():
            self.state[str(engine_key)] = decision.state
            state = decision.state
            # A decision that may change with time alone: look again then.
            if state.above_since is not None:
                wake = _earliest(wake, state.above_since + settings.up_delay_s)
            if state.switched_at is not None and decision.reason == PhaseReason.DWELL:
                wake = _earliest(wake, state.switched_at + settings.dwell_s)
        self._wake(wake, now)
        return chosen, {str(key): decision for key, decision in decisions.items()}

    def _wake(self, when: float | None, now: float) -> None:
        """Rebalance at `when` (one timer; an earlier time replaces a later one)."""
        if when is None or self._stopped:
            return
        timer = self.timer
        if timer is not None and not timer.cancelled() and timer.when() <= when:
            return
        if timer is not None:
            timer.cancel()

        def _fire() -> None:
            self.timer = None
            self._on_wake()

        self.timer = asyncio.get_running_loop().call_later(
            max(0.0, when - now) + 0.001, _fire
        )

    def writes(
        self,
        session: ChargingSession,
        config: ChargerConfig,
        target: float,
        defaults: dict[tuple[str, int], float],
        phases: int,
        session_writes: SessionWrites,
    ) -> list[PlannedWrite]:
        """Plan the limit of a session on a switching charger, on `phases` phases.

        Unchanged phases: as any session (`session_writes`). A change of phases while
        the connector may draw is a pause on the old phases (a decrease, acknowledged
        first) and then the new limit on the new phases, sent as an increase from 0
        whatever its size: a car moving to one phase may draw more on that phase than
        before.
        """
        old = self.acked.get(session.key, config.phases)
        capabilities = self.writer.capabilities.get(session.charger_id)
        phase_to_use = (
            (config.grid_phase.position + 1 if config.grid_phase else 1)
            if phases == 1 and capabilities is not None and capabilities.phase_to_use
            else None
        )
        if phases == old:
            writes = session_writes(
                session, replace(config, phases=phases), target, defaults
            )
            for write in writes:
                write.phases = phases
                write.target = replace(write.target, phase_to_use=phase_to_use)
            return writes
        book = self.writer.book(session.charger_id)
        slot = self.writer.session_slot(config)
        switch: list[PlannedWrite] = []
        drawing = book.reserve(
            session.connector_id, session.transaction_id, config.max_current_a
        )
        if drawing > 0:
            pause = WriteTarget(
                session.charger_id,
                session.connector_id,
                slot,
                0.0,
                session.transaction_id,
            )
            switch.append(
                PlannedWrite(pause, "session", True, session, False, phases=old)
            )
        if target > 0 or drawing > 0:
            resume = WriteTarget(
                session.charger_id,
                session.connector_id,
                slot,
                target,
                session.transaction_id,
                phase_switch=True,
                phase_to_use=phase_to_use,
            )
            switch.append(
                PlannedWrite(resume, "session", False, session, True, phases=phases)
            )
        if slot == SLOT_TX:
            current = book.default_a(session.connector_id, config.max_current_a)
            if current > 0:
                # Until the session ends its default must not add load on any phase.
                defaults[session.charger_id, session.connector_id] = 0.0
        return switch


def _earliest(current: float | None, candidate: float) -> float:
    return candidate if current is None else min(current, candidate)


__all__ = ["PhaseSwitching"]
