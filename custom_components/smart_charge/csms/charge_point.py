"""Version-independent charger state, the call helper and frame handling.

The per-version modules (`v16`, `v201`) subclass the untyped `ocpp` library; everything
here is typed and shared by them and by the server.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
import json
import logging
import re
import sys
from typing import Any, Final, Protocol
import uuid

from ocpp.charge_point import (  # untyped library: its serialisers and schemas
    remove_nones,
    serialize_as_dict,
    snake_to_camel_case,
)
from ocpp.exceptions import InternalError, OCPPError, UnknownCallErrorCodeError
from ocpp.messages import MessageType, get_validator
from websockets.exceptions import ConnectionClosed

from custom_components.smart_charge.units import RateUnit

from .authorization import ACCEPTED, AuthorizationResult, LocalListEntry
from .dynamic import DynamicScheduleUpdate
from .errors import CallRejectedError, CallTimeoutError, ChargerNotConnectedError
from .events import (
    BootReceived,
    ChargerConnected,
    ChargerDisconnected,
    ChargerEvent,
    ConnectorStatus,
    EVChargingNeeds,
    MeterValuesReceived,
    StatusChanged,
    TransactionStarted,
    TransactionStopped,
)

_LOGGER = logging.getLogger(__name__)

OCPP16: Final = "1.6"
OCPP201: Final = "2.0.1"
OCPP21: Final = "2.1"
SUBPROTOCOLS: Final = {"ocpp2.1": OCPP21, "ocpp2.0.1": OCPP201, "ocpp1.6": OCPP16}
RECENT_FRAMES: Final = 50


def utcnow() -> datetime:
    """Return the current time, timezone aware."""
    return datetime.now(UTC)


def parse_timestamp(raw: object) -> datetime:
    """Parse an OCPP timestamp; fall back to now for missing or broken values."""
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            return utcnow()
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return utcnow()


def ocpp_timestamp(moment: datetime | None = None) -> str:
    """Format a time the way OCPP expects it (UTC, `Z` suffix)."""
    moment = (moment or utcnow()).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


# --------------------------------------------------------------------------- state


@dataclass(slots=True)
class BootInfo:
    """What a charger said about itself in BootNotification."""

    vendor: str
    model: str
    serial: str | None
    firmware: str | None


@dataclass(slots=True)
class ConnectorState:
    """One connector (1.6) or EVSE (2.x)."""

    status: ConnectorStatus = ConnectorStatus.UNKNOWN
    error_code: str | None = None
    transaction_id: str | None = None


@dataclass(slots=True)
class TransactionState:
    """A running transaction."""

    transaction_id: str
    connector_id: int
    id_tag: str | None
    meter_start_wh: float | None
    started: datetime
    last_energy_wh: float | None = None

    @property
    def energy_wh(self) -> float | None:
        """Energy delivered in this session so far."""
        if self.meter_start_wh is None or self.last_energy_wh is None:
            return None
        return max(0.0, self.last_energy_wh - self.meter_start_wh)


@dataclass(frozen=True, slots=True)
class MeterSample:
    """The last meter values of a connector."""

    power_w: float | None
    current_a: tuple[float, ...]
    voltage_v: float | None
    energy_wh: float | None
    soc: float | None
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class LimitRecord:
    """A limit in a charging profile: value, unit and the transaction it targets."""

    limit: float
    unit: str
    purpose: str
    transaction_id: str | None


@dataclass(frozen=True, slots=True)
class ChargingNeeds:
    """What an EV asked for (2.x)."""

    energy_amount_wh: float | None
    ev_min_current_a: float | None
    ev_max_current_a: float | None
    departure_time: datetime | None


@dataclass(slots=True)
class ChargerState:
    """Everything the server knows about one charger; kept across reconnects."""

    charger_id: str
    ocpp_version: str | None = None
    connected: bool = False
    boot: BootInfo | None = None
    connectors: dict[int, ConnectorState] = field(default_factory=dict)
    transactions: dict[str, TransactionState] = field(default_factory=dict)
    meter: dict[int, MeterSample] = field(default_factory=dict)
    limit_sent: dict[int, LimitRecord] = field(default_factory=dict)
    limit_acked: dict[int, LimitRecord] = field(default_factory=dict)
    ev_needs: dict[int, ChargingNeeds] = field(default_factory=dict)
    last_seen: datetime | None = None
    recent_frames: deque[tuple[str, str]] = field(
        default_factory=lambda: deque(maxlen=RECENT_FRAMES)
    )

    def connector(self, connector_id: int) -> ConnectorState:
        """Return a connector's state, creating it on first use."""
        return self.connectors.setdefault(connector_id, ConnectorState())

    def transaction_on(self, connector_id: int) -> TransactionState | None:
        """Return the transaction running on a connector, if any."""
        connector = self.connectors.get(connector_id)
        if connector is not None and connector.transaction_id in self.transactions:
            return self.transactions[connector.transaction_id]
        for transaction in self.transactions.values():
            if transaction.connector_id == connector_id:
                return transaction
        return None

    def current_transaction(self) -> TransactionState | None:
        """Return the transaction of the lowest connector that runs one, if any."""
        for connector_id in sorted(
            {t.connector_id for t in self.transactions.values()}
        ):
            if (transaction := self.transaction_on(connector_id)) is not None:
                return transaction
        return None

    def apply(self, event: ChargerEvent) -> None:
        """Update the state from one event."""
        self.last_seen = utcnow()
        match event:
            case ChargerConnected(ocpp_version=version):
                self.connected = True
                self.ocpp_version = version
            case ChargerDisconnected():
                self.connected = False
            case BootReceived(vendor=vendor, model=model, serial=serial, firmware=fw):
                self.boot = BootInfo(vendor, model, serial, fw)
            case StatusChanged(connector_id=cid, status=status, error_code=error):
                connector = self.connector(cid)
                connector.status = status
                connector.error_code = error
            case TransactionStarted():
                # A connector runs one transaction at a time: a new one there means
                # the previous one ended unheard (a charger that restarted, or a
                # session restored from before our own restart that it never ended).
                for stale in [
                    t.transaction_id
                    for t in self.transactions.values()
                    if t.connector_id == event.connector_id
                    and t.transaction_id != event.transaction_id
                ]:
                    del self.transactions[stale]
                self.transactions[event.transaction_id] = TransactionState(
                    transaction_id=event.transaction_id,
                    connector_id=event.connector_id,
                    id_tag=event.id_tag,
                    meter_start_wh=event.meter_start_wh,
                    started=event.timestamp,
                    last_energy_wh=event.meter_start_wh,
                )
                self.connector(event.connector_id).transaction_id = event.transaction_id
            case TransactionStopped():
                self.transactions.pop(event.transaction_id, None)
                connector = self.connector(event.connector_id)
                if connector.transaction_id == event.transaction_id:
                    connector.transaction_id = None
                self.limit_sent.pop(event.connector_id, None)
                self.limit_acked.pop(event.connector_id, None)
            case MeterValuesReceived():
                self._apply_meter(event)
            case EVChargingNeeds():
                self.ev_needs[event.connector_id] = ChargingNeeds(
                    event.energy_amount_wh,
                    event.ev_min_current_a,
                    event.ev_max_current_a,
                    event.departure_time,
                )
            case _:
                pass

    def _apply_meter(self, event: MeterValuesReceived) -> None:
        previous = self.meter.get(event.connector_id)
        self.meter[event.connector_id] = MeterSample(
            power_w=event.power_w,
            current_a=event.current_a or (previous.current_a if previous else ()),
            voltage_v=event.voltage_v,
            energy_wh=event.energy_wh
            if event.energy_wh is not None
            else (previous.energy_wh if previous else None),
            soc=event.soc,
            timestamp=event.timestamp,
        )
        transaction = (
            self.transactions.get(event.transaction_id)
            if event.transaction_id is not None
            else self.transaction_on(event.connector_id)
        )
        if transaction is not None and event.energy_wh is not None:
            transaction.last_energy_wh = event.energy_wh
            if transaction.meter_start_wh is None:
                transaction.meter_start_wh = event.energy_wh


# --------------------------------------------------------------------- meter values

_PHASE_INDEX: Final = {"L1": 0, "L2": 1, "L3": 2, "L1-N": 0, "L2-N": 1, "L3-N": 2}
_MULTIPLIERS: Final = {"kW": 1000.0, "kWh": 1000.0, "kVA": 1000.0, "kvar": 1000.0}


@dataclass(frozen=True, slots=True)
class MeterReading:
    """Meter values folded into one reading."""

    power_w: float | None
    current_a: tuple[float, ...]
    voltage_v: float | None
    energy_wh: float | None
    soc: float | None
    timestamp: datetime


def _sample_value(sample: Mapping[str, Any]) -> float | None:
    try:
        value = float(sample["value"])
    except (KeyError, TypeError, ValueError):
        return None
    unit_of_measure = sample.get("unit_of_measure")
    if isinstance(unit_of_measure, Mapping):  # 2.x
        unit = unit_of_measure.get("unit")
        value *= 10.0 ** int(unit_of_measure.get("multiplier", 0))
    else:  # 1.6
        unit = sample.get("unit")
    return value * _MULTIPLIERS.get(str(unit), 1.0)


def parse_meter_values(meter_values: Sequence[Mapping[str, Any]]) -> MeterReading:
    """Fold 1.6 or 2.x `meterValue` entries (snake_case keys) into one reading.

    Later entries win; phase values are summed (power) or kept per phase (current).
    """
    power: float | None = None
    phase_power: dict[int, float] = {}
    currents: dict[int, float] = {}
    current_total: float | None = None
    voltages: list[float] = []
    energy: float | None = None
    soc: float | None = None
    timestamp = utcnow()
    for entry in meter_values:
        timestamp = parse_timestamp(entry.get("timestamp"))
        voltages = []
        for sample in entry.get("sampled_value") or ():
            value = _sample_value(sample)
            if value is None:
                continue
            measurand = sample.get("measurand") or "Energy.Active.Import.Register"
            phase = _PHASE_INDEX.get(str(sample.get("phase")))
            if measurand == "Power.Active.Import":
                if phase is None:
                    power = value
                else:
                    phase_power[phase] = value
            elif measurand == "Current.Import":
                if phase is None:
                    current_total = value
                else:
                    currents[phase] = value
            elif measurand == "Voltage":
                voltages.append(value)
            elif measurand == "Energy.Active.Import.Register" and phase is None:
                energy = value
            elif measurand == "SoC":
                soc = value
    if power is None and phase_power:
        power = sum(phase_power.values())
    if currents:
        current = tuple(currents.get(i, 0.0) for i in range(max(currents) + 1))
    elif current_total is not None:
        current = (current_total,)
    else:
        current = ()
    voltage = sum(voltages) / len(voltages) if voltages else None
    return MeterReading(power, current, voltage, energy, soc, timestamp)


def profile_limit(profile: Mapping[str, Any]) -> LimitRecord | None:
    """Read the first period's limit of a camelCase 1.6 or 2.x charging profile."""
    schedule = profile.get("chargingSchedule")
    if isinstance(schedule, Sequence) and schedule:  # 2.x: a list of schedules
        schedule = schedule[0]
    if not isinstance(schedule, Mapping):
        return None
    periods = schedule.get("chargingSchedulePeriod") or ()
    if not periods:
        return None
    transaction_id = profile.get("transactionId")
    return LimitRecord(
        limit=float(periods[0]["limit"]),
        unit=str(schedule.get("chargingRateUnit", RateUnit.AMPS)),
        purpose=str(profile.get("chargingProfilePurpose", "")),
        transaction_id=None if transaction_id is None else str(transaction_id),
    )


# ---------------------------------------------------------------- typed call results


@dataclass(frozen=True, slots=True)
class CompositeSchedule:
    """The answer to GetCompositeSchedule; `schedule` is camelCase as on the wire."""

    status: str
    schedule: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class ConfigurationResult:
    """The answer to GetConfiguration (1.6)."""

    values: Mapping[str, str | None]
    read_only: frozenset[str]
    unknown: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class VariableResult:
    """One entry of a Get/SetVariables answer (2.x)."""

    component: str
    variable: str
    status: str
    value: str | None = None


@dataclass(frozen=True, slots=True)
class HandlerContext:
    """What the version handlers may use: emit events, read state, allocate ids."""

    charger_id: str
    state: ChargerState
    emit: Callable[[ChargerEvent], None]
    next_transaction_id: Callable[[], int]
    heartbeat_interval_s: int
    call_timeout_s: float
    pending_calls: set[str] = field(default_factory=set)
    # The owner's answer for an id tag presented at this charger.
    authorize: Callable[[str], AuthorizationResult] = lambda _id_tag: ACCEPTED
    # 2.1 PullDynamicScheduleUpdate: the update meant for a profile id (None: unknown).
    dynamic_schedule: Callable[[int], DynamicScheduleUpdate | None] = (
        lambda _profile_id: None
    )


class OcppChargePoint(Protocol):
    """The typed surface of the per-version ChargePoint classes."""

    @property
    def ocpp_version(self) -> str:
        """Return the OCPP version this class speaks."""

    @property
    def actions(self) -> frozenset[str]:
        """Return the actions this class handles."""

    @property
    def known_actions(self) -> frozenset[str]:
        """Return every action a charger may send in this version."""

    async def route_message(self, raw_msg: str) -> None:
        """Handle one incoming frame."""

    async def set_charging_profile(
        self, connector_id: int, profile: Mapping[str, Any], *, prebuilt: bool = False
    ) -> str:
        """Send SetChargingProfile; return the status (see `checked_call`)."""

    async def clear_charging_profile(
        self,
        *,
        profile_id: int | None,
        connector_id: int | None,
        purpose: str | None,
        stack_level: int | None,
    ) -> str:
        """Send ClearChargingProfile; return the status."""

    async def update_dynamic_schedule(
        self, profile_id: int, limit: float, *, setpoint: float | None = None
    ) -> str:
        """Send UpdateDynamicSchedule (2.1): a Dynamic profile's new limit."""

    async def get_composite_schedule(
        self, connector_id: int, duration_s: int, rate_unit: str | None
    ) -> CompositeSchedule:
        """Send GetCompositeSchedule."""

    async def get_configuration(self, keys: Sequence[str]) -> ConfigurationResult:
        """Send GetConfiguration (1.6)."""

    async def change_configuration(self, key: str, value: str) -> str:
        """Send ChangeConfiguration (1.6)."""

    async def get_variables(
        self, variables: Sequence[tuple[str, str]]
    ) -> list[VariableResult]:
        """Send GetVariables (2.x)."""

    async def set_variables(
        self, variables: Sequence[tuple[str, str, str]]
    ) -> list[VariableResult]:
        """Send SetVariables (2.x)."""

    async def trigger_message(self, message: str, connector_id: int | None) -> str:
        """Send TriggerMessage."""

    async def remote_start(self, id_tag: str, connector_id: int | None) -> str:
        """Send RemoteStartTransaction / RequestStartTransaction."""

    async def remote_stop(self, transaction_id: str) -> str:
        """Send RemoteStopTransaction / RequestStopTransaction."""

    async def reset(self, *, hard: bool) -> str:
        """Send Reset."""

    async def send_local_list(
        self, version: int, entries: Sequence[LocalListEntry], *, full: bool
    ) -> str:
        """Send SendLocalList (Full or Differential); return the status."""

    async def get_local_list_version(self) -> int:
        """Send GetLocalListVersion; return the charger's list version."""

    async def local_list_supported(self) -> bool:
        """Return whether the charger has a local authorization list, enabled."""


# ------------------------------------------------------------------- error codes

# CALLERROR codes per version (1.6 §4.2.3, 2.x part 4 §4.3). The library raises 2.x
# spellings for every version and maps schema errors coarsely (a missing field is a
# ProtocolError, a bad enum value a FormatViolation), so we spell them ourselves.
_SCHEMA_KINDS: Final = {
    "required": "occurrence",
    "minItems": "occurrence",
    "maxItems": "occurrence",
    "type": "type",
    "enum": "property",
    "const": "property",
    "maxLength": "property",
    "minLength": "property",
    "minimum": "property",
    "maximum": "property",
    "exclusiveMinimum": "property",
    "exclusiveMaximum": "property",
    "multipleOf": "property",
    "pattern": "property",
    "format": "property",
}
_KIND_CODES_16: Final = {
    "occurrence": "OccurenceConstraintViolation",
    "type": "TypeConstraintViolation",
    "property": "PropertyConstraintViolation",
    "formation": "FormationViolation",
}
_KIND_CODES_2X: Final = {
    "occurrence": "OccurrenceConstraintViolation",
    "type": "TypeConstraintViolation",
    "property": "PropertyConstraintViolation",
    "formation": "FormatViolation",
}
# A code of the other version's vocabulary, respelled.
_RESPELL_16: Final = {
    "FormatViolation": "FormationViolation",
    "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
    "RpcFrameworkError": "ProtocolError",
    "MessageTypeNotSupported": "ProtocolError",
}
_RESPELL_2X: Final = {
    "FormationViolation": "FormatViolation",
    "OccurenceConstraintViolation": "OccurrenceConstraintViolation",
}
_MAX_DESCRIPTION: Final = 255  # 2.x limit on errorDescription; kept short in 1.6 too
_UNKNOWN_CODE: Final = re.compile(r"Error code '(?P<code>[^']*)'")


def schema_error_code(keyword: str, version: str) -> str:
    """Return the CALLERROR code for a JSON-schema violation of `keyword`."""
    codes = _KIND_CODES_16 if version == OCPP16 else _KIND_CODES_2X
    return codes[_SCHEMA_KINDS.get(keyword, "formation")]


def _schema_violation(error: BaseException) -> Any:
    """Return the jsonschema error behind a library error, if there is one.

    The library raises its OCPPError inside the `except` of the jsonschema
    ValidationError, so that error is its `__cause__` or `__context__`.
    """
    for cause in (error.__cause__, error.__context__):
        if isinstance(getattr(cause, "validator", None), str) and isinstance(
            getattr(cause, "message", None), str
        ):
            return cause
    return None


def version_code(error: Any, version: str) -> str:
    """Return the code a CALLERROR for `error` (a library OCPPError) has in `version`."""
    violation = _schema_violation(error)
    if violation is not None:
        return schema_error_code(str(violation.validator), version)
    code = str(error.code)
    respell = _RESPELL_16 if version == OCPP16 else _RESPELL_2X
    return respell.get(code, code)


def version_error(error: Any, version: str) -> Any:
    """Return a library OCPPError spelled the way `version` spells it.

    A schema violation gets the code of its JSON-schema keyword and its short
    message as description (the library's names the whole payload and schema).
    """
    code = version_code(error, version)
    violation = _schema_violation(error)
    if violation is None and code == error.code:
        return error
    description = str(violation.message if violation is not None else error.description)
    for cls in OCPPError.__subclasses__():
        if cls.code == code:
            return cls(
                description=description[:_MAX_DESCRIPTION],
                details={"cause": description[:_MAX_DESCRIPTION]},
            )
    return error  # pragma: no cover - every code above has a library class


def incoming_call_error(error: Any, version: str) -> Any:
    """Return the error to answer a charger's CALL with, spelled for `version`.

    The library validates our answer too; if that fails, the fault is ours
    (InternalError), not a violation by the charger.
    """
    details = error.details if isinstance(error.details, dict) else {}
    message = details.get("ocpp_message")
    if getattr(message, "message_type_id", None) == MessageType.CallResult:
        return InternalError(description="Could not build the answer", details={})
    return version_error(error, version)


def result_problem(result: Any, action: str, version: str) -> str | None:
    """Check a call's answer against the library's schema; return the first error.

    For calls sent with `skip_schema_validation=True` the library checks neither the
    request nor the answer; the answer comes from the charger, so it is checked here,
    on the loop (tens of microseconds for a status answer) rather than through the
    library's executor. The validators are the library's own, read once and cached.
    """
    error = _result_violation(result, action, version)
    return None if error is None else str(error.message)


def _result_violation(result: Any, action: str, version: str) -> Any:
    wire = snake_to_camel_case(remove_nones(serialize_as_dict(result)))
    validator = get_validator(MessageType.CallResult, action, version)
    return next(iter(validator.iter_errors(wire)), None)


async def checked_call(
    send: Callable[..., Awaitable[Any]],
    payload: object,
    *,
    charger_id: str,
    version: str,
    timeout_s: float,
    pending: set[str] | None = None,
    prebuilt: bool = False,
) -> Any:
    """Send one call through the library and map every failure to our errors.

    `suppress=False` makes the library raise CALLERRORs instead of returning None. The
    timeout also bounds the wait for the library's per-charger call lock. The call's
    id is in `pending` while an answer is expected, so answers to anything else (or
    arriving too late) are dropped before they reach the library.

    `prebuilt` marks a request we built and whose schema our tests check (the
    charging profiles of the engine's builders): the library skips its validation of
    the request, the costliest step of a call, and the answer is validated by
    `result_problem` instead.

    An answer that violates the schema is a CallRejectedError with the code
    `version` uses for that violation; a CALLERROR keeps the charger's own code,
    even one the library does not know.
    """
    action = type(payload).__name__
    unique_id = str(uuid.uuid4())
    if pending is not None:
        pending.add(unique_id)
    try:
        async with asyncio.timeout(timeout_s):
            if not prebuilt:
                return await send(payload, suppress=False, unique_id=unique_id)
            try:
                result = await send(
                    payload,
                    suppress=False,
                    unique_id=unique_id,
                    skip_schema_validation=True,
                )
            except TypeError as err:
                # The library builds its result class from the answer's keys: an
                # unknown or missing key (a schema violation) ends up here.
                keyword = "required" if "missing" in str(err) else "additional"
                raise CallRejectedError(
                    charger_id,
                    action,
                    schema_error_code(keyword, version),
                    f"Invalid answer: {err}",
                ) from err
            violation = _result_violation(result, action, version)
            if violation is not None:
                raise CallRejectedError(
                    charger_id,
                    action,
                    schema_error_code(str(violation.validator), version),
                    f"Invalid answer: {violation.message}",
                )
            return result
    except TimeoutError as err:
        raise CallTimeoutError(charger_id, action, timeout_s) from err
    except ConnectionClosed as err:
        raise ChargerNotConnectedError(charger_id) from err
    except OCPPError as err:
        violation = _schema_violation(err)
        if violation is None:  # the charger's CALLERROR
            raise CallRejectedError(
                charger_id, action, str(err.code), str(err.description)
            ) from err
        raise CallRejectedError(
            charger_id,
            action,
            schema_error_code(str(violation.validator), version),
            f"Invalid answer: {violation.message}",
        ) from err
    except UnknownCallErrorCodeError as err:
        # A CALLERROR with a code the library has no class for (RpcFrameworkError,
        # MessageTypeNotSupported, or a vendor's own).
        match = _UNKNOWN_CODE.search(str(err))
        raise CallRejectedError(
            charger_id, action, match["code"] if match else "GenericError", str(err)
        ) from err
    finally:
        if pending is not None:
            pending.discard(unique_id)


def status_of(result: Any) -> str:
    """Return the `status` of a library result as a plain string."""
    return str(getattr(result, "status", "Unknown"))


# ------------------------------------------------------------------ frame handling


def call_error_frame(unique_id: str, code: str, description: str) -> str:
    """Build a CALLERROR frame."""
    return json.dumps([4, unique_id, code, description, {}], separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class FrameCheck:
    """The verdict on one incoming frame before the library sees it.

    `problem` is None for a frame the library should handle. Otherwise the frame is
    not routed: `reply` is the CALLERROR to answer with, or None to drop it silently
    (a response never asked for, or something that cannot be answered).
    """

    problem: str | None = None
    reply: str | None = None


_OK: Final = FrameCheck()
# Error codes differ per version: 1.6 (§4.2.3) vs 2.x (part 4, §4.3).
_CODES_16: Final = {
    "json": "FormationViolation",
    "rpc": "ProtocolError",
    "type": "ProtocolError",
    "payload": "FormationViolation",
}
_CODES_2X: Final = {
    "json": "RpcFrameworkError",
    "rpc": "RpcFrameworkError",
    "type": "MessageTypeNotSupported",
    "payload": "FormatViolation",
}


def check_frame(
    raw: str | bytes,
    *,
    version: str,
    handled: frozenset[str],
    known: frozenset[str] = frozenset(),
    pending: set[str] | None = None,
) -> FrameCheck:
    """Answer the input the library would drop, mishandle or log as a crash.

    The library only logs frames that are not JSON or not an OCPP array, does not
    answer unknown actions for every version, and queues any CALLRESULT, even for an
    id never sent. `handled` are our actions, `known` every action of the version,
    `pending` the ids of our calls awaiting an answer (None: do not check).
    """
    codes = _CODES_16 if version == OCPP16 else _CODES_2X
    try:
        message = json.loads(raw)
    except (ValueError, RecursionError):
        return FrameCheck(
            "not JSON", call_error_frame("-1", codes["json"], "Frame is not valid JSON")
        )
    if not isinstance(message, list) or not message:
        return FrameCheck(
            "not an OCPP array",
            call_error_frame("-1", codes["rpc"], "Frame is not an OCPP array"),
        )
    type_id = message[0]
    raw_id = message[1] if len(message) > 1 else None
    unique_id = raw_id if isinstance(raw_id, str) else "-1"
    if type_id in (3, 4) and not isinstance(type_id, bool):
        if not isinstance(raw_id, str) or len(message) != (3 if type_id == 3 else 5):
            return FrameCheck("malformed response, ignored")
        if pending is not None and raw_id not in pending:
            return FrameCheck(f"response to a call never sent (id {raw_id!r}), ignored")
        return _OK
    if version == OCPP21 and type_id in (5, 6) and not isinstance(type_id, bool):
        # 2.1 CALLRESULTERROR / SEND: valid and never answered; we send no CALLRESULT
        # to fail and handle no SEND action. 2.0.1 does not have them (answered
        # MessageTypeNotSupported below), nor does 1.6.
        return FrameCheck(f"message type {type_id} not used here, ignored")
    if type_id != 2 or isinstance(type_id, bool):
        return FrameCheck(
            f"unknown message type {type_id!r}",
            call_error_frame(unique_id, codes["type"], "Unknown MessageTypeId"),
        )
    if (
        len(message) != 4
        or not isinstance(raw_id, str)
        or not isinstance(message[2], str)
    ):
        return FrameCheck(
            "malformed CALL",
            call_error_frame(unique_id, codes["rpc"], "Malformed CALL"),
        )
    action = message[2]
    if not isinstance(message[3], dict):
        return FrameCheck(
            f"{action} payload is not an object",
            call_error_frame(unique_id, codes["payload"], "Payload is not an object"),
        )
    if action not in handled:
        code = "NotSupported" if action in known else "NotImplemented"
        return FrameCheck(
            f"{action} not handled ({code})",
            call_error_frame(unique_id, code, f"No handler for {action}"),
        )
    return _OK


def precheck_frame(raw: str | bytes, actions: frozenset[str]) -> str | None:
    """Return the CALLERROR for a 2.x frame, or None (kept for older callers)."""
    return check_frame(raw, version=OCPP201, handled=actions).reply


class LibraryLogger(logging.LoggerAdapter[logging.Logger]):
    """The logger handed to the library: its errors name the charger, once.

    The library logs a full traceback for every schema violation it answers; an OCPP
    error is the charger's fault, so it becomes one warning. Anything else (a bug in a
    handler) keeps its traceback.
    """

    def __init__(self, charger_id: str) -> None:
        """Log to the `ocpp` logger on behalf of `charger_id`."""
        super().__init__(logging.getLogger("ocpp"), {"charger_id": charger_id})
        self.charger_id = charger_id

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Log the library's INFO lines (every frame sent) at DEBUG.

        With hundreds of chargers a frame log at INFO is thousands of records a minute;
        the last frames per charger are kept in `ChargerState.recent_frames` anyway.
        """
        self.debug(msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        """Log an OCPP error as one warning, anything else with its traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, OCPPError):
            self.logger.warning(
                "Charger %s: %s; answered %s: %s",
                self.charger_id,
                str(msg) % args if args else msg,
                error.code,
                error.description,
            )
            return
        kwargs.setdefault("exc_info", True)
        self.logger.error(
            "Charger %s: %s",
            self.charger_id,
            str(msg) % args if args else msg,
            **kwargs,
        )


class RecordingConnection:
    """Wraps a websocket so the library's sends are recorded in the charger state."""

    def __init__(self, websocket: Any, state: ChargerState) -> None:
        """Wrap `websocket`; frames are appended to `state.recent_frames`."""
        self._websocket = websocket
        self._state = state

    async def send(self, message: str) -> None:
        """Send a frame and record it."""
        self._state.recent_frames.append(("out", message))
        await self._websocket.send(message)
