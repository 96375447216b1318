"""Capabilities, fallbacks and the failsafe against quirky simulated chargers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from custom_components.smart_charge.control import (
    CapabilitiesLearned,
    ChargerRejectsProfiles,
    SiteController,
)
from custom_components.smart_charge.csms import ChargerCapabilities, VariableResult
from custom_components.smart_charge.csms.capabilities import (
    from_ocpp2_variables,
    from_ocpp16_configuration,
)
from tests.control.conftest import Rig, tx

pytestmark = pytest.mark.usefixtures("socket_enabled")

RigFactory = Callable[..., Awaitable[Rig]]


async def _learned(rig: Rig, charger_id: str) -> ChargerCapabilities:
    event = await rig.events.wait_for(
        CapabilitiesLearned, lambda e: e.charger_id == charger_id
    )
    capabilities: ChargerCapabilities = event.capabilities
    return capabilities


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_capabilities_learned_and_stack_level_clamped(
    rig_factory: RigFactory, version: str
) -> None:
    rig = await rig_factory(22.0)
    charger = await rig.add(
        "CP", version=version, max_stack_level=3, stack_level=5, rate_units="Current"
    )
    learned = await _learned(rig, "CP")
    assert learned.learned and learned.smart_charging
    assert learned.max_stack_level == 3
    assert learned.rate_units == ("A",)
    assert learned.max_periods == 24
    if version == "1.6":
        assert learned.max_profiles == 8
    await charger.plug_in()
    await rig.controller.rebalance()
    last = tx(charger)[-1]
    assert last.profile["stackLevel"] == 3
    assert (last.rate_unit, last.limit) == ("A", 30.2)
    assert rig.controller.capabilities("CP") == learned.with_working("TxProfile", "A")


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_watts_only_charger_gets_watts(
    rig_factory: RigFactory, version: str
) -> None:
    rig = await rig_factory(22.0)
    charger = await rig.add("W", version=version, rate_units="Power")
    assert (await _learned(rig, "W")).rate_units == ("W",)
    await charger.plug_in()
    await rig.controller.rebalance()
    assert len(tx(charger)) == 1
    last = tx(charger)[-1]
    assert last.rate_unit == "W"
    assert {p.rate_unit for p in charger.received_profiles} == {"W"}
    assert last.limit == 20838  # 30.2 A x 230 V x 3, whole watts
    assert charger.limit_in_force(1) == pytest.approx(30.2)


async def test_advertised_rate_unit_is_respected(rig_factory: RigFactory) -> None:
    """A charger that says watts only is never sent amps, not even as a fallback."""
    rig = await rig_factory(22.0)
    charger = await rig.add("LIAR", version="1.6", rate_units="Power")
    await _learned(rig, "LIAR")
    charger.rate_units = ("Current",)  # it lied: it takes amps only
    await charger.plug_in()
    await rig.controller.rebalance()
    assert {p.rate_unit for p in charger.received_profiles} == {"W"}
    capabilities = rig.controller.capabilities("LIAR")
    assert capabilities is not None and capabilities.rejects_profiles


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_txprofile_refused_falls_back_to_txdefault_and_remembers(
    rig_factory: RigFactory, version: str
) -> None:
    rig = await rig_factory(22.0)
    charger = await rig.add(
        "NOTX", version=version, reject_purposes={"TxProfile"}, rate_units="Current"
    )
    other = await rig.add("OTHER", version="1.6")
    await charger.plug_in()
    await rig.controller.rebalance()
    # TxProfile in A (never W: it advertises amps only), then TxDefaultProfile on
    # the connector.
    assert {p.rate_unit for p in charger.received_profiles} == {"A"}
    assert [p.limit for p in tx(charger)] == [30.2]
    last = charger.received_profiles[-1]
    assert (last.purpose, last.connector_id, last.limit) == (
        "TxDefaultProfile",
        1,
        30.2,
    )
    assert last.transaction_id is None
    assert charger.limit_in_force(1) == 30.2
    # The next limit goes straight to what worked.
    await other.plug_in()
    await rig.controller.rebalance()
    assert len(tx(charger)) == 1
    assert charger.received_profiles[-1].purpose == "TxDefaultProfile"
    assert rig.limits() == {"NOTX": 15.1, "OTHER": 15.1}


@pytest.mark.parametrize(
    ("version", "status"),
    [("1.6", "Rejected"), ("1.6", "NotSupported"), ("2.0.1", "CallError")],
)
async def test_charger_refusing_everything_is_reported_and_reserved(
    rig_factory: RigFactory, version: str, status: str
) -> None:
    rig = await rig_factory(22.0)
    stubborn = await rig.add(
        "STUB", version=version, profile_status=status, max_current_a=16.0
    )
    other = await rig.add("OK", version="2.0.1")
    await stubborn.plug_in()
    await other.plug_in()
    await rig.controller.rebalance()
    reported = rig.events.of(ChargerRejectsProfiles)
    assert [event.charger_id for event in reported] == ["STUB"]
    capabilities = rig.controller.capabilities("STUB")
    assert capabilities is not None and capabilities.rejects_profiles
    assert not capabilities.controllable
    # 20.9 kW less STUB's 16 A x 690 V reserved = 9.86 kW -> 14.2 A for OK.
    assert other.limit_in_force(1) == pytest.approx(14.2)
    # Every shape of the session limit was tried (TxProfile and TxDefaultProfile,
    # amps and watts) besides its boot and connector defaults.
    shapes = {(p.purpose, p.rate_unit) for p in stubborn.received_profiles}
    assert {("TxProfile", "A"), ("TxProfile", "W")} <= shapes
    tried = len(stubborn.received_profiles)
    await rig.controller.rebalance()
    assert len(stubborn.received_profiles) == tried  # not asked again
    assert len(rig.events.of(ChargerRejectsProfiles)) == 1

    # A reboot gives it another chance.
    stubborn.profile_status = "Accepted"
    before = rig.events.of(CapabilitiesLearned)
    await stubborn.boot()
    await rig.events.wait_for(
        CapabilitiesLearned,
        lambda e: e.capabilities.controllable and all(e is not b for b in before),
    )
    await rig.controller.rebalance()
    assert rig.limits() == {"STUB": 15.1, "OK": 15.1}


async def test_charger_without_smart_charging_is_reserved_at_hardware_max(
    rig_factory: RigFactory,
) -> None:
    rig = await rig_factory(22.0)
    dumb = await rig.add(
        "DUMB", version="1.6", smart_charging=False, max_current_a=16.0
    )
    assert not (await _learned(rig, "DUMB")).smart_charging
    other = await rig.add("OK", version="1.6")
    await dumb.plug_in()
    await other.plug_in()
    await rig.controller.rebalance()
    assert dumb.received_profiles == []
    assert other.limit_in_force(1) == pytest.approx(14.2)
    assert not rig.events.of(ChargerRejectsProfiles)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_failsafe_txdefault_at_boot(
    rig_factory: RigFactory, version: str
) -> None:
    rig = await rig_factory(22.0, failsafe_current_a=8.0)
    charger = await rig.add("SAFE", version=version)
    unmanaged = await rig.add("FREE", version=version, managed=False)
    failsafe = await charger.wait_for_profile(
        lambda p: p.purpose == "TxDefaultProfile" and p.connector_id == 0
    )
    assert (failsafe.limit, failsafe.rate_unit) == (8.0, "A")
    assert failsafe.profile["stackLevel"] == 0
    assert "startSchedule" in failsafe.schedule
    # The connector's own default (its minimum: it fits) overrides the boot default.
    await rig.controller.rebalance()
    own = await charger.wait_for_profile(
        lambda p: p.purpose == "TxDefaultProfile" and p.connector_id == 1
    )
    assert (own.limit, own.profile["stackLevel"]) == (6.0, 1)
    assert charger.start_limit(1) == 6.0
    assert unmanaged.received_profiles == []
    # The failsafe is not a session limit: the acknowledged limits stay empty.
    assert 0 not in rig.server.chargers["SAFE"].limit_acked
    await charger.plug_in()
    await rig.controller.rebalance()
    assert charger.limit_in_force(1) == 30.2


async def test_failsafe_in_watts_and_capped_by_hardware(
    rig_factory: RigFactory,
) -> None:
    rig = await rig_factory(22.0, failsafe_current_a=20.0)
    charger = await rig.add(
        "SAFEW", version="2.0.1", rate_units="Power", max_current_a=10
    )
    failsafe = await charger.wait_for_profile(
        lambda p: p.purpose == "TxDefaultProfile" and p.connector_id == 0
    )
    assert (failsafe.rate_unit, failsafe.limit) == ("W", 6900)


async def test_failsafe_refused_is_logged(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = await rig_factory(22.0, failsafe_current_a=6.0)
    charger = await rig.add("NOFS", version="1.6", reject_purposes={"TxDefaultProfile"})
    await charger.wait_for_call("SetChargingProfile")
    await rig.events.wait_for(CapabilitiesLearned)
    while len(charger.profile_answers) < 2:  # A, then W
        await charger.wait_for_profile(lambda p: p.rate_unit == "W")
    assert "refused a TxDefaultProfile of 6.0 A on connector 0" in caplog.text


async def test_unreadable_capabilities_fall_back_to_defaults(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    rig = await rig_factory(22.0)
    charger = SimulatedChargerFactory(rig)
    deaf = await charger("DEAFCFG", ignore={"GetConfiguration"})
    learned = await _learned(rig, "DEAFCFG")
    assert not learned.learned
    assert "cannot read its smart-charging capabilities" in caplog.text
    await deaf.plug_in()
    await rig.controller.rebalance()
    assert deaf.limit_in_force(1) == 30.2


def SimulatedChargerFactory(rig: Rig) -> Callable[..., Awaitable[Any]]:  # noqa: N802
    """Add a charger that ignores some calls from the start (before its boot)."""

    async def add(charger_id: str, *, ignore: set[str], **kwargs: Any) -> Any:
        from custom_components.smart_charge.control import ChargerConfig
        from tools.simulator import SimulatedCharger

        configs = dict(rig.controller.chargers)
        configs[charger_id] = ChargerConfig(charger_id, "main")
        rig.controller.update_site(rig.site, configs)
        charger = SimulatedCharger(
            charger_id, f"ws://127.0.0.1:{rig.server.port}", **kwargs
        )
        charger.ignore_actions |= ignore
        await charger.start()
        rig.chargers[charger_id] = charger
        return charger

    return add


async def test_station_max_purpose_falls_back_per_connector(
    rig_factory: RigFactory,
) -> None:
    rig = await rig_factory(22.0)
    charger = await rig.add(
        "CAP",
        version="1.6",
        profile_purpose="ChargePointMaxProfile",
        reject_purposes={"ChargePointMaxProfile"},
        rate_units="Current",
    )
    await charger.plug_in()
    await rig.controller.rebalance()
    shapes = [(p.purpose, p.connector_id, p.limit) for p in charger.received_profiles]
    assert ("ChargePointMaxProfile", 0, 30.2) in shapes
    assert shapes[-1] == ("TxDefaultProfile", 1, 30.2)
    assert charger.limit_in_force(1) == 30.2


async def test_station_max_accepted_is_held_on_connector_zero(
    rig_factory: RigFactory,
) -> None:
    rig = await rig_factory(22.0)
    charger = await rig.add(
        "CAP0", version="2.0.1", profile_purpose="ChargePointMaxProfile"
    )
    await charger.plug_in()
    await rig.controller.rebalance()
    shapes = [(p.connector_id, p.purpose, p.limit) for p in charger.received_profiles]
    # The station-wide limit, carried by the connector's default as well (a default
    # below it would govern the session).
    assert (0, "ChargingStationMaxProfile", 30.2) in shapes
    assert (1, "TxDefaultProfile", 30.2) in shapes
    assert charger.limit_in_force(1) == 30.2
    count = len(charger.received_profiles)
    await rig.controller.rebalance()
    assert len(charger.received_profiles) == count  # the held limit is read from 0


async def test_capabilities_persist(rig_factory: RigFactory) -> None:
    rig = await rig_factory(22.0)
    charger = await rig.add("P", version="1.6", rate_units="Power")
    await _learned(rig, "P")
    await charger.plug_in()
    await rig.controller.rebalance()
    stored = rig.controller.export_state()
    assert stored["capabilities"]["P"]["working_rate_unit"] == "W"
    fresh = SiteController(rig.server, rig.site, rig.controller.chargers)
    fresh.import_state(
        {
            **stored,
            "capabilities": {
                **stored["capabilities"],
                "BAD": {"rate_units": ["volts"]},
                "WORSE": None,
            },
        }
    )
    assert fresh.capabilities("P") == rig.controller.capabilities("P")
    assert fresh.capabilities("BAD") is None
    assert fresh.capabilities("WORSE") is None


def test_capability_parsing() -> None:
    parsed = from_ocpp16_configuration(
        {
            "ChargingScheduleAllowedChargingRateUnit": "Power; Current; Power",
            "SupportedFeatureProfiles": "Core, FirmwareManagement",
            "ChargeProfileMaxStackLevel": "-1",
            "MaxChargingProfilesInstalled": "many",
        }
    )
    assert parsed.rate_units == ("W", "A")
    assert parsed.preferred_rate_unit == "A"
    assert not parsed.smart_charging
    assert parsed.max_stack_level is None and parsed.max_profiles is None
    assert parsed.stack_level(7) == 7
    assert from_ocpp16_configuration({}).rate_units == ("A", "W")
    assert from_ocpp16_configuration({}).smart_charging  # not reported: assume yes
    parsed2 = from_ocpp2_variables(
        [
            VariableResult("SmartChargingCtrlr", "Enabled", "Accepted", "1"),
            VariableResult("SmartChargingCtrlr", "Available", "Accepted", "maybe"),
            VariableResult("SmartChargingCtrlr", "RateUnit", "Accepted", "W"),
            VariableResult("SmartChargingCtrlr", "ProfileStackLevel", "Rejected", "9"),
            VariableResult("OtherCtrlr", "PeriodsPerSchedule", "Accepted", "5"),
        ]
    )
    assert parsed2.smart_charging and parsed2.rate_units == ("W",)
    assert parsed2.preferred_rate_unit == "W"
    assert parsed2.max_stack_level is None and parsed2.max_periods is None
    disabled = from_ocpp2_variables(
        [VariableResult("SmartChargingCtrlr", "Available", "Accepted", "false")]
    )
    assert not disabled.controllable
    assert ChargerCapabilities.from_dict(parsed.to_dict()) == parsed
    assert ChargerCapabilities.from_dict({}) == ChargerCapabilities()
    with pytest.raises(ValueError):
        ChargerCapabilities.from_dict({"max_stack_level": "x"})
