"""Pure helpers and the rarer 2.x messages."""

from __future__ import annotations

import argparse
import json

import pytest
import websockets
from websockets.typing import Subprotocol

from custom_components.smart_charge.csms import (
    CentralSystem,
    EVChargingNeeds,
    MeterValuesReceived,
    ReportReceived,
    normalise_status,
)
from custom_components.smart_charge.csms.charge_point import (
    parse_meter_values,
    parse_timestamp,
    precheck_frame,
    profile_limit,
)
from custom_components.smart_charge.csms.server import charger_id_from_path
from tools.simulator import main as simulate_main, run

from .conftest import EventLog


def test_normalise_status() -> None:
    assert normalise_status("Charging") == "Charging"
    assert normalise_status("EVConnected") == "Preparing"
    assert normalise_status("Idle") == "Available"
    assert normalise_status("Weird") == "Unknown"


def test_charger_id_from_path() -> None:
    assert charger_id_from_path("/CP1") == "CP1"
    assert charger_id_from_path("/ocpp/v16/CP%201?x=1") == "CP 1"
    assert charger_id_from_path("/") is None


def test_parse_meter_values_units_and_phases() -> None:
    reading = parse_meter_values(
        [
            {
                "timestamp": "2025-01-01T00:00:00",
                "sampled_value": [
                    {
                        "value": "1.5",
                        "measurand": "Power.Active.Import",
                        "unit": "kW",
                        "phase": "L1",
                    },
                    {
                        "value": "1.5",
                        "measurand": "Power.Active.Import",
                        "unit": "kW",
                        "phase": "L2",
                    },
                    {"value": "12", "measurand": "Current.Import"},
                    {"value": "2", "unit_of_measure": {"unit": "kWh", "multiplier": 1}},
                    {"value": 80, "measurand": "SoC"},
                    {"value": "bad", "measurand": "Voltage"},
                    {"measurand": "Voltage"},
                ],
            }
        ]
    )
    assert reading.power_w == 3000.0
    assert reading.current_a == (12.0,)
    assert reading.energy_wh == 20000.0
    assert reading.soc == 80
    assert reading.voltage_v is None
    assert reading.timestamp.tzinfo is not None
    assert parse_meter_values([]).current_a == ()
    assert parse_timestamp("not a time").tzinfo is not None
    assert parse_timestamp(None).tzinfo is not None


def test_profile_limit_and_precheck() -> None:
    assert profile_limit({}) is None
    assert profile_limit({"chargingSchedule": {"chargingSchedulePeriod": []}}) is None
    assert (
        precheck_frame('[2, 5, "Heartbeat", {}]', frozenset({"Heartbeat"})) is not None
    )
    assert precheck_frame('[3, "x", {}]', frozenset()) is None
    assert json.loads(precheck_frame("[]", frozenset()) or "")[2] == "RpcFrameworkError"


@pytest.mark.usefixtures("socket_enabled")
async def test_20x_needs_report_and_meter_values(
    server: CentralSystem, event_log: EventLog
) -> None:
    async with websockets.connect(
        f"ws://127.0.0.1:{server.port}/EV", subprotocols=[Subprotocol("ocpp2.0.1")]
    ) as ws:
        frames = [
            [
                "NotifyEVChargingNeeds",
                {
                    "evseId": 1,
                    "chargingNeeds": {
                        "requestedEnergyTransfer": "AC_three_phase",
                        "departureTime": "2025-01-01T08:00:00Z",
                        "acChargingParameters": {
                            "energyAmount": 20000,
                            "evMinCurrent": 6,
                            "evMaxCurrent": 16,
                            "evMaxVoltage": 400,
                        },
                    },
                },
            ],
            [
                "NotifyReport",
                {
                    "requestId": 7,
                    "generatedAt": "2025-01-01T00:00:00Z",
                    "seqNo": 0,
                    "tbc": True,
                    "reportData": [
                        {
                            "component": {"name": "SmartChargingCtrlr"},
                            "variable": {"name": "Enabled"},
                            "variableAttribute": [{"value": "true"}],
                        }
                    ],
                },
            ],
            [
                "MeterValues",
                {
                    "evseId": 1,
                    "meterValue": [
                        {
                            "timestamp": "2025-01-01T00:00:00Z",
                            "sampledValue": [{"value": 1234.5}],
                        }
                    ],
                },
            ],
            [
                "TransactionEvent",
                {
                    "eventType": "Ended",
                    "timestamp": "2025-01-01T00:00:00Z",
                    "triggerReason": "EVDeparted",
                    "seqNo": 3,
                    "transactionInfo": {"transactionId": "never-started"},
                },
            ],
        ]
        for index, (action, payload) in enumerate(frames):
            await ws.send(json.dumps([2, str(index), action, payload]))
            answer = json.loads(await ws.recv())
            assert answer[0] == 3, answer
    needs = await event_log.wait_for(EVChargingNeeds)
    assert (needs.ev_max_current_a, needs.energy_amount_wh) == (16.0, 20000.0)
    assert needs.departure_time is not None
    report = await event_log.wait_for(ReportReceived)
    assert report.more_to_follow
    assert report.report_data[0]["component"] == {"name": "SmartChargingCtrlr"}
    meter = await event_log.wait_for(MeterValuesReceived)
    assert (meter.transaction_id, meter.energy_wh) == (None, 1234.5)
    assert server.chargers["EV"].ev_needs[1].ev_max_current_a == 16.0


@pytest.mark.usefixtures("socket_enabled")
async def test_simulator_schedule_runs_bounded(server: CentralSystem) -> None:
    args = argparse.Namespace(
        url=f"ws://127.0.0.1:{server.port}",
        count=2,
        versions="1.6,2.0.1",
        prefix="S-",
        phases=3,
        car_max_a=16.0,
        meter_interval=0.05,
        session=0.2,
        idle=0.05,
        seed=1,
        duration=1.0,
    )
    await run(args)
    assert set(server.chargers) == {"S-01", "S-02"}
    assert any(state.meter for state in server.chargers.values())


def test_simulator_cli_refuses_bad_versions() -> None:
    with pytest.raises(SystemExit) as err:
        simulate_main(["--versions", "9.9"])
    assert err.value.code == 2
