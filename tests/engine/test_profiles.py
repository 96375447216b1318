"""OCPP profile builders: conformance rules and the ocpp library's own JSON schemas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings, strategies as st
from jsonschema import Draft4Validator, Draft6Validator, FormatChecker
import ocpp
from ocpp.messages import Call, _validate_payload
import pytest

from custom_components.smart_charge.engine import (
    ProfileError,
    SessionProfile,
    build_ocpp16_profile,
    build_ocpp16_request,
    build_ocpp21_profile,
    build_ocpp21_request,
    build_ocpp201_profile,
    build_ocpp201_request,
)
from custom_components.smart_charge.units import RateUnit

SCHEMAS = Path(ocpp.__file__).parent
START = datetime(2025, 5, 1, 8, 30, tzinfo=timezone(timedelta(hours=2)))


def _schema(path: str, *, decimal: bool = False) -> Any:
    text = (SCHEMAS / path).read_text(encoding="utf-8-sig")
    return json.loads(text, parse_float=Decimal) if decimal else json.loads(text)


V16 = Draft4Validator(
    _schema("v16/schemas/SetChargingProfile.json", decimal=True),
    format_checker=FormatChecker(),
)
V201 = Draft6Validator(
    _schema("v201/schemas/SetChargingProfileRequest.json"),
    format_checker=FormatChecker(),
)
V21 = Draft6Validator(
    _schema("v21/schemas/SetChargingProfileRequest.json"),
    format_checker=FormatChecker(),
)


def validate(version: str, payload: dict[str, Any]) -> None:
    """Validate with jsonschema directly and through the ocpp library's own validator."""
    if version == "1.6":
        V16.validate(json.loads(json.dumps(payload), parse_float=Decimal))
    else:
        (V201 if version == "2.0.1" else V21).validate(payload)
    _validate_payload(
        Call(unique_id="1", action="SetChargingProfile", payload=payload), version
    )


def make_profile(**overrides: Any) -> SessionProfile:
    values: dict[str, Any] = {
        "transaction_id": 42,
        "client_id": "CP-1",
        "connector_id": 2,
        "allocated_kw": 11.04,
        "allocated_w": 11040,
        "allocated_amps_per_phase": 16.0,
        "phases": 3,
        "paused": False,
    }
    values.update(overrides)
    return SessionProfile(**values)


def test_ocpp16_tx_profile_shape() -> None:
    body = build_ocpp16_profile(make_profile(), start_schedule=START)
    assert body == {
        "chargingProfileId": 3002,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": 42,
        "chargingSchedule": {
            "startSchedule": "2025-05-01T06:30:00Z",
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [
                {"startPeriod": 0, "limit": 16.0, "numberPhases": 3}
            ],
        },
    }
    validate("1.6", build_ocpp16_request(make_profile(), start_schedule=START))


@pytest.mark.parametrize(
    "purpose",
    [
        "TxProfile",
        "TxDefaultProfile",
        "ChargePointMaxProfile",
        "ChargingStationMaxProfile",
    ],
)
@pytest.mark.parametrize("unit", ["A", "W"])
def test_every_purpose_validates(purpose: str, unit: str) -> None:
    profile = make_profile(transaction_id="77")
    periods = (
        [(0, 16.07), (900, 10.0), (3600, 0.0)]
        if unit == "A"
        else [(0, 11040.9), (60, 7000)]
    )
    stack = 0 if "Max" in purpose else 2
    p16 = build_ocpp16_request(
        profile,
        purpose=purpose,
        stack_level=stack,
        rate_unit=unit,
        periods=periods,
        start_schedule=START,
    )
    validate("1.6", p16)
    p201 = build_ocpp201_request(
        profile,
        purpose=purpose,
        stack_level=stack,
        rate_unit=unit,
        periods=periods,
        start_schedule=START,
    )
    validate("2.0.1", p201)
    p21 = build_ocpp21_request(
        profile,
        purpose=purpose,
        stack_level=stack,
        rate_unit=unit,
        periods=periods,
        start_schedule=START,
        discharge_limit=-5000 if unit == "W" else 8,
    )
    validate("2.1", p21)
    station = "Max" in purpose
    assert p16["connectorId"] == (0 if station else 2)
    assert p201["evseId"] == p21["evseId"] == (0 if station else 2)
    assert ("transactionId" in p16["csChargingProfiles"]) == (purpose == "TxProfile")
    assert ("transactionId" in p201["chargingProfile"]) == (purpose == "TxProfile")
    if purpose == "TxProfile":
        assert p16["csChargingProfiles"]["transactionId"] == 77
        assert p201["chargingProfile"]["transactionId"] == "77"
    expected16 = "ChargePointMaxProfile" if station else purpose
    expected2x = "ChargingStationMaxProfile" if station else purpose
    assert p16["csChargingProfiles"]["chargingProfilePurpose"] == expected16
    assert p201["chargingProfile"]["chargingProfilePurpose"] == expected2x
    limits = [
        p["limit"]
        for p in p201["chargingProfile"]["chargingSchedule"][0][
            "chargingSchedulePeriod"
        ]
    ]
    assert limits == ([16.0, 10.0, 0.0] if unit == "A" else [11040, 7000])
    discharge = p21["chargingProfile"]["chargingSchedule"][0]["chargingSchedulePeriod"][
        0
    ]["dischargeLimit"]
    assert discharge == (-5000 if unit == "W" else -8.0)


def test_watts_default_and_defaults() -> None:
    body = build_ocpp201_profile(
        make_profile(),
        rate_unit=RateUnit.WATTS,
        profile_id=9,
        schedule_id=4,
        number_phases=1,
    )
    schedule = body["chargingSchedule"][0]
    assert body["id"] == 9 and schedule["id"] == 4
    assert schedule["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 11040, "numberPhases": 1}
    ]
    assert schedule["startSchedule"].endswith("Z")
    assert (
        build_ocpp21_profile(make_profile(), purpose="ChargePointMaxProfile")["id"]
        == 1000
    )


def test_relative_profiles() -> None:
    body = build_ocpp16_profile(
        make_profile(), purpose="TxDefaultProfile", kind="Relative"
    )
    assert "startSchedule" not in body["chargingSchedule"]
    validate("1.6", {"connectorId": 2, "csChargingProfiles": body})
    with pytest.raises(ProfileError, match="Relative"):
        build_ocpp16_profile(make_profile(), kind="Relative", start_schedule=START)
    with pytest.raises(ProfileError, match="cannot be Relative"):
        build_ocpp201_profile(
            make_profile(), purpose="ChargingStationMaxProfile", kind="Relative"
        )


@pytest.mark.parametrize(
    ("kwargs", "profile", "message"),
    [
        ({"purpose": "ChargingStationExternalConstraints"}, {}, "purpose"),
        ({"stack_level": -1}, {}, "stack level"),
        ({"kind": "Recurring"}, {}, "kind"),
        ({}, {"transaction_id": ""}, "transaction id"),
        ({}, {"connector_id": 0}, "connector"),
        ({"rate_unit": "kW"}, {}, "rate unit"),
        ({"periods": []}, {}, "at least one"),
        ({"periods": [(10, 5.0)]}, {}, "start at 0"),
        ({"periods": [(0, 5.0), (0, 6.0)]}, {}, "increasing"),
        ({"periods": [(0, 5.0), (-5, 6.0)]}, {}, "integer"),
        ({"periods": [(0, -1.0)]}, {}, "≥ 0"),
        ({"periods": [(0, float("nan"))]}, {}, "finite"),
        ({"number_phases": 4}, {}, "numberPhases"),
        ({"start_schedule": datetime(2025, 1, 1)}, {}, "timezone"),  # noqa: DTZ001
    ],
)
def test_conformance_violations(
    kwargs: dict[str, Any], profile: dict[str, Any], message: str
) -> None:
    for builder in (build_ocpp16_profile, build_ocpp201_profile, build_ocpp21_profile):
        with pytest.raises(ProfileError, match=message):
            builder(make_profile(**profile), **kwargs)


def test_transaction_id_formats() -> None:
    with pytest.raises(ProfileError, match="integers"):
        build_ocpp16_profile(make_profile(transaction_id="abc"))
    with pytest.raises(ProfileError, match="36"):
        build_ocpp201_profile(make_profile(transaction_id="x" * 37))
    # Not a TxProfile: any id is fine.
    build_ocpp16_profile(make_profile(transaction_id="abc"), purpose="TxDefaultProfile")


@settings(max_examples=150, deadline=None)
@given(
    amps=st.floats(0, 80),
    watts=st.floats(0, 50_000),
    phases=st.sampled_from([1, 3]),
    gaps=st.lists(st.integers(1, 7200), max_size=5),
    unit=st.sampled_from(["A", "W"]),
    purpose=st.sampled_from(["TxProfile", "TxDefaultProfile", "ChargePointMaxProfile"]),
    tx=st.integers(1, 2**31 - 1),
    stack=st.integers(0, 8),
)
def test_random_profiles_always_validate(
    amps: float,
    watts: float,
    phases: int,
    gaps: list[int],
    unit: str,
    purpose: str,
    tx: int,
    stack: int,
) -> None:
    profile = make_profile(
        transaction_id=tx,
        allocated_amps_per_phase=amps,
        allocated_w=int(watts),
        phases=phases,
    )
    starts = [0]
    for gap in gaps:
        starts.append(starts[-1] + gap)
    limit = amps if unit == "A" else watts
    periods = [(start, limit * (0.5 + 0.1 * n)) for n, start in enumerate(starts)]
    options: dict[str, Any] = {
        "purpose": purpose,
        "stack_level": stack,
        "rate_unit": unit,
        "start_schedule": START,
    }
    for version, build in (
        ("1.6", build_ocpp16_request),
        ("2.0.1", build_ocpp201_request),
        ("2.1", build_ocpp21_request),
    ):
        for chosen in (None, periods):
            payload = build(profile, periods=chosen, **options)
            validate(version, payload)
            body = payload.get("csChargingProfiles") or payload["chargingProfile"]
            schedule = body["chargingSchedule"]
            schedule = schedule[0] if isinstance(schedule, list) else schedule
            sent = schedule["chargingSchedulePeriod"]
            wanted = chosen or [(0, limit)]
            assert [p["startPeriod"] for p in sent] == [s for s, _ in wanted]
            for period, (_, raw) in zip(sent, wanted, strict=True):
                assert period["limit"] <= raw + 1e-6  # rounded down
                assert raw - period["limit"] < (0.1 if unit == "A" else 1) + 1e-6
                if unit == "W":
                    assert isinstance(period["limit"], int)
                else:
                    assert Decimal(repr(period["limit"])) % Decimal("0.1") == 0


def test_start_schedule_default_is_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    body = build_ocpp16_profile(make_profile())
    sent = datetime.fromisoformat(body["chargingSchedule"]["startSchedule"])
    assert sent >= before


def test_ocpp21_offline_duration_is_sent_and_valid() -> None:
    payload = build_ocpp21_request(
        make_profile(),
        start_schedule=START,
        max_offline_duration_s=60,
        invalid_after_offline=True,
    )
    validate("2.1", payload)
    body = payload["chargingProfile"]
    assert body["maxOfflineDuration"] == 60
    assert body["invalidAfterOfflineDuration"] is True
    plain = build_ocpp21_profile(make_profile(), start_schedule=START)
    assert "maxOfflineDuration" not in plain
    with pytest.raises(ProfileError):
        build_ocpp21_profile(make_profile(), max_offline_duration_s=-1)


def test_ocpp21_dynamic_profile_is_valid_and_2x_only() -> None:
    """A Dynamic TxProfile (2.1): no startSchedule; 1.6 and 2.0.1 do not know the kind."""
    payload = build_ocpp21_request(
        make_profile(),
        kind="Dynamic",
        start_schedule=START,
        max_offline_duration_s=60,
        invalid_after_offline=True,
    )
    validate("2.1", payload)
    body = payload["chargingProfile"]
    assert body["chargingProfileKind"] == "Dynamic"
    assert "startSchedule" not in body["chargingSchedule"][0]
    for builder in (build_ocpp16_profile, build_ocpp201_profile):
        with pytest.raises(ProfileError, match="kind"):
            builder(make_profile(), kind="Dynamic")
