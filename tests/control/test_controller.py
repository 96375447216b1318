"""SiteController: the engine's limits applied to simulated chargers over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from custom_components.smart_charge.control import SiteController
from custom_components.smart_charge.csms.events import EVChargingNeeds
from tests.control.conftest import VOLTS_3P, Rig, tx
from tools.simulator import ReceivedProfile

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def test_three_sessions_share_22kw_and_stop_redistributes(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    rig = await rig_factory(22.0)
    one = await rig.add("CP1", version="1.6")
    two = await rig.add("CP2", version="2.0.1")
    three = await rig.add("CP3", version="1.6")
    for charger in (one, two, three):
        await charger.plug_in()
        await rig.controller.rebalance()
    limits = rig.limits()
    assert len(limits) == 3
    assert rig.held_w() <= rig.budget_w
    assert len(set(limits.values())) == 1  # equal share
    assert limits["CP1"] == pytest.approx(10.0)
    # Every profile is a TxProfile of the running transaction, one decimal, amps.
    for charger in (one, two, three):
        last = tx(charger)[-1]
        assert last.purpose == "TxProfile"
        assert last.transaction_id == charger.connectors[1].transaction_id
        assert last.rate_unit == "A"
        assert round(last.limit, 1) == last.limit
        assert "startSchedule" in last.schedule
    snapshot = rig.controller.snapshot()
    assert snapshot.panels["main"].active_sessions == 3
    assert snapshot.panels["main"].allocated_kw <= 20.9 + 1e-9

    before = len(tx(one))
    await three.unplug()
    await rig.controller.rebalance()
    limits = rig.limits()
    assert set(limits) == {"CP1", "CP2"}
    assert limits["CP1"] == limits["CP2"] == pytest.approx(15.1)
    assert rig.held_w() <= rig.budget_w
    assert len(tx(one)) == before + 1


async def test_decreases_acknowledged_before_increases(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    rig = await rig_factory(22.0)
    slow = await rig.add("SLOW", version="1.6", profile_delay_s=0.3)
    fast = await rig.add("FAST", version="2.0.1")
    await slow.plug_in()
    await fast.plug_in()
    await rig.controller.rebalance()
    assert rig.limits() == {"SLOW": 15.1, "FAST": 15.1}
    # Cap SLOW at 8 A: SLOW goes down, FAST goes up into the freed power.
    configs = dict(rig.controller.chargers)
    configs["SLOW"] = replace(configs["SLOW"], max_current_a=8.0)
    rig.controller.update_site(rig.site, configs)
    await rig.controller.rebalance()
    decrease = tx(slow)[-1]
    increase = tx(fast)[-1]
    assert decrease.limit == 8.0
    assert increase.limit > 15.1
    assert decrease.sequence < increase.sequence
    # The increase was only sent once the slow charger had answered the decrease.
    assert increase.received_at >= slow.profile_answered_at[decrease.sequence]
    assert rig.held_w() <= rig.budget_w


async def test_unchanged_limit_not_resent_and_reconnect_keeps_session(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    rig = await rig_factory(22.0)
    charger = await rig.add("CP1", version="1.6")
    transaction = await charger.plug_in()
    await rig.controller.rebalance()
    assert len(tx(charger)) == 1
    await rig.controller.rebalance()
    await charger.reconnect()
    await rig.controller.rebalance()
    assert len(tx(charger)) == 1
    assert rig.controller.sessions() == [("CP1", 1, transaction)]
    assert rig.server.chargers["CP1"].limit_acked[1].limit == 30.2


async def test_not_answering_charger_keeps_its_limit_reserved(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    rig = await rig_factory(22.0)
    deaf = await rig.add("DEAF", version="1.6")
    other = await rig.add("OTHER", version="2.0.1")
    await deaf.plug_in()
    await rig.controller.rebalance()
    assert rig.limits() == {"DEAF": 30.2}
    deaf.ignore_actions.add("SetChargingProfile")
    await other.plug_in()
    await rig.controller.rebalance()
    # DEAF never took its decrease, so OTHER only gets what is left next to 30.2 A.
    assert deaf.limit_in_force(1) == 30.2
    assert other.limit_in_force(1) == 0.0 or rig.held_w() <= rig.budget_w
    assert rig.held_w() <= rig.budget_w + 1e-6

    # When DEAF answers again (any message from it), it is rebalanced.
    deaf.ignore_actions.clear()
    await deaf.send_meter_values()
    await rig.controller.rebalance()
    assert rig.limits() == {"DEAF": 15.1, "OTHER": 15.1}


async def test_offline_charger_reserved_at_acknowledged_limit(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    rig = await rig_factory(22.0)
    gone = await rig.add("GONE", version="2.0.1")
    stay = await rig.add("STAY", version="1.6")
    await gone.plug_in()
    await stay.plug_in()
    await rig.controller.rebalance()
    await gone.disconnect()
    async with asyncio.timeout(5):
        await rig.disconnected.wait()
    await rig.controller.rebalance()
    # STAY may not grow into GONE's reserved 15.1 A.
    assert stay.limit_in_force(1) == 15.1
    snapshot = rig.controller.snapshot()
    assert snapshot.chargers["GONE"].connected is False
    assert snapshot.chargers["GONE"].limit_acked_a == 15.1


async def test_pause_is_limit_zero_in_the_transaction(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    rig = await rig_factory(10.0)  # 9.5 kW: room for two 6 A three-phase minimums
    chargers = [await rig.add(f"CP{i}", version="1.6") for i in range(3)]
    for charger in chargers:
        await charger.plug_in()
        await rig.controller.rebalance()
    limits = rig.limits()
    assert sorted(limits.values())[0] == 0.0
    assert all(limit == 0.0 or limit >= 6.0 for limit in limits.values())
    paused = next(c for c in chargers if c.limit_in_force(1) == 0.0)
    last = tx(paused)[-1]
    assert last.transaction_id == paused.connectors[1].transaction_id
    assert rig.controller.snapshot().paused


async def test_unmanaged_charger_counts_measured_power(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    rig = await rig_factory(22.0)
    vip = await rig.add("VIP", version="1.6", managed=False, car_max_a=16.0)
    managed = await rig.add("M", version="2.0.1")
    await vip.plug_in()
    await managed.plug_in()
    await vip.send_meter_values()
    await rig.controller.rebalance()
    assert tx(vip) == []
    # 20.9 kW - 16 A x 690 V = 9.86 kW -> 14.2 A
    assert managed.limit_in_force(1) == pytest.approx(14.2)
    assert rig.controller.measured_kw("main") == pytest.approx(16 * 0.69, rel=0.01)


async def test_snapshot_and_persistence(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    rig = await rig_factory(22.0)
    charger = await rig.add("CP1", version="2.0.1")
    transaction = await charger.plug_in()
    await rig.controller.rebalance()
    await charger.send_meter_values()
    await charger.send_meter_values()
    snap = rig.controller.snapshot().chargers["CP1"]
    assert snap.connected
    assert snap.ocpp_version == "2.0.1"
    assert snap.transaction_id == transaction
    assert snap.allocated_a == 30.2
    assert snap.measured_w == pytest.approx(30.2 * VOLTS_3P)
    assert snap.current_a == (30.2, 30.2, 30.2)
    assert snap.session_energy_wh is not None
    assert rig.controller.limit_for("CP1") is not None
    assert rig.controller.limit_for("NOPE") is None
    assert rig.changes > 0

    stored = rig.controller.export_state()
    fresh = SiteController(rig.server, rig.site, rig.controller.chargers)
    fresh.import_state({"version": 99})
    assert fresh.sessions() == []
    fresh.import_state(
        {"version": 1, "sessions": [{"charger_id": "x"}, *stored["sessions"]]}
    )
    assert fresh.sessions() == [("CP1", 1, transaction)]
    # Version 2 also restores the installed profiles: the restarted controller knows
    # what the charger holds and does not write it again.
    restarted = SiteController(rig.server, rig.site, rig.controller.chargers)
    restarted.import_state(stored)
    assert restarted.in_force_a("CP1", 1) == 30.2
    assert (
        restarted.writer.books["CP1"].slots == rig.controller.writer.books["CP1"].slots
    )
    restarted.import_state({"version": 2, "profiles": {"CP1": {"slots": [{}]}}})


async def test_received_profile_helpers() -> None:
    received = ReceivedProfile(
        1,
        1,
        {
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingSchedule": [
                {
                    "chargingRateUnit": "W",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7000}],
                }
            ],
        },
        0.0,
    )
    assert (received.limit, received.rate_unit, received.transaction_id) == (
        7000.0,
        "W",
        None,
    )


async def test_small_increases_skipped_and_increases_spaced(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    """Flash-friendly writes: a dead band for increases and a minimum interval."""
    rig = await rig_factory(22.0)
    rig.controller.min_increase_interval_s = 0.5
    one = await rig.add("CP1", version="1.6")
    two = await rig.add("CP2", version="1.6")
    await one.plug_in()
    await two.plug_in()
    await rig.controller.rebalance()
    assert rig.limits() == {"CP1": 15.1, "CP2": 15.1}

    # A 0.3 A increase is within the dead band: nothing is written.
    configs = dict(rig.controller.chargers)
    configs["CP1"] = replace(configs["CP1"], max_current_a=10.0)
    rig.controller.update_site(rig.site, configs)
    await rig.controller.rebalance()
    assert rig.limits()["CP1"] == 10.0  # a decrease goes out at once
    raised = rig.limits()["CP2"]
    assert raised > 15.1  # CP2's first increase
    count = len(tx(two))
    await asyncio.sleep(0.6)  # past the interval: only the dead band can hold it back
    configs["CP1"] = replace(configs["CP1"], max_current_a=9.7)
    rig.controller.update_site(rig.site, configs)
    await rig.controller.rebalance()
    assert rig.limits()["CP1"] == 9.7
    assert len(tx(two)) == count  # +0.3 A: not worth a write

    # A real increase right after the last one waits for the interval, then goes out.
    configs["CP1"] = replace(configs["CP1"], max_current_a=9.0)
    rig.controller.update_site(rig.site, configs)
    await rig.controller.rebalance()
    raised = rig.limits()["CP2"]
    configs["CP1"] = replace(configs["CP1"], max_current_a=6.0)
    rig.controller.update_site(rig.site, configs)
    await rig.controller.rebalance()
    assert rig.limits()["CP1"] == 6.0
    assert rig.limits()["CP2"] == raised  # deferred
    # CP2's limits only rose so far: a higher one is the deferred increase.
    await two.wait_for_profile(lambda p: p.purpose == "TxProfile" and p.limit > raised)
    assert rig.limits()["CP2"] > raised
    assert rig.held_w() <= rig.budget_w


async def test_new_session_gets_its_limit_even_at_the_maximum(
    rig_factory: Callable[..., Awaitable[Rig]],
) -> None:
    """A car allocated its charger's maximum is not left at the boot failsafe."""
    rig = await rig_factory(100.0, failsafe_current_a=6.0)
    charger = await rig.add("CP1", version="1.6", max_current_a=16.0)
    await charger.wait_for_profile(lambda p: p.purpose == "TxDefaultProfile")
    await charger.plug_in()
    await rig.controller.rebalance()
    assert rig.limits() == {"CP1": 16.0}  # its maximum, not the 6 A failsafe
    last = tx(charger)[-1]
    assert (last.purpose, last.limit) == ("TxProfile", 16.0)

    # A controller that knows nothing of the installed profiles (a restart without
    # stored state) sends the limit again.
    rig.controller.writer.books.clear()
    count = len(tx(charger))
    await rig.controller.rebalance()
    assert len(tx(charger)) == count + 1
    assert tx(charger)[-1].limit == 16.0


async def test_car_acceptance_learned_from_meter_values(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    """A car taking less than its limit is capped near what it takes; the rest moves on."""
    rig = await rig_factory(22.0)
    slow = await rig.add("SLOW", version="1.6", car_max_a=10.0)
    fast = await rig.add("FAST", version="1.6")
    await slow.plug_in()
    await fast.plug_in()
    await rig.controller.rebalance()
    assert rig.limits() == {"SLOW": 15.1, "FAST": 15.1}

    for _ in range(3):  # the car draws 10 A of its 15.1 A, three times in a row
        await slow.send_meter_values()
    await rig.controller.rebalance()
    assert rig.limits()["SLOW"] == 11.0  # what it draws plus 1 A
    assert rig.limits()["FAST"] > 15.1  # gets the power the slow car left
    assert rig.held_w() <= rig.budget_w

    # The car now takes its whole cap: the cap goes, and the share is equal again.
    slow.car_max_a = 32.0
    await slow.send_meter_values()
    await rig.controller.rebalance()
    assert rig.limits() == {"SLOW": 15.1, "FAST": 15.1}


async def test_ev_charging_needs_cap_the_session(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    rig = await rig_factory(22.0)
    car = await rig.add("CP1", version="2.0.1")
    await car.plug_in()
    await rig.controller.rebalance()
    assert rig.limits() == {"CP1": 30.2}
    rig.controller.handle_event(
        EVChargingNeeds(
            charger_id="CP1",
            connector_id=1,
            energy_amount_wh=20000,
            ev_min_current_a=6,
            ev_max_current_a=16,
            ev_max_voltage_v=400,
            departure_time=None,
        )
    )
    await rig.controller.rebalance()
    assert rig.limits() == {"CP1": 16.0}


async def test_a_full_car_keeps_only_its_minimum(
    rig_factory: Callable[[float], Awaitable[Rig]],
) -> None:
    rig = await rig_factory(22.0)
    full = await rig.add("FULL", version="1.6")
    other = await rig.add("OTHER", version="2.0.1")
    await full.plug_in()
    await other.plug_in()
    await rig.controller.rebalance()
    assert rig.limits() == {"FULL": 15.1, "OTHER": 15.1}
    await full.send_status(1, "SuspendedEV")  # the car stopped drawing by itself
    await rig.controller.rebalance()
    assert rig.limits()["FULL"] == 6.0  # not paused: it may want to top up
    assert rig.limits()["OTHER"] > 15.1
    assert rig.held_w() <= rig.budget_w
    await full.send_status(1, "Charging")
    await rig.controller.rebalance()
    assert rig.limits() == {"FULL": 15.1, "OTHER": 15.1}
