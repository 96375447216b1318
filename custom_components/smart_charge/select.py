"""Select entities: the strategy of each panel; each charger's charging mode and phase policy."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory

from .const import CHARGING_MODES, DEFAULT_CHARGING_MODE, PHASE_POLICIES, STRATEGIES
from .entity import (
    ChargerSettingDescription,
    ChargerSettingEntity,
    PanelEntity,
    async_action,
    per_charger,
    setup_per_subentry,
)
from .site_config import switches_phases

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ChargerSelectDescription(SelectEntityDescription, ChargerSettingDescription[str]):
    """A charger select, how to read and choose it, and whether a charger has it."""


STRATEGY = SelectEntityDescription(
    key="strategy",
    translation_key="strategy",
    entity_category=EntityCategory.CONFIG,
    options=list(STRATEGIES),
)

CHARGER_SELECTS: tuple[ChargerSelectDescription, ...] = (
    # How the car at a charger wants its energy (its goal's mode; as fast as possible
    # without a goal); a change replans.
    ChargerSelectDescription(
        key="charging_mode",
        translation_key="charging_mode",
        options=list(CHARGING_MODES),
        value_fn=lambda c: c.goal.mode if c.goal else DEFAULT_CHARGING_MODE,
        set_fn=lambda rt, cid, option: rt.async_update_goal(cid, mode=option),
        has_fn=lambda s: s.managed,
    ),
    # How a charger that switches phases is driven: auto, always one, always three;
    # the next rebalance follows it (after the dwell time).
    ChargerSelectDescription(
        key="phase_policy",
        translation_key="phase_policy",
        entity_category=EntityCategory.CONFIG,
        options=list(PHASE_POLICIES),
        value_fn=lambda c: c.phase_policy,
        set_fn=lambda rt, cid, option: rt.async_set_phase_policy(cid, option),
        has_fn=lambda s: s.managed and switches_phases(s),
    ),
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


class ChargerSelect(ChargerSettingEntity[str], SelectEntity):
    """A select of a charger."""

    entity_description: ChargerSelectDescription

    @property
    def current_option(self) -> str | None:
        """Return the option in force."""
        return self.setting

    async def async_select_option(self, option: str) -> None:
        """Choose the option."""
        await self.async_set_setting(option)


# A strategy select per panel; a charging-mode select per managed charger, and a
# phase-policy select where it may switch phases.
async_setup_entry = setup_per_subentry(
    panel=lambda c, p: [StrategySelect(c, p, STRATEGY)],
    charger=per_charger(ChargerSelect, CHARGER_SELECTS),
)
