"""A rig for the breaker promise measured on the charger side.

A real `CentralSystem` on 127.0.0.1, a `SiteController` over a tree of panels, and
simulated chargers (`ProbedCharger`) that call back whenever what they hold or run may
have changed: a SetChargingProfile or ClearChargingProfile answered (and applied), a
1.6 transaction id learned, a car plugged in or unplugged. At each of those instants the
rig evaluates the invariant of DESIGN §3b from the simulators alone:

    for every panel: sum over the managed connectors below it (sub-panels included) of
    (the limit in force of its running session, else what a car plugging in would start
    at), in kW with the charger's phases and 230 V and, where the panel has a per-phase
    limit, in A per phase (single-phase chargers on their grid phase), plus the real draw
    of the not-managed chargers below it, <= limit x (1 - margin).

`strong=True` uses max(in force, start limit) per connector instead: a running session's
connector falls back to its default the instant the session ends.

With `clock=` (an aware datetime) the controller and every simulator share one clock
that only `advance()` moves: it stops at every period boundary of every schedule the
chargers hold and samples there, so multi-period schedules are checked at each instant
they change by themselves. `set_plan()` gives a charger a charging plan.

V2X, the other direction (`export_violations`): for every panel, the power the simulated
cars give back below it (`discharge_w`) <= its rating x (1 - margin); where it has an
export limit (the root always: None is 0), <= that limit + the house load it feeds.
A discharging car's import limit in force is 0, so the import check counts it as 0.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
import logging
import time
from typing import Any

from custom_components.smart_charge.control import (
    ChargerConfig,
    ControlReport,
    SiteController,
)
from custom_components.smart_charge.csms import (
    CentralSystem,
    ChargerDisconnected,
    ChargerEvent,
    ServerConfig,
)
from custom_components.smart_charge.engine import Panel, Phase, PhasePolicy, Site
from tools.simulator import Limit, SimulatedCharger

VOLTS = 230.0
TOLERANCE_KW = 1e-6
TOLERANCE_A = 1e-6
_PHASES = ("L1", "L2", "L3")

_LOGGER = logging.getLogger(__name__)


def spread(
    charger: SimulatedCharger, amps: float, phases: int
) -> tuple[float, float, float]:
    """Return amps on L1, L2, L3 of a limit (or draw) on `phases` phases."""
    if phases == 1:
        position = _PHASES.index(charger.grid_phase or "L1")
        return (
            amps if position == 0 else 0.0,
            amps if position == 1 else 0.0,
            amps if position == 2 else 0.0,
        )
    return (amps, amps, amps if phases == 3 else 0.0)


def loads(charger: SimulatedCharger, limit: Limit) -> tuple[float, float, float]:
    """Return what a limit in force lets the charger draw on L1, L2, L3 (A).

    A charger without phase switching draws on all its phases whatever the profile's
    numberPhases says.
    """
    phases = charger.phases
    if charger.phase_switching and limit.phases < phases:
        phases = limit.phases
    return spread(charger, limit.amps, phases)


class ProbedCharger(SimulatedCharger):
    """A simulated charger that reports every instant its limits may change."""

    probe: Callable[[str], None] | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Describe the charger (see `SimulatedCharger`)."""
        super().__init__(*args, **kwargs)
        self.leaving: set[int] = set()
        # Behaving again, but not yet reached: until the controller's next profile is
        # answered (or the step settles), it still holds what it held while unreachable.
        self.healing = False

    def _probed(self, what: str) -> None:
        if self.probe is not None:
            self.probe(f"{self.charger_id}: {what}")

    def heal(self) -> None:
        """Answer promptly and accept profiles again (no longer slow, silent, refusing).

        No controller can know before it writes again: until a profile is answered (or
        the step settles, see `SafetyRig.settled`) the charger still counts as
        unreachable.
        """
        self.healing = self.unreachable
        self.profile_delay_s = 0.0
        self.ignore_actions.clear()
        self.refuse_next(0)

    def call_handled(self, action: str, payload: dict[str, Any]) -> None:
        """Apply the request as the simulator does, then sample."""
        if action == "SetChargingProfile":
            self.healing = False  # reached: from now on what it holds is ours
        super().call_handled(action, payload)
        if action in (
            "SetChargingProfile",
            "ClearChargingProfile",
            "UpdateDynamicSchedule",
        ):
            detail = ""
            if action == "SetChargingProfile" and self.received_profiles:
                received = self.received_profiles[-1]
                detail = (
                    f" {received.purpose} #{received.profile_id} on "
                    f"{received.connector_id} = {received.limit} {received.rate_unit}"
                    f" -> {self.profile_answers.get(received.sequence)}"
                )
            self._probed(f"answered {action}{detail}")

    def call_result_received(self, unique_id: str, payload: Any) -> None:
        """Learn a 1.6 transaction id, then sample."""
        super().call_result_received(unique_id, payload)
        self._probed("learned a transaction id")

    async def plug_in(
        self, connector_id: int = 1, *, id_tag: str = "SIMTAG"
    ) -> str | None:
        """Plug a car in (the session starts at once), then sample."""
        result = await super().plug_in(connector_id, id_tag=id_tag)
        self._probed(f"car plugged in on {connector_id}")
        return result

    async def unplug(
        self, connector_id: int = 1, *, reason: str = "EVDisconnected"
    ) -> None:
        """Unplug a car, then sample.

        The simulator ends its session once the StopTransaction (TransactionEvent
        Ended) was answered; a real charger stops delivering before it sends it, so from
        the moment the car leaves the connector counts as idle (`leaving`).
        """
        self.leaving.add(connector_id)
        try:
            await super().unplug(connector_id, reason=reason)
        finally:
            self.leaving.discard(connector_id)
        self._probed(f"car unplugged from {connector_id}")

    def running(self, connector_id: int) -> bool:
        """Return whether a session runs on a connector (not one that is ending)."""
        return (
            self.connectors[connector_id].in_transaction
            and connector_id not in self.leaving
        )

    def refuse_next(self, count: int = 1) -> None:
        """Reject the next `count` SetChargingProfile requests."""
        self.reject_first = self._set_profile_count + count

    @property
    def unreachable(self) -> bool:
        """Return whether no limit can reach this charger now.

        Offline, not answering SetChargingProfile, or still refusing: what it holds
        stays reserved (DESIGN §2: an offline or silent charger keeps its last limit).
        """
        return (
            self.healing
            or not self.connected
            or "SetChargingProfile" in self.ignore_actions
            or self._set_profile_count < self.reject_first
        )


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    """One charger of a rig: its simulator options and how the site treats it."""

    charger_id: str
    panel_id: str
    version: str = "1.6"
    phases: int = 3
    grid_phase: str | None = None
    connectors: int = 1
    strict: bool = False
    amps_only: bool = False
    managed: bool = True
    min_current_a: float = 6.0
    max_current_a: float = 32.0
    allow_discharge: bool = False
    min_soc_pct: float = 20.0
    phase_switching: str = "auto"
    phase_policy: PhasePolicy = PhasePolicy.AUTO
    sim_options: Mapping[str, Any] = field(default_factory=dict)

    def config(self) -> ChargerConfig:
        """Return the site's configuration of this charger."""
        return ChargerConfig(
            self.charger_id,
            self.panel_id,
            managed=self.managed,
            phases=self.phases,
            grid_phase=Phase(self.grid_phase) if self.grid_phase else None,
            min_current_a=self.min_current_a,
            max_current_a=self.max_current_a,
            allow_discharge=self.allow_discharge,
            min_soc_pct=self.min_soc_pct,
            phase_switching=self.phase_switching,
            phase_policy=self.phase_policy,
        )


@dataclass(frozen=True, slots=True)
class Violation:
    """One instant at which a panel held more than its budget."""

    when: str
    panel_id: str
    budget_kw: float
    held_kw: float
    budget_a: float | None
    held_a: tuple[float, float, float]
    connectors: Mapping[str, float]

    def __str__(self) -> str:
        """Describe the violation for an assertion message."""
        phases = (
            f", per phase {tuple(round(a, 2) for a in self.held_a)} A of "
            f"{self.budget_a:.2f} A"
            if self.budget_a is not None
            else ""
        )
        return (
            f"[{self.when}] panel {self.panel_id}: {self.held_kw:.3f} kW held of "
            f"{self.budget_kw:.3f} kW{phases}; connectors {dict(self.connectors)}"
        )


class SafetyRig:
    """A server, a controller over a tree of panels, and probed simulated chargers."""

    def __init__(
        self,
        panels: Iterable[Panel],
        *,
        call_timeout_s: float = 1.0,
        failsafe_current_a: float | None = None,
        clock: datetime | None = None,
        **controller_options: Any,
    ) -> None:
        """Prepare everything; `start()` listens."""
        self.now = clock
        self.plans: dict[
            str, tuple[float | None, tuple[tuple[datetime, float], ...]]
        ] = {}
        if clock is not None:
            controller_options["clock"] = self.clock
        self.site = Site(panels=list(panels), voltage_v=VOLTS)
        self.specs: dict[str, ChargerSpec] = {}
        self.chargers: dict[str, ProbedCharger] = {}
        self.armed: set[str] = set()  # chargers whose boot defaults are acknowledged
        self.events: list[ChargerEvent] = []
        self.reports: list[ControlReport] = []
        self.violations: list[Violation] = []
        self.export_violations: list[str] = []
        self.max_export_kw = 0.0  # the most the site ever gave to the grid
        self.strong_violations: list[Violation] = []
        self.samples = 0
        self.infeasible = 0  # samples excused: unreachable chargers alone over budget
        self.probe_errors: list[str] = []
        self.history: deque[str] = deque(maxlen=40)
        # While a panel limit is lowered, the old (higher) budget holds until settled.
        self.transition_sites: list[Site] = []
        self._event_seen = asyncio.Event()
        self.server = CentralSystem(
            ServerConfig(
                host="127.0.0.1",
                port=0,
                call_timeout_s=call_timeout_s,
            ),
            self._event,
        )
        self.controller = SiteController(
            self.server,
            self.site,
            {},
            on_report=self.reports.append,
            boot_default_a=failsafe_current_a or 0.0,
            **controller_options,
        )
        self.controller_alive = True

    # -------------------------------------------------------------- lifecycle

    def _event(self, event: ChargerEvent) -> None:
        self.events.append(event)
        self._event_seen.set()
        if self.controller_alive:
            self.controller.handle_event(event)

    async def wait_event(
        self,
        kind: type[Any],
        predicate: Callable[[Any], bool] = lambda _: True,
        timeout: float = 5.0,
    ) -> Any:
        """Return the first server event of `kind` matching `predicate`."""
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if isinstance(event, kind) and predicate(event):
                        return event
                self._event_seen.clear()
                await self._event_seen.wait()

    async def start(self) -> None:
        """Listen on an ephemeral loopback port."""
        await self.server.start()

    @property
    def url(self) -> str:
        """Return the server's URL."""
        return f"ws://127.0.0.1:{self.server.port}"

    def clock(self) -> datetime:
        """Return the rig's time (the wall clock without `clock=`)."""
        return self.now if self.now is not None else datetime.now().astimezone()

    def configs(self) -> dict[str, ChargerConfig]:
        """Return the site's charger configurations (with their plans)."""
        configs = {cid: spec.config() for cid, spec in self.specs.items()}
        for cid, (cap, schedule) in self.plans.items():
            if cid in configs:
                configs[cid] = replace(
                    configs[cid], plan_cap_a=cap, plan_schedule=schedule
                )
        return configs

    def set_plan(
        self, charger_id: str, schedule: tuple[tuple[datetime, float], ...]
    ) -> None:
        """Give a charger a plan (empty: none); its cap of now follows the plan."""
        if not schedule:
            self.plans.pop(charger_id, None)
        else:
            now = self.clock()
            cap = next(
                (a for start, a in reversed(schedule) if start <= now), schedule[0][1]
            )
            self.plans[charger_id] = (cap, schedule)
        self.controller.update_site(self.site, self.configs())

    def boundaries(self, until: datetime) -> list[datetime]:
        """Return every instant after now and up to `until` a held schedule changes."""
        now = self.clock()
        found: set[datetime] = set()
        for charger in self.chargers.values():
            for profile in charger.profiles:
                origin = profile.start_schedule or profile.installed_at
                for period in profile.periods:
                    moment = origin + timedelta(seconds=period.start_s)
                    if now < moment <= until:
                        found.add(moment)
        return sorted(found)

    async def advance(self, until: datetime) -> None:
        """Move the shared clock to `until`, sampling at every schedule boundary."""
        assert self.now is not None, "advance() needs a rig made with clock="
        for moment in [*self.boundaries(until), until]:
            self.now = moment
            self.sample(f"clock {moment.isoformat()}")

    async def add(self, spec: ChargerSpec, *, settle: bool = True) -> ProbedCharger:
        """Configure a charger, start its simulator, wait for its boot defaults."""
        self.specs[spec.charger_id] = spec
        self.controller.update_site(self.site, self.configs())
        charger = ProbedCharger(
            spec.charger_id,
            self.url,
            version=spec.version,
            phases=spec.phases,
            grid_phase=spec.grid_phase,
            connectors=spec.connectors,
            strict=spec.strict,
            amps_only=spec.amps_only,
            hardware_max_a=spec.max_current_a,
            **({"clock": self.clock} if self.now is not None else {}),
            **spec.sim_options,
        )
        charger.probe = self.sample
        self.chargers[spec.charger_id] = charger
        await charger.start()
        if settle:
            await self.settle()
            self.armed.add(spec.charger_id)
        return charger

    def update_site(self, site: Site) -> None:
        """Change the panels (the budget in force is the higher one until settled)."""
        self.transition_sites.append(self.site)
        self.site = site
        self.controller.update_site(site, self.configs())

    async def vanish(self, charger: SimulatedCharger) -> None:
        """Drop a charger's connection and wait until the server saw it go."""
        seen = len(self.of(ChargerDisconnected, charger.charger_id))
        await charger.disconnect()
        await self.wait_event(
            ChargerDisconnected,
            lambda _: len(self.of(ChargerDisconnected, charger.charger_id)) > seen,
        )

    def of(self, kind: type[Any], charger_id: str | None = None) -> list[Any]:
        """Return the server events of `kind` (of one charger)."""
        return [
            event
            for event in self.events
            if isinstance(event, kind)
            and (charger_id is None or event.charger_id == charger_id)
        ]

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until the controller has nothing left to do (rebalance and checks)."""
        async with asyncio.timeout(timeout):
            while True:
                await self.controller.rebalance()
                pending = [
                    task
                    for task in self.controller._tasks
                    if not task.done() and task is not asyncio.current_task()
                ]
                if not pending:
                    break
                await asyncio.wait(pending)
        self.transition_sites.clear()

    async def close(self) -> None:
        """Stop the chargers, the controller and the server."""
        for charger in self.chargers.values():
            charger.probe = None
            await charger.stop()
        await self.controller.stop()
        await self.server.stop()

    # -------------------------------------------------------------- the promise

    def connector_amps(
        self, charger: ProbedCharger, *, strong: bool
    ) -> Iterable[tuple[int, tuple[float, float, float]]]:
        """Yield (connector id, A held on L1, L2, L3) of a managed charger.

        A limit loads the phases it is drawn on: all of a three-phase charger's, or,
        when a switching charger is asked for one phase, its grid phase only.
        """
        for cid in charger.connectors:
            idle = loads(charger, charger.limit(cid, idle=True))
            if charger.running(cid):
                running = loads(charger, charger.limit(cid))
                yield (
                    cid,
                    tuple(max(a, b) for a, b in zip(running, idle, strict=True))  # type: ignore[misc]
                    if strong
                    else running,
                )
            else:
                yield cid, idle

    def held(
        self, panel_id: str, *, strong: bool = False, unreachable_only: bool = False
    ) -> tuple[float, tuple[float, float, float], dict[str, float]]:
        """Return (kW, A per phase, per-connector A) held under a panel.

        `unreachable_only`: count only the managed chargers no limit can reach now.
        """
        site = self.site
        index = site.index[panel_id]
        below = {
            site.panels[i].id
            for i, ancestors in enumerate(site.ancestors)
            if index in ancestors
        }
        kw = 0.0
        phase_a = [0.0, 0.0, 0.0]
        detail: dict[str, float] = {}
        for charger_id, spec in self.specs.items():
            if spec.panel_id not in below:
                continue
            charger = self.chargers.get(charger_id)
            if charger is None or (
                unreachable_only and not (spec.managed and charger.unreachable)
            ):
                continue
            if spec.managed:
                by_connector = list(self.connector_amps(charger, strong=strong))
            else:
                by_connector = [
                    (cid, spread(charger, charger.current_a(cid), spec.phases))
                    for cid in charger.connectors
                ]
            for cid, amps in by_connector:
                detail[f"{charger_id}#{cid}"] = round(max(amps), 2)
                kw += sum(amps) * VOLTS / 1000.0
                for k in range(3):
                    phase_a[k] += amps[k]
        return kw, (phase_a[0], phase_a[1], phase_a[2]), detail

    def _budget(self, panel_id: str) -> tuple[float, float | None]:
        """Return the panel's budget (kW, A per phase), the highest of a transition."""
        best_kw = 0.0
        best_a: float | None = None
        for site in (*self.transition_sites, self.site):
            index = site.index.get(panel_id)
            if index is None:
                continue
            panel = site.panels[index]
            factor = 1.0 - panel.safety_margin_pct / 100.0
            best_kw = max(best_kw, panel.limit_kw * factor)
            if panel.phase_limit_a is not None:
                amps = panel.phase_limit_a * factor
                best_a = amps if best_a is None else max(best_a, amps)
        return best_kw, best_a

    def check(self, when: str, *, strong: bool = False) -> list[Violation]:
        """Return the panels above their budget now (armed chargers only)."""
        if any(cid not in self.armed for cid in self.specs if self.specs[cid].managed):
            return []
        found: list[Violation] = []
        for panel in self.site.panels:
            budget_kw, budget_a = self._budget(panel.id)
            kw, phase_a, detail = self.held(panel.id, strong=strong)
            over_kw = kw > budget_kw + TOLERANCE_KW
            over_a = budget_a is not None and max(phase_a) > budget_a + TOLERANCE_A
            if (over_kw or over_a) and self._infeasible(panel.id, budget_kw, budget_a):
                self.infeasible += 1
                continue
            if over_kw or over_a:
                found.append(
                    Violation(when, panel.id, budget_kw, kw, budget_a, phase_a, detail)
                )
        return found

    def _infeasible(
        self, panel_id: str, budget_kw: float, budget_a: float | None
    ) -> bool:
        """Return whether the unreachable chargers alone hold more than the budget.

        Then no controller can keep the promise (a limit lowered to below what a silent
        charger holds): the instant is counted in `infeasible`, not as a violation.
        """
        kw, phase_a, _ = self.held(panel_id, unreachable_only=True)
        return kw > budget_kw + TOLERANCE_KW or (
            budget_a is not None and max(phase_a) > budget_a + TOLERANCE_A
        )

    def check_export(self, when: str) -> list[str]:
        """Return the panels whose reverse flow breaks a rule now (V2X)."""
        site = self.site
        found: list[str] = []
        for index, panel in enumerate(site.panels):
            below = {
                site.panels[i].id
                for i, ancestors in enumerate(site.ancestors)
                if index in ancestors
            }
            back_kw = (
                sum(
                    charger.discharge_w(cid)
                    for charger_id, charger in self.chargers.items()
                    if self.specs[charger_id].panel_id in below
                    for cid in charger.connectors
                )
                / 1000.0
            )
            load_kw = sum(site.panels[site.index[p]].unmanaged_load_kw for p in below)
            rating = panel.limit_kw * (1 - panel.safety_margin_pct / 100)
            if back_kw > rating + TOLERANCE_KW:
                found.append(f"[{when}] {panel.id}: {back_kw:.3f} kW back > {rating}")
            export = panel.export_limit_kw
            if export is None and site.parents[index] == -1:
                export = 0.0
            if site.parents[index] == -1:
                self.max_export_kw = max(self.max_export_kw, back_kw - load_kw)
            if export is not None and back_kw - load_kw > export + TOLERANCE_KW:
                found.append(
                    f"[{when}] {panel.id}: exports {back_kw - load_kw:.3f} kW > {export}"
                )
        return found

    def describe(self) -> str:
        """Return what each connector holds now (A; * running) and each panel's kW."""
        parts = []
        for charger_id, charger in self.chargers.items():
            for cid in charger.connectors:
                mark = "*" if charger.running(cid) else ""
                now = (
                    charger.limit_in_force(cid)
                    if charger.running(cid)
                    else charger.start_limit(cid)
                )
                parts.append(f"{charger_id}#{cid}{mark}={now:g}")
        panels = [f"{p.id}:{self.held(p.id)[0]:.2f}kW" for p in self.site.panels]
        return " ".join(parts) + " || " + " ".join(panels)

    def settled(self) -> None:
        """End every charger's healing: once the controller settled, it must hold."""
        for charger in self.chargers.values():
            charger.healing = False

    def sample(self, when: str) -> None:
        """Check both invariants now and record what breaks (never raises)."""
        self.samples += 1
        stamp = f"{time.monotonic():.3f} {when}"
        try:
            self.history.append(f"{stamp} | {self.describe()}")
            self.violations.extend(self.check(stamp))
            self.export_violations.extend(self.check_export(stamp))
            self.strong_violations.extend(self.check(stamp, strong=True))
        except Exception as err:  # a probe must never break the simulator
            _LOGGER.exception("Invariant probe failed at %s", when)
            self.probe_errors.append(f"{stamp}: {err!r}")


__all__ = [
    "ChargerSpec",
    "ProbedCharger",
    "SafetyRig",
    "Violation",
]
