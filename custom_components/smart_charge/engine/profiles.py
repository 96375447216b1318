"""OCPP charging-profile builders (1.6, 2.0.1, 2.1) that keep the conformance rules.

Each builder returns the JSON-ready profile object with the wire's camelCase keys; the
`*_request` helpers wrap it in the whole SetChargingProfile payload. Rules (OCPP 2.0.1 K01,
1.6 §3.13): TxProfile only with a transaction id, on a connector/EVSE > 0; a station max
profile on connector/EVSE 0 and never Relative; Absolute has a startSchedule, Relative has
none; the first period starts at 0 and periods strictly increase; limits are rounded down to
0.1 A or to whole watts. Violations raise ProfileError.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
import math
from typing import Any, Final

from custom_components.smart_charge.units import RateUnit

from .allocate import round_down_amps
from .errors import ProfileError
from .model import SessionProfile

type Period = tuple[int, float]


class ProfilePurpose(StrEnum):
    """The OCPP charging profile purposes Smart Charge writes (their OCPP spellings)."""

    TX_PROFILE = "TxProfile"
    TX_DEFAULT_PROFILE = "TxDefaultProfile"
    # The station's ceiling: OCPP 1.6 and 2.x name it differently.
    CHARGE_POINT_MAX_PROFILE = "ChargePointMaxProfile"
    CHARGING_STATION_MAX_PROFILE = "ChargingStationMaxProfile"


# Short names of the members, as the control layer and the simulator use them.
TX_PROFILE: Final = ProfilePurpose.TX_PROFILE
TX_DEFAULT_PROFILE: Final = ProfilePurpose.TX_DEFAULT_PROFILE
STATION_MAX_16: Final = ProfilePurpose.CHARGE_POINT_MAX_PROFILE
STATION_MAX_2X: Final = ProfilePurpose.CHARGING_STATION_MAX_PROFILE
_STATION_MAX = {STATION_MAX_16, STATION_MAX_2X}
_PURPOSES = {TX_PROFILE, TX_DEFAULT_PROFILE, *_STATION_MAX}
KIND_DYNAMIC = "Dynamic"  # OCPP 2.1: the limit moves by UpdateDynamicSchedule
_KINDS = {"Absolute", "Relative"}
_PURPOSE_BASE_ID: Final[dict[str, int]] = {
    STATION_MAX_16: 1000,
    STATION_MAX_2X: 1000,
    TX_DEFAULT_PROFILE: 2000,
    TX_PROFILE: 3000,
}


def profile_id_for(purpose: str, connector_id: int) -> int:
    """Return the stable id of a purpose on a connector (station max: one per station)."""
    if purpose in _STATION_MAX:
        return _PURPOSE_BASE_ID[purpose]
    return _PURPOSE_BASE_ID[purpose] + connector_id


def default_profile_id(profile: SessionProfile, purpose: str) -> int:
    """Return a stable id per purpose and connector, so a new profile replaces the old one."""
    return profile_id_for(purpose, profile.connector_id)


def _format_time(moment: datetime) -> str:
    """Return an ISO-8601 UTC timestamp with a Z suffix."""
    if moment.tzinfo is None:
        raise ProfileError("start_schedule must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _round_limit(limit: float, rate_unit: RateUnit) -> float | int:
    """Round a limit down: 0.1 A, or whole watts."""
    if (
        isinstance(limit, bool)
        or not isinstance(limit, int | float)
        or not math.isfinite(limit)
    ):
        raise ProfileError(f"limit must be a finite number, got {limit!r}")
    if limit < 0:
        raise ProfileError(f"limit must be ≥ 0, got {limit!r}")
    if rate_unit == RateUnit.AMPS:
        return round_down_amps(limit)
    return math.floor(limit + 1e-6)


def _periods(
    profile: SessionProfile,
    rate_unit: RateUnit,
    periods: Sequence[Period] | None,
    number_phases: int | None,
    discharge_limit: float | None = None,
) -> list[dict[str, Any]]:
    """Return the chargingSchedulePeriod list, validated."""
    if rate_unit not in tuple(RateUnit):
        raise ProfileError(f"rate unit must be 'A' or 'W', got {rate_unit!r}")
    if periods is None:
        current = (
            profile.allocated_amps_per_phase
            if rate_unit == RateUnit.AMPS
            else profile.allocated_w
        )
        periods = [(0, current)]
    if not periods:
        raise ProfileError("a schedule needs at least one period")
    phases = profile.phases if number_phases is None else number_phases
    if phases not in (1, 2, 3):
        raise ProfileError(f"numberPhases must be 1, 2 or 3, got {phases!r}")
    result: list[dict[str, Any]] = []
    previous = -1
    for start, limit in periods:
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ProfileError(f"startPeriod must be an integer ≥ 0, got {start!r}")
        if not result and start != 0:
            raise ProfileError("the first period must start at 0")
        if start <= previous:
            raise ProfileError("periods must start at strictly increasing offsets")
        previous = start
        period: dict[str, Any] = {
            "startPeriod": start,
            "limit": _round_limit(limit, rate_unit),
            "numberPhases": phases,
        }
        if discharge_limit is not None:
            period["dischargeLimit"] = -_round_limit(abs(discharge_limit), rate_unit)
        result.append(period)
    return result


def _check_common(
    profile: SessionProfile,
    purpose: str,
    stack_level: int,
    kind: str,
    *,
    dynamic_allowed: bool = False,
) -> None:
    """Check purpose, stack level, kind and the transaction rules."""
    if purpose not in _PURPOSES:
        raise ProfileError(f"unknown charging profile purpose {purpose!r}")
    if (
        isinstance(stack_level, bool)
        or not isinstance(stack_level, int)
        or stack_level < 0
    ):
        raise ProfileError(f"stack level must be an integer ≥ 0, got {stack_level!r}")
    if kind not in _KINDS and not (dynamic_allowed and kind == KIND_DYNAMIC):
        raise ProfileError(
            f"charging profile kind must be Absolute or Relative, got {kind!r}"
        )
    if purpose in _STATION_MAX and kind == "Relative":
        raise ProfileError("a station max profile cannot be Relative")
    if purpose == TX_PROFILE:
        if profile.transaction_id in ("", None):
            raise ProfileError("a TxProfile needs a transaction id")
        if profile.connector_id <= 0:
            raise ProfileError("a TxProfile needs a connector/EVSE > 0")


def _schedule(kind: str, start_schedule: datetime | None) -> dict[str, Any]:
    """Return the startSchedule part of a schedule (Absolute only)."""
    if kind == KIND_DYNAMIC:
        return {}  # 2.1: startSchedule belongs to Absolute and Recurring schedules
    if kind == "Relative":
        if start_schedule is not None:
            raise ProfileError("a Relative profile must not have a startSchedule")
        return {}
    return {"startSchedule": _format_time(start_schedule or datetime.now(UTC))}


def build_ocpp16_profile(
    profile: SessionProfile,
    *,
    purpose: str = TX_PROFILE,
    stack_level: int = 1,
    rate_unit: RateUnit = RateUnit.AMPS,
    profile_id: int | None = None,
    start_schedule: datetime | None = None,
    periods: Sequence[Period] | None = None,
    number_phases: int | None = None,
    kind: str = "Absolute",
) -> dict[str, Any]:
    """Return the OCPP 1.6 `csChargingProfiles` object for a session profile.

    `purpose` "ChargingStationMaxProfile" is accepted as "ChargePointMaxProfile".
    `periods` are (startPeriod seconds, limit in rate_unit); default: one period with the
    profile's allocation. The 1.6 transactionId is an integer.
    """
    if purpose == STATION_MAX_2X:
        purpose = STATION_MAX_16
    _check_common(profile, purpose, stack_level, kind)
    result: dict[str, Any] = {
        "chargingProfileId": default_profile_id(profile, purpose)
        if profile_id is None
        else profile_id,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
    }
    if purpose == TX_PROFILE:
        try:
            result["transactionId"] = int(profile.transaction_id)
        except ValueError as err:
            raise ProfileError(
                f"OCPP 1.6 transaction ids are integers, got {profile.transaction_id!r}"
            ) from err
    result["chargingSchedule"] = {
        **_schedule(kind, start_schedule),
        "chargingRateUnit": str(rate_unit),
        "chargingSchedulePeriod": _periods(profile, rate_unit, periods, number_phases),
    }
    return result


def build_ocpp16_request(profile: SessionProfile, **options: Any) -> dict[str, Any]:
    """Return the whole OCPP 1.6 SetChargingProfile payload (connector 0 for a station max)."""
    body = build_ocpp16_profile(profile, **options)
    station = body["chargingProfilePurpose"] == STATION_MAX_16
    return {
        "connectorId": 0 if station else profile.connector_id,
        "csChargingProfiles": body,
    }


def _build_2x(
    profile: SessionProfile,
    *,
    purpose: str,
    stack_level: int,
    rate_unit: RateUnit,
    profile_id: int | None,
    start_schedule: datetime | None,
    periods: Sequence[Period] | None,
    number_phases: int | None,
    kind: str,
    schedule_id: int | None,
    discharge_limit: float | None,
    dynamic_allowed: bool = False,
) -> dict[str, Any]:
    """Build an OCPP 2.0.1 / 2.1 chargingProfile object (Dynamic: 2.1 only)."""
    if purpose == STATION_MAX_16:
        purpose = STATION_MAX_2X
    _check_common(profile, purpose, stack_level, kind, dynamic_allowed=dynamic_allowed)
    identifier = (
        default_profile_id(profile, purpose) if profile_id is None else profile_id
    )
    result: dict[str, Any] = {
        "id": identifier,
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
    }
    if purpose == TX_PROFILE:
        transaction = str(profile.transaction_id)
        if len(transaction) > 36:
            raise ProfileError("OCPP 2.x transaction ids have at most 36 characters")
        result["transactionId"] = transaction
    result["chargingSchedule"] = [
        {
            "id": identifier if schedule_id is None else schedule_id,
            **_schedule(kind, start_schedule),
            "chargingRateUnit": str(rate_unit),
            "chargingSchedulePeriod": _periods(
                profile, rate_unit, periods, number_phases, discharge_limit
            ),
        }
    ]
    return result


def build_ocpp201_profile(
    profile: SessionProfile,
    *,
    purpose: str = TX_PROFILE,
    stack_level: int = 1,
    rate_unit: RateUnit = RateUnit.AMPS,
    profile_id: int | None = None,
    start_schedule: datetime | None = None,
    periods: Sequence[Period] | None = None,
    number_phases: int | None = None,
    kind: str = "Absolute",
    schedule_id: int | None = None,
) -> dict[str, Any]:
    """Return the OCPP 2.0.1 `chargingProfile` object for SetChargingProfile.

    `purpose` "ChargePointMaxProfile" is accepted as "ChargingStationMaxProfile".
    """
    return _build_2x(
        profile,
        purpose=purpose,
        stack_level=stack_level,
        rate_unit=rate_unit,
        profile_id=profile_id,
        start_schedule=start_schedule,
        periods=periods,
        number_phases=number_phases,
        kind=kind,
        schedule_id=schedule_id,
        discharge_limit=None,
    )


def build_ocpp21_profile(
    profile: SessionProfile,
    *,
    purpose: str = TX_PROFILE,
    stack_level: int = 1,
    rate_unit: RateUnit = RateUnit.AMPS,
    profile_id: int | None = None,
    start_schedule: datetime | None = None,
    periods: Sequence[Period] | None = None,
    number_phases: int | None = None,
    kind: str = "Absolute",
    schedule_id: int | None = None,
    discharge_limit: float | None = None,
    max_offline_duration_s: int | None = None,
    invalid_after_offline: bool = False,
) -> dict[str, Any]:
    """Return the OCPP 2.1 `chargingProfile` object; `discharge_limit` allows V2G.

    The discharge limit is given as a magnitude (or negative) in rate_unit and sent as the
    non-positive `dischargeLimit` of every period, as the 2.1 schema requires.
    `max_offline_duration_s` (with `invalid_after_offline`) makes the charger drop the
    profile by itself once it has been offline that long.
    """
    if max_offline_duration_s is not None and max_offline_duration_s < 0:
        raise ProfileError("max_offline_duration_s must be >= 0")
    body = _build_2x(
        profile,
        purpose=purpose,
        stack_level=stack_level,
        rate_unit=rate_unit,
        profile_id=profile_id,
        start_schedule=start_schedule,
        periods=periods,
        number_phases=number_phases,
        kind=kind,
        schedule_id=schedule_id,
        discharge_limit=discharge_limit,
        dynamic_allowed=True,
    )
    if max_offline_duration_s is not None:
        body["maxOfflineDuration"] = int(max_offline_duration_s)
        body["invalidAfterOfflineDuration"] = bool(invalid_after_offline)
    return body


def build_ocpp201_request(profile: SessionProfile, **options: Any) -> dict[str, Any]:
    """Return the whole OCPP 2.0.1 SetChargingProfileRequest (evseId 0 for a station max)."""
    body = build_ocpp201_profile(profile, **options)
    station = body["chargingProfilePurpose"] == STATION_MAX_2X
    return {"evseId": 0 if station else profile.connector_id, "chargingProfile": body}


def build_ocpp21_request(profile: SessionProfile, **options: Any) -> dict[str, Any]:
    """Return the whole OCPP 2.1 SetChargingProfileRequest (evseId 0 for a station max)."""
    body = build_ocpp21_profile(profile, **options)
    station = body["chargingProfilePurpose"] == STATION_MAX_2X
    return {"evseId": 0 if station else profile.connector_id, "chargingProfile": body}
