"""Strict, non-compliant, offline and rebooting simulated chargers against the real server."""

from __future__ import annotations

import pytest

from custom_components.smart_charge.csms import (
    CentralSystem,
    MeterValuesReceived,
    TransactionStarted,
    TransactionStopped,
)
from tools.simulator import SimulatedCharger

from .conftest import EventLog, FakeClock, SimFactory
from .helpers import profile


def transaction_of(sim: SimulatedCharger, connector_id: int = 1) -> str | None:
    """The connector's transaction id (read afresh after each await)."""
    return sim.connectors[connector_id].transaction_id


async def test_strict_16_rejections(
    server: CentralSystem, make_charger: SimFactory
) -> None:
    sim = await make_charger("STRICT16", version="1.6", strict=True, amps_only=True)
    assert sim.configuration["ChargingScheduleAllowedChargingRateUnit"] == "Current"

    async def answer(cid: int, body: dict[str, object]) -> str:
        status = await server.set_charging_profile("STRICT16", cid, body)
        if status != "Accepted":
            assert sim.received_profiles[-1].sequence in sim.rejection_reasons
        return status

    tx_default = "TxDefaultProfile"
    assert await answer(0, profile("1.6", 1, tx_default, 6900, unit="W")) == "Rejected"
    assert await answer(0, profile("1.6", 1, tx_default, 6, stack_level=9)) == (
        "Rejected"
    )
    assert await answer(0, profile("1.6", 1, tx_default, 6, kind="Relative")) == (
        "Accepted"
    )
    no_start = profile("1.6", 2, tx_default, 6)
    del no_start["chargingSchedule"]["startSchedule"]
    assert await answer(1, no_start) == "Rejected"
    assert await answer(1, profile("1.6", 3, "ChargePointMaxProfile", 16)) == (
        "Rejected"
    )
    assert await answer(1, profile("1.6", 4, "TxProfile", 10)) == "Rejected"  # idle

    # Offline start: a transaction the charger has no id for yet.
    await sim.disconnect()
    assert await sim.plug_in() is None
    await sim.start(flush=False)
    assert sim.connectors[1].in_transaction
    assert sim.connectors[1].transaction_id is None
    before_conf = profile("1.6", 5, "TxProfile", 10, transaction_id="1")
    assert await answer(1, before_conf) == "Rejected"  # it does not know id 1 yet
    assert (
        "running one is None"
        in sim.rejection_reasons[sim.received_profiles[-1].sequence]
    )
    await sim.flush()
    known = transaction_of(sim)
    assert known is not None
    assert await answer(
        0, profile("1.6", 6, "TxProfile", 10, transaction_id=known)
    ) == ("Rejected")  # connector 0
    wrong = str(int(known) + 1)
    assert await answer(
        1, profile("1.6", 7, "TxProfile", 10, transaction_id=wrong)
    ) == ("Rejected")
    assert await answer(
        1, profile("1.6", 8, "TxProfile", 10, transaction_id=known)
    ) == ("Accepted")
    assert sim.limit_in_force(1) == 10.0
    assert sim.start_limit(1) == 6.0


async def test_strict_2x_rejections(
    server: CentralSystem, make_charger: SimFactory
) -> None:
    sim = await make_charger("STRICT2", version="2.0.1", strict=True, max_profiles=3)
    transaction = await sim.plug_in()

    async def answer(cid: int, body: dict[str, object]) -> str:
        return await server.set_charging_profile("STRICT2", cid, body)

    assert await answer(1, profile("2.0.1", 1, "TxProfile", 10)) == "Rejected"
    assert await answer(
        1, profile("2.0.1", 1, "TxProfile", 10, transaction_id=transaction)
    ) == ("Accepted")
    assert await answer(
        1, profile("2.0.1", 2, "TxProfile", 12, transaction_id=transaction)
    ) == ("Rejected")  # the same purpose and stack level as profile 1
    assert await answer(
        1, profile("2.0.1", 1, "TxProfile", 12, transaction_id=transaction)
    ) == ("Accepted")  # the same id replaces
    assert await answer(1, profile("2.0.1", 3, "ChargingStationMaxProfile", 16)) == (
        "Rejected"
    )
    assert await answer(0, profile("2.0.1", 4, "TxDefaultProfile", 6)) == "Accepted"
    assert await answer(0, profile("2.0.1", 5, "ChargingStationMaxProfile", 16)) == (
        "Accepted"
    )
    assert await answer(1, profile("2.0.1", 6, "TxDefaultProfile", 6)) == (
        "Rejected"
    )  # full: three profiles installed
    assert sim.limit_in_force(1) == 12.0


@pytest.mark.parametrize(
    ("options", "expected_a"),
    [({}, 10.0), ({"ignores_limits": True}, 32.0), ({"stuck_at_a": 9.0}, 9.0)],
)
async def test_meter_values_report_the_real_draw(
    server: CentralSystem,
    make_charger: SimFactory,
    event_log: EventLog,
    options: dict[str, object],
    expected_a: float,
) -> None:
    sim = await make_charger("DRAW", version="2.0.1", **options)
    transaction = await sim.plug_in()
    limit = 6.0 if "stuck_at_a" in options else 10.0
    await server.set_charging_profile(
        "DRAW", 1, profile("2.0.1", 1, "TxProfile", limit, transaction_id=transaction)
    )
    assert sim.limit_in_force(1) == limit  # what it accepted ...
    await sim.send_meter_values(1)
    reading = await event_log.wait_for(MeterValuesReceived, lambda e: e.current_a)
    assert reading.current_a == (expected_a,) * 3  # ... and what it draws
    assert reading.power_w == pytest.approx(expected_a * 230 * 3, abs=0.1)


async def test_single_phase_meter_values_on_its_grid_phase(
    make_charger: SimFactory,
) -> None:
    sim = await make_charger("MONO", version="1.6", phases=1, grid_phase="L3")
    await sim.plug_in()
    await sim.send_meter_values(1)
    sampled = sim.sent_calls("MeterValues")[-1]["meterValue"][0]["sampledValue"]
    currents = [s for s in sampled if s["measurand"] == "Current.Import"]
    assert [(s["phase"], s["value"]) for s in currents] == [("L3", "32.0")]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_offline_start_and_flush(
    server: CentralSystem, make_charger: SimFactory, event_log: EventLog, version: str
) -> None:
    sim = await make_charger(f"OFF-{version}", version=version)
    await server.set_charging_profile(
        sim.charger_id, 0, profile(version, 1, "TxDefaultProfile", 6)
    )
    await sim.disconnect()
    local = await sim.plug_in()
    assert sim.connectors[1].in_transaction
    assert sim.limit_in_force(1) == sim.start_limit(1) == 6.0  # its default
    assert len(sim.outbox) == 1
    assert event_log.of(TransactionStarted) == []
    await sim.unplug()
    assert len(sim.outbox) == 2

    await sim.start()  # boot, statuses, then the queue in order
    started = await event_log.wait_for(TransactionStarted)
    stopped = await event_log.wait_for(TransactionStopped)
    assert sim.outbox == []
    assert started.transaction_id == stopped.transaction_id
    if version == "1.6":
        assert local is None
        assert [c["transactionId"] for c in sim.sent_calls("StopTransaction")] == [
            int(started.transaction_id)
        ]
    else:
        assert started.transaction_id == local
        events = sim.sent_calls("TransactionEvent")
        assert [(e["eventType"], e["offline"]) for e in events] == [
            ("Started", True),
            ("Ended", True),
        ]


async def test_21_session(
    server: CentralSystem, make_charger: SimFactory, event_log: EventLog
) -> None:
    sim = await make_charger("V21", version="2.1", strict=True)
    assert server.ocpp_version("V21") == "2.1"
    variables = await server.get_variables("V21", [("SmartChargingCtrlr", "RateUnit")])
    assert variables[0].value == "A,W"
    transaction = await sim.plug_in()
    started = await event_log.wait_for(TransactionStarted)
    assert started.transaction_id == transaction
    body = profile(
        "2.1",
        1,
        "TxProfile",
        16,
        transaction_id=transaction,
        maxOfflineDuration=60,
        invalidAfterOfflineDuration=True,
    )
    assert await server.set_charging_profile("V21", 1, body) == "Accepted"
    (installed,) = sim.installed_profiles
    assert (installed.max_offline_s, installed.invalid_after_offline) == (60.0, True)
    composite = await server.get_composite_schedule("V21", 1)
    assert composite.schedule is not None
    assert composite.schedule["chargingSchedulePeriod"][0]["limit"] == 16.0
    await sim.send_meter_values(1)
    reading = await event_log.wait_for(MeterValuesReceived, lambda e: e.current_a)
    assert reading.current_a == (16.0, 16.0, 16.0)
    await sim.unplug()
    await event_log.wait_for(TransactionStopped)
    assert sim.installed_profiles == ()


@pytest.mark.parametrize("invalid_after", [True, False])
async def test_21_offline_expiry(
    server: CentralSystem,
    make_charger: SimFactory,
    clock: FakeClock,
    invalid_after: bool,
) -> None:
    sim = await make_charger("EXP", version="2.1", clock=clock)
    await server.set_charging_profile(
        "EXP", 0, profile("2.1", 1, "TxDefaultProfile", 6)
    )
    transaction = await sim.plug_in()
    body = profile(
        "2.1",
        2,
        "TxProfile",
        16,
        stack_level=1,
        transaction_id=transaction,
        maxOfflineDuration=60,
        invalidAfterOfflineDuration=invalid_after,
    )
    await server.set_charging_profile("EXP", 1, body)
    assert sim.limit_in_force(1) == 16.0
    await sim.disconnect()
    clock.advance(59)
    assert sim.limit_in_force(1) == 16.0  # still valid offline
    clock.advance(2)
    assert sim.limit_in_force(1) == 6.0  # expired: back to its default
    await sim.start()
    assert sim.limit_in_force(1) == (6.0 if invalid_after else 16.0)
    assert len(sim.installed_profiles) == (1 if invalid_after else 2)


async def test_reboot_keeps_defaults_and_drops_tx_profiles(
    server: CentralSystem, make_charger: SimFactory, event_log: EventLog
) -> None:
    sim = await make_charger("BOOT", version="1.6")
    await server.set_charging_profile(
        "BOOT", 0, profile("1.6", 1, "TxDefaultProfile", 6)
    )
    await server.set_charging_profile(
        "BOOT", 0, profile("1.6", 2, "ChargePointMaxProfile", 20)
    )
    first = await sim.plug_in()
    await server.set_charging_profile(
        "BOOT", 1, profile("1.6", 3, "TxProfile", 16, transaction_id=first)
    )
    assert sim.limit_in_force(1) == 16.0
    await sim.reboot()
    stopped = await event_log.wait_for(TransactionStopped)
    assert (stopped.transaction_id, stopped.reason) == (first, "Reboot")
    second = sim.connectors[1].transaction_id
    assert second is not None and second != first
    assert {p.id for p in sim.installed_profiles} == {1, 2}
    assert sim.limit_in_force(1) == 6.0
