"""The devices of a site: their identifiers, their device info, the panels' registration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo

from .compat import device_info
from .const import DOMAIN, ROOT_PANEL_ID
from .runtime_state import ChargerInfo
from .site_config import ChargerSettings, PanelConfig


def panel_identifier(entry_id: str, panel_id: str) -> tuple[str, str]:
    """Return the device identifier of a panel."""
    return (DOMAIN, f"{entry_id}_panel_{panel_id}")


def charger_identifier(entry_id: str, charger_id: str) -> tuple[str, str]:
    """Return the device identifier of a charger."""
    return (DOMAIN, f"{entry_id}_charger_{charger_id}")


def site_identifiers(
    entry_id: str, panel_ids: Iterable[str], charger_ids: Iterable[str]
) -> set[tuple[str, str]]:
    """Return the identifiers of every device the site's panels and chargers own."""
    return {panel_identifier(entry_id, panel_id) for panel_id in panel_ids} | {
        charger_identifier(entry_id, charger_id) for charger_id in charger_ids
    }


def panel_device_info(
    hass: HomeAssistant, entry_id: str, panel: PanelConfig
) -> DeviceInfo:
    """Return the device of a panel, below its parent panel."""
    return device_info(
        hass,
        entry_id,
        identifier=panel_identifier(entry_id, panel.panel_id),
        name=panel.name,
        manufacturer="Smart Charge",
        model="Main breaker" if panel.panel_id == ROOT_PANEL_ID else "Panel",
        via=None
        if panel.parent_id is None
        else panel_identifier(entry_id, panel.parent_id),
    )


def charger_device_info(
    hass: HomeAssistant,
    entry_id: str,
    charger: ChargerSettings,
    info: ChargerInfo | None,
) -> DeviceInfo:
    """Return the device of a charger, below its panel.

    It shows what the charger told at its last boot (kept across restarts); only a
    charger that never booted shows the placeholder.
    """
    return device_info(
        hass,
        entry_id,
        identifier=charger_identifier(entry_id, charger.charger_id),
        name=charger.name,
        manufacturer=info.vendor if info else "Smart Charge",
        model=info.model if info else "OCPP charger",
        via=panel_identifier(entry_id, charger.panel_id),
        serial_number=info.serial if info else None,
        sw_version=info.firmware if info else None,
    )


@callback
def async_register_panels(
    hass: HomeAssistant, entry_id: str, panels: Mapping[str, PanelConfig]
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
                config_entry_id=entry_id,
                config_subentry_id=panel.subentry_id,
                **panel_device_info(hass, entry_id, panel),
            )
            done.add(panel.panel_id)
