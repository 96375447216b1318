"""The control layer: sessions, limits on the wire and the breaker promise.

Glue between the OCPP central system (`csms`) and the engine, without Home Assistant.
"""

from __future__ import annotations

from .orchestrator import (
    SEND_WINDOW,
    ChargerConfig,
    ChargerSnapshot,
    PanelSnapshot,
    SiteController,
    SiteSnapshot,
)

__all__ = [
    "SEND_WINDOW",
    "ChargerConfig",
    "ChargerSnapshot",
    "PanelSnapshot",
    "SiteController",
    "SiteSnapshot",
]
