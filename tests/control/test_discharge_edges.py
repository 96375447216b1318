"""V2X's rarer paths, with real OCPP 2.1 clients (`tools/simulator`) on 127.0.0.1.

The owner forcing discharge on or off, a car that charges back above its minimum, a
charger that does not answer the V2X probe, one that advertises CentralSetpoint and
then refuses setpoints, a charger that only takes watts. The rig checks both
directions (import within every budget, export within the breaker and the export
limit) at every answered write.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import logging

import pytest

from tests.control.safety_rig import ProbedCharger, SafetyRig
from tests.control.v2x_common import (
    EXPORT_KW,
    HOUSE_KW,
    Clock,
    assert_both_ways,
    home,
    setpoints,
    v2x_spec,
)
from tests.waits import until

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
async def rig() -> AsyncIterator[SafetyRig]:
    site = SafetyRig(home().panels, call_timeout_s=0.5)
    site.update_site(home())
    await site.start()
    yield site
    await site.close()


async def plug_in(rig: SafetyRig, charger: ProbedCharger) -> None:
    await charger.plug_in(1)
    await charger.send_meter_values(1)  # its state of charge
    await rig.settle()


async def test_the_owner_forces_discharge_on_and_off(rig: SafetyRig) -> None:
    """`forced` wins over the price rule both ways."""
    clock = Clock()
    discharge = rig.controller.discharge
    discharge.set_price(0.10, 0.30)  # cheap: the price rule says no
    charger = await rig.add(v2x_spec("V2X", clock))
    await plug_in(rig, charger)
    assert charger.discharge_w(1) == 0.0
    assert charger.limit_in_force(1) > 0

    discharge.forced = True
    rig.controller.request_rebalance()
    await rig.settle()
    await until(lambda: charger.discharge_w(1) > 0)
    await rig.settle()
    assert charger.discharge_w(1) <= (HOUSE_KW + EXPORT_KW) * 1000
    assert charger.limit_in_force(1) == 0.0

    discharge.forced = False
    discharge.set_price(0.90, 0.30)  # expensive: the owner still says no
    rig.controller.request_rebalance()
    await rig.settle()
    assert charger.discharge_w(1) == 0.0
    assert setpoints(charger)[-1] == 0.0
    assert_both_ways(rig)


async def test_a_car_charged_back_above_its_minimum_discharges_again(
    rig: SafetyRig,
) -> None:
    """At its minimum it stops; only 5 points above it does it give back again."""
    clock = Clock()
    rig.controller.discharge.set_price(0.45, 0.30)
    charger = await rig.add(v2x_spec("V2X", clock, soc_pct=39.0))
    await plug_in(rig, charger)
    assert "V2X#1" in rig.controller.discharge.at_minimum
    assert charger.discharge_w(1) == 0.0

    charger.soc_pct = 43.0  # above the minimum, inside the hysteresis
    await charger.send_meter_values(1)
    await rig.settle()
    assert charger.discharge_w(1) == 0.0
    assert "V2X#1" in rig.controller.discharge.at_minimum

    charger.soc_pct = 46.0  # the car charged back: 6 points above its minimum
    await charger.send_meter_values(1)
    await rig.settle()
    await until(lambda: charger.discharge_w(1) > 0)
    await rig.settle()
    assert "V2X#1" not in rig.controller.discharge.at_minimum
    assert charger.limit_in_force(1) == 0.0
    assert_both_ways(rig)


async def test_a_charger_that_does_not_answer_the_v2x_probe_only_charges(
    rig: SafetyRig, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    rig.controller.discharge.set_price(0.45, 0.30)
    charger = await rig.add(v2x_spec("V2X", clock))
    charger.ignore_actions.add("GetVariables")
    with caplog.at_level(logging.WARNING):
        await plug_in(rig, charger)
        await until(lambda: "V2X" in rig.controller.discharge.supported)
        await rig.settle()
    assert rig.controller.discharge.supported == {"V2X": False}
    assert any("V2X support unknown" in r.getMessage() for r in caplog.records)
    assert setpoints(charger) == []
    assert charger.discharge_w(1) == 0.0
    assert charger.limit_in_force(1) > 0  # it charges as any car
    assert_both_ways(rig)


async def test_a_charger_that_refuses_setpoints_falls_back_to_charging(
    rig: SafetyRig, caplog: pytest.LogCaptureFixture
) -> None:
    """Its device model says CentralSetpoint, its firmware refuses every setpoint."""
    clock = Clock()
    rig.controller.discharge.set_price(0.45, 0.30)
    charger = await rig.add(v2x_spec("V2X", clock))
    with caplog.at_level(logging.WARNING):
        await charger.plug_in(1)  # the car offers AC_BPT
        charger.bidirectional = False  # the V2X variables stay as they were
        await charger.send_meter_values(1)  # its state of charge
        await rig.settle()
    assert rig.controller.discharge.supported == {"V2X": False}
    assert any("refused a V2X setpoint" in r.getMessage() for r in caplog.records)
    refused = [
        received
        for received in charger.received_profiles
        if any("setpoint" in p for p in received.schedule["chargingSchedulePeriod"])
    ]
    assert refused, "no setpoint was tried"
    assert {charger.profile_answers[r.sequence] for r in refused} == {"Rejected"}
    assert charger.discharge_w(1) == 0.0
    assert charger.limit_in_force(1) > 0  # a plain charging limit took over
    assert rig.controller.discharge.discharging_w == {}
    assert_both_ways(rig)


async def test_a_watts_only_charger_gets_its_setpoint_in_whole_watts(
    rig: SafetyRig,
) -> None:
    clock = Clock()
    rig.controller.discharge.set_price(0.45, 0.30)
    charger = await rig.add(v2x_spec("V2X", clock, rate_units="Power"))
    await plug_in(rig, charger)
    await until(lambda: charger.discharge_w(1) > 0)
    await rig.settle()
    assert {p.rate_unit for p in charger.received_profiles} == {"W"}
    setpoint = setpoints(charger)[-1]
    assert setpoint < 0
    assert setpoint == float(int(setpoint))  # rounded to 1 W
    planned = rig.controller.discharge.discharging_w["V2X#1"]
    assert -setpoint == planned
    assert charger.discharge_w(1) == planned
    assert planned <= (HOUSE_KW + EXPORT_KW) * 1000
    # A pull answers the same setpoint in watts.
    assert await charger.pull_dynamic_schedule(1) == "Accepted"
    _, _, update = charger.pulls[-1]
    assert update is not None
    assert update["setpoint"] == setpoint
    assert_both_ways(rig)


async def test_a_setpoint_left_unanswered_is_not_a_refusal(rig: SafetyRig) -> None:
    """A charger that is silent when its first setpoint goes out discharges later.

    Only an answer that refuses a setpoint ends V2X for a charger; a write that timed
    out keeps its reserve (held) and is retried, with a pause between bursts.
    """
    clock = Clock()
    charger = await rig.add(v2x_spec("V2X", clock))
    await plug_in(rig, charger)  # not wanted yet: it charges
    await until(lambda: "V2X" in rig.controller.discharge.supported)
    await rig.settle()
    assert rig.controller.discharge.supported == {"V2X": True}
    charging = charger.limit_in_force(1)
    assert charging > 0

    charger.ignore_actions.update({"SetChargingProfile", "UpdateDynamicSchedule"})
    rig.controller.discharge.forced = True
    rig.controller.request_rebalance()
    await until(lambda: "V2X#1" in rig.controller.writer.held, timeout=10.0)
    await until(lambda: rig.controller._deferred is not None, timeout=10.0)
    assert rig.controller.discharge.supported == {"V2X": True}
    assert charger.discharge_w(1) == 0.0
    assert charger.limit_in_force(1) == charging  # nothing reached it

    charger.ignore_actions.clear()
    await charger.send_meter_values(1)  # a sign of life
    await rig.settle()
    await until(lambda: charger.discharge_w(1) > 0, timeout=10.0)
    await rig.settle()
    assert charger.limit_in_force(1) == 0.0
    assert rig.controller.discharge.supported == {"V2X": True}
    assert_both_ways(rig)
