"""OCPP 2.0.1 and 2.1: incoming handlers that emit our events, typed outgoing calls.

2.1 reuses the 2.0.1 handlers: every message handled here has the same shape in both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import count
import logging
from typing import Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v21 import ChargePoint as _LibChargePoint21
from ocpp.v21.enums import Action as Action21
from ocpp.v201 import ChargePoint as _LibChargePoint201
from ocpp.v201.enums import Action

from .authorization import LocalListEntry
from .charge_point import (
    OCPP21,
    CompositeSchedule,
    ConfigurationResult,
    HandlerContext,
    LibraryLogger,
    VariableResult,
    checked_call,
    incoming_call_error,
    ocpp_timestamp,
    parse_meter_values,
    parse_timestamp,
    status_of,
)
from .dynamic import DynamicScheduleUpdate
from .errors import NotSupportedByVersionError
from .events import (
    BootReceived,
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

_LOGGER = logging.getLogger(__name__)
LOCAL_AUTH_LIST_CTRLR = "LocalAuthListCtrlr"
_remote_start_ids = count(1)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


class _ChargePoint2x:
    """Handlers and calls shared by 2.0.1 and 2.1; mixed into the library classes."""

    _ctx: HandlerContext
    _call: Any
    _call_result: Any
    _ocpp_version: str
    _known_actions: frozenset[str]
    _actions: frozenset[str]
    route_map: dict[str, Any]
    call: Any

    @property
    def ocpp_version(self) -> str:
        """Return the OCPP version."""
        return self._ocpp_version

    @property
    def actions(self) -> frozenset[str]:
        """Return the actions handled."""
        return self._actions

    @property
    def known_actions(self) -> frozenset[str]:
        """Return every action of the version."""
        return self._known_actions

    async def _handle_call(self, msg: Any) -> Any:
        """Handle a CALL; schema violations get the 2.x code of their kind."""
        try:
            return await super()._handle_call(msg)  # type: ignore[misc]
        except OCPPError as err:
            raise incoming_call_error(err, self._ocpp_version) from err

    async def _send_call(self, payload: object, *, prebuilt: bool = False) -> Any:
        return await checked_call(
            self.call,
            payload,
            charger_id=self._ctx.charger_id,
            version=self._ocpp_version,
            timeout_s=self._ctx.call_timeout_s,
            pending=self._ctx.pending_calls,
            prebuilt=prebuilt,
        )

    def _meter_event(
        self, evse_id: int, transaction_id: str | None, meter_value: list[Any]
    ) -> MeterValuesReceived:
        reading = parse_meter_values(meter_value)
        return MeterValuesReceived(
            self._ctx.charger_id,
            evse_id,
            transaction_id,
            reading.power_w,
            reading.current_a,
            reading.voltage_v,
            reading.energy_wh,
            reading.soc,
            reading.timestamp,
        )

    # ---------------------------------------------------------------- incoming

    @on(Action.boot_notification)
    def on_boot_notification(
        self, charging_station: dict[str, Any], reason: str, **kwargs: Any
    ) -> Any:
        """Accept the charger."""
        return self._call_result.BootNotification(
            current_time=ocpp_timestamp(),
            interval=self._ctx.heartbeat_interval_s,
            status="Accepted",
        )

    @after(Action.boot_notification)
    def after_boot_notification(
        self, charging_station: dict[str, Any], reason: str, **kwargs: Any
    ) -> None:
        """Report the charger's identity once it has its answer (calls may follow)."""
        self._ctx.emit(
            BootReceived(
                self._ctx.charger_id,
                vendor=charging_station.get("vendor_name", ""),
                model=charging_station.get("model", ""),
                serial=charging_station.get("serial_number"),
                firmware=charging_station.get("firmware_version"),
            )
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> Any:
        """Answer with the current time."""
        self._ctx.emit(HeartbeatReceived(self._ctx.charger_id))
        return self._call_result.Heartbeat(current_time=ocpp_timestamp())

    @on(Action.status_notification)
    def on_status_notification(
        self, connector_status: str, evse_id: int, **kwargs: Any
    ) -> Any:
        """Report an EVSE's connector status (we key connectors by EVSE id)."""
        self._ctx.emit(
            StatusChanged(
                self._ctx.charger_id, evse_id, normalise_status(connector_status)
            )
        )
        return self._call_result.StatusNotification()

    def _authorize(
        self, id_token: dict[str, Any], action: str, evse_id: int | None = None
    ) -> dict[str, Any]:
        """Ask the owner about a token, report it, return the `idTokenInfo`."""
        token = str(id_token.get("id_token", ""))
        result = self._ctx.authorize(token)
        self._ctx.emit(
            TagSeen(
                self._ctx.charger_id,
                token,
                result.accepted,
                str(result.status),
                action,
                evse_id,
            )
        )
        return result.id_token_info()

    @on(Action.authorize)
    def on_authorize(self, id_token: dict[str, Any], **kwargs: Any) -> Any:
        """Answer from the owner's authorization hook (default: accept)."""
        return self._call_result.Authorize(
            id_token_info=self._authorize(id_token, "Authorize")
        )

    @on(Action.transaction_event)
    def on_transaction_event(
        self,
        event_type: str,
        timestamp: str,
        transaction_info: dict[str, Any],
        **kwargs: Any,
    ) -> Any:
        """Translate Started/Updated/Ended into start, meter, status and stop events."""
        ctx = self._ctx
        transaction_id = str(transaction_info["transaction_id"])
        known = ctx.state.transactions.get(transaction_id)
        evse = kwargs.get("evse") or {}
        evse_id = int(evse.get("id", known.connector_id if known else 0))
        when = parse_timestamp(timestamp)
        meter = (
            self._meter_event(evse_id, transaction_id, kwargs["meter_value"])
            if kwargs.get("meter_value")
            else None
        )
        id_token = kwargs.get("id_token")
        if known is None and event_type != "Ended":
            ctx.emit(
                TransactionStarted(
                    ctx.charger_id,
                    evse_id,
                    transaction_id,
                    id_token.get("id_token") if id_token else None,
                    meter.energy_wh if meter else None,
                    when,
                )
            )
        if meter is not None:
            ctx.emit(meter)
        if charging_state := transaction_info.get("charging_state"):
            ctx.emit(
                StatusChanged(ctx.charger_id, evse_id, normalise_status(charging_state))
            )
        if event_type == "Ended":
            ctx.emit(
                TransactionStopped(
                    ctx.charger_id,
                    evse_id,
                    transaction_id,
                    meter.energy_wh if meter else None,
                    transaction_info.get("stopped_reason"),
                    when,
                )
            )
        if id_token:
            return self._call_result.TransactionEvent(
                id_token_info=self._authorize(id_token, "TransactionEvent", evse_id)
            )
        return self._call_result.TransactionEvent()

    @on(Action.meter_values)
    def on_meter_values(
        self, evse_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> Any:
        """Report meter values outside a TransactionEvent."""
        known = self._ctx.state.transaction_on(evse_id)
        self._ctx.emit(
            self._meter_event(
                evse_id, known.transaction_id if known else None, meter_value
            )
        )
        return self._call_result.MeterValues()

    @on(Action.notify_ev_charging_needs)
    def on_notify_ev_charging_needs(
        self, charging_needs: dict[str, Any], evse_id: int, **kwargs: Any
    ) -> Any:
        """Report what the EV asked for."""
        params = (
            charging_needs.get("ac_charging_parameters")
            or charging_needs.get("dc_charging_parameters")
            or {}
        )
        departure = charging_needs.get("departure_time")
        v2x = charging_needs.get("v2x_charging_parameters") or {}
        modes = [
            str(mode)
            for mode in (
                charging_needs.get("requested_energy_transfer"),
                *(charging_needs.get("available_energy_transfer") or ()),
            )
            if mode
        ]
        self._ctx.emit(
            EVChargingNeeds(
                self._ctx.charger_id,
                evse_id,
                energy_amount_wh=_float(params.get("energy_amount")),
                ev_min_current_a=_float(params.get("ev_min_current")),
                ev_max_current_a=_float(params.get("ev_max_current")),
                ev_max_voltage_v=_float(params.get("ev_max_voltage")),
                departure_time=parse_timestamp(departure) if departure else None,
                bidirectional=any(mode.endswith("_BPT") for mode in modes),
                max_discharge_power_w=_float(v2x.get("max_discharge_power")),
                min_discharge_power_w=_float(v2x.get("min_discharge_power")),
                control_mode=charging_needs.get("control_mode"),
            )
        )
        return self._call_result.NotifyEVChargingNeeds(status="Accepted")

    @on(Action.notify_report)
    def on_notify_report(self, request_id: int, seq_no: int, **kwargs: Any) -> Any:
        """Pass a report part on."""
        self._ctx.emit(
            ReportReceived(
                self._ctx.charger_id,
                request_id,
                seq_no,
                bool(kwargs.get("tbc", False)),
                tuple(snake_to_camel_case(kwargs.get("report_data") or [])),
            )
        )
        return self._call_result.NotifyReport()

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> Any:
        """Answer DataTransfer; we know no vendor's extensions."""
        _LOGGER.debug(
            "Charger %s: DataTransfer for vendor %r (message %r) not used",
            self._ctx.charger_id,
            vendor_id,
            kwargs.get("message_id"),
        )
        return self._call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(self, status: str, **kwargs: Any) -> Any:
        """Report a firmware update's progress."""
        self._ctx.emit(
            FirmwareStatusChanged(
                self._ctx.charger_id, status, _int(kwargs.get("request_id"))
            )
        )
        return self._call_result.FirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status_notification(self, status: str, **kwargs: Any) -> Any:
        """Report a log upload's progress."""
        self._ctx.emit(
            DiagnosticsStatusChanged(
                self._ctx.charger_id, status, _int(kwargs.get("request_id"))
            )
        )
        return self._call_result.LogStatusNotification()

    @on(Action.security_event_notification)
    def on_security_event_notification(self, timestamp: str, **kwargs: Any) -> Any:
        """Report a security event (its `type` is a required field)."""
        self._ctx.emit(
            SecurityEventReceived(
                self._ctx.charger_id,
                str(kwargs["type"]),
                parse_timestamp(timestamp),
                kwargs.get("tech_info"),
            )
        )
        return self._call_result.SecurityEventNotification()

    @on(Action.notify_event)
    def on_notify_event(
        self, seq_no: int, event_data: list[dict[str, Any]], **kwargs: Any
    ) -> Any:
        """Pass the monitors' events on."""
        self._ctx.emit(
            MonitoringEventsReceived(
                self._ctx.charger_id,
                seq_no,
                bool(kwargs.get("tbc", False)),
                tuple(snake_to_camel_case(event_data)),
            )
        )
        return self._call_result.NotifyEvent()

    # ---------------------------------------------------------------- outgoing

    async def set_charging_profile(
        self, connector_id: int, profile: Mapping[str, Any], *, prebuilt: bool = False
    ) -> str:
        """Send SetChargingProfile to an EVSE; `profile` is camelCase."""
        result = await self._send_call(
            self._call.SetChargingProfile(
                evse_id=connector_id, charging_profile=dict(profile)
            ),
            prebuilt=prebuilt,
        )
        return status_of(result)

    async def update_dynamic_schedule(
        self, profile_id: int, limit: float, *, setpoint: float | None = None
    ) -> str:
        """Send UpdateDynamicSchedule: the new limit of a Dynamic profile (2.1 only).

        `setpoint` (V2X, negative: discharge) also moves the setpoint and the discharge
        limit of a CentralSetpoint period.
        """
        if self._ocpp_version != OCPP21:
            raise NotSupportedByVersionError(
                self._ctx.charger_id, "UpdateDynamicSchedule", self._ocpp_version
            )
        update = DynamicScheduleUpdate(
            limit, setpoint, None if setpoint is None else min(0.0, setpoint)
        )
        result = await self._send_call(
            self._call.UpdateDynamicSchedule(
                charging_profile_id=profile_id, schedule_update=update.to_wire()
            )
        )
        return status_of(result)

    async def clear_charging_profile(
        self,
        *,
        profile_id: int | None,
        connector_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> str:
        """Send ClearChargingProfile."""
        criteria = {
            key: value
            for key, value in (
                ("evseId", connector_id),
                ("chargingProfilePurpose", purpose),
                ("stackLevel", stack_level),
            )
            if value is not None
        }
        result = await self._send_call(
            self._call.ClearChargingProfile(
                charging_profile_id=profile_id,
                charging_profile_criteria=criteria or None,
            )
        )
        return status_of(result)

    async def get_composite_schedule(
        self, connector_id: int, duration_s: int, rate_unit: str | None
    ) -> CompositeSchedule:
        """Send GetCompositeSchedule."""
        result = await self._send_call(
            self._call.GetCompositeSchedule(
                duration=duration_s, evse_id=connector_id, charging_rate_unit=rate_unit
            )
        )
        schedule = result.schedule
        return CompositeSchedule(
            status_of(result),
            None if schedule is None else snake_to_camel_case(schedule),
        )

    async def get_configuration(self, keys: Sequence[str]) -> ConfigurationResult:
        """GetConfiguration is 1.6 only; use get_variables."""
        raise NotSupportedByVersionError(
            self._ctx.charger_id, "GetConfiguration", self._ocpp_version
        )

    async def change_configuration(self, key: str, value: str) -> str:
        """ChangeConfiguration is 1.6 only; use set_variables."""
        raise NotSupportedByVersionError(
            self._ctx.charger_id, "ChangeConfiguration", self._ocpp_version
        )

    async def get_variables(
        self, variables: Sequence[tuple[str, str]]
    ) -> list[VariableResult]:
        """Send GetVariables for (component, variable) pairs."""
        result = await self._send_call(
            self._call.GetVariables(
                get_variable_data=[
                    {"component": {"name": component}, "variable": {"name": variable}}
                    for component, variable in variables
                ]
            )
        )
        return [
            VariableResult(
                component=entry["component"]["name"],
                variable=entry["variable"]["name"],
                status=str(entry["attribute_status"]),
                value=entry.get("attribute_value"),
            )
            for entry in result.get_variable_result
        ]

    async def set_variables(
        self, variables: Sequence[tuple[str, str, str]]
    ) -> list[VariableResult]:
        """Send SetVariables for (component, variable, value) triples."""
        result = await self._send_call(
            self._call.SetVariables(
                set_variable_data=[
                    {
                        "component": {"name": component},
                        "variable": {"name": variable},
                        "attribute_value": value,
                    }
                    for component, variable, value in variables
                ]
            )
        )
        return [
            VariableResult(
                component=entry["component"]["name"],
                variable=entry["variable"]["name"],
                status=str(entry["attribute_status"]),
            )
            for entry in result.set_variable_result
        ]

    async def trigger_message(self, message: str, connector_id: int | None) -> str:
        """Send TriggerMessage."""
        return status_of(
            await self._send_call(
                self._call.TriggerMessage(
                    requested_message=message,
                    evse=None if connector_id is None else {"id": connector_id},
                )
            )
        )

    async def remote_start(self, id_tag: str, connector_id: int | None) -> str:
        """Send RequestStartTransaction."""
        return status_of(
            await self._send_call(
                self._call.RequestStartTransaction(
                    id_token={"id_token": id_tag, "type": "Central"},
                    remote_start_id=next(_remote_start_ids),
                    evse_id=connector_id,
                )
            )
        )

    async def remote_stop(self, transaction_id: str) -> str:
        """Send RequestStopTransaction."""
        return status_of(
            await self._send_call(
                self._call.RequestStopTransaction(transaction_id=transaction_id)
            )
        )

    async def reset(self, *, hard: bool) -> str:
        """Send Reset (Immediate for hard, OnIdle for soft)."""
        return status_of(
            await self._send_call(
                self._call.Reset(type="Immediate" if hard else "OnIdle")
            )
        )

    async def send_local_list(
        self, version: int, entries: Sequence[LocalListEntry], *, full: bool
    ) -> str:
        """Send SendLocalList with `versionNumber` (2.0.1 D01/D02)."""
        return status_of(
            await self._send_call(
                self._call.SendLocalList(
                    version_number=version,
                    update_type="Full" if full else "Differential",
                    local_authorization_list=[entry.as_2x() for entry in entries]
                    or None,
                )
            )
        )

    async def get_local_list_version(self) -> int:
        """Send GetLocalListVersion (0: no list)."""
        result = await self._send_call(self._call.GetLocalListVersion())
        return int(result.version_number)

    async def local_list_supported(self) -> bool:
        """LocalAuthListCtrlr.Enabled is true (not Available=false)."""
        results = await self.get_variables(
            [(LOCAL_AUTH_LIST_CTRLR, "Enabled"), (LOCAL_AUTH_LIST_CTRLR, "Available")]
        )
        values = {
            entry.variable: str(entry.value).strip().lower()
            for entry in results
            if entry.status == "Accepted" and entry.value is not None
        }
        return values.get("Enabled") == "true" and values.get("Available") != "false"


class ChargePoint201(_ChargePoint2x, _LibChargePoint201):
    """A connected OCPP 2.0.1 charging station."""

    _known_actions = frozenset(str(action.value) for action in Action)

    def __init__(self, connection: Any, context: HandlerContext) -> None:
        """Bind the library ChargePoint to a connection and our handler context."""
        _LibChargePoint201.__init__(
            self,
            context.charger_id,
            connection,
            response_timeout=context.call_timeout_s,
            logger=LibraryLogger(context.charger_id),
        )
        self._ctx = context
        self._actions = frozenset(str(action) for action in self.route_map)


class ChargePoint21(_ChargePoint2x, _LibChargePoint21):
    """A connected OCPP 2.1 charging station (2.0.1 handlers, 2.1 schemas)."""

    _known_actions = frozenset(str(action.value) for action in Action21)

    @on(Action21.pull_dynamic_schedule_update)
    def on_pull_dynamic_schedule_update(
        self, charging_profile_id: int, **kwargs: Any
    ) -> Any:
        """Answer with the limit meant for one of our Dynamic profiles, else Rejected."""
        update = self._ctx.dynamic_schedule(charging_profile_id)
        if update is None:
            return self._call_result.PullDynamicScheduleUpdate(
                status="Rejected",
                status_info={
                    "reason_code": "UnknownProfile",
                    "additional_info": f"no Dynamic profile {charging_profile_id}",
                },
            )
        return self._call_result.PullDynamicScheduleUpdate(
            status="Accepted", schedule_update=update.to_wire()
        )

    def __init__(self, connection: Any, context: HandlerContext) -> None:
        """Bind the library ChargePoint to a connection and our handler context."""
        _LibChargePoint21.__init__(
            self,
            context.charger_id,
            connection,
            response_timeout=context.call_timeout_s,
            logger=LibraryLogger(context.charger_id),
        )
        self._ctx = context
        self._actions = frozenset(str(action) for action in self.route_map)
