"""The coordinator of one site: it runs the OCPP server and controller and pushes state.

Push, not poll (as `wled`'s coordinator does with its websocket): server and controller
events update the snapshot (`models.SiteData`) with `async_set_updated_data`; there is no
polling interval. The coordinator is the config entry's runtime data, and the entities
act through it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
import ssl
from typing import Any

from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY, ConfigEntry
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryError,
    ConfigEntryNotReady,
    ServiceValidationError,
)
from homeassistant.helpers import (
    device_registry as dr,
    discovery_flow,
    issue_registry as ir,
)
from homeassistant.helpers.event import (
    EventStateChangedData,
    async_track_point_in_utc_time,
    async_track_state_change_event,
)
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from .budgets import PanelBudgets
from .compat import async_get_device
from .const import (
    CALL_TIMEOUT_S,
    CONF_CALL_TIMEOUT,
    CONF_CHARGER_ID,
    CONF_DEAD_BAND_A,
    CONF_EXPORT_LIMIT,
    CONF_FAILSAFE_A,
    CONF_MIN_INCREASE_INTERVAL,
    CONF_PORT,
    CONF_TLS_CERT,
    CONF_TLS_KEY,
    CONF_UNKNOWN_POLICY,
    CONF_VOLTAGE,
    DEFAULT_CHARGING_MODE,
    DEFAULT_FAILSAFE_A,
    DEFAULT_MIN_SOC_PCT,
    DEFAULT_VOLTAGE,
    DOMAIN,
    INCREASE_DEAD_BAND_A,
    LOGGER,
    MIN_INCREASE_INTERVAL_S,
    ROOT_PANEL_ID,
    UnknownChargerPolicy,
)
from .control import ChargerConfig, ControlReport, SiteController
from .csms import (
    BootReceived,
    CentralSystem,
    ChargerDisconnected,
    ChargerEvent,
    ChargerState,
    EVChargingNeeds,
    ServerConfig,
    ServerStartError,
    TransactionStarted,
    TransactionStopped,
)
from .devices import charger_identifier
from .engine import BudgetReason, Panel, Phase, PhasePolicy, Site, Strategy
from .engine.budgets import panel_budget_reason
from .goals import goal_at_start, goal_at_stop, goal_with_soc, soc_value
from .history import SessionHistory
from .models import (
    ChargerData,
    PanelData,
    SiteData,
    charger_status,
    kw_value,
    limit_reason,
    phase_currents,
    rounded,
)
from .plans import ChargingPlans, PlanCandidate
from .repairs import async_control_report, async_port_in_use, port_in_use_id
from .runtime_state import (
    ChargerInfo,
    GoalState,
    RuntimeState,
    RuntimeStore,
    active_limit_kw,
    new_override,
)
from .site_config import BudgetConfig, ChargerSettings, PanelConfig
from .tags import SiteTags
from .tls import server_ssl_context

type SmartChargeConfigEntry = ConfigEntry[SmartChargeCoordinator]


class SmartChargeCoordinator(DataUpdateCoordinator[SiteData]):
    """One site running inside Home Assistant, and the push coordinator of its entities.

    It owns the OCPP server and the controller; their events update the snapshot the
    entities show (`async_set_updated_data`), and the entities act through it.
    """

    config_entry: SmartChargeConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SmartChargeConfigEntry,
        panels: dict[str, PanelConfig],
        chargers: dict[str, ChargerSettings],
    ) -> None:
        """Prepare the site without a polling interval; nothing runs before `async_start`."""
        super().__init__(
            hass, LOGGER, config_entry=entry, name=f"{DOMAIN} {entry.title}"
        )
        self.data = SiteData()
        self.panels = panels
        self.chargers = chargers
        # The entry as it was set up, to tell a subentry added live from a change that
        # needs a reload.
        self.entry_data: dict[str, Any] = dict(entry.data)
        self.options: dict[str, Any] = dict(entry.options)
        self.title = entry.title
        self.store = RuntimeStore(hass, entry.entry_id)
        self.state = RuntimeState()
        self.timers = OverrideTimers(hass, self._override_expired)
        self._asked: set[str] = set()
        # Why a charger's goal is not planned as set (SoC sensor unavailable).
        self._plan_reasons: dict[str, str] = {}
        self._unsub_soc: CALLBACK_TYPE | None = None
        self._configured = frozenset(chargers)
        self.server: CentralSystem | None = None
        self.controller: SiteController | None = None
        # Tags (authorization, local lists) and the session history.
        self.tags = SiteTags(hass, entry)
        self.history = SessionHistory(hass, entry, self.tags)
        self.budgets = PanelBudgets(
            hass,
            entry.entry_id,
            measured_kw=self._measured_kw,
            minimum_kw=self._minimum_kw,
            on_change=self._budgets_changed,
        )
        self.plans = ChargingPlans(
            hass,
            site=self._engine_site,
            candidates=self._plan_candidates,
            price_entity=self._price_entity,
            on_change=self._plan_changed,
            solar_forecast=lambda: self._root_budget().solar_forecast,
            feed_in_price=lambda: self._root_budget().feed_in_price,
        )

    async def _async_update_data(self) -> SiteData:
        """Rebuild the snapshot from the server and the controller (a manual refresh)."""
        return self.site_data()

    # ----------------------------------------------------------------- lifecycle

    async def async_start(self) -> None:
        """Load the state, start the server and the controller."""
        self.state = await self.store.async_load()
        data = self.config_entry.data
        context = None
        if data.get(CONF_TLS_CERT) and data.get(CONF_TLS_KEY):
            try:
                context = await self.hass.async_add_executor_job(
                    server_ssl_context, data[CONF_TLS_CERT], data[CONF_TLS_KEY]
                )
            except (OSError, ssl.SSLError) as err:
                raise ConfigEntryError(
                    translation_domain=DOMAIN,
                    translation_key="tls_invalid",
                    translation_placeholders={"error": str(err)},
                ) from err
        options = self.config_entry.options
        config = ServerConfig(
            port=int(data[CONF_PORT]),
            call_timeout_s=float(options.get(CONF_CALL_TIMEOUT, CALL_TIMEOUT_S)),
            ssl_context=context,
            passwords=self._passwords(),
            reject_unknown=data.get(CONF_UNKNOWN_POLICY) == UnknownChargerPolicy.REJECT,
            known_ids=frozenset(self.chargers),
        )
        self.budgets.configure(self.panels, self._voltage)
        self.server = CentralSystem(
            config, self._on_event, authorize=self.tags.authorize
        )
        await self.tags.async_start(self.server)
        await self.history.async_start()
        self.controller = SiteController(
            self.server,
            self._engine_site(),
            self._charger_configs(),
            on_change=self._refresh,
            on_report=self._on_report,
            session_priority=self.tags.session_priority,
            boot_default_a=float(data.get(CONF_FAILSAFE_A, DEFAULT_FAILSAFE_A)),
            increase_dead_band_a=float(
                options.get(CONF_DEAD_BAND_A, INCREASE_DEAD_BAND_A)
            ),
            min_increase_interval_s=float(
                options.get(CONF_MIN_INCREASE_INTERVAL, MIN_INCREASE_INTERVAL_S)
            ),
            rotation_period_s=60 * float(options.get("rotation_period_min", 15.0)),
            clock=self.plans.now,
        )
        if self.state.controller:
            self.controller.import_state(self.state.controller)
        # Solve once before any charger is back: the budgets and the reserves of the
        # restored sessions show at once, not 0 kW until the first charger event.
        # Nothing is connected yet, so nothing is written.
        await self.controller.rebalance()
        try:
            await self.server.start()
        except ServerStartError as err:
            async_port_in_use(self.hass, self.config_entry.entry_id, data[CONF_PORT])
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="port_in_use",
                translation_placeholders={"port": str(data[CONF_PORT])},
            ) from err
        ir.async_delete_issue(
            self.hass, DOMAIN, port_in_use_id(self.config_entry.entry_id)
        )
        self.budgets.async_start()
        self.plans.async_start()
        self._follow_soc_sensors()
        for panel_id, override in self.state.grid_limits.items():
            self.timers.schedule(panel_id, override.until)
        self._drop_expired_overrides()
        self._refresh()

    async def async_stop(self) -> None:
        """Stop the server (port free when this returns) and save the state."""
        self.timers.cancel_all()
        self.budgets.async_stop()
        self.plans.async_stop()
        self._stop_soc_sensors()
        self._stored_state()
        if self.controller is not None:
            await self.controller.stop()
        if self.server is not None:
            await self.server.stop()
        await self.tags.async_stop()
        await self.history.async_stop()
        await self.store.async_save(self.state)

    def _stored_state(self) -> dict[str, Any]:
        """Return the state to store, with the sessions and capabilities of now."""
        if self.controller is not None:
            self.state.controller = self.controller.export_state()
        return self.state.as_dict()

    # ---------------------------------------------------------------- model

    def _engine_site(self) -> Site:
        """Turn the configured panels, budgets and overrides into the engine's tree."""
        panels = []
        for panel in self.panels.values():
            inputs = self.budgets.inputs(panel.panel_id)
            limit = active_limit_kw(panel, self.state)
            panels.append(
                Panel(
                    id=panel.panel_id,
                    limit_kw=min(limit, inputs.limit_kw) if inputs else limit,
                    phase_limit_a=panel.phase_limit_a,
                    safety_margin_pct=panel.safety_margin_pct,
                    strategy=Strategy(
                        self.state.strategies.get(panel.panel_id, panel.strategy)
                    ),
                    unmanaged_load_kw=inputs.unmanaged_kw if inputs else 0.0,
                    unmanaged_phase_a=inputs.unmanaged_phase_a if inputs else None,
                    parent_id=panel.parent_id,
                    time_of_use_windows=panel.budget.time_of_use,
                    # Solar and tariff budgets name themselves in the limit reasons.
                    budget_reason=BudgetReason(inputs.reason)
                    if inputs
                    else BudgetReason.LIMIT,
                    # V2X: what may go to the grid through the main breaker.
                    export_limit_kw=float(
                        self.config_entry.options.get(CONF_EXPORT_LIMIT, 0.0)
                    )
                    if panel.panel_id == ROOT_PANEL_ID
                    else None,
                )
            )
        return Site(
            panels=panels,
            voltage_v=self._voltage,
            time_zone=self.hass.config.time_zone,
        )

    @property
    def _voltage(self) -> float:
        return float(self.config_entry.data.get(CONF_VOLTAGE, DEFAULT_VOLTAGE))

    def _minimum_kw(self, panel_id: str) -> float:
        return self.controller.minimum_kw(panel_id) if self.controller else 0.0

    def _measured_kw(self, panel_id: str) -> float:
        return self.controller.measured_kw(panel_id) if self.controller else 0.0

    @callback
    def _budgets_changed(self) -> None:
        if self.controller is not None:
            self._apply()

    def _charger_configs(self) -> dict[str, ChargerConfig]:
        """Turn the configured chargers and runtime overrides into controller configs."""
        state = self.state
        return {
            charger_id: ChargerConfig(
                charger_id=charger_id,
                panel_id=charger.panel_id,
                managed=state.managed.get(charger_id, charger.managed),
                phases=charger.phases,
                grid_phase=Phase(charger.grid_phase) if charger.grid_phase else None,
                min_current_a=charger.min_current_a,
                max_current_a=state.max_current_a.get(
                    charger_id, charger.max_current_a
                ),
                priority=state.priorities.get(charger_id, charger.priority),
                profile_purpose=charger.profile_purpose,
                stack_level=charger.stack_level,
                password=charger.password,
                plan_cap_a=self.plans.cap_a(charger_id),
                plan_schedule=self.plans.schedule(charger_id),
                allow_discharge=state.allow_discharge.get(charger_id, False),
                min_soc_pct=state.min_soc_pct.get(charger_id, DEFAULT_MIN_SOC_PCT),
                phase_switching=charger.phase_switching,
                phase_policy=PhasePolicy(
                    state.phase_policies.get(charger_id, PhasePolicy.AUTO)
                ),
            )
            for charger_id, charger in self.chargers.items()
        }

    # ---------------------------------------------------------------- events

    @callback
    def _on_event(self, event: ChargerEvent) -> None:
        """Feed a server event to the controller; offer to adopt unknown chargers."""
        charger_id = event.charger_id
        if charger_id not in self.chargers and charger_id not in self._asked:
            self._asked.add(charger_id)
            LOGGER.info("Unknown charger %s connected", charger_id)
            async_start_discovery(self.hass, self.config_entry, charger_id)
        if isinstance(event, ChargerDisconnected) and charger_id not in self.chargers:
            # An unknown charger is offered again when it connects anew.
            self._asked.discard(charger_id)
        if isinstance(event, BootReceived):
            self._boot_received(event)
        self.tags.handle_event(event, charger_id in self.chargers)
        self.history.handle_event(event)
        if charger_id in self.chargers and isinstance(
            event, TransactionStarted | TransactionStopped
        ):
            self._session_goal(event)
        if isinstance(event, TransactionStarted | TransactionStopped):
            # Sessions survive a crash too, not only a clean restart.
            self.store.async_schedule_save(self._stored_state)
            # A car came or went: the plans change.
            self.plans.request()
        if isinstance(event, EVChargingNeeds) and charger_id in self.chargers:
            self._ev_needs(event)
        if self.controller is not None:
            if isinstance(event, TransactionStarted) and charger_id in self.state.goals:
                # A car with a goal arrives: planned before its first limit goes out.
                self.plans.replan()
                self._note_plans()
                self.controller.update_site(
                    self._engine_site(), self._charger_configs()
                )
            self.controller.handle_event(event)
            # Sessions and car power feed minimum-hold and solar budgets.
            if self.budgets.evaluate(dt_util.utcnow()):
                self._apply()
                return
        self._refresh()

    @callback
    def _on_report(self, report: ControlReport) -> None:
        """Turn what the controller concluded into repairs."""
        async_control_report(self.hass, self.config_entry.entry_id, report)
        self._refresh()

    def _boot_received(self, boot: BootReceived) -> None:
        """Keep what the charger said about itself and show it on its device."""
        info = ChargerInfo(
            vendor=boot.vendor,
            model=boot.model,
            serial=boot.serial,
            firmware=boot.firmware,
        )
        if self.state.charger_info.get(boot.charger_id) == info:
            return
        # Stored with the next save: the next session, any runtime change, or unload.
        self.state.charger_info[boot.charger_id] = info
        if boot.charger_id not in self.chargers:
            return  # its device is made with this info when it is adopted
        device = async_get_device(
            self.hass,
            charger_identifier(self.config_entry.entry_id, boot.charger_id),
            self.config_entry.entry_id,
        )
        if device is not None:
            dr.async_get(self.hass).async_update_device(
                device.id,
                manufacturer=info.vendor,
                model=info.model,
                serial_number=info.serial,
                sw_version=info.firmware,
            )

    def _session_goal(self, event: TransactionStarted | TransactionStopped) -> None:
        """Give a starting session its goal (or the default); end a session's goal."""
        charger_id = event.charger_id
        goal = self.state.goals.get(charger_id)
        if isinstance(event, TransactionStarted):
            state = self.server.chargers.get(charger_id) if self.server else None
            goal = goal_at_start(
                goal,
                self.chargers[charger_id],
                event.transaction_id,
                state.transactions if state is not None else (),
                dt_util.now(),
            )
        else:
            goal = goal_at_stop(goal, event.transaction_id)
        if goal is None:
            self.state.goals.pop(charger_id, None)
        else:
            self.state.goals[charger_id] = goal

    def _ev_needs(self, needs: EVChargingNeeds) -> None:
        """Fill a charger's goal with the departure and energy its car reported."""
        if needs.departure_time is None and not needs.energy_amount_wh:
            return
        goal = self.state.goals.get(needs.charger_id) or GoalState(
            mode=DEFAULT_CHARGING_MODE
        )
        changes: dict[str, Any] = {}
        if needs.departure_time is not None:
            changes["departure"] = needs.departure_time
        if needs.energy_amount_wh:
            changes["energy_kwh"] = needs.energy_amount_wh / 1000.0
            changes["target_soc_pct"] = None
        self._store_goal(needs.charger_id, replace(goal, **changes))

    def charger_info(self, charger_id: str) -> ChargerInfo | None:
        """Return what a charger told about itself at its last boot, if it ever did."""
        return self.state.charger_info.get(charger_id)

    @callback
    def _refresh(self) -> None:
        """Push fresh data to the entities."""
        self.async_set_updated_data(self.site_data())

    def site_data(self, configs: Mapping[str, ChargerConfig] | None = None) -> SiteData:
        """Return what the entities show (`configs`: the chargers' configs, if built)."""
        assert self.server is not None
        assert self.controller is not None
        allocation = self.controller.allocation
        states = self.server.chargers
        panel_data: dict[str, PanelData] = {}
        for panel_id, panel in self.panels.items():
            result = allocation.panels.get(panel_id) if allocation else None
            panel_data[panel_id] = PanelData(
                limit_kw=kw_value(active_limit_kw(panel, self.state)),
                rating_kw=kw_value(panel.limit_kw),
                strategy=self.state.strategies.get(panel_id, panel.strategy),
                allocated_kw=kw_value(result.allocated_kw if result else 0.0),
                measured_kw=kw_value(self.controller.measured_kw(panel_id)),
                headroom_kw=kw_value(result.headroom_kw if result else 0.0),
                budget_kw=kw_value(result.budget_kw if result else 0.0),
                active_sessions=self.controller.session_count(panel_id),
                budget_reason=BudgetReason.PHASE
                if result is not None and result.budget_reason is BudgetReason.PHASE
                else self._budget_reason(panel_id),
                full_phases=tuple(str(p) for p in result.full_phases) if result else (),
                plan=self.plans.panel_data(panel_id),
            )
        if configs is None:
            configs = self._charger_configs()
        charger_data: dict[str, ChargerData] = {}
        for charger_id, charger in self.chargers.items():
            charger_data[charger_id] = self._charger_data(
                charger, configs[charger_id], states.get(charger_id)
            )
        return SiteData(panels=panel_data, chargers=charger_data)

    def _charger_data(
        self,
        charger: ChargerSettings,
        config: ChargerConfig,
        state: ChargerState | None,
    ) -> ChargerData:
        charger_id = charger.charger_id
        # The current transaction of the charger (one per connector; a new one on a
        # connector replaces what ran there before), else connector 1.
        transaction = state.current_transaction() if state is not None else None
        connector = transaction.connector_id if transaction else 1
        meter = state.meter.get(connector) if state else None
        limit = self.controller.limit_for(charger_id) if self.controller else None
        allocated_a = rounded(limit.allocated_amps_per_phase if limit else None, 2)
        why = limit_reason(
            self.controller.limit_reason_for(charger_id) if self.controller else None,
            connected=bool(state and state.connected),
            managed=config.managed,
        )
        reason: str | None = why.reason if why else None
        return ChargerData(
            connected=bool(state and state.connected),
            status=charger_status(state, connector, transaction, allocated_a),
            managed=config.managed,
            priority=int(config.priority),
            max_current_a=config.max_current_a,
            allocated_current_a=allocated_a,
            allocated_power_w=rounded(float(limit.allocated_w) if limit else None, 1),
            power_w=rounded(meter.power_w if meter else None, 1),
            current_a=phase_currents(charger, meter.current_a if meter else ()),
            session_energy_wh=rounded(
                transaction.energy_wh if transaction else None, 1
            ),
            session_started=transaction.started if transaction else None,
            lifetime_energy_wh=rounded(meter.energy_wh if meter else None, 1),
            transaction_id=transaction.transaction_id if transaction else None,
            limit_reason=reason,
            limit_panel=self.panels[why.panel_id].name
            if why and why.panel_id in self.panels
            else None,
            limit_phase=str(why.phase) if why and why.phase else None,
            goal=self.state.goals.get(charger_id),
            plan=self.plans.data(charger_id),
            plan_reason=self._plan_reasons.get(charger_id),
            allow_discharge=config.allow_discharge,
            min_soc_pct=config.min_soc_pct,
            phases_in_use=self.controller.phases_in_use(charger_id, connector)
            if self.controller and transaction
            else None,
            phase_policy=str(config.phase_policy),
        )

    def _budget_reason(self, panel_id: str) -> str:
        """Return why a panel's budget is what it is."""
        panel = self.panels[panel_id]
        override = self.state.grid_limits.get(panel_id)
        return panel_budget_reason(
            override_kw=override.limit_kw if override is not None else None,
            budget=self.budgets.inputs(panel_id),
            strategy=Strategy(self.state.strategies.get(panel_id, panel.strategy)),
            windows=panel.budget.time_of_use,
            now=dt_util.utcnow(),
            time_zone=self.hass.config.time_zone,
        )

    # ------------------------------------------------------------- operations

    @callback
    def _apply(self) -> None:
        """Give the controller the new model, save the state and refresh."""
        assert self.controller is not None
        discharge = self.controller.discharge
        discharge.set_price(*self.budgets.price_and_threshold(ROOT_PANEL_ID))
        discharge.ratings_kw = {pid: p.limit_kw for pid, p in self.panels.items()}
        # Built once: the entities show the configs the controller was just given.
        configs = self._charger_configs()
        self.controller.update_site(self._engine_site(), configs)
        self.store.async_schedule_save(self._stored_state)
        self.async_set_updated_data(self.site_data(configs))

    @callback
    def _plan_changed(self) -> None:
        """Give the controller the caps of the slot of now (a replan ran)."""
        self._note_plans()
        if self.controller is not None:
            self._apply()

    def _note_plans(self) -> None:
        """Record in the history the goal and plan each running session follows."""
        if self.server is None:
            return
        for charger_id, goal in self.state.goals.items():
            state = self.server.chargers.get(charger_id)
            transaction = state.current_transaction() if state is not None else None
            if transaction is None or goal.session != transaction.transaction_id:
                continue
            plan = self.plans.data(charger_id)
            self.history.note_plan(
                charger_id,
                transaction.transaction_id,
                mode=goal.mode,
                energy_kwh=goal.energy_kwh,
                departure=goal.departure,
                planned_kwh=plan.energy_kwh if plan is not None else None,
            )

    def _plan_candidates(self) -> list[PlanCandidate]:
        """Return the connected managed chargers whose running session has a goal."""
        if self.server is None:
            return []
        candidates: list[PlanCandidate] = []
        self._plan_reasons = {}
        for charger_id, config in self._charger_configs().items():
            goal = self.state.goals.get(charger_id)
            state = self.server.chargers.get(charger_id)
            if goal is None or not config.managed or state is None:
                continue
            transaction = state.current_transaction()
            if not state.connected or transaction is None:
                continue
            goal, reason = self._goal_with_soc(charger_id, goal)
            if reason is not None:
                self._plan_reasons[charger_id] = reason
            candidates.append(
                PlanCandidate(
                    config=config,
                    voltage_v=config.voltage_v or self._voltage,
                    goal=goal,
                    transaction=transaction,
                )
            )
        return candidates

    def _root_budget(self) -> BudgetConfig:
        """Return the main breaker's budget settings (the site's solar forecast)."""
        root = self.panels.get(ROOT_PANEL_ID)
        return root.budget if root is not None else BudgetConfig()

    def _goal_with_soc(
        self, charger_id: str, goal: GoalState
    ) -> tuple[GoalState, str | None]:
        """Return the goal to plan with the charger's SoC sensor, if it has one."""
        entity_id = self.chargers[charger_id].soc_sensor
        if entity_id is None:
            return goal, None
        state = self.hass.states.get(entity_id)
        return goal_with_soc(goal, soc_value(state.state if state else None))

    @callback
    def _follow_soc_sensors(self) -> None:
        """Replan when a charger's state-of-charge sensor changes."""
        self._stop_soc_sensors()
        entity_ids = sorted(
            {c.soc_sensor for c in self.chargers.values() if c.soc_sensor}
        )
        if entity_ids:
            self._unsub_soc = async_track_state_change_event(
                self.hass, entity_ids, self._soc_changed
            )

    @callback
    def _soc_changed(self, _event: Event[EventStateChangedData]) -> None:
        self.plans.request()

    @callback
    def _stop_soc_sensors(self) -> None:
        if self._unsub_soc is not None:
            self._unsub_soc()
            self._unsub_soc = None

    def _price_entity(self) -> str | None:
        """Return the tariff sensor the plans price with: the main breaker's first."""
        panels = sorted(self.panels.values(), key=lambda p: p.parent_id is not None)
        return next(
            (p.budget.price_sensor for p in panels if p.budget.price_sensor), None
        )

    def _store_goal(self, charger_id: str, goal: GoalState | None) -> None:
        """Keep (or drop) a charger's goal, save it and replan.

        The goal belongs to the session running now (it ends with it), or with no car
        plugged in to the next session (see `goals`).
        """
        if goal is None:
            self.state.goals.pop(charger_id, None)
        else:
            state = self.server.chargers.get(charger_id) if self.server else None
            transaction = state.current_transaction() if state is not None else None
            self.state.goals[charger_id] = replace(
                goal,
                session=transaction.transaction_id if transaction is not None else None,
            )
        self.store.async_schedule_save(self._stored_state)
        self.plans.request()
        self._refresh()

    async def async_set_goal(self, charger_id: str, goal: GoalState) -> None:
        """Set a charger's charging goal (replaces the one before)."""
        self._store_goal(charger_id, goal)

    async def async_update_goal(self, charger_id: str, **changes: Any) -> None:
        """Change parts of a charger's goal (an entity: mode, energy or departure)."""
        goal = self.state.goals.get(charger_id) or GoalState(mode=DEFAULT_CHARGING_MODE)
        if "energy_kwh" in changes:
            changes["target_soc_pct"] = None
        self._store_goal(charger_id, replace(goal, **changes))

    async def async_clear_goal(self, charger_id: str) -> None:
        """Drop a charger's goal: its car shares as fast as possible again."""
        self._store_goal(charger_id, None)

    @callback
    def async_config_changed(self, *, panels_changed: bool) -> None:
        """Take panels or chargers added (or chargers removed) while running."""
        assert self.server is not None
        # A charger removed while connected would be offered for adoption at its next
        # message, right after the user removed it: it is not offered again before it
        # has disconnected (then at its next connection, or the next restart).
        self._asked |= self._configured.difference(self.chargers)
        self._configured = frozenset(self.chargers)
        if panels_changed:
            self.budgets.async_stop()
            self.budgets.configure(self.panels, self._voltage)
            self.budgets.async_start()
            # The tariff sensor the plans follow may have changed with the panels.
            self.plans.async_stop()
            self.plans.async_start()
        self.server.update_access(
            passwords=self._passwords(), known_ids=frozenset(self.chargers)
        )
        self._follow_soc_sensors()
        self._apply()

    def _passwords(self) -> dict[str, str]:
        return {
            cid: charger.password
            for cid, charger in self.chargers.items()
            if charger.password
        }

    @callback
    def _override_expired(self, panel_id: str) -> None:
        LOGGER.debug("Grid limit override of panel %s ended", panel_id)
        self.state.grid_limits.pop(panel_id, None)
        self._apply()

    def _drop_expired_overrides(self) -> None:
        now = dt_util.utcnow()
        for panel_id, override in list(self.state.grid_limits.items()):
            if override.until is not None and override.until <= now:
                self._override_expired(panel_id)

    async def async_set_grid_limit(
        self, panel_id: str, limit_kw: float, duration: timedelta | None
    ) -> None:
        """Set a panel's limit at runtime, optionally for a while."""
        override = new_override(limit_kw, duration)
        self.state.grid_limits[panel_id] = override
        self.timers.schedule(panel_id, override.until)
        self._apply()

    async def async_clear_grid_limit(self, panel_id: str) -> None:
        """Return a panel to its configured limit."""
        self.timers.cancel(panel_id)
        self.state.grid_limits.pop(panel_id, None)
        self._apply()

    async def async_set_strategy(self, panel_id: str, strategy: str) -> None:
        """Change how a panel shares its power."""
        self.state.strategies[panel_id] = strategy
        self._apply()

    async def async_set_priority(self, charger_id: str, priority: int) -> None:
        """Change a charger's priority."""
        self.state.priorities[charger_id] = priority
        self._apply()

    async def async_set_managed(self, charger_id: str, managed: bool) -> None:
        """Manage a charger or leave it unlimited."""
        self.state.managed[charger_id] = managed
        self._apply()

    async def async_set_allow_discharge(self, charger_id: str, allow: bool) -> None:
        """Allow or forbid a bidirectional charger to give power back (V2X)."""
        self.state.allow_discharge[charger_id] = allow
        self._apply()

    async def async_set_min_soc(self, charger_id: str, soc_pct: float) -> None:
        """Set the state of charge a discharging car never goes below."""
        self.state.min_soc_pct[charger_id] = soc_pct
        self._apply()

    async def async_set_phase_policy(self, charger_id: str, policy: str) -> None:
        """Change how a charger that switches phases is driven (auto, one, three)."""
        self.state.phase_policies[charger_id] = str(PhasePolicy(policy))
        self._apply()

    async def async_set_max_current(self, charger_id: str, current_a: float) -> None:
        """Change a charger's maximum current."""
        self.state.max_current_a[charger_id] = current_a
        self._apply()

    async def async_start_charging(
        self, charger_id: str, id_tag: str, connector_id: int
    ) -> None:
        """Ask a charger to start a transaction."""
        assert self.server is not None
        await self.server.remote_start(charger_id, id_tag, connector_id)

    async def async_stop_charging(self, charger_id: str) -> None:
        """Ask a charger to stop its running transaction(s)."""
        assert self.server is not None
        state = self.server.chargers.get(charger_id)
        if state is None or not state.transactions:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="no_transaction",
                translation_placeholders={"charger_id": charger_id},
            )
        for transaction_id in list(state.transactions):
            await self.server.remote_stop(charger_id, transaction_id)


class OverrideTimers:
    """Expire grid-limit overrides that have a duration."""

    def __init__(self, hass: HomeAssistant, on_expire: Callable[[str], None]) -> None:
        """Call `on_expire(panel_id)` when an override ends."""
        self._hass = hass
        self._on_expire = on_expire
        self._cancel: dict[str, CALLBACK_TYPE] = {}

    @callback
    def schedule(self, panel_id: str, until: datetime | None) -> None:
        """(Re)arm the timer of a panel; None disarms it."""
        self.cancel(panel_id)
        if until is None:
            return

        @callback
        def _expired(_now: datetime) -> None:
            self._cancel.pop(panel_id, None)
            self._on_expire(panel_id)

        self._cancel[panel_id] = async_track_point_in_utc_time(
            self._hass, _expired, until
        )

    @callback
    def cancel(self, panel_id: str) -> None:
        """Disarm the timer of a panel."""
        if (unsub := self._cancel.pop(panel_id, None)) is not None:
            unsub()

    @callback
    def cancel_all(self) -> None:
        """Disarm every timer."""
        for panel_id in list(self._cancel):
            self.cancel(panel_id)


@callback
def async_start_discovery(
    hass: HomeAssistant, entry: ConfigEntry, charger_id: str
) -> None:
    """Offer to adopt an unknown charger, if the site's policy allows it."""
    policy = entry.data.get(CONF_UNKNOWN_POLICY, UnknownChargerPolicy.ACCEPT_AND_ASK)
    if policy != UnknownChargerPolicy.ACCEPT_AND_ASK:
        return
    discovery_flow.async_create_flow(
        hass,
        DOMAIN,
        context={"source": SOURCE_INTEGRATION_DISCOVERY},
        data={"entry_id": entry.entry_id, CONF_CHARGER_ID: charger_id},
    )
