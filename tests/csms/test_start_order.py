"""OCPP 1.6: the StartTransaction.conf reaches the charger before any use of its id.

A strict charger rejects a TxProfile whose transactionId it has not been told yet. The
subscriber here does what the controller does: on TransactionStarted it sends a
TxProfile with that id at once (prebuilt, so nothing delays it on our side).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
import json
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from custom_components.smart_charge.csms import (
    CentralSystem,
    ChargerEvent,
    ServerConfig,
    TransactionStarted,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")


def _tx_profile(transaction_id: str) -> dict[str, Any]:
    return {
        "chargingProfileId": 7,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": int(transaction_id),
        "chargingSchedule": {
            "startSchedule": "2025-01-01T00:00:00.000Z",
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10.0}],
        },
    }


class EagerController:
    """Sends a TxProfile the instant a transaction is reported."""

    def __init__(self) -> None:
        self.central: CentralSystem | None = None
        self.tasks: set[asyncio.Task[str]] = set()
        self.seen_in_state: list[bool] = []

    def __call__(self, event: ChargerEvent) -> None:
        if not isinstance(event, TransactionStarted) or self.central is None:
            return
        state = self.central.chargers[event.charger_id]
        self.seen_in_state.append(event.transaction_id in state.transactions)
        task = asyncio.create_task(
            self.central.set_charging_profile(
                event.charger_id,
                event.connector_id,
                _tx_profile(event.transaction_id),
                prebuilt=True,
            )
        )
        self.tasks.add(task)


@pytest.fixture
async def eager() -> AsyncIterator[tuple[CentralSystem, EagerController]]:
    controller = EagerController()
    central = CentralSystem(
        ServerConfig(host="127.0.0.1", port=0, call_timeout_s=2.0), controller
    )
    controller.central = central
    await central.start()
    yield central, controller
    for task in controller.tasks:
        task.cancel()
    await central.stop()


async def _recv(ws: ClientConnection) -> list[Any]:
    async with asyncio.timeout(5):
        frame: list[Any] = json.loads(await ws.recv())
    return frame


async def _boot(ws: ClientConnection) -> None:
    await ws.send(
        json.dumps(
            [
                2,
                "boot",
                "BootNotification",
                {"chargePointVendor": "V", "chargePointModel": "M"},
            ]
        )
    )
    assert (await _recv(ws))[:2] == [3, "boot"]


async def _start(ws: ClientConnection, unique_id: str) -> None:
    await ws.send(
        json.dumps(
            [
                2,
                unique_id,
                "StartTransaction",
                {
                    "connectorId": 1,
                    "idTag": "TAG",
                    "meterStart": 100,
                    "timestamp": "2025-01-01T00:00:00Z",
                },
            ]
        )
    )


async def test_start_transaction_conf_goes_before_the_tx_profile(
    eager: tuple[CentralSystem, EagerController],
) -> None:
    central, controller = eager
    async with websockets.connect(
        f"ws://127.0.0.1:{central.port}/STRICT16",
        subprotocols=[Subprotocol("ocpp1.6")],
    ) as ws:
        await _boot(ws)
        for attempt in range(5):  # every start, not just a lucky one
            await _start(ws, f"start-{attempt}")
            first = await _recv(ws)
            # The charger learns its transaction id first ...
            assert first[:2] == [3, f"start-{attempt}"], first
            transaction_id = first[2]["transactionId"]
            # ... and only then sees a profile that uses it.
            profile = await _recv(ws)
            assert profile[0] == 2 and profile[2] == "SetChargingProfile"
            assert profile[3]["csChargingProfiles"]["transactionId"] == transaction_id
            await ws.send(json.dumps([3, profile[1], {"status": "Accepted"}]))
            await ws.send(
                json.dumps(
                    [
                        2,
                        f"stop-{attempt}",
                        "StopTransaction",
                        {
                            "transactionId": transaction_id,
                            "meterStop": 200,
                            "timestamp": "2025-01-01T01:00:00Z",
                        },
                    ]
                )
            )
            assert (await _recv(ws))[:2] == [3, f"stop-{attempt}"]
    assert controller.seen_in_state == [True] * 5
    assert all(await asyncio.gather(*controller.tasks))


async def test_transaction_is_known_to_frames_right_after_the_conf(
    eager: tuple[CentralSystem, EagerController],
) -> None:
    """MeterValues and StopTransaction sent right after the conf find the transaction."""
    central, _ = eager
    async with websockets.connect(
        f"ws://127.0.0.1:{central.port}/QUICK16",
        subprotocols=[Subprotocol("ocpp1.6")],
    ) as ws:
        await _boot(ws)
        await _start(ws, "start")
        conf = await _recv(ws)
        assert conf[:2] == [3, "start"]
        transaction_id = conf[2]["transactionId"]
        await ws.send(
            json.dumps(
                [
                    2,
                    "mv",
                    "MeterValues",
                    {
                        "connectorId": 1,
                        "transactionId": transaction_id,
                        "meterValue": [
                            {
                                "timestamp": "2025-01-01T00:10:00Z",
                                "sampledValue": [{"value": "1100"}],
                            }
                        ],
                    },
                ]
            )
        )
        answers: dict[str, list[Any]] = {}
        while "mv" not in answers:
            frame = await _recv(ws)
            answers[frame[1]] = frame
            if frame[0] == 2:  # the profile: accept it
                await ws.send(json.dumps([3, frame[1], {"status": "Accepted"}]))
        state = central.chargers["QUICK16"]
        assert state.transactions[str(transaction_id)].energy_wh == 1000.0
        assert state.connector(1).transaction_id == str(transaction_id)
