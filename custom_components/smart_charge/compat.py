"""Calls whose spelling differs between the Home Assistant versions we support.

The minimum is 2025.4.4; newer releases deprecate `via_device` and
`device_registry.async_get_device` (both stop working in 2027.8) for calls that do not
exist in the minimum, and move the resolution of action targets from
`helpers.service.async_extract_referenced_entity_ids(hass, call)` (2025.4.4; gone in
2026.x) to `helpers.target.async_extract_referenced_entity_ids(hass, selection)` with a
`TargetSelection` (2026.x; `TargetSelectorData` in between, removed in 2026.12). Each choice is made once, from what the installed Home Assistant
offers; drop the old branch when the minimum gains the new call.
"""

from __future__ import annotations

from collections.abc import Mapping
import importlib
import importlib.util
import inspect
from typing import Any, Final, cast

from homeassistant.const import ATTR_AREA_ID, ATTR_FLOOR_ID, ATTR_LABEL_ID
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr, service

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
    serial_number: str | None = None,
    sw_version: str | None = None,
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
    if serial_number is not None:
        fields["serial_number"] = serial_number
    if sw_version is not None:
        fields["sw_version"] = sw_version
    if via is not None:
        if not HAS_VIA_DEVICE_ID:
            fields["via_device"] = via
        elif (parent := async_get_device(hass, via, config_entry_id)) is not None:
            fields["via_device_id"] = parent.id
    # A TypedDict in older releases, a dataclass in newer ones: keywords suit both.
    info_type: Any = dr.DeviceInfo
    return cast("dr.DeviceInfo", info_type(**fields))


# Newer: target resolution lives in `helpers.target`.
_TARGET_HELPERS: Final[Any] = (
    importlib.import_module("homeassistant.helpers.target")
    if importlib.util.find_spec("homeassistant.helpers.target") is not None
    else None
)
_TARGET_SELECTION: Final[Any] = (
    getattr(_TARGET_HELPERS, "TargetSelection", None)
    or getattr(_TARGET_HELPERS, "TargetSelectorData", None)
    if _TARGET_HELPERS is not None
    else None
)


def async_devices_and_entities_of_groups(
    hass: HomeAssistant, call: ServiceCall
) -> tuple[set[str], set[str]]:
    """Return the device ids and entity ids the call's areas, floors and labels reach.

    Only those targets are resolved (Home Assistant's own rules: devices and entities
    in an area or on a floor, labelled ones); the call's devices and entities are
    the caller's to read.
    """
    data: Mapping[str, Any] = {
        key: call.data[key]
        for key in (ATTR_AREA_ID, ATTR_FLOOR_ID, ATTR_LABEL_ID)
        if call.data.get(key)
    }
    if not data:
        return set(), set()
    if _TARGET_SELECTION is not None:
        selected = _TARGET_HELPERS.async_extract_referenced_entity_ids(
            hass, _TARGET_SELECTION(dict(data))
        )
    else:
        extract = getattr(service, "async_extract_referenced_entity_ids")  # noqa: B009
        selected = extract(
            hass, ServiceCall(hass, call.domain, call.service, dict(data))
        )
    return (
        set(selected.referenced_devices),
        set(selected.referenced) | set(selected.indirectly_referenced),
    )
