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


__all__ = ["STATE_VERSION", "export_state", "import_state"]
