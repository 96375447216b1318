"""Select entities: the strategy of each panel."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .const import STRATEGIES
from .coordinator import SmartChargeConfigEntry
from .entity import PanelEntity, add_per_subentry, async_action

PARALLEL_UPDATES = 0

STRATEGY = SelectEntityDescription(
    key="strategy",
    translation_key="strategy",
    entity_category=EntityCategory.CONFIG,
    options=list(STRATEGIES),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: SmartChargeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a strategy select per panel."""
    add_per_subentry(
        entry,
        async_add_entities,
        panel=lambda c, p: [StrategySelect(c, p, STRATEGY)],
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
        await self.coordinator.config_entry.runtime_data.site.async_set_strategy(
            self.panel_id, option
        )
