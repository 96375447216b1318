"""Smart Charge: a local OCPP back office with load management for Home Assistant."""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .const import CONF_MAIN_BREAKER_KW, CONF_PORT


@dataclass(kw_only=True)
class SmartChargeRuntimeData:
    """What async_setup_entry builds for one site."""

    port: int
    main_breaker_kw: float


type SmartChargeConfigEntry = ConfigEntry[SmartChargeRuntimeData]


async def async_setup_entry(hass: HomeAssistant, entry: SmartChargeConfigEntry) -> bool:
    """Set up a Smart Charge site from a config entry."""
    entry.runtime_data = SmartChargeRuntimeData(
        port=entry.data[CONF_PORT],
        main_breaker_kw=entry.data[CONF_MAIN_BREAKER_KW],
    )
    return True


async def async_unload_entry(
    hass: HomeAssistant, entry: SmartChargeConfigEntry
) -> bool:
    """Unload a Smart Charge site."""
    return True
