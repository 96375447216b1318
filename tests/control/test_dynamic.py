"""OCPP 2.1 Dynamic profiles: a session's limit moves by UpdateDynamicSchedule.

Real `ocpp` v21 clients over loopback. The first limit of a session is a Dynamic
TxProfile; later changes go as UpdateDynamicSchedule, without a new profile in flash.
A charger that refuses Dynamic profiles gets Absolute ones. The breaker promise is
sampled at every answered update (`safety_rig.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from custom_components.smart_charge.engine import Panel, Site
from tests.control.safety_rig import VOLTS, ChargerSpec, ProbedCharger, SafetyRig

pytestmark = pytest.mark.usefixtures("socket_enabled")

LIMITS_KW = (22.0, 9.0, 16.0, 6.0)


@pytest.fixture
async def rig() -> AsyncIterator[SafetyRig]:
    site = SafetyRig([Panel(id="main", limit_kw=LIMITS_KW[0])])
    await site.start()
    yield site
    await site.close()


def tx_profiles(charger: ProbedCharger) -> list[str]:
    """Return the kind of every TxProfile the charger received, in order."""
    return [
        str(p.profile.get("chargingProfileKind"))
        for p in charger.received_profiles
        if p.purpose == "TxProfile"
    ]


async def follow(rig: SafetyRig, charger: ProbedCharger) -> list[float]:
    """Change the panel's limit through LIMITS_KW; return the limit in force after each."""
    in_force = []
    for limit_kw in LIMITS_KW[1:]:
        rig.update_site(
            Site(panels=[Panel(id="main", limit_kw=limit_kw)], voltage_v=VOLTS)
        )
        await rig.settle()
        in_force.append(charger.limit_in_force(1))
        tx = rig.controller.writer.book(charger.charger_id).slots[(1, "tx")]
        assert tx.limit_a == in_force[-1]  # what we think it holds is what it holds
        assert in_force[-1] * VOLTS * 3 / 1000 <= limit_kw
    return in_force


def assert_promise(rig: SafetyRig) -> None:
    rig.sample("final check")
    assert not rig.violations, rig.violations[0]
    assert not rig.strong_violations, rig.strong_violations[0]


async def test_limit_moves_without_a_new_profile(rig: SafetyRig) -> None:
    charger = await rig.add(ChargerSpec("CP1", "main", version="2.1", strict=True))
    await charger.plug_in(1)
    await rig.settle()
    assert tx_profiles(charger) == ["Dynamic"]
    assert "startSchedule" not in charger.received_profiles[-1].schedule

    in_force = await follow(rig, charger)

    assert tx_profiles(charger) == ["Dynamic"]  # one profile in flash, however often
    assert len(set(in_force)) == len(in_force)  # every change reached the charger
    assert [limit for _, limit in charger.dynamic_updates] == in_force
    profile = next(p for p in charger.installed_profiles if p.purpose == "TxProfile")
    assert profile.kind == "Dynamic"
    assert profile.max_offline_s == 60  # falls back by itself if it loses us
    assert_promise(rig)


async def test_charger_without_dynamic_profiles_gets_absolute_ones(
    rig: SafetyRig,
) -> None:
    charger = await rig.add(
        ChargerSpec(
            "CP1",
            "main",
            version="2.1",
            strict=True,
            sim_options={"dynamic_profiles": False},
        )
    )
    await charger.plug_in(1)
    await rig.settle()
    assert tx_profiles(charger) == ["Dynamic", "Absolute"]

    in_force = await follow(rig, charger)

    assert tx_profiles(charger) == ["Dynamic"] + ["Absolute"] * len(LIMITS_KW)
    assert charger.dynamic_updates == []
    assert len(set(in_force)) == len(in_force)
    assert_promise(rig)


async def test_older_versions_keep_absolute_profiles(rig: SafetyRig) -> None:
    charger = await rig.add(ChargerSpec("CP1", "main", version="2.0.1", strict=True))
    await charger.plug_in(1)
    await rig.settle()
    await follow(rig, charger)
    assert set(tx_profiles(charger)) == {"Absolute"}
    assert_promise(rig)
