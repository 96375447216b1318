"""Panel budgets that follow Home Assistant entities: load, solar surplus, tariffs.

The arithmetic lives in `engine.budgets`; this module reads entity states, debounces their
changes, re-evaluates on a timer for time-based rules, and raises a repair issue when a
load sensor stays unavailable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from homeassistant.const import (
    ATTR_UNIT_OF_MEASUREMENT,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
)
from homeassistant.core import (
    CALLBACK_TYPE,
    CoreState,
    Event,
    EventStateChangedData,
    HomeAssistant,
    callback,
)
from homeassistant.helpers.debounce import Debouncer
from homeassistant.helpers.event import (
    async_track_state_change_event,
    async_track_utc_time_change,
)
from homeassistant.util import dt as dt_util

from .const import BUDGET_DEBOUNCE_S, BUDGET_TICK_S, LOGGER, STALE_REPAIR_AFTER_S
from .engine import EngineConfigError
from .engine.budgets import (
    BudgetReadings,
    BudgetResult,
    BudgetSources,
    SolarHysteresis,
    panel_budget,
    parse_price_forecast,
    power_kw,
    tariff_allows,
)
from .repairs import async_load_sensor_unavailable
from .site_config import BudgetConfig, PanelConfig


@dataclass(kw_only=True)
class _PanelState:
    config: BudgetConfig
    sources: BudgetSources
    solar: SolarHysteresis | None = None
    stale_since: datetime | None = None
    inputs: BudgetResult | None = None
    repaired: bool = field(default=False)
    # The unavailable sensor was logged (once per outage, once Home Assistant runs).
    warned: bool = False


class PanelBudgets:
    """Evaluate every panel's budget sources and report changes."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry_id: str,
        *,
        measured_kw: Callable[[str], float],
        minimum_kw: Callable[[str], float],
        on_change: Callable[[], None],
    ) -> None:
        """Bind to the site's measurements and its change callback."""
        self.hass = hass
        self.entry_id = entry_id
        self._measured_kw = measured_kw
        self._minimum_kw = minimum_kw
        self._on_change = on_change
        self._panels: dict[str, _PanelState] = {}
        self._unsubs: list[CALLBACK_TYPE] = []
        self._debouncer = Debouncer(
            hass,
            LOGGER,
            cooldown=BUDGET_DEBOUNCE_S,
            immediate=False,
            function=self._async_evaluate_and_notify,
        )

    def configure(self, panels: Mapping[str, PanelConfig], voltage_v: float) -> None:
        """Set the panels whose budgets follow entities (or have time-of-use windows)."""
        self._panels = {
            panel_id: _PanelState(
                config=panel.budget,
                sources=BudgetSources(
                    rating_kw=panel.limit_kw,
                    safety_margin_pct=panel.safety_margin_pct,
                    voltage_v=voltage_v,
                    phase_limit_a=panel.phase_limit_a,
                    load_power=panel.budget.load_sensor is not None,
                    load_phases=len(panel.budget.load_currents),
                    solar_mode=panel.budget.solar_mode,
                    solar_grid=panel.budget.grid_sensor is not None,
                    tariff=panel.budget.tariff_mode != "off"
                    and panel.budget.price_sensor is not None,
                    tariff_hold_minimum=panel.budget.tariff_hold_minimum,
                ),
                solar=SolarHysteresis(
                    panel.budget.solar_start_kw,
                    timedelta(seconds=panel.budget.solar_start_delay_s),
                    timedelta(seconds=panel.budget.solar_stop_delay_s),
                )
                if panel.budget.solar_mode != "off"
                else None,
            )
            for panel_id, panel in panels.items()
            if panel.budget.active or panel.budget.time_of_use
        }
        self.evaluate(dt_util.utcnow())

    @callback
    def async_start(self) -> None:
        """Follow the configured entities and tick for time-based rules."""
        entities = sorted(
            set().union(*(p.config.entities for p in self._panels.values()))
        )
        if entities:
            self._unsubs.append(
                async_track_state_change_event(self.hass, entities, self._state_changed)
            )
        if self._panels:
            self._unsubs.append(
                # A wall-clock pattern (not an interval), so `now` is the tick's time.
                async_track_utc_time_change(
                    self.hass, self._tick, second=f"/{BUDGET_TICK_S}"
                )
            )

    @callback
    def async_stop(self) -> None:
        """Stop following entities and time."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        self._debouncer.async_cancel()

    def price_and_threshold(
        self, first: str | None = None
    ) -> tuple[float | None, float | None]:
        """Return the price now and the tariff threshold (V2X: discharge at or above).

        From the panel `first` when its tariff is in threshold mode with a price
        sensor, else from the first panel that has one; (None, None) without any.
        """
        states = sorted(self._panels.items(), key=lambda item: item[0] != first)
        for _, state in states:
            config = state.config
            if config.tariff_mode == "threshold" and config.price_sensor:
                return self._number(config.price_sensor), config.price_threshold
        return None, None

    def inputs(self, panel_id: str) -> BudgetResult | None:
        """Return the inputs in force for a panel, or None when it has no sources."""
        state = self._panels.get(panel_id)
        return state.inputs if state else None

    # ------------------------------------------------------------- evaluation

    @callback
    def _state_changed(self, event: Event[EventStateChangedData]) -> None:
        self.hass.async_create_task(self._debouncer.async_call(), eager_start=True)

    @callback
    def _tick(self, now: datetime) -> None:
        self._notify_if(self.evaluate(now))

    async def _async_evaluate_and_notify(self) -> None:
        self._notify_if(self.evaluate(dt_util.utcnow()))

    def _notify_if(self, changed: bool) -> None:
        if changed:
            self._on_change()

    def evaluate(self, now: datetime) -> bool:
        """Re-read every source; return whether any panel's inputs changed."""
        changed = False
        for panel_id, state in self._panels.items():
            inputs = self._evaluate_panel(panel_id, state, now)
            if inputs != state.inputs:
                LOGGER.debug("Budget of panel %s: %s", panel_id, inputs)
                state.inputs = inputs
                changed = True
        return changed

    def _evaluate_panel(
        self, panel_id: str, state: _PanelState, now: datetime
    ) -> BudgetResult:
        """Read the panel's sensors; the engine turns the readings into its budget."""
        config = state.config
        load_kw = (
            self._power_kw(config.load_sensor, config.load_invert)
            if config.load_sensor
            else None
        )
        currents = tuple(self._number(entity) for entity in config.load_currents)
        if config.load_sensor or config.load_currents:
            unavailable = [config.load_sensor] if load_kw is None else []
            unavailable += [
                e
                for e, c in zip(config.load_currents, currents, strict=True)
                if c is None
            ]
            self._track_stale(
                panel_id, state, [e for e in unavailable if e is not None], now
            )
        readings = BudgetReadings(
            load_kw=load_kw,
            load_phase_a=currents,
            grid_kw=self._power_kw(config.grid_sensor, config.grid_invert)
            if state.solar is not None and config.grid_sensor
            else None,
            cars_kw=self._measured_kw(panel_id) if state.solar is not None else 0.0,
            sessions_minimum_kw=self._minimum_kw(panel_id),
            tariff_allows=self._tariff_allows(config, now)
            if state.sources.tariff
            else True,
        )
        return panel_budget(
            state.sources, readings, solar=state.solar, now=now, previous=state.inputs
        )

    def _number(self, entity_id: str) -> float | None:
        state = self.hass.states.get(entity_id)
        if state is None or state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
            return None
        try:
            return float(state.state)
        except ValueError:
            return None

    def _power_kw(self, entity_id: str, invert: bool) -> float | None:
        state = self.hass.states.get(entity_id)
        if state is None or state.state in (STATE_UNAVAILABLE, STATE_UNKNOWN):
            return None
        try:
            return power_kw(
                float(state.state),
                state.attributes.get(ATTR_UNIT_OF_MEASUREMENT),
                invert=invert,
            )
        except (ValueError, EngineConfigError):
            return None

    def _tariff_allows(self, config: BudgetConfig, now: datetime) -> bool:
        state = self.hass.states.get(config.price_sensor or "")
        if state is None:
            return True
        try:
            price: float | None = float(state.state)
        except ValueError:
            price = None
        local = dt_util.as_local(now)
        return tariff_allows(
            now=local,
            current_price=price,
            slots=parse_price_forecast(state.attributes, local),
            threshold=config.price_threshold
            if config.tariff_mode == "threshold"
            else None,
            cheapest_hours=config.cheapest_hours
            if config.tariff_mode == "cheapest"
            else None,
            departure=config.departure,
        )

    def _track_stale(
        self,
        panel_id: str,
        state: _PanelState,
        unavailable: Sequence[str],
        now: datetime,
    ) -> None:
        """Raise a repair issue when a load sensor stays unavailable."""
        if not unavailable:
            state.stale_since = None
            state.warned = False
            if state.repaired:
                async_load_sensor_unavailable(self.hass, self.entry_id, panel_id, None)
                state.repaired = False
            return
        entity_id = ", ".join(unavailable)
        if state.stale_since is None:
            state.stale_since = now
        if not state.warned and self.hass.state is CoreState.running:
            # While Home Assistant starts, the sensor's integration may not be loaded
            # yet: the full rating counts as used, but that is not worth a warning.
            state.warned = True
            LOGGER.warning(
                "Load sensor %s unavailable: counting the full rating as used",
                entity_id,
            )
        if not state.repaired and now - state.stale_since >= timedelta(
            seconds=STALE_REPAIR_AFTER_S
        ):
            async_load_sensor_unavailable(self.hass, self.entry_id, panel_id, entity_id)
            state.repaired = True
