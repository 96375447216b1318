"""Smart Charge: a local OCPP back office with load management for Home Assistant."""

from __future__ import annotations

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import (
    config_validation as cv,
    device_registry as dr,
    issue_registry as ir,
)
from homeassistant.helpers.typing import ConfigType

from .const import DOMAIN
from .coordinator import (
    SmartChargeConfigEntry,
    SmartChargeCoordinator,
    SmartChargeRuntimeData,
)
from .csms import preload_schemas
from .entity import charger_identifier, panel_device_info, panel_identifier
from .history_services import async_setup_history_services
from .runtime import SiteRuntime
from .runtime_state import RuntimeStore
from .services import async_setup_services
from .site_config import PanelConfig, chargers_of, panels_of, tree_error
from .tags import async_remove_tag_stores, async_tags_update_listener

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
    issue_id = f"panel_tree_invalid_{entry.entry_id}"
    if error := tree_error(panels):
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="panel_tree_invalid",
            translation_placeholders={"error": error},
        )
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="panel_tree_invalid",
            translation_placeholders={"error": error},
        )
    ir.async_delete_issue(hass, DOMAIN, issue_id)
    # The OCPP library would read its JSON schemas on the loop at first use.
    await hass.async_add_executor_job(preload_schemas)
    coordinator = SmartChargeCoordinator(hass, entry)
    site = SiteRuntime(hass, entry, coordinator, panels, chargers)
    await site.async_start()
    entry.runtime_data = SmartChargeRuntimeData(
        site=site,
        coordinator=coordinator,
        panels=panels,
        chargers=chargers,
        entry_data=dict(entry.data),
        options=dict(entry.options),
        title=entry.title,
    )
    _async_register_panels(hass, entry, panels)
    # Tags first: a rebalance the other listener starts already sees the new tags.
    entry.async_on_unload(entry.add_update_listener(async_tags_update_listener))
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))
    try:
        await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    except BaseException:
        # Setup did not finish: stop the server so the port is free for a retry.
        await site.async_stop()
        raise
    return True


def _async_register_panels(
    hass: HomeAssistant, entry: SmartChargeConfigEntry, panels: dict[str, PanelConfig]
) -> None:
    """Create the panel devices parents first, so every parent device exists."""
    registry = dr.async_get(hass)
    done: set[str | None] = {None}
    while len(done) <= len(panels):
        ready = [
            p for p in panels.values() if p.panel_id not in done and p.parent_id in done
        ]
        if not ready:
            return  # a broken tree: the config flow prevents it
        for panel in ready:
            registry.async_get_or_create(
                config_entry_id=entry.entry_id,
                config_subentry_id=panel.subentry_id,
                **panel_device_info(hass, entry.entry_id, panel),
            )
            done.add(panel.panel_id)


async def _async_update_listener(
    hass: HomeAssistant, entry: SmartChargeConfigEntry
) -> None:
    """Apply added panels and chargers (and removed chargers) live; reload otherwise.

    Adopting a discovered charger therefore keeps every charger connected.
    """
    runtime = entry.runtime_data
    panels, chargers = panels_of(entry), chargers_of(entry)
    live = (
        dict(entry.data) == runtime.entry_data
        and dict(entry.options) == runtime.options
        and entry.title == runtime.title
        and all(panels.get(pid) == panel for pid, panel in runtime.panels.items())
        and all(
            chargers.get(cid, charger) == charger
            for cid, charger in runtime.chargers.items()
        )
        and tree_error(panels) is None
    )
    if not live:
        await hass.config_entries.async_reload(entry.entry_id)
        return
    added_panels = [p for pid, p in panels.items() if pid not in runtime.panels]
    added_chargers = [c for cid, c in chargers.items() if cid not in runtime.chargers]
    # The runtime shares these dicts with the site: update them in place.
    runtime.panels.update(panels)
    runtime.chargers.clear()
    runtime.chargers.update(chargers)
    _async_register_panels(hass, entry, panels)
    runtime.site.async_config_changed(panels_changed=bool(added_panels))
    for add in runtime.adders:
        add(added_panels, added_chargers)


async def async_unload_entry(
    hass: HomeAssistant, entry: SmartChargeConfigEntry
) -> bool:
    """Stop the server of a site; its port is free when this returns."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.site.async_stop()
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
    owned = {
        panel_identifier(entry.entry_id, panel_id) for panel_id in panels_of(entry)
    } | {
        charger_identifier(entry.entry_id, charger_id)
        for charger_id in chargers_of(entry)
    }
    return not device_entry.identifiers & owned
