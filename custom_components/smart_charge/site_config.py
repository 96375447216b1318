"""Read the site, its panels and chargers out of a config entry and its subentries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.util import dt as dt_util

from .const import (
    CONF_CHARGER_ID,
    CONF_CHEAPEST_HOURS,
    CONF_DEFAULT_DEPARTURE,
    CONF_DEFAULT_ENERGY,
    CONF_DEFAULT_MODE,
    CONF_DEPARTURE,
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
    CONF_NAME,
    CONF_PANEL,
    CONF_PARENT,
    CONF_PASSWORD,
    CONF_PHASE_LIMIT_A,
    CONF_PHASE_SWITCHING,
    CONF_PHASES,
    CONF_PRICE_SENSOR,
    CONF_PRICE_THRESHOLD,
    CONF_PRIORITY,
    CONF_PROFILE_PURPOSE,
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
    CONF_TOU_WINDOWS,
    DEFAULT_MAX_CURRENT,
    DEFAULT_MIN_CURRENT,
    DEFAULT_PHASE_SWITCHING,
    DEFAULT_PHASES,
    DEFAULT_PRIORITY,
    DEFAULT_SAFETY_MARGIN,
    DEFAULT_SOLAR_START_DELAY,
    DEFAULT_SOLAR_START_KW,
    DEFAULT_SOLAR_STOP_DELAY,
    DEFAULT_STACK_LEVEL,
    ROOT_PANEL_ID,
    SUBENTRY_CHARGER,
    SUBENTRY_PANEL,
)
from .engine import EngineConfigError, ProfilePurpose, TimeOfUseWindow
from .engine.budgets import parse_time_of_use


@dataclass(frozen=True, kw_only=True)
class BudgetConfig:
    """The budget sources configured for one panel."""

    load_sensor: str | None = None
    load_invert: bool = False
    # Per-phase current sensors (A) of the other load, L1..L3, instead of or beside power.
    load_currents: tuple[str, ...] = ()
    solar_mode: str = "off"
    grid_sensor: str | None = None
    grid_invert: bool = False
    solar_start_kw: float = DEFAULT_SOLAR_START_KW
    solar_start_delay_s: float = DEFAULT_SOLAR_START_DELAY
    solar_stop_delay_s: float = DEFAULT_SOLAR_STOP_DELAY
    price_sensor: str | None = None
    tariff_mode: str = "off"
    price_threshold: float | None = None
    cheapest_hours: float | None = None
    departure: time | None = None
    tariff_hold_minimum: bool = False
    time_of_use: tuple[TimeOfUseWindow, ...] = ()
    # Site only: PV forecast entities for the plans, and the feed-in price.
    solar_forecast: tuple[str, ...] = ()
    feed_in_price: float | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> BudgetConfig:
        """Read the budget fields of a panel's (or the site's) data."""

        def number(key: str, default: float | None) -> float | None:
            value = data.get(key)
            return default if value is None or value == "" else float(value)

        departure = data.get(CONF_DEPARTURE)
        try:
            windows = parse_time_of_use(str(data.get(CONF_TOU_WINDOWS) or ""))
        except EngineConfigError:
            windows = ()  # the config flow refuses such text; never fatal here
        return cls(
            load_sensor=data.get(CONF_LOAD_SENSOR) or None,
            load_invert=bool(data.get(CONF_LOAD_INVERT, False)),
            load_currents=tuple(
                str(data[key]) for key in CONF_LOAD_CURRENTS if data.get(key)
            ),
            solar_mode=str(data.get(CONF_SOLAR_MODE) or "off"),
            grid_sensor=data.get(CONF_GRID_SENSOR) or None,
            grid_invert=bool(data.get(CONF_GRID_INVERT, False)),
            solar_start_kw=number(CONF_SOLAR_START_KW, DEFAULT_SOLAR_START_KW) or 0.0,
            solar_start_delay_s=number(
                CONF_SOLAR_START_DELAY, DEFAULT_SOLAR_START_DELAY
            )
            or 0.0,
            solar_stop_delay_s=number(CONF_SOLAR_STOP_DELAY, DEFAULT_SOLAR_STOP_DELAY)
            or 0.0,
            price_sensor=data.get(CONF_PRICE_SENSOR) or None,
            tariff_mode=str(data.get(CONF_TARIFF_MODE) or "off"),
            price_threshold=number(CONF_PRICE_THRESHOLD, None),
            cheapest_hours=number(CONF_CHEAPEST_HOURS, None),
            departure=dt_util.parse_time(departure) if departure else None,
            tariff_hold_minimum=bool(data.get(CONF_TARIFF_HOLD_MINIMUM, False)),
            time_of_use=windows,
            solar_forecast=_entity_list(data.get(CONF_SOLAR_FORECAST)),
            feed_in_price=number(CONF_FEED_IN_PRICE, None),
        )

    @property
    def entities(self) -> set[str]:
        """Return the entities this panel's budget follows."""
        entities: set[str | None] = {self.load_sensor, *self.load_currents}
        if self.solar_mode != "off":
            entities.add(self.grid_sensor)
        if self.tariff_mode != "off":
            entities.add(self.price_sensor)
        return {entity for entity in entities if entity}

    @property
    def active(self) -> bool:
        """Return whether any source is configured."""
        return bool(self.entities)


@dataclass(frozen=True, kw_only=True)
class PanelConfig:
    """A breaker as configured: the root (site entry) or a panel subentry."""

    panel_id: str
    name: str
    limit_kw: float
    phase_limit_a: float | None
    parent_id: str | None
    strategy: str
    safety_margin_pct: float
    load_sensor: str | None
    subentry_id: str | None
    budget: BudgetConfig = field(default_factory=BudgetConfig)


@dataclass(frozen=True, kw_only=True)
class ChargerSettings:
    """A charger as configured in its subentry."""

    charger_id: str
    subentry_id: str
    name: str
    panel_id: str
    managed: bool
    min_current_a: float
    max_current_a: float
    phases: int
    grid_phase: str | None
    priority: int
    profile_purpose: str
    stack_level: int
    password: str | None
    # Whether a three-phase charger switches to one phase (auto: as it reports).
    phase_switching: str = DEFAULT_PHASE_SWITCHING
    # The goal of a session that starts without one (None: as fast as possible).
    default_mode: str | None = None
    default_energy_kwh: float | None = None
    default_departure: time | None = None
    # A state-of-charge sensor (%) of another integration for this charger's car.
    soc_sensor: str | None = None


def _entity_list(value: Any) -> tuple[str, ...]:
    """Return a stored entity list (one id or a list of ids) as a tuple."""
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list | tuple):
        return tuple(str(item) for item in value if item)
    return ()


def _optional_float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


def root_panel(data: Mapping[str, Any], site_title: str) -> PanelConfig:
    """Return the main breaker described by the site entry data.

    It is named after the site ("Home main breaker"), so two sites do not collide.
    """
    return PanelConfig(
        panel_id=ROOT_PANEL_ID,
        name=f"{site_title} main breaker",
        limit_kw=float(data[CONF_MAIN_BREAKER_KW]),
        phase_limit_a=_optional_float(data.get(CONF_MAIN_PHASE_LIMIT_A)),
        parent_id=None,
        strategy=str(data.get(CONF_STRATEGY, "equal_share")),
        safety_margin_pct=float(data.get(CONF_SAFETY_MARGIN, DEFAULT_SAFETY_MARGIN)),
        load_sensor=data.get(CONF_LOAD_SENSOR) or None,
        subentry_id=None,
        budget=BudgetConfig.from_data(data),
    )


def panel_from_data(panel_id: str, data: Mapping[str, Any]) -> PanelConfig:
    """Return a sub-panel described by subentry data."""
    return PanelConfig(
        panel_id=panel_id,
        name=str(data[CONF_NAME]),
        limit_kw=float(data[CONF_LIMIT_KW]),
        phase_limit_a=_optional_float(data.get(CONF_PHASE_LIMIT_A)),
        parent_id=str(data.get(CONF_PARENT) or ROOT_PANEL_ID),
        strategy=str(data.get(CONF_STRATEGY, "equal_share")),
        safety_margin_pct=float(data.get(CONF_SAFETY_MARGIN, DEFAULT_SAFETY_MARGIN)),
        load_sensor=data.get(CONF_LOAD_SENSOR) or None,
        subentry_id=panel_id,
        budget=BudgetConfig.from_data(data),
    )


def panels_of(entry: ConfigEntry) -> dict[str, PanelConfig]:
    """Return every panel of a site keyed by panel id (the subentry id; root 'main')."""
    panels = {ROOT_PANEL_ID: root_panel(entry.data, entry.title)}
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_PANEL:
            panels[subentry.subentry_id] = panel_from_data(
                subentry.subentry_id, subentry.data
            )
    return panels


def charger_from_data(
    subentry_id: str, title: str, data: Mapping[str, Any], site_phases: int
) -> ChargerSettings:
    """Return the charger described by subentry data."""
    return ChargerSettings(
        charger_id=str(data[CONF_CHARGER_ID]),
        subentry_id=subentry_id,
        name=title,
        panel_id=str(data.get(CONF_PANEL) or ROOT_PANEL_ID),
        managed=bool(data.get(CONF_MANAGED, True)),
        min_current_a=float(data.get(CONF_MIN_CURRENT, DEFAULT_MIN_CURRENT)),
        max_current_a=float(data.get(CONF_MAX_CURRENT, DEFAULT_MAX_CURRENT)),
        phases=int(data.get(CONF_PHASES, site_phases)),
        grid_phase=data.get(CONF_GRID_PHASE) or None,
        priority=int(data.get(CONF_PRIORITY, DEFAULT_PRIORITY)),
        profile_purpose=str(data.get(CONF_PROFILE_PURPOSE, ProfilePurpose.TX_PROFILE)),
        stack_level=int(data.get(CONF_STACK_LEVEL, DEFAULT_STACK_LEVEL)),
        password=data.get(CONF_PASSWORD) or None,
        phase_switching=str(data.get(CONF_PHASE_SWITCHING, DEFAULT_PHASE_SWITCHING)),
        default_mode=data.get(CONF_DEFAULT_MODE) or None,
        default_energy_kwh=_optional_float(data.get(CONF_DEFAULT_ENERGY)),
        default_departure=dt_util.parse_time(str(departure))
        if (departure := data.get(CONF_DEFAULT_DEPARTURE))
        else None,
        soc_sensor=data.get(CONF_SOC_SENSOR) or None,
    )


def switches_phases(charger: ChargerSettings) -> bool:
    """Return whether a charger may switch phases (its phase entities exist)."""
    return charger.phases == 3 and charger.phase_switching != "unsupported"


def chargers_of(entry: ConfigEntry) -> dict[str, ChargerSettings]:
    """Return every configured charger of a site keyed by OCPP identity."""
    site_phases = int(entry.data.get(CONF_PHASES, DEFAULT_PHASES))
    chargers: dict[str, ChargerSettings] = {}
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_CHARGER:
            charger = charger_from_data(
                subentry.subentry_id, subentry.title, subentry.data, site_phases
            )
            chargers[charger.charger_id] = charger
    return chargers


def tree_error(panels: Mapping[str, PanelConfig]) -> str | None:
    """Return the error key of a panel tree that does not fit, or None.

    `parent_missing`: a panel names a parent that does not exist;
    `panel_cycle`: following parents never reaches the main breaker;
    `child_exceeds_parent`: a panel is rated above its parent.
    """
    for panel in panels.values():
        seen = {panel.panel_id}
        current = panel
        while current.parent_id is not None:
            parent = panels.get(current.parent_id)
            if parent is None:
                return "parent_missing"
            if parent.panel_id in seen:
                return "panel_cycle"
            seen.add(parent.panel_id)
            current = parent
        if panel.parent_id is not None and (
            panel.limit_kw > panels[panel.parent_id].limit_kw
        ):
            return "child_exceeds_parent"
    return None
