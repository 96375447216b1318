"""Config flow edges: a charger added to a site whose stored tree already has a problem."""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType

from custom_components.smart_charge.const import (
    CONF_MAIN_BREAKER_KW,
    CONF_MAX_CURRENT,
    CONF_PANEL,
    SUBENTRY_CHARGER,
)

from .test_config_flow import CHARGER, _panel, _site_entry, _subentry_flow


async def test_a_charger_is_judged_by_its_own_limits_only(
    hass: HomeAssistant, free_port: int
) -> None:
    """A stored 60 kW panel under a 17 kW main (made before the main was lowered) is
    not the new charger's problem: a 16 A charger that fits is added; one that does not
    fit that panel is still refused on its own field."""
    main: dict[str, Any] = {CONF_MAIN_BREAKER_KW: 17.0}
    entry = _site_entry(free_port, [_panel("p1", "Barn", 60.0)], data=main)
    entry.add_to_hass(hass)
    _, configure = await _subentry_flow(hass, entry, SUBENTRY_CHARGER)
    result = await configure({**CHARGER, CONF_PANEL: "p1", CONF_MAX_CURRENT: 32})
    assert result["errors"] == {CONF_MAX_CURRENT: "above_panel_rating"}
    result = await configure({**CHARGER, CONF_PANEL: "p1"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = next(s for s in entry.subentries.values() if s.title == "CP-2")
    assert created.data[CONF_PANEL] == "p1"
