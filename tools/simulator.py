"""Simulated OCPP 1.6J and 2.0.1 chargers built on the `ocpp` library's ChargePoint.

Used by the tests, the demo and `scripts/simulate`:

    charger = SimulatedCharger("CP-1", "ws://127.0.0.1:9000", version="2.0.1")
    await charger.start()
    await charger.plug_in()
    profile = await charger.wait_for_profile(lambda p: p.limit < 16, timeout=5)
    await charger.unplug()
    await charger.stop()

Every frame the charger receives is recorded (`frames`), every SetChargingProfile too
(`received_profiles`, with a sequence number shared by all simulated chargers so tests can
check the order across chargers). Meter values follow the limit in force.

Quirky chargers for the fallback tests: `rate_units="Power"` (watts only),
`reject_purposes={"TxProfile"}`, `profile_status="Rejected" | "NotSupported" |
"CallError"` (refuses everything), `smart_charging=False` (no SmartCharging feature
profile), `max_stack_level=N`; `password=` for Basic auth and `ssl_context=` for wss.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
from collections.abc import Callable, Collection, Coroutine, Sequence
import contextlib
from dataclasses import dataclass, field
import itertools
import json
import logging
import random
import ssl
import sys
import time
from typing import Any
import uuid

from ocpp.exceptions import NotImplementedError as OcppNotImplemented, NotSupportedError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as _Lib16, call as call16, call_result as result16
from ocpp.v201 import ChargePoint as _Lib201, call as call201, call_result as result201
import websockets
from websockets.asyncio.client import ClientConnection

from custom_components.smart_charge.csms.charge_point import ocpp_timestamp

_LOGGER = logging.getLogger(__name__)
_SEQUENCE = itertools.count(1)
VERSIONS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
_UNITS_2X = {"Current": "A", "Power": "W"}
QUIRKS: dict[str, dict[str, Any]] = {
    "watts-only": {"rate_units": "Power"},
    "no-txprofile": {"reject_purposes": frozenset({"TxProfile"})},
    "rejects-all": {"profile_status": "Rejected"},
    "no-smart-charging": {"smart_charging": False},
}


@dataclass(frozen=True, slots=True)
class ReceivedProfile:
    """One SetChargingProfile as the charger received it (camelCase, as on the wire)."""

    sequence: int
    connector_id: int
    profile: dict[str, Any]
    received_at: float

    @property
    def schedule(self) -> dict[str, Any]:
        """Return the (first) charging schedule."""
        schedule = self.profile["chargingSchedule"]
        return dict(schedule[0] if isinstance(schedule, list) else schedule)

    @property
    def limit(self) -> float:
        """Return the first period's limit."""
        return float(self.schedule["chargingSchedulePeriod"][0]["limit"])

    @property
    def rate_unit(self) -> str:
        """Return the rate unit (A or W)."""
        return str(self.schedule["chargingRateUnit"])

    @property
    def purpose(self) -> str:
        """Return the profile purpose."""
        return str(self.profile["chargingProfilePurpose"])

    @property
    def transaction_id(self) -> str | None:
        """Return the transaction id a TxProfile targets."""
        value = self.profile.get("transactionId")
        return None if value is None else str(value)


@dataclass(slots=True)
class _Connector:
    transaction_id: str | None = None
    plugged: bool = False
    tx_limit_a: float | None = None  # TxProfile: ends with the transaction
    default_limit_a: float | None = None  # TxDefaultProfile on this connector
    energy_wh: float = 0.0
    last_meter: float = field(default_factory=time.monotonic)
    seq_no: int = 0


class _RecordingClient:
    """The websocket as the library sees it: sends go out, receives are recorded."""

    def __init__(self, websocket: ClientConnection, sim: SimulatedCharger) -> None:
        self._websocket = websocket
        self._sim = sim

    async def send(self, message: str) -> None:
        await self._websocket.send(message)

    async def recv(self) -> str:
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
        if (
            isinstance(message, list)
            and len(message) == 4
            and message[0] == 2
            and message[2] in self.sim.ignore_actions
        ):
            return  # simulate a charger that never answers
        if (
            isinstance(message, list)
            and len(message) == 4
            and message[0] == 2
            and message[2] == "SetChargingProfile"
            and self.sim.profile_delay_s
        ):
            await asyncio.sleep(self.sim.profile_delay_s)  # a slow flash write
        await super().route_message(raw_msg)  # type: ignore[misc]
        if isinstance(message, list) and len(message) == 4 and message[0] == 2:
            self.sim.call_handled(message[2], message[3])


class _Sim16(_SimBase, _Lib16):
    @on("SetChargingProfile")
    def on_set_charging_profile(
        self, connector_id: int, cs_charging_profiles: dict[str, Any], **kwargs: Any
    ) -> Any:
        return result16.SetChargingProfile(status=self.sim.answer_profile())

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, **kwargs: Any) -> Any:
        self.sim.clear_limits(kwargs.get("connector_id"))
        return result16.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(
        self, connector_id: int, duration: int, **kwargs: Any
    ) -> Any:
        limit = self.sim.limit_in_force(connector_id)
        return result16.GetCompositeSchedule(
            status="Accepted",
            connector_id=connector_id,
            schedule_start=ocpp_timestamp(),
            charging_schedule={
                "duration": duration,
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": limit}],
            },
        )

    @on("GetConfiguration")
    def on_get_configuration(self, key: list[str] | None = None, **kwargs: Any) -> Any:
        known = self.sim.configuration
        wanted = key or list(known)
        return result16.GetConfiguration(
            configuration_key=[
                {"key": name, "readonly": False, "value": known[name]}
                for name in wanted
                if name in known
            ],
            unknown_key=[name for name in wanted if name not in known] or None,
        )

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


class _Sim201(_SimBase, _Lib201):
    @on("SetChargingProfile")
    def on_set_charging_profile(
        self, evse_id: int, charging_profile: dict[str, Any], **kwargs: Any
    ) -> Any:
        status = self.sim.answer_profile()
        return result201.SetChargingProfile(
            status="Rejected" if status == "NotSupported" else status
        )

    @on("ClearChargingProfile")
    def on_clear_charging_profile(self, **kwargs: Any) -> Any:
        criteria = kwargs.get("charging_profile_criteria") or {}
        self.sim.clear_limits(criteria.get("evse_id"))
        return result201.ClearChargingProfile(status="Accepted")

    @on("GetCompositeSchedule")
    def on_get_composite_schedule(
        self, duration: int, evse_id: int, **kwargs: Any
    ) -> Any:
        limit = self.sim.limit_in_force(evse_id)
        return result201.GetCompositeSchedule(
            status="Accepted",
            schedule={
                "evse_id": evse_id,
                "duration": duration,
                "schedule_start": ocpp_timestamp(),
                "charging_rate_unit": "A",
                "charging_schedule_period": [{"start_period": 0, "limit": limit}],
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
        return result201.GetVariables(get_variable_result=results)

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
        return result201.SetVariables(set_variable_result=results)

    @on("TriggerMessage")
    def on_trigger_message(self, requested_message: str, **kwargs: Any) -> Any:
        evse = kwargs.get("evse") or {}
        self.sim.on_trigger(requested_message, evse.get("id"))
        return result201.TriggerMessage(status="Accepted")

    @on("RequestStartTransaction")
    def on_request_start(self, id_token: dict[str, Any], **kwargs: Any) -> Any:
        self.sim.spawn(
            self.sim.plug_in(kwargs.get("evse_id") or 1, id_tag=id_token["id_token"])
        )
        return result201.RequestStartTransaction(status="Accepted")

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str, **kwargs: Any) -> Any:
        return result201.RequestStopTransaction(
            status=self.sim.remote_stop(transaction_id)
        )

    @on("Reset")
    def on_reset(self, type: str, **kwargs: Any) -> Any:  # noqa: A002
        return result201.Reset(status="Accepted")


class SimulatedCharger:
    """One simulated charger with `connectors` connectors (EVSEs in 2.0.1)."""

    def __init__(
        self,
        charger_id: str,
        url: str,
        *,
        version: str = "1.6",
        phases: int = 3,
        voltage_v: float = 230.0,
        connectors: int = 1,
        car_max_a: float = 32.0,
        meter_interval_s: float | None = None,
        profile_status: str = "Accepted",
        profile_delay_s: float = 0.0,
        response_timeout_s: float = 10.0,
        rate_units: str = "Current,Power",
        reject_purposes: Collection[str] = (),
        smart_charging: bool = True,
        max_stack_level: int = 8,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        subprotocols: Sequence[str] | None = None,
    ) -> None:
        """Describe the charger; nothing connects before `start()`."""
        if version not in VERSIONS:
            raise ValueError(f"Unsupported OCPP version {version!r}")
        self.charger_id = charger_id
        self.url = url.rstrip("/")
        self.version = version
        self.phases = phases
        self.voltage_v = voltage_v
        self.car_max_a = car_max_a
        self.meter_interval_s = meter_interval_s
        self.profile_status = profile_status
        self.profile_delay_s = profile_delay_s
        self.profile_answered_at: dict[int, float] = {}
        self.profile_answers: dict[int, str] = {}
        self.response_timeout_s = response_timeout_s
        self.rate_units = tuple(unit.strip() for unit in rate_units.split(","))
        self.reject_purposes = frozenset(reject_purposes)
        self.smart_charging = smart_charging
        self.max_stack_level = max_stack_level
        self.password = password
        self.ssl_context = ssl_context
        self.subprotocols = (
            list(subprotocols) if subprotocols is not None else [VERSIONS[version]]
        )
        self.station_limit_a: float | None = None
        self.default_limit_a: float | None = None  # TxDefaultProfile on connector 0
        self.ignore_actions: set[str] = set()
        features = "Core,RemoteTrigger" + (",SmartCharging" if smart_charging else "")
        self.configuration: dict[str, str] = {
            "ChargingScheduleAllowedChargingRateUnit": rate_units,
            "ChargeProfileMaxStackLevel": str(max_stack_level),
            "MaxChargingProfilesInstalled": "8",
            "ChargingScheduleMaxPeriods": "24",
            "SupportedFeatureProfiles": features,
            "SmartChargingCtrlr.Enabled": "true" if smart_charging else "false",
            "SmartChargingCtrlr.RateUnit": ",".join(
                _UNITS_2X.get(unit, unit) for unit in self.rate_units
            ),
            "SmartChargingCtrlr.ProfileStackLevel": str(max_stack_level),
            "SmartChargingCtrlr.PeriodsPerSchedule": "24",
        }
        self.frames: list[list[Any]] = []
        self.received_profiles: list[ReceivedProfile] = []
        self.connectors = {cid: _Connector() for cid in range(1, connectors + 1)}
        self._websocket: ClientConnection | None = None
        self._charge_point: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiters: list[
            tuple[Callable[[ReceivedProfile], bool], asyncio.Future[ReceivedProfile]]
        ] = []
        self._frame_event = asyncio.Event()

    # ----------------------------------------------------------------- lifecycle

    @property
    def connected(self) -> bool:
        """Return whether the websocket is open."""
        return self._websocket is not None

    async def start(self, *, boot: bool = True) -> None:
        """Connect, then send BootNotification and one StatusNotification per connector."""
        await self._connect()
        if boot:
            await self.boot()
            for connector_id in self.connectors:
                await self.send_status(connector_id, "Available")

    async def _connect(self) -> None:
        headers: dict[str, str] = {}
        if self.password is not None:
            token = base64.b64encode(f"{self.charger_id}:{self.password}".encode())
            headers["Authorization"] = f"Basic {token.decode()}"
        websocket = await websockets.connect(
            f"{self.url}/{self.charger_id}",
            subprotocols=self.subprotocols,  # type: ignore[arg-type]
            additional_headers=headers,
            ssl=self.ssl_context if self.url.startswith("wss:") else None,
        )
        cls = _Sim16 if self.version == "1.6" else _Sim201
        charge_point = cls(
            self.charger_id,
            _RecordingClient(websocket, self),
            response_timeout=self.response_timeout_s,
        )
        charge_point.sim = self
        self._websocket, self._charge_point = websocket, charge_point
        self._reader = asyncio.get_running_loop().create_task(self._read(charge_point))

    async def _read(self, charge_point: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await charge_point.start()

    async def reconnect(self) -> None:
        """Open a new connection first, then drop the old one (a flaky network)."""
        old_websocket, old_reader = self._websocket, self._reader
        await self._connect()
        await self.boot()
        if old_websocket is not None:
            await old_websocket.close()
        if old_reader is not None:
            await old_reader

    async def disconnect(self) -> None:
        """Close the websocket but keep the transactions (the car stays plugged in)."""
        websocket, reader = self._websocket, self._reader
        self._websocket = self._reader = None
        if websocket is not None:
            await websocket.close()
        if reader is not None:
            await reader

    async def stop(self) -> None:
        """Close the connection and cancel every task this charger started."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.disconnect()
        for _, future in self._waiters:
            future.cancel()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run a coroutine in a task that `stop()` cancels."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ----------------------------------------------------------- what it received

    def record_frame(self, text: str) -> None:
        """Record a received frame (called by the connection wrapper)."""
        try:
            frame = json.loads(text)
        except ValueError:
            return
        self.frames.append(frame)
        self._frame_event.set()
        if (
            isinstance(frame, list)
            and len(frame) == 4
            and frame[0] == 2
            and frame[2] == "SetChargingProfile"
        ):
            payload = frame[3]
            self.received_profiles.append(
                ReceivedProfile(
                    sequence=next(_SEQUENCE),
                    connector_id=int(
                        payload.get("connectorId", payload.get("evseId", 0))
                    ),
                    profile=payload.get("csChargingProfiles")
                    or payload["chargingProfile"],
                    received_at=time.monotonic(),
                )
            )

    def call_handled(self, action: str, payload: dict[str, Any]) -> None:
        """Update the limit in force after a SetChargingProfile answer was sent."""
        if action == "SetChargingProfile" and self.received_profiles:
            received = self.received_profiles[-1]
            self.profile_answered_at[received.sequence] = time.monotonic()
            if self.profile_answers.get(received.sequence) == "Accepted":
                self._apply_profile(received)
            for waiter in list(self._waiters):
                predicate, future = waiter
                if not future.done() and predicate(received):
                    future.set_result(received)
                    self._waiters.remove(waiter)
        self._frame_event.set()

    async def wait_for_profile(
        self,
        predicate: Callable[[ReceivedProfile], bool] = lambda _: True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ReceivedProfile:
        """Return the first received profile matching `predicate` (past or future)."""
        for received in self.received_profiles:
            if predicate(received):
                return received
        future: asyncio.Future[ReceivedProfile] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiters.append((predicate, future))
        async with asyncio.timeout(timeout):
            return await future

    async def wait_for_call(
        self,
        action: str,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[Any]:
        """Return the first received CALL frame of `action` (past or future)."""
        async with asyncio.timeout(timeout):
            while True:
                for frame in self.frames:
                    if len(frame) == 4 and frame[0] == 2 and frame[2] == action:
                        return frame
                self._frame_event.clear()
                await self._frame_event.wait()

    def answer_profile(self) -> str:
        """Decide the answer to the SetChargingProfile just received (quirks)."""
        received = self.received_profiles[-1]
        if not self.smart_charging:
            self.profile_answers[received.sequence] = "CallError"
            raise NotSupportedError(description="SmartCharging is not supported")
        if self.profile_status == "CallError":
            self.profile_answers[received.sequence] = "CallError"
            raise OcppNotImplemented(description="SetChargingProfile is not available")
        status = self.profile_status
        unit = {"A": "Current", "W": "Power"}.get(received.rate_unit)
        if status == "Accepted" and (
            unit not in self.rate_units
            or received.purpose in self.reject_purposes
            or int(received.profile.get("stackLevel", 0)) > self.max_stack_level
        ):
            status = "Rejected"
        self.profile_answers[received.sequence] = status
        return status

    def _limit_a(self, received: ReceivedProfile) -> float:
        if received.rate_unit == "A":
            return received.limit
        phases = received.schedule["chargingSchedulePeriod"][0].get(
            "numberPhases", self.phases
        )
        return received.limit / (self.voltage_v * int(phases))

    def _apply_profile(self, received: ReceivedProfile) -> None:
        limit = self._limit_a(received)
        connector = self.connectors.get(received.connector_id)
        if received.purpose in ("ChargePointMaxProfile", "ChargingStationMaxProfile"):
            self.station_limit_a = limit
        elif received.purpose == "TxDefaultProfile":
            if connector is None:
                self.default_limit_a = limit
            else:
                connector.default_limit_a = limit
        elif connector is not None:
            connector.tx_limit_a = limit

    def limit_in_force(self, connector_id: int) -> float:
        """Return the current limit in A (the car's maximum when no profile is set).

        A TxProfile wins over a connector's TxDefaultProfile, which wins over the
        station-wide TxDefaultProfile; a station maximum caps them all.
        """
        connector = self.connectors.get(connector_id)
        limit: float | None = None
        if connector is not None:
            if connector.tx_limit_a is not None and connector.transaction_id:
                limit = connector.tx_limit_a
            elif connector.default_limit_a is not None:
                limit = connector.default_limit_a
        if limit is None:
            limit = self.default_limit_a
        if limit is None:
            limit = self.car_max_a
        if self.station_limit_a is not None:
            limit = min(limit, self.station_limit_a)
        return limit

    def clear_limits(self, connector_id: int | None) -> None:
        """Forget limits after ClearChargingProfile."""
        for cid, connector in self.connectors.items():
            if connector_id in (None, 0, cid):
                connector.tx_limit_a = connector.default_limit_a = None
        if connector_id in (None, 0):
            self.station_limit_a = self.default_limit_a = None

    def on_trigger(self, message: str, connector_id: int | None) -> None:
        """Send the triggered message after the answer."""
        targets = [connector_id] if connector_id else list(self.connectors)
        for cid in targets:
            if message == "MeterValues":
                self.spawn(self.send_meter_values(cid))
            elif message == "StatusNotification":
                self.spawn(self.send_status(cid, self._status(cid)))
        if message == "BootNotification":
            self.spawn(self.boot())

    def remote_stop(self, transaction_id: str) -> str:
        """Stop the transaction after the answer, or reject an unknown one."""
        for cid, connector in self.connectors.items():
            if connector.transaction_id == transaction_id:
                self.spawn(self.unplug(cid, reason="Remote"))
                return "Accepted"
        return "Rejected"

    # ------------------------------------------------------------ what it sends

    async def _call(self, payload: Any) -> Any:
        return await self._charge_point.call(payload, suppress=False)

    def _status(self, connector_id: int) -> str:
        connector = self.connectors[connector_id]
        if connector.transaction_id is not None:
            return "Charging" if self.version == "1.6" else "Occupied"
        return "Available"

    async def boot(self) -> None:
        """Send BootNotification."""
        if self.version == "1.6":
            await self._call(
                call16.BootNotification(
                    charge_point_vendor="SmartChargeSim",
                    charge_point_model="Sim16",
                    charge_point_serial_number=f"SN-{self.charger_id}",
                    firmware_version="1.0.0",
                )
            )
        else:
            await self._call(
                call201.BootNotification(
                    charging_station={
                        "vendor_name": "SmartChargeSim",
                        "model": "Sim201",
                        "serial_number": f"SN-{self.charger_id}",
                        "firmware_version": "1.0.0",
                    },
                    reason="PowerUp",
                )
            )

    async def heartbeat(self) -> None:
        """Send Heartbeat."""
        await self._call(
            call16.Heartbeat() if self.version == "1.6" else call201.Heartbeat()
        )

    async def send_status(self, connector_id: int, status: str) -> None:
        """Send StatusNotification (1.6 status, or 2.0.1 connector status)."""
        if self.version == "1.6":
            await self._call(
                call16.StatusNotification(
                    connector_id=connector_id, error_code="NoError", status=status
                )
            )
        else:
            await self._call(
                call201.StatusNotification(
                    timestamp=ocpp_timestamp(),
                    connector_status=status,
                    evse_id=connector_id,
                    connector_id=1,
                )
            )

    async def authorize(self, id_tag: str) -> None:
        """Send Authorize."""
        if self.version == "1.6":
            await self._call(call16.Authorize(id_tag=id_tag))
        else:
            await self._call(
                call201.Authorize(id_token={"id_token": id_tag, "type": "ISO14443"})
            )

    def _energy_sample(self, connector: _Connector) -> dict[str, Any]:
        if self.version == "1.6":
            value: Any = f"{connector.energy_wh:.1f}"
        else:
            value = round(connector.energy_wh, 1)
        return {"value": value, "measurand": "Energy.Active.Import.Register"}

    async def plug_in(self, connector_id: int = 1, *, id_tag: str = "SIMTAG") -> str:
        """Plug a car in and start a transaction; return its id."""
        connector = self.connectors[connector_id]
        connector.plugged = True
        connector.last_meter = time.monotonic()
        if self.version == "1.6":
            await self.send_status(connector_id, "Preparing")
            result = await self._call(
                call16.StartTransaction(
                    connector_id=connector_id,
                    id_tag=id_tag,
                    meter_start=int(connector.energy_wh),
                    timestamp=ocpp_timestamp(),
                )
            )
            connector.transaction_id = str(result.transaction_id)
            await self.send_status(connector_id, "Charging")
        else:
            connector.transaction_id = uuid.uuid4().hex
            connector.seq_no = 0
            await self.send_status(connector_id, "Occupied")
            await self._transaction_event(
                connector_id,
                "Started",
                "CablePluggedIn",
                id_token={"id_token": id_tag, "type": "ISO14443"},
                meter_value=[
                    {
                        "timestamp": ocpp_timestamp(),
                        "sampled_value": [self._energy_sample(connector)],
                    }
                ],
            )
        if self.meter_interval_s:
            self.spawn(self._meter_loop(connector_id, connector.transaction_id))
        return connector.transaction_id

    async def _transaction_event(
        self, connector_id: int, event_type: str, trigger: str, **extra: Any
    ) -> Any:
        connector = self.connectors[connector_id]
        info: dict[str, Any] = {
            "transaction_id": connector.transaction_id,
            "charging_state": "Charging" if event_type != "Ended" else "EVConnected",
        }
        if event_type == "Ended":
            info["stopped_reason"] = extra.pop("stopped_reason", "EVDisconnected")
        seq_no, connector.seq_no = connector.seq_no, connector.seq_no + 1
        return await self._call(
            call201.TransactionEvent(
                event_type=event_type,
                timestamp=ocpp_timestamp(),
                trigger_reason=trigger,
                seq_no=seq_no,
                transaction_info=info,
                evse={"id": connector_id, "connector_id": 1},
                **extra,
            )
        )

    async def unplug(
        self, connector_id: int = 1, *, reason: str = "EVDisconnected"
    ) -> None:
        """Stop the transaction and unplug the car."""
        connector = self.connectors[connector_id]
        self._advance_energy(connector)
        if connector.transaction_id is not None:
            if self.version == "1.6":
                await self._call(
                    call16.StopTransaction(
                        meter_stop=int(connector.energy_wh),
                        timestamp=ocpp_timestamp(),
                        transaction_id=int(connector.transaction_id),
                        reason=reason,
                    )
                )
            else:
                await self._transaction_event(
                    connector_id,
                    "Ended",
                    "EVCommunicationLost"
                    if reason == "EVDisconnected"
                    else "RemoteStop",
                    stopped_reason=reason,
                    meter_value=[
                        {
                            "timestamp": ocpp_timestamp(),
                            "sampled_value": [self._energy_sample(connector)],
                        }
                    ],
                )
        connector.transaction_id = None
        connector.plugged = False
        connector.tx_limit_a = None
        await self.send_status(connector_id, "Available")

    def current_a(self, connector_id: int = 1) -> float:
        """Return what the car draws per phase: the limit in force, capped by the car."""
        connector = self.connectors[connector_id]
        if connector.transaction_id is None:
            return 0.0
        return max(0.0, min(self.limit_in_force(connector_id), self.car_max_a))

    def power_w(self, connector_id: int = 1) -> float:
        """Return the power the car draws."""
        return self.current_a(connector_id) * self.voltage_v * self.phases

    def _advance_energy(self, connector: _Connector) -> None:
        now = time.monotonic()
        cid = next(k for k, v in self.connectors.items() if v is connector)
        connector.energy_wh += self.power_w(cid) * (now - connector.last_meter) / 3600
        connector.last_meter = now

    async def send_meter_values(self, connector_id: int = 1) -> None:
        """Send power, per-phase current, voltage and energy that follow the limit."""
        connector = self.connectors[connector_id]
        self._advance_energy(connector)
        current = self.current_a(connector_id)
        phase_names = ("L1", "L2", "L3")[: self.phases]
        samples: list[dict[str, Any]] = [
            {
                "measurand": "Power.Active.Import",
                "value": self.power_w(connector_id),
                "unit": "W",
            },
            *(
                {
                    "measurand": "Current.Import",
                    "phase": phase,
                    "value": current,
                    "unit": "A",
                }
                for phase in phase_names
            ),
            {"measurand": "Voltage", "value": self.voltage_v, "unit": "V"},
            {
                "measurand": "Energy.Active.Import.Register",
                "value": connector.energy_wh,
                "unit": "Wh",
            },
        ]
        if self.version == "1.6":
            for sample in samples:
                sample["value"] = f"{sample['value']:.1f}"
            meter_value = [{"timestamp": ocpp_timestamp(), "sampled_value": samples}]
            await self._call(
                call16.MeterValues(
                    connector_id=connector_id,
                    meter_value=meter_value,
                    transaction_id=None
                    if connector.transaction_id is None
                    else int(connector.transaction_id),
                )
            )
            return
        for sample in samples:
            sample["unit_of_measure"] = {"unit": sample.pop("unit")}
            sample["value"] = round(float(sample["value"]), 1)
        meter_value = [{"timestamp": ocpp_timestamp(), "sampled_value": samples}]
        if connector.transaction_id is None:
            await self._call(
                call201.MeterValues(evse_id=connector_id, meter_value=meter_value)
            )
        else:
            await self._transaction_event(
                connector_id, "Updated", "MeterValuePeriodic", meter_value=meter_value
            )

    async def _meter_loop(self, connector_id: int, transaction_id: str) -> None:
        assert self.meter_interval_s
        connector = self.connectors[connector_id]
        while connector.transaction_id == transaction_id and self.connected:
            await asyncio.sleep(self.meter_interval_s)
            if connector.transaction_id == transaction_id and self.connected:
                await self.send_meter_values(connector_id)

    async def send_raw(self, frame: str) -> None:
        """Send a raw frame (for tests of bad input)."""
        assert self._websocket is not None
        await self._websocket.send(frame)


# ----------------------------------------------------------------------- CLI


async def _run_one(
    charger: SimulatedCharger, session_s: float, idle_s: float, rng: random.Random
) -> None:
    await charger.start()
    while True:
        await asyncio.sleep(rng.uniform(0, idle_s))
        await charger.plug_in()
        await asyncio.sleep(session_s)
        await charger.unplug()


async def run(args: argparse.Namespace) -> None:
    """Run `--count` chargers until interrupted."""
    versions = args.versions.split(",")
    rng = random.Random(args.seed)  # noqa: S311 - simulation, not crypto
    context = None
    if getattr(args, "cafile", None):
        context = ssl.create_default_context(cafile=args.cafile)
    quirk: dict[str, Any] = dict(QUIRKS.get(getattr(args, "quirk", None) or "", {}))
    chargers = [
        SimulatedCharger(
            f"{args.prefix}{index + 1:02d}",
            args.url,
            version=versions[index % len(versions)],
            phases=args.phases,
            car_max_a=args.car_max_a,
            meter_interval_s=args.meter_interval,
            password=getattr(args, "password", None),
            ssl_context=context,
            **quirk,
        )
        for index in range(args.count)
    ]
    try:
        async with asyncio.timeout(args.duration):
            await asyncio.gather(
                *(
                    _run_one(charger, args.session, args.idle, rng)
                    for charger in chargers
                )
            )
    except TimeoutError:
        pass
    finally:
        await asyncio.gather(
            *(charger.stop() for charger in chargers), return_exceptions=True
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point of `scripts/simulate`."""
    parser = argparse.ArgumentParser(description="Simulated OCPP chargers")
    parser.add_argument("--url", default="ws://127.0.0.1:9000")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument(
        "--versions", default="1.6,2.0.1", help="comma separated: 1.6,2.0.1"
    )
    parser.add_argument("--prefix", default="SIM-")
    parser.add_argument("--phases", type=int, choices=(1, 3), default=3)
    parser.add_argument("--car-max-a", type=float, default=32.0)
    parser.add_argument("--meter-interval", type=float, default=10.0)
    parser.add_argument(
        "--session", type=float, default=300.0, help="seconds per charging session"
    )
    parser.add_argument(
        "--idle", type=float, default=60.0, help="max seconds between sessions"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds"
    )
    parser.add_argument("--password", help="Basic auth password (every charger)")
    parser.add_argument("--cafile", help="CA certificate to trust for wss://")
    parser.add_argument(
        "--quirk", choices=sorted(QUIRKS), help="make every charger behave like this"
    )
    args = parser.parse_args(argv)
    if not set(args.versions.split(",")) <= set(VERSIONS):
        parser.error(f"--versions must be among {', '.join(VERSIONS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0
    except OSError as err:
        print(f"simulate: cannot connect to {args.url}: {err}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
