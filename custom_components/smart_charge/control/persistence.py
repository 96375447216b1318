"""Persistence: sessions, learned capabilities and installed profiles across restarts.

Version 2 adds the installed-profile books, so after a restart a charger that does not
come back stays reserved at what it may still draw; version 1 data (sessions and
capabilities) is still read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
import logging
from typing import Any, Final

from custom_components.smart_charge.csms.capabilities import ChargerCapabilities

from .sessions import ChargingSession, SessionBook
from .writer import ChargerBook, ProfileWriter

_LOGGER = logging.getLogger(__name__)
STATE_VERSION: Final = 2
_READABLE: Final = frozenset({1, 2})


def export_state(book: SessionBook, writer: ProfileWriter) -> dict[str, Any]:
    """Return the controller's state as JSON-able data."""
    return {
        "version": STATE_VERSION,
        "sessions": [
            {
                "charger_id": s.charger_id,
                "connector_id": s.connector_id,
                "transaction_id": s.transaction_id,
                "id_tag": s.id_tag,
                "started": s.started.isoformat(),
                "meter_start_wh": s.meter_start_wh,
            }
            for s in book
        ],
        "capabilities": {
            charger_id: capabilities.to_dict()
            for charger_id, capabilities in writer.capabilities.items()
        },
        "profiles": {
            charger_id: charger_book.to_dict()
            for charger_id, charger_book in writer.books.items()
            if charger_book.slots or charger_book.connector_defaults_refused
        },
    }


def import_state(
    data: Mapping[str, Any], book: SessionBook, writer: ProfileWriter
) -> list[ChargingSession]:
    """Restore `export_state` data into `book` and `writer`; return the sessions.

    Unknown versions are ignored; so is any entry that cannot be read.
    """
    if data.get("version") not in _READABLE:
        return []
    stored = data.get("capabilities")
    for charger_id, item in (stored if isinstance(stored, Mapping) else {}).items():
        try:
            writer.capabilities[str(charger_id)] = ChargerCapabilities.from_dict(item)
        except (AttributeError, TypeError, ValueError):
            _LOGGER.warning(
                "Ignoring stored capabilities I cannot read for %s", charger_id
            )
    profiles = data.get("profiles")
    for charger_id, item in (profiles if isinstance(profiles, Mapping) else {}).items():
        try:
            writer.books[str(charger_id)] = ChargerBook.from_dict(item)
        except (AttributeError, KeyError, TypeError, ValueError):
            _LOGGER.warning("Ignoring stored profiles I cannot read for %s", charger_id)
    restored: list[ChargingSession] = []
    for item in data.get("sessions", ()):
        try:
            session = ChargingSession(
                str(item["charger_id"]),
                int(item["connector_id"]),
                str(item["transaction_id"]),
                item.get("id_tag"),
                datetime.fromisoformat(item["started"]),
                item.get("meter_start_wh"),
            )
        except (KeyError, TypeError, ValueError):
            _LOGGER.warning("Ignoring a stored session I cannot read: %s", item)
            continue
        book.add(session)
        restored.append(session)
    return restored


def export_rotation(
    turn: Mapping[str, float],
    waiting_since: Mapping[str, float],
    due: set[str],
    now: float,
) -> dict[str, Any]:
    """Return the rotation of paused cars as JSON-able data (no loop times).

    The turn order as session keys, first first; how long each paused session has
    waited (s); and the sessions due for a turn.
    """
    return {
        "order": sorted(turn, key=lambda key: (turn[key], key)),
        "waited_s": {
            key: max(0.0, now - since) for key, since in waiting_since.items()
        },
        "due": sorted(due),
    }


def import_rotation(
    data: Any, now: float
) -> tuple[dict[str, float], dict[str, float], set[str]]:
    """Return `(turn, waiting_since, due)` in loop time from `export_rotation` data.

    The restored order comes before any session that joins later (each joins at the
    back with the loop time of then); what cannot be read is left out.
    """
    if not isinstance(data, Mapping):
        return {}, {}, set()
    order = data.get("order")
    keys = [str(key) for key in order] if isinstance(order, list) else []
    turn = {key: now - 1.0 + place * 1e-6 for place, key in enumerate(keys)}
    waiting: dict[str, float] = {}
    waited = data.get("waited_s")
    for key, seconds in (waited if isinstance(waited, Mapping) else {}).items():
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            waiting[str(key)] = now - max(0.0, float(seconds))
    due = data.get("due")
    return turn, waiting, {str(key) for key in due} if isinstance(due, list) else set()


__all__ = [
    "STATE_VERSION",
    "export_rotation",
    "export_state",
    "import_rotation",
    "import_state",
]
