"""Bidirectional charging (OCPP 2.1 V2X) end to end, and PullDynamicScheduleUpdate.

Real `ocpp` v21 clients over loopback (`tools/simulator` with `bidirectional=True`: it
reports V2XChargingCtrlr, AC_BPT charging needs and SoC, follows CentralSetpoint
setpoints and drains its battery on its own clock). The rig samples both directions at
every answered write: import (limits in force within each budget, a discharging car
counts 0) and export (what the cars give back within each breaker and the export limit).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest

from tests.common import until
from tests.control.safety_rig import VOLTS, ChargerSpec, ProbedCharger, SafetyRig
from tests.control.v2x_common import (
    EXPORT_KW,
    HOUSE_KW,
    STEP,
    Clock,
    assert_both_ways,
    home,
    setpoints,
    v2x_spec,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
async def rig() -> AsyncIterator[SafetyRig]:
    site = SafetyRig(home().panels)
    site.update_site(home())
    await site.start()
    yield site
    await site.close()


async def start_discharging(rig: SafetyRig, charger: ProbedCharger) -> None:
    await charger.plug_in(1)
    await charger.send_meter_values(1)  # its state of charge
    await rig.settle()
    await until(lambda: charger.discharge_w(1) > 0)
    await rig.settle()


async def test_discharges_within_the_export_limit_and_stops_at_min_soc(
    rig: SafetyRig,
) -> None:
    clock = Clock()
    rig.controller.discharge.set_price(0.45, 0.30)  # an expensive hour
    charger = await rig.add(v2x_spec("V2X", clock))
    await start_discharging(rig, charger)

    # It covers the house and exports at most the export limit.
    given_w = charger.discharge_w(1)
    assert given_w >= 0.99 * (HOUSE_KW + EXPORT_KW) * 1000
    assert given_w <= (HOUSE_KW + EXPORT_KW) * 1000
    assert charger.limit_in_force(1) == 0.0  # it draws nothing while it gives back
    assert charger.net_power_w(1) == -given_w
    planned = rig.controller.discharge.discharging_w
    assert planned == {"V2X#1": pytest.approx(given_w, rel=0.01)}
    assert max(setpoints(charger)) == 0.0  # limit 0 / setpoint 0 went out first
    assert setpoints(charger)[0] == 0.0

    # A pull answers the setpoint in force.
    assert await charger.pull_dynamic_schedule(1) == "Accepted"
    _, _, update = charger.pulls[-1]
    assert update is not None
    assert update["limit"] == 0.0
    assert update["setpoint"] < 0
    assert charger.discharge_w(1) == given_w

    # Drain the battery on the charger's clock: 0.5 kWh above the minimum.
    socs = []
    for _ in range(20):
        clock.move(STEP)
        await charger.send_meter_values(1)
        await rig.settle()
        assert charger.soc_pct is not None
        socs.append(charger.soc_pct)
        if charger.discharge_w(1) == 0:
            break
    assert charger.discharge_w(1) == 0.0, socs
    assert len(socs) > 3  # it really discharged for a while
    step_pct = given_w * STEP.total_seconds() / 3600 / 10_000 * 100
    assert min(socs) >= 40.0 - step_pct - 1e-6  # stopped within one reading
    assert setpoints(charger)[-1] == 0.0  # stopped by a setpoint >= 0
    export = [
        frame
        for frame in charger.sent
        if frame[0] == 2 and frame[2] == "TransactionEvent"
    ]
    last = export[-2][3]["meterValue"][0]["sampledValue"]
    register = next(
        s["value"] for s in last if s["measurand"] == "Energy.Active.Export.Register"
    )
    assert register > 400  # Wh given back
    assert any(
        s["measurand"] == "Power.Active.Import" and s["value"] < 0
        for frame in export
        for s in frame[3]["meterValue"][0]["sampledValue"]
    )

    # At its minimum it does not start again while the SoC stays close to it.
    clock.move(STEP)
    await charger.send_meter_values(1)
    await rig.settle()
    assert charger.discharge_w(1) == 0.0
    assert charger.soc_pct is not None
    assert charger.soc_pct >= 40.0 - step_pct - 1e-6
    assert rig.max_export_kw <= EXPORT_KW + 1e-6
    assert_both_ways(rig)


async def test_only_bidirectional_opted_in_chargers_get_setpoints(
    rig: SafetyRig,
) -> None:
    clock = Clock()
    rig.controller.discharge.set_price(0.45, 0.30)
    v2x = await rig.add(v2x_spec("V2X", clock))
    opted_out = await rig.add(v2x_spec("OUT", clock, allow_discharge=False))
    plain = await rig.add(
        ChargerSpec(
            "PLAIN",
            "main",
            version="2.1",
            strict=True,
            allow_discharge=True,  # the user allows it, the charger cannot
            sim_options={"soc_pct": 80.0, "clock": clock},
        )
    )
    for charger in (v2x, opted_out, plain):
        await charger.plug_in(1)
        await charger.send_meter_values(1)
    await rig.settle()
    await until(lambda: v2x.discharge_w(1) > 0)
    await rig.settle()
    for _ in range(3):
        clock.move(STEP)
        for charger in (v2x, opted_out, plain):
            await charger.send_meter_values(1)
        await rig.settle()

    assert v2x.discharge_w(1) > 0
    assert min(setpoints(v2x)) < 0
    assert setpoints(opted_out) == []
    assert setpoints(plain) == []
    assert opted_out.discharge_w(1) == plain.discharge_w(1) == 0.0
    assert rig.controller.discharge.supported == {"V2X": True, "OUT": True}
    # The discharging car makes no import room: the others share what the breaker
    # allows after the house load, as if it were not discharging.
    charging_kw = sum(
        c.limit_in_force(1) * VOLTS * 3 / 1000 for c in (opted_out, plain)
    )
    assert charging_kw <= 22.0 * 0.95 - HOUSE_KW + 1e-6
    assert_both_ways(rig)


async def test_no_discharge_while_the_price_is_low(rig: SafetyRig) -> None:
    clock = Clock()
    rig.controller.discharge.set_price(0.20, 0.30)
    charger = await rig.add(v2x_spec("V2X", clock))
    await charger.plug_in(1)
    await charger.send_meter_values(1)
    await rig.settle()
    assert setpoints(charger) == []
    assert charger.limit_in_force(1) > 0  # it charges as any car

    # The price rises: it discharges; it falls again: it stops, then charges.
    rig.controller.discharge.set_price(0.50, 0.30)
    rig.controller.request_rebalance()
    await rig.settle()
    await until(lambda: charger.discharge_w(1) > 0)
    rig.controller.discharge.set_price(0.10, 0.30)
    rig.controller.request_rebalance()
    await rig.settle()
    assert charger.discharge_w(1) == 0.0
    assert setpoints(charger)[-1] == 0.0
    rig.controller.request_rebalance()
    await rig.settle()
    assert charger.limit_in_force(1) > 0  # back to a plain charging profile
    assert_both_ways(rig)


async def test_export_limit_splits_between_two_cars(rig: SafetyRig) -> None:
    clock = Clock()
    rig.controller.discharge.set_price(0.45, 0.30)
    first = await rig.add(v2x_spec("A", clock))
    second = await rig.add(v2x_spec("B", clock, max_discharge_a=8.0))
    for charger in (first, second):
        await charger.plug_in(1)
        await charger.send_meter_values(1)
    await rig.settle()
    await until(lambda: first.discharge_w(1) + second.discharge_w(1) > 0)
    await rig.settle()
    total_w = first.discharge_w(1) + second.discharge_w(1)
    assert total_w <= (HOUSE_KW + EXPORT_KW) * 1000
    # Both need 4.14 kW at least: only one of them fits in 7 kW.
    assert 0.0 in (first.discharge_w(1), second.discharge_w(1))
    assert_both_ways(rig)


# ------------------------------------------------------ PullDynamicScheduleUpdate


async def test_pull_answers_the_limit_in_force(rig: SafetyRig) -> None:
    charger = await rig.add(ChargerSpec("CP1", "main", version="2.1", strict=True))
    await charger.plug_in(1)
    await rig.settle()
    tx = rig.controller.writer.book("CP1").slots[(1, "tx")]
    assert tx.dynamic_unit is not None
    before = charger.limit_in_force(1)

    assert await charger.pull_dynamic_schedule(1) == "Accepted"
    profile_id, status, update = charger.pulls[-1]
    assert status == "Accepted"
    assert update is not None
    expected = before if tx.dynamic_unit == "A" else int(before * VOLTS * 3)
    assert update["limit"] == pytest.approx(expected, abs=1.0)
    assert "setpoint" not in update  # not a V2X session

    rig.update_site(home(limit_kw=11.0))
    await rig.settle()
    lower = charger.limit_in_force(1)
    assert lower < before
    assert await charger.pull_profile(profile_id) == "Accepted"
    _, _, update = charger.pulls[-1]
    assert update is not None
    expected = lower if tx.dynamic_unit == "A" else int(lower * VOLTS * 3)
    assert update["limit"] == pytest.approx(expected, abs=1.0)
    assert charger.limit_in_force(1) == lower  # applying it changes nothing
    assert_both_ways(rig)


async def test_pull_of_an_unknown_profile_is_rejected(rig: SafetyRig) -> None:
    charger = await rig.add(ChargerSpec("CP1", "main", version="2.1", strict=True))
    assert await charger.pull_profile(4242) == "Rejected"
    await charger.plug_in(1)
    await rig.settle()
    assert await charger.pull_profile(4242) == "Rejected"
    _, status, update = charger.pulls[-1]
    assert (status, update) == ("Rejected", None)


async def test_a_pulling_charger_pulls_by_itself(rig: SafetyRig) -> None:
    charger = await rig.add(
        ChargerSpec(
            "CP1",
            "main",
            version="2.1",
            strict=True,
            sim_options={"pull_dynamic_s": 0.05},
        )
    )
    await charger.plug_in(1)
    await rig.settle()
    await until(lambda: len([p for p in charger.pulls if p[1] == "Accepted"]) >= 2)
    assert {status for _, status, _ in charger.pulls} == {"Accepted"}
    assert_both_ways(rig)


async def test_a_discharging_charger_that_loses_us_stops_by_itself(
    rig: SafetyRig,
) -> None:
    clock = Clock()
    rig.controller.discharge.set_price(0.45, 0.30)
    charger = await rig.add(v2x_spec("V2X", clock))
    await start_discharging(rig, charger)
    await rig.vanish(charger)
    assert charger.discharge_w(1) > 0  # still within its maxOfflineDuration
    clock.move(timedelta(seconds=61))
    assert charger.discharge_w(1) == 0.0  # the setpoint expired with the profile
    rig.sample("offline past maxOfflineDuration")
    assert_both_ways(rig)


async def test_pull_never_raises_a_limit_out_of_turn(rig: SafetyRig) -> None:
    charger = await rig.add(ChargerSpec("CP1", "main", version="2.1", strict=True))
    await charger.plug_in(1)
    await rig.settle()
    book = rig.controller.writer.book("CP1")
    tx = book.slots[(1, "tx")]
    assert tx.limit_a is not None
    unit_per_a = 1.0 if tx.dynamic_unit == "A" else VOLTS * 3
    for pending in (tx.limit_a + 4.0, tx.limit_a - 4.0):
        # A write not answered yet: the charger may get either, we answer the lower.
        book.slots[(1, "tx")] = replace(tx, pending_a=pending)
        assert await charger.pull_dynamic_schedule(1) == "Accepted"
        _, _, update = charger.pulls[-1]
        assert update is not None
        lower = min(tx.limit_a, pending)
        assert update["limit"] == pytest.approx(lower * unit_per_a, abs=1.0)
    book.slots[(1, "tx")] = tx
