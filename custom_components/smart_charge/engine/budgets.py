"""Budget sources for a panel: unmanaged load, solar surplus, tariffs, time-of-use text.

Pure functions and small state machines, no Home Assistant: the HA layer reads entity
states, passes plain numbers and mappings in, and gets a panel limit and a reason out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
import math
import re
from typing import Any

from .errors import EngineConfigError
from .model import (
    BudgetReason,
    Strategy,
    TimeOfUseWindow,
    get_zone,
    time_of_use_multiplier,
)

_POWER_UNITS = {"w": 0.001, "kw": 1.0, "mw": 1000.0}


def power_kw(value: float, unit: str | None, *, invert: bool = False) -> float:
    """Return a power reading in kW from a value in W, kW or MW (default W)."""
    factor = _POWER_UNITS.get((unit or "W").strip().lower())
    if factor is None:
        raise EngineConfigError(f"not a power unit: {unit!r}")
    kw = value * factor
    return -kw if invert else kw


@dataclass(frozen=True, kw_only=True)
class BudgetResult:
    """The limit in force for a panel and why, and the other load it carries."""

    limit_kw: float
    reason: str
    # True: sessions below keep their minimum instead of pausing when the budget is 0.
    hold_minimum: bool = False
    # The load the engine subtracts (not the cars), in kW and per phase in A.
    unmanaged_kw: float = 0.0
    unmanaged_phase_a: tuple[float, float, float] | None = None


def combine(rating_kw: float, candidates: Iterable[tuple[float, str]]) -> BudgetResult:
    """Return the smallest candidate limit (never below 0), or the rating with 'limit'."""
    result = BudgetResult(limit_kw=rating_kw, reason=BudgetReason.LIMIT)
    for limit, reason in candidates:
        if max(0.0, limit) < result.limit_kw:
            result = BudgetResult(limit_kw=max(0.0, limit), reason=reason)
    return result


class SolarHysteresis:
    """Charge from surplus only, with a start threshold and start/stop delays.

    `update(surplus_kw, now)` takes the surplus the cars may use (export plus what the cars
    already draw) and returns whether charging is on. Charging starts once the surplus has
    stayed at or above the threshold for `start_delay`, and stops once it has stayed below
    it for `stop_delay`; a passing cloud shorter than the delay changes nothing.
    """

    def __init__(
        self, threshold_kw: float, start_delay: timedelta, stop_delay: timedelta
    ) -> None:
        """Start in the stopped state."""
        if threshold_kw < 0:
            raise EngineConfigError("the solar start threshold cannot be negative")
        self.threshold_kw = threshold_kw
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self.charging = False
        self._since: datetime | None = None

    def update(self, surplus_kw: float, now: datetime) -> bool:
        """Feed one reading; return whether charging is on."""
        wants = surplus_kw >= self.threshold_kw
        if wants == self.charging:
            self._since = None
            return self.charging
        if self._since is None:
            self._since = now
        delay = self.start_delay if wants else self.stop_delay
        if now - self._since >= delay:
            self.charging = wants
            self._since = None
        return self.charging

    def next_change(self) -> datetime | None:
        """Return when a pending start or stop takes effect, if one is pending."""
        if self._since is None:
            return None
        return self._since + (self.stop_delay if self.charging else self.start_delay)


@dataclass(frozen=True, kw_only=True)
class PriceSlot:
    """A price valid from start (inclusive) to end (exclusive)."""

    start: datetime
    end: datetime
    price: float


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _slot(item: Any) -> PriceSlot | None:
    if not isinstance(item, Mapping):
        return None
    start = _as_datetime(item.get("start") or item.get("startsAt"))
    end = _as_datetime(item.get("end") or item.get("endsAt"))
    raw = next(
        (item[k] for k in ("price", "value", "total") if item.get(k) is not None), None
    )
    if start is None or raw is None or start.tzinfo is None:
        return None
    try:
        price = float(raw)
    except (TypeError, ValueError):
        return None
    if end is None:
        end = start + timedelta(hours=1)
    return PriceSlot(start=start, end=end, price=price) if end > start else None


def _hourly(values: Sequence[Any], day_start: datetime) -> list[PriceSlot]:
    """Turn a list of hourly prices for a day into slots (24 values; 96 = quarters)."""
    step = timedelta(hours=24 / len(values)) if len(values) in (24, 96) else None
    if step is None:
        return []
    slots = []
    for index, value in enumerate(values):
        try:
            price = float(value)
        except (TypeError, ValueError):
            continue
        start = day_start + index * step
        slots.append(PriceSlot(start=start, end=start + step, price=price))
    return slots


def parse_price_forecast(
    attributes: Mapping[str, Any], now: datetime
) -> list[PriceSlot]:
    """Read the forecast that HA price integrations put in a sensor's attributes.

    Accepted: a list of `{start, end, price|value|total}` under `prices`, `forecast`,
    `data`, `raw_today`/`raw_tomorrow`, `today`/`tomorrow` (lists of dicts), or plain
    `today`/`tomorrow` arrays of 24 (or 96) numbers for the local day of `now`.
    """
    slots: list[PriceSlot] = []
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for key, day in (
        ("prices", None),
        ("forecast", None),
        ("data", None),
        ("raw_today", None),
        ("raw_tomorrow", None),
        ("today", midnight),
        ("tomorrow", midnight + timedelta(days=1)),
    ):
        value = attributes.get(key)
        if not isinstance(value, Sequence) or isinstance(value, str) or not value:
            continue
        if any(isinstance(item, Mapping) for item in value):
            slots.extend(s for item in value if (s := _slot(item)) is not None)
        elif day is not None:
            slots.extend(_hourly(value, day))
    unique = {slot.start: slot for slot in slots}
    return [unique[start] for start in sorted(unique)]


def next_departure(now: datetime, departure: time) -> datetime:
    """Return the next time of day `departure` after now, in now's time zone."""
    candidate = now.replace(
        hour=departure.hour, minute=departure.minute, second=0, microsecond=0
    )
    return candidate if candidate > now else candidate + timedelta(days=1)


def cheapest_slots(
    slots: Sequence[PriceSlot], start: datetime, until: datetime, hours: float
) -> list[PriceSlot]:
    """Return the cheapest slots in [start, until) that together cover `hours` hours.

    The plan is for one whole charging cycle (from the previous departure to the next),
    so it stays the same while the cycle runs: hours already past still count as chosen.
    Ties go to the earlier slot.
    """
    window = [s for s in slots if s.start >= start and s.start < until]
    chosen: list[PriceSlot] = []
    need = timedelta(hours=hours)
    for slot in sorted(window, key=lambda s: (s.price, s.start)):
        if need <= timedelta(0):
            break
        chosen.append(slot)
        need -= slot.end - slot.start
    return sorted(chosen, key=lambda s: s.start)


def tariff_allows(
    *,
    now: datetime,
    current_price: float | None,
    slots: Sequence[PriceSlot],
    threshold: float | None = None,
    cheapest_hours: float | None = None,
    departure: time | None = None,
) -> bool:
    """Return whether charging is allowed now by a price threshold or cheapest hours.

    Threshold: the current price (or the running slot's) is at or below it.
    Cheapest hours: now lies in one of the `cheapest_hours` cheapest hours of the cycle that
    ends at the next departure (and began 24 h earlier). Without any price data charging is allowed (fail open: the car still
    charges, only not optimised).
    """
    if cheapest_hours is not None and departure is not None and slots:
        until = next_departure(now, departure)
        plan = cheapest_slots(slots, until - timedelta(days=1), until, cheapest_hours)
        return any(s.start <= now < s.end for s in plan)
    if threshold is not None:
        price = current_price
        if price is None:
            price = next((s.price for s in slots if s.start <= now < s.end), None)
        return price is None or price <= threshold
    return True


_WINDOW = re.compile(
    r"^\s*(\d{1,2})(?::00)?\s*-\s*(\d{1,2})(?::00)?\s*[:=@x*]\s*(\d+(?:\.\d+)?)\s*$"
)


def parse_time_of_use(text: str) -> tuple[TimeOfUseWindow, ...]:
    """Parse windows written as `17-21:0.5, 23-6:0.8` (start-end hour : multiplier).

    Raises EngineConfigError with the part that could not be read.
    """
    windows: list[TimeOfUseWindow] = []
    for part in re.split(r"[,;\n]", text):
        if not part.strip():
            continue
        match = _WINDOW.match(part.replace(" x ", "x"))
        if match is None:
            raise EngineConfigError(f"cannot read time-of-use window {part.strip()!r}")
        start, end, factor = int(match[1]), int(match[2]), float(match[3])
        windows.append(
            TimeOfUseWindow(
                peak_start_hour=start, peak_end_hour=end, peak_power_multiplier=factor
            )
        )
    return tuple(windows)


def format_time_of_use(windows: Iterable[TimeOfUseWindow]) -> str:
    """Write windows in the form `parse_time_of_use` reads."""
    return ", ".join(
        f"{w.peak_start_hour}-{w.peak_end_hour}:{w.peak_power_multiplier:g}"
        for w in windows
    )


def limit_for_minimums(minimum_kw: float, safety_margin_pct: float) -> float:
    """Return the panel limit whose budget after the safety margin holds `minimum_kw`."""
    if minimum_kw <= 0:
        return 0.0
    # Round up to the watt so the budget after the margin is never just short.
    return math.ceil(minimum_kw / (1 - safety_margin_pct / 100) * 1000 + 1) / 1000


@dataclass(frozen=True, kw_only=True)
class BudgetSources:
    """Which budget sources a panel has, and the numbers they are judged by."""

    rating_kw: float
    safety_margin_pct: float = 0.0
    voltage_v: float = 230.0
    phase_limit_a: float | None = None
    # A power sensor of the other load, and how many per-phase current sensors (L1...).
    load_power: bool = False
    load_phases: int = 0
    # "off", "solar" (surplus only) or "min_solar" (the minimum at least); needs a grid
    # meter (`solar_grid`).
    solar_mode: str = "off"
    solar_grid: bool = False
    # A price rule on a price sensor; while it says no, the budget is 0 (or the minimum).
    tariff: bool = False
    tariff_hold_minimum: bool = False


@dataclass(frozen=True, kw_only=True)
class BudgetReadings:
    """What a panel's sensors read now; None: a configured sensor is unavailable."""

    # The other load's power (kW, positive when it consumes) and per-phase currents (A).
    load_kw: float | None = None
    load_phase_a: tuple[float | None, ...] = ()
    # The grid meter (kW, import positive) and what the cars below draw now (kW).
    grid_kw: float | None = None
    cars_kw: float = 0.0
    # The power the running sessions below need for their minimum current (kW).
    sessions_minimum_kw: float = 0.0
    # Whether the price rule allows charging now (`tariff_allows`).
    tariff_allows: bool = True


def panel_budget(
    sources: BudgetSources,
    readings: BudgetReadings,
    *,
    solar: SolarHysteresis | None,
    now: datetime,
    previous: BudgetResult | None = None,
) -> BudgetResult:
    """Return a panel's limit and reason from its sensors' readings.

    Pure but for the solar hysteresis, which this steps with the reading of `now`. An
    unavailable load sensor counts as the worst case: the whole rating (and every
    phase's limit) in use. Holding the minimum counts the other load of `previous`.
    """
    candidates: list[tuple[float, str]] = []
    hold = False
    unmanaged = 0.0
    phase_a: tuple[float, float, float] | None = None
    unavailable = False
    if sources.load_power:
        unavailable = readings.load_kw is None
        unmanaged = max(0.0, readings.load_kw or 0.0)
    if sources.load_phases:
        currents = readings.load_phase_a
        unavailable = unavailable or any(c is None for c in currents)
        values = [max(0.0, c or 0.0) for c in currents] + [0.0, 0.0]
        phase_a = (values[0], values[1], values[2])
        if not sources.load_power:
            unmanaged = sum(phase_a) * sources.voltage_v / 1000
    if unavailable:
        unmanaged = sources.rating_kw
        if phase_a is not None:
            worst = sources.phase_limit_a or sources.rating_kw * 1000 / (
                3 * sources.voltage_v
            )
            phase_a = (worst, worst, worst)
    minimum = limit_for_minimums(
        readings.sessions_minimum_kw + (previous.unmanaged_kw if previous else 0),
        sources.safety_margin_pct,
    )
    if solar is not None and sources.solar_grid:
        grid = readings.grid_kw
        # Import positive: surplus is the export plus what the cars draw now.
        surplus = 0.0 if grid is None else readings.cars_kw - grid
        if solar.update(surplus, now):
            # The grid meter already sees the other load the engine subtracts again.
            candidates.append((surplus + unmanaged, BudgetReason.SOLAR))
        elif sources.solar_mode == "min_solar":
            hold = True
            candidates.append((minimum, BudgetReason.SOLAR))
        else:
            candidates.append((0.0, BudgetReason.SOLAR))
    if sources.tariff and not readings.tariff_allows:
        hold = hold or sources.tariff_hold_minimum
        candidates.append(
            (minimum if sources.tariff_hold_minimum else 0.0, BudgetReason.TARIFF)
        )
    result = combine(sources.rating_kw, candidates)
    reason = result.reason
    if reason == BudgetReason.LIMIT and unmanaged > 0:
        reason = BudgetReason.LOAD
    return BudgetResult(
        limit_kw=round(result.limit_kw, 3),
        reason=reason,
        hold_minimum=hold,
        unmanaged_kw=round(unmanaged, 3),
        unmanaged_phase_a=phase_a,
    )


def panel_budget_reason(
    *,
    override_kw: float | None,
    budget: BudgetResult | None,
    strategy: Strategy,
    windows: Sequence[TimeOfUseWindow],
    now: datetime,
    time_zone: str,
) -> str:
    """Return why a panel's budget is what it is, most binding first.

    A runtime override that is at or below the sources' limit, else the sources' own
    reason, else a time-of-use window that lowers the budget now, else the rating.
    """
    if override_kw is not None and (budget is None or override_kw <= budget.limit_kw):
        return BudgetReason.OVERRIDE
    if budget is not None and budget.reason != BudgetReason.LIMIT:
        return budget.reason
    if (
        strategy == Strategy.TIME_OF_USE
        and time_of_use_multiplier(windows, now, get_zone(time_zone)) < 1
    ):
        return BudgetReason.TIME_OF_USE
    return BudgetReason.LIMIT
