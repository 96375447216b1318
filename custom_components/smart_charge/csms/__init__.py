"""The OCPP central system: a websocket server for OCPP 1.6J, 2.0.1 and 2.1 chargers.

No Home Assistant imports: this package can run alone (`python -m ...csms`).
"""

from __future__ import annotations

from .authorization import (
    AuthorizationResult,
    AuthorizationStatus,
    Authorizer,
    LocalListEntry,
    accept_all,
)
from .capabilities import ChargerCapabilities
from .charge_point import (
    BootInfo,
    ChargerState,
    ChargingNeeds,
    CompositeSchedule,
    ConfigurationResult,
    ConnectorState,
    LimitRecord,
    MeterSample,
    TransactionState,
    VariableResult,
)
from .dynamic import (
    DynamicScheduleProvider,
    DynamicScheduleUpdate,
    no_dynamic_schedules,
)
from .errors import (
    CallRejectedError,
    CallTimeoutError,
    ChargerNotConnectedError,
    CsmsError,
    NotSupportedByVersionError,
)
from .events import (
    BootReceived,
    ChargerConnected,
    ChargerDisconnected,
    ChargerEvent,
    ConnectorStatus,
    DiagnosticsStatusChanged,
    EVChargingNeeds,
    FirmwareStatusChanged,
    HeartbeatReceived,
    MeterValuesReceived,
    MonitoringEventsReceived,
    ReportReceived,
    SecurityEventReceived,
    StatusChanged,
    TagSeen,
    TransactionStarted,
    TransactionStopped,
    normalise_status,
)
from .schemas import preload_schemas
from .server import CentralSystem, ServerConfig, ServerStartError

__all__ = [
    "AuthorizationResult",
    "AuthorizationStatus",
    "Authorizer",
    "BootInfo",
    "BootReceived",
    "CallRejectedError",
    "CallTimeoutError",
    "CentralSystem",
    "ChargerCapabilities",
    "ChargerConnected",
    "ChargerDisconnected",
    "ChargerEvent",
    "ChargerNotConnectedError",
    "ChargerState",
    "ChargingNeeds",
    "CompositeSchedule",
    "ConfigurationResult",
    "ConnectorState",
    "ConnectorStatus",
    "CsmsError",
    "DiagnosticsStatusChanged",
    "DynamicScheduleProvider",
    "DynamicScheduleUpdate",
    "EVChargingNeeds",
    "FirmwareStatusChanged",
    "HeartbeatReceived",
    "LimitRecord",
    "LocalListEntry",
    "MeterSample",
    "MeterValuesReceived",
    "MonitoringEventsReceived",
    "NotSupportedByVersionError",
    "ReportReceived",
    "SecurityEventReceived",
    "ServerConfig",
    "ServerStartError",
    "StatusChanged",
    "TagSeen",
    "TransactionStarted",
    "TransactionState",
    "TransactionStopped",
    "VariableResult",
    "accept_all",
    "no_dynamic_schedules",
    "normalise_status",
    "preload_schemas",
]
