"""The charging profiles a simulated charger holds, and the limit they put in force.

Pure bookkeeping, no I/O, as OCPP 1.6 §3.13 and 2.0.1 K01/K08 describe a charger:

- profiles are kept per connector/EVSE (0 = the whole station);
- SetChargingProfile with an existing id replaces that profile; in 1.6 a profile with the
  same purpose and stack level on the same connector replaces the older one too;
- ClearChargingProfile removes by id, or by connector, purpose and stack level together;
- a TxProfile ends with its transaction;
- the limit in force: the station maximum (ChargePointMaxProfile /
  ChargingStationMaxProfile, and 2.1 ChargingStationExternalConstraints, on connector 0)
  caps everything; under it, for a running transaction its TxProfile (highest stack level)
  wins, else the connector's TxDefaultProfile (highest stack level), else the TxDefaultProfile
  on connector 0, else the hardware/car maximum. Among profiles of one purpose only those
  valid now count (validFrom/validTo, a period started, within `duration`, not expired by
  2.1 `maxOfflineDuration` while offline).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

STATION_MAX = frozenset({"ChargePointMaxProfile", "ChargingStationMaxProfile"})
EXTERNAL = "ChargingStationExternalConstraints"
TX_PROFILE = "TxProfile"
TX_DEFAULT = "TxDefaultProfile"
_RECURRENCY_S = {"Daily": 86400, "Weekly": 7 * 86400}
# A startSchedule this far in the future still counts as started (clock skew between
# the server that stamped it and the charger).
CLOCK_SKEW_S = 1.0


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def parse_time(value: Any) -> datetime | None:
    """Return an OCPP timestamp as an aware datetime (None when absent or unreadable)."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Period:
    """One charging schedule period."""

    start_s: float
    limit: float
    number_phases: int | None = None
    # OCPP 2.1 V2X: CentralSetpoint follows `setpoint` (negative: discharge), never
    # discharging more than `discharge_limit` (<= 0) allows.
    operation_mode: str | None = None
    setpoint: float | None = None
    discharge_limit: float | None = None


@dataclass(frozen=True, slots=True)
class InstalledProfile:
    """A profile as the charger stored it."""

    id: int
    connector_id: int
    purpose: str
    stack_level: int
    kind: str
    rate_unit: str  # "A" or "W"
    periods: tuple[Period, ...]
    transaction_id: str | None = None
    start_schedule: datetime | None = None
    duration_s: float | None = None
    recurrency: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    max_offline_s: float | None = None
    invalid_after_offline: bool = False
    installed_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def limit(self) -> float:
        """Return the first period's limit (in `rate_unit`)."""
        return self.periods[0].limit if self.periods else 0.0

    @property
    def number_phases(self) -> int | None:
        """Return the first period's numberPhases (None: not given)."""
        return self.periods[0].number_phases if self.periods else None

    @property
    def is_station_max(self) -> bool:
        """Return whether this profile caps the whole station."""
        return self.purpose in STATION_MAX or self.purpose == EXTERNAL

    @classmethod
    def from_wire(
        cls, connector_id: int, profile: Mapping[str, Any], now: datetime
    ) -> InstalledProfile:
        """Build from a camelCase SetChargingProfile payload (1.6 or 2.x)."""
        schedule_field = profile["chargingSchedule"]
        schedule: Mapping[str, Any] = (
            schedule_field[0] if isinstance(schedule_field, list) else schedule_field
        )
        periods = tuple(
            Period(
                start_s=float(period.get("startPeriod", 0)),
                limit=float(period.get("limit", 0.0)),
                number_phases=period.get("numberPhases"),
                operation_mode=period.get("operationMode"),
                setpoint=_number(period.get("setpoint")),
                discharge_limit=_number(period.get("dischargeLimit")),
            )
            for period in schedule.get("chargingSchedulePeriod", [])
        )
        transaction = profile.get("transactionId")
        duration = schedule.get("duration")
        offline = profile.get("maxOfflineDuration")
        return cls(
            id=int(profile.get("chargingProfileId", profile.get("id", 0))),
            connector_id=connector_id,
            purpose=str(profile["chargingProfilePurpose"]),
            stack_level=int(profile.get("stackLevel", 0)),
            kind=str(profile.get("chargingProfileKind", "Absolute")),
            rate_unit=str(schedule.get("chargingRateUnit", "A")),
            periods=periods,
            transaction_id=None if transaction is None else str(transaction),
            start_schedule=parse_time(schedule.get("startSchedule")),
            duration_s=None if duration is None else float(duration),
            recurrency=profile.get("recurrencyKind"),
            valid_from=parse_time(profile.get("validFrom")),
            valid_to=parse_time(profile.get("validTo")),
            max_offline_s=None if offline is None else float(offline),
            invalid_after_offline=bool(profile.get("invalidAfterOfflineDuration")),
            installed_at=now,
            raw=dict(profile),
        )

    def period_at(
        self,
        now: datetime,
        transaction_start: datetime | None = None,
        offline_for_s: float | None = None,
    ) -> Period | None:
        """Return the period in force at `now`, or None when the profile does not count."""
        if not self.periods:
            return None
        if self.valid_from is not None and now < self.valid_from:
            return None
        if self.valid_to is not None and now >= self.valid_to:
            return None
        if (
            offline_for_s is not None
            and self.max_offline_s is not None
            and offline_for_s > self.max_offline_s
        ):
            return None
        if self.kind == "Relative":
            origin = transaction_start or now
        elif self.kind == "Dynamic":
            origin = self.start_schedule or self.installed_at
        else:
            origin = self.start_schedule or self.installed_at
        elapsed = (now - origin).total_seconds()
        if -CLOCK_SKEW_S <= elapsed < 0:
            elapsed = 0.0
        if self.kind == "Recurring" and elapsed >= 0:
            elapsed %= _RECURRENCY_S.get(self.recurrency or "Daily", 86400)
        if elapsed < 0 or (self.duration_s is not None and elapsed >= self.duration_s):
            return None
        in_force = None
        for period in self.periods:
            if period.start_s <= elapsed:
                in_force = period
        return in_force


@dataclass(frozen=True, slots=True)
class Limit:
    """What is in force on a connector: amps per phase, phases, and the deciding profile."""

    amps: float
    phases: int
    profile: InstalledProfile | None = None
    station_cap: InstalledProfile | None = None


class ProfileTable:
    """Every profile a charger holds, by connector (0 = station)."""

    def __init__(self) -> None:
        """Start empty (a charger fresh from the factory)."""
        self._profiles: list[InstalledProfile] = []

    def __iter__(self) -> Iterator[InstalledProfile]:
        """Iterate over the installed profiles, oldest first."""
        return iter(list(self._profiles))

    def __len__(self) -> int:
        """Return how many profiles are installed."""
        return len(self._profiles)

    def on(self, connector_id: int) -> list[InstalledProfile]:
        """Return the profiles installed on one connector."""
        return [p for p in self._profiles if p.connector_id == connector_id]

    def conflicting(self, new: InstalledProfile) -> InstalledProfile | None:
        """Return a profile (other id) with the same connector, purpose and stack level."""
        for old in self._profiles:
            if (
                old.id != new.id
                and old.connector_id == new.connector_id
                and old.purpose == new.purpose
                and old.stack_level == new.stack_level
                and (
                    new.purpose != TX_PROFILE
                    or old.transaction_id == new.transaction_id
                )
            ):
                return old
        return None

    def install(self, new: InstalledProfile, *, replace_same_stack: bool) -> None:
        """Store a profile; an existing id (and, in 1.6, the same stack) is replaced."""
        self._profiles = [
            old
            for old in self._profiles
            if old.id != new.id
            and not (
                replace_same_stack
                and old.connector_id == new.connector_id
                and old.purpose == new.purpose
                and old.stack_level == new.stack_level
            )
        ]
        self._profiles.append(new)

    def clear(
        self,
        *,
        profile_id: int | None = None,
        connector_id: int | None = None,
        purpose: str | None = None,
        stack_level: int | None = None,
    ) -> list[InstalledProfile]:
        """Remove by id, else by every criterion given (none: all); return the removed."""

        def matches(profile: InstalledProfile) -> bool:
            if profile_id is not None:
                return profile.id == profile_id
            return (
                (connector_id is None or profile.connector_id == connector_id)
                and (purpose is None or profile.purpose == purpose)
                and (stack_level is None or profile.stack_level == stack_level)
            )

        removed = [p for p in self._profiles if matches(p)]
        self._profiles = [p for p in self._profiles if not matches(p)]
        return removed

    def move_limit(
        self,
        profile_id: int,
        limit: float,
        *,
        setpoint: float | None = None,
        discharge_limit: float | None = None,
    ) -> None:
        """UpdateDynamicSchedule: a Dynamic profile's (first) period takes `limit`.

        A setpoint or discharge limit given moves too (the others stay as they were).
        """
        for index, profile in enumerate(self._profiles):
            if profile.id == profile_id and profile.periods:
                first = replace(profile.periods[0], limit=limit)
                if setpoint is not None:
                    first = replace(first, setpoint=setpoint)
                if discharge_limit is not None:
                    first = replace(first, discharge_limit=discharge_limit)
                self._profiles[index] = replace(
                    profile, periods=(first, *profile.periods[1:])
                )

    def remove(self, profiles: Iterable[InstalledProfile]) -> None:
        """Remove these exact profiles."""
        gone = {id(p) for p in profiles}
        self._profiles = [p for p in self._profiles if id(p) not in gone]

    def end_transaction(self, connector_id: int, transaction_id: str | None) -> None:
        """Drop the TxProfiles of a transaction that ended on this connector."""
        self._profiles = [
            p
            for p in self._profiles
            if not (
                p.purpose == TX_PROFILE
                and p.connector_id == connector_id
                and (p.transaction_id is None or p.transaction_id == transaction_id)
            )
        ]

    def drop_tx_profiles(self) -> None:
        """Forget every TxProfile (a reboot: they are not persistent)."""
        self._profiles = [p for p in self._profiles if p.purpose != TX_PROFILE]

    def _best(
        self,
        candidates: Iterable[InstalledProfile],
        now: datetime,
        transaction_start: datetime | None,
        offline_for_s: float | None,
    ) -> tuple[InstalledProfile, Period] | None:
        """Return the highest stack level profile that counts now, with its period."""
        ranked = sorted(
            candidates, key=lambda p: (p.stack_level, p.installed_at), reverse=True
        )
        for profile in ranked:
            period = profile.period_at(now, transaction_start, offline_for_s)
            if period is not None:
                return profile, period
        return None

    def evaluate(
        self,
        connector_id: int,
        *,
        now: datetime,
        hardware_max_a: float,
        phases: int,
        voltage_v: float,
        transaction: tuple[str | None, datetime] | None,
        offline_for_s: float | None = None,
    ) -> Limit:
        """Return the limit in force on a connector.

        `transaction`: (the id as the charger knows it, its start) when one runs there.
        Without one, this is the limit a car plugging in now would start at.
        """

        def amps(period: Period, unit: str) -> tuple[float, int]:
            used = min(period.number_phases or phases, phases)
            if unit == "W":
                return period.limit / (voltage_v * used), used
            return period.limit, used

        start = transaction[1] if transaction else None
        chosen: tuple[InstalledProfile, Period] | None = None
        if transaction is not None:
            known_id = transaction[0]
            chosen = self._best(
                (
                    p
                    for p in self.on(connector_id)
                    if p.purpose == TX_PROFILE
                    and (p.transaction_id is None or p.transaction_id == known_id)
                ),
                now,
                start,
                offline_for_s,
            )
        for where in (connector_id, 0):
            if chosen is None:
                chosen = self._best(
                    (p for p in self.on(where) if p.purpose == TX_DEFAULT),
                    now,
                    start,
                    offline_for_s,
                )
        if chosen is None:
            limit_a, used, profile = hardware_max_a, phases, None
        else:
            profile = chosen[0]
            limit_a, used = amps(chosen[1], profile.rate_unit)
        limit_a = min(limit_a, hardware_max_a)
        cap_profile: InstalledProfile | None = None
        for purpose_set in (STATION_MAX, frozenset({EXTERNAL})):
            cap = self._best(
                (p for p in self.on(0) if p.purpose in purpose_set),
                now,
                start,
                offline_for_s,
            )
            if cap is not None:
                cap_a, _ = amps(cap[1], cap[0].rate_unit)
                if cap_a < limit_a:
                    limit_a, cap_profile = cap_a, cap[0]
        return Limit(max(0.0, limit_a), used, profile, cap_profile)

    def expire_offline(self, offline_for_s: float) -> list[InstalledProfile]:
        """After a connection loss this long, drop the 2.1 profiles invalid for good."""
        gone = [
            p
            for p in self._profiles
            if p.invalid_after_offline
            and p.max_offline_s is not None
            and offline_for_s > p.max_offline_s
        ]
        self.remove(gone)
        return gone


def offline_seconds(since: datetime | None, now: datetime) -> float | None:
    """Return how long the charger has been offline (None: it is online)."""
    return None if since is None else max(0.0, (now - since).total_seconds())


__all__ = [
    "CLOCK_SKEW_S",
    "EXTERNAL",
    "STATION_MAX",
    "TX_DEFAULT",
    "TX_PROFILE",
    "InstalledProfile",
    "Limit",
    "Period",
    "ProfileTable",
    "offline_seconds",
    "parse_time",
]
