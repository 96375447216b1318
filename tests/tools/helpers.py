"""Charging profiles as a CSMS would write them (camelCase, as on the wire)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from custom_components.smart_charge.csms.charge_point import ocpp_timestamp


def profile(
    version: str,
    profile_id: int,
    purpose: str,
    limit: float,
    *,
    stack_level: int = 0,
    unit: str = "A",
    transaction_id: str | None = None,
    kind: str = "Absolute",
    start: datetime | None = None,
    phases: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Return a one-period profile for OCPP `version`."""
    period: dict[str, Any] = {"startPeriod": 0, "limit": limit}
    if phases is not None:
        period["numberPhases"] = phases
    schedule: dict[str, Any] = {
        "chargingRateUnit": unit,
        "chargingSchedulePeriod": [period],
    }
    if kind == "Absolute":
        schedule["startSchedule"] = ocpp_timestamp(start or datetime.now(UTC))
    body: dict[str, Any] = {
        "stackLevel": stack_level,
        "chargingProfilePurpose": purpose,
        "chargingProfileKind": kind,
        **extra,
    }
    if version == "1.6":
        body["chargingProfileId"] = profile_id
        body["chargingSchedule"] = schedule
        if transaction_id is not None:
            body["transactionId"] = int(transaction_id)
    else:
        body["id"] = profile_id
        body["chargingSchedule"] = [{"id": profile_id, **schedule}]
        if transaction_id is not None:
            body["transactionId"] = transaction_id
    return body
