"""The seed-compatible engine: one power pool, sessions, optimize, dispatch and events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
import inspect
import logging
import math
from typing import Any

from .allocate import EPS, allocate_site, importance_key, make_profile
from .errors import EngineConfigError, EngineError
from .model import (
    DEFAULT_VOLTAGE_V,
    Panel,
    Session,
    SessionKey,
    SessionLimit,
    SessionProfile,
    Site,
    Strategy,
    TimeOfUseWindow,
    coerce_windows,
    get_zone,
    time_of_use_multiplier,
)

_LOGGER = logging.getLogger(__name__)

type Dispatcher = Callable[[Session, SessionProfile], Awaitable[Any]]
"""Sends one session's profile to its charger (or, for a master engine, to a sub-engine)."""

type ClearDispatcher = Callable[[Session], Awaitable[Any]]
"""Removes the engine's limit from one session's charger."""

type CustomStrategy = Callable[[Sequence[Session], float], Mapping[SessionKey, float]]
"""A custom algorithm: (managed sessions, available kW) -> kW per transaction id.

The engine still enforces its invariants on the result: values are clamped to each
session's ceiling, values below a minimum become 0, and when the sum exceeds the budget
the least important sessions are paused until it fits.
"""

type EventCallback = Callable[[Any], Any]

EVENTS = frozenset(
    {
        "session_added",
        "session_updated",
        "session_removed",
        "optimized",
        "dispatched",
        "dispatch_error",
        "cleared",
        "grid_over_committed",
    }
)

DEFAULT_TIME_OF_USE_WINDOWS: tuple[TimeOfUseWindow, ...] = (
    TimeOfUseWindow(peak_start_hour=17, peak_end_hour=21, peak_power_multiplier=0.5),
)
MIN_AUTO_DISPATCH_INTERVAL_S = 1.0
SNAPSHOT_VERSION = 1


@dataclass(frozen=True, kw_only=True, slots=True)
class DispatchFailure:
    """Payload of `dispatch_error`: the dispatcher (or clear dispatcher) raised."""

    session: Session
    profile: SessionProfile | None
    error: Exception


@dataclass(frozen=True, kw_only=True, slots=True)
class GridOverCommitted:
    """Payload of `grid_over_committed`: minimums did not all fit, these were paused.

    With the seed's fields: `feasible` is whether the grid limit holds once the paused
    sessions are at 0 (False: load the engine cannot limit, the unmanaged sessions', is
    above it); `requested_kw` is what charging every managed session at its minimum
    needs (the seed's name of `required_kw`); `effective_limit_kw` is the grid limit after
    the safety margin and time of use (before unmanaged load; `available_kw` is after
    it); `starved_sessions` are the paused sessions themselves (`paused` their keys).
    """

    site_id: str
    paused: tuple[SessionKey, ...]
    available_kw: float
    required_kw: float
    feasible: bool = True
    requested_kw: float = 0.0
    effective_limit_kw: float = 0.0
    starved_sessions: tuple[Session, ...] = ()


def _utcnow() -> datetime:
    """Return the current time (the only place the engine reads the wall clock)."""
    return datetime.now(UTC)


class SmartChargingEngine:
    """One independent power pool, with the API of the seed in Python naming.

    Sessions are keyed by `transaction_id`. `optimize()` splits `max_grid_power_kw` (minus the
    safety margin and the measured power of unmanaged sessions) among the managed sessions;
    `dispatch()` optimizes and calls the dispatcher for every session in parallel.
    Sessions added without `phases`/`voltage_v` take the engine's defaults.
    """

    def __init__(
        self,
        site_id: str,
        max_grid_power_kw: float,
        dispatcher: Dispatcher,
        clear_dispatcher: ClearDispatcher | None = None,
        algorithm: Strategy | str | CustomStrategy = Strategy.EQUAL_SHARE,
        safety_margin_pct: float = 5,
        phases: int = 3,
        voltage_v: float = DEFAULT_VOLTAGE_V,
        time_of_use_windows: Sequence[TimeOfUseWindow | Mapping[str, Any]]
        | None = DEFAULT_TIME_OF_USE_WINDOWS,
        time_of_use_timezone: str = "UTC",
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        """Create an engine; raises EngineConfigError for invalid settings."""
        if not isinstance(site_id, str) or not site_id:
            raise EngineConfigError("site_id must be a non-empty string")
        if phases not in (1, 2, 3) or isinstance(phases, bool):
            raise EngineConfigError(f"phases must be 1, 2 or 3, got {phases!r}")
        self._site_id = site_id
        self._dispatcher = dispatcher
        self._clear_dispatcher = clear_dispatcher
        self._phases = phases
        self._voltage_v = float(voltage_v)
        self._clock = clock or _utcnow
        self._max_grid_power_kw = 0.0
        self._safety_margin_pct = 0.0
        self._strategy: Strategy = Strategy.EQUAL_SHARE
        self._custom: CustomStrategy | None = None
        self._windows = coerce_windows(time_of_use_windows)
        self._zone_name = time_of_use_timezone
        self._zone = get_zone(time_of_use_timezone)
        self._site: Site | None = None
        self._sessions: dict[SessionKey, Session] = {}
        self._sequence = 0
        self._profiles: dict[SessionKey, SessionProfile] = {}
        self._limits: dict[SessionKey, SessionLimit] = {}
        self._listeners: dict[str, list[EventCallback]] = {name: [] for name in EVENTS}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._auto_task: asyncio.Task[None] | None = None
        self._current: asyncio.Future[list[SessionProfile]] | None = None
        self._next: asyncio.Future[list[SessionProfile]] | None = None
        self._next_now: datetime | None = None
        self._driver: asyncio.Task[None] | None = None
        self.set_grid_limit(max_grid_power_kw)
        self.set_safety_margin(safety_margin_pct)
        self.set_algorithm(algorithm)
        # Validate the settings once by building the site.
        self._get_site()

    # ----------------------------------------------------------------- settings

    @property
    def site_id(self) -> str:
        """Return the id of this pool (the root panel id)."""
        return self._site_id

    @property
    def max_grid_power_kw(self) -> float:
        """Return the current grid limit (kW)."""
        return self._max_grid_power_kw

    @property
    def safety_margin_pct(self) -> float:
        """Return the safety margin (%)."""
        return self._safety_margin_pct

    @property
    def algorithm(self) -> Strategy | CustomStrategy:
        """Return the strategy or the custom callable."""
        return self._custom if self._custom is not None else self._strategy

    @property
    def time_of_use_windows(self) -> tuple[TimeOfUseWindow, ...]:
        """Return the time-of-use windows."""
        return self._windows

    @property
    def last_profiles(self) -> dict[SessionKey, SessionProfile]:
        """Return the profiles of the last optimize, by transaction id."""
        return dict(self._profiles)

    @property
    def last_limits(self) -> dict[SessionKey, SessionLimit]:
        """Return why each session got what it got in the last optimize, by id.

        Empty after a custom algorithm: its choices have no constraint to name.
        """
        return dict(self._limits)

    @property
    def is_auto_dispatching(self) -> bool:
        """Return whether auto-dispatch is running."""
        return self._auto_task is not None and not self._auto_task.done()

    def set_grid_limit(self, max_grid_power_kw: float) -> None:
        """Change the grid limit at runtime (0 is valid: everything paused)."""
        if (
            isinstance(max_grid_power_kw, bool)
            or not isinstance(max_grid_power_kw, int | float)
            or not math.isfinite(max_grid_power_kw)
            or max_grid_power_kw < 0
        ):
            raise EngineConfigError(
                f"grid limit must be a finite number ≥ 0, got {max_grid_power_kw!r}"
            )
        self._max_grid_power_kw = float(max_grid_power_kw)
        self._site = None

    def set_safety_margin(self, safety_margin_pct: float) -> None:
        """Change the safety margin (0 ≤ pct < 100)."""
        if (
            isinstance(safety_margin_pct, bool)
            or not isinstance(safety_margin_pct, int | float)
            or not 0 <= safety_margin_pct < 100
        ):
            raise EngineConfigError(
                f"safety margin must be in [0, 100), got {safety_margin_pct!r}"
            )
        self._safety_margin_pct = float(safety_margin_pct)
        self._site = None

    def set_algorithm(self, algorithm: Strategy | str | CustomStrategy) -> None:
        """Use a built-in strategy (or its name) or a custom callable."""
        if isinstance(algorithm, str):
            try:
                self._strategy = Strategy(algorithm)
            except ValueError as err:
                raise EngineConfigError(f"unknown strategy {algorithm!r}") from err
            self._custom = None
        elif callable(algorithm):
            self._custom = algorithm
        else:
            raise EngineConfigError(f"not a strategy: {algorithm!r}")
        self._site = None

    def set_time_of_use(
        self,
        windows: Sequence[TimeOfUseWindow | Mapping[str, Any]],
        time_zone: str | None = None,
    ) -> None:
        """Replace the time-of-use windows (and optionally the time zone)."""
        self._windows = coerce_windows(windows)
        if time_zone is not None:
            self._zone = get_zone(time_zone)
            self._zone_name = time_zone
        self._site = None

    def _get_site(self) -> Site:
        """Return the one-panel site that describes this pool."""
        if self._site is None:
            self._site = Site(
                panels=[
                    Panel(
                        id=self._site_id,
                        limit_kw=self._max_grid_power_kw,
                        safety_margin_pct=self._safety_margin_pct,
                        strategy=self._strategy,
                        time_of_use_windows=self._windows,
                    )
                ],
                voltage_v=self._voltage_v,
                time_zone=self._zone_name,
            )
        return self._site

    # ----------------------------------------------------------------- sessions

    def add_session(self, session: Session | None = None, /, **kwargs: Any) -> Session:
        """Add a session (a Session or its fields as keyword arguments) and return it.

        Raises EngineError if the transaction id is already in the engine.
        """
        if session is None:
            kwargs.setdefault("phases", self._phases)
            kwargs.setdefault("voltage_v", self._voltage_v)
            try:
                session = Session(**kwargs)
            except TypeError as err:
                raise EngineConfigError(f"invalid session: {err}") from err
        elif kwargs:
            raise EngineConfigError("pass a Session or keyword arguments, not both")
        if session.transaction_id in self._sessions:
            raise EngineError(
                f"session {session.transaction_id!r} is already in the engine"
            )
        self._sequence += 1
        stored = replace(
            session, panel_id=None, sequence=session.sequence or self._sequence
        )
        self._sessions[stored.transaction_id] = stored
        self._emit("session_added", stored)
        return stored

    def update_session(self, transaction_id: SessionKey, /, **changes: Any) -> Session:
        """Change fields of a session and return it; raises EngineError if unknown."""
        current = self._sessions.get(transaction_id)
        if current is None:
            raise EngineError(f"unknown session {transaction_id!r}")
        if "transaction_id" in changes and changes["transaction_id"] != transaction_id:
            raise EngineConfigError("the transaction id of a session cannot change")
        names = {f.name for f in fields(Session)}
        unknown = set(changes) - names
        if unknown:
            raise EngineConfigError(f"unknown session fields {sorted(unknown)}")
        changes.pop("panel_id", None)
        updated = replace(current, **changes)
        self._sessions[transaction_id] = updated
        self._emit("session_updated", updated)
        return updated

    def remove_session(self, transaction_id: SessionKey) -> Session:
        """Remove a session and return it; raises EngineError if unknown."""
        session = self._sessions.pop(transaction_id, None)
        if session is None:
            raise EngineError(f"unknown session {transaction_id!r}")
        self._profiles.pop(transaction_id, None)
        self._limits.pop(transaction_id, None)
        self._emit("session_removed", session)
        return session

    def safe_remove_session(self, transaction_id: SessionKey) -> Session | None:
        """Remove a session if present; return it, or None (never raises)."""
        if transaction_id not in self._sessions:
            return None
        return self.remove_session(transaction_id)

    def get_sessions(self) -> list[Session]:
        """Return all sessions in the order they were added."""
        return list(self._sessions.values())

    def get_session(self, transaction_id: SessionKey) -> Session | None:
        """Return one session, or None."""
        return self._sessions.get(transaction_id)

    def session_count(self) -> int:
        """Return the number of sessions."""
        return len(self._sessions)

    def __len__(self) -> int:
        """Return the number of sessions."""
        return len(self._sessions)

    # ----------------------------------------------------------------- optimize

    def effective_limit_kw(self, now: datetime | None = None) -> float:
        """Return the grid limit after the safety margin and time of use (capped at 1)."""
        factor = 1.0 - self._safety_margin_pct / 100.0
        if self._strategy is Strategy.TIME_OF_USE and self._custom is None:
            factor *= time_of_use_multiplier(
                self._windows, now or self._clock(), self._zone
            )
        return self._max_grid_power_kw * factor

    def available_kw(self, now: datetime | None = None) -> float:
        """Return the power left for managed sessions (after margin, time of use, unmanaged)."""
        unmanaged = sum(
            s.measured_power_kw for s in self._sessions.values() if not s.managed
        )
        return self.effective_limit_kw(now) - unmanaged

    def optimize(self, now: datetime | None = None) -> list[SessionProfile]:
        """Allocate the pool and return one profile per managed session.

        `now` (aware datetime) drives time of use; default: the engine's clock.
        Emits `optimized`, and `grid_over_committed` when sessions had to be paused.
        """
        when = now or self._clock()
        sessions = list(self._sessions.values())
        limits: dict[SessionKey, SessionLimit] = {}
        if self._custom is not None:
            profiles, paused, over = self._optimize_custom(sessions, when)
        else:
            allocation = allocate_site(self._get_site(), sessions, now=when)
            profiles = list(allocation.sessions.values())
            paused, over = allocation.paused, allocation.over_committed
            limits = dict(allocation.limits)
        self._profiles = {p.transaction_id: p for p in profiles}
        self._limits = limits
        self._emit("optimized", profiles)
        if over:
            available = self.available_kw(when)
            required = sum(s.min_kw for s in sessions if s.managed)
            self._emit(
                "grid_over_committed",
                GridOverCommitted(
                    site_id=self._site_id,
                    paused=paused,
                    available_kw=available,
                    required_kw=required,
                    feasible=available >= -EPS,
                    requested_kw=required,
                    effective_limit_kw=self.effective_limit_kw(when),
                    starved_sessions=tuple(self._sessions[key] for key in paused),
                ),
            )
        return profiles

    def _optimize_custom(
        self, sessions: list[Session], now: datetime
    ) -> tuple[list[SessionProfile], tuple[SessionKey, ...], bool]:
        """Run the custom callable and enforce the invariants on its answer."""
        assert self._custom is not None
        managed = [s for s in sessions if s.managed]
        available = self.available_kw(now)
        try:
            wanted = self._custom(list(managed), max(available, 0.0))
        except Exception as err:
            raise EngineError(f"custom strategy failed: {err}") from err
        power: dict[SessionKey, float] = {}
        for session in managed:
            raw = wanted.get(session.transaction_id, 0.0)
            x = (
                float(raw)
                if isinstance(raw, int | float) and math.isfinite(raw)
                else 0.0
            )
            x = min(max(x, 0.0), session.ceiling_kw)
            power[session.transaction_id] = x if x >= session.min_kw - EPS else 0.0
        ranked = sorted(
            range(len(managed)),
            key=lambda i: importance_key(managed[i], i),
            reverse=True,
        )
        total = sum(power.values())
        paused: list[SessionKey] = []
        for i in ranked:
            if total <= available + EPS:
                break
            key = managed[i].transaction_id
            if power[key] > 0:
                total -= power[key]
                power[key] = 0.0
                paused.append(key)
        profiles = [
            make_profile(
                s,
                power[s.transaction_id],
                power[s.transaction_id] == 0.0 and s.ceiling_kw > 0,
            )
            for s in managed
        ]
        return profiles, tuple(paused), bool(paused) or available < -EPS

    # ----------------------------------------------------------------- dispatch

    async def dispatch(self, now: datetime | None = None) -> list[SessionProfile]:
        """Optimize and send every session's profile through the dispatcher, in parallel.

        A dispatcher that raises emits `dispatch_error`; the others still run. Calls that
        overlap a running dispatch coalesce into one follow-up run after it.
        """
        loop = asyncio.get_running_loop()
        if self._current is None:
            self._current = loop.create_future()
            self._next_now = now
            future = self._current
            self._driver = loop.create_task(self._drive())
        else:
            if self._next is None:
                self._next = loop.create_future()
            self._next_now = now
            future = self._next
        return await asyncio.shield(future)

    async def _drive(self) -> None:
        """Run queued dispatches one after another."""
        while (future := self._current) is not None:
            now, self._next_now = self._next_now, None
            try:
                result = await self._dispatch_once(now)
            except Exception as err:  # noqa: BLE001 - handed to the awaiting callers
                future.set_exception(err)
                # Nobody may await it (a caller was cancelled); mark it retrieved.
                future.exception()
            else:
                future.set_result(result)
            self._current, self._next = self._next, None

    async def _dispatch_once(self, now: datetime | None) -> list[SessionProfile]:
        """Optimize, then call the dispatcher for every managed session."""
        profiles = self.optimize(now)
        sessions = self._sessions
        pairs = [
            (sessions[p.transaction_id], p)
            for p in profiles
            if p.transaction_id in sessions
        ]
        await asyncio.gather(
            *(self._send(session, profile) for session, profile in pairs)
        )
        self._emit("dispatched", profiles)
        return profiles

    async def _send(self, session: Session, profile: SessionProfile) -> None:
        """Call the dispatcher for one session; report a failure as an event."""
        try:
            await self._dispatcher(session, profile)
        except Exception as err:  # noqa: BLE001 - one charger must not stop the others
            _LOGGER.warning(
                "Dispatch to %s (%s) failed: %s",
                session.client_id,
                session.transaction_id,
                err,
            )
            self._emit(
                "dispatch_error",
                DispatchFailure(session=session, profile=profile, error=err),
            )

    async def clear_dispatch(self) -> list[Session]:
        """Call the clear dispatcher for every managed session, in parallel; emit `cleared`."""
        sessions = [s for s in self._sessions.values() if s.managed]
        clear = self._clear_dispatcher
        if clear is not None:

            async def _clear(session: Session) -> None:
                try:
                    await clear(session)
                except Exception as err:  # noqa: BLE001 - keep clearing the others
                    _LOGGER.warning("Clearing %s failed: %s", session.client_id, err)
                    self._emit(
                        "dispatch_error",
                        DispatchFailure(session=session, profile=None, error=err),
                    )

            await asyncio.gather(*(_clear(session) for session in sessions))
        self._profiles = {}
        self._limits = {}
        self._emit("cleared", sessions)
        return sessions

    # ----------------------------------------------------------------- auto dispatch

    def start_auto_dispatch(self, interval_s: float = 60.0) -> None:
        """Dispatch every interval_s seconds (≥ 1) until stopped; restarts if running."""
        if (
            isinstance(interval_s, bool)
            or not isinstance(interval_s, int | float)
            or not interval_s >= MIN_AUTO_DISPATCH_INTERVAL_S
        ):
            raise EngineConfigError(
                f"auto-dispatch interval must be ≥ 1 s, got {interval_s!r}"
            )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError as err:
            raise EngineError("start_auto_dispatch needs a running event loop") from err
        self.stop_auto_dispatch()
        self._auto_task = loop.create_task(self._auto_loop(float(interval_s)))

    def stop_auto_dispatch(self) -> None:
        """Stop auto-dispatch (no-op when not running)."""
        if self._auto_task is not None:
            self._auto_task.cancel()
            self._auto_task = None

    async def _auto_loop(self, interval_s: float) -> None:
        """Sleep, tick, repeat."""
        while True:
            await asyncio.sleep(interval_s)
            await self.tick()

    async def tick(self, now: datetime | None = None) -> list[SessionProfile] | None:
        """Run one auto-dispatch step: dispatch, logging (not raising) any error."""
        try:
            return await self.dispatch(now)
        except Exception:
            _LOGGER.exception("Auto-dispatch of %s failed", self._site_id)
            return None

    async def close(self) -> None:
        """Stop auto-dispatch and wait for a running dispatch to finish."""
        self.stop_auto_dispatch()
        if self._driver is not None and not self._driver.done():
            await asyncio.shield(self._driver)

    # ----------------------------------------------------------------- events

    def on(self, event: str, callback: EventCallback) -> Callable[[], None]:
        """Call callback(payload) on event; returns a function that unsubscribes.

        A callback may be sync or async; its exceptions are logged, never raised.
        """
        if event not in EVENTS:
            raise EngineError(f"unknown event {event!r}; known: {sorted(EVENTS)}")
        self._listeners[event].append(callback)

        def _unsubscribe() -> None:
            self.off(event, callback)

        return _unsubscribe

    def off(self, event: str, callback: EventCallback) -> None:
        """Remove a callback (no-op if it is not registered)."""
        listeners = self._listeners.get(event, [])
        if callback in listeners:
            listeners.remove(callback)

    def _emit(self, event: str, payload: Any) -> None:
        """Call every listener of event with payload."""
        for callback in list(self._listeners[event]):
            try:
                result = callback(payload)
                if inspect.isawaitable(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._task_done)
            except Exception:
                _LOGGER.exception("Listener of %s failed", event)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """Forget a finished listener task and log its failure."""
        self._tasks.discard(task)
        if not task.cancelled() and (err := task.exception()) is not None:
            _LOGGER.error("Listener task failed: %s", err)

    # ----------------------------------------------------------------- snapshots

    def snapshot(self) -> dict[str, Any]:
        """Return the settings and sessions as a JSON-ready dict."""
        return {
            "version": SNAPSHOT_VERSION,
            "site_id": self._site_id,
            "max_grid_power_kw": self._max_grid_power_kw,
            "safety_margin_pct": self._safety_margin_pct,
            "algorithm": "custom" if self._custom is not None else str(self._strategy),
            "phases": self._phases,
            "voltage_v": self._voltage_v,
            "time_of_use_windows": [w.as_dict() for w in self._windows],
            "time_of_use_timezone": self._zone_name,
            "sessions": [s.as_dict() for s in self._sessions.values()],
        }

    def load_snapshot(self, data: Mapping[str, Any]) -> None:
        """Restore settings and sessions from `snapshot()` output.

        The dispatchers and a custom algorithm are not part of a snapshot; a snapshot taken
        with a custom algorithm keeps the current algorithm. Emits no session events.
        """
        if data.get("version") != SNAPSHOT_VERSION:
            raise EngineConfigError(
                f"unsupported snapshot version {data.get('version')!r}"
            )
        try:
            sessions = [Session.from_dict(item) for item in data["sessions"]]
            self.set_grid_limit(data["max_grid_power_kw"])
            self.set_safety_margin(data["safety_margin_pct"])
            if data["algorithm"] != "custom":
                self.set_algorithm(data["algorithm"])
            self.set_time_of_use(
                data["time_of_use_windows"], data["time_of_use_timezone"]
            )
            self._phases = int(data["phases"])
            self._voltage_v = float(data["voltage_v"])
        except (KeyError, TypeError, ValueError) as err:
            raise EngineConfigError(f"invalid snapshot: {err!r}") from err
        keys = [s.transaction_id for s in sessions]
        if len(set(keys)) != len(keys):
            raise EngineConfigError("duplicate transaction ids in the snapshot")
        self._sessions = {s.transaction_id: s for s in sessions}
        self._sequence = max((s.sequence for s in sessions), default=0)
        self._profiles = {}
        self._limits = {}
        self._site = None
