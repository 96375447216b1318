"""A call whose connection ends before its answer fails at once, not after its timeout.

OCPP-J answers a call on the connection it came on: once that connection is gone (the
charger dropped off, or reconnected and its old connection was closed) no answer can
come, so the server says "not connected" at once instead of waiting out the call
timeout (60 s here; each wait below is bounded well under it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from custom_components.smart_charge.csms import (
    CentralSystem,
    ChargerNotConnectedError,
    ServerConfig,
)
from custom_components.smart_charge.csms.charge_point import _unless_closed
from tools.simulator import SimulatedCharger

from .conftest import EventLog

CALL_TIMEOUT_S = 60.0
WELL_UNDER_S = 10.0


@pytest.fixture
async def patient_server(
    socket_enabled: None, event_log: EventLog
) -> AsyncIterator[CentralSystem]:
    central = CentralSystem(
        ServerConfig(host="127.0.0.1", port=0, call_timeout_s=CALL_TIMEOUT_S),
        event_log,
    )
    await central.start()
    yield central
    await central.stop()


def _profile(version: str, limit: float, transaction_id: str) -> dict[str, object]:
    schedule = {
        "startSchedule": "2025-01-01T00:00:00Z",
        "chargingRateUnit": "A",
        "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
    }
    if version == "1.6":
        return {
            "chargingProfileId": 1,
            "stackLevel": 1,
            "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Absolute",
            "transactionId": int(transaction_id),
            "chargingSchedule": schedule,
        }
    return {
        "id": 1,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": transaction_id,
        "chargingSchedule": [{"id": 1, **schedule}],
    }


async def _silent_charger(
    server: CentralSystem, version: str
) -> tuple[SimulatedCharger, str]:
    charger = SimulatedCharger(
        "QUIET", f"ws://127.0.0.1:{server.port}", version=version
    )
    await charger.start()
    transaction_id = await charger.plug_in()
    assert transaction_id is not None
    charger.ignore_actions.add("SetChargingProfile")
    return charger, transaction_id


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_a_charger_that_drops_off_ends_the_pending_call(
    patient_server: CentralSystem, version: str
) -> None:
    charger, tx = await _silent_charger(patient_server, version)
    try:
        call = asyncio.create_task(
            patient_server.set_charging_profile("QUIET", 1, _profile(version, 8.0, tx))
        )
        await charger.wait_for_call("SetChargingProfile")
        await charger.disconnect()
        async with asyncio.timeout(WELL_UNDER_S):
            with pytest.raises(ChargerNotConnectedError):
                await call
        state = patient_server.chargers["QUIET"]
        assert state.limit_sent[1].limit == 8.0  # sent, never acknowledged
        assert 1 not in state.limit_acked
    finally:
        await charger.stop()


async def test_a_reconnect_ends_the_call_on_the_old_connection(
    patient_server: CentralSystem,
) -> None:
    """The new connection serves the next call; the old one's call fails at once."""
    charger, tx = await _silent_charger(patient_server, "2.0.1")
    try:
        call = asyncio.create_task(
            patient_server.set_charging_profile("QUIET", 1, _profile("2.0.1", 8.0, tx))
        )
        await charger.wait_for_call("SetChargingProfile")
        await charger.reconnect()
        async with asyncio.timeout(WELL_UNDER_S):
            with pytest.raises(ChargerNotConnectedError):
                await call
        charger.ignore_actions.clear()
        async with asyncio.timeout(WELL_UNDER_S):
            status = await patient_server.set_charging_profile(
                "QUIET", 1, _profile("2.0.1", 10.0, tx)
            )
        assert status == "Accepted"
        assert charger.limit_in_force(1) == 10.0
    finally:
        await charger.stop()


async def test_unless_closed_answers_or_says_not_connected() -> None:
    """An answer before the close is returned; a close first, or before, is an error."""
    closed = asyncio.Event()

    async def answer(value: str, delay: float) -> str:
        await asyncio.sleep(delay)
        return value

    assert await _unless_closed(answer("Accepted", 0), closed, "CP") == "Accepted"
    assert await _unless_closed(answer("Accepted", 0), None, "CP") == "Accepted"

    never = asyncio.Event()

    async def no_answer() -> str:
        await never.wait()
        return "late"

    waiting = asyncio.create_task(_unless_closed(no_answer(), closed, "CP"))
    await asyncio.sleep(0)
    closed.set()
    with pytest.raises(ChargerNotConnectedError):
        await waiting
    with pytest.raises(ChargerNotConnectedError):
        await _unless_closed(no_answer(), closed, "CP")  # closed already
