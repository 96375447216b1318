"""Inputs and outputs of the charging planner (`planner.py`), and the period merging.

Everything here is plain data: goals, forecast slots, per-slot session plans, panel loads,
and the multi-period charging schedule a session's plan becomes (`SessionPlan.periods`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
import math

from custom_components.smart_charge.units import RateUnit

from .errors import EngineConfigError
from .model import Session, SessionKey


class PlanMode(StrEnum):
    """How a session wants its energy."""

    AS_FAST_AS_POSSIBLE = "as_fast_as_possible"
    BY_DEPARTURE_CHEAPEST = "by_departure_cheapest"
    BY_DEPARTURE_SOLAR_FIRST = "by_departure_solar_first"
    SOLAR_ONLY = "solar_only"


class PlanReason(StrEnum):
    """Why a session charges (or not) in a slot."""

    IDLE = "idle"
    AS_FAST_AS_POSSIBLE = "as_fast_as_possible"
    CHEAPEST = "cheapest"
    SOLAR = "solar"
    DEPARTURE = "needed_for_departure"


class ShortfallReason(StrEnum):
    """Why a goal is not met by its departure."""

    NONE = "none"
    NO_ROOM = "no_room"
    """Breakers, the car's maximum, its minimum and the time left do not allow more."""
    SOLAR_ONLY = "solar_only"
    """The forecast solar surplus is not enough (the mode allows nothing else)."""


def _check(name: str, value: float | None, *, minimum: float = 0.0) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EngineConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value < minimum:
        raise EngineConfigError(f"{name} must be a finite number ≥ {minimum}")


def _check_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise EngineConfigError(f"{name} must be an aware datetime")


@dataclass(frozen=True, kw_only=True, slots=True)
class ChargingGoal:
    """What a session should get: energy (kWh) or a state of charge, by a departure.

    `energy_kwh` wins when given; else `(target_soc_pct - current_soc_pct) / 100 *
    battery_kwh`. With neither, the need is unlimited (only for *as fast as possible* and
    *solar only*: charge whatever fits). Without a departure, the horizon's end is used.
    """

    mode: PlanMode = PlanMode.BY_DEPARTURE_CHEAPEST
    energy_kwh: float | None = None
    target_soc_pct: float | None = None
    current_soc_pct: float | None = None
    battery_kwh: float | None = None
    departure: datetime | None = None

    def __post_init__(self) -> None:
        """Validate the numbers and the mode."""
        try:
            object.__setattr__(self, "mode", PlanMode(self.mode))
        except ValueError as err:
            raise EngineConfigError(f"unknown plan mode {self.mode!r}") from err
        _check("energy_kwh", self.energy_kwh)
        _check("battery_kwh", self.battery_kwh)
        for name in ("target_soc_pct", "current_soc_pct"):
            value = getattr(self, name)
            _check(name, value)
            if value is not None and value > 100:
                raise EngineConfigError(f"{name} must be at most 100")
        _check_aware("departure", self.departure)
        if (
            self.energy_kwh is None
            and self.target_soc_pct is not None
            and (self.battery_kwh is None or self.current_soc_pct is None)
        ):
            raise EngineConfigError(
                "a target state of charge needs battery_kwh and current_soc_pct"
            )
        if self.needed_kwh() == math.inf and self.mode in (
            PlanMode.BY_DEPARTURE_CHEAPEST,
            PlanMode.BY_DEPARTURE_SOLAR_FIRST,
        ):
            raise EngineConfigError(f"mode {self.mode} needs an energy or SoC goal")

    def needed_kwh(self) -> float:
        """Return the energy to add (kWh); inf when no goal is set."""
        if self.energy_kwh is not None:
            return float(self.energy_kwh)
        if (
            self.target_soc_pct is not None
            and self.current_soc_pct is not None
            and self.battery_kwh is not None
        ):
            gap = max(0.0, self.target_soc_pct - self.current_soc_pct)
            return gap / 100.0 * self.battery_kwh
        return math.inf


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanRequest:
    """One session to plan: its limits (from `Session`) and its goal.

    The current range is the session's `min_kw`/`ceiling_kw` converted to amperes per
    phase, unless `min_current_a` / `max_current_a` are given (e.g. from the charger's
    configuration or OCPP 2.x `evMaxCurrent`).
    """

    session: Session
    goal: ChargingGoal
    min_current_a: float | None = None
    max_current_a: float | None = None

    def __post_init__(self) -> None:
        """Validate the current range."""
        _check("min_current_a", self.min_current_a)
        _check("max_current_a", self.max_current_a)


@dataclass(frozen=True, kw_only=True, slots=True)
class PlanSlot:
    """One slot of the forecast, starting at `start` (the planner knows its length).

    `price` per kWh from the grid; `load_kw` the household load forecast per panel id (kW
    attached at that panel, counted against it and every panel above; a panel without a
    forecast keeps its `unmanaged_load_kw`); `solar_kw` the site's forecast solar surplus
    (kW the cars may take at the feed-in price); `multiplier` the time-of-use factor, for
    every panel or per panel id (default: from the panels' own time-of-use windows). A
    multiplier never lifts a budget above its breaker: it is capped at 1.
    """

    start: datetime
    price: float = 0.0
    load_kw: Mapping[str, float] = field(default_factory=dict)
    solar_kw: float = 0.0
    multiplier: float | Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        """Validate the slot."""
        _check_aware("start", self.start)
        if not math.isfinite(self.price):
            raise EngineConfigError("price must be finite")
        _check("solar_kw", self.solar_kw)
        for panel_id, value in self.load_kw.items():
            _check(f"load_kw[{panel_id}]", value)
        if isinstance(self.multiplier, Mapping):
            for panel_id, value in self.multiplier.items():
                _check(f"multiplier[{panel_id}]", value)
        else:
            _check("multiplier", self.multiplier)


@dataclass(frozen=True, kw_only=True, slots=True)
class SlotPlan:
    """A session's plan for one slot: current per loaded phase (0 or within its range)."""

    start: datetime
    end: datetime
    amps_per_phase: float
    power_kw: float
    energy_kwh: float
    reason: PlanReason


@dataclass(frozen=True, kw_only=True, slots=True)
class ChargingPeriod:
    """One period of a charging schedule: absolute start and end, current per phase."""

    start: datetime
    end: datetime
    amps_per_phase: float
    power_kw: float


@dataclass(frozen=True, kw_only=True, slots=True)
class SessionPlan:
    """The plan of one session over the horizon (one `SlotPlan` per horizon slot).

    `energy_kwh` is what the plan delivers by the departure, `shortfall_kwh` what is
    missing from the goal (0 when met; inf-goals are never short), `cost` its share of the
    site's cost (each slot's cost split in proportion to power), `finish` the end of its
    last charging slot.
    """

    transaction_id: SessionKey
    mode: PlanMode
    departure: datetime
    phases: int
    voltage_v: float
    needed_kwh: float
    energy_kwh: float
    goal_met: bool
    shortfall_kwh: float
    shortfall_reason: ShortfallReason
    cost: float
    finish: datetime | None
    slots: tuple[SlotPlan, ...]

    def next_start(self) -> datetime | None:
        """Return the start of the first slot in which the session charges."""
        return next((s.start for s in self.slots if s.amps_per_phase > 0), None)

    def periods(self, max_periods: int | None = None) -> tuple[ChargingPeriod, ...]:
        """Return the plan as a charging schedule up to the departure.

        Consecutive slots with equal current are one period; pauses are periods of 0 A.
        With `max_periods` (the charger's ChargingScheduleMaxPeriods), neighbouring periods
        are merged until they fit: each step merges the neighbouring pair whose merge loses
        the least energy (ties: the earliest pair), and the merged period takes the *lower*
        of the two currents. A merge therefore never raises a current above the plan, so
        every breaker still holds; it may deliver less than planned (a replan repairs it).
        """
        if max_periods is not None and max_periods < 1:
            raise EngineConfigError("max_periods must be at least 1")
        starts_t: list[datetime] = []
        ends_t: list[datetime] = []
        amps: list[float] = []
        for slot in self.slots:
            if slot.end <= slot.start:
                continue
            if amps and ends_t[-1] == slot.start and amps[-1] == slot.amps_per_phase:
                ends_t[-1] = slot.end
            else:
                starts_t.append(slot.start)
                ends_t.append(slot.end)
                amps.append(slot.amps_per_phase)
        if max_periods is not None:
            _merge_down(starts_t, ends_t, amps, max_periods)
        kw_per_a = self.phases * self.voltage_v / 1000.0
        return tuple(
            ChargingPeriod(start=s, end=e, amps_per_phase=a, power_kw=a * kw_per_a)
            for s, e, a in zip(starts_t, ends_t, amps, strict=True)
        )

    def schedule(
        self, max_periods: int | None = None, *, rate_unit: RateUnit = RateUnit.AMPS
    ) -> tuple[datetime | None, list[tuple[int, float]]]:
        """Return `(startSchedule, [(startPeriod seconds, limit)])` for the profile builders.

        The periods of `periods(max_periods)` as offsets from the first one's absolute
        start, limits in A per phase or, with `rate_unit="W"`, whole watts (rounded down);
        the schedule ends with the departure (0 A from then on, where the charger's lower
        profiles take over). `(None, [])` when the session has no time left.
        """
        if rate_unit not in tuple(RateUnit):
            raise EngineConfigError(f"rate unit must be 'A' or 'W', got {rate_unit!r}")
        periods = self.periods(max_periods)
        if not periods:
            return None, []
        start = periods[0].start
        out: list[tuple[int, float]] = []
        for period in periods:
            offset = int((period.start - start).total_seconds())
            limit = (
                period.amps_per_phase
                if rate_unit == RateUnit.AMPS
                else float(math.floor(period.power_kw * 1000.0 + 1e-6))
            )
            out.append((offset, limit))
        return start, out


def _merge_down(
    starts: list[datetime], ends: list[datetime], amps: list[float], limit: int
) -> None:
    """Merge neighbouring periods in place until at most `limit` remain (see periods)."""
    while len(amps) > limit:
        best = -1
        best_loss = math.inf
        for i in range(len(amps) - 1):
            high = i if amps[i] > amps[i + 1] else i + 1
            hours = (ends[high] - starts[high]).total_seconds() / 3600.0
            loss = abs(amps[i] - amps[i + 1]) * hours
            if loss < best_loss:
                best, best_loss = i, loss
        if best < 0:  # a single period cannot be over the limit of at least 1
            return  # pragma: no cover
        amps[best] = min(amps[best], amps[best + 1])
        ends[best] = ends[best + 1]
        del starts[best + 1], ends[best + 1], amps[best + 1]
        # Equal neighbours after the merge become one period too.
        for j in (best, best - 1):
            if 0 <= j < len(amps) - 1 and amps[j] == amps[j + 1]:
                ends[j] = ends[j + 1]
                del starts[j + 1], ends[j + 1], amps[j + 1]


@dataclass(frozen=True, kw_only=True, slots=True)
class PanelPlan:
    """The planned load of one panel per slot (cars only; budgets after margin, forecast)."""

    panel_id: str
    load_kw: tuple[float, ...]
    phase_a: tuple[tuple[float, float, float], ...]
    budget_kw: tuple[float, ...]
    phase_budget_a: tuple[tuple[float, float, float] | None, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class ChargingPlan:
    """The plan of a whole site: per session, per panel, and the slot boundaries."""

    starts: tuple[datetime, ...]
    ends: tuple[datetime, ...]
    sessions: dict[SessionKey, SessionPlan]
    panels: dict[str, PanelPlan]
    cost: float
