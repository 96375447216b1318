"""Snapshots of every entity: registry entries (unique ids, translation keys) and states.

Only what the integration controls is snapshotted, as plain data, so that the same
snapshots hold on every tested Home Assistant (the registry's own fields and its
serialisation change between releases).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any
from unittest.mock import patch

from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from .common import charger, chargers, panel, site_entry

pytestmark = pytest.mark.usefixtures("socket_enabled")

ENTRY_ID = "01JSMARTCHARGESNAPSHOT0000"

# The registry fields an integration sets (through its entity descriptions).
REGISTRY_FIELDS = (
    "capabilities",
    "disabled_by",
    "entity_category",
    "entity_id",
    "has_entity_name",
    "hidden_by",
    "original_device_class",
    "original_icon",
    "original_name",
    "platform",
    "supported_features",
    "translation_key",
    "unique_id",
    "unit_of_measurement",
)


def _plain(value: Any) -> Any:
    """Return `value` as plain data: enums as their values, sets sorted, str keys."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(_plain(k)): _plain(v) for k, v in sorted(value.items(), key=str)}
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _entities(hass: HomeAssistant, entry_id: str) -> list[tuple[str, Any, Any]]:
    """Return each entity of the entry: its id, registry entry and state, as plain data."""
    registry = er.async_get(hass)
    result = []
    for entry in sorted(
        er.async_entries_for_config_entry(registry, entry_id), key=lambda e: e.entity_id
    ):
        state = hass.states.get(entry.entity_id)
        registered = {name: getattr(entry, name) for name in REGISTRY_FIELDS}
        if entry.disabled_by is not None:
            assert state is None, entry.entity_id  # disabled by default: no state
            shown: dict[str, Any] | None = None
        else:
            assert state is not None, entry.entity_id
            shown = {"state": state.state, "attributes": dict(state.attributes)}
        result.append((entry.entity_id, _plain(registered), _plain(shown)))
    return result


@pytest.mark.parametrize(
    "platform",
    [
        Platform.BINARY_SENSOR,
        Platform.DATETIME,
        Platform.NUMBER,
        Platform.SELECT,
        Platform.SENSOR,
        Platform.SWITCH,
    ],
)
async def test_entities(
    hass: HomeAssistant,
    snapshot: SnapshotAssertion,
    free_port: int,
    platform: Platform,
) -> None:
    entry = site_entry(
        free_port,
        [
            panel("garage", "Garage", 11.0),
            charger("CP-1", "garage"),
            charger("VIP-1", "garage", managed=False, phases=1),
        ],
        entry_id=ENTRY_ID,
    )
    entry.add_to_hass(hass)
    with patch("custom_components.smart_charge.PLATFORMS", [platform]):
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    snapshot = snapshot.use_extension(HomeAssistantSnapshotExtension)
    entities = _entities(hass, entry.entry_id)
    assert entities, "the platform has no entities"
    for entity_id, registered, shown in entities:
        assert registered == snapshot(name=f"{entity_id}-entry")
        assert shown == snapshot(name=f"{entity_id}-state")
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_limit_reason_names_the_binding_phase(
    hass: HomeAssistant, free_port: int
) -> None:
    """Issue 14: a car held by one phase of its breaker says so, and so does the panel."""
    for phase, amps in (("l1", "8"), ("l2", "0"), ("l3", "0")):
        hass.states.async_set(
            f"sensor.house_{phase}", amps, {"unit_of_measurement": "A"}
        )
    home = panel("home", "Home", 11.0)
    home["data"] = {
        **home["data"],
        "phase_limit_a": 16.0,
        **{f"load_current_{p}": f"sensor.house_{p}" for p in ("l1", "l2", "l3")},
    }
    entry = site_entry(
        free_port,
        [
            home,
            charger("CP-1", "home", phases=1),
            charger("VIP-1", "home", managed=False),
            charger("GONE-1", "home"),
        ],
        options={"min_increase_interval_s": 0.0},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    async with chargers(free_port, "CP-1", "VIP-1", phases=1) as (cp1, _vip):
        state = hass.states.get("sensor.cp_1_limit_reason")
        assert state is not None and state.state == "unknown"  # no car yet
        await cp1.plug_in()
        # L1 keeps 16 A x 0.95 = 15.2 A; the house takes 8 A of it.
        await cp1.wait_for_profile(
            lambda p: p.purpose == "TxProfile" and p.limit == 7.2
        )
        await hass.async_block_till_done()
        state = hass.states.get("sensor.cp_1_limit_reason")
        assert state is not None
        assert state.state == "phase"
        assert state.attributes["panel"] == "Home"
        assert state.attributes["phase"] == "L1"
        assert "breaker" in state.attributes["options"]
        budget = hass.states.get("sensor.home_budget_reason")
        assert budget is not None
        assert budget.state == "phase"
        assert budget.attributes["phases"] == ["L1"]
        vip = hass.states.get("sensor.vip_1_limit_reason")
        assert vip is not None and vip.state == "not_managed"
        gone = hass.states.get("sensor.gone_1_limit_reason")
        assert gone is not None and gone.state == "offline"
    assert await hass.config_entries.async_unload(entry.entry_id)
