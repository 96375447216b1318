"""Typed events the central system emits to its one subscriber."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final


class ConnectorStatus(StrEnum):
    """One connector status vocabulary for every OCPP version (1.6's names).

    2.x connector statuses and charging states are mapped into it by
    `normalise_status`; `UNKNOWN` is a status the charger has not told (or one we do
    not know).
    """

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"
    OCCUPIED = "Occupied"
    UNKNOWN = "Unknown"


# OCPP 2.x charging states (TransactionEvent.transactionInfo.chargingState).
_CHARGING_STATE_TO_STATUS: Final = {
    "Charging": ConnectorStatus.CHARGING,
    "EVConnected": ConnectorStatus.PREPARING,
    "SuspendedEV": ConnectorStatus.SUSPENDED_EV,
    "SuspendedEVSE": ConnectorStatus.SUSPENDED_EVSE,
    "Idle": ConnectorStatus.AVAILABLE,
}


def normalise_status(raw: str) -> ConnectorStatus:
    """Map a 1.6 status, 2.x connector status or 2.x charging state to our vocabulary."""
    if raw in ConnectorStatus:
        return ConnectorStatus(raw)
    return _CHARGING_STATE_TO_STATUS.get(raw, ConnectorStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class ChargerConnected:
    """A charger opened a websocket connection."""

    charger_id: str
    ocpp_version: str


@dataclass(frozen=True, slots=True)
class ChargerDisconnected:
    """A charger's connection closed (a replaced connection does not count)."""

    charger_id: str


@dataclass(frozen=True, slots=True)
class HeartbeatReceived:
    """A charger sent Heartbeat: it is alive (an idle charger's only sign of life)."""

    charger_id: str


@dataclass(frozen=True, slots=True)
class BootReceived:
    """A charger sent BootNotification."""

    charger_id: str
    vendor: str
    model: str
    serial: str | None
    firmware: str | None


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A connector (1.6) or EVSE (2.x) changed status; connector 0 is the charger."""

    charger_id: str
    connector_id: int
    status: ConnectorStatus
    error_code: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionStarted:
    """A transaction started on a connector (1.6) or EVSE (2.x)."""

    charger_id: str
    connector_id: int
    transaction_id: str
    id_tag: str | None
    meter_start_wh: float | None
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class TransactionStopped:
    """A transaction ended."""

    charger_id: str
    connector_id: int
    transaction_id: str
    meter_stop_wh: float | None
    reason: str | None
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class MeterValuesReceived:
    """Meter values for a connector; fields are None when the charger did not send them."""

    charger_id: str
    connector_id: int
    transaction_id: str | None
    power_w: float | None
    current_a: tuple[float, ...]
    voltage_v: float | None
    energy_wh: float | None
    soc: float | None
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class EVChargingNeeds:
    """An EV told its charging needs (OCPP 2.x, ISO 15118)."""

    charger_id: str
    connector_id: int
    energy_amount_wh: float | None
    ev_min_current_a: float | None
    ev_max_current_a: float | None
    ev_max_voltage_v: float | None
    departure_time: datetime | None
    # OCPP 2.1 V2X (ISO 15118-20 BPT): the EV offers a bidirectional transfer mode
    # (`*_BPT` in availableEnergyTransfer / requestedEnergyTransfer) and how much it may
    # discharge (v2xChargingParameters, W over all phases).
    bidirectional: bool = False
    max_discharge_power_w: float | None = None
    min_discharge_power_w: float | None = None
    control_mode: str | None = None


@dataclass(frozen=True, slots=True)
class ReportReceived:
    """One NotifyReport part (2.x), the reply to GetBaseReport / GetReport."""

    charger_id: str
    request_id: int
    seq_no: int
    more_to_follow: bool
    report_data: tuple[dict[str, object], ...]


@dataclass(frozen=True, slots=True)
class FirmwareStatusChanged:
    """A charger reported the progress of a firmware update (FirmwareStatusNotification).

    `request_id` is the 2.x UpdateFirmware request it belongs to (None in 1.6).
    """

    charger_id: str
    status: str
    request_id: int | None = None


@dataclass(frozen=True, slots=True)
class DiagnosticsStatusChanged:
    """A charger reported a log upload's progress.

    1.6 DiagnosticsStatusNotification, 2.x LogStatusNotification (with `request_id`).
    """

    charger_id: str
    status: str
    request_id: int | None = None


@dataclass(frozen=True, slots=True)
class SecurityEventReceived:
    """A charger reported a security event (2.x SecurityEventNotification)."""

    charger_id: str
    event_type: str
    timestamp: datetime
    tech_info: str | None = None


@dataclass(frozen=True, slots=True)
class MonitoringEventsReceived:
    """One NotifyEvent part (2.x): events of the charger's variable monitors.

    `event_data` is camelCase as on the wire.
    """

    charger_id: str
    seq_no: int
    more_to_follow: bool
    event_data: tuple[dict[str, object], ...]


@dataclass(frozen=True, slots=True)
class TagSeen:
    """A charger presented an id tag (2.x id token) and got the owner's answer.

    `action` is the message it came with: Authorize, StartTransaction (1.6) or
    TransactionEvent (2.x); `status` is the AuthorizationStatus answered.
    """

    charger_id: str
    id_tag: str
    accepted: bool
    status: str
    action: str
    connector_id: int | None = None


type ChargerEvent = (
    ChargerConnected
    | ChargerDisconnected
    | BootReceived
    | HeartbeatReceived
    | StatusChanged
    | TransactionStarted
    | TransactionStopped
    | MeterValuesReceived
    | EVChargingNeeds
    | ReportReceived
    | FirmwareStatusChanged
    | DiagnosticsStatusChanged
    | SecurityEventReceived
    | MonitoringEventsReceived
    | TagSeen
)
