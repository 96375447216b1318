"""Charging plans in Home Assistant: goals to plan requests, the plan to session caps.

Whenever a car arrives or leaves, a goal, the price or the solar forecast changes
(debounced), and
at every slot boundary, the site plans the sessions that have a goal (a mode other than
*as fast as possible*) with the engine's `plan_charging` over the next 24 h, in the price
data's slots. The plan is executed: in each slot a session's live share is capped at its
planned current (the engine keeps every breaker in charge below the cap), and the whole
plan goes to the charger as a schedule (`schedule`) where it takes multi-period
profiles. Sessions without a goal share as before. With a solar forecast (the site's
*Solar forecast* entities), each slot's solar surplus is the forecast PV minus the
household load, priced at the feed-in price (0 without one).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.event import (
    EventStateChangedData,
    async_track_point_in_utc_time,
    async_track_state_change_event,
)
from homeassistant.util import dt as dt_util

from .const import DEFAULT_CHARGING_MODE, LOGGER, PLAN_DEBOUNCE_S
from .engine import EngineError, Site
from .engine.budgets import PriceSlot, parse_price_forecast
from .engine.plan_inputs import (
    next_boundary,
    plan_attribute,
    plan_schedule,
    plan_session,
    plan_slots,
    planned_amps,
    remaining_kwh,
    with_solar_surplus,
)
from .engine.planner import plan_charging
from .engine.planner_model import (
    ChargingGoal,
    ChargingPlan,
    PlanMode,
    PlanRequest,
    PlanSlot,
    SessionPlan,
)
from .engine.solar_forecast import (
    SolarSlot,
    merge_solar_forecasts,
    parse_solar_forecast,
)

if TYPE_CHECKING:
    from .control import ChargerConfig
    from .csms import TransactionState
    from .runtime_state import GoalState


@dataclass(frozen=True, kw_only=True)
class PlanCandidate:
    """A charger whose running session has a goal to plan."""

    config: ChargerConfig
    voltage_v: float
    goal: GoalState
    transaction: TransactionState


@dataclass(frozen=True, kw_only=True)
class ChargerPlanData:
    """What a charger's plan sensors show."""

    finish: datetime | None
    energy_kwh: float
    next_start: datetime | None
    plan: list[dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class PanelPlanData:
    """What a panel's plan sensor shows: the cars' planned load under the panel."""

    peak_kw: float
    plan: list[dict[str, Any]]


class ChargingPlans:
    """Plan the sessions with goals and cap their share slot by slot."""

    def __init__(
        self,
        hass: HomeAssistant,
        *,
        site: Callable[[], Site],
        candidates: Callable[[], list[PlanCandidate]],
        price_entity: Callable[[], str | None],
        on_change: Callable[[], None],
        solar_forecast: Callable[[], Sequence[str]] = tuple,
        feed_in_price: Callable[[], float | None] = lambda: None,
    ) -> None:
        """Bind to the site's model, its planned sessions, its price and PV sensors."""
        self.hass = hass
        self._site = site
        self._candidates = candidates
        self._price_entity = price_entity
        self._on_change = on_change
        self._solar_forecast = solar_forecast
        self._feed_in_price = feed_in_price
        self._unreadable: set[str] = set()  # forecast entities already warned about
        self._plans: dict[str, SessionPlan] = {}
        self._panels: dict[str, PanelPlanData] = {}
        # The last slot boundary reached: its timer may run ahead of the wall clock.
        self._reached: datetime | None = None
        self._running = False
        self._unsub_timer: CALLBACK_TYPE | None = None
        self._unsub_price: CALLBACK_TYPE | None = None
        self._debouncer = Debouncer(
            hass,
            LOGGER,
            cooldown=PLAN_DEBOUNCE_S,
            immediate=False,
            function=self._async_replan_and_apply,
        )

    # ------------------------------------------------------------- lifecycle

    @callback
    def async_start(self) -> None:
        """Follow the price sensor and plan once."""
        self._running = True
        followed = [*self._price_entities(), *self._solar_forecast()]
        if followed:
            self._unsub_price = async_track_state_change_event(
                self.hass, followed, self._price_changed
            )
        self.replan()

    @callback
    def async_stop(self) -> None:
        """Stop following prices and time."""
        self._running = False
        if self._unsub_price is not None:
            self._unsub_price()
            self._unsub_price = None
        self._cancel_timer()
        self._debouncer.async_cancel()

    # ------------------------------------------------------------- queries

    def cap_a(self, charger_id: str) -> float | None:
        """Return the planned current of now for a charger; None: not planned."""
        plan = self._plans.get(charger_id)
        return None if plan is None else planned_amps(plan, self._now())

    def schedule(self, charger_id: str) -> tuple[tuple[datetime, float], ...]:
        """Return a charger's plan from now on as periods for its charger (or empty).

        The control layer sends it as one multi-period profile where the charger takes
        them, so the plan is followed while Home Assistant is down.
        """
        plan = self._plans.get(charger_id)
        return () if plan is None else plan_schedule(plan, self.now())

    def now(self) -> datetime:
        """Return the time the plans are executed at (a slot boundary once reached)."""
        return self._now()

    def data(self, charger_id: str) -> ChargerPlanData | None:
        """Return what the plan sensors of a charger show (None: no plan)."""
        plan = self._plans.get(charger_id)
        if plan is None:
            return None
        return ChargerPlanData(
            finish=plan.finish,
            energy_kwh=round(plan.energy_kwh, 3) + 0.0,
            next_start=plan.next_start(),
            plan=plan_attribute(plan),
        )

    def panel_data(self, panel_id: str) -> PanelPlanData:
        """Return the planned load under a panel (nothing planned: 0 kW, no periods)."""
        return self._panels.get(panel_id) or PanelPlanData(peak_kw=0.0, plan=[])

    # ------------------------------------------------------------- planning

    def _now(self) -> datetime:
        now = dt_util.utcnow()
        return now if self._reached is None else max(now, self._reached)

    @callback
    def request(self) -> None:
        """Replan soon (debounced): a car, a goal or the prices changed."""
        if not self._running:
            return
        self.hass.async_create_task(self._debouncer.async_call(), eager_start=True)

    @callback
    def _price_changed(self, _event: Event[EventStateChangedData]) -> None:
        self.request()

    async def _async_replan_and_apply(self) -> None:
        if not self._running:
            return
        self.replan()
        self._on_change()

    @callback
    def replan(self) -> None:
        """Plan every session with a goal now and arm the next slot boundary."""
        now = self._now()
        self._cancel_timer()
        self._panels = {}
        self._plans = self._plan(now)
        boundaries = [
            moment
            for plan in self._plans.values()
            if (moment := next_boundary(plan, now)) is not None
        ]
        if boundaries:
            self._unsub_timer = async_track_point_in_utc_time(
                self.hass, self._boundary, min(boundaries)
            )

    def _plan(self, now: datetime) -> dict[str, SessionPlan]:
        requests: list[PlanRequest] = []
        for candidate in self._candidates():
            request = _request(candidate, now)
            if request is not None:
                requests.append(request)
        if not requests:
            return {}
        slots, minutes = plan_slots(self._prices(now), now)
        site = self._site()
        try:
            slots = self._with_solar(site, slots, minutes)
            plan = plan_charging(
                site,
                requests,
                slots,
                slot_minutes=minutes,
                now=now,
                feed_in_price=self._feed_in_price() or 0.0,
            )
        except EngineError as err:
            LOGGER.warning("Charging plan failed: %s", err)
            return {}
        self._panels = panel_plans(plan)
        by_key: dict[Hashable, str] = {
            r.session.transaction_id: r.session.client_id for r in requests
        }
        return {
            by_key[key]: session_plan
            for key, session_plan in plan.sessions.items()
            if key in by_key
        }

    def _prices(self, now: datetime) -> list[PriceSlot]:
        entity_id = self._price_entity()
        state = self.hass.states.get(entity_id) if entity_id else None
        if state is None:
            return []
        return parse_price_forecast(state.attributes, dt_util.as_local(now))

    def _price_entities(self) -> list[str]:
        entity_id = self._price_entity()
        return [] if entity_id is None else [entity_id]

    def _with_solar(
        self, site: Site, slots: list[PlanSlot], minutes: int
    ) -> list[PlanSlot]:
        """Put the solar surplus of the site's forecast entities into the slots."""
        return with_solar_surplus(site, slots, minutes, self._solar())

    def _solar(self) -> list[SolarSlot]:
        """Return the PV forecast of the site's forecast entities (merged, in order)."""
        forecasts: list[list[SolarSlot]] = []
        for entity_id in self._solar_forecast():
            state = self.hass.states.get(entity_id)
            if state is None:
                continue
            forecast = parse_solar_forecast(
                state.attributes, default_tz=dt_util.get_default_time_zone()
            )
            if forecast:
                self._unreadable.discard(entity_id)
            elif entity_id not in self._unreadable:
                self._unreadable.add(entity_id)
                LOGGER.warning(
                    "Solar forecast %s holds no forecast Smart Charge can read; "
                    "the plans count no solar from it",
                    entity_id,
                )
            forecasts.append(forecast)
        return merge_solar_forecasts(forecasts)

    @callback
    def _boundary(self, now: datetime) -> None:
        self._unsub_timer = None
        self._reached = now
        self.replan()
        self._on_change()

    def _cancel_timer(self) -> None:
        if self._unsub_timer is not None:
            self._unsub_timer()
            self._unsub_timer = None


def panel_plans(plan: ChargingPlan) -> dict[str, PanelPlanData]:
    """Return per panel the planned load of the cars under it, slot by slot.

    The periods are `[{start, end, power_kw}]` (kW rounded to W, equal neighbouring
    slots merged), and the peak is the highest of them over the plan's horizon.
    """
    out: dict[str, PanelPlanData] = {}
    for panel_id, panel in plan.panels.items():
        periods: list[dict[str, Any]] = []
        for start, end, load in zip(plan.starts, plan.ends, panel.load_kw, strict=True):
            power = round(max(0.0, load), 3) + 0.0
            if periods and periods[-1]["power_kw"] == power:
                periods[-1]["end"] = end.isoformat()
                continue
            periods.append(
                {"start": start.isoformat(), "end": end.isoformat(), "power_kw": power}
            )
        peak = max((period["power_kw"] for period in periods), default=0.0)
        out[panel_id] = PanelPlanData(peak_kw=peak, plan=periods)
    return out


def _request(candidate: PlanCandidate, now: datetime) -> PlanRequest | None:
    """Return the planner request of a candidate; None when its goal cannot be planned."""
    goal, config = candidate.goal, candidate.config
    if goal.mode == DEFAULT_CHARGING_MODE:
        return None
    departure = goal.departure if goal.departure and goal.departure > now else None
    try:
        engine_goal = ChargingGoal(
            mode=PlanMode(goal.mode),
            energy_kwh=remaining_kwh(goal.energy_kwh, candidate.transaction.energy_wh),
            target_soc_pct=goal.target_soc_pct,
            current_soc_pct=goal.current_soc_pct,
            battery_kwh=goal.battery_kwh,
            departure=departure,
        )
        session = plan_session(
            key=f"{config.charger_id}/{candidate.transaction.connector_id}",
            charger_id=config.charger_id,
            connector_id=candidate.transaction.connector_id,
            phases=config.phases,
            voltage_v=candidate.voltage_v,
            grid_phase=config.grid_phase,
            panel_id=config.panel_id,
            priority=config.priority,
            min_current_a=config.min_current_a,
            max_current_a=config.max_current_a,
        )
    except (EngineError, ValueError) as err:
        LOGGER.debug("Goal of %s is not planned: %s", config.charger_id, err)
        return None
    return PlanRequest(session=session, goal=engine_goal)
