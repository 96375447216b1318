"""Bad input: each case gets the right answer, is logged once, and spares the others."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st
import pytest
import websockets
from websockets.asyncio.connection import Connection
from websockets.typing import Subprotocol

from custom_components.smart_charge.csms import (
    CallTimeoutError,
    CentralSystem,
    ChargerConnected,
    ChargerDisconnected,
    MeterValuesReceived,
    ServerConfig,
)

from .conftest import EventLog, SimFactory

pytestmark = pytest.mark.usefixtures("socket_enabled")

SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1", "2.1": "ocpp2.1"}


async def _connect(server: CentralSystem, charger_id: str, version: str) -> Connection:
    return await websockets.connect(
        f"ws://127.0.0.1:{server.port}/{charger_id}",
        subprotocols=[Subprotocol(SUBPROTOCOL[version])],
    )


async def _answer(ws: Connection, frame: str) -> list[Any]:
    await ws.send(frame)
    async with asyncio.timeout(5):
        answer: list[Any] = json.loads(await ws.recv())
    return answer


def _warnings(
    caplog: pytest.LogCaptureFixture, charger_id: str
) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.levelno >= logging.WARNING and charger_id in record.getMessage()
    ]


FRAMES = [
    # (frame, code in 1.6, code in 2.0.1)
    ("not json", "FormationViolation", "RpcFrameworkError"),
    ('{"a": 1}', "ProtocolError", "RpcFrameworkError"),
    ('[9, "t1"]', "ProtocolError", "MessageTypeNotSupported"),
    ('[2, "t2", "Heartbeat"]', "ProtocolError", "RpcFrameworkError"),
    ('[2, "t3", "Heartbeat", []]', "FormationViolation", "FormatViolation"),
    ('[2, "t4", "MakeCoffee", {}]', "NotImplemented", "NotImplemented"),
    ('[2, "t5", "SignCertificate", {"csr": "x"}]', "NotSupported", "NotSupported"),
    # CALLRESULTERROR and SEND exist only in 2.1.
    ('[5, "t6", "GenericError", "", {}]', "ProtocolError", "MessageTypeNotSupported"),
    (
        '[6, "t7", "NotifyPeriodicEventStream", {}]',
        "ProtocolError",
        "MessageTypeNotSupported",
    ),
]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize(("frame", "code16", "code2x"), FRAMES)
async def test_bad_frames_get_the_right_callerror_logged_once(
    server: CentralSystem,
    caplog: pytest.LogCaptureFixture,
    version: str,
    frame: str,
    code16: str,
    code2x: str,
) -> None:
    charger_id = f"BAD-{version}"
    async with await _connect(server, charger_id, version) as ws:
        for _ in range(2):  # the same problem twice is one warning
            answer = await _answer(ws, frame)
            assert answer[0] == 4
            assert answer[2] == (code16 if version == "1.6" else code2x)
        # Still served.
        assert (await _answer(ws, '[2, "ok", "Heartbeat", {}]'))[:2] == [3, "ok"]
    assert len(_warnings(caplog, charger_id)) == 1


@pytest.mark.parametrize(
    ("version", "frame", "codes"),
    [
        (
            "1.6",
            '[2, "s1", "StatusNotification", {"connectorId": "one"}]',
            {"TypeConstraintViolation"},
        ),
        (
            "2.0.1",
            '[2, "s1", "Heartbeat", {"unexpected": 1}]',
            {"FormatViolation"},
        ),
    ],
)
async def test_schema_violation_is_one_warning_without_traceback(
    server: CentralSystem,
    caplog: pytest.LogCaptureFixture,
    version: str,
    frame: str,
    codes: set[str],
) -> None:
    async with await _connect(server, "SCHEMA", version) as ws:
        answer = await _answer(ws, frame)
        assert answer[0] == 4 and answer[2] in codes
    warnings = _warnings(caplog, "SCHEMA")
    assert len(warnings) == 1
    assert warnings[0].exc_info is None


async def test_response_to_a_call_never_sent_is_dropped(
    server: CentralSystem, make_charger: SimFactory, caplog: pytest.LogCaptureFixture
) -> None:
    charger = await make_charger("STRAY", version="1.6")
    await charger.send_raw('[3, "never-sent", {"status": "Accepted"}]')
    await charger.send_raw('[4, "never-sent-either", "GenericError", "", {}]')
    await charger.send_raw("[3, 42]")  # malformed response: dropped too
    # The stray answers were not queued: the next real call gets its own answer.
    assert await server.trigger_message("STRAY", "StatusNotification", 1) == "Accepted"
    assert any("never sent" in r.getMessage() for r in _warnings(caplog, "STRAY"))
    assert not [r for r in caplog.records if "unknown unique id" in r.getMessage()]


async def test_late_answer_after_timeout_is_dropped(
    socket_enabled: None, event_log: EventLog
) -> None:
    from tools.simulator import SimulatedCharger

    central = CentralSystem(
        ServerConfig(host="127.0.0.1", port=0, call_timeout_s=0.3), event_log
    )
    await central.start()
    charger = SimulatedCharger(
        "LATE", f"ws://127.0.0.1:{central.port}", version="2.0.1"
    )
    await charger.start()
    charger.ignore_actions.add("Reset")
    try:
        with pytest.raises(CallTimeoutError):
            await central.reset("LATE")
        late = await charger.wait_for_call("Reset")
        await charger.send_raw(json.dumps([3, late[1], {"status": "Accepted"}]))
        charger.ignore_actions.clear()
        assert await central.trigger_message("LATE", "Heartbeat") == "Accepted"
    finally:
        await charger.stop()
        await central.stop()


@pytest.mark.parametrize("offered", [None, ["ocpp9.9"]])
async def test_missing_or_wrong_subprotocol_is_closed(
    server: CentralSystem,
    event_log: EventLog,
    caplog: pytest.LogCaptureFixture,
    offered: list[str] | None,
) -> None:
    for _ in range(2):
        async with websockets.connect(
            f"ws://127.0.0.1:{server.port}/NOPROTO",
            subprotocols=offered,  # type: ignore[arg-type]
        ) as ws:
            assert ws.subprotocol is None  # the handshake completes without one ...
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()  # ... and the server closes at once
            assert ws.close_code == 1002
    assert not event_log.of(ChargerConnected)
    assert len(_warnings(caplog, "NOPROTO")) == 1


async def test_oversized_frame_closes_only_that_charger(
    socket_enabled: None, event_log: EventLog, caplog: pytest.LogCaptureFixture
) -> None:
    from tools.simulator import SimulatedCharger

    central = CentralSystem(
        ServerConfig(host="127.0.0.1", port=0, max_frame_bytes=4096), event_log
    )
    await central.start()
    good = SimulatedCharger("FINE", f"ws://127.0.0.1:{central.port}")
    await good.start()
    try:
        async with await _connect(central, "HUGE", "1.6") as ws:
            await ws.send(json.dumps([2, "big", "Heartbeat", {"x": "y" * 10_000}]))
            with pytest.raises(websockets.ConnectionClosed):
                await ws.recv()
            assert ws.close_code == 1009
        await event_log.wait_for(ChargerDisconnected, lambda e: e.charger_id == "HUGE")
        await good.plug_in()
        await good.send_meter_values()
        await event_log.wait_for(MeterValuesReceived, lambda e: e.charger_id == "FINE")
        assert len(_warnings(caplog, "HUGE")) == 1
    finally:
        await good.stop()
        await central.stop()


async def test_connect_disconnect_loop_spares_the_others(
    server: CentralSystem, event_log: EventLog, make_charger: SimFactory
) -> None:
    steady = await make_charger("STEADY", version="2.0.1")
    await steady.plug_in()

    async def flap() -> None:
        for _ in range(25):
            ws = await _connect(server, "FLAP", "1.6")
            await ws.close()

    async def keep_talking() -> int:
        answered = 0
        for _ in range(25):
            await steady.heartbeat()
            await steady.send_meter_values()
            answered += 1
        return answered

    _, answered = await asyncio.gather(flap(), keep_talking())
    assert answered == 25
    await event_log.until(lambda: not server.connected("FLAP"))
    assert server.connected("STEADY")
    flaps = [e for e in event_log.of(ChargerConnected) if e.charger_id == "FLAP"]
    assert len(flaps) == 25
    assert len(server._tasks) < 5


# ----------------------------------------------------------------------- fuzzing

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
_actions = st.sampled_from(
    [
        "BootNotification",
        "Heartbeat",
        "StatusNotification",
        "MeterValues",
        "StartTransaction",
        "StopTransaction",
        "TransactionEvent",
        "Authorize",
        "NotifyReport",
        "DataTransfer",
        "FirmwareStatusNotification",
        "DiagnosticsStatusNotification",
        "LogStatusNotification",
        "SecurityEventNotification",
        "NotifyEvent",
        "Nope",
    ]
)
_frames = st.one_of(
    st.text(max_size=200),
    _json.map(json.dumps),
    st.tuples(
        st.sampled_from([2, 3, 4, 5, 6, 7, "2", True]),
        st.text(max_size=10),
        _actions,
        _json,
    ).map(lambda parts: json.dumps(list(parts))),
    st.tuples(
        _actions,
        st.dictionaries(
            st.sampled_from(
                [
                    "connectorId",
                    "evseId",
                    "status",
                    "errorCode",
                    "meterValue",
                    "idTag",
                    "transactionId",
                    "timestamp",
                    "reason",
                    "eventType",
                    "transactionInfo",
                    "seqNo",
                    "triggerReason",
                    "vendorId",
                    "type",
                    "requestId",
                    "eventData",
                    "generatedAt",
                ]
            ),
            _json,
            max_size=6,
        ),
    ).map(lambda parts: json.dumps([2, "fuzz", parts[0], parts[1]])),
)


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(frame=_frames)
async def test_fuzzed_frames_never_break_the_connection(
    server: CentralSystem, version: str, frame: str
) -> None:
    """Whatever arrives, the next Heartbeat on the same connection is answered."""
    async with await _connect(server, f"FUZZ-{version}", version) as ws:
        await ws.send(frame)
        await ws.send('[2, "probe", "Heartbeat", {}]')
        async with asyncio.timeout(5):
            while True:
                answer = json.loads(await ws.recv())
                assert isinstance(answer, list) and answer[0] in (3, 4)
                if answer[1] == "probe":
                    assert answer[0] == 3
                    break
