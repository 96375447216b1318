"""Protocol answers per OCPP version: frame types, error spellings, Core messages.

Raw frames where the exact CALLERROR matters, real `ocpp` clients (which validate our
answers against the schemas) for the messages we must answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import contextlib
import json
import logging
from typing import Any

from ocpp.v16 import ChargePoint as Client16, call as call16
from ocpp.v21 import ChargePoint as Client21, call as call21
from ocpp.v201 import ChargePoint as Client201, call as call201
import pytest
import websockets
from websockets.asyncio.connection import Connection
from websockets.typing import Subprotocol

from custom_components.smart_charge.csms import (
    CallRejectedError,
    CentralSystem,
    DiagnosticsStatusChanged,
    FirmwareStatusChanged,
    MonitoringEventsReceived,
    SecurityEventReceived,
)

from .conftest import EventLog

pytestmark = pytest.mark.usefixtures("socket_enabled")

SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}
NOW = "2025-01-01T00:00:00Z"


async def _connect(server: CentralSystem, charger_id: str, version: str) -> Connection:
    return await websockets.connect(
        f"ws://127.0.0.1:{server.port}/{charger_id}",
        subprotocols=[Subprotocol(SUBPROTOCOL[version])],
    )


async def _recv(ws: Connection) -> list[Any]:
    async with asyncio.timeout(5):
        frame: list[Any] = json.loads(await ws.recv())
    return frame


async def _answer(ws: Connection, frame: str) -> list[Any]:
    await ws.send(frame)
    return await _recv(ws)


async def _heartbeat_answered(ws: Connection, unique_id: str = "hb") -> None:
    assert (await _answer(ws, f'[2, "{unique_id}", "Heartbeat", {{}}]'))[:2] == [
        3,
        unique_id,
    ]


def _warnings(
    caplog: pytest.LogCaptureFixture, charger_id: str
) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING and charger_id in record.getMessage()
    ]


# ------------------------------------------------------------ message types 5 / 6


@pytest.mark.parametrize(
    "frame",
    ['[5, "e1", "GenericError", "", {}]', '[6, "e1", "NotifyPeriodicEventStream", {}]'],
)
async def test_201_answers_message_types_5_and_6_not_supported(
    server: CentralSystem, caplog: pytest.LogCaptureFixture, frame: str
) -> None:
    async with await _connect(server, "T201", "2.0.1") as ws:
        answer = await _answer(ws, frame)
        assert answer[:3] == [4, "e1", "MessageTypeNotSupported"]
        await _heartbeat_answered(ws)
    assert len(_warnings(caplog, "T201")) == 1


async def test_21_never_answers_message_types_5_and_6(server: CentralSystem) -> None:
    async with await _connect(server, "T21", "2.1") as ws:
        await ws.send('[5, "e1", "GenericError", "", {}]')
        await ws.send('[6, "e2", "NotifyPeriodicEventStream", {"id": 1}]')
        # The first answer on the wire is the Heartbeat's: 5 and 6 got none.
        await _heartbeat_answered(ws)


async def test_16_answers_unknown_message_types_with_a_16_code(
    server: CentralSystem,
) -> None:
    async with await _connect(server, "T16", "1.6") as ws:
        for type_id in (5, 6, 7):
            answer = await _answer(ws, f'[{type_id}, "u{type_id}", "X", {{}}]')
            assert answer[:3] == [4, f"u{type_id}", "ProtocolError"]
        await _heartbeat_answered(ws)


# ------------------------------------------------------------- error spellings

_STATUS16 = {"connectorId": 1, "errorCode": "NoError", "status": "Available"}
_STATUS2X = {
    "timestamp": NOW,
    "connectorStatus": "Available",
    "evseId": 1,
    "connectorId": 1,
}


def _call(action: str, payload: dict[str, Any]) -> str:
    return json.dumps([2, "bad", action, payload])


def _without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


SCHEMA_CASES = [
    # 1.6 spells its codes its own way (OCPP-J 1.6 §4.2.3).
    (
        "1.6",
        _call("StatusNotification", _without(_STATUS16, "errorCode")),
        "OccurenceConstraintViolation",
    ),
    (
        "1.6",
        _call("StatusNotification", {**_STATUS16, "status": "Dancing"}),
        "PropertyConstraintViolation",
    ),
    (
        "1.6",
        _call(
            "BootNotification",
            {"chargePointVendor": "V" * 21, "chargePointModel": "M"},
        ),
        "PropertyConstraintViolation",
    ),
    (
        "1.6",
        _call("StatusNotification", {**_STATUS16, "connectorId": "one"}),
        "TypeConstraintViolation",
    ),
    ("1.6", _call("Heartbeat", {"unexpected": 1}), "FormationViolation"),
    ("2.0.1", _call("Heartbeat", {"unexpected": 1}), "FormatViolation"),
    (
        "2.0.1",
        _call("StatusNotification", _without(_STATUS2X, "connectorId")),
        "OccurrenceConstraintViolation",
    ),
    (
        "2.0.1",
        _call("StatusNotification", {**_STATUS2X, "connectorStatus": "Dancing"}),
        "PropertyConstraintViolation",
    ),
    (
        "2.0.1",
        _call("StatusNotification", {**_STATUS2X, "evseId": "one"}),
        "TypeConstraintViolation",
    ),
    (
        "2.1",
        _call("StatusNotification", _without(_STATUS2X, "evseId")),
        "OccurrenceConstraintViolation",
    ),
]


@pytest.mark.parametrize(("version", "frame", "code"), SCHEMA_CASES)
async def test_schema_violations_get_the_code_of_their_version(
    server: CentralSystem,
    caplog: pytest.LogCaptureFixture,
    version: str,
    frame: str,
    code: str,
) -> None:
    async with (
        await _connect(server, "VIOLATOR", version) as ws,
        await _connect(server, "NEIGHBOUR", version) as other,
    ):
        answer = await _answer(ws, frame)
        assert answer[:3] == [4, "bad", code]
        assert isinstance(answer[3], str) and 0 < len(answer[3]) <= 255
        assert isinstance(answer[4], dict)
        await _heartbeat_answered(ws)
        await _heartbeat_answered(other)
    warnings = _warnings(caplog, "VIOLATOR")
    assert len(warnings) == 1
    assert warnings[0].exc_info is None
    assert code in warnings[0].getMessage()
    assert not _warnings(caplog, "NEIGHBOUR")


@pytest.mark.parametrize(
    ("version", "code"), [("1.6", "FormationViolation"), ("2.0.1", "RpcFrameworkError")]
)
async def test_bad_json_gets_the_code_of_its_version(
    server: CentralSystem, version: str, code: str
) -> None:
    async with await _connect(server, "JSON", version) as ws:
        assert (await _answer(ws, "[2, 'x'"))[:3] == [4, "-1", code]
        await _heartbeat_answered(ws)


# ------------------------------------------------------------ answers we check


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        ({"status": "Maybe"}, "PropertyConstraintViolation"),
        ({}, "OccurenceConstraintViolation"),
        ({"status": "Accepted", "extra": 1}, "FormationViolation"),
    ],
)
@pytest.mark.parametrize("prebuilt", [True, False])
async def test_16_invalid_answers_are_rejected_with_16_codes(
    server: CentralSystem, answer: dict[str, Any], code: str, prebuilt: bool
) -> None:
    async with await _connect(server, "ANSWERS", "1.6") as ws:
        await _heartbeat_answered(ws)
        profile = {
            "chargingProfileId": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": {
                "startSchedule": "2025-01-01T00:00:00.000Z",
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0}],
            },
        }
        sending = asyncio.create_task(
            server.set_charging_profile("ANSWERS", 1, profile, prebuilt=prebuilt)
        )
        request = await _recv(ws)
        assert request[2] == "SetChargingProfile"
        await ws.send(json.dumps([3, request[1], answer]))
        with pytest.raises(CallRejectedError) as err:
            await sending
        assert err.value.code == code


async def test_callerror_with_a_code_the_library_does_not_know(
    server: CentralSystem,
) -> None:
    """A 2.x-only or vendor code in the charger's CALLERROR is still our error."""
    async with await _connect(server, "ODDCODE", "2.0.1") as ws:
        await _heartbeat_answered(ws)
        sending = asyncio.create_task(server.trigger_message("ODDCODE", "Heartbeat"))
        request = await _recv(ws)
        await ws.send(json.dumps([4, request[1], "RpcFrameworkError", "nope", {}]))
        with pytest.raises(CallRejectedError) as err:
            await sending
        assert err.value.code == "RpcFrameworkError"


# ------------------------------------------------- Core messages, real clients

_CLIENTS: dict[str, Any] = {
    "1.6": (Client16, call16),
    "2.0.1": (Client201, call201),
    "2.1": (Client21, call21),
}


@contextlib.asynccontextmanager
async def _client(
    server: CentralSystem, charger_id: str, version: str
) -> AsyncIterator[tuple[Any, Any]]:
    """A real `ocpp` ChargePoint: it validates our answers against its schemas."""
    client_class, calls = _CLIENTS[version]
    async with await _connect(server, charger_id, version) as ws:
        client = client_class(charger_id, ws)
        reader = asyncio.create_task(client.start())
        try:
            yield client, calls
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_data_transfer_is_answered_unknown_vendor(
    server: CentralSystem, version: str
) -> None:
    async with _client(server, "DT", version) as (client, calls):
        result = await client.call(
            calls.DataTransfer(vendor_id="com.example", message_id="Hello"),
            suppress=False,
        )
        assert result.status == "UnknownVendorId"


async def test_16_firmware_and_diagnostics_status(
    server: CentralSystem, event_log: EventLog
) -> None:
    async with _client(server, "FW16", "1.6") as (client, calls):
        await client.call(
            calls.FirmwareStatusNotification(status="Downloading"), suppress=False
        )
        await client.call(
            calls.DiagnosticsStatusNotification(status="Uploaded"), suppress=False
        )
    assert event_log.of(FirmwareStatusChanged) == [
        FirmwareStatusChanged("FW16", "Downloading")
    ]
    assert event_log.of(DiagnosticsStatusChanged) == [
        DiagnosticsStatusChanged("FW16", "Uploaded")
    ]


@pytest.mark.parametrize("version", ["2.0.1", "2.1"])
async def test_2x_status_notifications_and_events(
    server: CentralSystem, event_log: EventLog, version: str
) -> None:
    async with _client(server, "FW2X", version) as (client, calls):
        await client.call(
            calls.FirmwareStatusNotification(status="Installed", request_id=3),
            suppress=False,
        )
        await client.call(
            calls.LogStatusNotification(status="Uploading", request_id=4),
            suppress=False,
        )
        await client.call(
            calls.SecurityEventNotification(
                type="FirmwareUpdated", timestamp=NOW, tech_info="v2"
            ),
            suppress=False,
        )
        await client.call(
            calls.NotifyEvent(
                generated_at=NOW,
                seq_no=0,
                event_data=[
                    {
                        "event_id": 1,
                        "timestamp": NOW,
                        "trigger": "Delta",
                        "actual_value": "Faulted",
                        "event_notification_type": "HardWiredNotification",
                        "component": {"name": "Connector"},
                        "variable": {"name": "AvailabilityState"},
                    }
                ],
            ),
            suppress=False,
        )
        # A minimal NotifyEvent (no tbc) and a SecurityEvent without techInfo.
        await client.call(
            calls.SecurityEventNotification(type="StartupOfTheDevice", timestamp=NOW),
            suppress=False,
        )
    assert event_log.of(FirmwareStatusChanged) == [
        FirmwareStatusChanged("FW2X", "Installed", 3)
    ]
    assert event_log.of(DiagnosticsStatusChanged) == [
        DiagnosticsStatusChanged("FW2X", "Uploading", 4)
    ]
    security = event_log.of(SecurityEventReceived)
    assert [(e.event_type, e.tech_info) for e in security] == [
        ("FirmwareUpdated", "v2"),
        ("StartupOfTheDevice", None),
    ]
    (monitoring,) = event_log.of(MonitoringEventsReceived)
    assert (monitoring.seq_no, monitoring.more_to_follow) == (0, False)
    assert monitoring.event_data[0]["actualValue"] == "Faulted"
    assert monitoring.event_data[0]["eventNotificationType"] == (
        "HardWiredNotification"
    )
