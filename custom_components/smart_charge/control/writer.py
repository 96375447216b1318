"""The profile writer: how a limit reaches a charger, and what each connector holds.

Every profile the control layer writes goes through `ProfileWriter`, which keeps the
*installed-profile book* of each charger: per connector the profiles we installed (id,
purpose, stack level, limit) and any write still unanswered. From the book it evaluates
the limit in force the way a charger does (OCPP 1.6 §3.13, 2.0.1 K01): a station maximum
on connector 0 caps everything; a running transaction follows its TxProfile, else the
connector's TxDefaultProfile, else the TxDefaultProfile on connector 0; nothing known
means the hardware maximum. A write that was not answered counts at the higher of the
old and the new limit, since the charger may hold either.

Slots (one stable profile id each, so a new write replaces the old profile):

- `tx`: the session limit as a TxProfile (stack level of the charger's config);
- `default` on connector N: the connector's TxDefaultProfile — what a car that plugs in
  starts at, and the session limit itself when the charger refuses TxProfiles;
- `default` on connector 0: the boot default (stack level 0), for connectors without one;
- `max` on connector 0: the station ceiling (ChargePointMaxProfile /
  ChargingStationMaxProfile, stack level 0), or the session limit of a charger
  configured for station-wide limits.

Session limits fall back through the shapes the charger advertises (rate units), then
TxProfile → TxDefaultProfile; a fallback that changes the slot clears the stale profile
of the old slot. A charger that refuses every shape is reported once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import Enum
import functools
import logging
import math
from typing import Any, Final

from custom_components.smart_charge.csms.capabilities import (
    RATE_AMPS,
    RATE_WATTS,
    ChargerCapabilities,
)
from custom_components.smart_charge.csms.charge_point import (
    OCPP16,
    OCPP21,
    LimitRecord,
    utcnow,
)
from custom_components.smart_charge.csms.errors import (
    CallTimeoutError,
    ChargerNotConnectedError,
    CsmsError,
)
from custom_components.smart_charge.csms.server import CentralSystem
from custom_components.smart_charge.engine import (
    KIND_DYNAMIC,
    EngineError,
    SessionProfile,
    build_ocpp16_profile,
    build_ocpp21_profile,
    build_ocpp201_profile,
    profile_id_for,
)

from .config import (
    CONNECTOR_DEFAULT_STACK_LEVEL,
    STATION_MAX_PURPOSES,
    STATION_STACK_LEVEL,
    TX_DEFAULT_PROFILE,
    TX_PROFILE,
    ChargerConfig,
    station_purpose,
)
from .discharge import setpoint_in_unit, with_setpoint
from .reports import CapabilitiesLearned, ChargerRejectsProfiles, ReportCallback
from .schedules import Schedule, capped, pointwise_max, schedule_at

_LOGGER = logging.getLogger(__name__)

SLOT_TX: Final = "tx"
SLOT_DEFAULT: Final = "default"
SLOT_MAX: Final = "max"
# Two unanswered attempts in a row: the charger is not answering, not refusing.
MAX_TIMEOUTS: Final = 2
# How far a composite schedule may be above the limit we expect (rounding).
SCHEDULE_TOLERANCE_A: Final = 0.15


def _has_setpoint(body: Mapping[str, Any]) -> bool:
    """Return whether a built profile carries a V2X setpoint."""
    schedules = body.get("chargingSchedule") or ()
    return any(
        "setpoint" in period
        for schedule in (schedules if isinstance(schedules, list) else [schedules])
        for period in schedule.get("chargingSchedulePeriod", ())
    )


def slot_of(purpose: str) -> str:
    """Return the slot a profile purpose lives in."""
    if purpose == TX_PROFILE:
        return SLOT_TX
    if purpose in STATION_MAX_PURPOSES:
        return SLOT_MAX
    return SLOT_DEFAULT


@dataclass(frozen=True, slots=True)
class Installed:
    """One profile slot of a connector as far as we know.

    `limit_a` is what the charger acknowledged (None: nothing of ours was there), and
    `pending_a` a write not answered yet (the charger may hold either).
    """

    purpose: str
    stack_level: int
    limit_a: float | None
    transaction_id: str | None = None
    pending_a: float | None = None
    # A 2.1 Dynamic profile's rate unit: its limit moves by UpdateDynamicSchedule.
    dynamic_unit: str | None = None
    # A multi-period TxProfile (see `schedules`): `limit_a` / `pending_a` are then the
    # highest period of the acknowledged / unanswered schedule.
    schedule: Schedule | None = None
    pending_schedule: Schedule | None = None
    # 2.1 V2X: the acknowledged CentralSetpoint setpoint (W, <= 0; None: not in V2X
    # mode, the period charges up to its limit).
    setpoint_w: float | None = None

    def worst(self, below: float) -> float:
        """Return the highest limit this slot may impose; `below` if it is empty."""
        held = below if self.limit_a is None else self.limit_a
        return held if self.pending_a is None else max(held, self.pending_a)

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-able data."""
        return {
            "purpose": self.purpose,
            "stack_level": self.stack_level,
            "limit_a": self.limit_a,
            "transaction_id": self.transaction_id,
            "pending_a": self.pending_a,
            "dynamic_unit": self.dynamic_unit,
            "schedule": _schedule_data(self.schedule),
            "pending_schedule": _schedule_data(self.pending_schedule),
            "setpoint_w": self.setpoint_w,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Installed:
        """Read `to_dict` data; raises on garbage."""

        def number(key: str) -> float | None:
            value = data.get(key)
            return None if value is None else float(value)

        transaction = data.get("transaction_id")
        unit = data.get("dynamic_unit")
        return cls(
            purpose=str(data["purpose"]),
            stack_level=int(data["stack_level"]),
            limit_a=number("limit_a"),
            transaction_id=None if transaction is None else str(transaction),
            pending_a=number("pending_a"),
            dynamic_unit=None if data.get("dynamic_unit") is None else str(unit),
            schedule=_read_schedule(data.get("schedule")),
            pending_schedule=_read_schedule(data.get("pending_schedule")),
            setpoint_w=number("setpoint_w"),
        )


def _schedule_data(schedule: Schedule | None) -> list[list[float]] | None:
    return None if schedule is None else [[start, amps] for start, amps in schedule]


def _read_schedule(data: Any) -> Schedule | None:
    if data is None:
        return None
    schedule = tuple((float(start), float(amps)) for start, amps in data)
    if not schedule:
        raise ValueError("an installed schedule has no period")
    return schedule


class ChargerBook:
    """The installed profiles of one charger, by (connector id, slot)."""

    def __init__(self) -> None:
        """Start empty: nothing of ours installed."""
        self.slots: dict[tuple[int, str], Installed] = {}
        # The charger refused a TxDefaultProfile on a connector: defaults go to 0.
        self.connector_defaults_refused = False

    def default_a(self, connector_id: int, hardware_a: float) -> float:
        """Return what an idle connector starts at (before the station cap)."""
        base = self.slots.get((0, SLOT_DEFAULT))
        value = hardware_a if base is None else base.worst(hardware_a)
        own = self.slots.get((connector_id, SLOT_DEFAULT)) if connector_id else None
        return value if own is None else own.worst(value)

    def cap_a(self, hardware_a: float) -> float:
        """Return the station-wide ceiling in force."""
        ceiling = self.slots.get((0, SLOT_MAX))
        return (
            hardware_a
            if ceiling is None
            else min(hardware_a, ceiling.worst(hardware_a))
        )

    def in_force(
        self, connector_id: int, transaction_id: str | None, hardware_a: float
    ) -> float:
        """Return the limit in force on a connector (its transaction, if running)."""
        value = self.default_a(connector_id, hardware_a)
        tx = self.slots.get((connector_id, SLOT_TX))
        if (
            transaction_id is not None
            and tx is not None
            and tx.transaction_id == transaction_id
        ):
            value = tx.worst(value)
        return min(value, self.cap_a(hardware_a))

    def reserve(
        self, connector_id: int, transaction_id: str | None, hardware_a: float
    ) -> float:
        """Return what a connector may draw now or right after its session ends."""
        idle = self.in_force(connector_id, None, hardware_a)
        if transaction_id is None:
            return idle
        return max(idle, self.in_force(connector_id, transaction_id, hardware_a))

    def held_schedule(
        self,
        connector_id: int,
        transaction_id: str | None,
        hardware_a: float,
        now: float,
    ) -> Schedule:
        """Return what a running connector may hold from `now` on, as a schedule.

        The schedule-aware `in_force`: its TxProfile's periods (a constant limit is one
        period), under an unanswered write the higher of both at every instant, the
        connector's default where no TxProfile of this transaction is known, everything
        under the station ceiling.
        """
        below = self.default_a(connector_id, hardware_a)
        tx = self.slots.get((connector_id, SLOT_TX))
        held: Schedule = ((now, below),)
        if (
            transaction_id is not None
            and tx is not None
            and tx.transaction_id == transaction_id
        ):
            if tx.limit_a is not None:
                held = tx.schedule or ((now, tx.limit_a),)
            if tx.pending_a is not None:
                pending = tx.pending_schedule or ((now, tx.pending_a),)
                held = pointwise_max(held, pending, now)
        return capped(held, self.cap_a(hardware_a), now)

    def in_force_at(
        self,
        connector_id: int,
        transaction_id: str | None,
        hardware_a: float,
        now: float,
    ) -> float:
        """Return the limit in force at `now`, a schedule's period of now included.

        `in_force` counts a schedule at its highest period (what the budget must
        reserve for a charger we cannot reach); this is what it applies at `now`.
        """
        tx = self.slots.get((connector_id, SLOT_TX))
        if (
            transaction_id is None
            or tx is None
            or tx.transaction_id != transaction_id
            or (tx.schedule is None and tx.pending_schedule is None)
        ):
            return self.in_force(connector_id, transaction_id, hardware_a)
        held = self.held_schedule(connector_id, transaction_id, hardware_a, now)
        return schedule_at(held, now)

    def has_tx(self, connector_id: int, transaction_id: str) -> bool:
        """Return whether an acknowledged TxProfile governs this transaction."""
        tx = self.slots.get((connector_id, SLOT_TX))
        return (
            tx is not None
            and tx.transaction_id == transaction_id
            and tx.limit_a is not None
        )

    def acked(self, connector_id: int, slot: str) -> float | None:
        """Return the acknowledged limit of a slot with no write pending."""
        installed = self.slots.get((connector_id, slot))
        if installed is None or installed.pending_a is not None:
            return None
        return installed.limit_a

    def transaction_ended(self, connector_id: int) -> None:
        """Forget the TxProfile of a connector whose transaction ended (the charger does)."""
        self.slots.pop((connector_id, SLOT_TX), None)

    def to_dict(self) -> dict[str, Any]:
        """Return JSON-able data."""
        return {
            "slots": [
                {"connector_id": cid, "slot": slot, **installed.to_dict()}
                for (cid, slot), installed in self.slots.items()
            ],
            "connector_defaults_refused": self.connector_defaults_refused,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChargerBook:
        """Read `to_dict` data; raises on garbage."""
        book = cls()
        for item in data.get("slots", ()):
            slot = str(item["slot"])
            if slot not in (SLOT_TX, SLOT_DEFAULT, SLOT_MAX):
                raise ValueError(f"unknown slot {slot!r}")
            book.slots[int(item["connector_id"]), slot] = Installed.from_dict(item)
        book.connector_defaults_refused = bool(
            data.get("connector_defaults_refused", False)
        )
        return book


@dataclass(frozen=True, slots=True)
class WriteTarget:
    """One profile to write: a slot of a connector at a limit (A per phase)."""

    charger_id: str
    connector_id: int
    slot: str
    limit_a: float
    transaction_id: str | None = None
    # A multi-period TxProfile (`limit_a` is then its highest period).
    schedule: Schedule | None = None
    # 2.1 V2X: a CentralSetpoint setpoint (W, <= 0) for a session's TxProfile.
    setpoint_w: float | None = None
    # It changes the phases (numberPhases): a full profile, never a Dynamic update.
    phase_switch: bool = False
    # 2.x, on one phase, a charger that chooses its phase: `phaseToUse` (1-3).
    phase_to_use: int | None = None


class _Next(Enum):
    """What a write does after an attempt that got no answer (see `_attempt`)."""

    RETRY = "retry"  # unanswered: the next attempt may go
    HOLD = "hold"  # offline or silent too often: held, its reserve stays


@dataclass(slots=True)
class _Attempts:
    """The attempts of one write: its target and how many went unanswered in a row."""

    target: WriteTarget
    what: str  # what is written, for the log: "limit", "schedule"
    timeouts: int = 0

    @property
    def key(self) -> str:
        """Return the connector's key in `ProfileWriter.held`."""
        return f"{self.target.charger_id}#{self.target.connector_id}"


def builder_for(version: str | None) -> Callable[..., dict[str, Any]]:
    """Return the profile builder of an OCPP version."""
    if version == OCPP16:
        return build_ocpp16_profile
    if version == OCPP21:
        return build_ocpp21_profile
    return build_ocpp201_profile


class ProfileWriter:
    """Writes profiles, keeps the installed-profile books and the learned shapes."""

    def __init__(
        self,
        server: CentralSystem,
        report: ReportCallback,
        *,
        voltage_v: Callable[[ChargerConfig], float],
        offline_duration_s: int | None = 60,
    ) -> None:
        """Write through `server`; `offline_duration_s` bounds 2.1 session limits."""
        self.server = server
        self._report = report
        self._voltage = voltage_v
        self.offline_duration_s = offline_duration_s
        self.books: dict[str, ChargerBook] = {}
        self.capabilities: dict[str, ChargerCapabilities] = {}
        self.held: set[str] = set()  # connector keys not answering: keep their reserve
        self.verified: set[tuple[str, str, str]] = set()  # (charger, purpose, unit)
        self.schedule_unsupported: set[str] = set()
        # 2.1 chargers that refused a Dynamic profile or UpdateDynamicSchedule: they get
        # Absolute profiles, rewritten at every change.
        self.dynamic_refused: set[str] = set()
        # Chargers that refused a multi-period TxProfile: they get one limit at a time.
        self.schedules_refused: set[str] = set()
        self._distrusted: dict[str, set[tuple[str, str]]] = {}

    # ---------------------------------------------------------------- queries

    def book(self, charger_id: str) -> ChargerBook:
        """Return a charger's book, creating it on first use."""
        book = self.books.get(charger_id)
        if book is None:
            book = self.books[charger_id] = ChargerBook()
        return book

    def caps(self, charger_id: str) -> ChargerCapabilities:
        """Return what we know of a charger (defaults when nothing is known)."""
        return self.capabilities.get(charger_id) or ChargerCapabilities()

    def units(self, charger_id: str) -> list[str]:
        """Return the rate units to try, best first: only advertised ones once known."""
        capabilities = self.caps(charger_id)
        preferred = capabilities.preferred_rate_unit
        other = RATE_WATTS if preferred == RATE_AMPS else RATE_AMPS
        if capabilities.learned and capabilities.rate_units:
            return [u for u in (preferred, other) if u in capabilities.rate_units] or [
                preferred
            ]
        return [preferred, other]

    def session_purposes(self, config: ChargerConfig) -> list[str]:
        """Return the purposes a session limit may take, best first."""
        version = self.server.ocpp_version(config.charger_id)
        configured = config.profile_purpose
        if configured in STATION_MAX_PURPOSES:
            purposes = [station_purpose(version), TX_DEFAULT_PROFILE, TX_PROFILE]
        elif configured == TX_DEFAULT_PROFILE:
            purposes = [TX_DEFAULT_PROFILE, TX_PROFILE]
        else:
            purposes = [TX_PROFILE, TX_DEFAULT_PROFILE]
        working = self.caps(config.charger_id).working_purpose
        if working is not None:
            working = (
                station_purpose(version) if working in STATION_MAX_PURPOSES else working
            )
            if working in purposes:
                purposes.remove(working)
                purposes.insert(0, working)
        return purposes

    def dynamic(self, charger_id: str) -> bool:
        """Return whether a charger's session limits go as 2.1 Dynamic profiles."""
        return (
            self.server.ocpp_version(charger_id) == OCPP21
            and charger_id not in self.dynamic_refused
        )

    def session_slot(self, config: ChargerConfig) -> str:
        """Return the slot that carries this charger's session limits now."""
        return slot_of(self.session_purposes(config)[0])

    # ----------------------------------------------------------------- writes

    def _profile(
        self,
        target: WriteTarget,
        config: ChargerConfig,
        purpose: str,
        unit: str,
        stack_level: int,
    ) -> dict[str, Any]:
        volts = self._voltage(config) * config.phases
        connector_id = 0 if purpose in STATION_MAX_PURPOSES else target.connector_id
        wire = SessionProfile(
            transaction_id=target.transaction_id or "0",
            client_id=target.charger_id,
            connector_id=connector_id,
            allocated_kw=target.limit_a * volts / 1000.0,
            allocated_w=self._watts(target, config),
            allocated_amps_per_phase=target.limit_a,
            phases=config.phases,
            paused=target.limit_a <= 0,
        )
        version = self.server.ocpp_version(target.charger_id)
        options: dict[str, Any] = {}
        if (
            version == OCPP21
            and purpose == TX_PROFILE
            and self.offline_duration_s is not None
        ):
            # The charger drops the limit by itself when it loses us for this long
            # and falls back to its connector default (never above the session's).
            options = {
                "max_offline_duration_s": self.offline_duration_s,
                "invalid_after_offline": True,
            }
        start = utcnow()
        if target.schedule is not None:
            start, options["periods"] = self._periods(target.schedule, config, unit)
            if "max_offline_duration_s" in options:
                # A plan is followed offline: it stays valid until its last period.
                span = int(target.schedule[-1][0] - target.schedule[0][0])
                options["max_offline_duration_s"] = max(
                    options["max_offline_duration_s"], span + 1
                )
        elif self.dynamic(target.charger_id) and purpose == TX_PROFILE:
            options["kind"] = KIND_DYNAMIC
        body = builder_for(version)(
            wire,
            purpose=purpose,
            stack_level=self.caps(target.charger_id).stack_level(stack_level),
            rate_unit=unit,
            number_phases=config.phases,
            start_schedule=start,
            **options,
        )
        if (
            target.setpoint_w is not None
            and version == OCPP21
            and purpose == TX_PROFILE
        ):
            body = with_setpoint(body, target.setpoint_w, unit, volts)
        if target.phase_to_use is not None and version != OCPP16:
            for schedule in body["chargingSchedule"]:
                for period in schedule["chargingSchedulePeriod"]:
                    if period.get("numberPhases") == 1:
                        period["phaseToUse"] = target.phase_to_use
        return body

    def _periods(
        self, schedule: Schedule, config: ChargerConfig, unit: str
    ) -> tuple[datetime, list[tuple[int, float]]]:
        """Return a schedule's absolute start and its periods in `unit`."""
        origin = schedule[0][0]
        volts = self._voltage(config) * config.phases
        periods = [
            (
                int(start - origin),
                amps if unit == RATE_AMPS else float(int(amps * volts + 1e-6)),
            )
            for start, amps in schedule
        ]
        return datetime.fromtimestamp(origin, UTC), periods

    def _watts(self, target: WriteTarget, config: ChargerConfig) -> int:
        """Return a target's limit in whole watts (all its phases)."""
        return int(target.limit_a * self._voltage(config) * config.phases + 1e-6)

    async def write(
        self,
        target: WriteTarget,
        config: ChargerConfig,
        *,
        purpose: str,
        unit: str,
        stack_level: int,
        record_limit: bool = False,
    ) -> str:
        """Write one profile and keep the book; return the status (or raise).

        Raises `ChargerNotConnectedError` and `CallTimeoutError` (the write stays
        pending in the book); a CALLERROR comes back as its error text.
        """
        try:
            body = self._profile(target, config, purpose, unit, stack_level)
        except EngineError as err:
            _LOGGER.error(
                "Charger %s: cannot build a %s (%s)", target.charger_id, purpose, err
            )
            return "BuildError"
        book = self.book(target.charger_id)
        connector_id = 0 if purpose in STATION_MAX_PURPOSES else target.connector_id
        key = (connector_id, slot_of(purpose))
        before = book.slots.get(key)
        stale = before is not None and (
            before.purpose != purpose
            or (key[1] == SLOT_TX and before.transaction_id != target.transaction_id)
        )
        base = None if before is None or stale else before
        book.slots[key] = written = Installed(
            purpose=purpose,
            stack_level=int(body["stackLevel"]),
            limit_a=None if base is None else base.limit_a,
            transaction_id=target.transaction_id if key[1] == SLOT_TX else None,
            pending_a=target.limit_a,
            schedule=None if base is None else base.schedule,
            pending_schedule=target.schedule,
        )
        try:
            status = await self.server.set_charging_profile(
                target.charger_id,
                connector_id,
                body,
                record_limit=record_limit,
                prebuilt=True,
            )
        except (ChargerNotConnectedError, CallTimeoutError):
            raise  # stays pending: the charger may have applied it
        except CsmsError as err:
            status = str(err)
        current = book.slots.get(key)
        if status == "Accepted":
            # Gone from the book meanwhile (its transaction ended, a clear was
            # answered): the charger holds it all the same.
            book.slots[key] = replace(
                current or written,
                limit_a=target.limit_a,
                pending_a=None,
                dynamic_unit=unit
                if body.get("chargingProfileKind") == KIND_DYNAMIC
                else None,
                schedule=target.schedule,
                pending_schedule=None,
                setpoint_w=target.setpoint_w if _has_setpoint(body) else None,
            )
        elif current is not None:
            if current.limit_a is None:
                del book.slots[key]
            else:
                book.slots[key] = replace(
                    current, pending_a=None, pending_schedule=None
                )
        return status

    async def clear(self, charger_id: str, connector_id: int, slot: str) -> bool:
        """Clear our profile of one slot; return whether it is gone."""
        book = self.book(charger_id)
        installed = book.slots.get((connector_id, slot))
        if installed is None:
            return True
        profile_id = profile_id_for(installed.purpose, connector_id)
        try:
            status = await self.server.clear_charging_profile(
                charger_id, profile_id=profile_id
            )
        except CsmsError as err:
            _LOGGER.warning(
                "Charger %s: could not clear its %s on connector %s: %s",
                charger_id,
                installed.purpose,
                connector_id,
                err,
            )
            return False
        if status in ("Accepted", "Unknown"):
            book.slots.pop((connector_id, slot), None)
            return True
        return False

    async def write_default(self, target: WriteTarget, config: ChargerConfig) -> bool:
        """Write a connector default (or the boot default on connector 0)."""
        stack = (
            STATION_STACK_LEVEL
            if target.connector_id == 0
            else CONNECTOR_DEFAULT_STACK_LEVEL
        )
        return await self._write_in_units(
            target, config, purpose=TX_DEFAULT_PROFILE, stack_level=stack
        )

    async def write_ceiling(self, target: WriteTarget, config: ChargerConfig) -> bool:
        """Write the station ceiling on connector 0 (stack level 0)."""
        purpose = station_purpose(self.server.ocpp_version(target.charger_id))
        return await self._write_in_units(
            target, config, purpose=purpose, stack_level=STATION_STACK_LEVEL
        )

    async def _write_in_units(
        self,
        target: WriteTarget,
        config: ChargerConfig,
        *,
        purpose: str,
        stack_level: int,
    ) -> bool:
        for unit in self.units(target.charger_id):
            status = await self.write(
                target, config, purpose=purpose, unit=unit, stack_level=stack_level
            )
            if status == "Accepted":
                return True
            _LOGGER.warning(
                "Charger %s refused a %s of %.1f A on connector %s in %s: %s",
                target.charger_id,
                purpose,
                target.limit_a,
                target.connector_id,
                unit,
                status,
            )
        return False

    async def write_session(
        self,
        target: WriteTarget,
        config: ChargerConfig,
        still_running: Callable[[], bool],
    ) -> bool:
        """Write a session limit, falling back through the shapes; return success.

        `still_running` is asked before every attempt: a session that ended meanwhile
        needs no limit. A charger that does not answer twice is held (its reserve
        stays); one that refuses every shape is reported and held. An unanswered
        attempt moves on to the next shape.
        """
        attempts = _Attempts(target, "limit")
        book = self.book(target.charger_id)
        if (
            still_running()
            and self.session_slot(config) == SLOT_TX
            and not target.phase_switch
        ):
            # Unanswered, the update stays pending and a full profile goes next.
            moved = await self._attempt(attempts, self.update_dynamic(target, config))
            if moved is _Next.HOLD:
                return False
            if moved is True:
                return True
        for purpose in self.session_purposes(config):
            for unit in self.units(target.charger_id):
                if not still_running():
                    return True
                _LOGGER.debug(
                    "Charger %s connector %s: limit %.1f A as %s in %s (transaction %s)",
                    target.charger_id,
                    target.connector_id,
                    target.limit_a,
                    purpose,
                    unit,
                    target.transaction_id,
                )
                status = await self._attempt(
                    attempts, self._write_shape(target, config, purpose, unit)
                )
                if status is _Next.HOLD:
                    return False
                if status is _Next.RETRY:
                    continue
                if status == "Accepted":
                    self.remember(target.charger_id, purpose, unit)
                    if purpose != TX_PROFILE and target.transaction_id is not None:
                        # A TxProfile of this transaction would still govern.
                        tx = book.slots.get((target.connector_id, SLOT_TX))
                        if (
                            tx is not None
                            and tx.transaction_id == target.transaction_id
                        ):
                            await self.clear(
                                target.charger_id, target.connector_id, SLOT_TX
                            )
                    return True
                _LOGGER.warning(
                    "Charger %s refused a %s in %s: %s",
                    target.charger_id,
                    purpose,
                    unit,
                    status,
                )
        self.held.add(attempts.key)
        self.rejects_profiles(target.charger_id)
        return False

    async def _write_shape(
        self, target: WriteTarget, config: ChargerConfig, purpose: str, unit: str
    ) -> str:
        """Write a session limit in one shape; return the status (or raise).

        A 2.1 charger that refuses a Dynamic TxProfile gets the same limit as an
        Absolute one at once, and Absolute profiles from now on.
        """
        stack = (
            STATION_STACK_LEVEL
            if purpose in STATION_MAX_PURPOSES
            else CONNECTOR_DEFAULT_STACK_LEVEL
            if purpose == TX_DEFAULT_PROFILE
            else config.stack_level
        )
        write = functools.partial(
            self.write,
            target,
            config,
            purpose=purpose,
            unit=unit,
            stack_level=stack,
            record_limit=True,
        )
        status = await write()
        if (
            status != "Accepted"
            and purpose == TX_PROFILE
            and self.dynamic(target.charger_id)
        ):
            self._refuse_dynamic(target.charger_id, status)
            status = await write()  # the same limit, now as an Absolute profile
        return status

    async def _attempt[T](self, attempts: _Attempts, send: Awaitable[T]) -> T | _Next:
        """Make one attempt of a write: the charger's answer, or what to do next.

        The one place a write meets a charger that is not there: offline, the
        connector is held at once; unanswered, `_Next.RETRY` until `MAX_TIMEOUTS`
        attempts in a row went unanswered, then it is held. Held (`_Next.HOLD`), its
        reserve stays and the caller gives up.
        """
        target = attempts.target
        try:
            result = await send
        except ChargerNotConnectedError as err:
            _LOGGER.warning(
                "%s for %s not applied: %s",
                attempts.what.capitalize(),
                attempts.key,
                err,
            )
            self.held.add(attempts.key)
            return _Next.HOLD
        except CallTimeoutError:
            attempts.timeouts += 1
            if attempts.timeouts < MAX_TIMEOUTS:
                return _Next.RETRY
            _LOGGER.warning(
                "Charger %s is not answering; its %s stays reserved",
                target.charger_id,
                attempts.what,
            )
            self.held.add(attempts.key)
            return _Next.HOLD
        attempts.timeouts = 0
        return result

    def schedules_supported(self, config: ChargerConfig) -> bool:
        """Return whether a charger's session limits may go as multi-period TxProfiles.

        Only as TxProfiles (a default or a station cap holds for every car), only where
        the charger stores more than one period (`ChargingScheduleMaxPeriods`, unknown
        counts as yes until it refuses one) and never after it refused one.
        """
        charger_id = config.charger_id
        max_periods = self.caps(charger_id).max_periods
        return (
            charger_id not in self.schedules_refused
            and (max_periods is None or max_periods > 1)
            and self.session_slot(config) == SLOT_TX
        )

    def max_periods(self, charger_id: str) -> int | None:
        """Return how many periods a charger's schedule may have (None: unknown)."""
        return self.caps(charger_id).max_periods

    async def write_schedule(
        self,
        target: WriteTarget,
        config: ChargerConfig,
        still_running: Callable[[], bool],
    ) -> bool:
        """Write a session's multi-period TxProfile (Absolute); return success.

        Tried in each rate unit the charger takes. A charger that does not answer twice,
        or is offline, is held (its reserve stays). One that refuses every unit is
        remembered in `schedules_refused` (its limits go one at a time from now on) and
        False comes back: the caller plans again.
        """
        assert target.schedule is not None
        attempts = _Attempts(target, "schedule")
        refused: list[str] = []
        for unit in self.units(target.charger_id):
            status: str | _Next = _Next.RETRY
            while status is _Next.RETRY:  # unanswered: the same unit again
                if not still_running():
                    return True
                status = await self._attempt(
                    attempts,
                    self.write(
                        target,
                        config,
                        purpose=TX_PROFILE,
                        unit=unit,
                        stack_level=config.stack_level,
                        record_limit=True,
                    ),
                )
            if status is _Next.HOLD:
                return False
            if status == "Accepted":
                self.remember(target.charger_id, TX_PROFILE, unit)
                return True
            refused.append(f"{unit}: {status}")
        _LOGGER.warning(
            "Charger %s refused a charging schedule of %d periods (%s); "
            "sending one limit at a time",
            target.charger_id,
            len(target.schedule),
            ", ".join(refused),
        )
        self.schedules_refused.add(target.charger_id)
        return False

    async def update_dynamic(self, target: WriteTarget, config: ChargerConfig) -> bool:
        """Move the session's Dynamic TxProfile by UpdateDynamicSchedule (2.1).

        Returns False when there is no Dynamic profile of this transaction to move or
        the charger refused the update (then it gets Absolute profiles from now on).
        Raises `ChargerNotConnectedError` and `CallTimeoutError` (the update stays
        pending in the book: the charger may have applied it).
        """
        charger_id = target.charger_id
        book = self.book(charger_id)
        key = (target.connector_id, SLOT_TX)
        installed = book.slots.get(key)
        if (
            not self.dynamic(charger_id)
            or installed is None
            or installed.dynamic_unit is None
            or installed.limit_a is None
            or installed.pending_a is not None
            or installed.transaction_id != target.transaction_id
            # Into or out of V2X mode: a new profile (operationMode does not move).
            or (installed.setpoint_w is None) != (target.setpoint_w is None)
        ):
            return False
        unit = installed.dynamic_unit
        # The same value a profile in this unit would carry (see `_profile`).
        limit = (
            target.limit_a if unit == RATE_AMPS else float(self._watts(target, config))
        )
        record = LimitRecord(limit, unit, TX_PROFILE, target.transaction_id)
        book.slots[key] = replace(installed, pending_a=target.limit_a)
        volts = self._voltage(config) * config.phases
        try:
            status = await self.server.update_dynamic_schedule(
                charger_id,
                target.connector_id,
                profile_id_for(TX_PROFILE, target.connector_id),
                record,
                setpoint=None
                if target.setpoint_w is None
                else setpoint_in_unit(target.setpoint_w, unit, volts),
            )
        except (ChargerNotConnectedError, CallTimeoutError):
            raise
        except CsmsError as err:
            status = str(err)
        current = book.slots.get(key, installed)
        if status == "Accepted":
            book.slots[key] = replace(
                current,
                limit_a=target.limit_a,
                pending_a=None,
                setpoint_w=target.setpoint_w,
            )
            return True
        book.slots[key] = replace(current, pending_a=None)
        self._refuse_dynamic(charger_id, status)
        return False

    def _refuse_dynamic(self, charger_id: str, status: str) -> None:
        _LOGGER.warning(
            "Charger %s refused a Dynamic profile or its update (%s); "
            "sending Absolute profiles",
            charger_id,
            status,
        )
        self.dynamic_refused.add(charger_id)

    def remember(self, charger_id: str, purpose: str, unit: str) -> None:
        """Remember the shape a charger took."""
        capabilities = self.caps(charger_id)
        if (capabilities.working_purpose, capabilities.working_rate_unit) != (
            purpose,
            unit,
        ):
            _LOGGER.info(
                "Charger %s takes a %s in %s; remembered", charger_id, purpose, unit
            )
            self.capabilities[charger_id] = capabilities.with_working(purpose, unit)
            self._report(CapabilitiesLearned(charger_id, self.capabilities[charger_id]))

    def distrust(self, config: ChargerConfig) -> bool:
        """Move to the next shape: the charger ignores the one it takes.

        Returns False when no other shape is left to try.
        """
        charger_id = config.charger_id
        capabilities = self.caps(charger_id)
        shapes = [
            (purpose, unit)
            for purpose in self.session_purposes(config)
            for unit in self.units(charger_id)
        ]
        current = shapes[0]
        tried = self._distrusted.setdefault(charger_id, set())
        tried.add(current)
        remaining = [shape for shape in shapes if shape not in tried]
        if not remaining:
            return False
        purpose, unit = remaining[0]
        _LOGGER.warning(
            "Charger %s does not follow a %s in %s; trying a %s in %s",
            charger_id,
            current[0],
            current[1],
            purpose,
            unit,
        )
        self.capabilities[charger_id] = capabilities.with_working(purpose, unit)
        return True

    def rejects_profiles(self, charger_id: str) -> None:
        """Report (once) a charger that refuses every profile."""
        capabilities = self.caps(charger_id)
        if capabilities.rejects_profiles:
            return
        _LOGGER.warning(
            "Charger %s accepts no charging profile; its hardware maximum stays "
            "reserved until it boots again",
            charger_id,
        )
        self.capabilities[charger_id] = replace(capabilities, rejects_profiles=True)
        self._report(ChargerRejectsProfiles(charger_id))

    # ------------------------------------------------------------ verification

    async def read_back(
        self, charger_id: str, connector_id: int, config: ChargerConfig
    ) -> float | None:
        """Return the limit (A) the charger's composite schedule applies now.

        None when the charger cannot tell (it does not support GetCompositeSchedule,
        refuses, or answers nothing usable); a charger that cannot is not asked again.
        """
        if charger_id in self.schedule_unsupported:
            return None
        try:
            result = await self.server.get_composite_schedule(
                charger_id, connector_id, duration_s=60, rate_unit=RATE_AMPS
            )
        except CsmsError as err:
            _LOGGER.info(
                "Charger %s cannot report its composite schedule (%s)", charger_id, err
            )
            self.schedule_unsupported.add(charger_id)
            return None
        limit = (
            _schedule_limit(result.schedule) if result.status == "Accepted" else None
        )
        if limit is None:
            return None
        value, unit = limit
        if unit == RATE_WATTS:
            value /= self._voltage(config) * config.phases
        return value


def _schedule_limit(schedule: Mapping[str, Any] | None) -> tuple[float, str] | None:
    """Return the first period's (limit, unit) of a camelCase composite schedule."""
    if not isinstance(schedule, Mapping):
        return None
    inner = schedule.get("chargingSchedule", schedule)
    if isinstance(inner, list):
        inner = inner[0] if inner else None
    if not isinstance(inner, Mapping):
        return None
    periods: list[Any] = list(inner.get("chargingSchedulePeriod") or [])
    try:
        first = periods[0]
        limit = float(first["limit"])
    except (IndexError, KeyError, TypeError, ValueError):
        return None
    if not math.isfinite(limit):
        return None
    return limit, str(inner.get("chargingRateUnit", RATE_AMPS))


__all__ = [
    "SCHEDULE_TOLERANCE_A",
    "SLOT_DEFAULT",
    "SLOT_MAX",
    "SLOT_TX",
    "ChargerBook",
    "Installed",
    "ProfileWriter",
    "WriteTarget",
    "builder_for",
    "slot_of",
]
