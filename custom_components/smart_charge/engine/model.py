"""Data model of the engine: sessions, panels, sites and allocation results."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
import math
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import EngineConfigError

type SessionKey = Hashable
"""The key of a session: its transaction id (str or int)."""

DEFAULT_VOLTAGE_V = 230.0
DEFAULT_MIN_CURRENT_A = 6.0
DEFAULT_SAFETY_MARGIN_PCT = 5.0


class Strategy(StrEnum):
    """How a panel shares its budget among the sessions below it."""

    EQUAL_SHARE = "equal_share"
    PRIORITY = "priority"
    TIME_OF_USE = "time_of_use"


class Phase(StrEnum):
    """The grid phase a single-phase charger is wired to."""

    L1 = "L1"
    L2 = "L2"
    L3 = "L3"

    @property
    def position(self) -> int:
        """Return 0, 1 or 2 for L1, L2, L3."""
        return int(self.value[1]) - 1


PHASES: tuple[Phase, Phase, Phase] = (Phase.L1, Phase.L2, Phase.L3)


class BudgetReason(StrEnum):
    """Why a panel's budget is what it is (the panel's budget-reason vocabulary).

    The budget sources of the Home Assistant layer give `LIMIT` (the rating), `LOAD`
    (other load subtracted), `SOLAR`, `TARIFF`, `TIME_OF_USE` and `OVERRIDE`; an
    allocation adds `PHASE` when one phase of the panel's current limit is used up
    while its kW budget is not (`PanelAllocation.full_phases` says which).
    """

    LIMIT = "limit"
    LOAD = "load"
    SOLAR = "solar"
    TARIFF = "tariff"
    TIME_OF_USE = "time_of_use"
    OVERRIDE = "override"
    PHASE = "phase"


class LimitReason(StrEnum):
    """What holds a session where it is: the constraint that froze it in the solve.

    `BREAKER` (a panel's kW budget, with `SessionLimit.panel_id`) and `PHASE` (one phase
    of a panel's current budget, with `panel_id` and `phase`) become `SOLAR`, `TARIFF`
    or `TIME_OF_USE` when that panel's kW budget comes from that source now.
    """

    CHARGER_MAXIMUM = "charger_maximum"
    EV_CAP = "ev_cap"
    USER_CAP = "user_cap"
    BREAKER = "breaker"
    PHASE = "phase"
    SOLAR = "solar"
    TARIFF = "tariff"
    TIME_OF_USE = "time_of_use"
    PAUSED_PRIORITY = "paused_priority"
    PAUSED_NO_ROOM = "paused_no_room"
    NOT_MANAGED = "not_managed"
    OFFLINE = "offline"
    # A user cap that is a charging plan's current for this slot (`Session.cap_from_plan`).
    CHARGING_PLAN = "charging_plan"


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionLimit:
    """Why one session got what it got, with the panel (and phase) that bound it.

    `panel_id` is set for `BREAKER`, `PHASE`, `SOLAR`, `TARIFF`, `TIME_OF_USE` and for a
    session paused at admission (the panel whose budget had no room for its minimum);
    `phase` for `PHASE` (and a session paused on a phase). Other reasons carry neither.
    """

    reason: LimitReason
    panel_id: str | None = None
    phase: Phase | None = None

    def as_dict(self) -> dict[str, str | None]:
        """Return the limit as a JSON-ready dict."""
        return {
            "reason": str(self.reason),
            "panel_id": self.panel_id,
            "phase": None if self.phase is None else str(self.phase),
        }


def _check_number(name: str, value: float, *, minimum: float = 0.0) -> None:
    """Raise EngineConfigError unless value is a finite number ≥ minimum."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EngineConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise EngineConfigError(
            f"{name} must be a finite number ≥ {minimum}, got {value!r}"
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class TimeOfUseWindow:
    """A daily window of local hours [peak_start_hour, peak_end_hour) with a budget multiplier.

    The end hour is exclusive; a window whose end is before its start wraps past midnight
    (22 -> 6 covers 22:00-05:59). A multiplier above 1 is accepted but never lifts a
    budget above the breaker: `time_of_use_multiplier` caps it at 1.
    """

    peak_start_hour: int
    peak_end_hour: int
    peak_power_multiplier: float

    def __post_init__(self) -> None:
        """Validate the hours and the multiplier."""
        for name, hour in (
            ("peak_start_hour", self.peak_start_hour),
            ("peak_end_hour", self.peak_end_hour),
        ):
            if (
                isinstance(hour, bool)
                or not isinstance(hour, int)
                or not 0 <= hour <= 24
            ):
                raise EngineConfigError(
                    f"{name} must be an integer hour 0-24, got {hour!r}"
                )
        if self.peak_start_hour % 24 == self.peak_end_hour % 24:
            raise EngineConfigError(
                "a time-of-use window needs different start and end hours"
            )
        _check_number("peak_power_multiplier", self.peak_power_multiplier)

    def contains_hour(self, hour: int) -> bool:
        """Return whether the local hour (0-23) is inside the window."""
        start, end = self.peak_start_hour % 24, self.peak_end_hour % 24
        if start < end:
            return start <= hour < end
        return hour >= start or hour < end

    @classmethod
    def coerce(cls, value: TimeOfUseWindow | Mapping[str, Any]) -> TimeOfUseWindow:
        """Accept a window or a dict with the same keys."""
        if isinstance(value, TimeOfUseWindow):
            return value
        if not isinstance(value, Mapping):
            raise EngineConfigError(f"not a time-of-use window: {value!r}")
        try:
            return cls(
                peak_start_hour=value["peak_start_hour"],
                peak_end_hour=value["peak_end_hour"],
                peak_power_multiplier=value["peak_power_multiplier"],
            )
        except KeyError as err:
            raise EngineConfigError(f"time-of-use window misses {err}") from err

    def as_dict(self) -> dict[str, Any]:
        """Return the window as a JSON-ready dict."""
        return {
            "peak_start_hour": self.peak_start_hour,
            "peak_end_hour": self.peak_end_hour,
            "peak_power_multiplier": self.peak_power_multiplier,
        }


def coerce_windows(
    windows: Sequence[TimeOfUseWindow | Mapping[str, Any]] | None,
) -> tuple[TimeOfUseWindow, ...]:
    """Return a tuple of windows from windows or dicts."""
    if windows is None:
        return ()
    return tuple(TimeOfUseWindow.coerce(window) for window in windows)


def get_zone(name: str) -> ZoneInfo:
    """Return the ZoneInfo for a time-zone name or raise EngineConfigError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise EngineConfigError(f"unknown time zone {name!r}") from err


def time_of_use_multiplier(
    windows: Sequence[TimeOfUseWindow], now: datetime, zone: ZoneInfo
) -> float:
    """Return the budget multiplier at now: the smallest of the matching windows, else 1.

    The multiplier is capped at 1: a window can only lower a budget, never lift it above
    the breaker (a window of 1.5 is accepted and counts as 1). It scales a panel's kW
    budget and its per-phase current budget alike.
    """
    if not windows:
        return 1.0
    local = now.replace(tzinfo=zone) if now.tzinfo is None else now.astimezone(zone)
    factors = [w.peak_power_multiplier for w in windows if w.contains_hour(local.hour)]
    return min(1.0, *factors) if factors else 1.0


@dataclass(kw_only=True, slots=True)
class Session:
    """One charging transaction on one connector (or, for a master engine, one sub-panel).

    `transaction_id` is the key and must be unique per engine or per `allocate_site` call.
    The ceiling is min(hardware, EV acceptance, user cap); a missing cap (None, also
    `max_hardware_power_kw`) is no cap. The minimum defaults to 6 A at the session's voltage
    and phases. A session whose ceiling is below its minimum is paused.
    Sessions with `managed=False` are never allocated; their `measured_power_kw` counts against
    every panel above them. `offline=True` marks such a session as one whose charger does
    not answer (its reserve is `measured_power_kw`); it needs `managed=False`.

    `phases` is 1, 3, or 2 for North-American split phase: two legs of `voltage_v` (120 V)
    that carry the same current, loading L1 and L2 (40 A at 2 x 120 V is 9.6 kW).
    `priority` ≥ 0; a priority of 0 ranks last and, under PRIORITY, gets only what
    sessions with a priority leave (sessions that all have 0 share equally).
    `turn` is the rotation's turn order when minimums cannot all be met: within a
    priority class, among admissions that let equally many sessions charge, a lower
    turn is served first (then older first). `turn_due` marks a session whose turn
    has come after waiting a full rotation period: it is admitted before the class's
    count is maximised (so a car that only fits by pausing two others gets its turn
    too). The engine keeps no clock: the control layer sets both (0 and False for all
    keep oldest-first).
    `cap_from_plan` says that `user_cap_kw` is a charging plan's current for this slot:
    a session it holds reports `LimitReason.CHARGING_PLAN` rather than `USER_CAP`.
    """

    transaction_id: str | int
    client_id: str = ""
    connector_id: int = 1
    max_hardware_power_kw: float | None = None
    max_ev_acceptance_power_kw: float | None = None
    min_charge_rate_kw: float | None = None
    priority: float = 1
    phases: int = 3
    voltage_v: float = DEFAULT_VOLTAGE_V
    user_cap_kw: float | None = None
    cap_from_plan: bool = False
    grid_phase: Phase | None = None
    panel_id: str | None = None
    managed: bool = True
    measured_power_kw: float = 0.0
    started_at: datetime | None = None
    sequence: int = 0
    offline: bool = False
    turn: float = 0.0
    turn_due: bool = False

    def __post_init__(self) -> None:
        """Validate the fields."""
        if isinstance(self.transaction_id, bool) or not isinstance(
            self.transaction_id, str | int
        ):
            raise EngineConfigError(
                f"transaction_id must be str or int, got {self.transaction_id!r}"
            )
        if self.phases not in (1, 2, 3) or isinstance(self.phases, bool):
            raise EngineConfigError(f"phases must be 1, 2 or 3, got {self.phases!r}")
        _check_number("voltage_v", self.voltage_v, minimum=1.0)
        _check_number("measured_power_kw", self.measured_power_kw)
        for name in (
            "max_hardware_power_kw",
            "max_ev_acceptance_power_kw",
            "min_charge_rate_kw",
            "user_cap_kw",
        ):
            value = getattr(self, name)
            if value is not None:
                _check_number(name, value)
        _check_number("priority", self.priority)
        _check_number("turn", self.turn, minimum=-math.inf)
        if self.offline and self.managed:
            raise EngineConfigError(
                "an offline session is never allocated: it needs managed=False"
            )
        if self.grid_phase is not None:
            try:
                self.grid_phase = Phase(self.grid_phase)
            except ValueError as err:
                raise EngineConfigError(
                    f"unknown grid phase {self.grid_phase!r}"
                ) from err
        if not isinstance(self.connector_id, int) or self.connector_id < 0:
            raise EngineConfigError(
                f"connector_id must be an integer ≥ 0, got {self.connector_id!r}"
            )

    @property
    def min_kw(self) -> float:
        """Return the minimum charging power (kW) while not paused."""
        if self.min_charge_rate_kw is not None:
            return self.min_charge_rate_kw
        return DEFAULT_MIN_CURRENT_A * self.voltage_v * self.phases / 1000.0

    @property
    def ceiling_kw(self) -> float:
        """Return min(hardware, EV acceptance, user cap) in kW (inf when none is set)."""
        ceiling = (
            math.inf
            if self.max_hardware_power_kw is None
            else self.max_hardware_power_kw
        )
        if self.max_ev_acceptance_power_kw is not None:
            ceiling = min(ceiling, self.max_ev_acceptance_power_kw)
        if self.user_cap_kw is not None:
            ceiling = min(ceiling, self.user_cap_kw)
        return ceiling

    @property
    def ceiling_reason(self) -> LimitReason:
        """Return which cap sets the ceiling: charger maximum, car (EV) or user cap."""
        ceiling = self.ceiling_kw
        if self.max_hardware_power_kw is not None and (
            self.max_hardware_power_kw <= ceiling
        ):
            return LimitReason.CHARGER_MAXIMUM
        if self.max_ev_acceptance_power_kw is not None and (
            self.max_ev_acceptance_power_kw <= ceiling
        ):
            return LimitReason.EV_CAP
        if self.user_cap_kw is not None:
            return (
                LimitReason.CHARGING_PLAN
                if self.cap_from_plan
                else LimitReason.USER_CAP
            )
        return LimitReason.CHARGER_MAXIMUM

    @property
    def phase_index(self) -> int:
        """Return the grid phase index (0-2) a single-phase session loads; 0 otherwise."""
        return self.grid_phase.position if self.grid_phase is not None else 0

    def amps_per_kw(self) -> float:
        """Return the current per loaded phase (A) for each kW."""
        return 1000.0 / (self.phases * self.voltage_v)

    def phase_currents(self, power_kw: float) -> tuple[float, float, float]:
        """Return the current on L1, L2, L3 (A) when this session draws power_kw."""
        amps = power_kw * self.amps_per_kw()
        if self.phases == 3:
            return (amps, amps, amps)
        if self.phases == 2:
            return (amps, amps, 0.0)  # split phase: both legs, L1 and L2
        currents = [0.0, 0.0, 0.0]
        currents[self.phase_index] = amps
        return (currents[0], currents[1], currents[2])

    def as_dict(self) -> dict[str, Any]:
        """Return the session as a JSON-ready dict (for snapshots)."""
        return {
            "transaction_id": self.transaction_id,
            "client_id": self.client_id,
            "connector_id": self.connector_id,
            "max_hardware_power_kw": self.max_hardware_power_kw,
            "max_ev_acceptance_power_kw": self.max_ev_acceptance_power_kw,
            "min_charge_rate_kw": self.min_charge_rate_kw,
            "priority": self.priority,
            "phases": self.phases,
            "voltage_v": self.voltage_v,
            "user_cap_kw": self.user_cap_kw,
            "cap_from_plan": self.cap_from_plan,
            "grid_phase": None if self.grid_phase is None else str(self.grid_phase),
            "panel_id": self.panel_id,
            "managed": self.managed,
            "measured_power_kw": self.measured_power_kw,
            "started_at": None
            if self.started_at is None
            else self.started_at.isoformat(),
            "sequence": self.sequence,
            "offline": self.offline,
            "turn": self.turn,
            "turn_due": self.turn_due,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        """Build a session from `as_dict` output."""
        values = dict(data)
        started = values.get("started_at")
        if isinstance(started, str):
            values["started_at"] = datetime.fromisoformat(started)
        try:
            return cls(**values)
        except TypeError as err:
            raise EngineConfigError(f"invalid session data: {err}") from err


@dataclass(frozen=True, kw_only=True, slots=True)
class Panel:
    """A breaker: a kW limit, optionally a per-phase current limit, and its place in the tree.

    `unmanaged_load_kw` is load attached at this panel (house, heat pump); it counts against
    this panel and every panel above it. Without `unmanaged_phase_a`, it is assumed balanced
    over the three phases. A limit of 0 kW is valid: everything below is paused.
    `budget_reason` says where `limit_kw` comes from (the HA layer's budget sources): a
    session bound by this panel's kW budget reports `LimitReason.SOLAR` or `TARIFF` when
    it is that, `TIME_OF_USE` when a window lowers the budget now, else `BREAKER`.
    """

    id: str
    limit_kw: float
    phase_limit_a: float | None = None
    safety_margin_pct: float = DEFAULT_SAFETY_MARGIN_PCT
    strategy: Strategy = Strategy.EQUAL_SHARE
    unmanaged_load_kw: float = 0.0
    unmanaged_phase_a: tuple[float, float, float] | None = None
    parent_id: str | None = None
    time_of_use_windows: tuple[TimeOfUseWindow, ...] = ()
    budget_reason: BudgetReason = BudgetReason.LIMIT
    # V2X: how much may flow back out through this breaker beyond the load it feeds
    # (kW). The root's None means 0 (no export to the grid); a sub-panel's None leaves
    # only its rating. Used by `engine.discharge`, never by the charging solve.
    export_limit_kw: float | None = None

    def __post_init__(self) -> None:
        """Validate the fields."""
        if self.export_limit_kw is not None:
            _check_number("export_limit_kw", self.export_limit_kw)
        if not isinstance(self.id, str) or not self.id:
            raise EngineConfigError(
                f"panel id must be a non-empty string, got {self.id!r}"
            )
        _check_number("limit_kw", self.limit_kw)
        if self.phase_limit_a is not None:
            _check_number("phase_limit_a", self.phase_limit_a)
        _check_number("safety_margin_pct", self.safety_margin_pct)
        if self.safety_margin_pct >= 100:
            raise EngineConfigError("safety_margin_pct must be below 100")
        _check_number("unmanaged_load_kw", self.unmanaged_load_kw)
        if self.unmanaged_phase_a is not None:
            if len(self.unmanaged_phase_a) != 3:
                raise EngineConfigError("unmanaged_phase_a needs three values")
            for value in self.unmanaged_phase_a:
                _check_number("unmanaged_phase_a", value)
            object.__setattr__(self, "unmanaged_phase_a", tuple(self.unmanaged_phase_a))
        try:
            object.__setattr__(self, "strategy", Strategy(self.strategy))
        except ValueError as err:
            raise EngineConfigError(f"unknown strategy {self.strategy!r}") from err
        object.__setattr__(
            self, "time_of_use_windows", coerce_windows(self.time_of_use_windows)
        )
        try:
            object.__setattr__(self, "budget_reason", BudgetReason(self.budget_reason))
        except ValueError as err:
            raise EngineConfigError(
                f"unknown budget reason {self.budget_reason!r}"
            ) from err


@dataclass(frozen=True, kw_only=True, slots=True)
class Site:
    """A tree of panels with exactly one root (parent_id None).

    Derived on creation, by position in `panels`: `order` (breadth first from the root),
    `parents` (-1 for the root), `children`, and `ancestors` (the panel itself, then its
    parent, up to the root).
    """

    panels: Sequence[Panel]
    voltage_v: float = DEFAULT_VOLTAGE_V
    time_zone: str = "UTC"
    order: tuple[int, ...] = field(init=False, repr=False, compare=False)
    parents: tuple[int, ...] = field(init=False, repr=False, compare=False)
    index: Mapping[str, int] = field(init=False, repr=False, compare=False)
    zone: ZoneInfo = field(init=False, repr=False, compare=False)
    children: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    ancestors: tuple[tuple[int, ...], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        """Validate the tree: one root, known parents, unique ids, no cycles."""
        panels = tuple(self.panels)
        object.__setattr__(self, "panels", panels)
        _check_number("voltage_v", self.voltage_v, minimum=1.0)
        object.__setattr__(self, "zone", get_zone(self.time_zone))
        index: dict[str, int] = {}
        for position, panel in enumerate(panels):
            if panel.id in index:
                raise EngineConfigError(f"duplicate panel id {panel.id!r}")
            index[panel.id] = position
        roots = [p for p in panels if p.parent_id is None]
        if len(roots) != 1:
            raise EngineConfigError(
                f"a site needs exactly one root panel, found {len(roots)}"
            )
        parents: list[int] = []
        children: list[list[int]] = [[] for _ in panels]
        for position, panel in enumerate(panels):
            if panel.parent_id is None:
                parents.append(-1)
                continue
            if panel.parent_id not in index:
                raise EngineConfigError(
                    f"panel {panel.id!r} has an unknown parent {panel.parent_id!r}"
                )
            parent = index[panel.parent_id]
            parents.append(parent)
            children[parent].append(position)
        order = [index[roots[0].id]]
        for position in order:
            order.extend(children[position])
        if len(order) != len(panels):
            raise EngineConfigError("the panels contain a cycle")
        ancestors: list[tuple[int, ...]] = [() for _ in panels]
        for position in order:
            parent = parents[position]
            ancestors[position] = (
                position,
                *(ancestors[parent] if parent >= 0 else ()),
            )
        object.__setattr__(self, "order", tuple(order))
        object.__setattr__(self, "parents", tuple(parents))
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "children", tuple(tuple(c) for c in children))
        object.__setattr__(self, "ancestors", tuple(ancestors))

    @property
    def root(self) -> Panel:
        """Return the root panel."""
        return self.panels[self.order[0]]


@dataclass(frozen=True, kw_only=True)
class SessionProfile:
    """The allocation of one managed session, rounded down as it is sent to the charger.

    `allocated_w` is the allocation rounded down to whole watts (what a charger is sent in
    watts mode) and `allocated_kw` is exactly `allocated_w / 1000`, so the kW figure never
    exceeds what is sent in watts. `allocated_amps_per_phase` is the same allocation
    rounded down to 0.1 A per loaded phase (what is sent in amps mode). That step is
    coarser, so the power it allows, `allocated_amps_per_phase * voltage * phases / 1000`,
    lies between one 0.1 A step below `allocated_kw` and 1 W above it (it can only be
    above when 0.1 A * voltage * phases is not a whole number of watts, or by float noise).
    """

    transaction_id: str | int
    client_id: str
    connector_id: int
    allocated_kw: float
    allocated_w: int
    allocated_amps_per_phase: float
    phases: int
    paused: bool

    @classmethod
    def _fast(cls, values: dict[str, Any]) -> SessionProfile:
        """Build a profile from all its fields without the frozen __init__ (hot path)."""
        profile = object.__new__(cls)
        profile.__dict__.update(values)
        return profile


@dataclass(frozen=True, kw_only=True, slots=True)
class PanelAllocation:
    """The load of one panel after an allocation.

    `allocated_kw` is the sum of the rounded `SessionProfile.allocated_kw` of every managed
    session at or below the panel (what is sent, not the unrounded solution), and
    `allocated_phase_a` the sum of their rounded `allocated_amps_per_phase` on each phase.
    `headroom_kw` is `budget_kw - unmanaged_kw - allocated_kw`; `budget_kw` is the limit
    after the safety margin and time of use. Sessions that are paused count 0.
    `full_kw` and `full_phases` say which of the panel's budgets the solve used up (its kW
    budget; the phases of its current budget), within float tolerance.
    """

    allocated_kw: float
    unmanaged_kw: float
    budget_kw: float
    headroom_kw: float
    allocated_phase_a: tuple[float, float, float]
    unmanaged_phase_a: tuple[float, float, float] = (0.0, 0.0, 0.0)
    phase_budget_a: float | None = None
    full_kw: bool = False
    full_phases: tuple[Phase, ...] = ()

    @property
    def budget_reason(self) -> BudgetReason | None:
        """Return `BudgetReason.PHASE` when a phase, not the kW budget, is used up."""
        if self.full_phases and not self.full_kw:
            return BudgetReason.PHASE
        return None

    @classmethod
    def _fast(
        cls,
        allocated_kw: float,
        unmanaged_kw: float,
        budget_kw: float,
        headroom_kw: float,
        allocated_phase_a: tuple[float, float, float],
        unmanaged_phase_a: tuple[float, float, float],
        phase_budget_a: float | None,
        full_kw: bool = False,
        full_phases: tuple[Phase, ...] = (),
    ) -> PanelAllocation:
        """Build an allocation from all its fields without the frozen __init__ (hot path)."""
        result = object.__new__(cls)
        slots = cls.__dict__
        slots["allocated_kw"].__set__(result, allocated_kw)
        slots["unmanaged_kw"].__set__(result, unmanaged_kw)
        slots["budget_kw"].__set__(result, budget_kw)
        slots["headroom_kw"].__set__(result, headroom_kw)
        slots["allocated_phase_a"].__set__(result, allocated_phase_a)
        slots["unmanaged_phase_a"].__set__(result, unmanaged_phase_a)
        slots["phase_budget_a"].__set__(result, phase_budget_a)
        slots["full_kw"].__set__(result, full_kw)
        slots["full_phases"].__set__(result, full_phases)
        return result


@dataclass(frozen=True, kw_only=True, slots=True)
class SiteAllocation:
    """The result of one solve of a whole site.

    `paused` lists the sessions paused because the minimums could not all be met (least
    important first is not guaranteed; the order is the order of the input).
    `limits` says, for every session given (managed or not), what bound it.
    """

    sessions: dict[SessionKey, SessionProfile]
    panels: dict[str, PanelAllocation]
    paused: tuple[SessionKey, ...]
    over_committed: bool
    limits: Mapping[SessionKey, SessionLimit] = field(default_factory=dict)
