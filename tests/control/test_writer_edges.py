"""The profile writer at its edges, against the real server and simulated chargers.

Every test drives `ProfileWriter` over a real `CentralSystem` on 127.0.0.1 with real
`ocpp` clients (`tools/simulator`) that are silent, offline, refusing or answer with a
CALLERROR, and asserts what the charger ends up holding and what the writer's book
says. Nothing here depends on timing luck: a silent charger never answers, so its call
always runs into the server's timeout; the one test that acts while a charger is still
answering waits for the frame to arrive and acts before the charger's fixed delay is
over. The pure helpers (`_schedule_limit`, the `ChargerBook`) get direct table tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
import math
from typing import Any

import pytest

from custom_components.smart_charge.control import (
    ChargerBook,
    ChargerConfig,
    ControlReport,
    Installed,
    ProfileWriter,
)
from custom_components.smart_charge.control.reports import ChargerRejectsProfiles
from custom_components.smart_charge.control.writer import (
    SLOT_DEFAULT,
    SLOT_MAX,
    SLOT_TX,
    WriteTarget,
    _schedule_limit,
)
from custom_components.smart_charge.csms import CentralSystem, ServerConfig
from custom_components.smart_charge.csms.capabilities import ChargerCapabilities
from custom_components.smart_charge.engine import (
    STATION_MAX_16,
    TX_DEFAULT_PROFILE,
    TX_PROFILE,
)
from tests.waits import until
from tools.simulator import SimulatedCharger

pytestmark = pytest.mark.usefixtures("socket_enabled")

HARDWARE_A = 32.0
# Long enough for any answer on a loaded machine; a silent charger always reaches it.
CALL_TIMEOUT_S = 2.0


def _running() -> bool:
    return True


class Rig:
    """A real server, a `ProfileWriter` over it, and the simulated chargers."""

    def __init__(self) -> None:
        self.server = CentralSystem(
            ServerConfig(host="127.0.0.1", port=0, call_timeout_s=CALL_TIMEOUT_S),
            lambda _event: None,
        )
        self.reports: list[ControlReport] = []
        self.writer = ProfileWriter(
            self.server,
            self.reports.append,
            voltage_v=lambda config: config.voltage_v or 230.0,
        )
        self.chargers: list[SimulatedCharger] = []

    async def charger(
        self,
        charger_id: str,
        kind: type[SimulatedCharger] = SimulatedCharger,
        **options: Any,
    ) -> SimulatedCharger:
        """Start a simulated charger and wait until the server knows it."""
        sim = kind(charger_id, f"ws://127.0.0.1:{self.server.port}", **options)
        await sim.start()
        self.chargers.append(sim)
        await until(lambda: self.server.ocpp_version(charger_id) is not None)
        return sim

    async def session(
        self,
        charger_id: str,
        kind: type[SimulatedCharger] = SimulatedCharger,
        **options: Any,
    ) -> tuple[SimulatedCharger, str]:
        """Start a charger with a car charging on connector 1; return its transaction."""
        sim = await self.charger(charger_id, kind, **options)
        await sim.plug_in(1)
        await until(lambda: sim.connectors[1].transaction_id is not None)
        transaction_id = sim.connectors[1].transaction_id
        assert transaction_id is not None
        return sim, transaction_id

    def profile_calls(self, sim: SimulatedCharger, action: str) -> list[list[Any]]:
        """Return the CALL frames of `action` the charger received."""
        return [f for f in sim.frames if len(f) == 4 and f[0] == 2 and f[2] == action]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    rig = Rig()
    await rig.server.start()
    yield rig
    for sim in rig.chargers:
        await sim.stop()
    await rig.server.stop()


def _tx(
    charger_id: str, transaction_id: str, limit_a: float, **kwargs: Any
) -> WriteTarget:
    return WriteTarget(charger_id, 1, SLOT_TX, limit_a, transaction_id, **kwargs)


def _installed(sim: SimulatedCharger, purpose: str) -> list[float]:
    """Return the limits of the profiles of `purpose` the charger holds."""
    return [p.limit for p in sim.installed_profiles if p.purpose == purpose]


# ------------------------------------------------------------ not answering, offline


async def test_a_silent_charger_is_held_after_two_unanswered_writes(rig: Rig) -> None:
    sim, tid = await rig.session("SILENT")
    config = ChargerConfig("SILENT", "main")
    writer = rig.writer
    assert await writer.write_session(_tx("SILENT", tid, 16.0), config, _running)
    assert sim.limit_in_force(1) == 16.0

    sim.ignore_actions.add("SetChargingProfile")
    assert not await writer.write_session(_tx("SILENT", tid, 6.0), config, _running)
    # Two shapes tried (an unanswered attempt moves on), then held.
    units = [p.rate_unit for p in sim.received_profiles[1:]]
    assert units == ["A", "W"]
    assert "SILENT#1" in writer.held
    # The charger still holds 16 A, and so does the reserve: the 6 A may come or not.
    assert sim.limit_in_force(1) == 16.0
    book = writer.book("SILENT")
    assert book.slots[1, SLOT_TX].limit_a == 16.0
    assert book.slots[1, SLOT_TX].pending_a == 6.0
    assert book.in_force(1, tid, HARDWARE_A) == 16.0
    # Silent is not refusing.
    assert not [r for r in rig.reports if isinstance(r, ChargerRejectsProfiles)]


async def test_an_unanswered_dynamic_update_counts_as_the_first_timeout(
    rig: Rig,
) -> None:
    sim, tid = await rig.session("DYN", version="2.1")
    config = ChargerConfig("DYN", "main")
    writer = rig.writer
    assert await writer.write_session(_tx("DYN", tid, 16.0), config, _running)
    assert writer.book("DYN").slots[1, SLOT_TX].dynamic_unit == "A"

    sim.ignore_actions |= {"UpdateDynamicSchedule", "SetChargingProfile"}
    assert not await writer.write_session(_tx("DYN", tid, 20.0), config, _running)
    # The update and one full profile went unanswered: held, nothing more sent.
    assert len(rig.profile_calls(sim, "UpdateDynamicSchedule")) == 1
    assert len(sim.received_profiles) == 2
    assert "DYN#1" in writer.held
    assert sim.limit_in_force(1) == 16.0
    # Either may be in force now: the reserve is the higher one.
    assert writer.book("DYN").in_force(1, tid, HARDWARE_A) == 20.0


async def test_an_offline_charger_is_held(rig: Rig) -> None:
    sim, tid = await rig.session("GONE", version="2.1")
    config = ChargerConfig("GONE", "main")
    writer = rig.writer
    assert await writer.write_session(_tx("GONE", tid, 10.0), config, _running)
    await sim.disconnect()
    await until(lambda: not rig.server.connected("GONE"))

    # The Dynamic update cannot go out: held at once, no full profile tried.
    assert not await writer.write_session(_tx("GONE", tid, 16.0), config, _running)
    assert "GONE#1" in writer.held
    assert writer.book("GONE").in_force(1, tid, HARDWARE_A) == 16.0
    assert sim.limit_in_force(1) == 10.0
    # Without a Dynamic profile to move (a full profile), the same.
    writer.dynamic_refused.add("GONE")
    writer.held.clear()
    assert not await writer.write_session(_tx("GONE", tid, 6.0), config, _running)
    assert "GONE#1" in writer.held
    assert len(sim.received_profiles) == 1


async def test_a_charger_that_goes_offline_during_a_write_is_held(rig: Rig) -> None:
    sim, tid = await rig.session("DROP")
    config = ChargerConfig("DROP", "main")
    writer = rig.writer
    assert await writer.write_session(_tx("DROP", tid, 16.0), config, _running)
    sim.ignore_actions.add("SetChargingProfile")
    write = asyncio.ensure_future(
        writer.write_session(_tx("DROP", tid, 8.0), config, _running)
    )
    await until(lambda: len(sim.received_profiles) == 2)
    await sim.disconnect()

    # Unanswered (the library waits out its timeout), then offline: held.
    assert not await write
    assert len(sim.received_profiles) == 2
    assert "DROP#1" in writer.held
    assert writer.book("DROP").in_force(1, tid, HARDWARE_A) == 16.0
    assert sim.limit_in_force(1) == 16.0


def _plan(limits: tuple[float, ...]) -> tuple[tuple[float, float], ...]:
    """Return a schedule of one-hour periods from the start of this second."""
    start = float(math.floor(datetime.now(UTC).timestamp()))
    return tuple((start + 3600.0 * i, amps) for i, amps in enumerate(limits))


async def test_a_silent_charger_is_held_with_its_schedule(rig: Rig) -> None:
    sim, tid = await rig.session("PLAN")
    config = ChargerConfig("PLAN", "main")
    writer = rig.writer
    assert await writer.write_session(_tx("PLAN", tid, 8.0), config, _running)
    sim.ignore_actions.add("SetChargingProfile")
    plan = _plan((10.0, 16.0))
    target = _tx("PLAN", tid, 16.0, schedule=plan)

    assert not await writer.write_schedule(target, config, _running)
    # An unanswered schedule goes again in the same unit, then it is held.
    assert [p.rate_unit for p in sim.received_profiles[1:]] == ["A", "A"]
    assert "PLAN#1" in writer.held
    assert "PLAN" not in writer.schedules_refused
    book = writer.book("PLAN")
    assert book.slots[1, SLOT_TX].pending_schedule == plan
    # Until it answers, the plan's highest period stays reserved.
    assert book.in_force(1, tid, HARDWARE_A) == 16.0
    assert sim.limit_in_force(1) == 8.0

    await sim.disconnect()
    await until(lambda: not rig.server.connected("PLAN"))
    writer.held.clear()
    assert not await writer.write_schedule(target, config, _running)
    assert "PLAN#1" in writer.held


class NowAndThenSilent(SimulatedCharger):
    """A charger that leaves the SetChargingProfile requests in `silent` unanswered."""

    silent: frozenset[int] = frozenset()

    def record_frame(self, text: str) -> None:
        """Record the frame; decide before it is handled whether to answer it."""
        super().record_frame(text)
        if len(self.received_profiles) in self.silent:
            self.ignore_actions.add("SetChargingProfile")
        else:
            self.ignore_actions.discard("SetChargingProfile")


async def test_unanswered_attempts_count_in_a_row(rig: Rig) -> None:
    # Watts only: a schedule in A is refused. The 1st and 3rd requests go unanswered;
    # the refusal in between is an answer, so the charger is not held.
    sim, tid = await rig.session("FLAKY", NowAndThenSilent, rate_units="Power")
    assert isinstance(sim, NowAndThenSilent)
    sim.silent = frozenset({1, 3})
    config = ChargerConfig("FLAKY", "main")
    plan = _plan((10.0, 16.0))
    target = _tx("FLAKY", tid, 16.0, schedule=plan)

    assert await rig.writer.write_schedule(target, config, _running)
    assert [p.rate_unit for p in sim.received_profiles] == ["A", "A", "W", "W"]
    assert [sim.profile_answers.get(p.sequence) for p in sim.received_profiles] == [
        None,
        "Rejected",
        None,
        "Accepted",
    ]
    assert "FLAKY#1" not in rig.writer.held
    assert rig.writer.book("FLAKY").slots[1, SLOT_TX].schedule == plan
    assert sim.limit_in_force(1) == 10.0


async def test_a_session_that_ended_gets_no_write(rig: Rig) -> None:
    sim, tid = await rig.session("ENDS")
    config = ChargerConfig("ENDS", "main")
    answers = iter([True, False])
    # Asked before the first attempt, the session had ended: nothing goes out.
    assert await rig.writer.write_session(
        _tx("ENDS", tid, 10.0), config, lambda: next(answers)
    )
    schedule = _tx("ENDS", tid, 10.0, schedule=_plan((10.0, 6.0)))
    assert await rig.writer.write_schedule(schedule, config, lambda: False)
    assert sim.received_profiles == []
    assert rig.writer.book("ENDS").slots == {}


# ---------------------------------------------------------- CALLERRORs and refusals


async def test_a_charger_answering_every_write_with_a_callerror(rig: Rig) -> None:
    sim, tid = await rig.session("ERR", profile_status="CallError")
    config = ChargerConfig("ERR", "main")
    writer = rig.writer
    for _ in range(2):
        assert not await writer.write_session(_tx("ERR", tid, 10.0), config, _running)
    # Every shape, twice: TxProfile and TxDefaultProfile, in A and W.
    shapes = [(p.purpose, p.rate_unit) for p in sim.received_profiles]
    assert shapes == 2 * [
        (TX_PROFILE, "A"),
        (TX_PROFILE, "W"),
        (TX_DEFAULT_PROFILE, "A"),
        (TX_DEFAULT_PROFILE, "W"),
    ]
    assert sim.installed_profiles == ()
    assert "ERR#1" in writer.held
    assert writer.book("ERR").slots == {}
    # Reported once, however often it refuses.
    refusals = [r for r in rig.reports if isinstance(r, ChargerRejectsProfiles)]
    assert refusals == [ChargerRejectsProfiles("ERR")]
    assert writer.caps("ERR").rejects_profiles


class RejectingClears(SimulatedCharger):
    """A charger that answers every ClearChargingProfile with Rejected."""

    def clear_profiles(self, **criteria: Any) -> str:
        """Remove nothing."""
        return "Rejected"


@pytest.mark.parametrize("refusal", ["callerror", "rejected", "silent"])
async def test_a_clear_that_fails_keeps_the_profile_in_the_book(
    rig: Rig, refusal: str
) -> None:
    kind = RejectingClears if refusal == "rejected" else SimulatedCharger
    sim, tid = await rig.session("CLR", kind)
    config = ChargerConfig("CLR", "main")
    writer = rig.writer
    assert await writer.write_session(_tx("CLR", tid, 10.0), config, _running)
    if refusal == "callerror":
        sim.call_errors.add("ClearChargingProfile")
    elif refusal == "silent":
        sim.ignore_actions.add("ClearChargingProfile")

    assert not await writer.clear("CLR", 1, SLOT_TX)
    (clear,) = rig.profile_calls(sim, "ClearChargingProfile")
    answers = [frame[0] for frame in sim.sent if frame[1] == clear[1]]
    # Rejected is no status of ClearChargingProfile.conf: the charger's own library
    # answers it with a CALLERROR, as it does a missing feature.
    assert answers == ([] if refusal == "silent" else [4])
    assert writer.book("CLR").has_tx(1, tid)
    assert _installed(sim, TX_PROFILE) == [10.0]
    assert writer.book("CLR").in_force(1, tid, HARDWARE_A) == 10.0


async def test_a_clear_that_works_and_one_with_nothing_to_clear(rig: Rig) -> None:
    sim, tid = await rig.session("CLR2")
    config = ChargerConfig("CLR2", "main")
    writer = rig.writer
    assert await writer.write_session(_tx("CLR2", tid, 10.0), config, _running)
    assert await writer.clear("CLR2", 1, SLOT_TX)
    assert not writer.book("CLR2").has_tx(1, tid)
    assert _installed(sim, TX_PROFILE) == []
    # Nothing of ours in the slot: nothing to ask the charger.
    assert await writer.clear("CLR2", 1, SLOT_TX)
    assert len(rig.profile_calls(sim, "ClearChargingProfile")) == 1


async def test_a_limit_taken_as_a_default_clears_the_old_tx_profile(rig: Rig) -> None:
    sim, tid = await rig.session("FALL")
    config = ChargerConfig("FALL", "main")
    writer = rig.writer
    assert await writer.write_session(_tx("FALL", tid, 16.0), config, _running)
    assert _installed(sim, TX_PROFILE) == [16.0]

    # From now on it refuses TxProfiles: the limit goes as its connector default,
    # and the TxProfile of 16 A, which would still govern, is cleared.
    sim.reject_purposes = frozenset({TX_PROFILE})
    assert await writer.write_session(_tx("FALL", tid, 8.0), config, _running)
    assert len(rig.profile_calls(sim, "ClearChargingProfile")) == 1
    assert _installed(sim, TX_PROFILE) == []
    assert _installed(sim, TX_DEFAULT_PROFILE) == [8.0]
    assert sim.limit_in_force(1) == 8.0
    book = writer.book("FALL")
    assert (1, SLOT_TX) not in book.slots
    assert book.in_force(1, tid, HARDWARE_A) == 8.0
    assert writer.caps("FALL").working_purpose == TX_DEFAULT_PROFILE


async def test_a_refused_dynamic_profile_goes_again_as_absolute(rig: Rig) -> None:
    sim, tid = await rig.session("ABS", version="2.1", dynamic_profiles=False)
    config = ChargerConfig("ABS", "main")
    assert await rig.writer.write_session(_tx("ABS", tid, 12.0), config, _running)
    kinds = [
        (p.profile["chargingProfileKind"], p.rate_unit) for p in sim.received_profiles
    ]
    assert kinds == [("Dynamic", "A"), ("Absolute", "A")]
    assert "ABS" in rig.writer.dynamic_refused
    assert sim.limit_in_force(1) == 12.0
    assert rig.writer.book("ABS").slots[1, SLOT_TX].dynamic_unit is None


async def test_a_dynamic_update_answered_with_a_callerror(rig: Rig) -> None:
    sim, tid = await rig.session("UPD", version="2.1")
    config = ChargerConfig("UPD", "main")
    writer = rig.writer
    assert await writer.write_session(_tx("UPD", tid, 16.0), config, _running)
    sim.call_errors.add("UpdateDynamicSchedule")

    # The update fails, and the charger gets Absolute profiles from now on.
    assert not await writer.update_dynamic(_tx("UPD", tid, 10.0), config)
    assert "UPD" in writer.dynamic_refused
    installed = writer.book("UPD").slots[1, SLOT_TX]
    assert (installed.limit_a, installed.pending_a) == (16.0, None)
    assert sim.limit_in_force(1) == 16.0
    # The session limit then goes as a full Absolute profile.
    assert await writer.write_session(_tx("UPD", tid, 10.0), config, _running)
    assert sim.received_profiles[-1].profile["chargingProfileKind"] == "Absolute"
    assert sim.limit_in_force(1) == 10.0
    assert len(rig.profile_calls(sim, "UpdateDynamicSchedule")) == 1
    assert writer.book("UPD").slots[1, SLOT_TX].dynamic_unit is None


async def test_a_schedule_refused_in_every_unit(rig: Rig) -> None:
    sim, tid = await rig.session("ONE", max_periods=1)
    config = ChargerConfig("ONE", "main")
    writer = rig.writer
    assert writer.schedules_supported(config)
    target = _tx("ONE", tid, 16.0, schedule=_plan((10.0, 16.0, 6.0)))

    assert not await writer.write_schedule(target, config, _running)
    assert [p.rate_unit for p in sim.received_profiles] == ["A", "W"]
    assert "ONE" in writer.schedules_refused
    assert not writer.schedules_supported(config)
    assert "ONE#1" not in writer.held  # it answers: not held, planned again
    assert sim.installed_profiles == ()
    assert writer.book("ONE").slots == {}


async def test_a_profile_that_cannot_be_built_is_not_sent(rig: Rig) -> None:
    sim, tid = await rig.session("BAD")
    config = ChargerConfig("BAD", "main")
    writer = rig.writer
    status = await writer.write(
        _tx("BAD", tid, -1.0), config, purpose=TX_PROFILE, unit="A", stack_level=1
    )
    assert status == "BuildError"
    assert sim.received_profiles == []
    assert writer.book("BAD").slots == {}


# ------------------------------------------------------------- shapes and the book


async def test_a_profile_written_while_its_transaction_ends(rig: Rig) -> None:
    sim, tid = await rig.session("LATE", profile_delay_s=0.3)
    config = ChargerConfig("LATE", "main")
    writer = rig.writer
    book = writer.book("LATE")
    for status in ("Rejected", "Accepted"):
        sim.profile_status = status
        sent = len(sim.received_profiles)
        write = asyncio.ensure_future(
            writer.write(
                _tx("LATE", tid, 10.0),
                config,
                purpose=TX_PROFILE,
                unit="A",
                stack_level=1,
            )
        )
        await until(lambda: len(sim.received_profiles) > sent)  # noqa: B023
        # The transaction ends while the charger is still answering.
        book.transaction_ended(1)
        assert await write == status
        if status == "Rejected":
            # Nothing of ours was there: nothing comes back.
            assert (1, SLOT_TX) not in book.slots
    # Accepted: the charger holds it (for the ended transaction only).
    assert book.slots[1, SLOT_TX].limit_a == 10.0
    assert book.in_force(1, None, HARDWARE_A) == HARDWARE_A
    assert book.in_force(1, "another", HARDWARE_A) == HARDWARE_A


async def test_a_session_limit_as_the_configured_default(rig: Rig) -> None:
    sim, tid = await rig.session("DEF")
    config = ChargerConfig("DEF", "main", profile_purpose=TX_DEFAULT_PROFILE)
    writer = rig.writer
    assert writer.session_purposes(config) == [TX_DEFAULT_PROFILE, TX_PROFILE]
    assert await writer.write_session(_tx("DEF", tid, 12.0), config, _running)
    received = sim.received_profiles[-1]
    assert (received.purpose, received.connector_id, received.stack_level) == (
        TX_DEFAULT_PROFILE,
        1,
        1,
    )
    assert sim.limit_in_force(1) == 12.0
    assert writer.book("DEF").acked(1, SLOT_DEFAULT) == 12.0


def test_a_working_purpose_outside_the_list_changes_nothing(rig: Rig) -> None:
    writer = rig.writer
    config = ChargerConfig("NEW", "main")
    writer.capabilities["NEW"] = ChargerCapabilities().with_working(STATION_MAX_16, "A")
    # A station maximum is no shape for this charger's session limits.
    assert writer.session_purposes(config) == [TX_PROFILE, TX_DEFAULT_PROFILE]
    writer.capabilities["NEW"] = ChargerCapabilities().with_working(TX_PROFILE, "A")
    default = ChargerConfig("NEW", "main", profile_purpose=TX_DEFAULT_PROFILE)
    assert writer.session_purposes(default) == [TX_PROFILE, TX_DEFAULT_PROFILE]


def test_distrust_walks_every_shape_once(rig: Rig) -> None:
    writer = rig.writer
    config = ChargerConfig("LIAR", "main")
    seen: list[tuple[str | None, str | None]] = [
        (writer.session_purposes(config)[0], writer.units("LIAR")[0])
    ]
    while writer.distrust(config):
        caps = writer.caps("LIAR")
        seen.append((caps.working_purpose, caps.working_rate_unit))
    # Each shape once; the unit in use goes first when the purpose changes.
    assert seen == [
        (TX_PROFILE, "A"),
        (TX_PROFILE, "W"),
        (TX_DEFAULT_PROFILE, "W"),
        (TX_DEFAULT_PROFILE, "A"),
    ]
    assert not writer.distrust(config)


@pytest.mark.parametrize(("phases", "phase_to_use"), [(1, 2), (3, None)])
async def test_phase_to_use_only_on_single_phase_periods(
    rig: Rig, phases: int, phase_to_use: int | None
) -> None:
    sim, tid = await rig.session("PH", version="2.0.1")
    config = ChargerConfig("PH", "main", phases=phases)
    target = _tx("PH", tid, 16.0, phase_to_use=2, schedule=_plan((10.0, 16.0)))
    assert await rig.writer.write_schedule(target, config, _running)
    periods = sim.received_profiles[-1].schedule["chargingSchedulePeriod"]
    assert len(periods) == 2
    assert [p.get("numberPhases") for p in periods] == [phases, phases]
    assert [p.get("phaseToUse") for p in periods] == [phase_to_use] * 2


# ------------------------------------------------------------------- read-back


async def test_read_back_in_amps_and_in_watts(rig: Rig) -> None:
    sim, tid = await rig.session("RB", voltage_v=240.0)
    config = ChargerConfig("RB", "main", voltage_v=240.0)
    writer = rig.writer
    assert await writer.write_session(_tx("RB", tid, 10.0), config, _running)
    assert await writer.read_back("RB", 1, config) == 10.0
    # Asked in A, it answers in W (10 A x 240 V x 3 = 7200 W): converted back.
    sim.composite_unit = "W"
    assert await writer.read_back("RB", 1, config) == pytest.approx(10.0)
    answer = sim.sent[-1]
    assert answer[2]["chargingSchedule"]["chargingRateUnit"] == "W"
    assert answer[2]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 7200


async def test_read_back_refused_is_asked_again(rig: Rig) -> None:
    sim = await rig.charger("RBR")
    sim.composite_status = "Rejected"
    config = ChargerConfig("RBR", "main")
    assert await rig.writer.read_back("RBR", 1, config) is None
    assert await rig.writer.read_back("RBR", 1, config) is None
    assert len(rig.profile_calls(sim, "GetCompositeSchedule")) == 2
    assert "RBR" not in rig.writer.schedule_unsupported


async def test_read_back_of_a_charger_without_it_is_not_asked_again(rig: Rig) -> None:
    sim = await rig.charger("RBX", version="2.0.1")
    sim.call_errors.add("GetCompositeSchedule")
    config = ChargerConfig("RBX", "main")
    assert await rig.writer.read_back("RBX", 1, config) is None
    assert "RBX" in rig.writer.schedule_unsupported
    assert await rig.writer.read_back("RBX", 1, config) is None
    assert len(rig.profile_calls(sim, "GetCompositeSchedule")) == 1


_PERIOD = {"startPeriod": 0, "limit": 10.0}


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # 1.6: the schedule itself; 2.x: nested, a list in 2.1.
        ({"chargingRateUnit": "W", "chargingSchedulePeriod": [_PERIOD]}, (10.0, "W")),
        ({"chargingSchedule": {"chargingSchedulePeriod": [_PERIOD]}}, (10.0, "A")),
        ({"chargingSchedule": [{"chargingSchedulePeriod": [_PERIOD]}]}, (10.0, "A")),
        ({"chargingSchedulePeriod": [{"limit": "6.5"}, _PERIOD]}, (6.5, "A")),
        (None, None),
        ([_PERIOD], None),
        ({"chargingSchedule": []}, None),
        ({"chargingSchedule": 10.0}, None),
        ({"chargingSchedulePeriod": []}, None),
        ({"chargingSchedulePeriod": None}, None),
        ({"chargingSchedulePeriod": [{"startPeriod": 0}]}, None),
        ({"chargingSchedulePeriod": [{"limit": "ten"}]}, None),
        ({"chargingSchedulePeriod": [{"limit": None}]}, None),
        ({"chargingSchedulePeriod": [10.0]}, None),
        ({"chargingSchedulePeriod": [{"limit": "nan"}]}, None),
        ({"chargingSchedulePeriod": [{"limit": math.inf}]}, None),
    ],
)
def test_schedule_limit_of_malformed_answers(
    schedule: Any, expected: tuple[float, str] | None
) -> None:
    assert _schedule_limit(schedule) == expected


# -------------------------------------------------------------------- the book


def test_held_schedule_of_an_unanswered_first_write() -> None:
    book = ChargerBook()
    book.slots[1, SLOT_DEFAULT] = Installed(TX_DEFAULT_PROFILE, 1, 6.0)
    # Nothing acknowledged yet, a write of 10 A pending: it may hold 10 A already.
    book.slots[1, SLOT_TX] = Installed(
        TX_PROFILE, 1, None, transaction_id="T1", pending_a=10.0
    )
    assert book.held_schedule(1, "T1", HARDWARE_A, 100.0) == ((100.0, 10.0),)
    assert book.in_force(1, "T1", HARDWARE_A) == 10.0
    # Another transaction, or none: the connector default.
    assert book.held_schedule(1, "T2", HARDWARE_A, 100.0) == ((100.0, 6.0),)
    assert book.held_schedule(1, None, HARDWARE_A, 100.0) == ((100.0, 6.0),)
    # A station ceiling caps it.
    book.slots[0, SLOT_MAX] = Installed(STATION_MAX_16, 0, 8.0)
    assert book.held_schedule(1, "T1", HARDWARE_A, 100.0) == ((100.0, 8.0),)


def test_in_force_at_follows_the_schedule_of_its_transaction_only() -> None:
    book = ChargerBook()
    assert book.in_force_at(1, "T1", HARDWARE_A, 0.0) == HARDWARE_A
    book.slots[1, SLOT_TX] = Installed(TX_PROFILE, 1, 12.0, transaction_id="T1")
    # A constant limit: as `in_force`.
    assert book.in_force_at(1, "T1", HARDWARE_A, 0.0) == 12.0
    assert book.in_force_at(1, "T2", HARDWARE_A, 0.0) == HARDWARE_A
    assert book.in_force_at(1, None, HARDWARE_A, 0.0) == HARDWARE_A
    book.slots[1, SLOT_TX] = Installed(
        TX_PROFILE, 1, 16.0, transaction_id="T1", schedule=((0.0, 6.0), (60.0, 16.0))
    )
    assert book.in_force_at(1, "T1", HARDWARE_A, 30.0) == 6.0
    assert book.in_force_at(1, "T1", HARDWARE_A, 60.0) == 16.0
    # `in_force` counts the schedule at its highest period, at any time.
    assert book.in_force(1, "T1", HARDWARE_A) == 16.0
    assert book.in_force_at(1, "T2", HARDWARE_A, 30.0) == HARDWARE_A


def test_the_book_round_trips_every_slot() -> None:
    book = ChargerBook()
    book.slots[0, SLOT_MAX] = Installed(STATION_MAX_16, 0, 16.0)
    book.slots[0, SLOT_DEFAULT] = Installed(TX_DEFAULT_PROFILE, 0, 0.0)
    book.slots[1, SLOT_TX] = Installed(
        TX_PROFILE,
        1,
        10.0,
        transaction_id="T1",
        pending_a=12.0,
        dynamic_unit="W",
        setpoint_w=-2000.0,
    )
    book.connector_defaults_refused = True
    again = ChargerBook.from_dict(book.to_dict())
    assert again.slots == book.slots
    assert again.connector_defaults_refused
    empty = ChargerBook.from_dict({})
    assert (empty.slots, empty.connector_defaults_refused) == ({}, False)


_SLOT = {"connector_id": 1, "slot": "tx", "purpose": TX_PROFILE, "stack_level": 1}


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"slots": [{**_SLOT, "slot": "boost"}]}, ValueError),
        ({"slots": [{**_SLOT, "stack_level": "top"}]}, ValueError),
        ({"slots": [{**_SLOT, "limit_a": "lots"}]}, ValueError),
        ({"slots": [{**_SLOT, "connector_id": None}]}, TypeError),
        ({"slots": [{**_SLOT, "schedule": []}]}, ValueError),
        ({"slots": [{**_SLOT, "schedule": [[0.0]]}]}, ValueError),
        ({"slots": [{key: _SLOT[key] for key in ("slot", "purpose")}]}, KeyError),
        ({"slots": [{"connector_id": 1}]}, KeyError),
    ],
)
def test_the_book_refuses_bad_data(
    data: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        ChargerBook.from_dict(data)
