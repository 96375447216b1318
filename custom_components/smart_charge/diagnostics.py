"""Diagnostics of a Smart Charge site (secrets redacted)."""

from __future__ import annotations

from dataclasses import asdict
import re
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from .const import CONF_PASSWORD, CONF_TLS_KEY
from .coordinator import SmartChargeConfigEntry

TO_REDACT = {CONF_PASSWORD, CONF_TLS_KEY, "id_tag", "idTag", "idToken", "person"}
LAST_SESSIONS = 20
# id tags inside raw OCPP frames: "idTag":"ABC" and "idToken":{"idToken":"ABC",...}
_FRAME_SECRET = re.compile(r'("id(?:Tag|Token)"\s*:\s*)"[^"]*"')


def _redact_frame(frame: tuple[str, str]) -> list[str]:
    """Hide id tags in one recorded frame: (direction, raw frame text)."""
    return [_FRAME_SECRET.sub(r'\1"**REDACTED**"', part) for part in frame]


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SmartChargeConfigEntry
) -> dict[str, Any]:
    """Return the site, its subentries, the runtime state and recent OCPP frames."""
    site = entry.runtime_data
    server = site.server
    chargers: dict[str, Any] = {}
    if server is not None:
        for charger_id, state in server.chargers.items():
            chargers[charger_id] = {
                "ocpp_version": state.ocpp_version,
                "connected": state.connected,
                "boot": asdict(state.boot) if state.boot else None,
                "connectors": {k: asdict(v) for k, v in state.connectors.items()},
                "transactions": {k: asdict(v) for k, v in state.transactions.items()},
                "limit_acked": {k: asdict(v) for k, v in state.limit_acked.items()},
                "capabilities": (
                    capabilities.to_dict()
                    if site.controller is not None
                    and (capabilities := site.controller.capabilities(charger_id))
                    is not None
                    else None
                ),
                "recent_frames": [
                    _redact_frame(frame) for frame in state.recent_frames
                ],
            }
    return async_redact_data(
        {
            "entry": {"data": dict(entry.data), "title": entry.title},
            "subentries": [
                {
                    "type": subentry.subentry_type,
                    "title": subentry.title,
                    "data": dict(subentry.data),
                }
                for subentry in entry.subentries.values()
            ],
            "runtime_state": site.state.as_dict(),
            "site_data": asdict(site.data),
            "chargers": chargers,
            # The local list version each charger accepted, and the last finished
            # sessions (id tags redacted below).
            "local_lists": {
                charger_id: list_state.version
                for charger_id, list_state in site.tags.lists.items()
            },
            "sessions": [
                record.export() for record in site.history.sessions[-LAST_SESSIONS:]
            ],
        },
        TO_REDACT,
    )
