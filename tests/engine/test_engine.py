"""The seed's scenarios on SmartChargingEngine, plus dispatch, events and snapshots."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from custom_components.smart_charge.engine import (
    DispatchFailure,
    EngineConfigError,
    EngineError,
    GridOverCommitted,
    Session,
    SessionProfile,
    SmartChargingEngine,
    Strategy,
    TimeOfUseWindow,
    build_ocpp16_request,
)

NOON = datetime(2025, 1, 15, 12, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


class Recorder:
    """A dispatcher that records what it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, SessionProfile]] = []
        self.cleared: list[str] = []

    async def __call__(self, session: Session, profile: SessionProfile) -> None:
        self.sent.append((session.client_id, profile))

    async def clear(self, session: Session) -> None:
        self.cleared.append(session.client_id)

    def by_client(self) -> dict[str, float]:
        return {client: profile.allocated_kw for client, profile in self.sent}


def add(engine: SmartChargingEngine, tx: str | int, **kwargs: Any) -> Session:
    kwargs.setdefault("client_id", f"CP-{tx}")
    kwargs.setdefault("max_hardware_power_kw", 22)
    return engine.add_session(transaction_id=tx, **kwargs)


def kw(profiles: list[SessionProfile]) -> dict[Any, float]:
    return {p.transaction_id: p.allocated_kw for p in profiles}


def broken_strategy(
    sessions: Sequence[Session], available_kw: float
) -> dict[Hashable, float]:
    """A custom strategy with a bug."""
    return {session.transaction_id: 1 / 0 for session in sessions}


# Read afresh: after an assert on a property mypy keeps its narrowed type.
def auto_dispatching(engine: SmartChargingEngine) -> bool:
    """Whether the engine's timer runs."""
    return engine.is_auto_dispatching


def algorithm(engine: SmartChargingEngine) -> object:
    """The engine's strategy or custom callable."""
    return engine.algorithm


async def test_single_pool_equal_share_and_margin() -> None:
    sent = Recorder()
    engine = SmartChargingEngine("SITE", 40, sent)
    for i in range(4):
        add(engine, i)
    result = await engine.dispatch(now=NOON)
    assert kw(result) == {0: 9.5, 1: 9.5, 2: 9.5, 3: 9.5}  # 40 kW minus 5 %
    assert sorted(sent.by_client()) == ["CP-0", "CP-1", "CP-2", "CP-3"]
    assert result[0].allocated_amps_per_phase == 13.7  # 9500 / 690 = 13.77 -> down
    assert engine.session_count() == len(engine) == 4


async def test_one_engine_per_sub_panel_and_vip_left_out() -> None:
    """Rule 1 and Rule 2: engines per sub-panel; VIP chargers are never added."""
    floor1, floor2, employee = Recorder(), Recorder(), Recorder()
    engines = {
        "FLOOR-1": SmartChargingEngine("FLOOR-1", 80, floor1, safety_margin_pct=0),
        "FLOOR-2": SmartChargingEngine(
            "FLOOR-2", 80, floor2, algorithm=Strategy.PRIORITY, safety_margin_pct=0
        ),
        "EMPLOYEE": SmartChargingEngine(
            "EMPLOYEE", 40, employee, algorithm="priority", safety_margin_pct=0
        ),
    }
    chargers = {
        "CP-01": "FLOOR-1",
        "CP-02": "FLOOR-1",
        "CP-05": "FLOOR-2",
        "CP-06": "FLOOR-2",
        "CP-11": "EMPLOYEE",
        "CP-12": "EMPLOYEE",
        "CP-09": None,
    }

    def get_engine(client_id: str) -> SmartChargingEngine | None:
        name = chargers[client_id]
        return engines[name] if name else None

    for tx, client in enumerate(chargers):
        engine = get_engine(client)
        if engine is not None:  # VIP: no add_session, the engine ignores it
            engine.add_session(
                transaction_id=tx,
                client_id=client,
                max_hardware_power_kw=50,
                priority=3 if client in {"CP-05", "CP-11"} else 1,
            )
            await engine.dispatch(now=NOON)
    assert floor1.by_client() == {"CP-01": 40.0, "CP-02": 40.0}
    assert floor2.by_client() == {
        "CP-05": 50.0,
        "CP-06": 30.0,
    }  # capped at 50, rest flows
    assert employee.by_client() == {"CP-11": 30.0, "CP-12": 10.0}  # 3 : 1
    assert all("CP-09" not in r.by_client() for r in (floor1, floor2, employee))


def test_hardware_and_ev_caps_and_minimum() -> None:
    """Rule 3: never above hardware or EV acceptance."""
    engine = SmartChargingEngine("SITE", 100, Recorder())
    add(
        engine,
        "a",
        max_hardware_power_kw=22,
        max_ev_acceptance_power_kw=11,
        min_charge_rate_kw=1.4,
        phases=3,
    )
    add(engine, "b", max_hardware_power_kw=7.4, phases=1)
    add(engine, "c", max_hardware_power_kw=22, user_cap_kw=5)
    assert kw(engine.optimize(now=NOON)) == {"a": 11.0, "b": 7.4, "c": 5.0}


def test_minimum_pauses_newest_and_reports_over_commitment() -> None:
    """EV minimum: 5 kW cannot hold four 1.4 kW minimums; the newest is paused."""
    engine = SmartChargingEngine("SITE", 5, Recorder(), safety_margin_pct=0)
    events: list[GridOverCommitted] = []
    engine.on("grid_over_committed", events.append)
    for i in range(4):
        add(engine, i, min_charge_rate_kw=1.4, phases=1)
    profiles = {p.transaction_id: p for p in engine.optimize(now=NOON)}
    assert [profiles[i].paused for i in range(4)] == [False, False, False, True]
    assert profiles[3].allocated_w == 0
    assert sum(p.allocated_kw for p in profiles.values()) <= 5
    assert all(profiles[i].allocated_kw >= 1.4 for i in range(3))
    assert events == [
        GridOverCommitted(
            site_id="SITE",
            paused=(3,),
            available_kw=5.0,
            required_kw=5.6,
            feasible=True,
            requested_kw=5.6,
            effective_limit_kw=5.0,
            starved_sessions=(engine.get_session(3),),  # type: ignore[arg-type]
        )
    ]
    # Priority beats age.
    engine.update_session(3, priority=2)
    profiles = {p.transaction_id: p for p in engine.optimize(now=NOON)}
    assert profiles[3].paused is False and profiles[2].paused is True


def test_default_minimum_is_exactly_six_amps() -> None:
    engine = SmartChargingEngine("SITE", 4.14 * 2, Recorder(), safety_margin_pct=0)
    add(engine, 1)
    add(engine, 2)
    add(engine, 3, phases=1)
    profiles = {p.transaction_id: p for p in engine.optimize(now=NOON)}
    assert profiles[1].allocated_amps_per_phase == 6.0
    assert profiles[2].allocated_amps_per_phase == 6.0
    assert profiles[3].paused


def test_unmanaged_session_counts_but_is_never_allocated() -> None:
    sent = Recorder()
    engine = SmartChargingEngine("SITE", 30, sent, safety_margin_pct=0)
    add(engine, "vip", managed=False, measured_power_kw=10)
    add(engine, "a")
    add(engine, "b")
    assert kw(engine.optimize(now=NOON)) == {"a": 10.0, "b": 10.0}
    assert engine.available_kw(NOON) == 20.0


def test_runtime_grid_limit_and_margin_change() -> None:
    engine = SmartChargingEngine("SITE", 100, Recorder(), safety_margin_pct=0)
    add(engine, 1)
    add(engine, 2)
    assert kw(engine.optimize(now=NOON)) == {1: 22.0, 2: 22.0}
    engine.set_grid_limit(20)
    assert kw(engine.optimize(now=NOON)) == {1: 10.0, 2: 10.0}
    engine.set_safety_margin(10)
    assert kw(engine.optimize(now=NOON)) == {1: 9.0, 2: 9.0}
    engine.set_grid_limit(0)
    assert all(p.paused for p in engine.optimize(now=NOON))
    with pytest.raises(EngineConfigError):
        engine.set_grid_limit(-1)
    with pytest.raises(EngineConfigError):
        engine.set_safety_margin(100)
    assert engine.max_grid_power_kw == 0 and engine.safety_margin_pct == 10


def test_priority_strategy_and_custom_callable() -> None:
    engine = SmartChargingEngine(
        "SITE", 40, Recorder(), algorithm=Strategy.PRIORITY, safety_margin_pct=0
    )
    add(engine, "vip", priority=3, max_hardware_power_kw=50)
    add(engine, "std", priority=1, max_hardware_power_kw=50)
    assert kw(engine.optimize(now=NOON)) == {"vip": 30.0, "std": 10.0}
    assert engine.algorithm is Strategy.PRIORITY

    def all_to_first(
        sessions: Sequence[Session], available: float
    ) -> dict[Hashable, float]:
        return {
            sessions[0].transaction_id: available * 2,
            sessions[1].transaction_id: 1.0,
        }

    engine.set_algorithm(all_to_first)
    assert algorithm(engine) is all_to_first
    # Clamped to the ceiling (50 > 40 is over budget -> the least important is paused).
    result = {p.transaction_id: p for p in engine.optimize(now=NOON)}
    assert result["vip"].allocated_kw == 0 and result["vip"].paused  # over budget alone
    assert result["std"].allocated_kw == 0  # 1 kW is below its minimum
    engine.set_algorithm(
        lambda sessions, available: {s.transaction_id: 10.0 for s in sessions}
    )
    assert kw(engine.optimize(now=NOON)) == {"vip": 10.0, "std": 10.0}
    engine.set_algorithm(broken_strategy)
    with pytest.raises(EngineError):
        engine.optimize(now=NOON)
    with pytest.raises(EngineConfigError):
        engine.set_algorithm("fastest")
    with pytest.raises(EngineConfigError):
        engine.set_algorithm(42)  # type: ignore[arg-type]


async def test_time_of_use_with_auto_dispatch_tick() -> None:
    sent = Recorder()
    engine = SmartChargingEngine(
        "SITE",
        40,
        sent,
        algorithm=Strategy.TIME_OF_USE,
        safety_margin_pct=0,
        time_of_use_windows=[
            {"peak_start_hour": 17, "peak_end_hour": 21, "peak_power_multiplier": 0.5}
        ],
        time_of_use_timezone="Europe/Berlin",
    )
    add(engine, 1, max_hardware_power_kw=50)
    add(engine, 2, max_hardware_power_kw=50)
    before_peak = datetime(2025, 1, 15, 16, 59, tzinfo=BERLIN)
    in_peak = datetime(2025, 1, 15, 16, 0, tzinfo=UTC)  # 17:00 in Berlin (winter)
    after_peak = datetime(2025, 1, 15, 21, 0, tzinfo=BERLIN)
    assert kw(await engine.tick(now=before_peak) or []) == {1: 20.0, 2: 20.0}
    assert kw(await engine.tick(now=in_peak) or []) == {1: 10.0, 2: 10.0}
    assert kw(await engine.tick(now=after_peak) or []) == {1: 20.0, 2: 20.0}
    assert len(sent.sent) == 6


def test_time_of_use_window_wraps_midnight_and_floors_pause() -> None:
    engine = SmartChargingEngine(
        "SITE",
        10,
        Recorder(),
        algorithm="time_of_use",
        safety_margin_pct=0,
        time_of_use_windows=[
            TimeOfUseWindow(
                peak_start_hour=22, peak_end_hour=6, peak_power_multiplier=0.5
            )
        ],
    )
    add(engine, 1, min_charge_rate_kw=4.14)
    add(engine, 2, min_charge_rate_kw=4.14)
    events: list[GridOverCommitted] = []
    engine.on("grid_over_committed", events.append)
    for hour, expected in (
        (21, {1: 5.0, 2: 5.0}),
        (23, {1: 5.0, 2: 0.0}),
        (3, {1: 5.0, 2: 0.0}),
        (6, {1: 5.0, 2: 5.0}),
    ):
        result = engine.optimize(now=datetime(2025, 3, 1, hour, tzinfo=UTC))
        assert kw(result) == expected, hour
    assert [e.paused for e in events] == [(2,), (2,)]
    assert events[0].available_kw == 5.0


async def test_auto_dispatch_start_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = Recorder()
    ticks = [datetime(2025, 1, 1, h, tzinfo=UTC) for h in range(3)]
    engine = SmartChargingEngine("SITE", 10, sent, clock=lambda: ticks[0])
    add(engine, 1)
    with pytest.raises(EngineConfigError):
        engine.start_auto_dispatch(0.5)
    real_sleep = asyncio.sleep
    slept: list[float] = []
    three_sent = asyncio.Event()

    async def fast_sleep(delay: float) -> None:
        slept.append(delay)
        if len(sent.sent) >= 3:
            three_sent.set()
        await real_sleep(0)

    # The engine's timer waits with asyncio.sleep (the one asyncio module).
    monkeypatch.setattr(asyncio, "sleep", fast_sleep)
    engine.start_auto_dispatch(60)
    assert auto_dispatching(engine)
    await asyncio.wait_for(three_sent.wait(), 5)
    engine.stop_auto_dispatch()
    assert not auto_dispatching(engine)
    assert len(sent.sent) >= 3 and set(slept) == {60.0}
    engine.stop_auto_dispatch()  # no-op
    await engine.close()


def test_auto_dispatch_needs_a_loop() -> None:
    engine = SmartChargingEngine("SITE", 10, Recorder())
    with pytest.raises(EngineError):
        engine.start_auto_dispatch(5)


async def test_tick_logs_errors() -> None:
    engine = SmartChargingEngine("SITE", 10, Recorder(), algorithm=broken_strategy)
    add(engine, 1)
    assert await engine.tick(now=NOON) is None


async def test_master_engine_drives_sub_engines() -> None:
    """Rule 5: the master's dispatcher sets sub-engine limits and dispatches them."""
    chargers = Recorder()
    subs = {
        "PANEL-FLOOR-1": SmartChargingEngine(
            "FLOOR-1", 80, chargers, safety_margin_pct=0
        ),
        "PANEL-FLOOR-2": SmartChargingEngine(
            "FLOOR-2", 80, chargers, safety_margin_pct=0
        ),
    }
    for i in range(4):
        add(subs["PANEL-FLOOR-1"], f"f1-{i}")
    add(subs["PANEL-FLOOR-2"], "f2-0", max_hardware_power_kw=11)

    async def to_sub(session: Session, profile: SessionProfile) -> None:
        sub = subs.get(session.client_id)
        if sub:
            sub.set_grid_limit(profile.allocated_kw)
            await sub.dispatch(now=NOON)

    master = SmartChargingEngine("SITE-MASTER", 100, to_sub, safety_margin_pct=0)
    master.add_session(
        transaction_id="floor1", client_id="PANEL-FLOOR-1", max_hardware_power_kw=80
    )
    master.add_session(
        transaction_id="floor2", client_id="PANEL-FLOOR-2", max_hardware_power_kw=80
    )
    await master.dispatch(now=NOON)
    assert subs["PANEL-FLOOR-1"].max_grid_power_kw == 50.0
    sent = chargers.by_client()
    assert sent["CP-f1-0"] == 12.5 and sent["CP-f2-0"] == 11.0
    # The master cannot see that floor 2 uses only 11 kW (the tree solve can).
    assert sum(sent.values()) <= 100


async def test_dispatch_is_parallel_and_survives_failures() -> None:
    started: list[str] = []
    gate = asyncio.Event()

    async def dispatcher(session: Session, profile: SessionProfile) -> None:
        started.append(session.client_id)
        if len(started) == 3:
            gate.set()
        await gate.wait()  # only returns if all three run at the same time
        if session.client_id == "CP-1":
            raise RuntimeError("charger offline")

    engine = SmartChargingEngine("SITE", 30, dispatcher)
    failures: list[DispatchFailure] = []
    done: list[list[SessionProfile]] = []
    engine.on("dispatch_error", failures.append)
    engine.on("dispatched", done.append)
    for i in range(3):
        add(engine, i)
    result = await asyncio.wait_for(engine.dispatch(now=NOON), 5)
    assert len(result) == 3 and sorted(started) == ["CP-0", "CP-1", "CP-2"]
    assert [f.session.client_id for f in failures] == ["CP-1"]
    assert (
        isinstance(failures[0].error, RuntimeError) and failures[0].profile is not None
    )
    assert done == [result]


async def test_overlapping_dispatches_coalesce() -> None:
    release, running = asyncio.Event(), asyncio.Event()
    runs: list[float] = []

    async def dispatcher(session: Session, profile: SessionProfile) -> None:
        runs.append(profile.allocated_kw)
        running.set()
        await release.wait()

    engine = SmartChargingEngine("SITE", 10, dispatcher, safety_margin_pct=0)
    add(engine, 1)
    first = asyncio.create_task(engine.dispatch(now=NOON))
    await asyncio.wait_for(running.wait(), 5)  # the first dispatch is sending
    engine.set_grid_limit(8)
    others = [asyncio.create_task(engine.dispatch(now=NOON)) for _ in range(5)]
    await asyncio.sleep(0)  # one loop pass, not a wait: the five calls join it
    release.set()
    first_result = await first
    other_results = await asyncio.gather(*others)
    assert runs == [10.0, 8.0]  # one running call plus one follow-up
    assert first_result[0].allocated_kw == 10.0
    assert all(r[0].allocated_kw == 8.0 for r in other_results)
    # Afterwards a new call runs again.
    assert (await engine.dispatch(now=NOON))[0].allocated_kw == 8.0
    assert runs == [10.0, 8.0, 8.0]


async def test_dispatch_error_in_optimize_reaches_callers() -> None:
    engine = SmartChargingEngine("SITE", 10, Recorder(), algorithm=broken_strategy)
    add(engine, 1)
    with pytest.raises(EngineError):
        await engine.dispatch(now=NOON)
    # The engine keeps working afterwards.
    engine.set_algorithm(Strategy.EQUAL_SHARE)
    assert len(await engine.dispatch(now=NOON)) == 1


async def test_cancelled_caller_does_not_break_dispatch() -> None:
    release, running = asyncio.Event(), asyncio.Event()

    async def dispatcher(session: Session, profile: SessionProfile) -> None:
        running.set()
        await release.wait()

    engine = SmartChargingEngine("SITE", 10, dispatcher)
    add(engine, 1)
    caller = asyncio.create_task(engine.dispatch(now=NOON))
    await asyncio.wait_for(running.wait(), 5)  # cancelled while it sends
    caller.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await engine.close()
    assert len(await engine.dispatch(now=NOON)) == 1


async def test_clear_dispatch() -> None:
    sent = Recorder()
    engine = SmartChargingEngine("SITE", 10, sent, clear_dispatcher=sent.clear)
    cleared: list[list[Session]] = []
    engine.on("cleared", cleared.append)
    add(engine, 1)
    add(engine, 2, managed=False)
    engine.optimize(now=NOON)
    result = await engine.clear_dispatch()
    assert sent.cleared == ["CP-1"] and [s.transaction_id for s in result] == [1]
    assert cleared == [result] and engine.last_profiles == {}

    async def broken(session: Session) -> None:
        raise RuntimeError("gone")

    failing = SmartChargingEngine("SITE", 10, sent, clear_dispatcher=broken)
    errors: list[DispatchFailure] = []
    failing.on("dispatch_error", errors.append)
    add(failing, 1)
    await failing.clear_dispatch()
    assert errors[0].profile is None
    assert await SmartChargingEngine("X", 1, sent).clear_dispatch() == []


async def test_session_lifecycle_and_events() -> None:
    engine = SmartChargingEngine("SITE", 22, Recorder(), phases=1, voltage_v=240)
    seen: list[tuple[str, Any]] = []

    def recorder(name: str) -> Callable[[Any], None]:
        return lambda payload: seen.append((name, payload))

    for name in ("session_added", "session_updated", "session_removed", "optimized"):
        engine.on(name, recorder(name))

    listened = asyncio.Event()

    async def async_listener(payload: Any) -> None:
        seen.append(("async", payload))
        listened.set()

    def broken(payload: Any) -> None:
        raise RuntimeError("listener bug")

    engine.on("session_added", async_listener)
    engine.on("session_added", broken)
    unsubscribe = engine.on("session_removed", broken)
    session = add(engine, "a")
    assert session.phases == 1 and session.voltage_v == 240 and session.sequence == 1
    await asyncio.wait_for(listened.wait(), 5)  # async listeners run as tasks
    assert ("async", session) in seen
    with pytest.raises(EngineError):
        add(engine, "a")
    with pytest.raises(EngineConfigError):
        engine.add_session(
            Session(transaction_id="b", max_hardware_power_kw=1), priority=2
        )
    with pytest.raises(EngineConfigError):
        engine.add_session(transaction_id="c", max_hardware_power_kw="11")
    engine.add_session(
        Session(transaction_id="b", max_hardware_power_kw=7, panel_id="elsewhere")
    )
    updated = engine.update_session("a", user_cap_kw=3, panel_id="ignored")
    assert updated.user_cap_kw == 3 and engine.get_session("a") == updated
    with pytest.raises(EngineError):
        engine.update_session("zzz", priority=2)
    with pytest.raises(EngineConfigError):
        engine.update_session("a", transaction_id="other")
    with pytest.raises(EngineConfigError):
        engine.update_session("a", colour="red")
    with pytest.raises(EngineConfigError):
        engine.update_session("a", phases=4)
    assert [s.transaction_id for s in engine.get_sessions()] == ["a", "b"]
    engine.optimize(now=NOON)
    assert set(engine.last_profiles) == {"a", "b"}
    unsubscribe()
    assert engine.remove_session("a").transaction_id == "a"
    assert "a" not in engine.last_profiles
    with pytest.raises(EngineError):
        engine.remove_session("a")
    assert engine.safe_remove_session("a") is None
    assert engine.safe_remove_session("b") is not None
    assert engine.session_count() == 0 and engine.get_session("b") is None
    names = [name for name, _ in seen]
    assert names.count("session_added") == 2 and names.count("session_removed") == 2
    engine.off("optimized", broken)  # not registered: no-op
    with pytest.raises(EngineError):
        engine.on("exploded", print)
    await engine.close()


def test_snapshot_round_trip() -> None:
    engine = SmartChargingEngine(
        "SITE",
        33,
        Recorder(),
        algorithm="priority",
        safety_margin_pct=7,
        time_of_use_timezone="Europe/Berlin",
    )
    add(engine, 1, priority=2, started_at=NOON)
    add(engine, "two", phases=1, grid_phase="L3", max_ev_acceptance_power_kw=7)
    data = engine.snapshot()
    assert data["sessions"][0]["started_at"] == NOON.isoformat()
    copy = SmartChargingEngine("SITE", 1, Recorder(), algorithm=lambda s, a: {})
    copy.load_snapshot(data)
    assert copy.get_sessions() == engine.get_sessions()
    assert copy.optimize(now=NOON) == engine.optimize(now=NOON)
    assert copy.snapshot()["max_grid_power_kw"] == 33
    assert copy.algorithm is Strategy.PRIORITY
    add(copy, "three")
    assert copy.get_session("three").sequence == 3  # type: ignore[union-attr]
    custom = SmartChargingEngine("SITE", 1, Recorder(), algorithm=lambda s, a: {})
    keep = custom.algorithm
    custom.load_snapshot(custom.snapshot())
    assert custom.algorithm is keep
    with pytest.raises(EngineConfigError):
        copy.load_snapshot({"version": 99})
    with pytest.raises(EngineConfigError):
        copy.load_snapshot({"version": 1, "sessions": []})
    with pytest.raises(EngineConfigError):
        copy.load_snapshot({**data, "sessions": [data["sessions"][0]] * 2})
    with pytest.raises(EngineConfigError):
        copy.load_snapshot({**data, "sessions": [{"bogus": 1}]})


def test_engine_settings_validation() -> None:
    with pytest.raises(EngineConfigError):
        SmartChargingEngine("", 10, Recorder())
    with pytest.raises(EngineConfigError):
        SmartChargingEngine("S", 10, Recorder(), phases=4)
    with pytest.raises(EngineConfigError):
        SmartChargingEngine("S", 10, Recorder(), time_of_use_timezone="Mars/Base")
    engine = SmartChargingEngine("S", 10, Recorder())
    assert engine.site_id == "S"
    assert engine.time_of_use_windows[0].peak_power_multiplier == 0.5
    engine.set_time_of_use([])
    assert engine.time_of_use_windows == ()


def test_profile_from_engine_builds_station_cap() -> None:
    """Rule 4: a ChargePointMaxProfile at stack level 0 on connector 0."""
    engine = SmartChargingEngine("SITE", 11, Recorder(), safety_margin_pct=0)
    add(engine, 17, phases=3)
    (profile,) = engine.optimize(now=NOON)
    request = build_ocpp16_request(
        profile, purpose="ChargePointMaxProfile", stack_level=0, start_schedule=NOON
    )
    assert request["connectorId"] == 0
    assert request["csChargingProfiles"]["stackLevel"] == 0
    assert "transactionId" not in request["csChargingProfiles"]
