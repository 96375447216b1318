"""Service targets: what an area reaches besides our devices, and what is not a target.

An area holds devices and entities of every integration, and entities without a device;
a call through it acts on the Smart Charge devices only. A device or entity named in the
call that is not a loaded site's panel or charger is a translated error naming it.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    entity_registry as er,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import DOMAIN

from .common import device, value_of

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def _set_grid_limit(hass: HomeAssistant, target: dict[str, str]) -> None:
    await hass.services.async_call(
        DOMAIN, "set_grid_limit", {"limit_kw": 4.0}, target=target, blocking=True
    )


async def test_an_area_acts_on_our_panel_only(
    hass: HomeAssistant, init_site: MockConfigEntry
) -> None:
    """A lamp's device, a device-less sensor and a stale device of ours are left out."""
    area = ar.async_get(hass).async_create("Garage")
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    other = MockConfigEntry(domain="light")
    other.add_to_hass(hass)
    lamp = devices.async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("light", "lamp-1")}
    )
    devices.async_update_device(lamp.id, area_id=area.id)
    entities.async_get_or_create("light", "light", "lamp-1", device_id=lamp.id)
    loose = entities.async_get_or_create("sensor", "template", "outdoor-temperature")
    entities.async_update_entity(loose.entity_id, area_id=area.id)
    # A device of ours an older version left behind: neither a panel nor a charger.
    stale = devices.async_get_or_create(
        config_entry_id=init_site.entry_id,
        identifiers={(DOMAIN, "legacy"), (DOMAIN, f"{init_site.entry_id}_tag_ABC")},
    )
    devices.async_update_device(stale.id, area_id=area.id)
    garage = device(hass, init_site.entry_id, "panel", "garage")
    devices.async_update_device(garage.id, area_id=area.id)

    await _set_grid_limit(hass, {"area_id": area.id})
    assert value_of(hass, "number.garage_grid_limit") == "4.0"


async def test_an_area_with_only_other_things_has_no_target(
    hass: HomeAssistant, init_site: MockConfigEntry
) -> None:
    area = ar.async_get(hass).async_create("Kitchen")
    entity = er.async_get(hass).async_get_or_create("sensor", "template", "fridge")
    er.async_get(hass).async_update_entity(entity.entity_id, area_id=area.id)
    with pytest.raises(ServiceValidationError) as err:
        await _set_grid_limit(hass, {"area_id": area.id})
    assert err.value.translation_key == "no_target"
    assert value_of(hass, "number.garage_grid_limit") == "11.0"


@pytest.mark.parametrize("kind", ["unknown device", "stale device", "foreign entity"])
async def test_a_named_target_that_is_not_ours_names_itself(
    hass: HomeAssistant, init_site: MockConfigEntry, kind: str
) -> None:
    """A device id nobody has, a device of ours that is no panel, a lamp's entity."""
    devices = dr.async_get(hass)
    entities = er.async_get(hass)
    if kind == "unknown device":
        target, name = {"device_id": "0123456789abcdef"}, "0123456789abcdef"
    elif kind == "stale device":
        stale = devices.async_get_or_create(
            config_entry_id=init_site.entry_id,
            identifiers={(DOMAIN, f"{init_site.entry_id}_tag_ABC")},
            name="Old tag",
        )
        target, name = {"device_id": stale.id}, "Old tag"
    else:
        other = MockConfigEntry(domain="light")
        other.add_to_hass(hass)
        lamp = devices.async_get_or_create(
            config_entry_id=other.entry_id,
            identifiers={("light", "lamp-1")},
            name="Lamp",
        )
        entity = entities.async_get_or_create(
            "light", "light", "lamp-1", device_id=lamp.id
        )
        target, name = {"entity_id": entity.entity_id}, "Lamp"
    with pytest.raises(ServiceValidationError) as err:
        await _set_grid_limit(hass, target)
    assert err.value.translation_key == "not_a_panel"
    assert err.value.translation_placeholders == {"target": name}
    assert value_of(hass, "number.garage_grid_limit") == "11.0"


async def test_an_entity_without_a_device_is_no_target(
    hass: HomeAssistant, init_site: MockConfigEntry
) -> None:
    """An entity id that is not registered, or has no device, reaches nothing."""
    loose = er.async_get(hass).async_get_or_create("sensor", "template", "fridge")
    for entity_id in ("sensor.nothing_here", loose.entity_id):
        with pytest.raises(ServiceValidationError) as err:
            await _set_grid_limit(hass, {"entity_id": entity_id})
        assert err.value.translation_key == "no_target"


async def test_a_panel_of_an_unloaded_site_is_not_a_target(
    hass: HomeAssistant, init_site: MockConfigEntry
) -> None:
    """Unloaded, the site keeps its devices, but a call to its panel is an error."""
    garage = device(hass, init_site.entry_id, "panel", "garage")
    assert await hass.config_entries.async_unload(init_site.entry_id)
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError) as err:
        await _set_grid_limit(hass, {"device_id": garage.id})
    assert err.value.translation_key == "not_a_panel"
    assert err.value.translation_placeholders == {"target": "Garage"}
