"""Config flow for Smart Charge: the site entry, panel and charger subentries."""

from __future__ import annotations

from collections.abc import Mapping
import errno
from pathlib import Path
import socket
import ssl
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import selector
import voluptuous as vol

from .const import (
    CALL_TIMEOUT_S,
    CONF_CALL_TIMEOUT,
    CONF_CHARGER_ID,
    CONF_CHEAPEST_HOURS,
    CONF_DEAD_BAND_A,
    CONF_DEPARTURE,
    CONF_FAILSAFE_A,
    CONF_GRID_INVERT,
    CONF_GRID_PHASE,
    CONF_GRID_SENSOR,
    CONF_LIMIT_KW,
    CONF_LOAD_CURRENTS,
    CONF_LOAD_INVERT,
    CONF_LOAD_SENSOR,
    CONF_MAIN_BREAKER_KW,
    CONF_MAIN_PHASE_LIMIT_A,
    CONF_MANAGED,
    CONF_MAX_CURRENT,
    CONF_MIN_CURRENT,
    CONF_MIN_INCREASE_INTERVAL,
    CONF_NAME,
    CONF_PANEL,
    CONF_PARENT,
    CONF_PASSWORD,
    CONF_PHASE_LIMIT_A,
    CONF_PHASES,
    CONF_PORT,
    CONF_PRICE_SENSOR,
    CONF_PRICE_THRESHOLD,
    CONF_PRIORITY,
    CONF_PROFILE_PURPOSE,
    CONF_SAFETY_MARGIN,
    CONF_SOLAR_MODE,
    CONF_SOLAR_START_DELAY,
    CONF_SOLAR_START_KW,
    CONF_SOLAR_STOP_DELAY,
    CONF_STACK_LEVEL,
    CONF_STRATEGY,
    CONF_TARIFF_HOLD_MINIMUM,
    CONF_TARIFF_MODE,
    CONF_TLS_CERT,
    CONF_TLS_KEY,
    CONF_TOU_WINDOWS,
    CONF_UNKNOWN_POLICY,
    CONF_VOLTAGE,
    DEFAULT_FAILSAFE_A,
    DEFAULT_MAIN_BREAKER_KW,
    DEFAULT_MAX_CURRENT,
    DEFAULT_MIN_CURRENT,
    DEFAULT_PHASES,
    DEFAULT_PORT,
    DEFAULT_PRIORITY,
    DEFAULT_SAFETY_MARGIN,
    DEFAULT_SOLAR_START_DELAY,
    DEFAULT_SOLAR_START_KW,
    DEFAULT_SOLAR_STOP_DELAY,
    DEFAULT_STACK_LEVEL,
    DEFAULT_VOLTAGE,
    DOMAIN,
    GRID_PHASES,
    INCREASE_DEAD_BAND_A,
    MIN_INCREASE_INTERVAL_S,
    ROOT_PANEL_ID,
    SOLAR_MODES,
    STRATEGIES,
    SUBENTRY_CHARGER,
    SUBENTRY_PANEL,
    TARIFF_MODES,
    ProfilePurpose,
    UnknownChargerPolicy,
)
from .engine import EngineConfigError
from .engine.budgets import parse_time_of_use
from .site_config import chargers_of, panel_from_data, panels_of, tree_error
from .tag_config import CONF_TAG_ID, SUBENTRY_TAG
from .tag_flow import TAG_OPTIONS_SCHEMA, TagDiscoveryMixin, TagSubentryFlow
from .tls import server_ssl_context

SECTION_BUDGET = "budget"
BUDGET_FIELDS = (
    CONF_LOAD_SENSOR,
    CONF_LOAD_INVERT,
    *CONF_LOAD_CURRENTS,
    CONF_SOLAR_MODE,
    CONF_GRID_SENSOR,
    CONF_GRID_INVERT,
    CONF_SOLAR_START_KW,
    CONF_SOLAR_START_DELAY,
    CONF_SOLAR_STOP_DELAY,
    CONF_PRICE_SENSOR,
    CONF_TARIFF_MODE,
    CONF_PRICE_THRESHOLD,
    CONF_CHEAPEST_HOURS,
    CONF_DEPARTURE,
    CONF_TARIFF_HOLD_MINIMUM,
    CONF_TOU_WINDOWS,
)


def _port_is_free(port: int) -> bool:
    """Return whether a TCP port can be bound on all interfaces (blocking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


async def async_validate_port(hass: HomeAssistant, port: int) -> str | None:
    """Return the error key for an unusable port, or None."""
    if not 1 <= port <= 65535:
        return "invalid_port"
    if not await hass.async_add_executor_job(_port_is_free, port):
        return "port_in_use"
    return None


def _number(
    minimum: float, maximum: float, step: float, unit: str | None = None
) -> selector.NumberSelector:
    config = selector.NumberSelectorConfig(
        min=minimum, max=maximum, step=step, mode=selector.NumberSelectorMode.BOX
    )
    if unit is not None:
        config["unit_of_measurement"] = unit
    return selector.NumberSelector(config)


def _choice(options: list[str], key: str) -> selector.SelectSelector:
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=options,
            translation_key=key,
            mode=selector.SelectSelectorMode.DROPDOWN,
        )
    )


SITE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_NAME, default="Smart Charge"): selector.TextSelector(),
        vol.Required(CONF_PORT, default=DEFAULT_PORT): _number(0, 99999, 1),
        vol.Required(CONF_MAIN_BREAKER_KW, default=DEFAULT_MAIN_BREAKER_KW): _number(
            0, 100000, 0.1, "kW"
        ),
        vol.Optional(CONF_MAIN_PHASE_LIMIT_A): _number(0, 10000, 1, "A"),
        vol.Required(CONF_PHASES, default=str(DEFAULT_PHASES)): _choice(
            ["1", "3"], CONF_PHASES
        ),
        vol.Required(CONF_VOLTAGE, default=DEFAULT_VOLTAGE): _number(100, 400, 1, "V"),
        vol.Required(CONF_FAILSAFE_A, default=DEFAULT_FAILSAFE_A): _number(
            0, 80, 0.1, "A"
        ),
        vol.Required(
            CONF_UNKNOWN_POLICY, default=UnknownChargerPolicy.ACCEPT_AND_ASK
        ): _choice([p.value for p in UnknownChargerPolicy], CONF_UNKNOWN_POLICY),
        vol.Optional(CONF_TLS_CERT): selector.TextSelector(),
        vol.Optional(CONF_TLS_KEY): selector.TextSelector(),
    }
)


def _site_name(user_input: Mapping[str, Any]) -> str:
    """Return the site's name (the entry title); blank gives the default."""
    return str(user_input.get(CONF_NAME) or "").strip() or "Smart Charge"


def _files_exist(*paths: str) -> bool:
    """Return whether every path is a readable file (blocking)."""
    return all(Path(path).is_file() for path in paths)


async def _validate_site(
    hass: HomeAssistant, user_input: dict[str, Any], current_port: int | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Normalise the site form and return (data, errors)."""
    data: dict[str, Any] = {
        CONF_PORT: int(user_input[CONF_PORT]),
        CONF_MAIN_BREAKER_KW: float(user_input[CONF_MAIN_BREAKER_KW]),
        CONF_PHASES: int(user_input.get(CONF_PHASES, DEFAULT_PHASES)),
        CONF_VOLTAGE: float(user_input.get(CONF_VOLTAGE, DEFAULT_VOLTAGE)),
        CONF_FAILSAFE_A: float(user_input.get(CONF_FAILSAFE_A, DEFAULT_FAILSAFE_A)),
        CONF_UNKNOWN_POLICY: user_input.get(
            CONF_UNKNOWN_POLICY, UnknownChargerPolicy.ACCEPT_AND_ASK
        ),
    }
    if user_input.get(CONF_MAIN_PHASE_LIMIT_A):
        data[CONF_MAIN_PHASE_LIMIT_A] = float(user_input[CONF_MAIN_PHASE_LIMIT_A])
    budget, errors = _budget_data(user_input)
    data.update(budget)
    if data[CONF_PORT] != current_port and (
        error := await async_validate_port(hass, data[CONF_PORT])
    ):
        errors[CONF_PORT] = error
    if data[CONF_MAIN_BREAKER_KW] <= 0:
        errors[CONF_MAIN_BREAKER_KW] = "invalid_rating"
    cert, key = user_input.get(CONF_TLS_CERT), user_input.get(CONF_TLS_KEY)
    if cert or key:
        if not (cert and key):
            errors[CONF_TLS_KEY if cert else CONF_TLS_CERT] = "tls_pair"
        elif not await hass.async_add_executor_job(_files_exist, cert, key):
            errors[CONF_TLS_CERT] = "tls_file_missing"
        else:
            try:
                await hass.async_add_executor_job(server_ssl_context, cert, key)
            except (OSError, ssl.SSLError):
                errors[CONF_TLS_CERT] = "tls_invalid"
            else:
                data[CONF_TLS_CERT], data[CONF_TLS_KEY] = cert, key
    return data, errors


def _sensor() -> selector.EntitySelector:
    return selector.EntitySelector(selector.EntitySelectorConfig(domain="sensor"))


BUDGET_SCHEMA = vol.Schema(
    {
        vol.Optional(CONF_LOAD_SENSOR): _sensor(),
        vol.Optional(CONF_LOAD_INVERT, default=False): selector.BooleanSelector(),
        **{vol.Optional(key): _sensor() for key in CONF_LOAD_CURRENTS},
        vol.Optional(CONF_SOLAR_MODE, default="off"): _choice(
            list(SOLAR_MODES), CONF_SOLAR_MODE
        ),
        vol.Optional(CONF_GRID_SENSOR): _sensor(),
        vol.Optional(CONF_GRID_INVERT, default=False): selector.BooleanSelector(),
        vol.Optional(CONF_SOLAR_START_KW, default=DEFAULT_SOLAR_START_KW): _number(
            0, 1000, 0.1, "kW"
        ),
        vol.Optional(
            CONF_SOLAR_START_DELAY, default=DEFAULT_SOLAR_START_DELAY
        ): _number(0, 3600, 1, "s"),
        vol.Optional(CONF_SOLAR_STOP_DELAY, default=DEFAULT_SOLAR_STOP_DELAY): _number(
            0, 3600, 1, "s"
        ),
        vol.Optional(CONF_PRICE_SENSOR): _sensor(),
        vol.Optional(CONF_TARIFF_MODE, default="off"): _choice(
            list(TARIFF_MODES), CONF_TARIFF_MODE
        ),
        vol.Optional(CONF_PRICE_THRESHOLD): _number(-1000, 1000, 0.001),
        vol.Optional(CONF_CHEAPEST_HOURS): _number(0, 24, 0.25, "h"),
        vol.Optional(CONF_DEPARTURE): selector.TimeSelector(),
        vol.Optional(
            CONF_TARIFF_HOLD_MINIMUM, default=False
        ): selector.BooleanSelector(),
        vol.Optional(CONF_TOU_WINDOWS): selector.TextSelector(),
    }
)


def _budget_section() -> section:
    return section(BUDGET_SCHEMA, {"collapsed": True})


def _site_schema() -> vol.Schema:
    return SITE_SCHEMA.extend({vol.Optional(SECTION_BUDGET): _budget_section()})


def _budget_data(
    user_input: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Flatten and check the budget section of a site or panel form."""
    raw = dict(user_input.get(SECTION_BUDGET) or {})
    data = {k: v for k, v in raw.items() if k in BUDGET_FIELDS and v not in (None, "")}
    errors: dict[str, str] = {}
    if data.get(CONF_SOLAR_MODE, "off") != "off" and not data.get(CONF_GRID_SENSOR):
        errors[CONF_GRID_SENSOR] = "grid_sensor_required"
    mode = data.get(CONF_TARIFF_MODE, "off")
    if mode != "off" and not data.get(CONF_PRICE_SENSOR):
        errors[CONF_PRICE_SENSOR] = "price_sensor_required"
    elif mode == "threshold" and CONF_PRICE_THRESHOLD not in data:
        errors[CONF_PRICE_THRESHOLD] = "threshold_required"
    elif mode == "cheapest" and not (
        data.get(CONF_CHEAPEST_HOURS) and data.get(CONF_DEPARTURE)
    ):
        errors[CONF_CHEAPEST_HOURS] = "cheapest_required"
    if CONF_TOU_WINDOWS in data:
        try:
            parse_time_of_use(str(data[CONF_TOU_WINDOWS]))
        except EngineConfigError:
            errors[CONF_TOU_WINDOWS] = "invalid_time_of_use"
    return data, errors


def _with_budget_section(data: Mapping[str, Any]) -> dict[str, Any]:
    """Nest the stored budget fields into the form's section for suggested values."""
    form = {k: v for k, v in data.items() if k not in BUDGET_FIELDS}
    form[SECTION_BUDGET] = {k: v for k, v in data.items() if k in BUDGET_FIELDS}
    return form


class SmartChargeConfigFlow(TagDiscoveryMixin, ConfigFlow, domain=DOMAIN):
    """Create and reconfigure a Smart Charge site; adopt discovered chargers."""

    VERSION = 1

    _discovered_id: str
    _discovery_entry_id: str

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> SmartChargeOptionsFlow:
        """Return the options flow (how profiles are written)."""
        return SmartChargeOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Return the panel and charger subentry flows."""
        return {
            SUBENTRY_PANEL: PanelSubentryFlow,
            SUBENTRY_CHARGER: ChargerSubentryFlow,
            SUBENTRY_TAG: TagSubentryFlow,
        }

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the OCPP server and the main breaker."""
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await _validate_site(self.hass, user_input, None)
            if not errors:
                self._async_abort_entries_match({CONF_PORT: data[CONF_PORT]})
                return self.async_create_entry(title=_site_name(user_input), data=data)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                _site_schema(), _as_form(user_input)
            ),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the server settings or the main breaker of a site."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = await _validate_site(
                self.hass, user_input, entry.data[CONF_PORT]
            )
            if not errors:
                panels = panels_of(entry)
                panels[ROOT_PANEL_ID] = panels[ROOT_PANEL_ID].__class__(
                    **{
                        **panels[ROOT_PANEL_ID].__dict__,
                        "limit_kw": data[CONF_MAIN_BREAKER_KW],
                    }
                )
                if tree_error(panels):
                    errors[CONF_MAIN_BREAKER_KW] = "smaller_than_child"
            if not errors:
                return self.async_update_reload_and_abort(
                    entry, title=_site_name(user_input), data=data
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                _site_schema(),
                _as_form(
                    user_input
                    or {CONF_NAME: entry.title, **_with_budget_section(entry.data)}
                ),
            ),
            errors=errors,
        )

    async def async_step_integration_discovery(
        self, discovery_info: dict[str, Any]
    ) -> ConfigFlowResult:
        """Handle a charger identity that connected but is not configured."""
        if CONF_TAG_ID in discovery_info:  # an unknown tag (tag_flow.py)
            return await self.async_step_tag_discovery(discovery_info)
        self._discovered_id = str(discovery_info[CONF_CHARGER_ID])
        self._discovery_entry_id = str(discovery_info["entry_id"])
        await self.async_set_unique_id(f"charger_{self._discovered_id}")
        self._abort_if_unique_id_configured()
        entry = self.hass.config_entries.async_get_entry(self._discovery_entry_id)
        if entry is None:
            return self.async_abort(reason="site_gone")
        if self._discovered_id in chargers_of(entry):
            return self.async_abort(reason="already_configured")
        self.context["title_placeholders"] = {"charger_id": self._discovered_id}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Adopt the discovered charger under a panel."""
        entry = self.hass.config_entries.async_get_entry(self._discovery_entry_id)
        if entry is None:
            return self.async_abort(reason="site_gone")
        if user_input is not None:
            data = _charger_data({CONF_CHARGER_ID: self._discovered_id, **user_input})
            self.hass.config_entries.async_add_subentry(
                entry,
                ConfigSubentry(
                    data=MappingProxyType(data),
                    subentry_type=SUBENTRY_CHARGER,
                    title=self._discovered_id,
                    unique_id=self._discovered_id,
                ),
            )
            return self.async_abort(reason="charger_adopted")
        schema = vol.Schema(
            {
                vol.Required(CONF_PANEL, default=ROOT_PANEL_ID): _panel_selector(
                    entry, exclude=None
                ),
                vol.Required(CONF_MANAGED, default=True): selector.BooleanSelector(),
                vol.Required(CONF_MAX_CURRENT, default=DEFAULT_MAX_CURRENT): _number(
                    0, 1000, 0.1, "A"
                ),
                vol.Required(
                    CONF_PHASES, default=str(entry.data.get(CONF_PHASES, 3))
                ): _choice(["1", "3"], CONF_PHASES),
            }
        )
        return self.async_show_form(
            step_id="discovery_confirm",
            data_schema=schema,
            description_placeholders={"charger_id": self._discovered_id},
        )


OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_DEAD_BAND_A, default=INCREASE_DEAD_BAND_A): _number(
            0, 5, 0.1, "A"
        ),
        vol.Required(
            CONF_MIN_INCREASE_INTERVAL, default=MIN_INCREASE_INTERVAL_S
        ): _number(0, 3600, 1, "s"),
        vol.Required(CONF_CALL_TIMEOUT, default=CALL_TIMEOUT_S): _number(
            1, 120, 1, "s"
        ),
    }
).extend(TAG_OPTIONS_SCHEMA.schema)


class SmartChargeOptionsFlow(OptionsFlow):
    """Tune how limits are written to chargers (their flash memory) and waited for."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show or save the options; the site reloads with them."""
        if user_input is not None:
            return self.async_create_entry(
                data={
                    key: value if key in TAG_OPTIONS_SCHEMA.schema else float(value)
                    for key, value in user_input.items()
                }
            )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                OPTIONS_SCHEMA, self.config_entry.options
            ),
        )


def _as_form(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Turn stored data into form values (selects hold strings)."""
    if data is None:
        return None
    form = dict(data)
    if CONF_PHASES in form:
        form[CONF_PHASES] = str(form[CONF_PHASES])
    return form


def _panel_selector(entry: ConfigEntry, exclude: str | None) -> selector.SelectSelector:
    """Offer the site's panels by name."""
    panels = panels_of(entry)
    options = [
        selector.SelectOptionDict(value=panel.panel_id, label=panel.name)
        for panel in panels.values()
        if panel.panel_id != exclude
    ]
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=options, mode=selector.SelectSelectorMode.DROPDOWN
        )
    )


class PanelSubentryFlow(ConfigSubentryFlow):
    """Add or reconfigure a sub-panel (breaker) of a site."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add a panel."""
        return await self._async_panel_form("user", user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a panel."""
        return await self._async_panel_form("reconfigure", user_input)

    async def _async_panel_form(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        reconfiguring = self.source == SOURCE_RECONFIGURE
        subentry = self._get_reconfigure_subentry() if reconfiguring else None
        panel_id = subentry.subentry_id if subentry else "__new__"
        errors: dict[str, str] = {}
        if user_input is not None:
            data: dict[str, Any] = {
                CONF_NAME: str(user_input[CONF_NAME]).strip(),
                CONF_LIMIT_KW: float(user_input[CONF_LIMIT_KW]),
                CONF_PARENT: user_input.get(CONF_PARENT) or ROOT_PANEL_ID,
                CONF_STRATEGY: user_input.get(CONF_STRATEGY, "equal_share"),
                CONF_SAFETY_MARGIN: float(
                    user_input.get(CONF_SAFETY_MARGIN, DEFAULT_SAFETY_MARGIN)
                ),
            }
            if user_input.get(CONF_PHASE_LIMIT_A):
                data[CONF_PHASE_LIMIT_A] = float(user_input[CONF_PHASE_LIMIT_A])
            budget, budget_errors = _budget_data(user_input)
            data.update(budget)
            panels = panels_of(entry)
            panels[panel_id] = panel_from_data(panel_id, data)
            if not data[CONF_NAME]:
                errors[CONF_NAME] = "name_required"
            elif data[CONF_LIMIT_KW] <= 0:
                errors[CONF_LIMIT_KW] = "invalid_rating"
            elif error := tree_error(panels):
                errors[
                    CONF_LIMIT_KW if error == "child_exceeds_parent" else CONF_PARENT
                ] = error
            errors.update(budget_errors)
            if not errors:
                if subentry is not None:
                    return self.async_update_and_abort(
                        entry, subentry, data=data, title=data[CONF_NAME]
                    )
                return self.async_create_entry(title=data[CONF_NAME], data=data)
        defaults: Mapping[str, Any] = user_input or (
            _with_budget_section(subentry.data) if subentry else {}
        )
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME): selector.TextSelector(),
                vol.Required(CONF_LIMIT_KW): _number(0, 100000, 0.1, "kW"),
                vol.Optional(CONF_PHASE_LIMIT_A): _number(0, 10000, 1, "A"),
                vol.Required(CONF_PARENT, default=ROOT_PANEL_ID): _panel_selector(
                    entry, exclude=subentry.subentry_id if subentry else None
                ),
                vol.Required(CONF_STRATEGY, default="equal_share"): _choice(
                    list(STRATEGIES), CONF_STRATEGY
                ),
                vol.Required(
                    CONF_SAFETY_MARGIN, default=DEFAULT_SAFETY_MARGIN
                ): _number(0, 50, 0.5, "%"),
                vol.Optional(SECTION_BUDGET): _budget_section(),
            }
        )
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, defaults),
            errors=errors,
        )


def _charger_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise a charger form into subentry data."""
    data: dict[str, Any] = {
        CONF_CHARGER_ID: str(user_input[CONF_CHARGER_ID]).strip(),
        CONF_PANEL: user_input.get(CONF_PANEL) or ROOT_PANEL_ID,
        CONF_MANAGED: bool(user_input.get(CONF_MANAGED, True)),
        CONF_MIN_CURRENT: float(user_input.get(CONF_MIN_CURRENT, DEFAULT_MIN_CURRENT)),
        CONF_MAX_CURRENT: float(user_input.get(CONF_MAX_CURRENT, DEFAULT_MAX_CURRENT)),
        CONF_PHASES: int(user_input.get(CONF_PHASES, DEFAULT_PHASES)),
        CONF_PRIORITY: int(user_input.get(CONF_PRIORITY, DEFAULT_PRIORITY)),
        CONF_PROFILE_PURPOSE: user_input.get(
            CONF_PROFILE_PURPOSE, ProfilePurpose.TX_PROFILE
        ),
        CONF_STACK_LEVEL: int(user_input.get(CONF_STACK_LEVEL, DEFAULT_STACK_LEVEL)),
    }
    if data[CONF_PHASES] == 1:
        data[CONF_GRID_PHASE] = user_input.get(CONF_GRID_PHASE) or "L1"
    if user_input.get(CONF_PASSWORD):
        data[CONF_PASSWORD] = user_input[CONF_PASSWORD]
    return data


def _charger_error(
    data: Mapping[str, Any], entry: ConfigEntry, own_subentry: str | None
) -> tuple[str, str] | None:
    """Return (field, error key) for a charger form that cannot be saved."""
    charger_id = data[CONF_CHARGER_ID]
    if not charger_id or "/" in charger_id or len(charger_id) > 48:
        return CONF_CHARGER_ID, "invalid_identity"
    other = chargers_of(entry).get(charger_id)
    if other is not None and other.subentry_id != own_subentry:
        return CONF_CHARGER_ID, "duplicate_identity"
    if data[CONF_MAX_CURRENT] <= 0:
        return CONF_MAX_CURRENT, "invalid_rating"
    if not 0 < data[CONF_MIN_CURRENT] <= data[CONF_MAX_CURRENT]:
        return CONF_MIN_CURRENT, "min_above_max"
    return None


class ChargerSubentryFlow(ConfigSubentryFlow):
    """Add or reconfigure a charger of a site."""

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Add a charger."""
        return await self._async_charger_form("user", user_input)

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Change a charger."""
        return await self._async_charger_form("reconfigure", user_input)

    async def _async_charger_form(
        self, step_id: str, user_input: dict[str, Any] | None
    ) -> SubentryFlowResult:
        entry = self._get_entry()
        subentry = (
            self._get_reconfigure_subentry()
            if self.source == SOURCE_RECONFIGURE
            else None
        )
        errors: dict[str, str] = {}
        if user_input is not None:
            data = _charger_data(user_input)
            # An empty password field keeps the stored password.
            if (
                subentry is not None
                and not user_input.get(CONF_PASSWORD)
                and (stored := subentry.data.get(CONF_PASSWORD))
            ):
                data[CONF_PASSWORD] = stored
            if problem := _charger_error(
                data, entry, subentry.subentry_id if subentry else None
            ):
                errors[problem[0]] = problem[1]
            else:
                title = data[CONF_CHARGER_ID]
                if subentry is not None:
                    return self.async_update_and_abort(
                        entry, subentry, data=data, title=title, unique_id=title
                    )
                return self.async_create_entry(title=title, data=data, unique_id=title)
        defaults = dict(user_input or (subentry.data if subentry else {}))
        defaults.pop(CONF_PASSWORD, None)
        schema = vol.Schema(
            {
                vol.Required(CONF_CHARGER_ID): selector.TextSelector(),
                vol.Required(CONF_PANEL, default=ROOT_PANEL_ID): _panel_selector(
                    entry, exclude=None
                ),
                vol.Required(CONF_MANAGED, default=True): selector.BooleanSelector(),
                vol.Required(CONF_MIN_CURRENT, default=DEFAULT_MIN_CURRENT): _number(
                    0, 1000, 0.1, "A"
                ),
                vol.Required(CONF_MAX_CURRENT, default=DEFAULT_MAX_CURRENT): _number(
                    0, 1000, 0.1, "A"
                ),
                vol.Required(
                    CONF_PHASES, default=str(entry.data.get(CONF_PHASES, 3))
                ): _choice(["1", "3"], CONF_PHASES),
                vol.Optional(CONF_GRID_PHASE): _choice(
                    list(GRID_PHASES), CONF_GRID_PHASE
                ),
                vol.Required(CONF_PRIORITY, default=DEFAULT_PRIORITY): _number(
                    1, 100, 1
                ),
                vol.Required(
                    CONF_PROFILE_PURPOSE, default=ProfilePurpose.TX_PROFILE
                ): _choice([p.value for p in ProfilePurpose], CONF_PROFILE_PURPOSE),
                vol.Required(CONF_STACK_LEVEL, default=DEFAULT_STACK_LEVEL): _number(
                    0, 99, 1
                ),
                vol.Optional(CONF_PASSWORD): selector.TextSelector(
                    selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
                ),
            }
        )
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, _as_form(defaults)),
            errors=errors,
        )
