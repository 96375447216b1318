"""The tag discovery flow's aborts: the site is gone, or the tag is already added."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.smart_charge.const import DOMAIN
from custom_components.smart_charge.tag_config import CONF_TAG_ID, CONF_TAG_NAME

from .common import site_entry
from .test_tags import tag


async def _discover(hass: HomeAssistant, entry_id: str, id_tag: str) -> Any:
    """Start the flow the site starts for an unknown tag (not set up: no server)."""
    return await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_INTEGRATION_DISCOVERY},
        data={"entry_id": entry_id, CONF_TAG_ID: id_tag, "charger_id": "CP-1"},
    )


async def test_tag_of_a_removed_site_is_not_offered(hass: HomeAssistant) -> None:
    """A tag seen by a site that is gone by the time the flow starts aborts."""
    result = await _discover(hass, "no-such-site", "GUEST-7")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "site_gone"


async def test_tag_added_meanwhile_is_not_offered(hass: HomeAssistant) -> None:
    """A tag the site has (whatever its case) is not offered again."""
    entry = site_entry(1, [tag("t1", "Guest", "GUEST-7")])
    entry.add_to_hass(hass)
    result = await _discover(hass, entry.entry_id, "guest-7")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_site_removed_while_the_offer_is_open(hass: HomeAssistant) -> None:
    """Naming a tag after its site was removed aborts instead of adding it nowhere."""
    entry = site_entry(1, [])
    entry.add_to_hass(hass)
    result = await _discover(hass, entry.entry_id, "GUEST-7")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "tag_confirm"
    await hass.config_entries.async_remove(entry.entry_id)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TAG_NAME: "Guest"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "site_gone"
