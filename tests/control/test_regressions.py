"""Regression tests for issue 12, items 1-6, with real ocpp clients over loopback.

Each test runs the real server and controller against simulated chargers and checks
the breaker promise where the charger is (`safety_rig.py`): the probe samples every
panel at each profile a charger answers, each clear, each start and end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
import logging
from typing import Any

import pytest

from custom_components.smart_charge.control import ChargerNonCompliant
from custom_components.smart_charge.engine import Panel
from tests.control.safety_rig import ChargerSpec, ProbedCharger, SafetyRig

pytestmark = pytest.mark.usefixtures("socket_enabled")

RigFactory = Callable[..., Awaitable[SafetyRig]]
VOLTS_3P = 230.0 * 3


@pytest.fixture
async def rig_factory() -> AsyncIterator[RigFactory]:
    rigs: list[SafetyRig] = []

    async def factory(panels: list[Panel] | float, **options: Any) -> SafetyRig:
        if not isinstance(panels, list):
            panels = [Panel(id="main", limit_kw=panels)]
        rig = SafetyRig(panels, **options)
        await rig.start()
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        await rig.close()


async def wait_until(
    condition: Callable[[], bool],
    timeout: float = 5.0,
) -> None:
    """Poll a condition of the simulators (they have no event for it) until true."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.002)


def assert_promise(rig: SafetyRig, *, strong: bool = True) -> None:
    """Assert no sampled instant (and not now) had a panel above its budget."""
    rig.sample("final check")
    assert not rig.probe_errors, rig.probe_errors
    found = [str(v) for v in rig.violations]
    assert not found, "\n".join(found[:6])
    if strong:
        found = [str(v) for v in rig.strong_violations]
        assert not found, "strong invariant:\n" + "\n".join(found[:6])


def our_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        f"{record.name}: {record.getMessage()}"
        for record in caplog.records
        if record.levelno >= logging.ERROR
        and (record.name.startswith("custom_components") or record.name == "asyncio")
    ]


# ------------------------------------------------------------------------ item 1


async def test_item1_two_stops_while_a_refused_tx_profile_is_retried(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Two sessions stop in the same instant while another shape is being tried.

    The 1.6 charger REFUSES rejects its first TxProfile (amps) and answers after
    200 ms, so its retry (watts) is in flight when ONE and TWO stop together. Nothing
    may die: no task exception, no error logged, and the next rebalance gives REFUSES
    the whole panel.
    """
    loop = asyncio.get_running_loop()
    unhandled: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: unhandled.append(context))
    try:
        rig = await rig_factory(22.0)
        one = await rig.add(ChargerSpec("ONE", "main", version="1.6"))
        two = await rig.add(ChargerSpec("TWO", "main", version="2.0.1"))
        refuses = await rig.add(ChargerSpec("REFUSES", "main", version="1.6"))
        await one.plug_in()
        await two.plug_in()
        await rig.settle()
        mark = len(refuses.received_profiles)
        refuses.refuse_next(1)
        refuses.profile_delay_s = 0.2

        def tx_profiles() -> list[Any]:
            return [
                p
                for p in refuses.received_profiles[mark:]
                if p.transaction_id is not None
            ]

        await refuses.plug_in()
        # The first TxProfile is refused; stop both others while the retry is out.
        await wait_until(
            lambda: len(tx_profiles()) >= 2
            or any(
                refuses.profile_answers.get(p.sequence) == "Rejected"
                and len(refuses.received_profiles) > mark + 1
                for p in tx_profiles()
            )
        )
        first = tx_profiles()[0]
        stopped_at = loop.time()
        await asyncio.gather(one.unplug(), two.unplug())
        await rig.settle()

        assert refuses.profile_answers.get(first.sequence) == "Rejected"
        retry = tx_profiles()[1]
        # The retry in another shape was still unanswered when both sessions ended.
        assert retry.rate_unit != first.rate_unit or retry.purpose != first.purpose
        assert refuses.profile_answered_at[retry.sequence] > stopped_at
        assert unhandled == []
        assert our_errors(caplog) == []
        assert not any(
            "never retrieved" in record.getMessage() for record in caplog.records
        )
        # The next rebalance ran: the panel (20.9 kW) is REFUSES' alone now.
        assert refuses.limit_in_force(1) == pytest.approx(30.2)
        assert_promise(rig)
    finally:
        loop.set_exception_handler(previous)


# ------------------------------------------------------------------------ item 2


def _start_conf_index(charger: ProbedCharger, transaction_id: str) -> int:
    for index, frame in enumerate(charger.frames):
        if (
            frame[0] == 3
            and isinstance(frame[2], dict)
            and str(frame[2].get("transactionId")) == transaction_id
        ):
            return index
    raise AssertionError(f"no StartTransaction.conf for {transaction_id}")


def _profile_indexes(charger: ProbedCharger, transaction_id: str) -> list[int]:
    return [
        index
        for index, frame in enumerate(charger.frames)
        if frame[0] == 2
        and frame[2] == "SetChargingProfile"
        and str(frame[3]["csChargingProfiles"].get("transactionId")) == transaction_id
    ]


async def test_item2_strict_amps_only_16_takes_its_tx_profile_after_the_conf(
    rig_factory: RigFactory,
) -> None:
    """A strict amps-only 1.6 charger: TxProfile after the conf, accepted, never W."""
    rig = await rig_factory(22.0)
    other = await rig.add(ChargerSpec("OTHER", "main", version="2.0.1"))
    strict = await rig.add(
        ChargerSpec("STRICT", "main", version="1.6", strict=True, amps_only=True)
    )
    await other.plug_in()
    for _ in range(3):  # several sessions: every start is checked
        transaction_id = await strict.plug_in()
        assert transaction_id is not None
        await rig.settle()
        conf = _start_conf_index(strict, transaction_id)
        profiles = _profile_indexes(strict, transaction_id)
        assert profiles, "no TxProfile for the new transaction"
        assert min(profiles) > conf, "a TxProfile reached the charger before its conf"
        last = strict.received_profiles[-1]
        assert last.purpose == "TxProfile"
        assert last.transaction_id == transaction_id
        deciding = strict.limit(1).profile
        assert deciding is not None
        assert deciding.purpose == "TxProfile"
        await strict.unplug()
        await rig.settle()
    assert strict.rejection_reasons == {}
    assert [p for p in strict.received_profiles if p.rate_unit != "A"] == []
    assert_promise(rig)


async def test_item2_fallback_to_tx_default_leaves_no_stale_start_limit(
    rig_factory: RigFactory,
) -> None:
    """After a TxProfile -> TxDefaultProfile fallback the next car starts in budget.

    STRICT refuses TxProfiles, so its session limit becomes a TxDefaultProfile on
    connector 1. When that session ends, the connector must not keep the old session
    limit: the next car starts at the idle default (6 A when it fits, else 0 A).
    """
    rig = await rig_factory(22.0)
    strict = await rig.add(
        ChargerSpec(
            "STRICT",
            "main",
            version="1.6",
            strict=True,
            amps_only=True,
            sim_options={"reject_purposes": {"TxProfile"}},
        )
    )
    other = await rig.add(ChargerSpec("OTHER", "main", version="2.0.1"))
    await strict.plug_in()
    await other.plug_in()
    await rig.settle()
    session_limit = strict.limit_in_force(1)
    decided_by = strict.limit(1).profile
    assert decided_by is not None
    assert decided_by.purpose == "TxDefaultProfile"
    assert session_limit == pytest.approx(15.1)

    await strict.unplug()
    await rig.settle()
    # OTHER takes the whole panel (running cars come first): no room for a minimum.
    assert other.limit_in_force(1) == pytest.approx(30.2)
    assert strict.start_limit(1) in (0.0, 6.0)
    assert strict.start_limit(1) == 0.0, (
        f"STRICT#1 would start at {strict.start_limit(1)} A next to OTHER at "
        f"{other.limit_in_force(1)} A on a 20.9 kW budget"
    )
    assert_promise(rig)

    await strict.plug_in()
    await rig.settle()
    assert strict.limit_in_force(1) == pytest.approx(15.1)
    assert [p for p in strict.received_profiles if p.rate_unit != "A"] == []
    assert_promise(rig)


# ------------------------------------------------------------------------ item 3


@pytest.mark.parametrize("failsafe_a", [None, 6.0], ids=["no_failsafe", "failsafe_6a"])
async def test_item3_arrivals_on_a_full_panel_never_overload_it(
    rig_factory: RigFactory, failsafe_a: float | None
) -> None:
    """3 cars share 22 kW, then a 4th arrives; SLOW answers after 300 ms.

    The promise is sampled at every profile a charger answers, every start and end.
    """
    rig = await rig_factory(22.0, failsafe_current_a=failsafe_a)
    chargers = [
        await rig.add(ChargerSpec("CP1", "main", version="1.6")),
        await rig.add(
            ChargerSpec(
                "SLOW",
                "main",
                version="1.6",
                amps_only=True,
                sim_options={"profile_delay_s": 0.3},
            )
        ),
        await rig.add(ChargerSpec("CP3", "main", version="2.0.1")),
        await rig.add(ChargerSpec("CP4", "main", version="2.1")),
    ]
    for charger in chargers[:3]:
        await charger.plug_in()
        await rig.settle()
    # Fully used: 3 x 10.0 A x 690 V = 20.7 kW of the 20.9 kW budget.
    assert [c.limit_in_force(1) for c in chargers[:3]] == [10.0, 10.0, 10.0]
    assert_promise(rig)
    samples = rig.samples
    await chargers[3].plug_in()
    await rig.settle()
    assert rig.samples > samples
    assert all(c.limit_in_force(1) >= 6.0 for c in chargers)
    assert_promise(rig)
    # And the other way round: the 4th leaves, the 3 grow back.
    await chargers[3].unplug()
    await rig.settle()
    assert_promise(rig)


# ------------------------------------------------------------------------ item 4


async def test_item4_server_killed_mid_session_and_a_car_starts_offline(
    rig_factory: RigFactory,
) -> None:
    """Home Assistant dies while cars charge; a car plugs in afterwards.

    The chargers keep charging on their profiles; the car that arrives starts at its
    connector's default. The panel holds, also once the 2.1 charger's limits expire
    after `maxOfflineDuration`.
    """
    clock_offset = timedelta()

    def clock() -> datetime:
        return datetime.now(UTC) + clock_offset

    rig = await rig_factory(22.0)
    a16 = await rig.add(ChargerSpec("A16", "main", version="1.6"))
    b201 = await rig.add(ChargerSpec("B201", "main", version="2.0.1", connectors=2))
    c21 = await rig.add(
        ChargerSpec("C21", "main", version="2.1", sim_options={"clock": clock})
    )
    await a16.plug_in()
    await c21.plug_in()
    await rig.settle()
    assert_promise(rig)

    rig.controller_alive = False
    await rig.controller.stop()
    await rig.server.stop()
    chargers = (a16, b201, c21)
    async with asyncio.timeout(5):
        for gone in chargers:
            await gone.wait_closed()
    assert not any(c.connected for c in chargers)

    await b201.plug_in(1)  # offline: starts locally at its start limit
    assert b201.connectors[1].in_transaction
    assert_promise(rig)
    await b201.plug_in(2)
    assert_promise(rig)

    # Two minutes later the 2.1 session limit (maxOfflineDuration 60 s) has expired.
    clock_offset = timedelta(seconds=120)
    assert_promise(rig)


# ------------------------------------------------------------------------ item 5


@pytest.mark.parametrize(
    ("limit_kw", "bad_options", "bad_draw_a"),
    [
        (22.0, {"ignores_limits": True, "car_max_a": 16.0}, 16.0),
        (11.0, {"stuck_at_a": 9.0}, 9.0),
    ],
    ids=["ignores_limits", "stuck_at_9a"],
)
async def test_item5_a_charger_that_ignores_its_limit_is_found_and_reserved(
    rig_factory: RigFactory,
    limit_kw: float,
    bad_options: dict[str, Any],
    bad_draw_a: float,
) -> None:
    """Meter values above the accepted limit: reported, real draw reserved."""
    rig = await rig_factory(
        limit_kw, verify_grace_s=0.05, verify_samples=2, verify_tolerance_a=0.5
    )
    bad = await rig.add(
        ChargerSpec("BAD", "main", version="1.6", sim_options=bad_options)
    )
    good = await rig.add(ChargerSpec("GOOD", "main", version="2.0.1"))
    await bad.plug_in()
    await good.plug_in()
    await rig.settle()
    assert bad.current_a(1) == bad_draw_a
    assert bad.current_a(1) > bad.limit_in_force(1) + 0.5

    await asyncio.sleep(0.1)  # past the verification grace after the last write
    for _ in range(4):
        await bad.send_meter_values(1)
        await good.send_meter_values(1)
    await rig.settle()

    reports = [r for r in rig.reports if isinstance(r, ChargerNonCompliant)]
    assert reports, "no ChargerNonCompliant report"
    assert reports[0].charger_id == "BAD"
    assert reports[0].source == "meter"
    assert reports[0].seen_a == pytest.approx(bad_draw_a, abs=0.2)
    # Its real draw is reserved: GOOD only gets what is left next to it.
    budget_w = limit_kw * 1000 * 0.95
    real_w = bad.power_w(1) + good.limit_in_force(1) * VOLTS_3P
    assert real_w <= budget_w + 1e-6, (
        f"BAD draws {bad.power_w(1):.0f} W, GOOD may draw "
        f"{good.limit_in_force(1)} A: {real_w:.0f} W of {budget_w:.0f} W"
    )


# ------------------------------------------------------------------------ item 6


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
async def test_item6_station_ceiling_installed_on_each_managed_charger(
    rig_factory: RigFactory, version: str, strict: bool
) -> None:
    """ChargePointMaxProfile / ChargingStationMaxProfile, stack 0, connector 0."""
    rig = await rig_factory(22.0)
    charger = await rig.add(
        ChargerSpec("CP", "main", version=version, strict=strict, max_current_a=16.0)
    )
    purpose = (
        "ChargePointMaxProfile" if version == "1.6" else "ChargingStationMaxProfile"
    )
    ceilings = [p for p in charger.installed_profiles if p.purpose == purpose]
    assert len(ceilings) == 1, charger.installed_profiles
    ceiling = ceilings[0]
    assert ceiling.connector_id == 0
    assert ceiling.stack_level == 0
    amps = ceiling.limit if ceiling.rate_unit == "A" else ceiling.limit / VOLTS_3P
    assert amps == pytest.approx(16.0)
    assert ceiling.kind != "Relative"
    # A session under it never exceeds the ceiling, and the ceiling stays.
    await charger.plug_in()
    await rig.settle()
    assert charger.limit_in_force(1) <= 16.0
    assert [p for p in charger.installed_profiles if p.purpose == purpose]
    assert_promise(rig)


# ------------------------------------------------- found by the state machine


@pytest.mark.parametrize("how", ["not_answering", "offline"])
async def test_idle_default_that_cannot_be_lowered_stays_reserved(
    rig_factory: RigFactory, how: str
) -> None:
    """An idle connector whose default cannot be lowered keeps it in the budget.

    11 kW panel (10.45 kW budget = 15.1 A three-phase). At boot both idle connectors
    get the 6 A minimum (2 x 4.14 kW fits). HELD then stops answering
    SetChargingProfile (or goes offline) and keeps its 6 A TxDefaultProfile: a car
    plugging in there starts at 6 A. When a car arrives on CAR, the controller may give
    it only what is left next to HELD's 6 A (9.1 A), not the whole panel.
    """
    rig = await rig_factory(11.0, call_timeout_s=0.3)
    car = await rig.add(ChargerSpec("CAR", "main", version="2.0.1"))
    held = await rig.add(ChargerSpec("HELD", "main", version="1.6"))
    assert car.start_limit(1) == held.start_limit(1) == 6.0
    if how == "offline":
        await rig.vanish(held)
    else:
        held.ignore_actions.add("SetChargingProfile")
    await car.plug_in()
    await rig.settle()
    assert held.start_limit(1) == 6.0  # it never took a lower default
    assert car.limit_in_force(1) <= 9.1, (
        f"CAR got {car.limit_in_force(1)} A next to HELD's idle default of "
        f"{held.start_limit(1)} A: {(car.limit_in_force(1) + 6.0) * VOLTS_3P:.0f} W "
        f"of a 10450 W budget"
    )
    if how == "offline":
        await held.plug_in()  # a car starts at HELD's default while it is offline
    assert_promise(rig)


# ------------------------------------------------- found on the newest lane (#13)


async def test_refused_and_silent_defaults_are_lowered_once_the_chargers_heal(
    rig_factory: RigFactory,
) -> None:
    """A limit cut to 0 while one charger refuses and one is silent; both heal.

    Found by the state machine on the newest lane: a 1.6 charger that accepted a
    connector default before refuses the lowering one (it must not be taken for a
    charger without connector defaults: its connector default stays in force), and a
    silent one must be written again once it talks. After both heal, every idle
    connector starts at 0 A.
    """
    rig = await rig_factory(22.0, call_timeout_s=0.45)
    refusing = await rig.add(ChargerSpec("CP0", "main", strict=True, amps_only=True))
    silent = await rig.add(ChargerSpec("CP3", "main", version="2.0.1", connectors=2))
    assert refusing.start_limit(1) == 6.0
    assert silent.start_limit(1) == 6.0
    refusing.refuse_next(2)
    silent.ignore_actions.add("SetChargingProfile")
    rig.update_site(rig.site.__class__(panels=[Panel(id="main", limit_kw=0.0)]))
    await rig.settle()
    silent.ignore_actions.clear()
    refusing.refuse_next(0)
    await silent.heartbeat()
    await refusing.heartbeat()
    await rig.settle()
    assert [refusing.start_limit(1), silent.start_limit(1), silent.start_limit(2)] == [
        0.0,
        0.0,
        0.0,
    ]


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_one_probe_per_boot_and_no_orphaned_answer(
    rig_factory: RigFactory, caplog: pytest.LogCaptureFixture, version: str
) -> None:
    """A rebalance that meets an unprobed charger before its boot: no orphaned answer.

    The boot used to cancel the probe that the rebalance had started; the charger's
    answer to the cancelled call then came back to a call nobody waited for (a warning
    for every charger at every start).
    """
    rig = await rig_factory(22.0)
    caplog.set_level(logging.INFO)
    probes: list[str] = []

    class Counting(ProbedCharger):
        def call_handled(self, action: str, payload: dict[str, Any]) -> None:
            if action in ("GetConfiguration", "GetVariables"):
                probes.append(action)
            super().call_handled(action, payload)

    spec = ChargerSpec("CP1", "main", version=version)
    rig.specs[spec.charger_id] = spec
    rig.controller.update_site(rig.site, rig.configs())
    charger = Counting(spec.charger_id, rig.url, version=version)
    charger.probe = rig.sample
    rig.chargers[spec.charger_id] = charger
    await charger.start()
    await rig.settle()
    # One probe, or two in a row when the first finished before the boot arrived.
    assert 1 <= len(probes) <= 2
    assert charger.start_limit(1) == 6.0  # boot defaults and connector default written
    noise = [
        r.getMessage()
        for r in caplog.records
        if "never sent" in r.getMessage() or "unknown unique id" in r.getMessage()
    ]
    assert noise == []
