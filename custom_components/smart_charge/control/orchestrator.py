"""The rebalance orchestrator: sessions in, limits on the wire, the breaker promise kept.

`SiteController` feeds server events into the session book, runs the engine over the
running sessions and then over the idle connectors, and writes the result in the safe
order. The promise it keeps, on the charger side, for every panel at every instant after
a charger's boot defaults are acknowledged: the limits in force of the running sessions
plus what each idle managed connector would start at (its default profile) stay within
the panel's budget.

- Running sessions are allocated first; running cars never lose capacity to idle ones.
- Each idle managed connector's default (a TxDefaultProfile on the connector) is its
  minimum current when that fits under every breaker above it, else 0 A: a car that
  plugs in starts inside the budget, also while Home Assistant is down. The default is
  written only when it crosses that threshold (flash-friendly). A running connector's
  default never exceeds its session's limit, so a session that ends never adds load.
- Every write is judged on the connector's reserve (what it may draw now or right after
  its session ends, from the installed-profile book): writes that lower it go first and
  must be acknowledged (or time out) before any write that raises one.
- A charger that is offline, not answering or not following its limits keeps its
  reserve (or its real draw) in the budget.
- Every task is supervised: an error in one charger's traffic is logged once with its id
  and the next rebalance runs.

Three concerns are collaborators it owns and calls: `PhaseSwitching` (phase_switching.py:
the phases of each switched session and the pause that moves it), `ScheduleWrites`
(schedule_writes.py: when a multi-period schedule goes out, and its pointwise-minimum
step) and `V2XSetpoints` (setpoints.py: the round's V2X setpoints beside
`DischargeController`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
import logging
import time
from typing import Any, Final

from custom_components.smart_charge.csms.capabilities import ChargerCapabilities
from custom_components.smart_charge.csms.charge_point import utcnow
from custom_components.smart_charge.csms.dynamic import DynamicScheduleUpdate
from custom_components.smart_charge.csms.errors import (
    CallTimeoutError,
    ChargerNotConnectedError,
)
from custom_components.smart_charge.csms.events import (
    BootReceived,
    ChargerConnected,
    ChargerDisconnected,
    ChargerEvent,
    ConnectorStatus,
    EVChargingNeeds,
    MeterValuesReceived,
    StatusChanged,
    TransactionStarted,
    TransactionStopped,
)
from custom_components.smart_charge.csms.server import CentralSystem
from custom_components.smart_charge.engine import (
    PhaseSettings,
    Session,
    SessionLimit,
    SessionProfile,
    Site,
    SiteAllocation,
    allocate_site,
    with_phases,
)

from .acceptance import learn_acceptance
from .config import STATION_MAX_PURPOSES, ChargerConfig
from .discharge import DischargeController
from .persistence import export_rotation, export_state, import_rotation, import_state
from .phase_switching import PhaseSwitching
from .planned import PlannedWrite
from .probe import after_boot, probe_capabilities
from .reports import (
    CapabilitiesLearned,
    ChargerCompliant,
    ChargerNonCompliant,
    ControlReport,
    ReportCallback,
)
from .schedule_writes import ScheduleWrites
from .schedules import Schedule, fit_schedule, normalize_schedule, schedule_at
from .sessions import ChargingSession, SessionBook, session_key
from .setpoints import V2XSetpoints
from .writer import (
    SCHEDULE_TOLERANCE_A,
    SLOT_DEFAULT,
    SLOT_MAX,
    SLOT_TX,
    ChargerBook,
    Installed,
    ProfileWriter,
    WriteTarget,
)

_LOGGER = logging.getLogger(__name__)
_UNMANAGED_REBALANCE_KW = 0.2
# Profiles in flight at once during a fan-out. Each send is a burst of work on the
# event loop (the event loop of Home Assistant, too); a window keeps those bursts short
# so meter values and everything else are served in between, and a slow charger holds
# one place only.
SEND_WINDOW: Final = 32
# Rebalance rounds in a row (each after failed writes) before pausing for a moment.
MAX_ROUNDS: Final = 8
RETRY_DELAY_S: Final = 1.0
DEFAULT_ROTATION_PERIOD_S: Final = 900.0
# Future plan boundaries solved per rebalance (48 h of quarter hours).
MAX_PLAN_BOUNDARIES: Final = 192
_IDLE: Final = "idle:"


@dataclass(frozen=True, slots=True)
class PanelSnapshot:
    """What an entity shows for a panel."""

    panel_id: str
    limit_kw: float
    budget_kw: float
    allocated_kw: float
    measured_kw: float
    headroom_kw: float
    active_sessions: int


@dataclass(frozen=True, slots=True)
class ChargerSnapshot:
    """What an entity shows for a charger."""

    charger_id: str
    connected: bool
    ocpp_version: str | None
    status: str
    transaction_id: str | None
    allocated_a: float | None
    allocated_w: float | None
    limit_acked_a: float | None
    measured_w: float | None
    current_a: tuple[float, ...]
    session_energy_wh: float | None
    lifetime_energy_wh: float | None
    phases_in_use: int | None = None  # of the running session's last acked limit
    phase_switching: bool = False  # it switches between one and three phases


@dataclass(frozen=True, slots=True)
class SiteSnapshot:
    """A plain view of the whole site."""

    panels: Mapping[str, PanelSnapshot]
    chargers: Mapping[str, ChargerSnapshot]
    over_committed: bool
    paused: tuple[str, ...]


class SiteController:
    """Runs the engine over the sessions the server reports and applies the result."""

    def __init__(
        self,
        server: CentralSystem,
        site: Site,
        chargers: Mapping[str, ChargerConfig],
        *,
        on_change: Callable[[], None] | None = None,
        on_report: ReportCallback | None = None,
        increase_dead_band_a: float = 0.5,
        min_increase_interval_s: float = 0.0,
        boot_default_a: float = 0.0,
        offline_duration_s: int | None = 60,
        verify_grace_s: float = 10.0,
        verify_samples: int = 3,
        verify_tolerance_a: float = 1.0,
        session_priority: Callable[[str, str | None], int | None] | None = None,
        rotation_period_s: float = DEFAULT_ROTATION_PERIOD_S,
        clock: Callable[[], datetime] = utcnow,
        phase_settings: PhaseSettings | None = None,
        phase_clock: Callable[[], float] | None = None,
    ) -> None:
        """Connect a server to a site; call `handle_event` from the server's subscriber.

        `session_priority(charger_id, id_tag)` may give a session its own priority
        (its tag's); None keeps the charger's.

        Chargers write profiles to flash, so an increase smaller than
        `increase_dead_band_a` is not sent, and a charger gets at most one increase per
        `min_increase_interval_s` (a later one waits, then goes out). Decreases are never
        held back. `boot_default_a` is the TxDefaultProfile on connector 0 that every
        managed charger gets at boot (for connectors without a default of their own;
        0 A keeps a car waiting for its share). `offline_duration_s` is the
        `maxOfflineDuration` of OCPP 2.1 session limits. A charger drawing more than its
        limit plus `verify_tolerance_a` (or 5 %) in `verify_samples` meter values in a
        row, `verify_grace_s` after the limit was written, is non-compliant.

        When minimums cannot all be met, paused sessions take turns every
        `rotation_period_s` (0: no rotation): at each boundary the sessions that ran a
        full turn go to the back of the engine's turn order (`Session.turn`).

        A charger's `plan_schedule` (a charging plan) goes out as one multi-period
        TxProfile where the charger takes them (see `_plan_schedules`); `clock` is the
        wall clock its absolute times are compared with.

        A three-phase charger that switches phases (`ChargerConfig.phase_switching`)
        runs its session on the phases the engine's `choose_phases` picks with
        `phase_settings` (dwell, margin, delay). A switch is a pause first: 0 A on the
        old phases, acknowledged, then the limit on the new phases as an increase, so
        no phase carries more than its budget at any instant. `phase_clock` (seconds;
        the event loop's clock by default) times the dwell and the delay.
        """
        self.server = server
        self.site = site
        self.chargers = dict(chargers)
        self.increase_dead_band_a = increase_dead_band_a
        self.min_increase_interval_s = min_increase_interval_s
        self.boot_default_a = boot_default_a
        self.verify_grace_s = verify_grace_s
        self.verify_samples = verify_samples
        self.verify_tolerance_a = verify_tolerance_a
        self.rotation_period_s = max(0.0, rotation_period_s)
        self._on_change = on_change
        self._on_report = on_report
        self._clock = clock
        self._session_priority = session_priority
        self.book = SessionBook()
        self.writer = ProfileWriter(
            server,
            self._report,
            voltage_v=self._voltage,
            offline_duration_s=offline_duration_s,
        )
        # 2.1 V2X: who may give power back and the setpoints of this round.
        self.discharge = DischargeController(server, on_learned=self.request_rebalance)
        self.setpoints = V2XSetpoints(self.discharge, self.writer)
        server.set_dynamic_schedule_provider(self._dynamic_schedule)
        self._allocation: SiteAllocation | None = None
        self._idle_targets: dict[str, float] = {}
        self._last_increase: dict[str, float] = {}
        self._last_write: dict[str, float] = {}
        self._deferred: asyncio.TimerHandle | None = None
        self._lock = asyncio.Lock()
        self._dirty = False
        self._runner: asyncio.Task[None] | None = None
        self._booting: dict[str, asyncio.Task[None]] = {}
        # Chargers that booted while a probe ran: that probe finishes as their boot.
        self._boot_joined: set[str] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._send_window = asyncio.Semaphore(SEND_WINDOW)
        self._stopping = False
        self._seen_connectors: dict[str, set[int]] = {}
        # Connectors whose default could not be written: they keep what they hold.
        self.defaults_held: set[str] = set()
        # The rotation clock (loop time): each session's place in the turn order, when
        # its current turn began (admitted or put back), when it began running without
        # a pause, the next boundary while some are paused, and its timer.
        self._turn: dict[str, float] = {}
        self._turn_start: dict[str, float] = {}
        self._ran_since: dict[str, float] = {}
        self._waiting_since: dict[str, float] = {}
        self._turn_due: set[str] = (
            set()
        )  # waited a full period: admitted first this turn
        self._next_rotation: float | None = None
        self._rotation_timer: asyncio.TimerHandle | None = None
        self._phase_clock = phase_clock
        # Phase switching: each session's switch decision and acknowledged phases.
        # Multi-period schedules (charging plans): when they go out, in which step.
        self.schedule_writes = ScheduleWrites(self.writer)
        self.phase_switching = PhaseSwitching(
            self.writer,
            phase_settings or PhaseSettings(),
            on_wake=self.request_rebalance,
        )

    # ------------------------------------------------------------------ queries

    @property
    def allocation(self) -> SiteAllocation | None:
        """Return the last allocation computed (running sessions)."""
        return self._allocation

    def sessions(self) -> list[tuple[str, int, str]]:
        """Return (charger id, connector id, transaction id) of each session."""
        return [(s.charger_id, s.connector_id, s.transaction_id) for s in self.book]

    def _panel_ids_under(self, panel_id: str) -> set[str]:
        index = self.site.index.get(panel_id)
        if index is None:
            return {panel_id}
        panels = self.site.panels
        found = {panel_id}
        for i, ancestors in enumerate(self.site.ancestors):
            if index in ancestors:
                found.add(panels[i].id)
        return found

    def _sessions_under(self, panel_id: str) -> list[ChargingSession]:
        panels = self._panel_ids_under(panel_id)
        return [
            session
            for session in self.book
            if (config := self.chargers.get(session.charger_id)) is not None
            and config.panel_id in panels
        ]

    def measured_kw(self, panel_id: str) -> float:
        """Return the measured power of the sessions under a panel (and its children)."""
        return sum(s.measured_w for s in self._sessions_under(panel_id)) / 1000.0

    def minimum_kw(self, panel_id: str) -> float:
        """Return what the managed sessions under a panel need at their minimum."""
        return sum(
            self._kw(config, config.min_current_a)
            for session in self._sessions_under(panel_id)
            if (config := self.chargers[session.charger_id]).managed
        )

    def session_count(self, panel_id: str) -> int:
        """Return the number of sessions under a panel (and its children)."""
        return len(self._sessions_under(panel_id))

    def limit_for(self, charger_id: str) -> SessionProfile | None:
        """Return the allocation of the charger's (first) session."""
        session = self.book.first_of(charger_id)
        if self._allocation is None or session is None:
            return None
        return self._allocation.sessions.get(session.key)

    def limit_reason_for(self, charger_id: str) -> SessionLimit | None:
        """Return why the charger's (first) session got what it got."""
        session = self.book.first_of(charger_id)
        if self._allocation is None or session is None:
            return None
        return self._allocation.limits.get(session.key)

    def switches_phases(self, config: ChargerConfig) -> bool:
        """Return whether this charger switches between one and three phases."""
        return self.phase_switching.switches(config)

    def phases_in_use(self, charger_id: str, connector_id: int) -> int | None:
        """Return the phases of a running session's acknowledged limit (None: idle)."""
        session = self.book.get(charger_id, connector_id)
        config = self.chargers.get(charger_id)
        if session is None or config is None:
            return None
        return self.phase_switching.phases(session.key, config)

    def capabilities(self, charger_id: str) -> ChargerCapabilities | None:
        """Return what the charger can do with profiles (None: not seen yet)."""
        return self.writer.capabilities.get(charger_id)

    def in_force_a(self, charger_id: str, connector_id: int) -> float | None:
        """Return the limit in force on a connector as far as we know (None: unknown).

        For a running session it is its limit; for an idle connector what a car that
        plugs in starts at.
        """
        config = self.chargers.get(charger_id)
        book = self.writer.books.get(charger_id)
        if config is None or book is None:
            return None
        session = self.book.get(charger_id, connector_id)
        return book.in_force_at(
            connector_id,
            session.transaction_id if session else None,
            config.max_current_a,
            self._clock().timestamp(),
        )

    def idle_default_a(self, charger_id: str, connector_id: int) -> float | None:
        """Return the default the last rebalance chose for an idle connector."""
        return self._idle_targets.get(session_key(charger_id, connector_id))

    def connectors(self, charger_id: str) -> list[int]:
        """Return the connector (EVSE) ids known for a charger, at least connector 1."""
        found = {1}
        state = self.server.chargers.get(charger_id)
        if state is not None:
            found.update(cid for cid in state.connectors if cid > 0)
            found.update(t.connector_id for t in state.transactions.values())
        found.update(s.connector_id for s in self.book.of_charger(charger_id))
        return sorted(cid for cid in found if cid > 0)

    # ------------------------------------------------------------------- events

    def handle_event(self, event: ChargerEvent) -> None:
        """Feed one server event (call it from the server's `on_event`)."""
        charger_id = event.charger_id
        known = charger_id in self.chargers
        rebalance = False
        if known and (
            isinstance(event, BootReceived)
            or (
                charger_id not in self.writer.capabilities
                and charger_id not in self._booting
                and not isinstance(event, ChargerConnected | ChargerDisconnected)
            )
        ):
            self._start_boot(charger_id, boot=isinstance(event, BootReceived))
        if not isinstance(event, ChargerDisconnected):
            # Any sign of life: a held charger is answered again at the next rebalance.
            prefix = f"{charger_id}#"
            held = {k for k in self.writer.held if k.startswith(prefix)}
            held_defaults = {k for k in self.defaults_held if k.startswith(prefix)}
            if held or held_defaults:
                self.writer.held -= held
                self.defaults_held -= held_defaults
                rebalance = True
        config = self.chargers.get(charger_id)
        rebalance |= self.discharge.observe(event, config)
        if known and self.discharge.needs_probe(charger_id):
            self._spawn(self.discharge.probe(charger_id), "V2X probe", charger_id)
        match event:
            case TransactionStarted():
                self.book.add(
                    ChargingSession(
                        charger_id,
                        event.connector_id,
                        event.transaction_id,
                        event.id_tag,
                        event.timestamp,
                        event.meter_start_wh,
                    )
                )
                rebalance = True
            case TransactionStopped():
                ended = self.book.remove_transaction(charger_id, event.transaction_id)
                if ended is not None:
                    self.writer.book(charger_id).transaction_ended(ended.connector_id)
                    self.writer.held.discard(ended.key)
                    rebalance = True
            case MeterValuesReceived():
                rebalance |= self._meter(event)
            case EVChargingNeeds(ev_max_current_a=ev_max) if ev_max:
                needy = self.book.get(charger_id, event.connector_id)
                if needy is not None and needy.ev_needs_a != ev_max:
                    needy.ev_needs_a = ev_max
                    rebalance = True
            case StatusChanged(status=status):
                session = self.book.get(charger_id, event.connector_id)
                if session is not None and status in (
                    ConnectorStatus.SUSPENDED_EV,
                    ConnectorStatus.CHARGING,
                ):
                    now_suspended = status == ConnectorStatus.SUSPENDED_EV
                    rebalance |= session.suspended_ev != now_suspended
                    session.suspended_ev = now_suspended
                elif event.connector_id > 0:
                    seen = self._seen_connectors.setdefault(charger_id, set())
                    if event.connector_id not in seen:
                        seen.add(event.connector_id)
                        rebalance = True  # a connector that needs its default
            case ChargerConnected() | ChargerDisconnected():
                rebalance = True
            case _:
                pass
        if rebalance and known:
            self.request_rebalance()
        self._changed()

    def _meter(self, event: MeterValuesReceived) -> bool:
        session = self.book.get(event.charger_id, event.connector_id)
        if session is None:
            return False
        config = self.chargers.get(event.charger_id)
        if event.power_w is not None:
            power = event.power_w
        elif event.current_a and event.voltage_v:
            power = sum(event.current_a) * event.voltage_v
        elif event.current_a and config is not None:
            power = sum(event.current_a) * self._voltage(config)
        else:
            return False
        previous, session.measured_w = session.measured_w, max(0.0, power)
        if config is None:
            return False
        if not config.managed:
            return abs(previous - power) / 1000.0 >= _UNMANAGED_REBALANCE_KW
        if event.current_a:
            drawn = max(event.current_a)
        else:
            phases = self.phase_switching.phases(session.key, config)
            drawn = session.measured_w / (self._voltage(config) * phases)
        session.drawn_a = drawn
        limit = self._acked_in_force(session, config)
        rebalance = self._verify(session, config, drawn, limit)
        if event.current_a:
            rebalance |= learn_acceptance(
                session,
                drawn_a=drawn,
                limit_a=limit,
                min_current_a=config.min_current_a,
                now=asyncio.get_running_loop().time(),
            )
        return rebalance

    def _acked_in_force(
        self, session: ChargingSession, config: ChargerConfig
    ) -> float | None:
        """Return the session's limit in force if nothing about it is pending."""
        book = self.writer.books.get(session.charger_id)
        if book is None:
            return None
        slots = (
            (session.connector_id, SLOT_TX),
            (session.connector_id, SLOT_DEFAULT),
            (0, SLOT_DEFAULT),
        )
        if any(
            (installed := book.slots.get(slot)) is not None
            and installed.pending_a is not None
            for slot in slots
        ):
            return None
        if not book.has_tx(session.connector_id, session.transaction_id) and (
            book.acked(session.connector_id, SLOT_DEFAULT) is None
        ):
            return None  # no limit of ours governs this session yet
        if self.schedule_writes.holds(session):
            # A schedule: its period of now, or the one just before within the grace
            # (a car takes a moment to follow a boundary on its own).
            now = self._clock().timestamp()
            return max(
                book.in_force_at(
                    session.connector_id,
                    session.transaction_id,
                    config.max_current_a,
                    moment,
                )
                for moment in (now, now - self.verify_grace_s)
            )
        return book.in_force(
            session.connector_id, session.transaction_id, config.max_current_a
        )

    def _verify(
        self,
        session: ChargingSession,
        config: ChargerConfig,
        drawn_a: float,
        limit_a: float | None,
    ) -> bool:
        """Compare what a session draws with its limit; return whether to rebalance."""
        now = asyncio.get_running_loop().time()
        written = max(
            self._last_write.get(session.key, 0.0),
            self._last_write.get(session_key(session.charger_id, 0), 0.0),
        )
        if limit_a is None or now - written < self.verify_grace_s:
            session.over_count = session.compliant_count = 0
            return False
        tolerance = max(self.verify_tolerance_a, 0.05 * limit_a)
        if drawn_a > limit_a + tolerance:
            session.over_count += 1
            session.compliant_count = 0
            if session.over_count < self.verify_samples:
                return False
            if session.non_compliant_a is None:
                self._non_compliant(session, limit_a, drawn_a, "meter")
                return True
            if abs(drawn_a - session.non_compliant_a) >= 0.5:
                session.non_compliant_a = drawn_a
                return True
            return False
        session.over_count = 0
        if session.non_compliant_a is None:
            return False
        session.compliant_count += 1
        if session.compliant_count < self.verify_samples:
            return False
        _LOGGER.info(
            "Charger %s follows its limit again (%.1f A)", session.charger_id, limit_a
        )
        session.non_compliant_a = None
        session.compliant_count = 0
        self._report(ChargerCompliant(session.charger_id))
        return True

    def _non_compliant(
        self, session: ChargingSession, limit_a: float, seen_a: float, source: str
    ) -> None:
        _LOGGER.warning(
            "Charger %s connector %s does not follow its limit: %.1f A in force, "
            "%s %.1f A; its real draw stays reserved",
            session.charger_id,
            session.connector_id,
            limit_a,
            "drawing" if source == "meter" else "its schedule says",
            seen_a,
        )
        session.non_compliant_a = seen_a
        session.over_count = 0
        self.writer.distrust(self.chargers[session.charger_id])
        self.writer.verified = {
            v for v in self.writer.verified if v[0] != session.charger_id
        }
        self._report(
            ChargerNonCompliant(
                session.charger_id, session.connector_id, limit_a, seen_a, source
            )
        )

    def _report(self, report: ControlReport) -> None:
        if self._on_report is None:
            return
        try:
            self._on_report(report)
        except Exception:
            _LOGGER.exception("Report callback failed on %s", report)

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change()
            except Exception:
                _LOGGER.exception("on_change callback failed")

    # --------------------------------------------------------------- reconfigure

    def update_site(self, site: Site, chargers: Mapping[str, ChargerConfig]) -> None:
        """Replace the site model and charger configs, then rebalance."""
        self.site = site
        self.chargers = dict(chargers)
        self.request_rebalance()

    # ----------------------------------------------------------------- tasks

    def _spawn(
        self, coro: Coroutine[Any, Any, Any], what: str, charger_id: str | None
    ) -> asyncio.Task[Any]:
        """Run a supervised task: its error is logged once, with the charger id."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)

        def _done(done: asyncio.Task[Any]) -> None:
            self._tasks.discard(done)
            if done.cancelled():
                return
            error = done.exception()
            if error is not None:
                _LOGGER.error(
                    "%s%s failed: %r",
                    what,
                    f" for charger {charger_id}" if charger_id else "",
                    error,
                    exc_info=error,
                )

        task.add_done_callback(_done)
        return task

    # ----------------------------------------------------------------- rebalance

    def request_rebalance(self) -> None:
        """Schedule a rebalance; overlapping requests coalesce into one follow-up."""
        self._dirty = True
        if self._stopping:
            return
        if self._runner is None or self._runner.done():
            self._runner = self._spawn(self._run(), "Rebalance", None)

    async def rebalance(self) -> None:
        """Allocate and apply now (or wait for the run that covers this request)."""
        self._dirty = True
        await self._run()

    async def _run(self) -> None:
        async with self._lock:
            rounds = 0
            while self._dirty and not self._stopping:
                rounds += 1
                if rounds > MAX_ROUNDS:
                    # Writes keep failing (they are held now): try again in a moment
                    # instead of spinning on the event loop.
                    self._retry_later(RETRY_DELAY_S)
                    break
                self._dirty = False
                try:
                    await self._rebalance_once()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # Contained: the limits stay as they are, the next request runs.
                    _LOGGER.exception("Rebalance failed; limits unchanged")
                self._changed()

    async def stop(self) -> None:
        """Cancel pending rebalances, boots and checks, and wait for them."""
        self._stopping = True
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        if self._rotation_timer is not None:
            self._rotation_timer.cancel()
            self._rotation_timer = None
        self.phase_switching.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._runner = None

    # ------------------------------------------------------------------- boot

    def _start_boot(self, charger_id: str, *, boot: bool) -> None:
        running = self._booting.get(charger_id)
        if running is not None and not running.done():
            # A boot while a probe runs (started by an earlier message): that probe
            # counts as the boot's. Cancelling it would leave its answer to a call
            # nobody waits for.
            if boot:
                self._boot_joined.add(charger_id)
            return
        task = self._spawn(
            self._boot(charger_id, boot=boot), "Capability probe", charger_id
        )
        self._booting[charger_id] = task

    async def _boot(self, charger_id: str, *, boot: bool) -> None:
        """Read the capabilities, then (at boot) write the boot defaults."""
        previous = self.writer.capabilities.get(charger_id)
        learned = await probe_capabilities(self.server, charger_id, previous, boot=boot)
        if charger_id in self._boot_joined:
            self._boot_joined.discard(charger_id)
            boot = True
            learned = after_boot(learned)
        self.writer.capabilities[charger_id] = learned
        self._report(CapabilitiesLearned(charger_id, learned))
        config = self.chargers.get(charger_id)
        if boot and config is not None and config.managed and learned.controllable:
            await self._write_boot_defaults(config)
        self.request_rebalance()

    async def _write_boot_defaults(self, config: ChargerConfig) -> None:
        """Station ceiling (optional) and the boot default on connector 0."""
        charger_id = config.charger_id
        try:
            if (
                config.station_ceiling
                and config.profile_purpose not in STATION_MAX_PURPOSES
            ):
                ceiling = WriteTarget(charger_id, 0, SLOT_MAX, config.max_current_a)
                if await self.writer.write_ceiling(ceiling, config):
                    _LOGGER.info(
                        "Charger %s: station ceiling %.1f A set",
                        charger_id,
                        config.max_current_a,
                    )
            amps = max(0.0, min(self.boot_default_a, config.max_current_a))
            target = WriteTarget(charger_id, 0, SLOT_DEFAULT, amps)
            self._last_write[session_key(charger_id, 0)] = (
                asyncio.get_running_loop().time()
            )
            if await self.writer.write_default(target, config):
                _LOGGER.info(
                    "Charger %s: boot default TxDefaultProfile %.1f A set",
                    charger_id,
                    amps,
                )
        except (ChargerNotConnectedError, CallTimeoutError) as err:
            _LOGGER.warning(
                "Charger %s: boot defaults not written (%s)", charger_id, err
            )

    async def _await_boot(self, charger_id: str) -> None:
        booting = self._booting.get(charger_id)
        if booting is not None and not booting.done():
            await asyncio.wait({booting}, timeout=self.server.config.call_timeout_s * 4)

    # --------------------------------------------------------------- the solve

    def _voltage(self, config: ChargerConfig) -> float:
        return config.voltage_v or self.site.voltage_v

    def _kw(self, config: ChargerConfig, amps: float) -> float:
        return amps * self._voltage(config) * config.phases / 1000.0

    def _controllable(self, charger_id: str) -> bool:
        """Return whether profiles limit this charger.

        Before its probe a charger counts as controllable: every write to it waits
        for the probe, and is dropped if the probe says otherwise.
        """
        capabilities = self.writer.capabilities.get(charger_id)
        return capabilities is None or capabilities.controllable

    def _common(
        self, config: ChargerConfig, key: str, connector_id: int, sequence: int
    ) -> dict[str, Any]:
        return {
            "transaction_id": key,
            "client_id": config.charger_id,
            "connector_id": connector_id,
            "phases": config.phases,
            "voltage_v": self._voltage(config),
            "grid_phase": config.grid_phase,
            "panel_id": config.panel_id,
            "priority": config.priority,
            "sequence": sequence,
        }

    def _fixed(
        self,
        config: ChargerConfig,
        key: str,
        connector_id: int,
        sequence: int,
        kw: float,
        *,
        offline: bool = False,
    ) -> Session:
        """Return an engine session that only reserves `kw` (never limited).

        `offline`: its charger is not connected or does not answer (its limit reason).
        """
        return Session(
            **self._common(config, key, connector_id, sequence),
            max_hardware_power_kw=self._kw(config, config.max_current_a),
            managed=False,
            measured_power_kw=max(0.0, kw),
            offline=offline,
        )

    def _running(self) -> tuple[list[Session], list[ChargingSession]]:
        """Return the engine sessions of the running transactions and the controlled ones."""
        sessions: list[Session] = []
        controlled: list[ChargingSession] = []
        for sequence, session in enumerate(self.book):
            config = self.chargers.get(session.charger_id)
            if config is None or config.panel_id not in self.site.index:
                continue
            book = self.writer.book(session.charger_id)
            hardware = config.max_current_a
            if not config.managed:
                sessions.append(
                    self._fixed(
                        config,
                        session.key,
                        session.connector_id,
                        sequence,
                        session.measured_w / 1000.0,
                    )
                )
                continue
            if not self._controllable(session.charger_id):
                # Profiles cannot limit it: its hardware maximum stays reserved.
                reserved = max(self._kw(config, hardware), session.measured_w / 1000.0)
                sessions.append(
                    self._fixed(
                        config, session.key, session.connector_id, sequence, reserved
                    )
                )
                continue
            reserve_a = book.reserve(
                session.connector_id, session.transaction_id, hardware
            )
            if session.non_compliant_a is not None:
                # It does not follow its limit: its real draw is what counts.
                reserved = max(reserve_a, session.non_compliant_a)
                sessions.append(
                    self._fixed(
                        config,
                        session.key,
                        session.connector_id,
                        sequence,
                        max(self._kw(config, reserved), session.measured_w / 1000.0),
                    )
                )
                continue
            if (
                not self.server.connected(session.charger_id)
                or session.key in self.writer.held
            ):
                sessions.append(
                    self._fixed(
                        config,
                        session.key,
                        session.connector_id,
                        sequence,
                        self._kw(config, reserve_a),
                        offline=True,
                    )
                )
                continue
            ceiling_a = session.ev_cap_a
            if session.suspended_ev:
                ceiling_a = config.min_current_a
            common = self._common(config, session.key, session.connector_id, sequence)
            if self._session_priority is not None and (
                priority := self._session_priority(session.charger_id, session.id_tag)
            ):
                common["priority"] = priority
            sessions.append(
                Session(
                    **common,
                    max_hardware_power_kw=self._kw(config, hardware),
                    max_ev_acceptance_power_kw=None
                    if ceiling_a is None
                    else self._kw(config, ceiling_a),
                    min_charge_rate_kw=self._kw(config, config.min_current_a),
                    started_at=session.started,
                    user_cap_kw=0.0  # in V2X mode: it never makes import room
                    if session.key in self.setpoints.active
                    else None  # a charging plan's current for this slot
                    if config.plan_cap_a is None
                    else self._kw(config, config.plan_cap_a),
                    cap_from_plan=config.plan_cap_a is not None
                    and session.key not in self.setpoints.active,
                    turn=self._turn.get(session.key, 0.0),
                    turn_due=session.key in self._turn_due,
                )
            )
            controlled.append(session)
        sequence = len(sessions)
        for config, connector_id, reserve in self._idle_connectors():
            if reserve is not None:
                sequence += 1
                key = f"{_IDLE}{session_key(config.charger_id, connector_id)}"
                sessions.append(
                    self._fixed(
                        config, key, connector_id, sequence, self._kw(config, reserve)
                    )
                )
        return sessions, controlled

    def _idle_connectors(
        self,
    ) -> list[tuple[ChargerConfig, int, float | None]]:
        """Return the idle connectors of managed chargers, with a fixed reserve (A).

        The reserve is None for a connector whose default we can write now; otherwise
        (offline, not answering, refusing profiles) it is what a car would start at
        there, and it counts before any running car is given its limit.
        """
        found: list[tuple[ChargerConfig, int, float | None]] = []
        for charger_id in sorted(self.chargers):
            config = self.chargers[charger_id]
            if not config.managed or config.panel_id not in self.site.index:
                continue
            if (
                charger_id not in self.server.chargers
                and charger_id not in self.writer.books
            ):
                continue  # never connected: nothing of it can draw
            book = self.writer.book(charger_id)
            for connector_id in self.connectors(charger_id):
                if self.book.get(charger_id, connector_id) is not None:
                    continue
                reserve: float | None = None
                if not self._controllable(charger_id):
                    reserve = config.max_current_a
                elif (
                    not self.server.connected(charger_id)
                    or session_key(charger_id, connector_id) in self.defaults_held
                ):
                    reserve = book.reserve(connector_id, None, config.max_current_a)
                found.append((config, connector_id, reserve))
        return found

    def _idle(
        self, first: Iterable[Session], allocation: SiteAllocation, start: int
    ) -> tuple[list[Session], dict[str, tuple[ChargerConfig, int]]]:
        """Return the second solve's sessions: fixed loads and idle connectors."""
        sessions: list[Session] = []
        for engine_session in first:
            if not engine_session.managed:
                sessions.append(engine_session)
                continue
            profile = allocation.sessions[engine_session.transaction_id]
            config = self.chargers[engine_session.client_id]
            amps = 0.0 if profile.paused else profile.allocated_amps_per_phase
            phases = engine_session.phases  # one phase on a switched charger
            fixed = self._fixed(
                config,
                str(engine_session.transaction_id),
                engine_session.connector_id,
                engine_session.sequence,
                amps * engine_session.voltage_v * phases / 1000.0,
            )
            sessions.append(with_phases(fixed, phases, engine_session.grid_phase))
        idle: dict[str, tuple[ChargerConfig, int]] = {}
        sequence = start
        for config, connector_id, reserve in self._idle_connectors():
            if reserve is not None:
                continue  # a fixed reserve, already in the first solve
            key = f"{_IDLE}{session_key(config.charger_id, connector_id)}"
            sequence += 1
            minimum = self._kw(config, config.min_current_a)
            sessions.append(
                Session(
                    **self._common(config, key, connector_id, sequence),
                    max_hardware_power_kw=minimum,
                    min_charge_rate_kw=minimum,
                )
            )
            idle[key] = (config, connector_id)
        return sessions, idle

    async def _rebalance_once(self) -> None:
        now = asyncio.get_running_loop().time()
        self._rotate(now)
        if self.setpoints.plan(
            self.site, self.book, self.chargers, voltage_v=self._voltage
        ):
            self._dirty = True  # the discharge goes out once limit 0 is acknowledged
        running, controlled = self._running()
        running, decisions = self.phase_switching.choose(
            self.site,
            self.chargers,
            (session.key for session in self.book),
            running,
            controlled,
            now if self._phase_clock is None else self._phase_clock(),
        )
        allocation = allocate_site(self.site, running)
        self._allocation = allocation
        self._rotation_clock(allocation, controlled, now)
        second, idle = self._idle(running, allocation, len(running))
        idle_allocation = allocate_site(self.site, second) if idle else None
        writes: list[PlannedWrite] = []
        defaults: dict[tuple[str, int], float] = {}
        self._idle_targets = {}
        for key, (config, connector_id) in idle.items():
            assert idle_allocation is not None
            profile = idle_allocation.sessions[key]
            target = 0.0 if profile.paused else config.min_current_a
            self._idle_targets[key.removeprefix(_IDLE)] = target
            defaults[config.charger_id, connector_id] = target
        targets = {
            session.key: 0.0
            if (profile := allocation.sessions[session.key]).paused
            else profile.allocated_amps_per_phase
            for session in controlled
        }
        clock = self._clock()
        schedules = self._plan_schedules(running, controlled, targets, idle, clock)
        for session in controlled:
            config = self.chargers[session.charger_id]
            target = targets[session.key]
            schedule = schedules.get(session.key)
            setpoint_w = self.setpoints.active.get(session.key)
            decision = decisions.get(session.key)
            if setpoint_w is None and (
                decision is not None or session.key in self.phase_switching.acked
            ):
                # A charger that switches phases: one limit at a time, on its phases.
                phases = config.phases if decision is None else decision.phases
                writes.extend(
                    self.phase_switching.writes(
                        session,
                        config,
                        target,
                        defaults,
                        phases,
                        self._session_writes,
                    )
                )
            elif setpoint_w is None and (
                schedule is not None or self.schedule_writes.holds(session)
            ):
                writes.extend(
                    self.schedule_writes.writes(
                        session,
                        config,
                        schedule or ((clock.timestamp(), target),),
                        defaults,
                        clock.timestamp(),
                        self.increase_dead_band_a,
                    )
                )
            else:
                writes.extend(
                    self._session_writes(
                        session, config, target, defaults, setpoint_w=setpoint_w
                    )
                )
        writes.extend(self._default_writes(defaults))
        if not writes:
            return
        lowering = [w for w in writes if w.lowers]
        raising = self._due([w for w in writes if not w.lowers])
        if len(raising) > 1:
            # Two chargers raised at once: one may still hold its old schedule while
            # another holds its new one. Each schedule that is also lower somewhere
            # first goes to the pointwise minimum of old and new (a pure decrease).
            lowering += [
                PlannedWrite(w.step, "session", True, w.session)
                for w in raising
                if w.step is not None
            ]
        if lowering:
            results = await asyncio.gather(*(self._apply(w) for w in lowering))
            if not all(results):
                # A charger did not take its decrease: it keeps its old reserve, so
                # the increases are recomputed before anything is raised.
                self._dirty = True
                return
        results = await asyncio.gather(*(self._apply(w) for w in raising))
        if not all(results):
            self._dirty = True

    def _rotate(self, now: float) -> None:
        """Update the turn order; at a rotation boundary, put the full turns at the back.

        A new session joins the back of the order. At a boundary (one period after the
        shortage began, then every period) every session that has run a full turn goes
        behind the paused ones, the one that ran longest without a pause last; its next
        turn starts now. A session paused for a full period is due: the engine admits it
        before it maximises how many charge, for one turn (a car that only fits by
        pausing two others gets its turn too). A session admitted later keeps its place
        for a full period.
        """
        keys = {session.key for session in self.book}
        for book in (
            self._turn,
            self._turn_start,
            self._ran_since,
            self._waiting_since,
        ):
            for key in [key for key in book if key not in keys]:
                del book[key]
        self._turn_due &= keys
        if self.rotation_period_s <= 0:
            self._turn.clear()
            self._turn_due.clear()
            return
        for key in keys:
            self._turn.setdefault(key, now)
        due = self._next_rotation
        # A timer may fire a clock tick early: a boundary within 1 % counts as reached.
        slack = self.rotation_period_s * 0.01
        if due is None or now < due - slack:
            return
        full = [
            key
            for key, start in self._turn_start.items()
            if now - start >= self.rotation_period_s - slack
        ]
        # Longest running last: it gets the highest turn.
        full.sort(key=lambda key: (-self._ran_since.get(key, now), self._turn[key]))
        for place, key in enumerate(full):
            self._turn[key] = now + place * 1e-6
            self._turn_start[key] = now
            self._turn_due.discard(key)
        # Waited a full period: served first, even where that lets fewer charge.
        self._turn_due |= {
            key
            for key, since in self._waiting_since.items()
            if now - since >= self.rotation_period_s - slack
        }
        self._next_rotation = now + self.rotation_period_s

    def _rotation_clock(
        self,
        allocation: SiteAllocation,
        controlled: list[ChargingSession],
        now: float,
    ) -> None:
        """Record who runs, and keep a rebalance at the next boundary while any waits."""
        if self.rotation_period_s <= 0:
            return
        for session in controlled:
            if allocation.sessions[session.key].paused:
                self._turn_start.pop(session.key, None)
                self._ran_since.pop(session.key, None)
                self._waiting_since.setdefault(session.key, now)
            else:
                self._turn_start.setdefault(session.key, now)
                self._ran_since.setdefault(session.key, now)
                self._waiting_since.pop(session.key, None)
        keys = {session.key for session in controlled}
        if not any(key in keys for key in allocation.paused):
            # Everyone fits: no rotation, no timer.
            self._next_rotation = None
            self._turn_due.clear()
            if self._rotation_timer is not None:
                self._rotation_timer.cancel()
                self._rotation_timer = None
            return
        if self._next_rotation is None:
            self._next_rotation = now + self.rotation_period_s
        if self._rotation_timer is None and not self._stopping:

            def _boundary() -> None:
                self._rotation_timer = None
                self.request_rebalance()

            self._rotation_timer = asyncio.get_running_loop().call_later(
                max(0.0, self._next_rotation - now), _boundary
            )

    def _plan_schedules(
        self,
        running: list[Session],
        controlled: list[ChargingSession],
        targets: Mapping[str, float],
        idle: Mapping[str, tuple[ChargerConfig, int]],
        clock: datetime,
    ) -> dict[str, Schedule]:
        """Return the schedule of each planned session whose charger takes schedules.

        The period of now is the session's share of now (`targets`). For each later
        boundary of any plan, the engine solves the site once more: every planned
        session capped at its plan for that instant (and its ceiling), every other
        limit fixed at what it will hold then (the shares of now of the sessions
        without a plan, the idle connectors' defaults, the reserves of chargers we
        cannot reach). So at every instant, not only now, the limits in force stay
        within every panel's budget, whatever the plan assumed about the rest.
        """
        planned: dict[str, tuple[ChargerConfig, Schedule]] = {}
        for session in controlled:
            config = self.chargers[session.charger_id]
            if config.plan_schedule and self.writer.schedules_supported(config):
                planned[session.key] = (
                    config,
                    tuple((start.timestamp(), a) for start, a in config.plan_schedule),
                )
        if not planned:
            return {}
        now = clock.timestamp()
        boundaries = sorted(
            {start for _, plan in planned.values() for start, _ in plan if start > now}
        )[:MAX_PLAN_BOUNDARIES]
        fixed: list[Session] = []
        for engine_session in running:
            key = str(engine_session.transaction_id)
            if key in planned or not engine_session.managed:
                continue
            config = self.chargers[engine_session.client_id]
            fixed.append(
                self._fixed(
                    config,
                    key,
                    engine_session.connector_id,
                    engine_session.sequence,
                    self._kw(config, targets.get(key, 0.0)),
                )
            )
        sequence = len(running)
        for key, (config, connector_id) in idle.items():
            sequence += 1
            amps = self._idle_targets.get(key.removeprefix(_IDLE), 0.0)
            fixed.append(
                self._fixed(config, key, connector_id, sequence, self._kw(config, amps))
            )
        unmanaged = [s for s in running if not s.managed]
        periods: dict[str, list[tuple[float, float]]] = {
            key: [(now, targets[key])] for key in planned
        }
        for boundary in boundaries:
            sessions = [*unmanaged, *fixed]
            for engine_session in running:
                key = str(engine_session.transaction_id)
                if key in planned:
                    config, plan = planned[key]
                    cap = self._kw(config, schedule_at(plan, boundary))
                    sessions.append(replace(engine_session, user_cap_kw=cap))
            solved = allocate_site(
                self.site, sessions, now=datetime.fromtimestamp(boundary, UTC)
            )
            for key in planned:
                profile = solved.sessions[key]
                amps = 0.0 if profile.paused else profile.allocated_amps_per_phase
                periods[key].append((boundary, amps))
        return {
            key: fit_schedule(
                normalize_schedule(periods[key], now),
                self.writer.max_periods(planned[key][0].charger_id),
            )
            for key in planned
        }

    def _session_writes(
        self,
        session: ChargingSession,
        config: ChargerConfig,
        target: float,
        defaults: dict[tuple[str, int], float],
        *,
        setpoint_w: float | None = None,
    ) -> list[PlannedWrite]:
        """Plan a session's limit; note its connector's default (never above it).

        `setpoint_w` (2.1 V2X, <= 0) goes with a TxProfile only.
        """
        charger_id = session.charger_id
        book = self.writer.book(charger_id)
        slot = self.writer.session_slot(config)
        connector_id = 0 if slot == SLOT_MAX else session.connector_id
        writes: list[PlannedWrite] = []
        governed = (
            book.has_tx(session.connector_id, session.transaction_id)
            if slot == SLOT_TX
            else book.acked(connector_id, slot) is not None
        )
        if slot != SLOT_TX:
            setpoint_w = None
        tx = book.slots.get((connector_id, slot))
        held_setpoint = None if tx is None or slot != SLOT_TX else tx.setpoint_w
        if (
            not governed
            or book.acked(connector_id, slot) != target
            or held_setpoint != setpoint_w
        ):
            write = WriteTarget(
                charger_id,
                session.connector_id,
                slot,
                target,
                session.transaction_id,
                setpoint_w=setpoint_w,
            )
            lowers = self._lowers(book, config, write)
            writes.append(PlannedWrite(write, "session", lowers, session, not governed))
        if slot == SLOT_MAX:
            # A station-wide limit only caps: the connector's default must carry it.
            defaults[charger_id, session.connector_id] = target
        elif slot == SLOT_TX:
            current = book.default_a(session.connector_id, config.max_current_a)
            if current > target:
                defaults[charger_id, session.connector_id] = (
                    config.min_current_a if target >= config.min_current_a else 0.0
                )
        return writes

    def _default_writes(
        self, defaults: Mapping[tuple[str, int], float]
    ) -> list[PlannedWrite]:
        writes: list[PlannedWrite] = []
        by_charger: dict[str, dict[int, float]] = {}
        for (charger_id, connector_id), amps in defaults.items():
            by_charger.setdefault(charger_id, {})[connector_id] = amps
        for charger_id, wanted in by_charger.items():
            config = self.chargers[charger_id]
            book = self.writer.book(charger_id)
            # Only connector 0 takes a default: the lowest any connector needs.
            targets = (
                {0: min(wanted.values())} if book.connector_defaults_refused else wanted
            )
            for connector_id, amps in sorted(targets.items()):
                installed = book.slots.get((connector_id, SLOT_DEFAULT))
                if (
                    installed is not None
                    and installed.pending_a is None
                    and installed.limit_a == amps
                ):
                    continue
                write = WriteTarget(charger_id, connector_id, SLOT_DEFAULT, amps)
                writes.append(
                    PlannedWrite(write, "default", self._lowers(book, config, write))
                )
        return writes

    def _lowers(
        self, book: ChargerBook, config: ChargerConfig, write: WriteTarget
    ) -> bool:
        """Return whether a write cannot raise any connector's reserve."""
        charger_id = config.charger_id
        running = {
            s.connector_id: s.transaction_id for s in self.book.of_charger(charger_id)
        }
        connectors = self.connectors(charger_id)
        hardware = config.max_current_a

        def total(candidate: ChargerBook) -> float:
            return sum(
                candidate.reserve(cid, running.get(cid), hardware) for cid in connectors
            )

        after = ChargerBook()
        after.slots = dict(book.slots)
        connector_id = 0 if write.slot == SLOT_MAX else write.connector_id
        # Purpose and stack level do not change what a slot imposes.
        after.slots[connector_id, write.slot] = Installed(
            purpose=write.slot,
            stack_level=0,
            limit_a=write.limit_a,
            transaction_id=write.transaction_id if write.slot == SLOT_TX else None,
        )
        held = book.slots.get((connector_id, write.slot))
        # V2X: more discharge is an increase for the export limits.
        more_discharge = -(write.setpoint_w or 0.0) > -(
            (held.setpoint_w if held is not None else None) or 0.0
        )
        return total(after) <= total(book) + 1e-9 and not more_discharge

    def _dynamic_schedule(
        self, charger_id: str, profile_id: int
    ) -> DynamicScheduleUpdate | None:
        """Answer a 2.1 PullDynamicScheduleUpdate from the book (None: not ours)."""
        config = self.chargers.get(charger_id)
        book = self.writer.books.get(charger_id)
        if config is None or book is None:
            return None
        return self.setpoints.dynamic_schedule(
            book, profile_id, self._voltage(config) * config.phases
        )

    def _due(self, increases: list[PlannedWrite]) -> list[PlannedWrite]:
        """Drop session increases inside the dead band; defer those that come too soon."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        due: list[PlannedWrite] = []
        wait: float | None = None
        for write in increases:
            session = write.session
            if write.kind != "session" or session is None:
                due.append(write)
                continue
            old = self.writer.book(session.charger_id).acked(
                0 if write.target.slot == SLOT_MAX else session.connector_id,
                write.target.slot,
            )
            if write.first or old is None:
                due.append(write)  # a first limit always goes out
                continue
            scheduled = write.target.schedule is not None or write.step is not None
            if (
                not scheduled  # a schedule's dead band is judged at every instant
                and old > 0
                and write.target.limit_a - old < self.increase_dead_band_a
            ):
                continue  # not worth a flash write; the lower limit is safe
            last = self._last_increase.get(session.key)
            if last is not None and now - last < self.min_increase_interval_s:
                remaining = self.min_increase_interval_s - (now - last)
                wait = remaining if wait is None else min(wait, remaining)
                continue
            due.append(write)
        if wait is not None:
            self._retry_later(wait)
        return due

    def _retry_later(self, delay: float) -> None:
        """Rebalance again after `delay` seconds (one timer at a time)."""
        if self._deferred is not None or self._stopping:
            return

        def _retry() -> None:
            self._deferred = None
            self.request_rebalance()

        self._deferred = asyncio.get_running_loop().call_later(delay, _retry)

    async def _apply(self, write: PlannedWrite) -> bool:
        """Send one planned write; contain any error to this charger."""
        target = write.target
        charger_id = target.charger_id
        config = self.chargers.get(charger_id)
        if config is None:
            return True
        try:
            if charger_id not in self.writer.capabilities:
                # Not probed yet: nothing is written; its probe rebalances when done.
                self._start_boot(charger_id, boot=False)  # no-op while one runs
                return True
            await self._await_boot(charger_id)
            if not self._controllable(charger_id):
                self._dirty = True  # planned before its probe: plan again
                return True
            async with self._send_window:
                self._last_write[session_key(charger_id, target.connector_id)] = (
                    asyncio.get_running_loop().time()
                )
                if write.kind == "session" and write.session is not None:
                    if write.phases is not None:
                        config = replace(config, phases=write.phases)
                    return await self._apply_session(
                        write.session, target, config, write
                    )
                return await self._apply_default(target, config)
        except Exception:
            _LOGGER.exception(
                "Charger %s: writing a limit on connector %s failed",
                charger_id,
                target.connector_id,
            )
            # Its reserve stays as it is until the charger shows a sign of life.
            key = session_key(charger_id, target.connector_id)
            (self.writer.held if write.kind == "session" else self.defaults_held).add(
                key
            )
            return False

    async def _apply_session(
        self,
        session: ChargingSession,
        target: WriteTarget,
        config: ChargerConfig,
        write: PlannedWrite,
    ) -> bool:
        def still_running() -> bool:
            return self.book.by_key(session.key) is session

        if target.schedule is not None:
            ok = await self.writer.write_schedule(target, config, still_running)
            if not ok and session.charger_id in self.writer.schedules_refused:
                self._dirty = True  # plan again: one limit at a time
        else:
            ok = await self.writer.write_session(target, config, still_running)
            if (
                target.setpoint_w is not None
                and still_running()
                and self.setpoints.refused(session, target)
            ):
                self._dirty = True  # it only charges from now on: plan again
        if ok and still_running() and write.phases is not None:
            self.phase_switching.acked[session.key] = write.phases
        if ok and still_running():
            if not write.lowers and not write.first:
                self._last_increase[session.key] = asyncio.get_running_loop().time()
            capabilities = self.writer.caps(session.charger_id)
            shape = (
                session.charger_id,
                capabilities.working_purpose or "",
                capabilities.working_rate_unit or "",
            )
            if shape not in self.writer.verified:
                self.writer.verified.add(shape)
                self._spawn(
                    self._read_back(session, config),
                    "Composite schedule read-back",
                    session.charger_id,
                )
        return ok

    async def _apply_default(self, target: WriteTarget, config: ChargerConfig) -> bool:
        key = session_key(target.charger_id, target.connector_id)
        try:
            if await self.writer.write_default(target, config):
                return True
        except (ChargerNotConnectedError, CallTimeoutError) as err:
            _LOGGER.warning(
                "Charger %s: connector %s default not written (%s); its reserve stays",
                target.charger_id,
                target.connector_id,
                err,
            )
            self.defaults_held.add(key)
            return False
        book = self.writer.book(target.charger_id)
        accepted_before = book.slots.get((target.connector_id, SLOT_DEFAULT))
        if (
            target.connector_id != 0
            and accepted_before is not None
            and accepted_before.limit_a is not None
        ):
            # It took a default on this connector before, and that one is in force:
            # a passing refusal. Its reserve stays; the next sign of life retries.
            _LOGGER.warning(
                "Charger %s refused connector %s's default; its reserve stays",
                target.charger_id,
                target.connector_id,
            )
            self.defaults_held.add(key)
            return False
        if target.connector_id != 0 and not book.connector_defaults_refused:
            _LOGGER.warning(
                "Charger %s refuses connector defaults; using connector 0",
                target.charger_id,
            )
            book.connector_defaults_refused = True
        else:
            # Refused on connector 0 too: its connectors keep what they start at now.
            for connector_id in self.connectors(target.charger_id):
                self.defaults_held.add(session_key(target.charger_id, connector_id))
        return False

    async def _read_back(self, session: ChargingSession, config: ChargerConfig) -> None:
        """Check the composite schedule against the limit we expect."""
        limit = await self.writer.read_back(
            session.charger_id, session.connector_id, config
        )
        expected = self._acked_in_force(session, config)
        if (
            limit is None
            or expected is None
            or self.book.by_key(session.key) is not session
            or limit <= expected + SCHEDULE_TOLERANCE_A
        ):
            return
        self._non_compliant(session, expected, limit, "schedule")
        self.request_rebalance()

    # ------------------------------------------------------------------ snapshot

    def snapshot(self) -> SiteSnapshot:
        """Return a plain view of panels and chargers for entities."""
        allocation = self._allocation
        panels: dict[str, PanelSnapshot] = {}
        for panel in self.site.panels:
            result = allocation.panels.get(panel.id) if allocation else None
            panels[panel.id] = PanelSnapshot(
                panel_id=panel.id,
                limit_kw=panel.limit_kw,
                budget_kw=result.budget_kw if result else 0.0,
                allocated_kw=result.allocated_kw if result else 0.0,
                measured_kw=self.measured_kw(panel.id),
                headroom_kw=result.headroom_kw if result else 0.0,
                active_sessions=self.session_count(panel.id),
            )
        chargers = {
            charger_id: self._charger_snapshot(charger_id)
            for charger_id in self.chargers
        }
        return SiteSnapshot(
            panels=panels,
            chargers=chargers,
            over_committed=allocation.over_committed if allocation else False,
            paused=tuple(str(key) for key in allocation.paused) if allocation else (),
        )

    def _charger_snapshot(self, charger_id: str) -> ChargerSnapshot:
        state = self.server.chargers.get(charger_id)
        session = self.book.first_of(charger_id)
        connector_id = session.connector_id if session else 1
        meter = state.meter.get(connector_id) if state else None
        transaction = (
            state.transactions.get(session.transaction_id)
            if state and session
            else None
        )
        profile = self.limit_for(charger_id) if session else None
        connector = state.connectors.get(connector_id) if state else None
        config = self.chargers[charger_id]
        in_force = (
            self._acked_in_force(session, config) if session is not None else None
        )
        if in_force is not None and session is not None:
            # A schedule: its period of now, not its highest.
            in_force = self.writer.book(charger_id).in_force_at(
                session.connector_id,
                session.transaction_id,
                config.max_current_a,
                self._clock().timestamp(),
            )
        return ChargerSnapshot(
            charger_id=charger_id,
            connected=self.server.connected(charger_id),
            ocpp_version=state.ocpp_version if state else None,
            status=connector.status if connector else "Unknown",
            transaction_id=session.transaction_id if session else None,
            allocated_a=profile.allocated_amps_per_phase if profile else None,
            allocated_w=float(profile.allocated_w) if profile else None,
            limit_acked_a=in_force,
            measured_w=meter.power_w if meter else None,
            current_a=meter.current_a if meter else (),
            session_energy_wh=transaction.energy_wh if transaction else None,
            lifetime_energy_wh=meter.energy_wh if meter else None,
            phases_in_use=self.phases_in_use(charger_id, connector_id)
            if session is not None
            else None,
            phase_switching=self.switches_phases(config),
        )

    # --------------------------------------------------------------- persistence

    def export_state(self) -> dict[str, Any]:
        """Return sessions, capabilities and installed profiles as JSON-able data.

        With the phases each session's acknowledged limit uses (a switched charger's
        session stays on one phase across a restart, without a pause to switch).
        """
        data = export_state(self.book, self.writer)
        if self.phase_switching.acked:
            data["phases_in_use"] = dict(self.phase_switching.acked)
        if self._turn:
            # The turn order of paused cars: the same car is not first after a restart.
            data["rotation"] = export_rotation(
                self._turn, self._waiting_since, self._turn_due, _loop_time()
            )
        return data

    def rotation_order(self) -> list[str]:
        """Return the session keys in the rotation's turn order (first: served first)."""
        return sorted(self._turn, key=lambda key: (self._turn[key], key))

    def import_state(self, data: Mapping[str, Any]) -> None:
        """Restore what `export_state` saved; entries that cannot be read are skipped."""
        phases = data.get("phases_in_use")
        for key, value in (phases if isinstance(phases, Mapping) else {}).items():
            if value in (1, 3) and not isinstance(value, bool):
                self.phase_switching.acked[str(key)] = int(value)
        turn, waiting, due = import_rotation(data.get("rotation"), _loop_time())
        self._turn.update(turn)
        self._waiting_since.update(waiting)
        self._turn_due |= due
        for session in import_state(data, self.book, self.writer):
            self.server.restore_transaction(
                session.charger_id,
                session.connector_id,
                session.transaction_id,
                id_tag=session.id_tag,
                meter_start_wh=session.meter_start_wh,
                started=session.started,
            )


def _loop_time() -> float:
    """Return the rotation clock: the running loop's time (its monotonic clock)."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return time.monotonic()


__all__ = [
    "SEND_WINDOW",
    "ChargerSnapshot",
    "PanelSnapshot",
    "SiteController",
    "SiteSnapshot",
]
