"""Calls whose spelling differs between the Home Assistant versions we support.

The minimum is 2025.4.4; newer releases deprecate `via_device` and
`device_registry.async_get_device` (both stop working in 2027.8) for calls that do not
exist in the minimum. Each choice is made once, from what the installed Home Assistant
offers; drop the old branch when the minimum gains the new call.
"""

from __future__ import annotations

import inspect
from typing import Any, Final, cast

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

# Newer: a device links to its parent by device id (`via_device_id`), not by identifier.
HAS_VIA_DEVICE_ID: Final = (
    "via_device_id"
    in inspect.signature(dr.DeviceRegistry.async_get_or_create).parameters
)
# Newer: a lookup by identifier names the config entry that owns the device.
HAS_GET_DEVICE_BY_IDENTIFIER: Final = hasattr(
    dr.DeviceRegistry, "async_get_device_by_identifier"
)


def async_get_device(
    hass: HomeAssistant, identifier: tuple[str, str], config_entry_id: str
) -> dr.DeviceEntry | None:
    """Return the device of `config_entry_id` with `identifier`, if registered."""
    registry = dr.async_get(hass)
    if HAS_GET_DEVICE_BY_IDENTIFIER:
        by_identifier = getattr(registry, "async_get_device_by_identifier")  # noqa: B009
        return cast("dr.DeviceEntry | None", by_identifier(identifier, config_entry_id))
    return registry.async_get_device(identifiers={identifier})


def device_info(
    hass: HomeAssistant,
    config_entry_id: str,
    *,
    identifier: tuple[str, str],
    name: str,
    manufacturer: str,
    model: str,
    via: tuple[str, str] | None = None,
) -> dr.DeviceInfo:
    """Return the device info of a device, below the device `via` if given.

    With `via_device_id` the parent must be registered already (panels are registered
    parents first, before any entity); an unregistered parent leaves the link out.
    """
    fields: dict[str, Any] = {
        "identifiers": {identifier},
        "name": name,
        "manufacturer": manufacturer,
        "model": model,
    }
    if via is not None:
        if not HAS_VIA_DEVICE_ID:
            fields["via_device"] = via
        elif (parent := async_get_device(hass, via, config_entry_id)) is not None:
            fields["via_device_id"] = parent.id
    # A TypedDict in older releases, a dataclass in newer ones: keywords suit both.
    info_type: Any = dr.DeviceInfo
    return cast("dr.DeviceInfo", info_type(**fields))
