"""The central system against real ocpp 1.6 / 2.0.1 clients over loopback."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.typing import Subprotocol

from custom_components.smart_charge.csms import (
    BootReceived,
    CallRejectedError,
    CallTimeoutError,
    CentralSystem,
    ChargerConnected,
    ChargerDisconnected,
    ChargerNotConnectedError,
    MeterValuesReceived,
    NotSupportedByVersionError,
    ServerConfig,
    ServerStartError,
    StatusChanged,
    TransactionStarted,
    TransactionStopped,
)
from tools.simulator import SimulatedCharger

from .conftest import EventLog, SimFactory

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def _plug_in(
    charger: SimulatedCharger, connector_id: int = 1, *, id_tag: str = "SIMTAG"
) -> str:
    """Start a transaction on a connected charger; return its id."""
    transaction_id = await charger.plug_in(connector_id, id_tag=id_tag)
    assert transaction_id is not None  # online, the server gives the id at once
    return transaction_id


def _profile16(limit: float, transaction_id: int) -> dict[str, object]:
    return {
        "chargingProfileId": 1,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": transaction_id,
        "chargingSchedule": {
            "startSchedule": "2025-01-01T00:00:00Z",
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
        },
    }


def _profile201(limit: float, transaction_id: str) -> dict[str, object]:
    return {
        "id": 1,
        "stackLevel": 1,
        "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Absolute",
        "transactionId": transaction_id,
        "chargingSchedule": [
            {
                "id": 1,
                "startSchedule": "2025-01-01T00:00:00Z",
                "chargingRateUnit": "A",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}],
            }
        ],
    }


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_boot_transaction_meter_values(
    server: CentralSystem, event_log: EventLog, make_charger: SimFactory, version: str
) -> None:
    charger = await make_charger("CP-1", version=version)
    assert server.connected("CP-1")
    connected = await event_log.wait_for(ChargerConnected)
    assert connected.ocpp_version == version
    boot = await event_log.wait_for(BootReceived)
    assert (boot.vendor, boot.serial, boot.firmware) == (
        "SmartChargeSim",
        "SN-CP-1",
        "1.0.0",
    )
    await charger.heartbeat()
    await charger.authorize("TAG")

    transaction_id = await _plug_in(charger, 1, id_tag="TAG")
    started = await event_log.wait_for(TransactionStarted)
    assert (started.connector_id, started.transaction_id) == (1, transaction_id)
    assert started.id_tag == "TAG"
    state = server.chargers["CP-1"]
    assert state.transactions[transaction_id].connector_id == 1
    assert state.boot is not None and state.boot.model.startswith("Sim")

    await charger.send_meter_values(1)
    meter = await event_log.wait_for(MeterValuesReceived, lambda e: e.power_w)
    assert meter.transaction_id == transaction_id
    assert meter.power_w == pytest.approx(32 * 230 * 3)
    assert meter.current_a == (32.0, 32.0, 32.0)
    assert meter.voltage_v == 230.0
    assert state.meter[1].current_a == (32.0, 32.0, 32.0)

    await charger.unplug(1)
    stopped = await event_log.wait_for(TransactionStopped)
    assert (stopped.transaction_id, stopped.connector_id) == (transaction_id, 1)
    assert stopped.meter_stop_wh is not None
    assert not state.transactions
    status = await event_log.wait_for(
        StatusChanged, lambda e: e.status == "Available" and e.connector_id == 1
    )
    assert status.charger_id == "CP-1"


async def test_transaction_ids_are_unique_across_chargers(
    server: CentralSystem, make_charger: SimFactory
) -> None:
    first = await make_charger("A")
    second = await make_charger("B")
    ids = {await _plug_in(first), await _plug_in(second)}
    assert len(ids) == 2
    assert all(tx.isdigit() for tx in ids)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_outgoing_calls(
    server: CentralSystem, make_charger: SimFactory, version: str
) -> None:
    charger = await make_charger("CP-2", version=version)
    tx = await _plug_in(charger)
    profile = _profile16(10.5, int(tx)) if version == "1.6" else _profile201(10.5, tx)
    assert await server.set_charging_profile("CP-2", 1, profile) == "Accepted"
    received = await charger.wait_for_profile()
    assert received.limit == 10.5 and received.transaction_id == tx
    state = server.chargers["CP-2"]
    assert state.limit_acked[1].limit == 10.5

    schedule = await server.get_composite_schedule("CP-2", 1, 600)
    assert schedule.status == "Accepted"
    assert schedule.schedule is not None
    assert schedule.schedule["chargingSchedulePeriod"][0]["limit"] == 10.5

    assert await server.clear_charging_profile("CP-2", connector_id=1) == "Accepted"
    assert 1 not in state.limit_acked
    assert await server.trigger_message("CP-2", "MeterValues", 1) == "Accepted"
    assert await server.reset("CP-2") == "Accepted"
    if version == "1.6":
        config = await server.get_configuration(
            "CP-2", ["ChargeProfileMaxStackLevel", "Nope"]
        )
        assert config.values == {"ChargeProfileMaxStackLevel": "8"}
        assert config.unknown == ("Nope",)
        assert (
            await server.change_configuration("CP-2", "MeterValueSampleInterval", "5")
            == "Accepted"
        )
        with pytest.raises(NotSupportedByVersionError):
            await server.get_variables("CP-2", [("SmartChargingCtrlr", "Enabled")])
        with pytest.raises(NotSupportedByVersionError):
            await server.set_variables("CP-2", [("A", "B", "C")])
    else:
        results = await server.get_variables(
            "CP-2", [("SmartChargingCtrlr", "Enabled"), ("X", "Y")]
        )
        assert [(r.status, r.value) for r in results] == [
            ("Accepted", "true"),
            ("UnknownVariable", None),
        ]
        written = await server.set_variables(
            "CP-2", [("SampledDataCtrlr", "TxUpdatedInterval", "5")]
        )
        assert written[0].status == "Accepted"
        with pytest.raises(NotSupportedByVersionError):
            await server.get_configuration("CP-2")
        with pytest.raises(NotSupportedByVersionError):
            await server.change_configuration("CP-2", "A", "B")

    assert await server.remote_stop("CP-2", tx) == "Accepted"
    assert await server.remote_start("CP-2", "REMOTE", 1) == "Accepted"


async def test_unanswered_call_times_out_without_blocking_incoming(
    server: CentralSystem, event_log: EventLog, make_charger: SimFactory
) -> None:
    charger = await make_charger("SLOW", version="1.6")
    tx = await _plug_in(charger)
    charger.ignore_actions.add("SetChargingProfile")
    call = asyncio.create_task(
        server.set_charging_profile("SLOW", 1, _profile16(8.0, int(tx)))
    )
    await charger.wait_for_call("SetChargingProfile")
    # While the server waits, the charger's own traffic is still handled.
    await charger.send_meter_values()
    await event_log.wait_for(MeterValuesReceived)
    with pytest.raises(CallTimeoutError):
        await call
    state = server.chargers["SLOW"]
    assert state.limit_sent[1].limit == 8.0
    assert 1 not in state.limit_acked


async def test_rejected_profile_is_not_acknowledged(
    server: CentralSystem, make_charger: SimFactory
) -> None:
    charger = await make_charger("REJ", version="2.0.1", profile_status="Rejected")
    tx = await _plug_in(charger)
    assert await server.set_charging_profile("REJ", 1, _profile201(6, tx)) == "Rejected"
    assert 1 not in server.chargers["REJ"].limit_acked


async def test_callerror_answer_raises(
    server: CentralSystem, make_charger: SimFactory
) -> None:
    await make_charger("ERR", version="1.6")
    # The simulator has no handler for UnlockConnector... but we never send it. A bad
    # transaction id type is rejected by the charger's schema check instead.
    with pytest.raises(CallRejectedError) as err:
        await server.set_charging_profile("ERR", 1, {"chargingProfileId": 1})
    assert err.value.charger_id == "ERR"


async def test_not_connected(server: CentralSystem) -> None:
    with pytest.raises(ChargerNotConnectedError):
        await server.reset("GHOST")
    assert not server.connected("GHOST")
    assert server.ocpp_version("GHOST") is None


async def test_prefix_path_and_version_21(
    server: CentralSystem, event_log: EventLog
) -> None:
    async with websockets.connect(
        f"ws://127.0.0.1:{server.port}/ocpp/CP%2021",
        subprotocols=[Subprotocol("ocpp2.1")],
    ) as ws:
        connected = await event_log.wait_for(ChargerConnected)
        assert (connected.charger_id, connected.ocpp_version) == ("CP 21", "2.1")
        await ws.send(
            json.dumps(
                [
                    2,
                    "1",
                    "BootNotification",
                    {
                        "chargingStation": {"model": "M", "vendorName": "V"},
                        "reason": "PowerUp",
                    },
                ]
            )
        )
        answer = json.loads(await ws.recv())
        assert answer[0] == 3 and answer[2]["status"] == "Accepted"
        # A 2.1 action we do not handle, then one that does not exist.
        await ws.send(json.dumps([2, "2", "SignCertificate", {"csr": "x"}]))
        answer = json.loads(await ws.recv())
        assert answer[:3] == [4, "2", "NotSupported"]
        await ws.send(json.dumps([2, "3", "MakeCoffee", {}]))
        answer = json.loads(await ws.recv())
        assert answer[:3] == [4, "3", "NotImplemented"]
    await event_log.wait_for(ChargerDisconnected)
    assert server.ocpp_version("CP 21") == "2.1"


async def test_refuses_missing_id(server: CentralSystem) -> None:
    with pytest.raises(websockets.InvalidStatus) as err:
        await websockets.connect(
            f"ws://127.0.0.1:{server.port}/", subprotocols=[Subprotocol("ocpp1.6")]
        )
    assert err.value.response.status_code == 404


async def test_prefers_the_newest_offered_version(
    server: CentralSystem, event_log: EventLog
) -> None:
    async with websockets.connect(
        f"ws://127.0.0.1:{server.port}/MULTI",
        subprotocols=[Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")],
    ) as ws:
        assert ws.subprotocol == "ocpp2.0.1"
        connected = await event_log.wait_for(ChargerConnected)
        assert connected.ocpp_version == "2.0.1"


async def test_reconnect_keeps_transaction(
    server: CentralSystem, event_log: EventLog, make_charger: SimFactory
) -> None:
    charger = await make_charger("RC", version="1.6")
    tx = await _plug_in(charger)
    await charger.reconnect()
    assert server.connected("RC")
    assert tx in server.chargers["RC"].transactions
    # The replaced connection closing does not report the charger as gone.
    assert not event_log.of(ChargerDisconnected)
    assert len(event_log.of(ChargerConnected)) == 2
    await charger.unplug()
    stopped = await event_log.wait_for(TransactionStopped)
    assert stopped.connector_id == 1

    await charger.disconnect()
    await event_log.wait_for(ChargerDisconnected)
    assert not server.connected("RC")


async def test_stop_frees_port_and_closes_connections(
    socket_enabled: None, event_log: EventLog
) -> None:
    central = CentralSystem(ServerConfig(host="127.0.0.1", port=0), event_log)
    with pytest.raises(Exception, match="not running"):
        _ = central.port
    await central.start()
    await central.start()  # idempotent
    port = central.port
    from tools.simulator import SimulatedCharger

    charger = SimulatedCharger("S", f"ws://127.0.0.1:{port}")
    await charger.start()
    busy = CentralSystem(ServerConfig(host="127.0.0.1", port=port), event_log)
    with pytest.raises(ServerStartError):
        await busy.start()
    await central.stop()
    assert not central.running
    await event_log.wait_for(ChargerDisconnected)
    again = CentralSystem(ServerConfig(host="127.0.0.1", port=port), event_log)
    await again.start()
    assert again.port == port
    await again.stop()
    await charger.stop()


async def test_subscriber_errors_are_contained(socket_enabled: None) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("boom")

    central = CentralSystem(ServerConfig(host="127.0.0.1", port=0), broken)
    await central.start()
    charger = SimulatedCharger("S", f"ws://127.0.0.1:{central.port}")
    await charger.start()
    await _plug_in(charger)
    assert central.chargers["S"].transactions
    await charger.stop()
    await central.stop()
