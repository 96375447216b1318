"""Glue between the central system and the engine, without Home Assistant.

`SiteController` subscribes to server events, keeps one engine session per running
transaction, and applies each new allocation in the safe order: every decrease is sent and
acknowledged (or timed out) before any increase.

After each boot it reads the charger's smart-charging capabilities, sends the failsafe
TxDefaultProfile (`ServerConfig.failsafe_current_a`), and shapes every profile to what the
charger supports. A refused profile is retried in the other rate unit and then as a
TxDefaultProfile on the connector; what worked is remembered. A charger that refuses every
shape is reported once (`ChargerRejectsProfiles`) and its hardware maximum stays reserved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
import logging
from typing import Any, Final

from custom_components.smart_charge.csms.capabilities import (
    OCPP2_VARIABLES,
    OCPP16_KEYS,
    RATE_AMPS,
    RATE_WATTS,
    ChargerCapabilities,
    from_ocpp2_variables,
    from_ocpp16_configuration,
)
from custom_components.smart_charge.csms.charge_point import (
    OCPP16,
    OCPP21,
    LimitRecord,
    utcnow,
)
from custom_components.smart_charge.csms.errors import (
    CallTimeoutError,
    ChargerNotConnectedError,
    CsmsError,
)
from custom_components.smart_charge.csms.events import (
    STATUS_CHARGING,
    STATUS_SUSPENDED_EV,
    BootReceived,
    CapabilitiesLearned,
    ChargerConnected,
    ChargerDisconnected,
    ChargerEvent,
    ChargerRejectsProfiles,
    EVChargingNeeds,
    MeterValuesReceived,
    StatusChanged,
    TransactionStarted,
    TransactionStopped,
)
from custom_components.smart_charge.csms.server import CentralSystem
from custom_components.smart_charge.engine import (
    EngineError,
    LimitChange,
    Phase,
    Session,
    SessionProfile,
    Site,
    SiteAllocation,
    allocate_site,
    build_ocpp16_profile,
    build_ocpp21_profile,
    build_ocpp201_profile,
    plan_transition,
)

_LOGGER = logging.getLogger(__name__)
STATE_VERSION = 1
_UNMANAGED_REBALANCE_KW = 0.2
TX_PROFILE: Final = "TxProfile"
TX_DEFAULT_PROFILE: Final = "TxDefaultProfile"
STATION_MAX_PURPOSES: Final = frozenset(
    {"ChargePointMaxProfile", "ChargingStationMaxProfile"}
)
FAILSAFE_STACK_LEVEL: Final = 0
# Two unanswered attempts in a row: the charger is not answering, not refusing.
_MAX_TIMEOUTS: Final = 2
# Profiles in flight at once during a fan-out. Each send is a burst of work on the
# event loop (the event loop of Home Assistant, too); a window keeps those bursts short
# so meter values and everything else are served in between, and a slow charger holds
# one place only.
SEND_WINDOW: Final = 32


@dataclass(frozen=True, slots=True)
class ChargerConfig:
    """How the site treats one charger."""

    charger_id: str
    panel_id: str
    managed: bool = True
    phases: int = 3
    grid_phase: Phase | None = None
    min_current_a: float = 6.0
    max_current_a: float = 32.0
    priority: float = 1
    profile_purpose: str = "TxProfile"
    stack_level: int = 1
    password: str | None = None
    voltage_v: float | None = None


@dataclass(slots=True)
class _Session:
    charger_id: str
    connector_id: int
    transaction_id: str
    id_tag: str | None
    started: datetime
    meter_start_wh: float | None = None
    measured_w: float = 0.0
    # What the car takes (A per phase), learned from meter values or told (2.x needs).
    ev_max_a: float | None = None
    ev_learned_at: float = 0.0
    below_count: int = 0
    ev_needs_a: float | None = None  # the EV's own maximum (NotifyEVChargingNeeds)
    # The car stopped drawing by itself (full, or scheduled): it keeps only its minimum
    # until it charges again, so its share goes to the other cars.
    suspended_ev: bool = False

    @property
    def ev_cap_a(self) -> float | None:
        """Return the lower of the learned and the told acceptance, if any."""
        caps = [c for c in (self.ev_max_a, self.ev_needs_a) if c is not None]
        return min(caps) if caps else None

    @property
    def key(self) -> str:
        return _key(self.charger_id, self.connector_id)


# Learning what a car accepts from its meter values (A per phase).
EV_GAP_A: Final = 2.0  # drawing this much below its limit ...
EV_SAMPLES: Final = 3  # ... in this many meter values in a row ...
EV_HEADROOM_A: Final = 1.0  # ... caps it at what it draws plus this,
EV_FULL_A: Final = 0.5  # until it uses its cap to within this,
EV_CHARGING_A: Final = 1.0  # (a car below this is not charging: nothing learned)
EV_RELEARN_S: Final = 900.0  # or this long has passed.


def _key(charger_id: str, connector_id: int) -> str:
    return f"{charger_id}#{connector_id}"


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
        increase_dead_band_a: float = 0.5,
        min_increase_interval_s: float = 0.0,
    ) -> None:
        """Connect a server to a site; call `handle_event` from the server's subscriber.

        Chargers write profiles to flash, so an increase smaller than
        `increase_dead_band_a` is not sent, and a charger gets at most one increase per
        `min_increase_interval_s` (a later one waits, then goes out). Decreases are never
        held back.
        """
        self.server = server
        self.increase_dead_band_a = increase_dead_band_a
        self.min_increase_interval_s = min_increase_interval_s
        self._last_increase: dict[str, float] = {}
        self._deferred: asyncio.TimerHandle | None = None
        self.site = site
        self.chargers = dict(chargers)
        self._on_change = on_change
        self._sessions: dict[str, _Session] = {}
        self._held: set[str] = set()  # not answering: reserved at their last limit
        self._allocation: SiteAllocation | None = None
        self._lock = asyncio.Lock()
        self._dirty = False
        self._runner: asyncio.Task[None] | None = None
        self._measured_unmanaged: dict[str, float] = {}
        self._capabilities: dict[str, ChargerCapabilities] = {}
        self._learning: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_window = asyncio.Semaphore(SEND_WINDOW)

    # ------------------------------------------------------------------ queries

    @property
    def allocation(self) -> SiteAllocation | None:
        """Return the last allocation computed."""
        return self._allocation

    def sessions(self) -> list[tuple[str, int, str]]:
        """Return (charger id, connector id, transaction id) of each session."""
        return [
            (s.charger_id, s.connector_id, s.transaction_id)
            for s in self._sessions.values()
        ]

    def _panel_ids_under(self, panel_id: str) -> set[str]:
        found = {panel_id}
        changed = True
        while changed:
            changed = False
            for panel in self.site.panels:
                if panel.parent_id in found and panel.id not in found:
                    found.add(panel.id)
                    changed = True
        return found

    def _sessions_under(self, panel_id: str) -> list[_Session]:
        panels = self._panel_ids_under(panel_id)
        return [
            session
            for session in self._sessions.values()
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
        if self._allocation is None:
            return None
        for session in self._sessions.values():
            if session.charger_id == charger_id:
                return self._allocation.sessions.get(session.key)
        return None

    def capabilities(self, charger_id: str) -> ChargerCapabilities | None:
        """Return what the charger can do with profiles (None: not seen yet)."""
        return self._capabilities.get(charger_id)

    # ------------------------------------------------------------------- events

    def handle_event(self, event: ChargerEvent) -> None:
        """Feed one server event (call it from the server's `on_event`)."""
        charger_id = event.charger_id
        if isinstance(event, CapabilitiesLearned | ChargerRejectsProfiles):
            return  # our own reports, coming back through the server's subscriber
        rebalance = False
        if charger_id in self.chargers and (
            isinstance(event, BootReceived)
            or (
                charger_id not in self._capabilities
                and not isinstance(event, ChargerConnected | ChargerDisconnected)
            )
        ):
            self._start_learning(charger_id, boot=isinstance(event, BootReceived))
        if not isinstance(event, ChargerDisconnected):
            # Any sign of life: a held charger is answered again at the next rebalance.
            held = {k for k in self._held if k.startswith(f"{charger_id}#")}
            if held:
                self._held -= held
                rebalance = True
        match event:
            case TransactionStarted():
                key = _key(charger_id, event.connector_id)
                self._sessions[key] = _Session(
                    charger_id,
                    event.connector_id,
                    event.transaction_id,
                    event.id_tag,
                    event.timestamp,
                    event.meter_start_wh,
                )
                rebalance = True
            case TransactionStopped():
                for key, session in list(self._sessions.items()):
                    if (
                        session.charger_id == charger_id
                        and session.transaction_id == event.transaction_id
                    ):
                        del self._sessions[key]
                        self._held.discard(key)
                        rebalance = True
            case MeterValuesReceived():
                rebalance |= self._meter(event)
            case EVChargingNeeds(ev_max_current_a=ev_max) if ev_max:
                needy = self._sessions.get(_key(charger_id, event.connector_id))
                if needy is not None and needy.ev_needs_a != ev_max:
                    needy.ev_needs_a = ev_max
                    rebalance = True
            case StatusChanged(status=status):
                suspended = self._sessions.get(_key(charger_id, event.connector_id))
                if suspended is not None and status in (
                    STATUS_SUSPENDED_EV,
                    STATUS_CHARGING,
                ):
                    now_suspended = status == STATUS_SUSPENDED_EV
                    rebalance |= suspended.suspended_ev != now_suspended
                    suspended.suspended_ev = now_suspended
            case ChargerConnected():
                rebalance = True
            case _:
                pass
        if rebalance and charger_id in self.chargers:
            self.request_rebalance()
        self._changed()

    def _meter(self, event: MeterValuesReceived) -> bool:
        session = self._sessions.get(_key(event.charger_id, event.connector_id))
        if session is None:
            return False
        if event.power_w is not None:
            power = event.power_w
        elif event.current_a and event.voltage_v:
            power = sum(event.current_a) * event.voltage_v
        else:
            return False
        previous, session.measured_w = session.measured_w, max(0.0, power)
        config = self.chargers.get(event.charger_id)
        if config is None:
            return False
        if config.managed:
            return self._learn_acceptance(session, config, event.current_a)
        return abs(previous - power) / 1000.0 >= _UNMANAGED_REBALANCE_KW

    def _learn_acceptance(
        self, session: _Session, config: ChargerConfig, currents: Sequence[float]
    ) -> bool:
        """Learn that a car takes less than its limit; return whether to rebalance.

        A car drawing at least `EV_GAP_A` below its acknowledged limit for
        `EV_SAMPLES` meter values in a row is capped at what it draws plus `EV_HEADROOM_A`,
        so the rest goes to other cars. The cap is dropped (the car may take more again)
        when the car uses all of it, and every `EV_RELEARN_S` seconds.
        """
        if not currents:
            return False
        drawn = max(currents)
        acked = self._acked_limit_a(session, config)
        now = asyncio.get_running_loop().time()
        if session.ev_max_a is not None and (
            now - session.ev_learned_at >= EV_RELEARN_S
            or drawn >= session.ev_max_a - EV_FULL_A
        ):
            session.ev_max_a, session.below_count = None, 0
            return True
        if acked is None or drawn < EV_CHARGING_A or acked - drawn < EV_GAP_A:
            session.below_count = 0
            return False
        session.below_count += 1
        if session.below_count < EV_SAMPLES or session.ev_max_a is not None:
            return False
        session.ev_max_a = max(config.min_current_a, round(drawn + EV_HEADROOM_A, 1))
        session.ev_learned_at = now
        _LOGGER.info(
            "%s connector %s: the car takes about %.1f A, capping it at %.1f A",
            session.charger_id,
            session.connector_id,
            drawn,
            session.ev_max_a,
        )
        return True

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

    # ----------------------------------------------------------------- rebalance

    def request_rebalance(self) -> None:
        """Schedule a rebalance; overlapping requests coalesce into one follow-up."""
        self._dirty = True
        if self._runner is None or self._runner.done():
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def rebalance(self) -> None:
        """Allocate and apply now (or wait for the run that covers this request)."""
        self._dirty = True
        await self._run()

    async def _run(self) -> None:
        async with self._lock:
            while self._dirty:
                self._dirty = False
                try:
                    await self._rebalance_once()
                except EngineError:
                    _LOGGER.exception("Allocation failed; limits unchanged")
                self._changed()

    async def stop(self) -> None:
        """Cancel a pending rebalance and capability reads, and wait for them."""
        runner, self._runner = self._runner, None
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None
        tasks = [*self._tasks, *([runner] if runner is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ------------------------------------------------------------- capabilities

    def _start_learning(self, charger_id: str, *, boot: bool) -> None:
        running = self._learning.get(charger_id)
        if running is not None and not running.done():
            if not boot:
                return
            running.cancel()
        task = asyncio.get_running_loop().create_task(
            self._learn(charger_id, boot=boot)
        )
        self._learning[charger_id] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _learn(self, charger_id: str, *, boot: bool) -> None:
        """Read the capabilities, then (at boot) send the failsafe profile."""
        previous = self._capabilities.get(charger_id)
        try:
            if self.server.ocpp_version(charger_id) == OCPP16:
                result = await self.server.get_configuration(
                    charger_id, list(OCPP16_KEYS)
                )
                learned = from_ocpp16_configuration(result.values, previous)
            else:
                variables = await self.server.get_variables(
                    charger_id, list(OCPP2_VARIABLES)
                )
                learned = from_ocpp2_variables(variables, previous)
        except CsmsError as err:
            _LOGGER.warning(
                "Charger %s: cannot read its smart-charging capabilities (%s); "
                "assuming amps and the configured profile",
                charger_id,
                err,
            )
            learned = previous or ChargerCapabilities()
        if boot:
            # A reboot (often a firmware update) earns a charger another chance.
            learned = replace(learned, rejects_profiles=False)
        self._capabilities[charger_id] = learned
        _LOGGER.info("Charger %s capabilities: %s", charger_id, learned)
        self.server.emit(CapabilitiesLearned(charger_id, learned))
        if previous is None or previous.controllable != learned.controllable:
            self.request_rebalance()
        if boot:
            await self._send_failsafe(charger_id, learned)

    async def _send_failsafe(
        self, charger_id: str, capabilities: ChargerCapabilities
    ) -> None:
        """Send a station-wide TxDefaultProfile at the configured safe current."""
        safe_a = self.server.config.failsafe_current_a
        config = self.chargers.get(charger_id)
        if (
            safe_a is None
            or config is None
            or not config.managed
            or not capabilities.controllable
        ):
            return
        amps = max(0.0, min(safe_a, config.max_current_a))
        for unit in _units(capabilities):
            profile = self._failsafe_profile(
                charger_id, config, capabilities, amps, unit
            )
            try:
                status = await self.server.set_charging_profile(
                    charger_id, 0, profile, record_limit=False, prebuilt=True
                )
            except ChargerNotConnectedError:
                return
            except CsmsError as err:
                status = str(err)
            if status == "Accepted":
                _LOGGER.info(
                    "Charger %s: failsafe TxDefaultProfile %.1f A set", charger_id, amps
                )
                return
            _LOGGER.warning(
                "Charger %s refused the failsafe profile in %s: %s",
                charger_id,
                unit,
                status,
            )

    def _failsafe_profile(
        self,
        charger_id: str,
        config: ChargerConfig,
        capabilities: ChargerCapabilities,
        amps: float,
        unit: str,
    ) -> dict[str, Any]:
        volts = self._voltage(config) * config.phases
        profile = SessionProfile(
            transaction_id="failsafe",
            client_id=charger_id,
            connector_id=0,
            allocated_kw=amps * volts / 1000.0,
            allocated_w=int(amps * volts),
            allocated_amps_per_phase=amps,
            phases=config.phases,
            paused=False,
        )
        return self._builder(charger_id)(
            profile,
            purpose=TX_DEFAULT_PROFILE,
            stack_level=capabilities.stack_level(FAILSAFE_STACK_LEVEL),
            rate_unit=unit,
            number_phases=config.phases,
            start_schedule=utcnow(),
        )

    def _builder(self, charger_id: str) -> Callable[..., dict[str, Any]]:
        version = self.server.ocpp_version(charger_id)
        if version == OCPP16:
            return build_ocpp16_profile
        if version == OCPP21:
            return build_ocpp21_profile
        return build_ocpp201_profile

    def _voltage(self, config: ChargerConfig) -> float:
        return config.voltage_v or self.site.voltage_v

    def _kw(self, config: ChargerConfig, amps: float) -> float:
        return amps * self._voltage(config) * config.phases / 1000.0

    def _acked_limit_a(self, session: _Session, config: ChargerConfig) -> float | None:
        """Return the limit the charger acknowledged for this session, if any."""
        state = self.server.chargers.get(session.charger_id)
        record = state.limit_acked.get(session.connector_id) if state else None
        if record is None and state is not None:
            station = state.limit_acked.get(0)
            if station is not None and station.purpose in STATION_MAX_PURPOSES:
                record = station
        if record is None or record.transaction_id not in (
            None,
            session.transaction_id,
        ):
            return None
        return self._amps(record, config)

    def _held_limit_a(self, session: _Session, config: ChargerConfig) -> float:
        """Return what a charger holds: its acknowledged limit, else its hardware max."""
        acked = self._acked_limit_a(session, config)
        return config.max_current_a if acked is None else acked

    def _amps(self, record: LimitRecord, config: ChargerConfig) -> float:
        if record.unit == "W":
            return record.limit / (self._voltage(config) * config.phases)
        return record.limit

    def _engine_sessions(self) -> tuple[list[Session], list[_Session]]:
        sessions: list[Session] = []
        controlled: list[_Session] = []
        for sequence, session in enumerate(self._sessions.values()):
            config = self.chargers.get(session.charger_id)
            if config is None or config.panel_id not in self.site.index:
                continue
            online = (
                self.server.connected(session.charger_id)
                and session.key not in self._held
            )
            common: dict[str, Any] = {
                "transaction_id": session.key,
                "client_id": session.charger_id,
                "connector_id": session.connector_id,
                "max_hardware_power_kw": self._kw(config, config.max_current_a),
                "max_ev_acceptance_power_kw": self._kw(config, config.min_current_a)
                if session.suspended_ev
                else None
                if session.ev_cap_a is None
                else self._kw(config, session.ev_cap_a),
                "min_charge_rate_kw": self._kw(config, config.min_current_a),
                "priority": config.priority,
                "phases": config.phases,
                "voltage_v": self._voltage(config),
                "grid_phase": config.grid_phase,
                "panel_id": config.panel_id,
                "started_at": session.started,
                "sequence": sequence,
            }
            capabilities = self._capabilities.get(session.charger_id)
            if not config.managed:
                measured = session.measured_w / 1000.0
                sessions.append(
                    Session(**common, managed=False, measured_power_kw=measured)
                )
            elif capabilities is not None and not capabilities.controllable:
                # Profiles cannot limit it: its hardware maximum stays reserved.
                reserved = max(
                    self._kw(config, config.max_current_a), session.measured_w / 1000.0
                )
                sessions.append(
                    Session(**common, managed=False, measured_power_kw=reserved)
                )
            elif not online:
                reserved = self._kw(config, self._held_limit_a(session, config))
                sessions.append(
                    Session(**common, managed=False, measured_power_kw=reserved)
                )
            else:
                sessions.append(Session(**common))
                controlled.append(session)
        return sessions, controlled

    async def _rebalance_once(self) -> None:
        sessions, controlled = self._engine_sessions()
        allocation = allocate_site(self.site, sessions)
        self._allocation = allocation
        previous: dict[str, float] = {}
        targets: dict[str, float] = {}
        # No limit acknowledged for this transaction yet (new session, failsafe only,
        # after a restart): its limit is always sent, after the decreases.
        unknown: list[LimitChange[str]] = []
        by_key = {session.key: session for session in controlled}
        for session in controlled:
            config = self.chargers[session.charger_id]
            profile = allocation.sessions[session.key]
            target = 0.0 if profile.paused else profile.allocated_amps_per_phase
            acked = self._acked_limit_a(session, config)
            if acked is None:
                unknown.append(LimitChange(key=session.key, old=0.0, new=target))
            else:
                previous[session.key] = acked
                targets[session.key] = target
        plan = plan_transition(previous, targets)
        if plan.is_empty and not unknown:
            return
        results = await asyncio.gather(
            *(
                self._send(
                    by_key[change.key], allocation.sessions[change.key], change.new
                )
                for change in plan.decreases
            )
        )
        if not all(results):
            # A charger did not take its decrease: it is now reserved at its old limit,
            # so the increases are recomputed before anything is raised.
            self._dirty = True
            return
        increases = self._due_increases(plan.increases)
        sent = await asyncio.gather(
            *(
                self._send(
                    by_key[change.key], allocation.sessions[change.key], change.new
                )
                for change in (*increases, *unknown)
            )
        )
        now = asyncio.get_running_loop().time()
        for change, ok in zip(increases, sent, strict=False):
            if ok:  # first writes (`unknown`) do not start the increase interval
                self._last_increase[change.key] = now

    def _due_increases(
        self, increases: Sequence[LimitChange[str]]
    ) -> list[LimitChange[str]]:
        """Drop increases inside the dead band; defer those that come too soon."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        due: list[LimitChange[str]] = []
        wait: float | None = None
        for change in increases:
            if change.old > 0 and change.new - change.old < self.increase_dead_band_a:
                continue  # not worth a flash write; the lower limit is safe
            last = self._last_increase.get(change.key)
            if last is not None and now - last < self.min_increase_interval_s:
                remaining = self.min_increase_interval_s - (now - last)
                wait = remaining if wait is None else min(wait, remaining)
                continue
            due.append(change)
        if wait is not None and self._deferred is None:

            def _retry() -> None:
                self._deferred = None
                self.request_rebalance()

            self._deferred = loop.call_later(wait, _retry)
        return due

    def build_profile(
        self,
        session_key: str,
        profile: SessionProfile,
        limit_a: float,
        *,
        purpose: str | None = None,
        rate_unit: str = RATE_AMPS,
    ) -> dict[str, Any]:
        """Return the camelCase charging profile for a session at `limit_a`.

        The stack level is clamped to the charger's maximum; in watts the limit is
        `limit_a` times the voltage and the phases.
        """
        session = self._sessions[session_key]
        config = self.chargers[session.charger_id]
        capabilities = self._capabilities.get(session.charger_id)
        wire = replace(
            profile,
            transaction_id=session.transaction_id,
            allocated_amps_per_phase=limit_a,
            allocated_w=int(limit_a * self._voltage(config) * config.phases + 1e-6),
        )
        stack_level = (
            capabilities.stack_level(config.stack_level)
            if capabilities
            else config.stack_level
        )
        return self._builder(session.charger_id)(
            wire,
            purpose=purpose or config.profile_purpose,
            stack_level=stack_level,
            rate_unit=rate_unit,
            number_phases=config.phases,
            start_schedule=utcnow(),
        )

    def _attempts(self, config: ChargerConfig) -> list[tuple[str, str]]:
        """Return the (purpose, rate unit) shapes to try, best first."""
        capabilities = (
            self._capabilities.get(config.charger_id) or ChargerCapabilities()
        )
        purposes = [config.profile_purpose]
        if config.profile_purpose in STATION_MAX_PURPOSES:
            purposes += [TX_DEFAULT_PROFILE, TX_PROFILE]
        elif config.profile_purpose == TX_PROFILE:
            purposes.append(TX_DEFAULT_PROFILE)
        elif config.profile_purpose == TX_DEFAULT_PROFILE:
            purposes.append(TX_PROFILE)
        attempts = [(p, unit) for p in purposes for unit in _units(capabilities)]
        working = (capabilities.working_purpose, capabilities.working_rate_unit)
        if working in attempts:
            attempts.remove(working)  # type: ignore[arg-type]
            attempts.insert(0, working)  # type: ignore[arg-type]
        return attempts

    async def _send(
        self, session: _Session, profile: SessionProfile, limit_a: float
    ) -> bool:
        """Send one limit, falling back to other shapes; return whether one was taken."""
        learning = self._learning.get(session.charger_id)
        if learning is not None and not learning.done():
            await asyncio.wait({learning}, timeout=self.server.config.call_timeout_s)
        async with self._send_window:
            return await self._send_shapes(session, profile, limit_a)

    async def _send_shapes(
        self, session: _Session, profile: SessionProfile, limit_a: float
    ) -> bool:
        config = self.chargers[session.charger_id]
        timeouts = 0
        for purpose, unit in self._attempts(config):
            try:
                body = self.build_profile(
                    session.key, profile, limit_a, purpose=purpose, rate_unit=unit
                )
            except EngineError:
                _LOGGER.exception("Cannot build a profile for %s", session.key)
                return False
            connector_id = (
                0 if purpose in STATION_MAX_PURPOSES else session.connector_id
            )
            _LOGGER.debug(
                "Charger %s connector %s: sending limit %.1f A as %s in %s "
                "(transaction %s)",
                session.charger_id,
                connector_id,
                limit_a,
                purpose,
                unit,
                session.transaction_id,
            )
            try:
                status = await self.server.set_charging_profile(
                    session.charger_id, connector_id, body, prebuilt=True
                )
            except ChargerNotConnectedError as err:
                _LOGGER.warning("Limit for %s not applied: %s", session.key, err)
                self._held.add(session.key)
                return False
            except CallTimeoutError as err:
                timeouts += 1
                status = str(err)
                if timeouts >= _MAX_TIMEOUTS:
                    _LOGGER.warning(
                        "Charger %s is not answering; its limit stays reserved",
                        session.charger_id,
                    )
                    self._held.add(session.key)
                    return False
            except CsmsError as err:
                status = str(err)
            else:
                timeouts = 0
            if status == "Accepted":
                self._remember(session.charger_id, purpose, unit)
                return True
            _LOGGER.warning(
                "Charger %s refused a %s in %s: %s",
                session.charger_id,
                purpose,
                unit,
                status,
            )
        self._held.add(session.key)
        self._rejects_profiles(session.charger_id)
        return False

    def _remember(self, charger_id: str, purpose: str, unit: str) -> None:
        capabilities = self._capabilities.get(charger_id) or ChargerCapabilities()
        if (capabilities.working_purpose, capabilities.working_rate_unit) != (
            purpose,
            unit,
        ):
            _LOGGER.info(
                "Charger %s takes a %s in %s; remembered", charger_id, purpose, unit
            )
            self._capabilities[charger_id] = capabilities.with_working(purpose, unit)
            self.server.emit(
                CapabilitiesLearned(charger_id, self._capabilities[charger_id])
            )

    def _rejects_profiles(self, charger_id: str) -> None:
        capabilities = self._capabilities.get(charger_id) or ChargerCapabilities()
        if capabilities.rejects_profiles:
            return
        _LOGGER.warning(
            "Charger %s accepts no charging profile; its hardware maximum stays "
            "reserved until it boots again",
            charger_id,
        )
        self._capabilities[charger_id] = replace(capabilities, rejects_profiles=True)
        self.server.emit(ChargerRejectsProfiles(charger_id))
        self._dirty = True

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
        chargers: dict[str, ChargerSnapshot] = {}
        for charger_id, config in self.chargers.items():
            chargers[charger_id] = self._charger_snapshot(charger_id, config)
        return SiteSnapshot(
            panels=panels,
            chargers=chargers,
            over_committed=allocation.over_committed if allocation else False,
            paused=tuple(str(key) for key in allocation.paused) if allocation else (),
        )

    def _charger_snapshot(
        self, charger_id: str, config: ChargerConfig
    ) -> ChargerSnapshot:
        state = self.server.chargers.get(charger_id)
        session = next(
            (s for s in self._sessions.values() if s.charger_id == charger_id), None
        )
        connector_id = session.connector_id if session else 1
        meter = state.meter.get(connector_id) if state else None
        transaction = (
            state.transactions.get(session.transaction_id)
            if state and session
            else None
        )
        profile = self.limit_for(charger_id) if session else None
        acked = state.limit_acked.get(connector_id) if state else None
        connector = state.connectors.get(connector_id) if state else None
        return ChargerSnapshot(
            charger_id=charger_id,
            connected=self.server.connected(charger_id),
            ocpp_version=state.ocpp_version if state else None,
            status=connector.status if connector else "Unknown",
            transaction_id=session.transaction_id if session else None,
            allocated_a=profile.allocated_amps_per_phase if profile else None,
            allocated_w=float(profile.allocated_w) if profile else None,
            limit_acked_a=self._amps(acked, config) if acked else None,
            measured_w=meter.power_w if meter else None,
            current_a=meter.current_a if meter else (),
            session_energy_wh=transaction.energy_wh if transaction else None,
            lifetime_energy_wh=meter.energy_wh if meter else None,
        )

    # --------------------------------------------------------------- persistence

    def export_state(self) -> dict[str, Any]:
        """Return the sessions as JSON-able data, for a restart."""
        return {
            "version": STATE_VERSION,
            "sessions": [
                {
                    "charger_id": s.charger_id,
                    "connector_id": s.connector_id,
                    "transaction_id": s.transaction_id,
                    "id_tag": s.id_tag,
                    "started": s.started.isoformat(),
                    "meter_start_wh": s.meter_start_wh,
                }
                for s in self._sessions.values()
            ],
            "capabilities": {
                charger_id: capabilities.to_dict()
                for charger_id, capabilities in self._capabilities.items()
            },
        }

    def import_state(self, data: Mapping[str, Any]) -> None:
        """Restore sessions and capabilities saved by `export_state`.

        Unknown versions are ignored; so is any entry that cannot be read.
        """
        if data.get("version") != STATE_VERSION:
            return
        stored = data.get("capabilities")
        for charger_id, item in (stored if isinstance(stored, Mapping) else {}).items():
            try:
                self._capabilities[str(charger_id)] = ChargerCapabilities.from_dict(
                    item
                )
            except (AttributeError, TypeError, ValueError):
                _LOGGER.warning(
                    "Ignoring stored capabilities I cannot read for %s", charger_id
                )
        for item in data.get("sessions", ()):
            try:
                session = _Session(
                    str(item["charger_id"]),
                    int(item["connector_id"]),
                    str(item["transaction_id"]),
                    item.get("id_tag"),
                    datetime.fromisoformat(item["started"]),
                    item.get("meter_start_wh"),
                )
            except (KeyError, TypeError, ValueError):
                _LOGGER.warning("Ignoring a stored session I cannot read: %s", item)
                continue
            self._sessions[session.key] = session
            self.server.restore_transaction(
                session.charger_id,
                session.connector_id,
                session.transaction_id,
                id_tag=session.id_tag,
                meter_start_wh=session.meter_start_wh,
                started=session.started,
            )


def _units(capabilities: ChargerCapabilities) -> list[str]:
    """Return the rate units to try: the preferred one, then the other."""
    preferred = capabilities.preferred_rate_unit
    return [preferred, RATE_WATTS if preferred == RATE_AMPS else RATE_AMPS]
