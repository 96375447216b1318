"""The limit in force on a simulated charger, evaluated as a real charger does."""

from __future__ import annotations

import pytest

from custom_components.smart_charge.csms import CentralSystem
from tools.simulator import SimulatedCharger

from .conftest import SimFactory
from .helpers import profile

VERSIONS = ["1.6", "2.0.1", "2.1"]
MAX = {"1.6": "ChargePointMaxProfile", "2.0.1": "ChargingStationMaxProfile"}


def _max(version: str) -> str:
    return MAX.get(version, "ChargingStationMaxProfile")


async def _set(
    server: CentralSystem, sim: SimulatedCharger, cid: int, body: dict[str, object]
) -> str:
    return await server.set_charging_profile(sim.charger_id, cid, body)


@pytest.mark.parametrize("version", VERSIONS)
async def test_stack_levels_and_purposes(
    server: CentralSystem, make_charger: SimFactory, version: str
) -> None:
    sim = await make_charger(f"P-{version}", version=version)
    v = version
    assert sim.start_limit(1) == 32.0  # nothing installed: the hardware maximum
    assert await _set(server, sim, 0, profile(v, 1, "TxDefaultProfile", 10)) == (
        "Accepted"
    )
    assert sim.start_limit(1) == 10.0  # the station-wide default
    await _set(server, sim, 1, profile(v, 2, "TxDefaultProfile", 8))
    assert sim.start_limit(1) == 8.0  # the connector's own default wins over 0's
    await _set(server, sim, 1, profile(v, 3, "TxDefaultProfile", 12, stack_level=1))
    assert sim.start_limit(1) == 12.0  # higher stack level
    await _set(server, sim, 0, profile(v, 4, _max(v), 7))
    assert sim.start_limit(1) == 7.0  # the station maximum caps everything

    transaction = await sim.plug_in()
    assert sim.limit_in_force(1) == 7.0  # started at its default (capped)
    await _set(server, sim, 0, profile(v, 4, _max(v), 20))  # same id: replaced
    assert sim.limit_in_force(1) == 12.0
    await _set(
        server, sim, 1, profile(v, 5, "TxProfile", 16, transaction_id=transaction)
    )
    assert sim.limit_in_force(1) == 16.0  # the TxProfile wins over every default
    await _set(
        server,
        sim,
        1,
        profile(v, 6, "TxProfile", 9, stack_level=2, transaction_id=transaction),
    )
    assert sim.limit_in_force(1) == 9.0
    assert sim.start_limit(1) == 12.0  # what a new car would get meanwhile
    await _set(
        server,
        sim,
        1,
        profile(v, 6, "TxProfile", 0, stack_level=2, transaction_id=transaction),
    )
    assert sim.limit_in_force(1) == 0.0  # paused
    assert sim.current_a(1) == 0.0

    await sim.unplug()  # TxProfiles end with their transaction
    assert {p.id for p in sim.installed_profiles} == {1, 2, 3, 4}
    assert sim.limit_in_force(1) == sim.start_limit(1) == 12.0


@pytest.mark.parametrize("version", VERSIONS)
async def test_watts_become_amps(
    server: CentralSystem, make_charger: SimFactory, version: str
) -> None:
    sim = await make_charger(f"W-{version}", version=version)
    await _set(server, sim, 0, profile(version, 1, "TxDefaultProfile", 6900, unit="W"))
    assert sim.start_limit(1) == pytest.approx(10.0)  # 6.9 kW over 3 x 230 V
    await _set(
        server,
        sim,
        0,
        profile(version, 1, "TxDefaultProfile", 2300, unit="W", phases=1),
    )
    assert sim.start_limit(1) == pytest.approx(10.0)  # one phase
    assert sim.limit(1).phases == 1
    schedule = await server.get_composite_schedule(sim.charger_id, 1, rate_unit="W")
    assert schedule.status == "Accepted"
    assert schedule.schedule is not None


async def test_16_same_purpose_and_stack_replaces(
    server: CentralSystem, make_charger: SimFactory
) -> None:
    sim = await make_charger("R16", version="1.6")
    await _set(server, sim, 1, profile("1.6", 10, "TxDefaultProfile", 8))
    await _set(server, sim, 1, profile("1.6", 11, "TxDefaultProfile", 6))
    assert [(p.id, p.limit) for p in sim.installed_profiles] == [(11, 6.0)]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_clear_by_criteria(
    server: CentralSystem, make_charger: SimFactory, version: str
) -> None:
    sim = await make_charger(f"C-{version}", version=version)
    v = version
    await _set(server, sim, 0, profile(v, 1, "TxDefaultProfile", 10))
    await _set(server, sim, 1, profile(v, 2, "TxDefaultProfile", 8))
    await _set(server, sim, 1, profile(v, 3, "TxDefaultProfile", 7, stack_level=3))
    await _set(server, sim, 0, profile(v, 4, MAX.get(v, _max(v)), 20))

    def ids() -> set[int]:
        return {p.id for p in sim.installed_profiles}

    clear = server.clear_charging_profile
    assert await clear(sim.charger_id, profile_id=99) == "Unknown"
    assert await clear(sim.charger_id, connector_id=1, stack_level=3) == "Accepted"
    assert ids() == {1, 2, 4}
    assert sim.start_limit(1) == 8.0
    assert await clear(sim.charger_id, connector_id=1, stack_level=3) == "Unknown"
    assert await clear(sim.charger_id, purpose="TxDefaultProfile") == "Accepted"
    assert ids() == {4}
    assert sim.start_limit(1) == 20.0
    assert await clear(sim.charger_id, profile_id=4) == "Accepted"
    assert ids() == set()
    assert await clear(sim.charger_id) == "Unknown"


@pytest.mark.parametrize("version", ["1.6", "2.1"])
async def test_composite_schedule_is_the_limit_in_force(
    server: CentralSystem, make_charger: SimFactory, version: str
) -> None:
    sim = await make_charger(f"G-{version}", version=version)
    transaction = await sim.plug_in()
    await _set(
        server, sim, 1, profile(version, 5, "TxProfile", 10, transaction_id=transaction)
    )
    amps = await server.get_composite_schedule(sim.charger_id, 1, rate_unit="A")
    watts = await server.get_composite_schedule(sim.charger_id, 1, rate_unit="W")
    assert amps.schedule is not None and watts.schedule is not None
    assert amps.schedule["chargingSchedulePeriod"][0]["limit"] == 10.0
    assert watts.schedule["chargingSchedulePeriod"][0]["limit"] == 6900.0
    assert watts.schedule["chargingRateUnit"] == "W"


async def test_reject_first_and_slow_answers(
    server: CentralSystem, make_charger: SimFactory
) -> None:
    sim = await make_charger("SLOW", version="1.6", reject_first=1, profile_delay_s=0.3)
    body = profile("1.6", 1, "TxDefaultProfile", 6)
    assert await _set(server, sim, 0, body) == "Rejected"
    assert sim.start_limit(1) == 32.0
    assert await _set(server, sim, 0, body) == "Accepted"
    first, second = sim.received_profiles
    assert sim.profile_answered_at[second.sequence] - second.received_at >= 0.29
    assert sim.rejection_reasons == {first.sequence: "rejects its first 1 profiles"}
    assert sim.start_limit(1) == 6.0
