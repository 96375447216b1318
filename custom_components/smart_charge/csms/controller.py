"""Glue between the central system and the engine, without Home Assistant.

`SiteController` subscribes to server events, keeps one engine session per running
transaction, and applies each new allocation in the safe order: every decrease is sent and
acknowledged (or timed out) before any increase.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
import logging
from typing import Any

from custom_components.smart_charge.engine import (
    EngineError,
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

from .charge_point import OCPP16, OCPP21, LimitRecord, utcnow
from .errors import CsmsError
from .events import (
    ChargerConnected,
    ChargerDisconnected,
    ChargerEvent,
    MeterValuesReceived,
    TransactionStarted,
    TransactionStopped,
)
from .server import CentralSystem

_LOGGER = logging.getLogger(__name__)
STATE_VERSION = 1
_UNMANAGED_REBALANCE_KW = 0.2


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

    @property
    def key(self) -> str:
        return _key(self.charger_id, self.connector_id)


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
    ) -> None:
        """Connect a server to a site; call `handle_event` from the server's subscriber."""
        self.server = server
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

    # ------------------------------------------------------------------- events

    def handle_event(self, event: ChargerEvent) -> None:
        """Feed one server event (call it from the server's `on_event`)."""
        charger_id = event.charger_id
        rebalance = False
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
        return (
            config is not None
            and not config.managed
            and abs(previous - power) / 1000.0 >= _UNMANAGED_REBALANCE_KW
        )

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
        """Cancel a pending rebalance and wait for it."""
        runner, self._runner = self._runner, None
        if runner is not None and not runner.done():
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)

    def _voltage(self, config: ChargerConfig) -> float:
        return config.voltage_v or self.site.voltage_v

    def _kw(self, config: ChargerConfig, amps: float) -> float:
        return amps * self._voltage(config) * config.phases / 1000.0

    def _held_limit_a(self, session: _Session, config: ChargerConfig) -> float:
        """Return what a charger holds: its acknowledged limit, else its hardware max."""
        state = self.server.chargers.get(session.charger_id)
        record = state.limit_acked.get(session.connector_id) if state else None
        if record is None or record.transaction_id not in (
            None,
            session.transaction_id,
        ):
            return config.max_current_a
        return self._amps(record, config)

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
                "min_charge_rate_kw": self._kw(config, config.min_current_a),
                "priority": config.priority,
                "phases": config.phases,
                "voltage_v": self._voltage(config),
                "grid_phase": config.grid_phase,
                "panel_id": config.panel_id,
                "started_at": session.started,
                "sequence": sequence,
            }
            if not config.managed:
                measured = session.measured_w / 1000.0
                sessions.append(
                    Session(**common, managed=False, measured_power_kw=measured)
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
        by_key = {session.key: session for session in controlled}
        for session in controlled:
            config = self.chargers[session.charger_id]
            profile = allocation.sessions[session.key]
            previous[session.key] = self._held_limit_a(session, config)
            targets[session.key] = (
                0.0 if profile.paused else profile.allocated_amps_per_phase
            )
        plan = plan_transition(previous, targets)
        if plan.is_empty:
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
        await asyncio.gather(
            *(
                self._send(
                    by_key[change.key], allocation.sessions[change.key], change.new
                )
                for change in plan.increases
            )
        )

    def build_profile(
        self, session_key: str, profile: SessionProfile, limit_a: float
    ) -> dict[str, Any]:
        """Return the camelCase charging profile for a session at `limit_a`."""
        session = self._sessions[session_key]
        config = self.chargers[session.charger_id]
        version = self.server.ocpp_version(session.charger_id)
        builder: Callable[..., dict[str, Any]] = build_ocpp201_profile
        if version == OCPP16:
            builder = build_ocpp16_profile
        elif version == OCPP21:
            builder = build_ocpp21_profile
        wire = replace(
            profile,
            transaction_id=session.transaction_id,
            allocated_amps_per_phase=limit_a,
        )
        return builder(
            wire,
            purpose=config.profile_purpose,
            stack_level=config.stack_level,
            rate_unit="A",
            number_phases=config.phases,
            start_schedule=utcnow(),
        )

    async def _send(
        self, session: _Session, profile: SessionProfile, limit_a: float
    ) -> bool:
        """Send one limit; return whether the charger took it."""
        try:
            body = self.build_profile(session.key, profile, limit_a)
        except EngineError:
            _LOGGER.exception("Cannot build a profile for %s", session.key)
            return False
        _LOGGER.info(
            "Charger %s connector %s: sending limit %.1f A (transaction %s)",
            session.charger_id,
            session.connector_id,
            limit_a,
            session.transaction_id,
        )
        try:
            status = await self.server.set_charging_profile(
                session.charger_id, session.connector_id, body
            )
        except CsmsError as err:
            _LOGGER.warning(
                "Limit %.1f A for %s not applied: %s", limit_a, session.key, err
            )
            self._held.add(session.key)
            return False
        if status != "Accepted":
            _LOGGER.warning(
                "Charger %s answered %s to a limit of %.1f A",
                session.charger_id,
                status,
                limit_a,
            )
            self._held.add(session.key)
            return False
        return True

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
        }

    def import_state(self, data: Mapping[str, Any]) -> None:
        """Restore sessions saved by `export_state`; unknown versions are ignored."""
        if data.get("version") != STATE_VERSION:
            return
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
