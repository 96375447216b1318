"""Switch entities: whether a charger is load-managed, and may discharge (V2X)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory

from .entity import (
    ChargerSettingDescription,
    ChargerSettingEntity,
    per_charger,
    setup_per_subentry,
)

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class ChargerSwitchDescription(
    SwitchEntityDescription, ChargerSettingDescription[bool]
):
    """A charger switch, how to read and set it, and whether a charger has it."""


CHARGER_SWITCHES: tuple[ChargerSwitchDescription, ...] = (
    # On: the engine limits this charger. Off: never limited, its power still counts.
    ChargerSwitchDescription(
        key="managed",
        translation_key="managed",
        entity_category=EntityCategory.CONFIG,
        value_fn=lambda c: c.managed,
        set_fn=lambda rt, cid, on: rt.async_set_managed(cid, on),
    ),
    # V2X (OCPP 2.1 bidirectional chargers): off by default; used only when the charger
    # and the car report bidirectional support, never below the car's min SoC.
    ChargerSwitchDescription(
        key="allow_discharge",
        translation_key="allow_discharge",
        entity_category=EntityCategory.CONFIG,
        value_fn=lambda c: c.allow_discharge,
        set_fn=lambda rt, cid, on: rt.async_set_allow_discharge(cid, on),
        has_fn=lambda s: s.managed,
    ),
)


class ChargerSwitch(ChargerSettingEntity[bool], SwitchEntity):
    """A switch of a charger."""

    entity_description: ChargerSwitchDescription

    @property
    def is_on(self) -> bool | None:
        """Return whether the switch is on."""
        return self.setting

    async def async_turn_on(self, /, **kwargs: Any) -> None:
        """Turn the setting on."""
        await self.async_set_setting(True)

    async def async_turn_off(self, /, **kwargs: Any) -> None:
        """Turn the setting off."""
        await self.async_set_setting(False)


# A managed switch per charger (and allow-discharge if managed).
async_setup_entry = setup_per_subentry(
    charger=per_charger(ChargerSwitch, CHARGER_SWITCHES)
)
