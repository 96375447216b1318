"""`SimulatedCharger`: one OCPP 1.6J / 2.0.1 / 2.1 charger (see the package docstring)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import (
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Mapping,
    Sequence,
)
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
import itertools
import json
import logging
import ssl
import time
from typing import Any
import uuid

from ocpp.exceptions import NotImplementedError as OcppNotImplemented, NotSupportedError
from ocpp.v16 import call as call16
from ocpp.v21 import call as call21
from ocpp.v201 import call as call201
import websockets
from websockets.asyncio.client import ClientConnection

from custom_components.smart_charge.csms.charge_point import ocpp_timestamp

from .profiles import (
    STATION_MAX,
    TX_PROFILE,
    InstalledProfile,
    Limit,
    Period,
    ProfileTable,
    offline_seconds,
)
from .protocol import CHARGE_POINTS, RecordingClient

_LOGGER = logging.getLogger(__name__)
_SEQUENCE = itertools.count(1)
_SESSIONS = itertools.count(1)
VERSIONS = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}
_UNITS_2X = {"Current": "A", "Power": "W"}
_UNIT_OF = {"A": "Current", "W": "Power"}
_PHASES = ("L1", "L2", "L3")
_END_TRIGGERS = {
    "EVDisconnected": "EVCommunicationLost",
    "Remote": "RemoteStop",
    "Reboot": "ResetCommand",
    "PowerLoss": "AbnormalCondition",
}


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _discharges(period: Mapping[str, Any]) -> bool:
    """Return whether a period or schedule update asks for V2X (camel or snake case)."""
    mode = period.get("operationMode", period.get("operation_mode"))
    setpoint = _float_or_none(period.get("setpoint"))
    discharge = _float_or_none(
        period.get("dischargeLimit", period.get("discharge_limit"))
    )
    return (
        mode not in (None, "ChargingOnly")
        or (setpoint is not None and setpoint < 0)
        or (discharge is not None and discharge < 0)
    )


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
    def number_phases(self) -> int | None:
        """Return the first period's numberPhases (None: not given)."""
        value = self.schedule["chargingSchedulePeriod"][0].get("numberPhases")
        return None if value is None else int(value)

    @property
    def rate_unit(self) -> str:
        """Return the rate unit (A or W)."""
        return str(self.schedule["chargingRateUnit"])

    @property
    def purpose(self) -> str:
        """Return the profile purpose."""
        return str(self.profile["chargingProfilePurpose"])

    @property
    def stack_level(self) -> int:
        """Return the stack level."""
        return int(self.profile.get("stackLevel", 0))

    @property
    def profile_id(self) -> int:
        """Return the profile id (1.6 chargingProfileId, 2.x id)."""
        return int(self.profile.get("chargingProfileId", self.profile.get("id", 0)))

    @property
    def transaction_id(self) -> str | None:
        """Return the transaction id a TxProfile targets."""
        value = self.profile.get("transactionId")
        return None if value is None else str(value)


@dataclass(slots=True)
class Session:
    """A transaction as the charger knows it (1.6: the id comes with the conf)."""

    token: int
    started_at: datetime
    id_tag: str
    transaction_id: str | None = None


@dataclass(slots=True)
class Connector:
    """One connector (an EVSE in 2.x) and the car on it."""

    plugged: bool = False
    session: Session | None = None
    energy_wh: float = 0.0
    last_meter: float = field(default_factory=time.monotonic)
    seq_no: int = 0
    # V2X: energy given back (Energy.Active.Export.Register) and when the battery's
    # state of charge was last brought up to date (the charger's `clock`).
    export_wh: float = 0.0
    soc_at: datetime | None = None

    @property
    def transaction_id(self) -> str | None:
        """Return the running transaction's id as the charger knows it."""
        return None if self.session is None else self.session.transaction_id

    @property
    def in_transaction(self) -> bool:
        """Return whether a transaction runs (1.6 offline: even before it has an id)."""
        return self.session is not None


type Outgoing = Callable[[], Awaitable[None]]


class SimulatedCharger:
    """One simulated charger with `connectors` connectors (EVSEs in 2.x)."""

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
        hardware_max_a: float | None = None,
        grid_phase: str | None = None,
        meter_interval_s: float | None = None,
        profile_status: str = "Accepted",
        profile_delay_s: float = 0.0,
        response_timeout_s: float = 10.0,
        rate_units: str = "Current,Power",
        amps_only: bool = False,
        reject_purposes: Collection[str] = (),
        reject_first: int = 0,
        dynamic_profiles: bool = True,
        pull_dynamic_s: float | None = None,
        bidirectional: bool = False,
        capacity_kwh: float = 60.0,
        soc_pct: float | None = None,
        max_discharge_a: float | None = None,
        smart_charging: bool = True,
        max_stack_level: int = 8,
        max_profiles: int = 8,
        max_periods: int = 24,
        strict: bool = False,
        ignores_limits: bool = False,
        stuck_at_a: float | None = None,
        reboot_on_reset: bool = False,
        clock: Callable[[], datetime] | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        subprotocols: Sequence[str] | None = None,
        local_list: bool = False,
        message_clock: Callable[[], datetime] | None = None,
        phase_switching: bool = False,
    ) -> None:
        """Describe the charger; nothing connects before `start()`.

        `phase_switching`: a three-phase charger that honours `numberPhases` 1 (the car
        then draws on `grid_phase`, L1 when None) and reports it (2.x:
        `SmartChargingCtrlr.Phases3to1` and `ACPhaseSwitchingSupported`); without it, it draws on all its phases
        whatever the profile says, as many chargers do.
        """
        if version not in VERSIONS:
            raise ValueError(f"Unsupported OCPP version {version!r}")
        if amps_only:
            rate_units = "Current"
        self.charger_id = charger_id
        self.url = url.rstrip("/")
        self.version = version
        self.phases = phases
        self.voltage_v = voltage_v
        self.car_max_a = car_max_a
        self.hardware_max_a = (
            max(32.0, car_max_a) if hardware_max_a is None else hardware_max_a
        )
        self.grid_phase = grid_phase
        self.phase_switching = phase_switching
        self.meter_interval_s = meter_interval_s
        self.profile_status = profile_status
        self.profile_delay_s = profile_delay_s
        self.profile_answered_at: dict[int, float] = {}
        self.profile_answers: dict[int, str] = {}
        self.rejection_reasons: dict[int, str] = {}
        self.response_timeout_s = response_timeout_s
        self.rate_units = tuple(unit.strip() for unit in rate_units.split(","))
        self.reject_purposes = frozenset(reject_purposes)
        self.reject_first = reject_first
        # 2.1: takes Dynamic profiles and UpdateDynamicSchedule (False: rejects both).
        self.dynamic_profiles = dynamic_profiles
        self.dynamic_updates: list[tuple[int, float]] = []  # accepted (profile, limit)
        self._dynamic_update: tuple[int, dict[str, Any]] | None = None  # not applied
        # 2.1: ask for its Dynamic profiles' limits (PullDynamicScheduleUpdate) every
        # `pull_dynamic_s` while a session runs (None: only when `pull_dynamic_schedule`
        # is called); the answers, (profile id, status, scheduleUpdate).
        self.pull_dynamic_s = pull_dynamic_s
        self.pulls: list[tuple[int, str, dict[str, Any] | None]] = []
        # 2.1 V2X (ISO 15118-20 BPT): a car whose battery (`capacity_kwh`, `soc_pct`)
        # can give power back when a CentralSetpoint period asks for a negative setpoint.
        # A charger that is not bidirectional refuses such profiles and updates.
        self.bidirectional = bidirectional and version == "2.1"
        self.capacity_kwh = capacity_kwh
        self.soc_pct = soc_pct
        self.max_discharge_a = (
            self.hardware_max_a if max_discharge_a is None else max_discharge_a
        )
        self.smart_charging = smart_charging
        self.max_stack_level = max_stack_level
        self.max_profiles = max_profiles
        # ChargingScheduleMaxPeriods: a schedule with more periods is rejected.
        self.max_periods = max_periods
        self.strict = strict
        self.ignores_limits = ignores_limits
        self.stuck_at_a = stuck_at_a
        self.reboot_on_reset = reboot_on_reset
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        # The time written into its messages (meter values, transactions, status).
        self.message_clock = message_clock
        self.password = password
        self.ssl_context = ssl_context
        self.subprotocols = (
            list(subprotocols) if subprotocols is not None else [VERSIONS[version]]
        )
        self.ignore_actions: set[str] = set()
        # Actions it answers with a CALLERROR (NotImplemented), as a charger without them.
        self.call_errors: set[str] = set()
        # How it answers GetCompositeSchedule: its status ("Rejected": no schedule) and
        # the unit it reports in whatever was asked (None: the unit asked for).
        self.composite_status = "Accepted"
        self.composite_unit: str | None = None
        features = (
            "Core,RemoteTrigger"
            + (",SmartCharging" if smart_charging else "")
            + (",LocalAuthListManagement" if local_list else "")
        )
        self.configuration: dict[str, str] = {
            "ChargingScheduleAllowedChargingRateUnit": rate_units,
            "ChargeProfileMaxStackLevel": str(max_stack_level),
            "MaxChargingProfilesInstalled": str(max_profiles),
            "ChargingScheduleMaxPeriods": str(max_periods),
            "SupportedFeatureProfiles": features,
            "SmartChargingCtrlr.Enabled": "true" if smart_charging else "false",
            "SmartChargingCtrlr.RateUnit": ",".join(
                _UNITS_2X.get(unit, unit) for unit in self.rate_units
            ),
            "SmartChargingCtrlr.ProfileStackLevel": str(max_stack_level),
            "SmartChargingCtrlr.PeriodsPerSchedule": str(max_periods),
            "SmartChargingCtrlr.Phases3to1": "true" if phase_switching else "false",
            "SmartChargingCtrlr.ACPhaseSwitchingSupported": "true"
            if phase_switching
            else "false",
            "SmartChargingCtrlr.Entries": str(max_profiles),
        }
        if self.bidirectional:
            # OCPP 2.1 device model, component V2XChargingCtrlr (on the EVSE).
            self.configuration.update(
                {
                    "V2XChargingCtrlr.Enabled": "true",
                    "V2XChargingCtrlr.SupportedOperationModes": (
                        "ChargingOnly,CentralSetpoint"
                    ),
                    "V2XChargingCtrlr.SupportedEnergyTransferModes": (
                        "AC_three_phase,AC_BPT"
                    ),
                }
            )
        if local_list:
            self.configuration.update(
                {
                    "LocalAuthListEnabled": "true",
                    "LocalAuthorizeOffline": "true",
                    "LocalAuthListMaxLength": "100",
                    "SendLocalListMaxLength": "100",
                    "LocalAuthListCtrlr.Enabled": "true",
                    "LocalAuthListCtrlr.Available": "true",
                    "LocalAuthListCtrlr.Entries": "100",
                }
            )
        # The local authorization list: id tag -> (status, expiry as sent).
        self.local_list: dict[str, tuple[str, str | None]] = {}
        self.local_list_version = 0
        # What the central system answered per id tag: (action, status).
        self.authorizations: list[tuple[str, str, str]] = []
        self.frames: list[list[Any]] = []
        self.sent: list[list[Any]] = []
        self.received_profiles: list[ReceivedProfile] = []
        self.profiles = ProfileTable()
        self.connectors = {cid: Connector() for cid in range(1, connectors + 1)}
        self.outbox: list[Outgoing] = []
        self.offline_since: datetime | None = None
        self._set_profile_count = 0
        self._pending_starts: dict[str, Session] = {}
        self._websocket: ClientConnection | None = None
        self._charge_point: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiters: list[
            tuple[Callable[[ReceivedProfile], bool], asyncio.Future[ReceivedProfile]]
        ] = []
        self._frame_event = asyncio.Event()
        # The received profiles it has dealt with (answered, or ignored on purpose).
        self._settled: set[int] = set()

    # ----------------------------------------------------------------- lifecycle

    @property
    def connected(self) -> bool:
        """Return whether the websocket is open."""
        return self._websocket is not None

    async def start(self, *, boot: bool = True, flush: bool = True) -> None:
        """Connect, boot, a StatusNotification per connector, then the queued messages.

        `flush=False` keeps the queue (call `flush()` later): a 1.6 charger then runs
        a transaction whose id it does not know yet.
        """
        await self._connect()
        if boot:
            await self.boot()
            for connector_id in self.connectors:
                await self.send_status(connector_id, self._status(connector_id))
        if flush:
            await self.flush()

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
        offline_for = offline_seconds(self.offline_since, self.clock())
        if offline_for is not None:
            for gone in self.profiles.expire_offline(offline_for):
                _LOGGER.info(
                    "%s: profile %s invalid after %.0f s offline",
                    self.charger_id,
                    gone.id,
                    offline_for,
                )
        self.offline_since = None
        charge_point = CHARGE_POINTS[self.version](
            self.charger_id,
            RecordingClient(websocket, self),
            response_timeout=self.response_timeout_s,
        )
        charge_point.sim = self
        self._websocket, self._charge_point = websocket, charge_point
        self._reader = asyncio.get_running_loop().create_task(self._read(charge_point))

    async def _read(self, charge_point: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await charge_point.start()
        if self._charge_point is charge_point and self._websocket is not None:
            # The server went away: keep charging on the installed profiles.
            self._websocket = self._reader = None
            self.offline_since = self.clock()

    async def wait_closed(self) -> None:
        """Return once the connection is gone (at once when not connected)."""
        reader = self._reader
        if reader is not None:
            await asyncio.shield(reader)

    async def reconnect(self) -> None:
        """Open a new connection first, then drop the old one (a flaky network).

        Then BootNotification and what was queued while offline.
        """
        old_websocket, old_reader = self._websocket, self._reader
        await self._connect()
        await self.boot()
        if old_websocket is not None:
            await old_websocket.close()
        if old_reader is not None:
            await old_reader
        await self.flush()

    async def disconnect(self) -> None:
        """Close the websocket but keep the transactions (the car stays plugged in)."""
        websocket, reader = self._websocket, self._reader
        self._websocket = self._reader = None
        if websocket is not None:
            self.offline_since = self.clock()
            await websocket.close()
        if reader is not None:
            await reader

    async def reboot(self, *, resume: bool = True) -> None:
        """Restart the charger.

        Transactions end (reason Reboot), TxProfiles are lost, TxDefault and maximum
        profiles persist; it reconnects and boots, then (`resume`) the cars still
        plugged in start new transactions.
        """
        plugged = [cid for cid, c in self.connectors.items() if c.plugged]
        await self.disconnect()
        for cid in plugged:
            await self.unplug(cid, reason="Reboot")
        self.profiles.drop_tx_profiles()
        await self.start()
        if resume:
            for cid in plugged:
                await self.plug_in(cid)

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

    async def flush(self) -> None:
        """Send the messages queued while offline, in order."""
        while self.outbox and self.connected:
            send = self.outbox.pop(0)
            try:
                await send()
            except websockets.ConnectionClosed:
                self.outbox.insert(0, send)
                return

    async def _send_or_queue(self, send: Outgoing) -> None:
        """Send a transaction message now, or queue it until the connection is back."""
        if self.connected and not self.outbox:
            try:
                await send()
            except websockets.ConnectionClosed:
                self.outbox.insert(0, send)  # sent again on reconnect
        else:
            self.outbox.append(send)

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
            and isinstance(frame[3], dict)
        ):
            payload = frame[3]
            self.received_profiles.append(
                ReceivedProfile(
                    sequence=next(_SEQUENCE),
                    connector_id=int(
                        payload.get("connectorId", payload.get("evseId", 0))
                    ),
                    profile=payload.get("csChargingProfiles")
                    or payload.get("chargingProfile")
                    or {},
                    received_at=time.monotonic(),
                )
            )

    def record_sent(self, text: str) -> None:
        """Record a frame the charger sent."""
        with contextlib.suppress(ValueError):
            self.sent.append(json.loads(text))

    def sent_calls(self, action: str) -> list[dict[str, Any]]:
        """Return the payloads of the CALLs of `action` the charger sent."""
        return [
            frame[3]
            for frame in self.sent
            if len(frame) == 4 and frame[0] == 2 and frame[2] == action
        ]

    def call_result_received(self, unique_id: str, payload: Any) -> None:
        """Learn a 1.6 transaction id as soon as its StartTransaction.conf arrives."""
        session = self._pending_starts.pop(unique_id, None)
        if (
            session is not None
            and isinstance(payload, dict)
            and "transactionId" in payload
        ):
            session.transaction_id = str(payload["transactionId"])

    def call_ignored(self, action: str) -> None:
        """Note a call left unanswered on purpose (`ignore_actions`)."""
        if action == "SetChargingProfile" and self.received_profiles:
            self._settled.add(self.received_profiles[-1].sequence)

    def call_handled(self, action: str, payload: dict[str, Any]) -> None:
        """Apply a SetChargingProfile once its answer was sent; wake the waiters."""
        if action in ("SetChargingProfile", "UpdateDynamicSchedule"):
            self._advance_battery()  # the old setpoint held until now
        if action == "SetChargingProfile" and self.received_profiles:
            received = self.received_profiles[-1]
            self.profile_answered_at[received.sequence] = time.monotonic()
            self._settled.add(received.sequence)
            if self.profile_answers.get(received.sequence) == "Accepted":
                self._install(received)
            for waiter in list(self._waiters):
                predicate, future = waiter
                if not future.done() and predicate(received):
                    future.set_result(received)
                    self._waiters.remove(waiter)
        elif action == "UpdateDynamicSchedule" and self._dynamic_update is not None:
            profile_id, update = self._dynamic_update
            self._dynamic_update = None
            self._apply_update(profile_id, update)
        elif action == "Reset" and self.reboot_on_reset:
            self.spawn(self.reboot())
        self._frame_event.set()

    async def wait_for_profile(
        self,
        predicate: Callable[[ReceivedProfile], bool] = lambda _: True,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> ReceivedProfile:
        """Return the first received profile matching `predicate` (past or future).

        A profile counts once the charger has dealt with it: answered (and installed
        when accepted), or left unanswered on purpose (`ignore_actions`). One still
        being answered is waited for, so its limit is in force when this returns.
        """
        for received in self.received_profiles:
            if predicate(received) and received.sequence in self._settled:
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

    # --------------------------------------------------------------- its profiles

    def answer_profile(self) -> str:
        """Decide the answer to the SetChargingProfile just received."""
        received = self.received_profiles[-1]
        self._set_profile_count += 1
        if not self.smart_charging:
            self.profile_answers[received.sequence] = "CallError"
            raise NotSupportedError(description="SmartCharging is not supported")
        if self.profile_status == "CallError":
            self.profile_answers[received.sequence] = "CallError"
            raise OcppNotImplemented(description="SetChargingProfile is not available")
        reason = self._refusal(received)
        status = self.profile_status
        if status == "Accepted" and reason is not None:
            status = "Rejected"
            self.rejection_reasons[received.sequence] = reason
            _LOGGER.debug("%s rejects profile: %s", self.charger_id, reason)
        self.profile_answers[received.sequence] = status
        return status

    def _refusal(self, received: ReceivedProfile) -> str | None:
        """Return why this charger rejects the profile (None: it accepts it)."""
        if self._set_profile_count <= self.reject_first:
            return f"rejects its first {self.reject_first} profiles"
        if _UNIT_OF.get(received.rate_unit) not in self.rate_units:
            return f"rate unit {received.rate_unit} not supported"
        if received.purpose in self.reject_purposes:
            return f"purpose {received.purpose} not supported"
        if (
            received.profile.get("chargingProfileKind") == "Dynamic"
            and not self.dynamic_profiles
        ):
            return "Dynamic profiles not supported"
        if not self.bidirectional and any(
            _discharges(period)
            for period in received.schedule["chargingSchedulePeriod"]
        ):
            return "not bidirectional: no setpoints or discharging"
        if received.stack_level > self.max_stack_level:
            return f"stack level {received.stack_level} above {self.max_stack_level}"
        periods = len(received.schedule.get("chargingSchedulePeriod", ()))
        if periods > self.max_periods:
            return f"{periods} periods, at most {self.max_periods}"
        return self._strict_refusal(received) if self.strict else None

    def answer_dynamic_update(self, profile_id: int, update: Mapping[str, Any]) -> str:
        """Decide the answer to UpdateDynamicSchedule (applied once answered)."""
        target = next((p for p in self.profiles if p.id == profile_id), None)
        if (
            not self.dynamic_profiles
            or target is None
            or target.kind != "Dynamic"
            or "limit" not in update
            or (not self.bidirectional and _discharges(update))
        ):
            return "Rejected"
        self._dynamic_update = (profile_id, dict(update))
        return "Accepted"

    def _apply_update(self, profile_id: int, update: Mapping[str, Any]) -> None:
        """Move a Dynamic profile (snake_case scheduleUpdate, as the library gives it)."""
        limit = float(update["limit"])
        self.profiles.move_limit(
            profile_id,
            limit,
            setpoint=_float_or_none(update.get("setpoint")),
            discharge_limit=_float_or_none(update.get("discharge_limit")),
        )
        self.dynamic_updates.append((profile_id, limit))

    async def pull_dynamic_schedule(self, connector_id: int = 1) -> str:
        """Send PullDynamicScheduleUpdate for the Dynamic TxProfile on a connector.

        An Accepted answer moves the profile as an UpdateDynamicSchedule would; returns
        the status (NoProfile: nothing to pull for).
        """
        profile = next(
            (
                p
                for p in self.profiles.on(connector_id)
                if p.kind == "Dynamic" and p.purpose == TX_PROFILE
            ),
            None,
        )
        if profile is None:
            return "NoProfile"
        return await self.pull_profile(profile.id)

    async def pull_profile(self, profile_id: int) -> str:
        """Send PullDynamicScheduleUpdate for any profile id; apply an Accepted answer."""
        result = await self._call(
            call21.PullDynamicScheduleUpdate(charging_profile_id=profile_id)
        )
        status = str(result.status)
        update = result.schedule_update
        self.pulls.append((profile_id, status, update))
        if status == "Accepted" and update is not None and "limit" in update:
            self._advance_battery()
            self._apply_update(profile_id, update)
            self._frame_event.set()
        return status

    async def _pull_loop(self, connector_id: int, token: int) -> None:
        """Pull the session's Dynamic limit every `pull_dynamic_s` while it lasts."""
        assert self.pull_dynamic_s
        connector = self.connectors[connector_id]
        while connector.session is not None and connector.session.token == token:
            await asyncio.sleep(self.pull_dynamic_s)
            if self.connected:
                with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
                    await self.pull_dynamic_schedule(connector_id)

    def _strict_refusal(self, received: ReceivedProfile) -> str | None:
        """Check as a charger that follows OCPP 1.6 §3.13 / 2.0.1 K01 to the letter."""
        cid, profile = received.connector_id, received.profile
        schedule = received.schedule
        kind = profile.get("chargingProfileKind")
        if cid != 0 and cid not in self.connectors:
            return f"no connector {cid}"
        if received.purpose in STATION_MAX and cid != 0:
            return f"{received.purpose} on connector {cid}"
        if received.purpose in STATION_MAX and kind == "Relative":
            return "a station maximum cannot be Relative"
        if kind in ("Absolute", "Recurring") and "startSchedule" not in schedule:
            return f"{kind} profile without startSchedule"
        if kind == "Relative" and "startSchedule" in schedule:
            return "Relative profile with a startSchedule"
        starts = [p.get("startPeriod", 0) for p in schedule["chargingSchedulePeriod"]]
        if not starts or starts[0] != 0 or starts != sorted(set(starts)):
            return f"periods must start at 0 and increase, got {starts}"
        if received.purpose == TX_PROFILE:
            if cid == 0:
                return "TxProfile on connector 0"
            session = self.connectors[cid].session
            if session is None:
                return f"TxProfile without a transaction on connector {cid}"
            wanted = received.transaction_id
            if wanted is None and self.version != "1.6":
                return "TxProfile without transactionId"
            if wanted is not None and wanted != session.transaction_id:
                return (
                    f"TxProfile for transaction {wanted}, the running one is "
                    f"{session.transaction_id}"
                )
        new = InstalledProfile.from_wire(cid, profile, self.clock())
        if self.version != "1.6" and (old := self.profiles.conflicting(new)):
            return f"profile {old.id} has the same purpose and stack level"
        replaced = {p.id for p in self.profiles if p.id == new.id}
        if len(self.profiles) - len(replaced) >= self.max_profiles:
            return f"already {len(self.profiles)} profiles installed"
        return None

    def _install(self, received: ReceivedProfile) -> None:
        profile = InstalledProfile.from_wire(
            received.connector_id, received.profile, self.clock()
        )
        self.profiles.install(profile, replace_same_stack=True)

    @property
    def installed_profiles(self) -> tuple[InstalledProfile, ...]:
        """Return every profile the charger holds, oldest first."""
        return tuple(self.profiles)

    def clear_profiles(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> str:
        """ClearChargingProfile: Accepted when something was removed, else Unknown."""
        removed = self.profiles.clear(
            profile_id=profile_id,
            connector_id=connector_id,
            purpose=purpose,
            stack_level=stack_level,
        )
        return "Accepted" if removed else "Unknown"

    def clear_limits(self, connector_id: int | None) -> None:
        """Forget the profiles of one connector (None: all of them)."""
        self.profiles.clear(connector_id=connector_id)

    def limit(self, connector_id: int, *, idle: bool = False) -> Limit:
        """Return the evaluated limit with the profile that decides it."""
        now = self.clock()
        connector = self.connectors.get(connector_id)
        session = None if connector is None or idle else connector.session
        return self.profiles.evaluate(
            connector_id,
            now=now,
            hardware_max_a=self.hardware_max_a,
            phases=self.phases,
            voltage_v=self.voltage_v,
            transaction=None
            if session is None
            else (session.transaction_id, session.started_at),
            offline_for_s=offline_seconds(self.offline_since, now),
        )

    def limit_in_force(self, connector_id: int) -> float:
        """Return the limit in A per phase in force on a connector right now.

        With a transaction running: its TxProfile, else the TxDefaultProfiles; on an
        idle connector, what a car plugging in would start at. The station maximum
        caps both; no profile: the hardware maximum.
        """
        return self.limit(connector_id).amps

    def start_limit(self, connector_id: int) -> float:
        """Return what a car plugging in on this connector now would start at (A)."""
        return self.limit(connector_id, idle=True).amps

    def composite(self, connector_id: int, unit: str | None) -> tuple[str, float, int]:
        """GetCompositeSchedule: (unit, limit, phases) in force, in `unit` if given."""
        if connector_id == 0:
            limits = [self.limit(cid) for cid in self.connectors]
            amps = sum(lim.amps for lim in limits)
            phases = self.phases
        else:
            lim = self.limit(connector_id)
            amps, phases = lim.amps, lim.phases
        if unit == "W":
            return "W", round(amps * self.voltage_v * phases, 1), phases
        return "A", round(amps, 1), phases

    # ------------------------------------------------------- requests it acts on

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

    async def _call(self, payload: Any, *, unique_id: str | None = None) -> Any:
        return await self._charge_point.call(
            payload, suppress=False, unique_id=unique_id
        )

    @property
    def _call2x(self) -> Any:
        return call21 if self.version == "2.1" else call201

    def _status(self, connector_id: int) -> str:
        connector = self.connectors[connector_id]
        if connector.in_transaction:
            return "Charging" if self.version == "1.6" else "Occupied"
        if connector.plugged:
            return "Preparing" if self.version == "1.6" else "Occupied"
        return "Available"

    async def boot(self, reason: str = "PowerUp") -> None:
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
                self._call2x.BootNotification(
                    charging_station={
                        "vendor_name": "SmartChargeSim",
                        "model": "Sim21" if self.version == "2.1" else "Sim201",
                        "serial_number": f"SN-{self.charger_id}",
                        "firmware_version": "1.0.0",
                    },
                    reason=reason,
                )
            )

    async def notify_ev_charging_needs(
        self,
        evse_id: int = 1,
        *,
        energy_wh: float | None = None,
        departure: datetime | None = None,
        max_current_a: float = 16.0,
    ) -> None:
        """Send NotifyEVChargingNeeds (2.x): the car's energy and departure."""
        ac: dict[str, Any] = {
            "energy_amount": int(energy_wh or 0),
            "ev_min_current": 6,
            "ev_max_current": int(max_current_a),
            "ev_max_voltage": 400,
        }
        needs: dict[str, Any] = {
            "requested_energy_transfer": "AC_three_phase",
            "ac_charging_parameters": ac,
        }
        if self.bidirectional:
            # ISO 15118-20 BPT as OCPP 2.1 reports it: the car offers AC_BPT, is
            # steered dynamically and says how much it may give back (W, all phases).
            volts = self.voltage_v * self.phases
            needs.update(
                {
                    "requested_energy_transfer": "AC_BPT",
                    "available_energy_transfer": ["AC_three_phase", "AC_BPT"],
                    "control_mode": "DynamicControl",
                    "v2x_charging_parameters": {
                        "max_charge_power": round(self.car_max_a * volts),
                        "min_charge_power": round(6 * volts),
                        "max_discharge_power": round(self.max_discharge_a * volts),
                        "min_discharge_power": round(6 * volts),
                    },
                }
            )
        if departure is not None:
            needs["departure_time"] = ocpp_timestamp(departure)
        await self._call(
            self._call2x.NotifyEVChargingNeeds(evse_id=evse_id, charging_needs=needs)
        )

    async def heartbeat(self) -> None:
        """Send Heartbeat."""
        await self._call(
            call16.Heartbeat() if self.version == "1.6" else self._call2x.Heartbeat()
        )

    async def send_status(self, connector_id: int, status: str) -> None:
        """Send StatusNotification (1.6 status, or 2.x connector status); offline: none."""
        if not self.connected:
            return
        if self.version == "1.6":
            await self._call(
                call16.StatusNotification(
                    connector_id=connector_id, error_code="NoError", status=status
                )
            )
        else:
            await self._call(
                self._call2x.StatusNotification(
                    timestamp=self._timestamp(),
                    connector_status=status,
                    evse_id=connector_id,
                    connector_id=1,
                )
            )

    async def authorize(self, id_tag: str) -> str:
        """Send Authorize; return the status the central system answered."""
        if self.version == "1.6":
            result = await self._call(call16.Authorize(id_tag=id_tag))
            status = str(result.id_tag_info["status"])
        else:
            result = await self._call(
                self._call2x.Authorize(
                    id_token={"id_token": id_tag, "type": "ISO14443"}
                )
            )
            status = str(result.id_token_info["status"])
        self.authorizations.append(("Authorize", id_tag, status))
        return status

    def local_status(self, id_tag: str) -> str:
        """Return what the local list says about a tag (Unknown: not on it)."""
        entry = self.local_list.get(id_tag)
        if entry is None:
            return "Unknown"
        status, expiry = entry
        if status == "Accepted" and expiry is not None:
            until = datetime.fromisoformat(expiry)
            if until.tzinfo is None:
                until = until.replace(tzinfo=UTC)
            if until <= self.clock():
                return "Expired"
        return status

    async def swipe(self, id_tag: str, connector_id: int = 1) -> str:
        """Present a card, then start charging if it is accepted; return the status.

        Online the central system decides (Authorize). Offline the charger uses its
        local authorization list (LocalAuthorizeOffline): a card that is not on it,
        or not Accepted there, is refused.
        """
        if self.connected:
            status = await self.authorize(id_tag)
        else:
            status = self.local_status(id_tag)
            self.authorizations.append(("LocalList", id_tag, status))
        if status == "Accepted":
            await self.plug_in(connector_id, id_tag=id_tag)
        return status

    def set_local_list(
        self, version: int, full: bool, entries: list[dict[str, Any]]
    ) -> str:
        """Apply a SendLocalList (snake_case entries of 1.6 or 2.x)."""
        if not full and version <= self.local_list_version:
            return "VersionMismatch"
        if full:
            self.local_list = {}
        for entry in entries:
            if "id_tag" in entry:  # 1.6
                tag, info = entry["id_tag"], entry.get("id_tag_info")
                expiry = (info or {}).get("expiry_date")
            else:
                tag, info = entry["id_token"]["id_token"], entry.get("id_token_info")
                expiry = (info or {}).get("cache_expiry_date_time")
            if info is None:
                self.local_list.pop(tag, None)  # Differential: removed
            else:
                self.local_list[tag] = (str(info["status"]), expiry)
        self.local_list_version = version
        return "Accepted"

    def _energy_sample(self, connector: Connector) -> dict[str, Any]:
        if self.version == "1.6":
            value: Any = f"{connector.energy_wh:.1f}"
        else:
            value = round(connector.energy_wh, 1)
        return {"value": value, "measurand": "Energy.Active.Import.Register"}

    async def plug_in(
        self, connector_id: int = 1, *, id_tag: str = "SIMTAG"
    ) -> str | None:
        """Plug a car in and start a transaction; return its id.

        Offline the transaction starts locally at `start_limit` and its messages are
        queued; a 1.6 charger then has no id yet (None) until the queue is flushed.
        """
        connector = self.connectors[connector_id]
        connector.plugged = True
        connector.last_meter = time.monotonic()
        session = Session(next(_SESSIONS), self.clock(), id_tag)
        if self.version == "1.6":
            connector.session = session
            await self.send_status(connector_id, "Preparing")
            meter_start = int(connector.energy_wh)
            timestamp = self._timestamp()

            async def start() -> None:
                unique_id = str(uuid.uuid4())
                self._pending_starts[unique_id] = session
                result = await self._call(
                    call16.StartTransaction(
                        connector_id=connector_id,
                        id_tag=id_tag,
                        meter_start=meter_start,
                        timestamp=timestamp,
                    ),
                    unique_id=unique_id,
                )
                session.transaction_id = str(result.transaction_id)
                self.authorizations.append(
                    ("StartTransaction", id_tag, str(result.id_tag_info["status"]))
                )

            await self._send_or_queue(start)
            await self.send_status(connector_id, "Charging")
        else:
            session.transaction_id = uuid.uuid4().hex
            connector.session = session
            connector.seq_no = 0
            await self.send_status(connector_id, "Occupied")
            await self._transaction_event(
                connector_id,
                "Started",
                "CablePluggedIn",
                id_token={"id_token": id_tag, "type": "ISO14443"},
                meter_value=[
                    {
                        "timestamp": self._timestamp(),
                        "sampled_value": [self._energy_sample(connector)],
                    }
                ],
            )
        connector.soc_at = self.clock()
        if self.bidirectional and self.connected:
            await self.notify_ev_charging_needs(connector_id)
        if self.meter_interval_s:
            self.spawn(self._meter_loop(connector_id, session.token))
        if self.pull_dynamic_s and self.version == "2.1":
            self.spawn(self._pull_loop(connector_id, session.token))
        return session.transaction_id

    async def _transaction_event(
        self, connector_id: int, event_type: str, trigger: str, **extra: Any
    ) -> None:
        connector = self.connectors[connector_id]
        info: dict[str, Any] = {
            "transaction_id": connector.transaction_id,
            "charging_state": "Charging" if event_type != "Ended" else "EVConnected",
        }
        if event_type == "Ended":
            info["stopped_reason"] = extra.pop("stopped_reason", "EVDisconnected")
        seq_no, connector.seq_no = connector.seq_no, connector.seq_no + 1
        fields: dict[str, Any] = {
            "event_type": event_type,
            "timestamp": self._timestamp(),
            "trigger_reason": trigger,
            "seq_no": seq_no,
            "transaction_info": info,
            "evse": {"id": connector_id, "connector_id": 1},
            **extra,
        }
        if not self.connected or self.outbox:
            fields["offline"] = True

        async def send() -> None:
            result = await self._call(self._call2x.TransactionEvent(**fields))
            if result.id_token_info and "id_token" in fields:
                self.authorizations.append(
                    (
                        "TransactionEvent",
                        str(fields["id_token"]["id_token"]),
                        str(result.id_token_info["status"]),
                    )
                )

        await self._send_or_queue(send)

    async def unplug(
        self, connector_id: int = 1, *, reason: str = "EVDisconnected"
    ) -> None:
        """Stop the transaction and unplug the car (queued while offline)."""
        connector = self.connectors[connector_id]
        self._advance_energy(connector_id)
        session = connector.session
        if session is not None:
            if self.version == "1.6":
                meter_stop = int(connector.energy_wh)
                timestamp = self._timestamp()

                async def stop() -> None:
                    if session.transaction_id is None:
                        return  # its StartTransaction never got an answer
                    await self._call(
                        call16.StopTransaction(
                            meter_stop=meter_stop,
                            timestamp=timestamp,
                            transaction_id=int(session.transaction_id),
                            reason=reason,
                        )
                    )

                await self._send_or_queue(stop)
            else:
                await self._transaction_event(
                    connector_id,
                    "Ended",
                    _END_TRIGGERS.get(reason, "StopAuthorized"),
                    stopped_reason=reason,
                    meter_value=[
                        {
                            "timestamp": self._timestamp(),
                            "sampled_value": [self._energy_sample(connector)],
                        }
                    ],
                )
            self.profiles.end_transaction(connector_id, session.transaction_id)
        connector.session = None
        connector.plugged = False
        await self.send_status(connector_id, "Available")

    # ------------------------------------------------------------- what it draws

    def current_a(self, connector_id: int = 1) -> float:
        """Return what the car really draws per phase.

        min(car, limit in force); `ignores_limits`: the car maximum; `stuck_at_a`:
        never below that current while charging.
        """
        connector = self.connectors[connector_id]
        if not connector.in_transaction:
            return 0.0
        if self.ignores_limits:
            return min(self.car_max_a, self.hardware_max_a)
        draw = min(self.limit_in_force(connector_id), self.car_max_a)
        if self.stuck_at_a is not None:
            draw = min(self.car_max_a, max(draw, self.stuck_at_a))
        return max(0.0, draw)

    def phases_in_use(self, connector_id: int = 1) -> tuple[str, ...]:
        """Return the phases the car draws on (a single-phase charger: its grid phase)."""
        if self.phases == 1:
            return (self.grid_phase or "L1",)
        if self.ignores_limits or not self.phase_switching:
            return _PHASES[: self.phases]
        used = self.limit(connector_id).phases
        if used == 1:
            return (self.grid_phase or "L1",)
        return _PHASES[:used]

    def phase_currents(self, connector_id: int = 1) -> dict[str, float]:
        """Return the current drawn on each phase in use."""
        current = self.current_a(connector_id)
        return dict.fromkeys(self.phases_in_use(connector_id), current)

    def power_w(self, connector_id: int = 1) -> float:
        """Return the power the car draws."""
        return sum(self.phase_currents(connector_id).values()) * self.voltage_v

    def _period(self, connector_id: int) -> Period | None:
        """Return the period in force of the profile that decides a connector's limit."""
        connector = self.connectors[connector_id]
        session = connector.session
        profile = self.limit(connector_id).profile
        if profile is None or session is None:
            return None
        now = self.clock()
        return profile.period_at(
            now, session.started_at, offline_seconds(self.offline_since, now)
        )

    def discharge_w(self, connector_id: int = 1) -> float:
        """Return the power the car gives back now (W, >= 0; V2X only).

        A CentralSetpoint period with a negative setpoint (W, or A per phase), within its
        dischargeLimit, the car's maximum and never below 0 % state of charge.
        """
        connector = self.connectors[connector_id]
        if not self.bidirectional or not connector.in_transaction:
            return 0.0
        if self.soc_pct is not None and self.soc_pct <= 0.0:
            return 0.0  # the battery is empty: the car stops by itself
        period = self._period(connector_id)
        if (
            period is None
            or period.operation_mode != "CentralSetpoint"
            or period.setpoint is None
            or period.setpoint >= 0
        ):
            return 0.0
        profile = self.limit(connector_id).profile
        volts = self.voltage_v * self.phases
        scale = volts if profile is not None and profile.rate_unit == "A" else 1.0
        wanted = -period.setpoint * scale
        if period.discharge_limit is not None:
            wanted = min(wanted, -period.discharge_limit * scale)
        return max(0.0, min(wanted, self.max_discharge_a * volts))

    def net_power_w(self, connector_id: int = 1) -> float:
        """Return the power exchanged with the grid (negative: the car discharges)."""
        return self.power_w(connector_id) - self.discharge_w(connector_id)

    def _advance_battery(self) -> None:
        """Bring state of charge and the export register up to the charger's clock."""
        now = self.clock()
        for cid, connector in self.connectors.items():
            since, connector.soc_at = connector.soc_at, now
            if since is None or not connector.in_transaction:
                continue
            hours = max(0.0, (now - since).total_seconds()) / 3600
            discharge = self.discharge_w(cid)
            if self.soc_pct is not None and discharge > 0:
                # Never more than the battery holds above 0 %.
                available = self.soc_pct / 100 * self.capacity_kwh * 1000
                given = min(discharge * hours, available)
            else:
                given = discharge * hours
            connector.export_wh += given
            if self.soc_pct is not None:
                taken = self.power_w(cid) * hours
                change = (taken - given) / (self.capacity_kwh * 1000) * 100
                self.soc_pct = min(100.0, max(0.0, self.soc_pct + change))

    def _advance_energy(self, connector_id: int) -> None:
        connector = self.connectors[connector_id]
        now = time.monotonic()
        elapsed = now - connector.last_meter
        connector.energy_wh += self.power_w(connector_id) * elapsed / 3600
        connector.last_meter = now

    def _timestamp(self) -> str:
        return ocpp_timestamp(self.message_clock() if self.message_clock else None)

    async def send_meter_values(
        self,
        connector_id: int = 1,
        *,
        energy_wh: float | None = None,
        power_w: float | None = None,
    ) -> None:
        """Send power, per-phase current, voltage and energy: what it really draws.

        `energy_wh` sets the meter register first (and `power_w` the power sent), for
        tests that need exact readings.
        """
        connector = self.connectors[connector_id]
        self._advance_energy(connector_id)
        self._advance_battery()
        if energy_wh is not None:
            connector.energy_wh = energy_wh
        if not self.connected:
            return
        samples: list[dict[str, Any]] = [
            {
                "measurand": "Power.Active.Import",
                # Signed: negative while the car gives power back.
                "value": self.net_power_w(connector_id) if power_w is None else power_w,
                "unit": "W",
            },
            *(
                {
                    "measurand": "Current.Import",
                    "phase": phase,
                    "value": current,
                    "unit": "A",
                }
                for phase, current in self.phase_currents(connector_id).items()
            ),
            {"measurand": "Voltage", "value": self.voltage_v, "unit": "V"},
            {
                "measurand": "Energy.Active.Import.Register",
                "value": connector.energy_wh,
                "unit": "Wh",
            },
        ]
        if self.bidirectional:
            samples += [
                {
                    "measurand": "Power.Active.Export",
                    "value": self.discharge_w(connector_id),
                    "unit": "W",
                },
                {
                    "measurand": "Energy.Active.Export.Register",
                    "value": connector.export_wh,
                    "unit": "Wh",
                },
            ]
        if self.soc_pct is not None and connector.in_transaction:
            samples.append(
                {"measurand": "SoC", "value": self.soc_pct, "unit": "Percent"}
            )
        if self.version == "1.6":
            for sample in samples:
                sample["value"] = f"{sample['value']:.1f}"
            meter_value = [{"timestamp": self._timestamp(), "sampled_value": samples}]
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
        meter_value = [{"timestamp": self._timestamp(), "sampled_value": samples}]
        if not connector.in_transaction:
            await self._call(
                self._call2x.MeterValues(evse_id=connector_id, meter_value=meter_value)
            )
        else:
            await self._transaction_event(
                connector_id, "Updated", "MeterValuePeriodic", meter_value=meter_value
            )

    async def _meter_loop(self, connector_id: int, token: int) -> None:
        """Meter values while the session lasts; offline the energy still counts."""
        assert self.meter_interval_s
        connector = self.connectors[connector_id]

        def same() -> bool:
            return connector.session is not None and connector.session.token == token

        while same():
            await asyncio.sleep(self.meter_interval_s)
            if same():
                with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
                    await self.send_meter_values(connector_id)

    async def send_raw(self, frame: str) -> None:
        """Send a raw frame (for tests of bad input)."""
        assert self._websocket is not None
        await self._websocket.send(frame)
