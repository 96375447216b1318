"""Base entities of Smart Charge: one for panels, one for chargers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from functools import wraps
from typing import Any, Concatenate, Protocol

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity import Entity, EntityDescription
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import SmartChargeConfigEntry, SmartChargeCoordinator
from .csms import (
    CallRejectedError,
    CallTimeoutError,
    ChargerNotConnectedError,
    CsmsError,
)
from .devices import charger_device_info, panel_device_info
from .engine import EngineError
from .models import ChargerData, PanelData
from .site_config import ChargerSettings, PanelConfig


def translated_error(err: CsmsError | EngineError, target: str) -> HomeAssistantError:
    """Return a server or engine error as a translated error about `target`."""
    placeholders = {"charger_id": target}
    match err:
        case ChargerNotConnectedError():
            key = "charger_offline"
        case CallTimeoutError():
            key = "charger_timeout"
        case CallRejectedError() | CsmsError():
            key, placeholders = "charger_rejected", {**placeholders, "reason": str(err)}
        case _:
            key, placeholders = "action_failed", {"target": target, "error": str(err)}
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders,
    )


def async_action[_E: "PanelEntity | ChargerEntity", **_P](
    func: Callable[Concatenate[_E, _P], Coroutine[Any, Any, None]],
) -> Callable[Concatenate[_E, _P], Coroutine[Any, Any, None]]:
    """Turn the engine's and the server's errors of an entity action into translated ones."""

    @wraps(func)
    async def action(self: _E, /, *args: _P.args, **kwargs: _P.kwargs) -> None:
        try:
            await func(self, *args, **kwargs)
        except (CsmsError, EngineError) as err:
            raise translated_error(err, self.target_id) from err

    return action


def charger_unique_id(entry_id: str, charger_id: str, key: str) -> str:
    """Return the unique id of a charger's entity."""
    return f"{entry_id}_charger_{charger_id}_{key}"


type PanelEntities = Callable[[SmartChargeCoordinator, PanelConfig], Iterable[Entity]]
type ChargerEntities = Callable[
    [SmartChargeCoordinator, ChargerSettings], Iterable[Entity]
]


class ChargerDescription(Protocol):
    """An entity description that says whether a charger has its entity."""

    @property
    def has_fn(self) -> Callable[[ChargerSettings], bool]:
        """Return whether a charger with these settings has the entity."""


def per_charger[_D: ChargerDescription](
    entity: Callable[[SmartChargeCoordinator, ChargerSettings, _D], Entity],
    descriptions: Sequence[_D],
) -> ChargerEntities:
    """Return a charger's entities: one per description that the charger has."""
    return lambda coordinator, settings: [
        entity(coordinator, settings, description)
        for description in descriptions
        if description.has_fn(settings)
    ]


def add_per_subentry(
    entry: SmartChargeConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
    *,
    panel: PanelEntities | None = None,
    charger: ChargerEntities | None = None,
) -> None:
    """Add each panel's and each charger's entities to its own config subentry.

    A coordinator listener adds them for every subentry it has not seen yet, so panels
    and chargers added while the site runs get theirs without a reload; a removed one
    takes its entities with its devices (the registry removes them).
    """
    coordinator = entry.runtime_data
    # Subentry ids whose entities are added (the main breaker's is None).
    seen: set[str | None] = set()

    @callback
    def add_new() -> None:
        panels = coordinator.panels.values()
        chargers = coordinator.chargers.values()
        seen.intersection_update(
            {p.subentry_id for p in panels} | {c.subentry_id for c in chargers}
        )
        if panel is not None:
            for config in panels:
                if config.subentry_id not in seen:
                    seen.add(config.subentry_id)
                    async_add_entities(
                        panel(coordinator, config),
                        config_subentry_id=config.subentry_id,
                    )
        if charger is not None:
            for settings in chargers:
                if settings.subentry_id not in seen:
                    seen.add(settings.subentry_id)
                    async_add_entities(
                        charger(coordinator, settings),
                        config_subentry_id=settings.subentry_id,
                    )

    add_new()
    entry.async_on_unload(coordinator.async_add_listener(add_new))


type PlatformSetup = Callable[
    [HomeAssistant, SmartChargeConfigEntry, AddConfigEntryEntitiesCallback],
    Coroutine[Any, Any, None],
]


def setup_per_subentry(
    *, panel: PanelEntities | None = None, charger: ChargerEntities | None = None
) -> PlatformSetup:
    """Return a platform's `async_setup_entry` that adds entities by `add_per_subentry`.

    A platform whose entities are only its panels' and chargers' says which, once:
    `async_setup_entry = setup_per_subentry(charger=per_charger(X, DESCRIPTIONS))`
    (at the end of the module, below its entity classes).
    """

    async def async_setup_entry(
        hass: HomeAssistant,
        entry: SmartChargeConfigEntry,
        async_add_entities: AddConfigEntryEntitiesCallback,
    ) -> None:
        """Add each panel's and each charger's entities to its subentry."""
        add_per_subentry(entry, async_add_entities, panel=panel, charger=charger)

    return async_setup_entry


class PanelEntity(CoordinatorEntity[SmartChargeCoordinator]):
    """An entity of a panel device."""

    _attr_has_entity_name = True

    def __init__(
        self,
        coordinator: SmartChargeCoordinator,
        panel: PanelConfig,
        description: EntityDescription,
    ) -> None:
        """Bind the entity to its panel."""
        super().__init__(coordinator)
        self.entity_description = description
        self.panel_id = panel.panel_id
        self.target_id = panel.panel_id
        entry_id = coordinator.config_entry.entry_id
        self._attr_unique_id = f"{entry_id}_panel_{panel.panel_id}_{description.key}"
        self._attr_device_info = panel_device_info(coordinator.hass, entry_id, panel)

    @property
    def panel_data(self) -> PanelData | None:
        """Return this panel's current data."""
        return self.coordinator.data.panels.get(self.panel_id)

    @property
    def available(self) -> bool:
        """Return whether the panel is known to the runtime."""
        return super().available and self.panel_data is not None


class ChargerEntity(CoordinatorEntity[SmartChargeCoordinator]):
    """An entity of a charger device."""

    _attr_has_entity_name = True
    # Entities that still make sense while the charger is offline.
    available_offline = False

    def __init__(
        self,
        coordinator: SmartChargeCoordinator,
        charger: ChargerSettings,
        description: EntityDescription,
    ) -> None:
        """Bind the entity to its charger."""
        super().__init__(coordinator)
        self.entity_description = description
        self.charger_id = charger.charger_id
        self.target_id = charger.charger_id
        entry_id = coordinator.config_entry.entry_id
        self._attr_unique_id = charger_unique_id(
            entry_id, charger.charger_id, description.key
        )
        self._attr_device_info = charger_device_info(
            coordinator.hass,
            entry_id,
            charger,
            coordinator.charger_info(charger.charger_id),
        )

    @property
    def charger_data(self) -> ChargerData | None:
        """Return this charger's current data."""
        return self.coordinator.data.chargers.get(self.charger_id)

    @property
    def available(self) -> bool:
        """Return whether the charger is connected (or the entity works offline)."""
        data = self.charger_data
        if not super().available or data is None:
            return False
        return data.connected or self.available_offline


@dataclass(frozen=True, kw_only=True)
class ChargerSettingDescription[_V](EntityDescription):
    """A charger's setting: how to read it, how to change it, whether a charger has it.

    A platform's description derives from its own and this one, e.g.
    `class ChargerSwitchDescription(SwitchEntityDescription, ChargerSettingDescription[bool])`.
    """

    value_fn: Callable[[ChargerData], _V | None]
    set_fn: Callable[[SmartChargeCoordinator, str, _V], Awaitable[None]]
    has_fn: Callable[[ChargerSettings], bool] = lambda _: True


class ChargerSettingEntity[_V](ChargerEntity):
    """A charger entity that shows and changes one setting; it works while offline."""

    entity_description: ChargerSettingDescription[_V]
    available_offline = True

    @property
    def setting(self) -> _V | None:
        """Return the setting in force."""
        data = self.charger_data
        return None if data is None else self.entity_description.value_fn(data)

    @async_action
    async def async_set_setting(self, value: _V) -> None:
        """Change the setting (the coordinator rebalances or replans)."""
        await self.entity_description.set_fn(self.coordinator, self.charger_id, value)
