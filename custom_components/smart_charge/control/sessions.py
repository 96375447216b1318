"""The session book: one entry per running transaction, keyed by charger and connector."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime


def session_key(charger_id: str, connector_id: int) -> str:
    """Return the key of a connector (and of the session running on it)."""
    return f"{charger_id}#{connector_id}"


@dataclass(slots=True)
class ChargingSession:
    """One running transaction as the controller sees it."""

    charger_id: str
    connector_id: int
    transaction_id: str
    id_tag: str | None
    started: datetime
    meter_start_wh: float | None = None
    measured_w: float = 0.0
    drawn_a: float | None = None  # the highest phase current in the last meter values
    # What the car takes (A per phase), learned from meter values or told (2.x needs).
    ev_max_a: float | None = None
    ev_learned_at: float = 0.0
    below_count: int = 0
    ev_needs_a: float | None = None  # the EV's own maximum (NotifyEVChargingNeeds)
    # The car stopped drawing by itself (full, or scheduled): it keeps only its minimum
    # until it charges again, so its share goes to the other cars.
    suspended_ev: bool = False
    # Verification: readings in a row above the limit, and the draw reserved while the
    # charger does not follow its limit (None: compliant).
    over_count: int = 0
    compliant_count: int = 0
    non_compliant_a: float | None = None

    @property
    def ev_cap_a(self) -> float | None:
        """Return the lower of the learned and the told acceptance, if any."""
        caps = [c for c in (self.ev_max_a, self.ev_needs_a) if c is not None]
        return min(caps) if caps else None

    @property
    def key(self) -> str:
        """Return the connector key."""
        return session_key(self.charger_id, self.connector_id)


class SessionBook:
    """The running sessions, by connector key, in arrival order."""

    def __init__(self) -> None:
        """Start empty."""
        self._sessions: dict[str, ChargingSession] = {}

    def __iter__(self) -> Iterator[ChargingSession]:
        """Iterate over the sessions in arrival order."""
        return iter(list(self._sessions.values()))

    def __len__(self) -> int:
        """Return the number of sessions."""
        return len(self._sessions)

    def get(self, charger_id: str, connector_id: int) -> ChargingSession | None:
        """Return the session on a connector, if any."""
        return self._sessions.get(session_key(charger_id, connector_id))

    def by_key(self, key: str) -> ChargingSession | None:
        """Return the session with a connector key, if any."""
        return self._sessions.get(key)

    def add(self, session: ChargingSession) -> None:
        """Add (or replace) the session on its connector."""
        self._sessions.pop(session.key, None)
        self._sessions[session.key] = session

    def remove_transaction(
        self, charger_id: str, transaction_id: str
    ) -> ChargingSession | None:
        """Remove the session of a transaction; return it (None: not known)."""
        for key, session in list(self._sessions.items()):
            if (
                session.charger_id == charger_id
                and session.transaction_id == transaction_id
            ):
                return self._sessions.pop(key)
        return None

    def of_charger(self, charger_id: str) -> list[ChargingSession]:
        """Return the sessions of one charger."""
        return [s for s in self._sessions.values() if s.charger_id == charger_id]

    def first_of(self, charger_id: str) -> ChargingSession | None:
        """Return the charger's first session, if any."""
        return next(
            (s for s in self._sessions.values() if s.charger_id == charger_id), None
        )


__all__ = ["ChargingSession", "SessionBook", "session_key"]
