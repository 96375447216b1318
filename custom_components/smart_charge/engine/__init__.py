"""Smart Charge load-management engine: pure Python, no Home Assistant imports.

Public API: the data model (`Session`, `Panel`, `Site`, `TimeOfUseWindow`, `Strategy`,
`Phase`), the site solver `allocate_site`, the seed-compatible `SmartChargingEngine`,
transition planning (`plan_transition`) and OCPP profile builders.
"""

from __future__ import annotations

from .allocate import allocate_site
from .errors import EngineConfigError, EngineError, ProfileError
from .model import (
    Panel,
    PanelAllocation,
    Phase,
    Session,
    SessionKey,
    SessionProfile,
    Site,
    SiteAllocation,
    Strategy,
    TimeOfUseWindow,
)

__all__ = [
    "EngineConfigError",
    "EngineError",
    "Panel",
    "PanelAllocation",
    "Phase",
    "ProfileError",
    "Session",
    "SessionKey",
    "SessionProfile",
    "Site",
    "SiteAllocation",
    "Strategy",
    "TimeOfUseWindow",
    "allocate_site",
]
