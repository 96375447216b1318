"""The control layer: sessions, limits on the wire and the breaker promise.

The glue between the OCPP central system (`csms`) and the engine, without Home
Assistant: the session book (`sessions`), car acceptance learning (`acceptance`),
capability probing (`probe`), the profile writer and its installed-profile books
(`writer`), the rebalance orchestrator (`orchestrator`) and persistence. It reports to
its owner through one typed callback (`reports`).
"""

from __future__ import annotations

from .config import (
    PHASE_SWITCHING_AUTO,
    PHASE_SWITCHING_OPTIONS,
    PHASE_SWITCHING_SUPPORTED,
    PHASE_SWITCHING_UNSUPPORTED,
    STATION_MAX_PURPOSES,
    TX_DEFAULT_PROFILE,
    TX_PROFILE,
    ChargerConfig,
)
from .orchestrator import (
    SEND_WINDOW,
    ChargerSnapshot,
    PanelSnapshot,
    SiteController,
    SiteSnapshot,
)
from .persistence import STATE_VERSION
from .reports import (
    CapabilitiesLearned,
    ChargerCompliant,
    ChargerNonCompliant,
    ChargerRejectsProfiles,
    ControlReport,
    ReportCallback,
)
from .sessions import ChargingSession, session_key
from .writer import ChargerBook, Installed, ProfileWriter

__all__ = [
    "PHASE_SWITCHING_AUTO",
    "PHASE_SWITCHING_OPTIONS",
    "PHASE_SWITCHING_SUPPORTED",
    "PHASE_SWITCHING_UNSUPPORTED",
    "SEND_WINDOW",
    "STATE_VERSION",
    "STATION_MAX_PURPOSES",
    "TX_DEFAULT_PROFILE",
    "TX_PROFILE",
    "CapabilitiesLearned",
    "ChargerBook",
    "ChargerCompliant",
    "ChargerConfig",
    "ChargerNonCompliant",
    "ChargerRejectsProfiles",
    "ChargerSnapshot",
    "ChargingSession",
    "ControlReport",
    "Installed",
    "PanelSnapshot",
    "ProfileWriter",
    "ReportCallback",
    "SiteController",
    "SiteSnapshot",
    "session_key",
]
