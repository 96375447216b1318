"""Session history: every finished session of a site, with energy, peak power and cost.

A session is recorded from the server's events: TransactionStarted opens it, every
MeterValuesReceived of its transaction adds a reading, TransactionStopped closes it.
Energy is the meter's (stop minus start). Cost integrates the tariff sensor over the
session's own meter readings: the energy between two readings is charged at the
time-weighted average price between their timestamps (the charger's clock; the price
steps at the times the sensor changed). A reading without a known price counts as
unpriced energy and adds no cost. With a grid meter (the main breaker's grid power
sensor, import positive) the solar share is the part of each interval's energy the grid
did not supply: the car's average power minus the average import, at least 0.

Why a `Store` and not SQLite: a home or small fleet finishes a handful of sessions a
day; a year is a few hundred kilobytes of JSON. The Store writes atomically, in the
executor, coalesced (`async_delay_save`), is removed with the entry, and needs no
schema, migrations, thread or connection handling. SQLite (through the recorder's
executor) would pay off only for queries over hundreds of thousands of sessions, which
`history_days` (kept time) bounds away. The recorder itself is not used: it purges
after 10 days by default and stores states, not sessions.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import (
    Event,
    EventStateChangedData,
    HomeAssistant,
    State,
    callback,
)
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import CONF_GRID_INVERT, CONF_GRID_SENSOR, CONF_PRICE_SENSOR, DOMAIN, LOGGER
from .csms import (
    ChargerEvent,
    MeterValuesReceived,
    TransactionStarted,
    TransactionStopped,
)
from .engine import EngineConfigError
from .engine.budgets import power_kw
from .tag_config import (
    CONF_COST_SENSOR,
    CONF_HISTORY_DAYS,
    DEFAULT_HISTORY_DAYS,
    EVENT_SESSION_FINISHED,
    tag_key,
)

if TYPE_CHECKING:
    from .tags import SiteTags

STORAGE_VERSION: Final = 1
SAVE_DELAY_S: Final = 10
# Unit suffixes of a price sensor, as a factor to "per kWh".
_PER_UNIT: Final = {"kwh": 1.0, "mwh": 0.001, "wh": 1000.0}


def sessions_signal(entry_id: str) -> str:
    """Return the dispatcher signal sent when a site's history changed."""
    return f"{DOMAIN}_{entry_id}_sessions"


# ----------------------------------------------------------------- the arithmetic


@dataclass(slots=True)
class PriceSteps:
    """A step function of the price: `prices[i]` holds from `times[i]` on."""

    times: list[datetime] = field(default_factory=list)
    prices: list[float | None] = field(default_factory=list)

    def add(self, moment: datetime, price: float | None) -> None:
        """Record a price from `moment` on (later steps are kept in time order)."""
        index = bisect_right(self.times, moment)
        self.times.insert(index, moment)
        self.prices.insert(index, price)

    def at(self, moment: datetime) -> float | None:
        """Return the price in force at `moment` (the first one before any step)."""
        if not self.times:
            return None
        index = bisect_right(self.times, moment) - 1
        return self.prices[max(index, 0)]

    def average(self, start: datetime, end: datetime) -> float | None:
        """Return the time-weighted price over [start, end]; None if part is unknown."""
        if end <= start:
            return self.at(end)
        total = 0.0
        cursor = start
        index = bisect_right(self.times, start)
        bounds = [t for t in self.times[index:] if t < end] + [end]
        for bound in bounds:
            price = self.at(cursor)
            if price is None:
                return None
            total += price * (bound - cursor).total_seconds()
            cursor = bound
        return total / (end - start).total_seconds()

    def prune(self, before: datetime) -> None:
        """Forget steps no longer needed for times at or after `before`."""
        keep = max(bisect_right(self.times, before) - 1, 0)
        del self.times[:keep]
        del self.prices[:keep]


@dataclass(kw_only=True)
class SessionRecord:
    """A session, running or finished (JSON-friendly through `as_dict`)."""

    charger_id: str
    connector_id: int
    transaction_id: str
    id_tag: str | None
    tag_name: str | None
    person: str | None
    started: datetime
    ended: datetime | None = None
    meter_start_wh: float | None = None
    meter_stop_wh: float | None = None
    energy_wh: float = 0.0
    peak_power_w: float | None = None
    cost: float | None = None
    currency: str | None = None
    unpriced_wh: float = 0.0
    solar_wh: float | None = None  # None: no grid meter
    stop_reason: str | None = None
    # The last reading: (timestamp, meter register in Wh).
    last_time: datetime | None = None
    last_energy_wh: float | None = None
    # The goal the session followed (its last one) and the energy its first plan gave
    # it (None: no goal, or never planned; records stored before these load as None).
    goal_mode: str | None = None
    goal_energy_kwh: float | None = None
    goal_departure: datetime | None = None
    planned_energy_kwh: float | None = None

    def add_reading(
        self,
        moment: datetime,
        energy_wh: float,
        prices: PriceSteps | None,
        grid: PriceSteps | None = None,
    ) -> None:
        """Add a meter register reading; charge the energy since the last one.

        `grid` is the grid meter's power in W (import positive), for the solar share.
        """
        if self.meter_start_wh is None:
            self.meter_start_wh = energy_wh
        if self.last_energy_wh is not None and self.last_time is not None:
            delta = max(0.0, energy_wh - self.last_energy_wh)
            if prices is not None and delta > 0:
                price = prices.average(self.last_time, moment)
                if price is None:
                    self.unpriced_wh += delta
                else:
                    self.cost = (self.cost or 0.0) + delta / 1000 * price
            if grid is not None:
                self.solar_wh = (self.solar_wh or 0.0) + delta * _solar_part(
                    delta, self.last_time, moment, grid
                )
        self.last_time, self.last_energy_wh = moment, energy_wh
        self.energy_wh = max(0.0, energy_wh - self.meter_start_wh)

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        data = asdict(self)
        for key in _TIMES:
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        """Read the JSON form."""
        values = dict(data)
        for key in _TIMES:
            if values.get(key):
                values[key] = dt_util.parse_datetime(values[key])
        return cls(**values)

    def export(self) -> dict[str, Any]:
        """Return the exported form (CSV row and service response alike)."""
        return {
            "charger_id": self.charger_id,
            "connector_id": self.connector_id,
            "transaction_id": self.transaction_id,
            "id_tag": self.id_tag,
            "tag": self.tag_name,
            "person": self.person,
            "started": self.started.isoformat(),
            "ended": self.ended.isoformat() if self.ended else None,
            "energy_kwh": round(self.energy_wh / 1000, 3),
            "peak_power_kw": None
            if self.peak_power_w is None
            else round(self.peak_power_w / 1000, 3),
            "cost": None if self.cost is None else round(self.cost, 4),
            "currency": self.currency,
            "solar_share": None
            if self.solar_wh is None or self.energy_wh <= 0
            else round(min(1.0, self.solar_wh / self.energy_wh), 3),
            "goal_mode": self.goal_mode,
            "goal_energy_kwh": self.goal_energy_kwh,
            "goal_departure": self.goal_departure.isoformat()
            if self.goal_departure
            else None,
            "planned_energy_kwh": self.planned_energy_kwh,
        }


_TIMES: Final = ("started", "ended", "last_time", "goal_departure")


EXPORT_FIELDS: Final = (
    "charger_id",
    "connector_id",
    "transaction_id",
    "id_tag",
    "tag",
    "person",
    "started",
    "ended",
    "energy_kwh",
    "peak_power_kw",
    "cost",
    "currency",
    "solar_share",
    "goal_mode",
    "goal_energy_kwh",
    "goal_departure",
    "planned_energy_kwh",
)


def _solar_part(
    delta_wh: float, start: datetime, end: datetime, grid: PriceSteps
) -> float:
    """Return the part (0..1) of an interval's energy the grid did not supply."""
    seconds = (end - start).total_seconds()
    import_w = grid.average(start, end)
    if delta_wh <= 0 or seconds <= 0 or import_w is None:
        return 0.0
    car_w = delta_wh * 3600 / seconds
    return min(1.0, max(0.0, (car_w - max(0.0, import_w)) / car_w))


def _price_of(state_value: str, unit: str | None) -> float | None:
    """Return a price per kWh from a sensor state, or None."""
    if state_value in (STATE_UNKNOWN, STATE_UNAVAILABLE):
        return None
    try:
        price = float(state_value)
    except ValueError:
        return None
    per = (unit or "").rsplit("/", 1)[-1].strip().lower() if unit else "kwh"
    return price * _PER_UNIT.get(per, 1.0)


def _currency_of(unit: str | None) -> str | None:
    if not unit or "/" not in unit:
        return None
    return unit.rsplit("/", 1)[0].strip() or None


# ---------------------------------------------------------------- the history


def _end_of(session: SessionRecord) -> datetime:
    return session.ended or session.started


@dataclass(kw_only=True)
class TagTotals:
    """What a tag's sensors show."""

    energy_month_wh: float = 0.0
    energy_total_wh: float = 0.0
    cost_month: float = 0.0
    currency: str | None = None
    last_session: SessionRecord | None = None


class SessionHistory:
    """Records the sessions of one site and keeps them for `history_days`."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, tags: SiteTags) -> None:
        """Bind the history to a site; nothing is read before `async_start`."""
        self.hass = hass
        self.entry = entry
        self.tags = tags
        self.sessions: list[SessionRecord] = []
        self.running: dict[tuple[str, str], SessionRecord] = {}
        # Lifetime energy per tag (tag key): survives sessions leaving the history.
        self.lifetime_wh: dict[str, float] = {}
        self.prices = PriceSteps()
        self.price_sensor: str | None = entry.options.get(
            CONF_COST_SENSOR
        ) or entry.data.get(CONF_PRICE_SENSOR)
        self.keep = timedelta(
            days=float(entry.options.get(CONF_HISTORY_DAYS, DEFAULT_HISTORY_DAYS))
        )
        self.currency: str | None = None
        # The grid meter (W, import positive) for the solar share.
        self.grid = PriceSteps()
        self.grid_sensor: str | None = entry.data.get(CONF_GRID_SENSOR) or None
        self.grid_invert = bool(entry.data.get(CONF_GRID_INVERT, False))
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}.sessions"
        )
        self._unsub: Callable[[], None] | None = None

    # ----------------------------------------------------------------- lifecycle

    async def async_start(self) -> None:
        """Load the history and follow the price sensor."""
        stored = await self._store.async_load() or {}
        try:
            self.sessions = [
                SessionRecord.from_dict(s) for s in stored.get("sessions", [])
            ]
            self.running = {
                (r.charger_id, r.transaction_id): r
                for r in (SessionRecord.from_dict(s) for s in stored.get("running", []))
            }
            for steps, name in ((self.prices, "prices"), (self.grid, "grid")):
                for item in stored.get(name, []):
                    moment = dt_util.parse_datetime(item[0])
                    if moment is not None:
                        steps.add(moment, item[1])
        except (KeyError, TypeError, ValueError) as err:
            LOGGER.warning("Session history could not be read, starting anew: %s", err)
            self.sessions, self.running = [], {}
        self.lifetime_wh = {
            str(k): float(v) for k, v in stored.get("lifetime_wh", {}).items()
        }
        self._prune(dt_util.utcnow())
        followed = [e for e in (self.price_sensor, self.grid_sensor) if e]
        if followed:
            self._unsub = async_track_state_change_event(
                self.hass, followed, self._price_changed
            )
        for entity_id in followed:
            if (state := self.hass.states.get(entity_id)) is not None:
                self._record(entity_id, state)

    async def async_stop(self) -> None:
        """Stop following the price and save now."""
        if self._unsub is not None:
            self._unsub()
            self._unsub = None
        await self._store.async_save(self._data())

    def _data(self) -> dict[str, Any]:
        return {
            "sessions": [s.as_dict() for s in self.sessions],
            "running": [r.as_dict() for r in self.running.values()],
            "prices": [
                [t.isoformat(), p]
                for t, p in zip(self.prices.times, self.prices.prices, strict=True)
            ],
            "grid": [
                [t.isoformat(), p]
                for t, p in zip(self.grid.times, self.grid.prices, strict=True)
            ],
            "lifetime_wh": self.lifetime_wh,
        }

    def _save(self, delay: float = SAVE_DELAY_S) -> None:
        self._store.async_delay_save(self._data, delay)

    # -------------------------------------------------------------------- prices

    @callback
    def _price_changed(self, event: Event[EventStateChangedData]) -> None:
        state = event.data["new_state"]
        if state is not None:
            self._record(event.data["entity_id"], state)

    def _record(self, entity_id: str, state: State) -> None:
        """Record a new price or grid power from a sensor's state."""
        moment = state.last_changed
        unit = state.attributes.get("unit_of_measurement")
        if entity_id == self.price_sensor:
            steps = self.prices
            steps.add(moment, _price_of(state.state, unit))
            self.currency = _currency_of(unit) or self.currency
        else:
            steps = self.grid
            steps.add(moment, self._grid_w(state.state, unit))
        oldest = [r.last_time or r.started for r in self.running.values()]
        steps.prune(min(oldest) if oldest else moment)
        self._save()

    def _grid_w(self, value: str, unit: str | None) -> float | None:
        try:
            return power_kw(float(value), unit, invert=self.grid_invert) * 1000
        except (ValueError, EngineConfigError):
            return None

    # -------------------------------------------------------------------- events

    @callback
    def handle_event(self, event: ChargerEvent) -> None:
        """Follow the sessions through the server's events."""
        match event:
            case TransactionStarted():
                self._started(event)
            case MeterValuesReceived():
                self._reading(event)
            case TransactionStopped():
                self._stopped(event)
            case _:
                pass

    def _started(self, event: TransactionStarted) -> None:
        key = (event.charger_id, event.transaction_id)
        if key in self.running:
            return  # a 2.x start repeated (offline queue), or restored after a restart
        tag = self.tags.tag(event.id_tag)
        record = SessionRecord(
            charger_id=event.charger_id,
            connector_id=event.connector_id,
            transaction_id=event.transaction_id,
            id_tag=event.id_tag,
            tag_name=tag.name if tag else None,
            person=tag.person if tag else None,
            started=event.timestamp,
            solar_wh=0.0 if self.grid_sensor else None,
        )
        if event.meter_start_wh is not None:
            record.add_reading(
                event.timestamp, event.meter_start_wh, self._pricing, self._grid
            )
        self.running[key] = record
        self._save()

    @property
    def _pricing(self) -> PriceSteps | None:
        return self.prices if self.price_sensor else None

    @property
    def _grid(self) -> PriceSteps | None:
        return self.grid if self.grid_sensor else None

    def _running_for(self, event: MeterValuesReceived) -> SessionRecord | None:
        if event.transaction_id is not None:
            return self.running.get((event.charger_id, event.transaction_id))
        for record in self.running.values():
            if (
                record.charger_id == event.charger_id
                and record.connector_id == event.connector_id
            ):
                return record
        return None

    def _reading(self, event: MeterValuesReceived) -> None:
        record = self._running_for(event)
        if record is None:
            return
        if event.power_w is not None:
            record.peak_power_w = max(record.peak_power_w or 0.0, event.power_w)
        if event.energy_wh is not None:
            record.add_reading(
                event.timestamp, event.energy_wh, self._pricing, self._grid
            )
        self._save()

    def _stopped(self, event: TransactionStopped) -> None:
        record = self.running.pop((event.charger_id, event.transaction_id), None)
        if record is None:
            return
        if event.meter_stop_wh is not None:
            record.add_reading(
                event.timestamp, event.meter_stop_wh, self._pricing, self._grid
            )
            record.meter_stop_wh = event.meter_stop_wh
        else:
            record.meter_stop_wh = record.last_energy_wh
        record.ended = event.timestamp
        record.stop_reason = event.reason
        if record.cost is None and self.price_sensor and record.unpriced_wh == 0:
            record.cost = 0.0
        record.currency = self.currency
        self.sessions.append(record)
        if record.id_tag:
            key = tag_key(record.id_tag)
            self.lifetime_wh[key] = self.lifetime_wh.get(key, 0.0) + record.energy_wh
        self._prune(dt_util.utcnow())
        self._save(1)
        self.hass.bus.async_fire(
            EVENT_SESSION_FINISHED,
            {"entry_id": self.entry.entry_id, **record.export()},
        )
        async_dispatcher_send(self.hass, sessions_signal(self.entry.entry_id))

    @callback
    def note_plan(
        self,
        charger_id: str,
        transaction_id: str,
        *,
        mode: str,
        energy_kwh: float | None,
        departure: datetime | None,
        planned_kwh: float | None,
    ) -> None:
        """Record the goal a running session follows, and its first plan's energy."""
        record = self.running.get((charger_id, transaction_id))
        if record is None:
            return
        noted = (record.goal_mode, record.goal_energy_kwh, record.goal_departure)
        record.goal_mode = mode
        record.goal_energy_kwh = energy_kwh
        record.goal_departure = departure
        first_plan = record.planned_energy_kwh is None and planned_kwh is not None
        if first_plan:
            record.planned_energy_kwh = planned_kwh
        if first_plan or noted != (mode, energy_kwh, departure):
            self._save()

    def _prune(self, now: datetime) -> None:
        cutoff = now - self.keep
        self.sessions = [s for s in self.sessions if (s.ended or s.started) >= cutoff]

    # ------------------------------------------------------------------- queries

    def query(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        chargers: Iterable[str] | None = None,
        id_tags: Iterable[str] | None = None,
    ) -> list[SessionRecord]:
        """Return finished sessions that started in [start, end), oldest first."""
        charger_set = set(chargers) if chargers is not None else None
        tag_set = {tag_key(t) for t in id_tags} if id_tags is not None else None
        return sorted(
            (
                s
                for s in self.sessions
                if (start is None or s.started >= start)
                and (end is None or s.started < end)
                and (charger_set is None or s.charger_id in charger_set)
                and (
                    tag_set is None
                    or (s.id_tag is not None and tag_key(s.id_tag) in tag_set)
                )
            ),
            key=lambda s: s.started,
        )

    def totals(self, id_tag: str, now: datetime) -> TagTotals:
        """Return a tag's energy and cost this month (local time), and its total."""
        local = dt_util.as_local(now)
        month_start = dt_util.as_utc(
            local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        )
        key = tag_key(id_tag)
        mine = [s for s in self.sessions if s.id_tag and tag_key(s.id_tag) == key]
        month = [s for s in mine if s.started >= month_start]
        return TagTotals(
            energy_month_wh=sum(s.energy_wh for s in month),
            energy_total_wh=self.lifetime_wh.get(key, 0.0),
            cost_month=sum(s.cost or 0.0 for s in month),
            currency=next((s.currency for s in reversed(mine) if s.currency), None)
            or self.currency,
            last_session=max(mine, key=_end_of) if mine else None,
        )
