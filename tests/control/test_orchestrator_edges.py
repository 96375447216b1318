"""The orchestrator's rarer paths, each from a real situation on the wire.

A real `CentralSystem` on 127.0.0.1 and real `ocpp` clients (`tools/simulator`) through
the safety rig: chargers that send partial meter values or repeat a message, callbacks
of the owner that fail, increases held back and a stop while one waits, a charger that
stops following its limit and starts again, a charger removed while its car charges, a
snapshot while a write is unanswered, stored state read without a running event loop.
Where limits change the rig checks DESIGN §3b's promise at every answered write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
import logging
from typing import Any

from ocpp.v16 import call as call16
import pytest

from custom_components.smart_charge.control import (
    ChargerCompliant,
    ChargerNonCompliant,
    SiteController,
)
from custom_components.smart_charge.csms import (
    CentralSystem,
    MeterValuesReceived,
    ServerConfig,
    StatusChanged,
    TransactionStopped,
)
from custom_components.smart_charge.csms.charge_point import ocpp_timestamp
from custom_components.smart_charge.engine import Panel, PhaseSettings, Site
from tests.control.safety_rig import VOLTS, ChargerSpec, ProbedCharger, SafetyRig
from tools.simulator import InstalledProfile, Period

pytestmark = pytest.mark.usefixtures("socket_enabled")


def assert_promise(rig: SafetyRig) -> None:
    rig.sample("final check")
    assert rig.samples > 0
    assert not rig.violations, rig.violations[0]
    assert not rig.probe_errors, rig.probe_errors[0]


async def make_rig(limit_kw: float = 22.0, **options: Any) -> SafetyRig:
    rig = SafetyRig([Panel(id="main", limit_kw=limit_kw)], **options)
    await rig.start()
    return rig


@pytest.fixture
async def rig() -> AsyncIterator[SafetyRig]:
    site = await make_rig()
    yield site
    await site.close()


async def meter_16(
    charger: ProbedCharger, connector_id: int, samples: list[dict[str, Any]]
) -> None:
    """Send a 1.6 MeterValues with exactly these sampled values (and wait its conf)."""
    transaction_id = charger.connectors[connector_id].transaction_id
    await charger._call(
        call16.MeterValues(
            connector_id=connector_id,
            meter_value=[{"timestamp": ocpp_timestamp(), "sampled_value": samples}],
            transaction_id=None if transaction_id is None else int(transaction_id),
        )
    )


def current(phase: str, amps: float) -> dict[str, Any]:
    return {
        "measurand": "Current.Import",
        "phase": phase,
        "value": f"{amps:.1f}",
        "unit": "A",
    }


# ------------------------------------------------------------------ meter values


async def test_meter_values_with_only_some_measurands(rig: SafetyRig) -> None:
    """Chargers send what their meter has: currents, a voltage, a power, or an energy."""
    charger = await rig.add(ChargerSpec("CP", "main", connectors=2))
    await charger.plug_in(1)
    await rig.settle()
    session = rig.controller.book.get("CP", 1)
    assert session is not None
    limit = charger.limit_in_force(1)
    assert limit > 0

    # Currents and a voltage, no power: power from both.
    phases = [current(p, 10.0) for p in ("L1", "L2", "L3")]
    voltage = {"measurand": "Voltage", "value": "240.0", "unit": "V"}
    await meter_16(charger, 1, [*phases, voltage])
    assert session.measured_w == pytest.approx(3 * 10.0 * 240.0)
    assert session.drawn_a == pytest.approx(10.0)

    # Currents only: the charger's voltage (the site's 230 V).
    await meter_16(charger, 1, [current(p, 8.0) for p in ("L1", "L2", "L3")])
    assert session.measured_w == pytest.approx(3 * 8.0 * VOLTS)
    assert session.drawn_a == pytest.approx(8.0)

    # A power only: the current per phase follows from its phases and voltage.
    power = {"measurand": "Power.Active.Import", "value": "4140.0", "unit": "W"}
    await meter_16(charger, 1, [power])
    assert session.measured_w == pytest.approx(4140.0)
    assert session.drawn_a == pytest.approx(4140.0 / (3 * VOLTS))

    # An energy register alone says nothing about the draw.
    energy = {
        "measurand": "Energy.Active.Import.Register",
        "value": "1234.0",
        "unit": "Wh",
    }
    await meter_16(charger, 1, [energy])
    assert session.measured_w == pytest.approx(4140.0)

    # The idle connector's meter (no session there): nothing is booked for it.
    await meter_16(charger, 2, [*phases, power])
    assert rig.controller.book.get("CP", 2) is None
    assert len(rig.of(MeterValuesReceived, "CP")) == 5
    await rig.settle()
    assert charger.limit_in_force(1) == limit  # no reading moved the limit
    assert_promise(rig)


# ---------------------------------------------------------- repeated messages


async def test_repeated_and_idle_messages_change_nothing(rig: SafetyRig) -> None:
    """A StopTransaction sent twice, a status of connector 0: the session stays."""
    charger = await rig.add(ChargerSpec("CP", "main", max_current_a=16.0))
    other = await rig.add(ChargerSpec("OTHER", "main", max_current_a=16.0))
    await charger.plug_in(1)
    await other.plug_in(1)
    await rig.settle()
    first = charger.connectors[1].transaction_id
    assert first is not None
    await charger.unplug(1)
    await charger.plug_in(1)
    await rig.settle()
    second = charger.connectors[1].transaction_id
    assert second is not None and second != first
    limits = (charger.limit_in_force(1), other.limit_in_force(1))
    writes = len(charger.received_profiles) + len(other.received_profiles)

    # The old transaction's StopTransaction again (its conf was lost, say).
    await charger._call(
        call16.StopTransaction(
            meter_stop=0, timestamp=ocpp_timestamp(), transaction_id=int(first)
        )
    )
    # Connector 0 (the whole charger) reports its status, as 1.6 chargers do.
    await charger.send_status(0, "Available")
    await rig.wait_event(StatusChanged, lambda e: e.connector_id == 0)
    await rig.settle()

    stops = rig.of(TransactionStopped, "CP")
    assert [s.transaction_id for s in stops] == [first, first]
    assert set(rig.controller.sessions()) == {
        ("CP", 1, second),
        ("OTHER", 1, other.connectors[1].transaction_id),
    }
    assert (charger.limit_in_force(1), other.limit_in_force(1)) == limits
    assert len(charger.received_profiles) + len(other.received_profiles) == writes
    assert_promise(rig)


async def test_the_same_charging_needs_twice_are_one_change(rig: SafetyRig) -> None:
    """NotifyEVChargingNeeds before the session, then twice with the same maximum."""
    charger = await rig.add(ChargerSpec("CP", "main", version="2.0.1"))
    await charger.notify_ev_charging_needs(1, max_current_a=10.0)  # no session yet
    await charger.plug_in(1)
    await rig.settle()
    assert charger.limit_in_force(1) > 10.0  # needs before the session: forgotten
    await charger.notify_ev_charging_needs(1, max_current_a=10.0)
    await rig.settle()
    assert charger.limit_in_force(1) == 10.0  # what the car said it takes
    writes = len(charger.received_profiles)
    await charger.notify_ev_charging_needs(1, max_current_a=10.0)
    await rig.settle()
    assert len(charger.received_profiles) == writes
    assert charger.limit_in_force(1) == 10.0
    assert_promise(rig)


# ------------------------------------------------------------------ queries


async def test_queries_of_idle_and_unknown_connectors(rig: SafetyRig) -> None:
    charger = await rig.add(ChargerSpec("CP", "main", connectors=2, max_current_a=16.0))
    await charger.plug_in(1)
    await rig.settle()
    controller = rig.controller
    assert controller.phases_in_use("CP", 1) == 3
    assert controller.phases_in_use("CP", 2) is None  # idle
    assert controller.phases_in_use("NOBODY", 1) is None
    assert controller.in_force_a("NOBODY", 1) is None  # never seen
    assert controller.in_force_a("CP", 1) == charger.limit_in_force(1)
    assert controller.in_force_a("CP", 2) == charger.start_limit(2)
    # The idle connector starts at its minimum: it fits next to the running car.
    assert controller.idle_default_a("CP", 2) == 6.0
    assert charger.start_limit(2) == 6.0
    assert controller.idle_default_a("CP", 1) is None  # it runs a session
    assert_promise(rig)


# ------------------------------------------------------------- the callbacks


async def test_failing_owner_callbacks_are_logged_and_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The owner's on_change / on_report raise: limits still go out, both are logged."""
    rig = await make_rig()
    calls = {"change": 0, "report": 0}

    def broken_change() -> None:
        calls["change"] += 1
        raise RuntimeError("entity update failed")

    def broken_report(report: object) -> None:
        calls["report"] += 1
        raise RuntimeError("repair issue failed")

    rig.controller._on_change = broken_change
    rig.controller._on_report = broken_report
    try:
        with caplog.at_level(logging.ERROR):
            charger = await rig.add(ChargerSpec("CP", "main", max_current_a=16.0))
            await charger.plug_in(1)
            await rig.settle()
        assert charger.limit_in_force(1) == 16.0
        assert calls["change"] > 0
        assert calls["report"] > 0  # at least its capabilities
        messages = [r.getMessage() for r in caplog.records]
        assert any(m == "on_change callback failed" for m in messages)
        assert any(m.startswith("Report callback failed on") for m in messages)
        assert_promise(rig)
    finally:
        await rig.close()


# ------------------------------------------------------ increases held back


async def test_a_second_increase_inside_the_interval_waits_and_stop_cancels_it() -> (
    None
):
    """min_increase_interval_s: later increases wait on one timer; stop cancels it."""
    rig = await make_rig(11.0, min_increase_interval_s=600.0)
    try:
        charger = await rig.add(ChargerSpec("CP", "main"))
        await charger.plug_in(1)
        await rig.settle()
        first = charger.limit_in_force(1)
        assert first == pytest.approx(11.0 * 950 / (3 * VOLTS), abs=0.1)
        rig.update_site(Site(panels=[Panel(id="main", limit_kw=7.0)], voltage_v=VOLTS))
        await rig.settle()
        lowered = charger.limit_in_force(1)
        assert lowered < first  # a decrease is never held back
        rig.update_site(Site(panels=[Panel(id="main", limit_kw=9.0)], voltage_v=VOLTS))
        await rig.settle()
        raised = charger.limit_in_force(1)
        assert raised > lowered  # the first increase goes out
        for limit_kw in (10.0, 11.0):  # two more inside the interval: they wait
            rig.update_site(
                Site(panels=[Panel(id="main", limit_kw=limit_kw)], voltage_v=VOLTS)
            )
            await rig.settle()
            assert charger.limit_in_force(1) == raised
        deferred = rig.controller._deferred
        assert deferred is not None
        assert deferred.when() - asyncio.get_running_loop().time() > 500
        await rig.controller.stop()
        assert deferred.cancelled()
        assert rig.controller._deferred is None
        assert charger.limit_in_force(1) == raised
        assert_promise(rig)
    finally:
        await rig.close()


# ---------------------------------------------------------- non-compliance


async def test_a_non_compliant_charger_is_followed_and_forgiven() -> None:
    """Its draw is reserved as it changes; following its limit again is reported."""
    rig = await make_rig(7.0, verify_grace_s=0.0, verify_samples=2)
    try:
        charger = await rig.add(
            ChargerSpec("CP", "main", sim_options={"stuck_at_a": 14.0})
        )
        await charger.plug_in(1)
        await rig.settle()
        limit = charger.limit_in_force(1)
        assert limit < 14.0 - 1.0
        for _ in range(2):
            await charger.send_meter_values(1)
        await rig.settle()
        flagged = [r for r in rig.reports if isinstance(r, ChargerNonCompliant)]
        assert [(r.limit_a, r.seen_a) for r in flagged] == [(limit, 14.0)]
        session = rig.controller.book.get("CP", 1)
        assert session is not None
        assert session.non_compliant_a == 14.0

        # It draws more still: the reserve follows the new draw.
        charger.stuck_at_a = 15.0
        for _ in range(3):
            await charger.send_meter_values(1)
        await rig.settle()
        assert session.non_compliant_a == 15.0
        assert len([r for r in rig.reports if isinstance(r, ChargerNonCompliant)]) == 1

        # It follows its limit again: two readings in a row, then it is trusted.
        charger.stuck_at_a = None
        await charger.send_meter_values(1)
        await rig.settle()
        assert session.non_compliant_a == 15.0  # one reading is not enough
        await charger.send_meter_values(1)
        await rig.settle()
        assert reserved_draw(rig, "CP") is None
        assert [r for r in rig.reports if isinstance(r, ChargerCompliant)] == [
            ChargerCompliant("CP")
        ]
        assert charger.current_a(1) <= charger.limit_in_force(1)
        assert_promise(rig)
    finally:
        await rig.close()


def reserved_draw(rig: SafetyRig, charger_id: str) -> float | None:
    """Return the real draw reserved for a non-compliant session (None: trusted)."""
    session = rig.controller.book.get(charger_id, 1)
    assert session is not None
    return session.non_compliant_a


# ------------------------------------------------- removed while it charges


async def test_a_charger_removed_while_its_car_charges(rig: SafetyRig) -> None:
    """Its session stays booked, but it is neither solved nor written to any more."""
    gone = await rig.add(ChargerSpec("GONE", "main"))
    stay = await rig.add(ChargerSpec("STAY", "main"))
    await gone.plug_in(1)
    await stay.plug_in(1)
    await rig.settle()
    shared = stay.limit_in_force(1)
    writes = len(gone.received_profiles)

    del rig.specs["GONE"]
    rig.controller.update_site(rig.site, rig.configs())
    await rig.settle()
    await gone.send_meter_values(1)  # its meter still reports
    await rig.settle()
    session = rig.controller.book.get("GONE", 1)
    assert session is not None
    assert session.measured_w == pytest.approx(gone.power_w(1))
    assert session.drawn_a is None  # not judged against any limit of ours
    assert rig.controller.allocation is not None
    assert session.key not in rig.controller.allocation.sessions
    assert len(gone.received_profiles) == writes
    assert stay.limit_in_force(1) >= shared  # STAY has the panel to itself


# ------------------------------------------------------------ the snapshot


async def test_the_snapshot_while_a_limit_is_unanswered() -> None:
    """Between a write and its answer the acknowledged limit is unknown."""
    rig = await make_rig(call_timeout_s=5.0)
    try:
        charger = await rig.add(
            ChargerSpec("CP", "main", sim_options={"profile_delay_s": 0.5})
        )
        seen = len(charger.received_profiles)
        await charger.plug_in(1)
        await charger.wait_for_profile(
            lambda p: p.purpose == "TxProfile" and p.sequence > 0, timeout=5.0
        )
        assert len(charger.received_profiles) > seen
        snapshot = rig.controller.snapshot().chargers["CP"]
        assert snapshot.transaction_id == charger.connectors[1].transaction_id
        assert snapshot.limit_acked_a is None  # the answer has not come yet
        await rig.settle()
        snapshot = rig.controller.snapshot().chargers["CP"]
        assert snapshot.limit_acked_a == charger.limit_in_force(1)
        assert_promise(rig)
    finally:
        await rig.close()


# ------------------------------------------------- stored state, no event loop


def test_rotation_state_is_read_and_written_without_a_running_loop() -> None:
    """A runner may restore the stored state before its event loop runs."""
    server = CentralSystem(ServerConfig(host="127.0.0.1", port=0), lambda _: None)
    site = Site(panels=[Panel(id="main", limit_kw=11.0)], voltage_v=VOLTS)
    controller = SiteController(server, site, {})
    controller.import_state(
        {
            "rotation": {
                "order": ["B#1", "A#1"],
                "waited_s": {"A#1": 120.0},
                "due": ["A#1"],
            }
        }
    )
    assert controller.rotation_order() == ["B#1", "A#1"]
    exported = controller.export_state()
    assert exported["rotation"]["order"] == ["B#1", "A#1"]
    assert exported["rotation"]["due"] == ["A#1"]
    assert exported["rotation"]["waited_s"]["A#1"] == pytest.approx(120.0, abs=1.0)


# --------------------------------------------------- a failing rebalance


async def test_a_failing_rebalance_keeps_the_limits_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The owner's tag priority lookup raises: logged, nothing written, then fixed."""
    broken = True

    def priority(charger_id: str, id_tag: str | None) -> int | None:
        if broken:
            raise LookupError("tag store unavailable")
        return None

    rig = await make_rig(11.0, session_priority=priority)
    try:
        first = await rig.add(ChargerSpec("A", "main", max_current_a=16.0))
        second = await rig.add(ChargerSpec("B", "main", max_current_a=16.0))
        with caplog.at_level(logging.ERROR):
            await first.plug_in(1)
            await rig.settle()
        assert any(
            r.getMessage() == "Rebalance failed; limits unchanged"
            for r in caplog.records
        )
        assert tx_limits(first) == []  # nothing was written for the session
        held = first.limit_in_force(1)
        assert held == first.start_limit(1)  # it runs at its connector's default

        broken = False
        await second.plug_in(1)
        await rig.settle()
        assert tx_limits(first) and tx_limits(second)
        total_w = (first.limit_in_force(1) + second.limit_in_force(1)) * 3 * VOLTS
        assert total_w <= 11_000 * 0.95 + 1e-6
        assert_promise(rig)
    finally:
        await rig.close()


def tx_limits(charger: ProbedCharger) -> list[float]:
    return [p.limit for p in charger.received_profiles if p.purpose == "TxProfile"]


# ---------------------------------------------- a charger without profiles


async def test_a_charger_without_smart_charging_is_reserved_not_judged(
    rig: SafetyRig,
) -> None:
    """No profile limits it: its hardware maximum is reserved, its meter not judged."""
    dumb = await rig.add(
        ChargerSpec(
            "DUMB", "main", max_current_a=16.0, sim_options={"smart_charging": False}
        )
    )
    smart = await rig.add(ChargerSpec("SMART", "main"))
    await dumb.plug_in(1)
    await smart.plug_in(1)
    await rig.settle()
    capabilities = rig.controller.capabilities("DUMB")
    assert capabilities is not None and not capabilities.controllable
    for _ in range(4):
        await dumb.send_meter_values(1)
    await rig.settle()
    session = rig.controller.book.get("DUMB", 1)
    assert session is not None
    assert session.drawn_a == pytest.approx(16.0)
    assert session.non_compliant_a is None  # no limit of ours to break
    assert rig.controller.snapshot().chargers["DUMB"].limit_acked_a is None
    assert dumb.received_profiles == []
    budget_w = 22_000 * 0.95
    assert (16.0 + smart.limit_in_force(1)) * 3 * VOLTS <= budget_w + 1e-6
    assert_promise(rig)


# ---------------------------------------------- boot defaults unanswered


async def test_boot_defaults_unanswered_after_a_reboot(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = await make_rig(call_timeout_s=0.3)
    try:
        charger = await rig.add(ChargerSpec("CP", "main", max_current_a=16.0))
        charger.ignore_actions.add("SetChargingProfile")
        with caplog.at_level(logging.WARNING):
            await charger.reboot(resume=False)
            await rig.settle()
        assert any(
            r.getMessage().startswith("Charger CP: boot defaults not written")
            for r in caplog.records
        )
        # What it may hold stays counted: the unanswered write is pending.
        book = rig.controller.writer.book("CP")
        assert any(slot.pending_a is not None for slot in book.slots.values())
        assert_promise(rig)

        # It answers again: a car that plugs in gets its limit.
        charger.ignore_actions.clear()
        await charger.plug_in(1)
        await rig.settle()
        assert tx_limits(charger)
        assert charger.limit_in_force(1) <= 16.0
        assert_promise(rig)
    finally:
        await rig.close()


# ------------------------------------------------------- phase switching


async def test_a_switching_chargers_phases_are_forgotten_when_its_session_ends(
    rig: SafetyRig,
) -> None:
    charger = await rig.add(
        ChargerSpec(
            "SW",
            "main",
            version="2.0.1",
            grid_phase="L2",
            sim_options={"phase_switching": True},
        )
    )
    await charger.plug_in(1)
    await rig.settle()
    assert rig.controller.phases_in_use("SW", 1) == 3
    assert rig.controller.phase_switching.acked == {"SW#1": 3}
    await charger.unplug(1)
    await rig.settle()
    assert rig.controller.phases_in_use("SW", 1) is None
    assert rig.controller.phase_switching.acked == {}
    assert_promise(rig)


# ------------------------------------------------- a stranger's pull


async def test_a_pull_from_an_unconfigured_charger_is_rejected(
    rig: SafetyRig,
) -> None:
    stranger = ProbedCharger("STRANGER", rig.url, version="2.1")
    await stranger.start()
    try:
        assert await stranger.pull_profile(1) == "Rejected"
        assert stranger.pulls == [(1, "Rejected", None)]
    finally:
        await stranger.stop()


# ------------------------------------------- a profile that is not ours


async def test_a_foreign_profile_found_by_the_read_back_is_reserved() -> None:
    """Another back office left a TxProfile at a higher stack level on a charger.

    The composite schedule read back after our first limit shows more than ours: the
    charger is reported non-compliant, what its schedule says stays reserved, and the
    car already charging next to it only keeps what is left (here: nothing, 0 A).
    """
    rig = await make_rig(11.0)
    try:
        other = await rig.add(ChargerSpec("B", "main"))
        await other.plug_in(1)
        await rig.settle()
        foreign = await rig.add(ChargerSpec("A", "main", max_current_a=16.0))
        foreign.profiles.install(
            InstalledProfile(
                id=4242,
                connector_id=1,
                purpose="TxProfile",
                stack_level=9,
                kind="Relative",
                rate_unit="A",
                periods=(Period(start_s=0.0, limit=14.0),),
            ),
            replace_same_stack=False,
        )
        await foreign.plug_in(1)
        await rig.settle()
        flagged = [r for r in rig.reports if isinstance(r, ChargerNonCompliant)]
        assert [(r.charger_id, r.source, r.seen_a) for r in flagged] == [
            ("A", "schedule", 14.0)
        ]
        assert flagged[0].limit_a < 14.0  # what we had given it
        assert reserved_draw(rig, "A") == 14.0
        assert foreign.limit_in_force(1) == 14.0  # the foreign profile governs
        # 11 kW x 0.95 = 15.1 A on three phases; 14 A are reserved for A.
        assert other.limit_in_force(1) == 0.0
        assert rig.check("final") == []  # within the budget once it is known
    finally:
        await rig.close()


async def test_a_charger_removed_while_a_decrease_is_in_flight_gets_no_increase() -> (
    None
):
    """Its increase was planned with the decrease that makes room for it."""
    rig = await make_rig(11.0, call_timeout_s=5.0)
    try:
        slow = await rig.add(
            ChargerSpec("SLOW", "main", sim_options={"profile_delay_s": 0.3})
        )
        await slow.plug_in(1)
        await rig.settle()
        alone = slow.limit_in_force(1)
        leaving = await rig.add(ChargerSpec("LEAVING", "main"))
        await rig.settle()
        seen = len(slow.received_profiles)
        await leaving.plug_in(1)
        lowered = await slow.wait_for_profile(
            lambda p: p.purpose == "TxProfile"
            and p.limit < alone
            and p not in slow.received_profiles[:seen]
        )
        del rig.specs["LEAVING"]
        rig.controller.update_site(rig.site, rig.configs())
        await rig.settle()
        assert lowered.limit < alone
        assert tx_limits(leaving) == []  # its planned increase was dropped
        assert slow.limit_in_force(1) == alone  # the panel is SLOW's again
    finally:
        await rig.close()


# ------------------------------------------------- the phase switch's wake-up


def phase_timer(rig: SafetyRig) -> asyncio.TimerHandle | None:
    """Return the controller's pending phase-decision wake-up (a call: not narrowed)."""
    return rig.controller.phase_switching.timer


async def test_a_surplus_that_dips_and_rises_again_keeps_the_earlier_wake_up() -> None:
    """One timer for the up-delay: a later rise does not push the look-again back."""
    settings = PhaseSettings(dwell_s=0.0, up_margin_kw=0.4, up_delay_s=60.0)

    def solar(kw: float) -> Site:
        return Site(
            panels=[Panel(id="solar", limit_kw=kw, safety_margin_pct=0)],
            voltage_v=VOLTS,
        )

    rig = SafetyRig(solar(2.5).panels, phase_settings=settings)
    await rig.start()
    try:
        charger = await rig.add(
            ChargerSpec(
                "SW",
                "solar",
                version="2.0.1",
                grid_phase="L2",
                sim_options={"phase_switching": True},
            )
        )
        await charger.plug_in(1)
        await rig.settle()
        assert rig.controller.phases_in_use("SW", 1) == 1  # 2.5 kW: one phase
        assert phase_timer(rig) is None

        rig.update_site(solar(6.0))  # above the three-phase minimum: wait 60 s
        await rig.settle()
        timer = phase_timer(rig)
        assert timer is not None
        first = timer.when()
        assert first - asyncio.get_running_loop().time() > 50
        rig.update_site(solar(2.5))  # it dips
        await rig.settle()
        rig.update_site(solar(6.0))  # and rises again: its 60 s start anew
        await rig.settle()
        assert phase_timer(rig) is timer  # the earlier wake-up stays
        assert timer.when() == first
        assert rig.controller.phases_in_use("SW", 1) == 1  # not switched yet
        assert charger.limit(1).phases == 1
        assert_promise(rig)
    finally:
        await rig.close()


async def test_a_session_held_at_0_a_by_its_plan_switches_when_the_plan_ends() -> None:
    """A plan holds the car at 0 A on one phase: more room changes nothing on the wire.

    The switch decision sees the room the session may use (0 under its plan), so it
    stays on its phase without a write; once the plan is gone it charges on three.
    """
    settings = PhaseSettings(dwell_s=0.0, up_margin_kw=0.4, up_delay_s=0.0)

    def solar(kw: float) -> Site:
        return Site(
            panels=[Panel(id="solar", limit_kw=kw, safety_margin_pct=0)],
            voltage_v=VOLTS,
        )

    rig = SafetyRig(solar(2.5).panels, phase_settings=settings)
    await rig.start()
    try:
        charger = await rig.add(
            ChargerSpec(
                "SW",
                "solar",
                version="2.0.1",
                grid_phase="L2",
                sim_options={"phase_switching": True},
            )
        )
        await charger.plug_in(1)
        await rig.settle()
        assert charger.limit(1).phases == 1
        assert charger.limit_in_force(1) > 0
        now = rig.clock()
        rig.set_plan("SW", ((now - timedelta(minutes=1), 0.0),))  # 0 A for now
        await rig.settle()
        assert charger.limit_in_force(1) == 0.0
        assert rig.controller.phases_in_use("SW", 1) == 1
        writes = len(charger.received_profiles)

        rig.update_site(solar(11.0))  # room for three phases, the plan says 0
        await rig.settle()
        assert len(charger.received_profiles) == writes
        assert charger.limit_in_force(1) == 0.0
        assert rig.controller.phases_in_use("SW", 1) == 1

        rig.set_plan("SW", ())  # the plan is gone: it charges on three phases
        await rig.settle()
        assert charger.limit(1).phases == 3
        assert charger.limit_in_force(1) == pytest.approx(11_000 / (3 * VOLTS), abs=0.1)
        assert rig.controller.phases_in_use("SW", 1) == 3
        assert_promise(rig)
    finally:
        await rig.close()
