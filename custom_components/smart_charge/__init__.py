"""Smart Charge: a local OCPP back office with load management for Home Assistant."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
from .coordinator import SmartChargeConfigEntry, SmartChargeCoordinator
from .csms import preload_schemas
from .devices import async_register_panels, site_identifiers
from .history_services import async_setup_history_services
from .repairs import async_panel_tree_invalid
from .runtime_state import RuntimeStore
from .services import async_setup_services
from .site_config import chargers_of, panels_of, tree_error
from .tags import async_remove_tag_stores

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.DATETIME,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the services once for all sites."""
    async_setup_services(hass)
    async_setup_history_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: SmartChargeConfigEntry) -> bool:
    """Start the OCPP server and the controller of a site."""
    panels, chargers = panels_of(entry), chargers_of(entry)
    error = tree_error(panels)
    async_panel_tree_invalid(hass, entry.entry_id, error)
    if error is not None:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="panel_tree_invalid",
            translation_placeholders={"error": error},
        )
    # The OCPP library would read its JSON schemas on the loop at first use.
    await hass.async_add_executor_job(preload_schemas)
    coordinator = SmartChargeCoordinator(hass, entry, panels, chargers)
    await coordinator.async_start()
    entry.runtime_data = coordinator
    async_register_panels(hass, entry.entry_id, panels)
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    try:
        await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    except BaseException:
        # Setup did not finish: stop the server so the port is free for a retry.
        await coordinator.async_stop()
        raise
    return True


async def _async_update_listener(
    hass: HomeAssistant, entry: SmartChargeConfigEntry
) -> None:
    """Apply added panels and chargers (and removed chargers) live; reload otherwise.

    Adopting a discovered charger therefore keeps every charger connected. Tags are
    applied first, so the rebalance that follows already sees them.
    """
    coordinator = entry.runtime_data
    coordinator.tags.async_tags_changed()
    panels, chargers = panels_of(entry), chargers_of(entry)
    live = (
        dict(entry.data) == coordinator.entry_data
        and dict(entry.options) == coordinator.options
        and entry.title == coordinator.title
        and all(panels.get(pid) == panel for pid, panel in coordinator.panels.items())
        and all(
            chargers.get(cid, charger) == charger
            for cid, charger in coordinator.chargers.items()
        )
        and tree_error(panels) is None
    )
    if not live:
        await hass.config_entries.async_reload(entry.entry_id)
        return
    added_panels = panels.keys() - coordinator.panels.keys()
    # The coordinator shares these dicts with its platforms: update them in place. Its
    # refresh adds the entities of what was added (see `entity.add_per_subentry`).
    coordinator.panels.update(panels)
    coordinator.chargers.clear()
    coordinator.chargers.update(chargers)
    async_register_panels(hass, entry.entry_id, panels)
    coordinator.async_config_changed(panels_changed=bool(added_panels))


async def async_unload_entry(
    hass: HomeAssistant, entry: SmartChargeConfigEntry
) -> bool:
    """Stop the server of a site; its port is free when this returns."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.async_stop()
    return unloaded


async def async_remove_entry(
    hass: HomeAssistant, entry: SmartChargeConfigEntry
) -> None:
    """Forget the site's runtime state (overrides, sessions) when the site is deleted."""
    await RuntimeStore(hass, entry.entry_id).async_remove()
    await async_remove_tag_stores(hass, entry.entry_id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: SmartChargeConfigEntry, device_entry: dr.DeviceEntry
) -> bool:
    """Let the user delete a device that no panel or charger of the site owns any more.

    Devices of configured panels and chargers go with their subentry; anything else
    left under the site (a renamed identity, a panel removed by hand) is stale.
    """
    owned = site_identifiers(entry.entry_id, panels_of(entry), chargers_of(entry))
    return not device_entry.identifiers & owned
