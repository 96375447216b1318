"""Smart Charge load-management engine: pure Python, no Home Assistant imports.

Public API: the data model (`Session`, `Panel`, `Site`, `TimeOfUseWindow`, `Strategy`,
`Phase`), the vocabularies of why (`LimitReason` with `SessionLimit` per session,
`BudgetReason` per panel), the site solver `allocate_site`, the seed-compatible `SmartChargingEngine`,
transition planning (`plan_transition`) and OCPP profile builders.
Charging plans: `plan_charging` with `PlanRequest`/`ChargingGoal`/`PlanSlot` in and a
`ChargingPlan` out.
"""

from __future__ import annotations

from .allocate import allocate_site
from .engine import (
    ClearDispatcher,
    CustomStrategy,
    Dispatcher,
    DispatchFailure,
    GridOverCommitted,
    SmartChargingEngine,
)
from .errors import EngineConfigError, EngineError, ProfileError
from .model import (
    BudgetReason,
    LimitReason,
    Panel,
    PanelAllocation,
    Phase,
    Session,
    SessionKey,
    SessionLimit,
    SessionProfile,
    Site,
    SiteAllocation,
    Strategy,
    TimeOfUseWindow,
)
from .planner import plan_charging
from .planner_model import (
    ChargingGoal,
    ChargingPeriod,
    ChargingPlan,
    PanelPlan,
    PlanMode,
    PlanReason,
    PlanRequest,
    PlanSlot,
    SessionPlan,
    ShortfallReason,
    SlotPlan,
)
from .profiles import (
    KIND_DYNAMIC,
    STATION_MAX_2X,
    STATION_MAX_16,
    TX_DEFAULT_PROFILE,
    TX_PROFILE,
    ProfilePurpose,
    build_ocpp16_profile,
    build_ocpp16_request,
    build_ocpp21_profile,
    build_ocpp21_request,
    build_ocpp201_profile,
    build_ocpp201_request,
    profile_id_for,
)
from .transitions import LimitChange, TransitionPlan, plan_transition

__all__ = [
    "KIND_DYNAMIC",
    "STATION_MAX_2X",
    "STATION_MAX_16",
    "TX_DEFAULT_PROFILE",
    "TX_PROFILE",
    "BudgetReason",
    "ChargingGoal",
    "ChargingPeriod",
    "ChargingPlan",
    "ClearDispatcher",
    "CustomStrategy",
    "DispatchFailure",
    "Dispatcher",
    "EngineConfigError",
    "EngineError",
    "GridOverCommitted",
    "LimitChange",
    "LimitReason",
    "Panel",
    "PanelAllocation",
    "PanelPlan",
    "Phase",
    "PlanMode",
    "PlanReason",
    "PlanRequest",
    "PlanSlot",
    "ProfileError",
    "ProfilePurpose",
    "Session",
    "SessionKey",
    "SessionLimit",
    "SessionPlan",
    "SessionProfile",
    "ShortfallReason",
    "Site",
    "SiteAllocation",
    "SlotPlan",
    "SmartChargingEngine",
    "Strategy",
    "TimeOfUseWindow",
    "TransitionPlan",
    "allocate_site",
    "build_ocpp16_profile",
    "build_ocpp16_request",
    "build_ocpp21_profile",
    "build_ocpp21_request",
    "build_ocpp201_profile",
    "build_ocpp201_request",
    "plan_charging",
    "plan_transition",
    "profile_id_for",
]
