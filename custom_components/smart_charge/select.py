"""Select entities: the strategy of each panel; each charger's charging mode and phase policy."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import CHARGING_MODES, DEFAULT_CHARGING_MODE, PHASE_POLICIES, STRATEGIES
from .coordinator import SmartChargeConfigEntry
from .entity import ChargerEntity, PanelEntity, add_per_subentry, async_action
from .site_config import switches_phases

PARALLEL_UPDATES = 0

STRATEGY = SelectEntityDescription(
    key="strategy",
    translation_key="strategy",
    entity_category=EntityCategory.CONFIG,
    options=list(STRATEGIES),
)

CHARGING_MODE = SelectEntityDescription(
    key="charging_mode",
    translation_key="charging_mode",
    options=list(CHARGING_MODES),
)

PHASE_POLICY = SelectEntityDescription(
    key="phase_policy",
    translation_key="phase_policy",
    entity_category=EntityCategory.CONFIG,
    options=list(PHASE_POLICIES),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SmartChargeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a strategy select per panel and a charging-mode select per managed charger."""
    add_per_subentry(
        entry,
        async_add_entities,
        panel=lambda c, p: [StrategySelect(c, p, STRATEGY)],
        charger=lambda c, ch: [
            ChargingModeSelect(c, ch, CHARGING_MODE),
            *([PhasePolicySelect(c, ch, PHASE_POLICY)] if switches_phases(ch) else []),
        ]
        if ch.managed
        else [],
    )


class StrategySelect(PanelEntity, SelectEntity):
    """How a panel shares its power."""

    @property
    def current_option(self) -> str | None:
        """Return the strategy in force."""
        data = self.panel_data
        return None if data is None else data.strategy

    @async_action
    async def async_select_option(self, option: str) -> None:
        """Change the strategy at runtime."""
        await self.coordinator.async_set_strategy(self.panel_id, option)


class ChargingModeSelect(ChargerEntity, SelectEntity):
    """How the car at a charger wants its energy (its goal's mode)."""

    available_offline = True

    @property
    def current_option(self) -> str | None:
        """Return the goal's mode (as fast as possible without a goal)."""
        data = self.charger_data
        if data is None:
            return None
        return data.goal.mode if data.goal else DEFAULT_CHARGING_MODE

    @async_action
    async def async_select_option(self, option: str) -> None:
        """Change the goal's mode and replan."""
        await self.coordinator.async_update_goal(self.charger_id, mode=option)


class PhasePolicySelect(ChargerEntity, SelectEntity):
    """How a charger that switches phases is driven: auto, always one, always three."""

    available_offline = True

    @property
    def current_option(self) -> str | None:
        """Return the policy in force."""
        data = self.charger_data
        return None if data is None else data.phase_policy

    @async_action
    async def async_select_option(self, option: str) -> None:
        """Change the policy; the next rebalance follows it (after the dwell time)."""
        await self.coordinator.async_set_phase_policy(self.charger_id, option)
