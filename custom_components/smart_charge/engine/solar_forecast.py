"""Solar forecasts: what HA forecast integrations put in attributes, as PV power slots.

Pure functions, no Home Assistant. `parse_solar_forecast(attributes)` reads one entity's
attributes into `SolarSlot`s (average PV power over `[start, end)`, in kW);
`mean_solar_kw` averages them over a planner slot. Every value key has its documented
unit; nothing is guessed from the magnitude of a number:

- Solcast PV Forecast (HACS): `detailedForecast` (30 min) and `detailedHourly` lists of
  `{period_start, pv_estimate, pv_estimate10, pv_estimate90}`, `pv_estimate` the mean
  power in **kW** over the period.
- Open-Meteo Solar Forecast (HACS) and the Forecast.Solar API shape: `watts` (mean power in
  **W** from each ISO time to the next) and `wh_period` (energy in **Wh** of the period
  that starts at each ISO time), dicts of ISO time → number.
- Generic lists (templates, other integrations) under `forecast`, `forecasts` or `data`:
  dicts with a start (`period_start`, `start`, `datetime`) and one of `pv_estimate` /
  `power_kw` (kW), `watts` / `power_w` (W), `wh` / `wh_period` (Wh), `energy_kwh` (kWh),
  or `value` / `power` in the unit of the item's `unit` or the entity's
  `unit_of_measurement` (W, kW, Wh or kWh; items without a unit are skipped).

A period ends at the item's `period_end`/`end`, else where the next item starts; the last
one is as long as the one before (an hour when there is only one).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
import math
from typing import Any

_HOUR = timedelta(hours=1)

# (attribute, kind): lists of dicts, or dicts of time -> value with a fixed unit.
# Within one entity the first source that yields slots wins (the finest first), so the
# hourly copy of the same forecast is never added on top of the half-hourly one.
_SOURCES: tuple[tuple[str, str | None], ...] = (
    ("detailedForecast", None),
    ("watts", "W"),
    ("detailedHourly", None),
    ("wh_period", "Wh"),
    ("forecast", None),
    ("forecasts", None),
    ("data", None),
)
_START_KEYS = ("period_start", "start", "datetime")
_END_KEYS = ("period_end", "end")
# Value keys of list items with their documented unit (None: from `unit` /
# `unit_of_measurement`).
_VALUE_KEYS: tuple[tuple[str, str | None], ...] = (
    ("pv_estimate", "kW"),
    ("power_kw", "kW"),
    ("watts", "W"),
    ("power_w", "W"),
    ("wh", "Wh"),
    ("wh_period", "Wh"),
    ("energy_kwh", "kWh"),
    ("value", None),
    ("power", None),
)
# Unit -> (factor to kW or kWh, is energy).
_UNITS: dict[str, tuple[float, bool]] = {
    "w": (0.001, False),
    "kw": (1.0, False),
    "mw": (1000.0, False),
    "wh": (0.001, True),
    "kwh": (1.0, True),
    "mwh": (1000.0, True),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class SolarSlot:
    """Forecast PV power: `kw` on average from `start` (inclusive) to `end` (exclusive)."""

    start: datetime
    end: datetime
    kw: float


@dataclass(frozen=True, slots=True)
class _Point:
    start: datetime
    end: datetime | None
    value: float
    unit: str


def _time(value: Any, default_tz: tzinfo | None) -> datetime | None:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None:
        if default_tz is None:
            return None
        moment = moment.replace(tzinfo=default_tz)
    return moment


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _unit(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    unit = value.strip().lower()
    return unit if unit in _UNITS else None


def _item(
    item: Any, entity_unit: str | None, default_tz: tzinfo | None
) -> _Point | None:
    if not isinstance(item, Mapping):
        return None
    start = next(
        (m for k in _START_KEYS if (m := _time(item.get(k), default_tz)) is not None),
        None,
    )
    if start is None:
        return None
    end = next(
        (m for k in _END_KEYS if (m := _time(item.get(k), default_tz)) is not None),
        None,
    )
    for key, documented in _VALUE_KEYS:
        value = _number(item.get(key))
        if value is None:
            continue
        unit = _unit(documented) if documented else _unit(item.get("unit"))
        unit = unit or entity_unit
        if unit is None:
            return None  # a value without a documented unit is not guessed
        return _Point(start, end, value, unit)
    return None


def _points(
    raw: Any, fixed_unit: str | None, entity_unit: str | None, tz: tzinfo | None
) -> list[_Point]:
    if isinstance(raw, Mapping) and fixed_unit is not None:
        unit = _unit(fixed_unit)
        assert unit is not None
        points = []
        for key, value in raw.items():
            start, number = _time(key, tz), _number(value)
            if start is not None and number is not None:
                points.append(_Point(start, None, number, unit))
        return points
    if isinstance(raw, Sequence) and not isinstance(raw, str):
        return [p for item in raw if (p := _item(item, entity_unit, tz)) is not None]
    return []


def _slots(points: list[_Point]) -> list[SolarSlot]:
    unique = {p.start: p for p in points}
    ordered = [unique[start] for start in sorted(unique)]
    slots: list[SolarSlot] = []
    for index, point in enumerate(ordered):
        end = point.end
        if end is None and index + 1 < len(ordered):
            end = ordered[index + 1].start
        if end is None:
            step = slots[-1].end - slots[-1].start if slots else _HOUR
            end = point.start + step
        if end <= point.start:
            continue
        factor, energy = _UNITS[point.unit]
        kw = point.value * factor
        if energy:
            kw /= (end - point.start) / _HOUR
        slots.append(SolarSlot(start=point.start, end=end, kw=max(0.0, kw)))
    return slots


def parse_solar_forecast(
    attributes: Mapping[str, Any], *, default_tz: tzinfo | None = None
) -> list[SolarSlot]:
    """Return the PV forecast in an entity's attributes (see the module docstring).

    Times without a zone take `default_tz` (without it they are skipped); negative
    values count as 0. Empty when nothing is readable.
    """
    entity_unit = _unit(attributes.get("unit_of_measurement"))
    for key, fixed_unit in _SOURCES:
        points = _points(attributes.get(key), fixed_unit, entity_unit, default_tz)
        if points:
            return _slots(points)
    return []


def merge_solar_forecasts(forecasts: Sequence[Sequence[SolarSlot]]) -> list[SolarSlot]:
    """Merge the forecasts of several entities (today's, tomorrow's) into one.

    Where two entities cover the same moment the first one's slot is kept.
    """
    merged: list[SolarSlot] = []
    for forecast in forecasts:
        for slot in forecast:
            if not any(s.start < slot.end and slot.start < s.end for s in merged):
                merged.append(slot)
    return sorted(merged, key=lambda s: s.start)


def mean_solar_kw(
    forecast: Sequence[SolarSlot], start: datetime, end: datetime
) -> float:
    """Return the mean forecast PV power (kW) over `[start, end)`.

    Time the forecast does not cover counts as no sun (never more energy than forecast).
    """
    length = (end - start).total_seconds()
    if length <= 0:
        return 0.0
    energy = 0.0
    for slot in forecast:
        overlap = (min(end, slot.end) - max(start, slot.start)).total_seconds()
        if overlap > 0:
            energy += slot.kw * overlap
    return energy / length


def mean_solar_kws(
    forecast: Sequence[SolarSlot], starts: Sequence[datetime], length: timedelta
) -> list[float]:
    """Return `mean_solar_kw` for each slot `[start, start + length)`, found by bisection.

    The same numbers as slot by slot, without scanning the whole forecast per slot.
    """
    ordered = sorted(forecast, key=lambda s: s.start)
    begins = [s.start.timestamp() for s in ordered]
    longest = max(((s.end - s.start).total_seconds() for s in ordered), default=0.0)
    seconds = length.total_seconds()
    means: list[float] = []
    for start in starts:
        low, high = start.timestamp(), start.timestamp() + seconds
        energy = 0.0
        for index in range(
            bisect_left(begins, low - longest), bisect_left(begins, high)
        ):
            slot = ordered[index]
            overlap = min(high, slot.end.timestamp()) - max(low, begins[index])
            if overlap > 0:
                energy += slot.kw * overlap
        means.append(energy / seconds if seconds > 0 else 0.0)
    return means
