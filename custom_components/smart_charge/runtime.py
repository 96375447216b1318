"""The HA side of one site: starts the OCPP server and controller, maps calls and events."""

from __future__ import annotations

from datetime import timedelta
import ssl
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import (
    ConfigEntryError,
    ConfigEntryNotReady,
    ServiceValidationError,
)
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.util import dt as dt_util

from .budgets import PanelBudgets
from .compat import async_get_device
from .const import (
    CALL_TIMEOUT_S,
    CONF_CALL_TIMEOUT,
    CONF_DEAD_BAND_A,
    CONF_FAILSAFE_A,
    CONF_MIN_INCREASE_INTERVAL,
    CONF_PORT,
    CONF_TLS_CERT,
    CONF_TLS_KEY,
    CONF_UNKNOWN_POLICY,
    CONF_VOLTAGE,
    DEFAULT_FAILSAFE_A,
    DEFAULT_VOLTAGE,
    DOMAIN,
    INCREASE_DEAD_BAND_A,
    LOGGER,
    MIN_INCREASE_INTERVAL_S,
    UnknownChargerPolicy,
)
from .control import (
    CapabilitiesLearned,
    ChargerCompliant,
    ChargerConfig,
    ChargerNonCompliant,
    ChargerRejectsProfiles,
    ControlReport,
    SiteController,
)
from .coordinator import (
    ChargerData,
    OverrideTimers,
    PanelData,
    SiteData,
    SmartChargeConfigEntry,
    SmartChargeCoordinator,
    active_limit_kw,
    async_start_discovery,
    new_override,
)
from .csms import (
    BootReceived,
    CentralSystem,
    ChargerEvent,
    ChargerState,
    ServerConfig,
    ServerStartError,
    TransactionStarted,
    TransactionStopped,
)
from .engine import (
    BudgetReason,
    LimitReason,
    Panel,
    Phase,
    SessionLimit,
    Site,
    Strategy,
)
from .engine.budgets import REASON_LIMIT, REASON_OVERRIDE, REASON_TIME_OF_USE
from .engine.model import get_zone, time_of_use_multiplier
from .entity import charger_identifier
from .runtime_state import RuntimeState, RuntimeStore
from .site_config import ChargerSettings, PanelConfig
from .tls import server_ssl_context


class SiteRuntime:
    """One configured site running inside Home Assistant."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: SmartChargeConfigEntry,
        coordinator: SmartChargeCoordinator,
        panels: dict[str, PanelConfig],
        chargers: dict[str, ChargerSettings],
    ) -> None:
        """Prepare the runtime; nothing runs before `async_start`."""
        self.hass = hass
        self.entry = entry
        self.coordinator = coordinator
        self.panels = panels
        self.chargers = chargers
        self.store = RuntimeStore(hass, entry.entry_id)
        self.state = RuntimeState()
        self.timers = OverrideTimers(hass, self._override_expired)
        self._asked: set[str] = set()
        self.server: CentralSystem | None = None
        self.controller: SiteController | None = None
        self.budgets = PanelBudgets(
            hass,
            entry.entry_id,
            measured_kw=self._measured_kw,
            minimum_kw=self._minimum_kw,
            on_change=self._budgets_changed,
        )

    # ----------------------------------------------------------------- lifecycle

    async def async_start(self) -> None:
        """Load the state, start the server and the controller."""
        self.state = await self.store.async_load()
        data = self.entry.data
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
        options = self.entry.options
        config = ServerConfig(
            port=int(data[CONF_PORT]),
            call_timeout_s=float(options.get(CONF_CALL_TIMEOUT, CALL_TIMEOUT_S)),
            ssl_context=context,
            passwords=self._passwords(),
            reject_unknown=data.get(CONF_UNKNOWN_POLICY) == UnknownChargerPolicy.REJECT,
            known_ids=frozenset(self.chargers),
        )
        self.budgets.configure(self.panels, self._voltage)
        self.server = CentralSystem(config, self._on_event)
        self.controller = SiteController(
            self.server,
            self._engine_site(),
            self._charger_configs(),
            on_change=self._refresh,
            on_report=self._on_report,
            boot_default_a=float(data.get(CONF_FAILSAFE_A, DEFAULT_FAILSAFE_A)),
            increase_dead_band_a=float(
                options.get(CONF_DEAD_BAND_A, INCREASE_DEAD_BAND_A)
            ),
            min_increase_interval_s=float(
                options.get(CONF_MIN_INCREASE_INTERVAL, MIN_INCREASE_INTERVAL_S)
            ),
        )
        if self.state.controller:
            self.controller.import_state(self.state.controller)
        try:
            await self.server.start()
        except ServerStartError as err:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                f"port_in_use_{self.entry.entry_id}",
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key="port_in_use",
                translation_placeholders={"port": str(data[CONF_PORT])},
            )
            raise ConfigEntryNotReady(
                translation_domain=DOMAIN,
                translation_key="port_in_use",
                translation_placeholders={"port": str(data[CONF_PORT])},
            ) from err
        ir.async_delete_issue(self.hass, DOMAIN, f"port_in_use_{self.entry.entry_id}")
        self.budgets.async_start()
        for panel_id, override in self.state.grid_limits.items():
            self.timers.schedule(panel_id, override.until)
        self._drop_expired_overrides()
        self._refresh()

    async def async_stop(self) -> None:
        """Stop the server (port free when this returns) and save the state."""
        self.timers.cancel_all()
        self.budgets.async_stop()
        self._stored_state()
        if self.controller is not None:
            await self.controller.stop()
        if self.server is not None:
            await self.server.stop()
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
                )
            )
        return Site(
            panels=panels,
            voltage_v=self._voltage,
            time_zone=self.hass.config.time_zone,
        )

    @property
    def _voltage(self) -> float:
        return float(self.entry.data.get(CONF_VOLTAGE, DEFAULT_VOLTAGE))

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
            async_start_discovery(self.hass, self.entry, charger_id)
        if isinstance(event, BootReceived) and charger_id in self.chargers:
            self._update_device(event)
        if isinstance(event, TransactionStarted | TransactionStopped):
            # Sessions survive a crash too, not only a clean restart.
            self.store.async_schedule_save(self._stored_state)
        if self.controller is not None:
            self.controller.handle_event(event)
            # Sessions and car power feed minimum-hold and solar budgets.
            if self.budgets.evaluate(dt_util.utcnow()):
                self._apply()
                return
        self._refresh()

    @callback
    def _on_report(self, report: ControlReport) -> None:
        """Turn what the controller concluded into repairs."""
        charger_id = report.charger_id
        entry_id = self.entry.entry_id
        match report:
            case ChargerRejectsProfiles():
                ir.async_create_issue(
                    self.hass,
                    DOMAIN,
                    f"charger_rejects_profiles_{entry_id}_{charger_id}",
                    is_fixable=False,
                    severity=ir.IssueSeverity.WARNING,
                    translation_key="charger_rejects_profiles",
                    translation_placeholders={"charger_id": charger_id},
                )
            case CapabilitiesLearned(capabilities=capabilities) if (
                capabilities.smart_charging and not capabilities.rejects_profiles
            ):
                ir.async_delete_issue(
                    self.hass,
                    DOMAIN,
                    f"charger_rejects_profiles_{entry_id}_{charger_id}",
                )
            case ChargerNonCompliant():
                ir.async_create_issue(
                    self.hass,
                    DOMAIN,
                    f"charger_non_compliant_{entry_id}_{charger_id}",
                    is_fixable=False,
                    severity=ir.IssueSeverity.WARNING,
                    translation_key="charger_non_compliant",
                    translation_placeholders={
                        "charger_id": charger_id,
                        "connector_id": str(report.connector_id),
                        "limit": f"{report.limit_a:.1f}",
                        "seen": f"{report.seen_a:.1f}",
                        "source": report.source,
                    },
                )
            case ChargerCompliant():
                ir.async_delete_issue(
                    self.hass, DOMAIN, f"charger_non_compliant_{entry_id}_{charger_id}"
                )
            case _:
                pass
        self._refresh()

    def _update_device(self, boot: BootReceived) -> None:
        """Show what the charger said about itself on its device."""
        registry = dr.async_get(self.hass)
        device = async_get_device(
            self.hass,
            charger_identifier(self.entry.entry_id, boot.charger_id),
            self.entry.entry_id,
        )
        if device is not None:
            registry.async_update_device(
                device.id,
                manufacturer=boot.vendor,
                model=boot.model,
                serial_number=boot.serial,
                sw_version=boot.firmware,
            )

    @callback
    def _refresh(self) -> None:
        """Push fresh data to the entities."""
        self.coordinator.async_set_updated_data(self.site_data())

    def site_data(self) -> SiteData:
        """Return what the entities show."""
        assert self.server is not None
        assert self.controller is not None
        allocation = self.controller.allocation
        states = self.server.chargers
        panel_data: dict[str, PanelData] = {}
        for panel_id, panel in self.panels.items():
            result = allocation.panels.get(panel_id) if allocation else None
            panel_data[panel_id] = PanelData(
                limit_kw=active_limit_kw(panel, self.state),
                rating_kw=panel.limit_kw,
                strategy=self.state.strategies.get(panel_id, panel.strategy),
                allocated_kw=result.allocated_kw if result else 0.0,
                measured_kw=self.controller.measured_kw(panel_id),
                headroom_kw=result.headroom_kw if result else 0.0,
                budget_kw=result.budget_kw if result else 0.0,
                active_sessions=self.controller.session_count(panel_id),
                budget_reason=BudgetReason.PHASE
                if result is not None and result.budget_reason is BudgetReason.PHASE
                else self._budget_reason(panel_id),
                full_phases=tuple(str(p) for p in result.full_phases) if result else (),
            )
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
        connector = 1
        transaction = None
        if state is not None and state.transactions:
            transaction = next(iter(state.transactions.values()))
            connector = transaction.connector_id
        meter = state.meter.get(connector) if state else None
        currents = tuple(meter.current_a) if meter else ()
        limit = self.controller.limit_for(charger_id) if self.controller else None
        why = _limit_reason(
            self.controller.limit_reason_for(charger_id) if self.controller else None,
            connected=bool(state and state.connected),
            managed=config.managed,
        )
        return ChargerData(
            connected=bool(state and state.connected),
            status=_status_key(state, connector),
            managed=config.managed,
            priority=int(config.priority),
            max_current_a=config.max_current_a,
            allocated_current_a=limit.allocated_amps_per_phase if limit else None,
            allocated_power_w=float(limit.allocated_w) if limit else None,
            power_w=meter.power_w if meter else None,
            current_a=(
                currents[0] if len(currents) > 0 else None,
                currents[1] if len(currents) > 1 else None,
                currents[2] if len(currents) > 2 else None,
            ),
            session_energy_wh=transaction.energy_wh if transaction else None,
            lifetime_energy_wh=meter.energy_wh if meter else None,
            transaction_id=transaction.transaction_id if transaction else None,
            limit_reason=why.reason if why else None,
            limit_panel=self.panels[why.panel_id].name
            if why and why.panel_id in self.panels
            else None,
            limit_phase=str(why.phase) if why and why.phase else None,
        )

    def _budget_reason(self, panel_id: str) -> str:
        """Return why a panel's budget is what it is."""
        inputs = self.budgets.inputs(panel_id)
        override = self.state.grid_limits.get(panel_id)
        if override is not None and (
            inputs is None or override.limit_kw <= inputs.limit_kw
        ):
            return REASON_OVERRIDE
        if inputs is not None and inputs.reason != REASON_LIMIT:
            return inputs.reason
        panel = self.panels[panel_id]
        strategy = self.state.strategies.get(panel_id, panel.strategy)
        if (
            strategy == Strategy.TIME_OF_USE
            and time_of_use_multiplier(
                panel.budget.time_of_use,
                dt_util.utcnow(),
                get_zone(self.hass.config.time_zone),
            )
            < 1
        ):
            return REASON_TIME_OF_USE
        return REASON_LIMIT

    # ------------------------------------------------------------- operations

    @callback
    def _apply(self) -> None:
        """Give the controller the new model, save the state and refresh."""
        assert self.controller is not None
        self.controller.update_site(self._engine_site(), self._charger_configs())
        self.store.async_schedule_save(self._stored_state)
        self._refresh()

    @callback
    def async_config_changed(self, *, panels_changed: bool) -> None:
        """Take panels or chargers added (or chargers removed) while running."""
        assert self.server is not None
        if panels_changed:
            self.budgets.async_stop()
            self.budgets.configure(self.panels, self._voltage)
            self.budgets.async_start()
        self.server.update_access(
            passwords=self._passwords(), known_ids=frozenset(self.chargers)
        )
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


def _limit_reason(
    limit: SessionLimit | None, *, connected: bool, managed: bool
) -> SessionLimit | None:
    """Return the engine's reason for the session; without one, offline or not managed."""
    if limit is not None:
        return limit
    if not connected:
        return SessionLimit(reason=LimitReason.OFFLINE)
    if not managed:
        return SessionLimit(reason=LimitReason.NOT_MANAGED)
    return None  # no car: nothing is limited


def _status_key(state: ChargerState | None, connector: int) -> str:
    """Return the status sensor option of a connector."""
    if state is None or not state.connected:
        return "unavailable"
    raw = state.connectors.get(connector)
    status = raw.status if raw else "Unknown"
    return {
        "SuspendedEV": "suspended_ev",
        "SuspendedEVSE": "suspended_evse",
    }.get(status, status.lower())
