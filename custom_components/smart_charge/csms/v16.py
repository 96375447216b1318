"""OCPP 1.6J: incoming handlers that emit our events, outgoing calls as typed methods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import logging
from typing import Any

from ocpp.charge_point import snake_to_camel_case
from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as _LibChargePoint, call, call_result
from ocpp.v16.enums import Action

from .authorization import LocalListEntry
from .charge_point import (
    OCPP16,
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
from .errors import NotSupportedByVersionError
from .events import (
    BootReceived,
    DiagnosticsStatusChanged,
    FirmwareStatusChanged,
    HeartbeatReceived,
    MeterValuesReceived,
    StatusChanged,
    TagSeen,
    TransactionStarted,
    TransactionStopped,
    normalise_status,
)

_LOGGER = logging.getLogger(__name__)
KEY_FEATURE_PROFILES = "SupportedFeatureProfiles"
KEY_LOCAL_LIST_ENABLED = "LocalAuthListEnabled"
_KNOWN_ACTIONS = frozenset(str(action.value) for action in Action)


class ChargePoint16(_LibChargePoint):
    """A connected OCPP 1.6J charger."""

    def __init__(self, connection: Any, context: HandlerContext) -> None:
        """Bind the library ChargePoint to a connection and our handler context."""
        super().__init__(
            context.charger_id,
            connection,
            response_timeout=context.call_timeout_s,
            logger=LibraryLogger(context.charger_id),
        )
        self._ctx = context
        self._starting: dict[str, TransactionStarted] = {}
        self._actions = frozenset(str(action) for action in self.route_map)

    @property
    def ocpp_version(self) -> str:
        """Return the OCPP version."""
        return OCPP16

    @property
    def actions(self) -> frozenset[str]:
        """Return the actions handled."""
        return self._actions

    @property
    def known_actions(self) -> frozenset[str]:
        """Return every 1.6 action."""
        return _KNOWN_ACTIONS

    async def _handle_call(self, msg: Any) -> Any:
        """Handle a CALL; its CALLERROR codes are spelled the 1.6 way (§4.2.3)."""
        try:
            return await super()._handle_call(msg)
        except OCPPError as err:
            raise incoming_call_error(err, OCPP16) from err

    async def _send_call(self, payload: object, *, prebuilt: bool = False) -> Any:
        return await checked_call(
            self.call,
            payload,
            charger_id=self._ctx.charger_id,
            version=OCPP16,
            timeout_s=self._ctx.call_timeout_s,
            pending=self._ctx.pending_calls,
            prebuilt=prebuilt,
        )

    # ---------------------------------------------------------------- incoming

    @on(Action.boot_notification)
    def on_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> call_result.BootNotification:
        """Accept the charger."""
        return call_result.BootNotification(
            current_time=ocpp_timestamp(),
            interval=self._ctx.heartbeat_interval_s,
            status="Accepted",
        )

    @after(Action.boot_notification)
    def after_boot_notification(
        self, charge_point_vendor: str, charge_point_model: str, **kwargs: Any
    ) -> None:
        """Report the charger's identity once it has its answer (calls may follow)."""
        self._ctx.emit(
            BootReceived(
                self._ctx.charger_id,
                vendor=charge_point_vendor,
                model=charge_point_model,
                serial=kwargs.get("charge_point_serial_number")
                or kwargs.get("charge_box_serial_number"),
                firmware=kwargs.get("firmware_version"),
            )
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **kwargs: Any) -> call_result.Heartbeat:
        """Answer with the current time."""
        self._ctx.emit(HeartbeatReceived(self._ctx.charger_id))
        return call_result.Heartbeat(current_time=ocpp_timestamp())

    @on(Action.status_notification)
    def on_status_notification(
        self, connector_id: int, error_code: str, status: str, **kwargs: Any
    ) -> call_result.StatusNotification:
        """Report a connector status."""
        self._ctx.emit(
            StatusChanged(
                self._ctx.charger_id,
                connector_id,
                normalise_status(status),
                None if error_code == "NoError" else error_code,
            )
        )
        return call_result.StatusNotification()

    def _authorize(
        self, id_tag: str, action: str, connector_id: int | None = None
    ) -> dict[str, Any]:
        """Ask the owner about a tag, report it, return the `idTagInfo`."""
        result = self._ctx.authorize(id_tag)
        self._ctx.emit(
            TagSeen(
                self._ctx.charger_id,
                id_tag,
                result.accepted,
                str(result.status),
                action,
                connector_id,
            )
        )
        return result.id_tag_info()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str, **kwargs: Any) -> call_result.Authorize:
        """Answer from the owner's authorization hook (default: accept)."""
        return call_result.Authorize(id_tag_info=self._authorize(id_tag, "Authorize"))

    @on(Action.start_transaction)
    def on_start_transaction(
        self,
        connector_id: int,
        id_tag: str,
        meter_start: int,
        timestamp: str,
        call_unique_id: str,
        **kwargs: Any,
    ) -> call_result.StartTransaction:
        """Assign a transaction id; it is reported once the charger has it.

        A refused tag still gets its transaction id (the charger then stops it, 1.6
        §5.11); the `idTagInfo` says why.
        """
        id_tag_info = self._authorize(id_tag, "StartTransaction", connector_id)
        transaction_id = self._ctx.next_transaction_id()
        # Frames of one connection are handled one after the other, so at most one
        # start waits for its conf; a start whose conf was never sent is forgotten.
        self._starting = {
            call_unique_id: TransactionStarted(
                self._ctx.charger_id,
                connector_id,
                str(transaction_id),
                id_tag,
                float(meter_start),
                parse_timestamp(timestamp),
            )
        }
        return call_result.StartTransaction(
            transaction_id=transaction_id, id_tag_info=id_tag_info
        )

    @after(Action.start_transaction)
    def after_start_transaction(self, call_unique_id: str, **kwargs: Any) -> None:
        """Report the start only now that the conf with its id is on the wire.

        The library runs this synchronously right after sending the conf and before
        the next frame of this charger is handled: a TxProfile that a subscriber sends
        for the new id cannot overtake the conf (a strict charger rejects a profile
        for an id it does not know), and the state knows the transaction before a
        MeterValues or StopTransaction that follows.
        """
        started = self._starting.pop(call_unique_id, None)
        if started is not None:
            self._ctx.emit(started)

    @on(Action.stop_transaction)
    def on_stop_transaction(
        self, meter_stop: int, timestamp: str, transaction_id: int, **kwargs: Any
    ) -> call_result.StopTransaction:
        """Report the end of a transaction."""
        known = self._ctx.state.transactions.get(str(transaction_id))
        self._ctx.emit(
            TransactionStopped(
                self._ctx.charger_id,
                known.connector_id if known else 0,
                str(transaction_id),
                float(meter_stop),
                kwargs.get("reason"),
                parse_timestamp(timestamp),
            )
        )
        if id_tag := kwargs.get("id_tag"):
            return call_result.StopTransaction(
                id_tag_info=self._ctx.authorize(str(id_tag)).id_tag_info()
            )
        return call_result.StopTransaction()

    @on(Action.meter_values)
    def on_meter_values(
        self,
        connector_id: int,
        meter_value: list[dict[str, Any]],
        transaction_id: int | None = None,
        **kwargs: Any,
    ) -> call_result.MeterValues:
        """Report meter values."""
        reading = parse_meter_values(meter_value)
        self._ctx.emit(
            MeterValuesReceived(
                self._ctx.charger_id,
                connector_id,
                None if transaction_id is None else str(transaction_id),
                reading.power_w,
                reading.current_a,
                reading.voltage_v,
                reading.energy_wh,
                reading.soc,
                reading.timestamp,
            )
        )
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def on_data_transfer(
        self, vendor_id: str, **kwargs: Any
    ) -> call_result.DataTransfer:
        """DataTransfer is Core: answer it; we know no vendor's extensions."""
        _LOGGER.debug(
            "Charger %s: DataTransfer for vendor %r (message %r) not used",
            self._ctx.charger_id,
            vendor_id,
            kwargs.get("message_id"),
        )
        return call_result.DataTransfer(status="UnknownVendorId")

    @on(Action.firmware_status_notification)
    def on_firmware_status_notification(
        self, status: str, **kwargs: Any
    ) -> call_result.FirmwareStatusNotification:
        """Report a firmware update's progress."""
        self._ctx.emit(FirmwareStatusChanged(self._ctx.charger_id, status))
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status_notification(
        self, status: str, **kwargs: Any
    ) -> call_result.DiagnosticsStatusNotification:
        """Report a diagnostics upload's progress."""
        self._ctx.emit(DiagnosticsStatusChanged(self._ctx.charger_id, status))
        return call_result.DiagnosticsStatusNotification()

    # ---------------------------------------------------------------- outgoing

    async def set_charging_profile(
        self, connector_id: int, profile: Mapping[str, Any], *, prebuilt: bool = False
    ) -> str:
        """Send SetChargingProfile; `profile` is camelCase (csChargingProfiles)."""
        result = await self._send_call(
            call.SetChargingProfile(
                connector_id=connector_id, cs_charging_profiles=dict(profile)
            ),
            prebuilt=prebuilt,
        )
        return status_of(result)

    async def update_dynamic_schedule(
        self, profile_id: int, limit: float, *, setpoint: float | None = None
    ) -> str:
        """UpdateDynamicSchedule is 2.1 only."""
        raise NotSupportedByVersionError(
            self._ctx.charger_id, "UpdateDynamicSchedule", OCPP16
        )

    async def clear_charging_profile(
        self,
        *,
        profile_id: int | None,
        connector_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> str:
        """Send ClearChargingProfile."""
        result = await self._send_call(
            call.ClearChargingProfile(
                id=profile_id,
                connector_id=connector_id,
                charging_profile_purpose=purpose,
                stack_level=stack_level,
            )
        )
        return status_of(result)

    async def get_composite_schedule(
        self, connector_id: int, duration_s: int, rate_unit: str | None
    ) -> CompositeSchedule:
        """Send GetCompositeSchedule."""
        result = await self._send_call(
            call.GetCompositeSchedule(
                connector_id=connector_id,
                duration=duration_s,
                charging_rate_unit=rate_unit,
            )
        )
        schedule = result.charging_schedule
        return CompositeSchedule(
            status_of(result),
            None if schedule is None else snake_to_camel_case(schedule),
        )

    async def get_configuration(self, keys: Sequence[str]) -> ConfigurationResult:
        """Send GetConfiguration; an empty `keys` asks for everything."""
        result = await self._send_call(call.GetConfiguration(key=list(keys) or None))
        entries = result.configuration_key or []
        return ConfigurationResult(
            values={entry["key"]: entry.get("value") for entry in entries},
            read_only=frozenset(
                entry["key"] for entry in entries if entry.get("readonly")
            ),
            unknown=tuple(result.unknown_key or ()),
        )

    async def change_configuration(self, key: str, value: str) -> str:
        """Send ChangeConfiguration."""
        return status_of(
            await self._send_call(call.ChangeConfiguration(key=key, value=value))
        )

    async def get_variables(
        self, variables: Sequence[tuple[str, str]]
    ) -> list[VariableResult]:
        """GetVariables does not exist in 1.6."""
        raise NotSupportedByVersionError(self._ctx.charger_id, "GetVariables", OCPP16)

    async def set_variables(
        self, variables: Sequence[tuple[str, str, str]]
    ) -> list[VariableResult]:
        """SetVariables does not exist in 1.6."""
        raise NotSupportedByVersionError(self._ctx.charger_id, "SetVariables", OCPP16)

    async def trigger_message(self, message: str, connector_id: int | None) -> str:
        """Send TriggerMessage."""
        return status_of(
            await self._send_call(
                call.TriggerMessage(
                    requested_message=message, connector_id=connector_id
                )
            )
        )

    async def remote_start(self, id_tag: str, connector_id: int | None) -> str:
        """Send RemoteStartTransaction."""
        return status_of(
            await self._send_call(
                call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector_id)
            )
        )

    async def remote_stop(self, transaction_id: str) -> str:
        """Send RemoteStopTransaction."""
        return status_of(
            await self._send_call(
                call.RemoteStopTransaction(transaction_id=int(transaction_id))
            )
        )

    async def reset(self, *, hard: bool) -> str:
        """Send Reset."""
        return status_of(
            await self._send_call(call.Reset(type="Hard" if hard else "Soft"))
        )

    async def send_local_list(
        self, version: int, entries: Sequence[LocalListEntry], *, full: bool
    ) -> str:
        """Send SendLocalList with `listVersion` (1.6 §5.15)."""
        return status_of(
            await self._send_call(
                call.SendLocalList(
                    list_version=version,
                    update_type="Full" if full else "Differential",
                    local_authorization_list=[entry.as_16() for entry in entries],
                )
            )
        )

    async def get_local_list_version(self) -> int:
        """Send GetLocalListVersion (-1: no list support, 0: empty list)."""
        result = await self._send_call(call.GetLocalListVersion())
        return int(result.list_version)

    async def local_list_supported(self) -> bool:
        """LocalAuthListManagement in SupportedFeatureProfiles, and the list enabled."""
        config = await self.get_configuration(
            [KEY_FEATURE_PROFILES, KEY_LOCAL_LIST_ENABLED]
        )
        profiles = str(config.values.get(KEY_FEATURE_PROFILES) or "")
        if "LocalAuthListManagement" not in profiles:
            return False
        enabled = config.values.get(KEY_LOCAL_LIST_ENABLED)
        return enabled is None or str(enabled).strip().lower() == "true"
