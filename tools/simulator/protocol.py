"""The `ocpp` library ChargePoint subclasses behind a simulated charger (1.6, 2.0.1, 2.1).

Handlers only translate payloads and ask the `SimulatedCharger` what to answer; the library
validates every frame against its schemas both ways (no handler or call skips it).
"""

# mypy: disallow-subclassing-any=False, disallow-untyped-decorators=False

from __future__ import annotations

import asyncio
import json
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ocpp.messages import CallError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as _Lib16, call_result as result16
from ocpp.v21 import ChargePoint as _Lib21, call_result as result21
from ocpp.v201 import ChargePoint as _Lib201, call_result as result201
from websockets.asyncio.client import ClientConnection

from custom_components.smart_charge.csms.charge_point import ocpp_timestamp

if TYPE_CHECKING:
    from .charger import SimulatedCharger


class RecordingClient:
    """The websocket as the library sees it: sends go out, receives are recorded."""

    def __init__(self, websocket: ClientConnection, sim: SimulatedCharger) -> None:
        """Wrap one connection of `sim`."""
        self._websocket = websocket
        self._sim = sim

    async def send(self, message: str) -> None:
        """Send a frame and record it."""
        await self._websocket.send(message)
        self._sim.record_sent(message)

    async def recv(self) -> str:
        """Receive a frame and record it."""
        message = await self._websocket.recv()
        text = message if isinstance(message, str) else message.decode()
        self._sim.record_frame(text)
        return text


class _SimBase:
    """Shared behaviour of the library subclasses; `sim` is set at construction."""

    sim: SimulatedCharger

    async def route_message(self, raw_msg: str) -> None:
        try:
            message = json.loads(raw_msg)
        except ValueError:
            message = None
        is_call = isinstance(message, list) and len(message) == 4 and message[0] == 2
        if isinstance(message, list) and len(message) >= 3 and message[0] == 3:
            # The charger learns a 1.6 transaction id the moment the conf arrives,
            # before it reads the next frame.
            self.sim.call_result_received(str(message[1]), message[2])
        if is_call and message[2] in self.sim.ignore_actions:
            self.sim.call_ignored(message[2])
            return  # a charger that never answers
        if is_call and message[2] in self.sim.call_errors:
            # A charger without this feature: a CALLERROR, nothing applied.
            error = CallError(
                message[1], "NotImplemented", f"{message[2]} is not implemented", {}
            )
            await self._send(error.to_json())  # type: ignore[attr-defined]
            self.sim.call_handled(message[2], message[3])
            return
        if is_call and message[2] == "SetChargingProfile" and self.sim.profile_delay_s:
            await asyncio.sleep(self.sim.profile_delay_s)  # a slow flash write
        await super().route_message(raw_msg)  # type: ignore[misc]
        if is_call:
            self.sim.call_handled(message[2], message[3])


def _configuration_16(sim: SimulatedCharger, key: list[str] | None) -> Any:
    known = sim.configuration
    wanted = key or list(known)
    return result16.GetConfiguration(
        configuration_key=[
            {"key": name, "readonly": False, "value": known[name]}
            for name in wanted
            if name in known
        ],
        unknown_key=[name for name in wanted if name not in known] or None,
    )


class _Sim16(_SimBase, _Lib16):
    """OCPP 1.6J."""

    @on("SetChargingProfile")
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **kwargs: Any
    ) -> Any:
        return result16.SetChargingProfile(status=self.sim.answer_profile())

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, **kwargs: Any) -> Any:
        status = self.sim.clear_profiles(
            profile_id=kwargs.get("id"),
            connector_id=kwargs.get("connector_id"),
            purpose=kwargs.get("charging_profile_purpose"),
            stack_level=kwargs.get("stack_level"),
        )
        return result16.ClearChargingProfile(status=status)

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, **kwargs: Any
    ) -> Any:
        if self.sim.composite_status != "Accepted":
            return result16.GetCompositeSchedule(status=self.sim.composite_status)
        unit, limit, phases = self.sim.composite(
            connector_id, self.sim.composite_unit or kwargs.get("charging_rate_unit")
        )
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=ocpp_timestamp(),
            charging_schedule={
                "duration": duration,
                "charging_rate_unit": unit,
                "charging_schedule_period": [
                    {"start_period": 0, "limit": limit, "number_phases": phases}
                ],
            },
        )

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **kwargs: Any) -> Any:
        return _configuration_16(self.sim, key)

    @on("ChangeConfiguration")
    def on_change_configuration(self, key: str, value: str, **kwargs: Any) -> Any:
        self.sim.configuration[key] = value
        return result16.ChangeConfiguration(status="Accepted")

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **kwargs: Any) -> Any:
        self.sim.on_trigger(requested_message, kwargs.get("connector_id"))
        return result16.TriggerMessage(status="Accepted")

    @on("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, **kwargs: Any) -> Any:
        self.sim.spawn(self.sim.plug_in(kwargs.get("connector_id") or 1, id_tag=id_tag))
        return result16.RemoteStartTransaction(status="Accepted")

    @on("RemoteStopTransaction")
    def on_remote_stop(self, transaction_id: int, **kwargs: Any) -> Any:
        return result16.RemoteStopTransaction(
            status=self.sim.remote_stop(str(transaction_id))
        )

    @on("Reset")
    def on_reset(self, type: str, **kwargs: Any) -> Any:  # noqa: A002
        return result16.Reset(status="Accepted")

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **kwargs: Any) -> Any:
        return result16.DataTransfer(status="UnknownVendorId")

    @on("SendLocalList")
    def on_send_local_list(
        self, list_version: int, update_type: str, **kwargs: Any
    ) -> Any:
        if "LocalAuthListManagement" not in self.sim.configuration.get(
            "SupportedFeatureProfiles", ""
        ):
            return result16.SendLocalList(status="NotSupported")
        status = self.sim.set_local_list(
            list_version,
            update_type == "Full",
            kwargs.get("local_authorization_list") or [],
        )
        return result16.SendLocalList(status=status)

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **kwargs: Any) -> Any:
        supported = "LocalAuthListManagement" in self.sim.configuration.get(
            "SupportedFeatureProfiles", ""
        )
        return result16.GetLocalListVersion(
            list_version=self.sim.local_list_version if supported else -1
        )


class _Handlers2x:
    """Handlers shared by 2.0.1 and 2.1 (same shapes); `_result` is the version's module."""

    sim: SimulatedCharger
    _result: ModuleType

    @on("SetChargingProfile")
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **kwargs: Any
    ) -> Any:
        status = self.sim.answer_profile()
        return self._result.SetChargingProfile(
            status="Rejected" if status == "NotSupported" else status
        )

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, **kwargs: Any) -> Any:
        criteria = kwargs.get("charging_profile_criteria") or {}
        status = self.sim.clear_profiles(
            profile_id=kwargs.get("charging_profile_id"),
            connector_id=criteria.get("evse_id"),
            purpose=criteria.get("charging_profile_purpose"),
            stack_level=criteria.get("stack_level"),
        )
        return self._result.ClearChargingProfile(status=status)

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, **kwargs: Any
    ) -> Any:
        if self.sim.composite_status != "Accepted":
            return self._result.GetCompositeSchedule(status=self.sim.composite_status)
        unit, limit, phases = self.sim.composite(
            evse_id, self.sim.composite_unit or kwargs.get("charging_rate_unit")
        )
        return self._result.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": ocpp_timestamp(),
                "charging_rate_unit": unit,
                "charging_schedule_period": [
                    {"start_period": 0, "limit": limit, "number_phases": phases}
                ],
            },
        )

    @on("GetVariables")
    def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **kw: Any
    ) -> Any:
        results = []
        for entry in get_variable_data:
            name = f"{entry['component']['name']}.{entry['variable']['name']}"
            value = self.sim.configuration.get(name)
            results.append(
                {
                    "attribute_status": "Accepted"
                    if value is not None
                    else "UnknownVariable",
                    "component": entry["component"],
                    "variable": entry["variable"],
                    **({"attribute_value": value} if value is not None else {}),
                }
            )
        return self._result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def on_set_variables(
        self, set_variable_data: list[dict[str, Any]], **kw: Any
    ) -> Any:
        results = []
        for entry in set_variable_data:
            name = f"{entry['component']['name']}.{entry['variable']['name']}"
            self.sim.configuration[name] = entry["attribute_value"]
            results.append(
                {
                    "attribute_status": "Accepted",
                    "component": entry["component"],
                    "variable": entry["variable"],
                }
            )
        return self._result.SetVariables(set_variable_result=results)

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **kwargs: Any) -> Any:
        evse = kwargs.get("evse") or {}
        self.sim.on_trigger(requested_message, evse.get("id"))
        return self._result.TriggerMessage(status="Accepted")

    @on("RequestStartTransaction")
    def on_request_start(self, id_token: dict[str, Any], **kwargs: Any) -> Any:
        self.sim.spawn(
            self.sim.plug_in(kwargs.get("evse_id") or 1, id_tag=id_token["id_token"])
        )
        return self._result.RequestStartTransaction(status="Accepted")

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str, **kwargs: Any) -> Any:
        return self._result.RequestStopTransaction(
            status=self.sim.remote_stop(transaction_id)
        )

    @on("Reset")
    def on_reset(self, type: str, **kwargs: Any) -> Any:  # noqa: A002
        return self._result.Reset(status="Accepted")

    @on("SendLocalList")
    def on_send_local_list(
        self, version_number: int, update_type: str, **kwargs: Any
    ) -> Any:
        if self.sim.configuration.get("LocalAuthListCtrlr.Enabled") != "true":
            return self._result.SendLocalList(status="Failed")
        status = self.sim.set_local_list(
            version_number,
            update_type == "Full",
            kwargs.get("local_authorization_list") or [],
        )
        return self._result.SendLocalList(status=status)

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **kwargs: Any) -> Any:
        return self._result.GetLocalListVersion(
            version_number=self.sim.local_list_version
        )


class _Sim201(_SimBase, _Handlers2x, _Lib201):
    """OCPP 2.0.1."""

    _result = result201


class _Sim21(_SimBase, _Handlers2x, _Lib21):
    """OCPP 2.1 (the 2.0.1 handlers over the 2.1 schemas, and Dynamic profiles)."""

    _result = result21

    @on("UpdateDynamicSchedule")
    def on_update_dynamic_schedule(
        self, charging_profile_id: int, schedule_update: dict[str, Any], **kwargs: Any
    ) -> Any:
        return result21.UpdateDynamicSchedule(
            status=self.sim.answer_dynamic_update(charging_profile_id, schedule_update)
        )


CHARGE_POINTS: dict[str, type[Any]] = {"1.6": _Sim16, "2.0.1": _Sim201, "2.1": _Sim21}
