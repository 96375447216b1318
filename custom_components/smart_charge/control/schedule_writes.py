"""Multi-period schedule writes: when a session's schedule goes out, and in which step.

A charging plan's schedule (see `SiteController._plan_schedules`) is written only when
it is lower than what the charger holds at some instant, adds a charging period, or
raises now by at least the dead band: a flash write per real change, not per slot. A
schedule that is higher at some instants and lower at others carries its pointwise
minimum with what the charger holds (`PlannedWrite.step`), a pure decrease the
orchestrator sends first when more than one charger is raised in the same round.
"""

from __future__ import annotations

from .config import ChargerConfig
from .planned import PlannedWrite
from .schedules import (
    EPSILON_A,
    Schedule,
    pointwise_min,
    schedule_change,
    schedule_max,
    schedule_min,
)
from .sessions import ChargingSession
from .writer import SLOT_TX, ProfileWriter, WriteTarget


class ScheduleWrites:
    """Plans the schedule writes of sessions over the writer's installed-profile book."""

    def __init__(self, writer: ProfileWriter) -> None:
        """Read what each charger holds from `writer`'s books."""
        self.writer = writer

    def holds(self, session: ChargingSession) -> bool:
        """Return whether the session's TxProfile is (or may be) a schedule of ours."""
        tx = self.writer.book(session.charger_id).slots.get(
            (session.connector_id, SLOT_TX)
        )
        return (
            tx is not None
            and tx.transaction_id == session.transaction_id
            and (tx.schedule is not None or tx.pending_schedule is not None)
        )

    def writes(
        self,
        session: ChargingSession,
        config: ChargerConfig,
        schedule: Schedule,
        defaults: dict[tuple[str, int], float],
        now: float,
        dead_band_a: float,
    ) -> list[PlannedWrite]:
        """Plan a session's schedule (or its one limit replacing a schedule).

        Written only when it is lower than what the charger holds at some instant, adds
        a charging period, or raises now by at least `dead_band_a`
        (`ScheduleChange.worth_writing`). The connector's default stays at or below the
        lowest period, so a session that ends never adds load at any instant.
        """
        charger_id = session.charger_id
        book = self.writer.book(charger_id)
        held = book.held_schedule(
            session.connector_id,
            session.transaction_id,
            config.max_current_a,
            now,
        )
        lowest = schedule_min(schedule, now)
        if book.default_a(session.connector_id, config.max_current_a) > lowest:
            defaults[charger_id, session.connector_id] = (
                config.min_current_a if lowest >= config.min_current_a else 0.0
            )
        governed = book.has_tx(session.connector_id, session.transaction_id)
        tx = book.slots.get((session.connector_id, SLOT_TX))
        pending = tx is not None and tx.pending_a is not None
        change = schedule_change(schedule, held, now)
        if governed and not pending and not change.worth_writing(dead_band_a):
            return []
        up = max(change.up_now, change.up_later)
        down = change.down
        target = _target(session, schedule, now)
        step = None
        if up > EPSILON_A and down > EPSILON_A:
            step = _target(session, pointwise_min(schedule, held, now), now)
        return [
            PlannedWrite(
                target, "session", up <= EPSILON_A, session, not governed, step
            )
        ]


def _target(session: ChargingSession, schedule: Schedule, now: float) -> WriteTarget:
    """Return the write of a schedule (one period: a plain limit)."""
    return WriteTarget(
        session.charger_id,
        session.connector_id,
        SLOT_TX,
        schedule_max(schedule, now),
        session.transaction_id,
        schedule=schedule if len(schedule) > 1 else None,
    )


__all__ = ["ScheduleWrites"]
