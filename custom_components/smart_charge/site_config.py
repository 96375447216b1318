"""Read the site, its panels and chargers out of a config entry and its subentries."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from homeassistant.config_entries import ConfigEntry

from .budgets import BudgetConfig
from .const import (
    CONF_CHARGER_ID,
    CONF_GRID_PHASE,
    CONF_LIMIT_KW,
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
    CONF_PRIORITY,
    CONF_PROFILE_PURPOSE,
    CONF_SAFETY_MARGIN,
    CONF_STACK_LEVEL,
    CONF_STRATEGY,
    DEFAULT_MAX_CURRENT,
    DEFAULT_MIN_CURRENT,
    DEFAULT_PHASE_SWITCHING,
    DEFAULT_PHASES,
    DEFAULT_PRIORITY,
    DEFAULT_SAFETY_MARGIN,
    DEFAULT_STACK_LEVEL,
    ROOT_PANEL_ID,
    SUBENTRY_CHARGER,
    SUBENTRY_PANEL,
    ProfilePurpose,
)


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
