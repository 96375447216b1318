"""Config flow for Smart Charge: the site entry, panel and charger subentries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
import math
from pathlib import Path
import socket
import ssl
from types import MappingProxyType
from typing import Any, Final, Literal, NamedTuple
from urllib.parse import urlsplit

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentry,
    ConfigSubentryFlow,
    OptionsFlow,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import network, selector
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import (
    CALL_TIMEOUT_S,
    CHARGING_MODES,
    CONF_CALL_TIMEOUT,
    CONF_CHARGER_ID,
    CONF_CHEAPEST_HOURS,
    CONF_DEAD_BAND_A,
    CONF_DEFAULT_DEPARTURE,
    CONF_DEFAULT_ENERGY,
    CONF_DEFAULT_MODE,
    CONF_DEPARTURE,
    CONF_EXPORT_LIMIT,
    CONF_FAILSAFE_A,
    CONF_FEED_IN_PRICE,
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
    CONF_PHASE_SWITCHING,
    CONF_PHASES,
    CONF_PORT,
    CONF_PRICE_SENSOR,
    CONF_PRICE_THRESHOLD,
    CONF_PRIORITY,
    CONF_PROFILE_PURPOSE,
    CONF_ROTATION_PERIOD,
    CONF_SAFETY_MARGIN,
    CONF_SOC_SENSOR,
    CONF_SOLAR_FORECAST,
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
    DEFAULT_CHARGING_MODE,
    DEFAULT_FAILSAFE_A,
    DEFAULT_MAIN_BREAKER_KW,
    DEFAULT_MAX_CURRENT,
    DEFAULT_MIN_CURRENT,
    DEFAULT_PHASES,
    DEFAULT_PORT,
    DEFAULT_PRIORITY,
    DEFAULT_ROTATION_PERIOD_MIN,
    DEFAULT_SAFETY_MARGIN,
    DEFAULT_SOLAR_START_DELAY,
    DEFAULT_SOLAR_START_KW,
    DEFAULT_SOLAR_STOP_DELAY,
    DEFAULT_STACK_LEVEL,
    DEFAULT_VOLTAGE,
    DOMAIN,
    INCREASE_DEAD_BAND_A,
    LOGGER,
    MIN_INCREASE_INTERVAL_S,
    PHASE_SWITCHING_CHOICES,
    ROOT_PANEL_ID,
    SOLAR_MODES,
    STRATEGIES,
    SUBENTRY_CHARGER,
    SUBENTRY_PANEL,
    TARIFF_MODES,
    UnknownChargerPolicy,
)
from .engine import EngineConfigError, ProfilePurpose
from .engine.budgets import parse_time_of_use
from .engine.limits import charger_fits_rating, phase_limit_reachable
from .engine.solar_forecast import parse_solar_forecast
from .site_config import (
    PanelConfig,
    chargers_of,
    panel_from_data,
    panels_of,
    root_panel,
    tree_error,
)
from .subentry_flow import FormSubentryFlow, SubentryData, SubentryForm
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
    CONF_SOLAR_FORECAST,
    CONF_FEED_IN_PRICE,
)

# Only in the charger's reconfigure form: drop the stored password (empty keeps it).
CONF_REMOVE_PASSWORD: Final = "remove_password"  # noqa: S105

# Select option values must be [a-z0-9-_]+ (hassfest); the stored values stay the OCPP
# spellings, so entries saved before keep loading as they are.
GRID_PHASE_OPTIONS: Final = {"l1": "L1", "l2": "L2", "l3": "L3"}
PURPOSE_OPTIONS: Final = {
    "tx_profile": ProfilePurpose.TX_PROFILE.value,
    "tx_default_profile": ProfilePurpose.TX_DEFAULT_PROFILE.value,
}

# Shown in the charger URL when Home Assistant does not know its own address.
UNKNOWN_HOST: Final = "HOME-ASSISTANT-ADDRESS"
ANY_IDENTITY: Final = "CHARGER-ID"


@dataclass(frozen=True, slots=True)
class _Range:
    """The values a number field accepts, and the error key of any other value."""

    minimum: float
    maximum: float
    error: str
    # The minimum itself is refused (a rating of 0 kW).
    above_minimum: bool = False
    whole: bool = False

    def accepts(self, value: float) -> bool:
        """Return whether `value` is allowed (NaN and infinity never are)."""
        if not math.isfinite(value) or (self.whole and value != int(value)):
            return False
        if self.above_minimum and value <= self.minimum:
            return False
        return self.minimum <= value <= self.maximum


# The forms' number selectors carry no min/max: a value outside them would be refused
# by the selector with an untranslated HTTP 400 (and the previous errors would stay on
# the form). These ranges give a translated error on the field instead.
SITE_RANGES: Final = {
    CONF_PORT: _Range(1, 65535, "invalid_port", whole=True),
    CONF_MAIN_BREAKER_KW: _Range(0, 100000, "invalid_rating", above_minimum=True),
    # 0 (or empty) means no limit per phase.
    CONF_MAIN_PHASE_LIMIT_A: _Range(0, 10000, "invalid_phase_limit"),
    CONF_VOLTAGE: _Range(100, 400, "invalid_voltage"),
    CONF_FAILSAFE_A: _Range(0, 80, "invalid_failsafe"),
}
BUDGET_RANGES: Final = {
    CONF_SOLAR_START_KW: _Range(0, 1000, "invalid_solar_start"),
    CONF_SOLAR_START_DELAY: _Range(0, 3600, "invalid_delay"),
    CONF_SOLAR_STOP_DELAY: _Range(0, 3600, "invalid_delay"),
    CONF_PRICE_THRESHOLD: _Range(-1000, 1000, "invalid_price_threshold"),
    CONF_CHEAPEST_HOURS: _Range(0, 24, "invalid_cheapest_hours"),
}
# The main breaker's budget section only (what the plans read for the whole site).
SITE_BUDGET_RANGES: Final = {
    CONF_FEED_IN_PRICE: _Range(-1000, 1000, "invalid_feed_in_price"),
}
PANEL_RANGES: Final = {
    CONF_LIMIT_KW: _Range(0, 100000, "invalid_rating", above_minimum=True),
    CONF_PHASE_LIMIT_A: _Range(0, 10000, "invalid_phase_limit"),
    CONF_SAFETY_MARGIN: _Range(0, 50, "invalid_margin"),
}
CHARGER_RANGES: Final = {
    CONF_MAX_CURRENT: _Range(0, 1000, "invalid_current", above_minimum=True),
    CONF_MIN_CURRENT: _Range(0, 1000, "min_above_max", above_minimum=True),
    CONF_PRIORITY: _Range(1, 100, "invalid_priority", whole=True),
    CONF_STACK_LEVEL: _Range(0, 99, "invalid_stack_level", whole=True),
    CONF_DEFAULT_ENERGY: _Range(0, 1000, "invalid_default_energy", above_minimum=True),
}
OPTIONS_RANGES: Final = {
    CONF_DEAD_BAND_A: _Range(0, 5, "invalid_dead_band"),
    CONF_MIN_INCREASE_INTERVAL: _Range(0, 3600, "invalid_interval"),
    CONF_CALL_TIMEOUT: _Range(1, 120, "invalid_timeout"),
    CONF_ROTATION_PERIOD: _Range(0, 1440, "invalid_rotation_period"),
    CONF_EXPORT_LIMIT: _Range(0, 1000, "invalid_export_limit"),
}


def _range_errors(
    values: Mapping[str, Any], ranges: Mapping[str, _Range]
) -> dict[str, str]:
    """Return an error for every given number outside its range, keyed to its field."""
    errors: dict[str, str] = {}
    for key, allowed in ranges.items():
        value: Any = values.get(key)
        if value not in (None, "") and not allowed.accepts(float(value)):
            errors[key] = allowed.error
    return errors


def _port_is_free(port: int) -> bool:
    """Return whether a TCP port can be bound on all interfaces (blocking).

    Any failure (in use, privileged) means the OCPP server could not bind it either.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def _site_on_port(
    hass: HomeAssistant, port: int, own_entry_id: str | None
) -> ConfigEntry | None:
    """Return the other Smart Charge site that serves `port`, if any."""
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.entry_id != own_entry_id and entry.data.get(CONF_PORT) == port:
            return entry
    return None


def charger_url(
    hass: HomeAssistant, port: int, *, tls: bool, identity: str = ANY_IDENTITY
) -> str:
    """Return the URL a charger connects to, with this Home Assistant's address.

    Without a configured or detected address the host is a capitalised stand-in.
    Angle brackets cannot stand in: the frontend reads them as HTML tags.
    """
    try:
        host = urlsplit(network.get_url(hass, allow_cloud=False)).hostname
    except network.NoURLAvailableError:
        host = None
    if host and ":" in host:
        host = f"[{host}]"
    return f"{'wss' if tls else 'ws'}://{host or UNKNOWN_HOST}:{port}/{identity}"


def _site_url(hass: HomeAssistant, data: Mapping[str, Any], identity: str) -> str:
    """Return the charger URL of a site from its stored data."""
    return charger_url(
        hass,
        int(data[CONF_PORT]),
        tls=bool(data.get(CONF_TLS_CERT)),
        identity=identity,
    )


def _number(step: float, unit: str | None = None) -> selector.NumberSelector:
    config = selector.NumberSelectorConfig(
        step=step, mode=selector.NumberSelectorMode.BOX
    )
    if unit is not None:
        config["unit_of_measurement"] = unit
    return selector.NumberSelector(config)


def _choice(options: Iterable[str], key: str) -> selector.SelectSelector:
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=list(options),
            translation_key=key,
            mode=selector.SelectSelectorMode.DROPDOWN,
        )
    )


SITE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_NAME, default="Smart Charge"): selector.TextSelector(),
        vol.Required(CONF_PORT, default=DEFAULT_PORT): _number(1),
        vol.Required(CONF_MAIN_BREAKER_KW, default=DEFAULT_MAIN_BREAKER_KW): _number(
            0.1, "kW"
        ),
        vol.Optional(CONF_MAIN_PHASE_LIMIT_A): _number(1, "A"),
        vol.Required(CONF_PHASES, default=str(DEFAULT_PHASES)): _choice(
            ["1", "3"], CONF_PHASES
        ),
        vol.Required(CONF_VOLTAGE, default=DEFAULT_VOLTAGE): _number(1, "V"),
        vol.Required(CONF_FAILSAFE_A, default=DEFAULT_FAILSAFE_A): _number(0.1, "A"),
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


class _Load(NamedTuple):
    """A charger as the limit checks see it."""

    key: str
    panel_id: str
    current_a: float
    phases: int


class _Problem(NamedTuple):
    """Two limits that contradict each other: `child` does not fit under `parent`.

    `unit` is "kw" or "a" (the current per phase); child and parent are the same panel
    for a current per phase that its own kW rating can never reach.
    """

    unit: Literal["kw", "a"]
    child: str
    parent: str


def _chain(panels: Mapping[str, PanelConfig], panel_id: str) -> list[PanelConfig]:
    """Return the panel and its ancestors up to the main breaker (cycles cut)."""
    chain: list[PanelConfig] = []
    current = panels.get(panel_id)
    while current is not None and current not in chain:
        chain.append(current)
        current = panels.get(current.parent_id) if current.parent_id else None
    return chain


def _limit_problems(
    panels: Mapping[str, PanelConfig], loads: Iterable[_Load], voltage_v: float
) -> list[_Problem]:
    """Return every place where a limit does not fit under a breaker above it."""
    problems: list[_Problem] = []
    # The more specific problem first: the current per phase against a breaker above,
    # then the kW rating, then a current its own rating can never reach.
    for panel in panels.values():
        for above in _chain(panels, panel.panel_id)[1:]:
            if (
                panel.phase_limit_a
                and above.phase_limit_a
                and panel.phase_limit_a > above.phase_limit_a
            ):
                problems.append(_Problem("a", panel.panel_id, above.panel_id))
            if panel.limit_kw > above.limit_kw:
                problems.append(_Problem("kw", panel.panel_id, above.panel_id))
        if panel.phase_limit_a and not phase_limit_reachable(
            panel.phase_limit_a, panel.limit_kw, voltage_v
        ):
            problems.append(_Problem("a", panel.panel_id, panel.panel_id))
    for load in loads:
        for above in _chain(panels, load.panel_id):
            if above.phase_limit_a and load.current_a > above.phase_limit_a:
                problems.append(_Problem("a", load.key, above.panel_id))
            if not charger_fits_rating(
                load.current_a, load.phases, voltage_v, above.limit_kw
            ):
                problems.append(_Problem("kw", load.key, above.panel_id))
    return problems


def _loads(entry: ConfigEntry, own_subentry: str | None) -> list[_Load]:
    """Return the site's chargers except the one being edited."""
    return [
        _Load(
            charger.subentry_id, charger.panel_id, charger.max_current_a, charger.phases
        )
        for charger in chargers_of(entry).values()
        if charger.subentry_id != own_subentry
    ]


def _changed(
    fields: Iterable[str], new: Mapping[str, Any], stored: Mapping[str, Any] | None
) -> set[str]:
    """Return the fields whose value differs from the stored one (all when new)."""
    return {f for f in fields if stored is None or new.get(f) != stored.get(f)}


def _breaker_errors(
    problems: Iterable[_Problem],
    panel_id: str,
    fields: tuple[str, str],
    changed: Iterable[str],
) -> dict[str, str]:
    """Key the problems of the breaker `panel_id` to its (kW, A per phase) fields.

    Problems between other panels or chargers cannot be fixed on this form and are
    left out, so no message lands on a field that is not wrong. That something below
    does not fit is reported only on a field the user changed: a tree saved before
    these checks existed stays editable, and the item below says what is wrong on its
    own form.
    """
    errors: dict[str, str] = {}
    kw_field, a_field = fields
    for problem in problems:
        field = kw_field if problem.unit == "kw" else a_field
        if problem.child == panel_id == problem.parent:
            errors.setdefault(field, "phase_limit_above_rating")
        elif problem.child == panel_id:
            errors.setdefault(
                field,
                "child_exceeds_parent"
                if problem.unit == "kw"
                else "phase_limit_exceeds_parent",
            )
        elif problem.parent == panel_id and field in changed:
            errors.setdefault(
                field,
                "smaller_than_child"
                if problem.unit == "kw"
                else "phase_limit_below_child",
            )
    return errors


async def _validate_site(
    hass: HomeAssistant, user_input: dict[str, Any], entry: ConfigEntry | None
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """Normalise the site form and return (data, errors, error placeholders)."""
    errors = _range_errors(user_input, SITE_RANGES)
    budget, budget_errors = _budget_data(user_input)
    errors.update(budget_errors)
    errors.update(_solar_forecast_errors(hass, budget))
    placeholders: dict[str, str] = {}
    if errors:
        return {}, errors, placeholders
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
    data.update(budget)
    if entry is None or data[CONF_PORT] != entry.data[CONF_PORT]:
        own_id = entry.entry_id if entry else None
        if other := _site_on_port(hass, data[CONF_PORT], own_id):
            errors[CONF_PORT] = "port_used_by_site"
            placeholders["site"] = other.title
        elif not await hass.async_add_executor_job(_port_is_free, data[CONF_PORT]):
            errors[CONF_PORT] = "port_in_use"
    panels = panels_of(entry) if entry else {}
    panels[ROOT_PANEL_ID] = root_panel(data, _site_name(user_input))
    loads = _loads(entry, None) if entry else []
    fields = (CONF_MAIN_BREAKER_KW, CONF_MAIN_PHASE_LIMIT_A)
    errors.update(
        _breaker_errors(
            _limit_problems(panels, loads, data[CONF_VOLTAGE]),
            ROOT_PANEL_ID,
            fields,
            _changed(fields, data, entry.data if entry else None),
        )
    )
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
    return data, errors, placeholders


def _form_site_url(hass: HomeAssistant, user_input: Mapping[str, Any] | None) -> str:
    """Return the charger URL for the port and TLS files typed into the site form."""
    form = user_input or {}
    port = form.get(CONF_PORT, DEFAULT_PORT)
    if CONF_PORT in _range_errors({CONF_PORT: port}, SITE_RANGES):
        port = DEFAULT_PORT
    return charger_url(hass, int(port), tls=bool(form.get(CONF_TLS_CERT)))


def _sensor() -> selector.EntitySelector:
    return selector.EntitySelector(selector.EntitySelectorConfig(domain="sensor"))


BUDGET_SCHEMA = vol.Schema(
    {
        vol.Optional(CONF_LOAD_SENSOR): _sensor(),
        vol.Optional(CONF_LOAD_INVERT, default=False): selector.BooleanSelector(),
        **{vol.Optional(key): _sensor() for key in CONF_LOAD_CURRENTS},
        vol.Optional(CONF_SOLAR_MODE, default="off"): _choice(
            SOLAR_MODES, CONF_SOLAR_MODE
        ),
        vol.Optional(CONF_GRID_SENSOR): _sensor(),
        vol.Optional(CONF_GRID_INVERT, default=False): selector.BooleanSelector(),
        vol.Optional(CONF_SOLAR_START_KW, default=DEFAULT_SOLAR_START_KW): _number(
            0.1, "kW"
        ),
        vol.Optional(
            CONF_SOLAR_START_DELAY, default=DEFAULT_SOLAR_START_DELAY
        ): _number(1, "s"),
        vol.Optional(CONF_SOLAR_STOP_DELAY, default=DEFAULT_SOLAR_STOP_DELAY): _number(
            1, "s"
        ),
        vol.Optional(CONF_PRICE_SENSOR): _sensor(),
        vol.Optional(CONF_TARIFF_MODE, default="off"): _choice(
            TARIFF_MODES, CONF_TARIFF_MODE
        ),
        vol.Optional(CONF_PRICE_THRESHOLD): _number(0.001),
        vol.Optional(CONF_CHEAPEST_HOURS): _number(0.25, "h"),
        vol.Optional(CONF_DEPARTURE): selector.TimeSelector(),
        vol.Optional(
            CONF_TARIFF_HOLD_MINIMUM, default=False
        ): selector.BooleanSelector(),
        vol.Optional(CONF_TOU_WINDOWS): selector.TextSelector(),
    }
)


# The main breaker's section also holds what the charging plans read for the whole site.
SITE_BUDGET_SCHEMA = BUDGET_SCHEMA.extend(
    {
        vol.Optional(CONF_SOLAR_FORECAST): selector.EntitySelector(
            selector.EntitySelectorConfig(multiple=True)
        ),
        vol.Optional(CONF_FEED_IN_PRICE): _number(0.001),
    }
)


def _budget_section(schema: vol.Schema = BUDGET_SCHEMA) -> section:
    return section(schema, {"collapsed": True})


def _site_schema() -> vol.Schema:
    return SITE_SCHEMA.extend(
        {vol.Optional(SECTION_BUDGET): _budget_section(SITE_BUDGET_SCHEMA)}
    )


def _solar_forecast_errors(
    hass: HomeAssistant, data: Mapping[str, Any]
) -> dict[str, str]:
    """Check the site's solar forecast entities and feed-in price."""
    errors = _range_errors(data, SITE_BUDGET_RANGES)
    entities = data.get(CONF_SOLAR_FORECAST) or []
    if CONF_FEED_IN_PRICE in data and not entities:
        errors[CONF_FEED_IN_PRICE] = "feed_in_needs_forecast"
    for entity_id in entities:
        state = hass.states.get(entity_id)
        # An entity not loaded yet is accepted; one that is there must hold a forecast.
        if state is not None and not parse_solar_forecast(
            state.attributes, default_tz=dt_util.get_default_time_zone()
        ):
            errors[CONF_SOLAR_FORECAST] = "solar_forecast_unreadable"
    return errors


def _budget_data(
    user_input: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Flatten and check the budget section of a site or panel form."""
    raw = dict(user_input.get(SECTION_BUDGET) or {})
    data = {
        k: v
        for k, v in raw.items()
        if k in BUDGET_FIELDS and v not in (None, "") and v != []
    }
    errors = _range_errors(data, BUDGET_RANGES)
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
        errors.setdefault(CONF_CHEAPEST_HOURS, "cheapest_required")
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
        placeholders: dict[str, str] = {}
        if user_input is not None:
            data, errors, placeholders = await _validate_site(
                self.hass, user_input, None
            )
            if not errors:
                return self.async_create_entry(title=_site_name(user_input), data=data)
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                _site_schema(), _as_form(user_input)
            ),
            errors=errors,
            description_placeholders={
                "url": _form_site_url(self.hass, user_input),
                **placeholders,
            },
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the server settings or the main breaker of a site."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            data, errors, placeholders = await _validate_site(
                self.hass, user_input, entry
            )
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
            description_placeholders={
                "url": _site_url(self.hass, entry.data, ANY_IDENTITY),
                **placeholders,
            },
        )

    async def async_step_integration_discovery(
        self, discovery_info: dict[str, Any]
    ) -> ConfigFlowResult:
        """Handle a charger identity (or a tag) that connected but is not configured.

        The unique id is per site and per identity (whatever its case), so ignoring
        the charger on one site leaves it to be offered on another.
        """
        if CONF_TAG_ID in discovery_info:  # an unknown tag (tag_flow.py)
            return await self.async_step_tag_discovery(discovery_info)
        self._discovered_id = str(discovery_info[CONF_CHARGER_ID])
        self._discovery_entry_id = str(discovery_info["entry_id"])
        await self.async_set_unique_id(
            f"{self._discovery_entry_id}_{self._discovered_id.casefold()}"
        )
        self._abort_if_unique_id_configured()
        entry = self.hass.config_entries.async_get_entry(self._discovery_entry_id)
        if entry is None:
            return self.async_abort(reason="site_gone")
        if _identity_taken(entry, self._discovered_id, None):
            configured = chargers_of(entry)
            if self._discovered_id not in configured:
                LOGGER.warning(
                    "Charger %s connected to %s, which has it configured as %s; it "
                    "stays unmanaged until both spell its identity the same",
                    self._discovered_id,
                    entry.title,
                    ", ".join(
                        cid
                        for cid in configured
                        if cid.casefold() == self._discovered_id.casefold()
                    ),
                )
            return self.async_abort(reason="already_configured")
        self.context["title_placeholders"] = {
            "charger_id": self._discovered_id,
            "site": entry.title,
        }
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Adopt the discovered charger under a panel."""
        entry = self.hass.config_entries.async_get_entry(self._discovery_entry_id)
        if entry is None:
            return self.async_abort(reason="site_gone")
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {CONF_CHARGER_ID: self._discovered_id, **user_input}
            errors = _range_errors(data, CHARGER_RANGES)
            if not errors:
                data = _charger_data(data)
                errors = _charger_errors(data, entry, None)
            if not errors:
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
                    0.1, "A"
                ),
                vol.Required(
                    CONF_PHASES, default=str(entry.data.get(CONF_PHASES, 3))
                ): _choice(["1", "3"], CONF_PHASES),
            }
        )
        return self.async_show_form(
            step_id="discovery_confirm",
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
            description_placeholders={
                "charger_id": self._discovered_id,
                "site": entry.title,
                "url": _site_url(self.hass, entry.data, self._discovered_id),
            },
        )


OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_DEAD_BAND_A, default=INCREASE_DEAD_BAND_A): _number(0.1, "A"),
        vol.Required(
            CONF_MIN_INCREASE_INTERVAL, default=MIN_INCREASE_INTERVAL_S
        ): _number(1, "s"),
        vol.Required(CONF_CALL_TIMEOUT, default=CALL_TIMEOUT_S): _number(1, "s"),
        vol.Required(
            CONF_ROTATION_PERIOD, default=DEFAULT_ROTATION_PERIOD_MIN
        ): _number(1, "min"),
        vol.Required(CONF_EXPORT_LIMIT, default=0.0): _number(0.1, "kW"),
    }
).extend(TAG_OPTIONS_SCHEMA.schema)


class SmartChargeOptionsFlow(OptionsFlow):
    """Tune how limits are written to chargers (their flash memory) and waited for."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show or save the options; the site reloads with them."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _range_errors(user_input, OPTIONS_RANGES)
            if not errors:
                return self.async_create_entry(
                    data={
                        key: value if key in TAG_OPTIONS_SCHEMA.schema else float(value)
                        for key, value in user_input.items()
                    }
                )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                OPTIONS_SCHEMA, user_input or self.config_entry.options
            ),
            errors=errors,
        )


def _as_form(data: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Turn stored data into form values (selects hold strings, lowercase options)."""
    if data is None:
        return None
    form = dict(data)
    if CONF_PHASES in form:
        form[CONF_PHASES] = str(form[CONF_PHASES])
    for key, options in (
        (CONF_GRID_PHASE, GRID_PHASE_OPTIONS),
        (CONF_PROFILE_PURPOSE, PURPOSE_OPTIONS),
    ):
        if key in form:
            form[key] = _option_of(options, form[key])
    return form


def _option_of(options: Mapping[str, str], value: Any) -> Any:
    """Return the select option of a stored value (an option passes unchanged)."""
    return {stored: option for option, stored in options.items()}.get(value, value)


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


class PanelSubentryFlow(FormSubentryFlow):
    """Add or reconfigure a sub-panel (breaker) of a site."""

    def _validate(self, user_input: dict[str, Any]) -> SubentryData | dict[str, str]:
        entry, subentry = self._get_entry(), self._subentry
        panel_id = subentry.subentry_id if subentry else "__new__"
        errors = _range_errors(user_input, PANEL_RANGES)
        budget, budget_errors = _budget_data(user_input)
        errors.update(budget_errors)
        name = str(user_input[CONF_NAME]).strip()
        if not name:
            errors[CONF_NAME] = "name_required"
        if errors:
            return errors
        data = _panel_data(name, user_input, budget)
        if errors := _panel_errors(
            entry, panel_id, data, subentry.data if subentry else None
        ):
            return errors
        return SubentryData(data[CONF_NAME], data)

    def _form(self, user_input: dict[str, Any] | None) -> SubentryForm:
        entry, subentry = self._get_entry(), self._subentry
        defaults: Mapping[str, Any] = user_input or (
            _with_budget_section(subentry.data) if subentry else {}
        )
        schema = vol.Schema(
            {
                vol.Required(CONF_NAME): selector.TextSelector(),
                vol.Required(CONF_LIMIT_KW): _number(0.1, "kW"),
                vol.Optional(CONF_PHASE_LIMIT_A): _number(1, "A"),
                vol.Required(CONF_PARENT, default=ROOT_PANEL_ID): _panel_selector(
                    entry, exclude=subentry.subentry_id if subentry else None
                ),
                vol.Required(CONF_STRATEGY, default="equal_share"): _choice(
                    STRATEGIES, CONF_STRATEGY
                ),
                vol.Required(
                    CONF_SAFETY_MARGIN, default=DEFAULT_SAFETY_MARGIN
                ): _number(0.5, "%"),
                vol.Optional(SECTION_BUDGET): _budget_section(),
            }
        )
        return SubentryForm(schema, defaults)


def _panel_data(
    name: str, user_input: Mapping[str, Any], budget: Mapping[str, Any]
) -> dict[str, Any]:
    """Normalise a panel form (already range-checked) into subentry data."""
    data: dict[str, Any] = {
        CONF_NAME: name,
        CONF_LIMIT_KW: float(user_input[CONF_LIMIT_KW]),
        CONF_PARENT: user_input.get(CONF_PARENT) or ROOT_PANEL_ID,
        CONF_STRATEGY: user_input.get(CONF_STRATEGY, "equal_share"),
        CONF_SAFETY_MARGIN: float(
            user_input.get(CONF_SAFETY_MARGIN, DEFAULT_SAFETY_MARGIN)
        ),
    }
    if user_input.get(CONF_PHASE_LIMIT_A):
        data[CONF_PHASE_LIMIT_A] = float(user_input[CONF_PHASE_LIMIT_A])
    data.update(budget)
    return data


def _panel_errors(
    entry: ConfigEntry,
    panel_id: str,
    data: Mapping[str, Any],
    stored: Mapping[str, Any] | None,
) -> dict[str, str]:
    """Return the errors of a panel that does not fit into the site's tree."""
    panels = panels_of(entry)
    panels[panel_id] = panel_from_data(panel_id, data)
    if (error := tree_error(panels)) in ("parent_missing", "panel_cycle"):
        return {CONF_PARENT: str(error)}
    voltage = float(entry.data.get(CONF_VOLTAGE, DEFAULT_VOLTAGE))
    fields = (CONF_LIMIT_KW, CONF_PHASE_LIMIT_A)
    return _breaker_errors(
        _limit_problems(panels, _loads(entry, None), voltage),
        panel_id,
        fields,
        _changed(fields, data, stored),
    )


def _charger_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Normalise a charger form (already range-checked) into subentry data."""
    data: dict[str, Any] = {
        CONF_CHARGER_ID: str(user_input[CONF_CHARGER_ID]).strip(),
        CONF_PANEL: user_input.get(CONF_PANEL) or ROOT_PANEL_ID,
        CONF_MANAGED: bool(user_input.get(CONF_MANAGED, True)),
        CONF_MIN_CURRENT: float(user_input.get(CONF_MIN_CURRENT, DEFAULT_MIN_CURRENT)),
        CONF_MAX_CURRENT: float(user_input.get(CONF_MAX_CURRENT, DEFAULT_MAX_CURRENT)),
        CONF_PHASES: int(user_input.get(CONF_PHASES, DEFAULT_PHASES)),
        CONF_PRIORITY: int(user_input.get(CONF_PRIORITY, DEFAULT_PRIORITY)),
        CONF_PROFILE_PURPOSE: PURPOSE_OPTIONS.get(
            str(user_input.get(CONF_PROFILE_PURPOSE)), ProfilePurpose.TX_PROFILE.value
        ),
        CONF_STACK_LEVEL: int(user_input.get(CONF_STACK_LEVEL, DEFAULT_STACK_LEVEL)),
    }
    switching = str(user_input.get(CONF_PHASE_SWITCHING) or "auto")
    if data[CONF_PHASES] == 3 and switching != "auto":
        data[CONF_PHASE_SWITCHING] = switching
    if data[CONF_PHASES] == 1 or (
        switching != "unsupported" and user_input.get(CONF_GRID_PHASE)
    ):
        # A single-phase charger's line; a switching one's phase on one phase.
        data[CONF_GRID_PHASE] = GRID_PHASE_OPTIONS.get(
            str(user_input.get(CONF_GRID_PHASE)), "L1"
        )
    if user_input.get(CONF_PASSWORD):
        data[CONF_PASSWORD] = user_input[CONF_PASSWORD]
    data.update(_default_goal_data(user_input))
    return data


def _default_goal_data(user_input: Mapping[str, Any]) -> dict[str, Any]:
    """Return the optional default goal and SoC sensor of a charger form, as given."""
    data: dict[str, Any] = {}
    for key in (CONF_DEFAULT_MODE, CONF_DEFAULT_DEPARTURE, CONF_SOC_SENSOR):
        if user_input.get(key):
            data[key] = str(user_input[key])
    if user_input.get(CONF_DEFAULT_ENERGY) not in (None, ""):
        data[CONF_DEFAULT_ENERGY] = float(user_input[CONF_DEFAULT_ENERGY])
    return data


def _default_goal_errors(data: Mapping[str, Any]) -> dict[str, str]:
    """Return the errors of a charger's default goal, by field.

    A mode that plans by the departure needs the energy to add; an energy or a
    departure time without a mode that uses them would never apply.
    """
    # The selectors have checked the mode and the time of day.
    mode = data.get(CONF_DEFAULT_MODE, DEFAULT_CHARGING_MODE)
    if mode == DEFAULT_CHARGING_MODE:
        if CONF_DEFAULT_ENERGY in data or CONF_DEFAULT_DEPARTURE in data:
            return {CONF_DEFAULT_MODE: "default_needs_mode"}
        return {}
    if mode.startswith("by_departure") and CONF_DEFAULT_ENERGY not in data:
        return {CONF_DEFAULT_ENERGY: "default_needs_energy"}
    return {}


def _identity_taken(
    entry: ConfigEntry, charger_id: str, own_subentry: str | None
) -> bool:
    """Return whether another charger of the site has this identity, in any case."""
    wanted = charger_id.casefold()
    return any(
        other.charger_id.casefold() == wanted and other.subentry_id != own_subentry
        for other in chargers_of(entry).values()
    )


def _charger_errors(
    data: Mapping[str, Any], entry: ConfigEntry, own: ConfigSubentry | None
) -> dict[str, str]:
    """Return the errors of a charger form (already range-checked), by field.

    A charger that keeps its identity is not checked for a duplicate: a pair that
    differs only by case, saved before identities were compared by case, stays
    editable (a new pair cannot be made).
    """
    charger_id = data[CONF_CHARGER_ID]
    if not charger_id or "/" in charger_id or len(charger_id) > 48:
        return {CONF_CHARGER_ID: "invalid_identity"}
    kept = own is not None and own.data.get(CONF_CHARGER_ID) == charger_id
    if not kept and _identity_taken(
        entry, charger_id, own.subentry_id if own else None
    ):
        return {CONF_CHARGER_ID: "duplicate_identity"}
    if data[CONF_MIN_CURRENT] > data[CONF_MAX_CURRENT]:
        return {CONF_MIN_CURRENT: "min_above_max"}
    if errors := _default_goal_errors(data):
        return errors
    load = _Load(
        "__edited__", data[CONF_PANEL], data[CONF_MAX_CURRENT], data[CONF_PHASES]
    )
    voltage = float(entry.data.get(CONF_VOLTAGE, DEFAULT_VOLTAGE))
    for problem in _limit_problems(panels_of(entry), [load], voltage):
        if problem.child == load.key:
            return {
                CONF_MAX_CURRENT: "above_panel_rating"
                if problem.unit == "kw"
                else "above_panel_current"
            }
    return {}


class ChargerSubentryFlow(FormSubentryFlow):
    """Add or reconfigure a charger of a site."""

    def _validate(self, user_input: dict[str, Any]) -> SubentryData | dict[str, str]:
        entry, subentry = self._get_entry(), self._subentry
        errors = _range_errors(user_input, CHARGER_RANGES)
        if not errors:
            data = _charger_data(user_input)
            errors = _charger_errors(data, entry, subentry)
        if user_input.get(CONF_REMOVE_PASSWORD) and user_input.get(CONF_PASSWORD):
            errors[CONF_PASSWORD] = "password_conflict"
        if errors:
            return errors
        # An empty password field keeps the stored password, unless removed.
        if (
            subentry is not None
            and not user_input.get(CONF_PASSWORD)
            and not user_input.get(CONF_REMOVE_PASSWORD)
            and (stored := subentry.data.get(CONF_PASSWORD))
        ):
            data[CONF_PASSWORD] = stored
        title = data[CONF_CHARGER_ID]
        return SubentryData(title, data, unique_id=title)

    def _form(self, user_input: dict[str, Any] | None) -> SubentryForm:
        entry, subentry = self._get_entry(), self._subentry
        defaults = dict(user_input or (subentry.data if subentry else {}))
        defaults.pop(CONF_PASSWORD, None)
        schema: dict[Any, Any] = {
            vol.Required(CONF_CHARGER_ID): selector.TextSelector(),
            vol.Required(CONF_PANEL, default=ROOT_PANEL_ID): _panel_selector(
                entry, exclude=None
            ),
            vol.Required(CONF_MANAGED, default=True): selector.BooleanSelector(),
            vol.Required(CONF_MIN_CURRENT, default=DEFAULT_MIN_CURRENT): _number(
                0.1, "A"
            ),
            vol.Required(CONF_MAX_CURRENT, default=DEFAULT_MAX_CURRENT): _number(
                0.1, "A"
            ),
            vol.Required(
                CONF_PHASES, default=str(entry.data.get(CONF_PHASES, 3))
            ): _choice(["1", "3"], CONF_PHASES),
            vol.Optional(CONF_GRID_PHASE): _choice(GRID_PHASE_OPTIONS, CONF_GRID_PHASE),
            vol.Required(CONF_PHASE_SWITCHING, default="auto"): _choice(
                PHASE_SWITCHING_CHOICES, CONF_PHASE_SWITCHING
            ),
            vol.Required(CONF_PRIORITY, default=DEFAULT_PRIORITY): _number(1),
            vol.Required(CONF_PROFILE_PURPOSE, default="tx_profile"): _choice(
                PURPOSE_OPTIONS, CONF_PROFILE_PURPOSE
            ),
            vol.Required(CONF_STACK_LEVEL, default=DEFAULT_STACK_LEVEL): _number(1),
            vol.Optional(CONF_PASSWORD): selector.TextSelector(
                selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
            ),
            # For cars that report nothing (OCPP 1.6): the goal of a session that
            # starts without one, and a SoC sensor of another integration.
            vol.Optional(CONF_DEFAULT_MODE): _choice(CHARGING_MODES, "charging_mode"),
            vol.Optional(CONF_DEFAULT_ENERGY): _number(0.1, "kWh"),
            vol.Optional(CONF_DEFAULT_DEPARTURE): selector.TimeSelector(),
            vol.Optional(CONF_SOC_SENSOR): selector.EntitySelector(
                selector.EntitySelectorConfig(domain="sensor")
            ),
        }
        if subentry is not None and subentry.data.get(CONF_PASSWORD):
            schema[vol.Optional(CONF_REMOVE_PASSWORD, default=False)] = (
                selector.BooleanSelector()
            )
        identity = subentry.data[CONF_CHARGER_ID] if subentry else ANY_IDENTITY
        return SubentryForm(
            vol.Schema(schema),
            _as_form(defaults),
            {"url": _site_url(self.hass, entry.data, identity)},
        )
