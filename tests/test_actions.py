"""Entity actions (number, select, switch) and service targets by area, floor, label."""

from __future__ import annotations

from collections.abc import Callable
from unittest.mock import patch

from homeassistant.components.number.const import (
    ATTR_VALUE,
    DOMAIN as NUMBER_DOMAIN,
    SERVICE_SET_VALUE,
)
from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.components.switch.const import DOMAIN as SWITCH_DOMAIN
from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import (
    area_registry as ar,
    device_registry as dr,
    floor_registry as fr,
    label_registry as lr,
)
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import DOMAIN
from custom_components.smart_charge.csms import CallTimeoutError
from custom_components.smart_charge.engine import EngineConfigError
from tools.simulator import ReceivedProfile

from .common import charger, chargers, device, panel, state_when, value_of

pytestmark = pytest.mark.usefixtures("socket_enabled")

# A 3-phase 230 V session: kW per A per phase.
KW_PER_A = 3 * 230 / 1000


@pytest.fixture
def site_subentries() -> list[ConfigSubentryDataWithId]:
    """Two chargers on an 11 kW garage panel."""
    return [
        panel("garage", "Garage", 11.0),
        charger("CP-1", "garage"),
        charger("CP-2", "garage"),
    ]


def _tx(limit: float | None = None) -> Callable[[ReceivedProfile], bool]:
    return lambda p: p.purpose == "TxProfile" and (limit is None or p.limit <= limit)


async def _number(hass: HomeAssistant, entity_id: str, value: float) -> None:
    await hass.services.async_call(
        NUMBER_DOMAIN,
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: entity_id, ATTR_VALUE: value},
        blocking=True,
    )


async def test_grid_limit_number_reaches_the_chargers(
    hass: HomeAssistant,
    free_port: int,
    ha_reports: Callable[[], list[str]],
    init_site: MockConfigEntry,
) -> None:
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await cp1.wait_for_profile(_tx())
        await _number(hass, "number.garage_grid_limit", 5.0)
        received = await cp1.wait_for_profile(_tx(5.0 * 0.95 / KW_PER_A))
        assert received.limit >= 6.0
        assert value_of(hass, "number.garage_grid_limit") == "5.0"
        assert value_of(hass, "sensor.garage_budget_reason") == "override"
        # Above the rating: refused by the number's range, translated.
        with pytest.raises(ServiceValidationError) as err:
            await _number(hass, "number.garage_grid_limit", 12.0)
        assert err.value.translation_key == "out_of_range"
    assert ha_reports() == []


async def test_max_current_number_reaches_the_charger(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await cp1.wait_for_profile(_tx())
        await _number(hass, "number.cp_1_maximum_current", 8.0)
        received = await cp1.wait_for_profile(_tx(8.0))
        assert received.limit == 8.0
        assert value_of(hass, "number.cp_1_maximum_current") == "8.0"
        with pytest.raises(ServiceValidationError):
            await _number(hass, "number.cp_1_maximum_current", 2.0)  # below 6 A


async def test_priority_number_and_strategy_select_share_the_panel(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    async with chargers(free_port, "CP-1", "CP-2") as (cp1, cp2):
        await cp1.plug_in()
        await cp2.plug_in()
        # Equal share first: 7.5 A each; what follows comes from the actions below.
        for sim in (cp1, cp2):
            await sim.wait_for_profile(lambda p: _tx()(p) and p.limit == 7.5)
        mark = max(p.sequence for p in cp1.received_profiles + cp2.received_profiles)
        await _number(hass, "number.cp_1_priority", 3)
        assert value_of(hass, "number.cp_1_priority") == "3"
        await hass.services.async_call(
            SELECT_DOMAIN,
            SERVICE_SELECT_OPTION,
            {ATTR_ENTITY_ID: "select.garage_strategy", ATTR_OPTION: "priority"},
            blocking=True,
        )
        assert value_of(hass, "select.garage_strategy") == "priority"
        # Weights 3 : 1 of 15.1 A: CP-2 would get 3.8 A, so it gets its minimum
        # (first: decreases go out first), CP-1 the rest; equal share was 7.5 A each.
        low = await cp2.wait_for_profile(
            lambda p: _tx()(p) and p.sequence > mark and p.limit == 6.0
        )
        high = await cp1.wait_for_profile(
            lambda p: _tx()(p) and p.sequence > low.sequence and p.limit > 7.5
        )
        assert high.limit == pytest.approx(15.1 - 6.0, abs=0.11)
        with pytest.raises(ServiceValidationError):
            await hass.services.async_call(
                SELECT_DOMAIN,
                SERVICE_SELECT_OPTION,
                {ATTR_ENTITY_ID: "select.garage_strategy", ATTR_OPTION: "random"},
                blocking=True,
            )


async def test_managed_switch(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    switch = "switch.cp_1_load_managed"
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await cp1.wait_for_profile(_tx())
        await hass.services.async_call(
            SWITCH_DOMAIN, SERVICE_TURN_OFF, {ATTR_ENTITY_ID: switch}, blocking=True
        )
        assert value_of(hass, switch) == "off"
        # Not managed: no allocation any more (its power still counts).
        await state_when(
            hass, "sensor.cp_1_allocated_current", lambda s: s.state == "unknown"
        )
        await hass.services.async_call(
            SWITCH_DOMAIN, SERVICE_TURN_ON, {ATTR_ENTITY_ID: switch}, blocking=True
        )
        assert value_of(hass, switch) == "on"
        allocated = await state_when(
            hass, "sensor.cp_1_allocated_current", lambda s: s.state != "unknown"
        )
        assert float(allocated.state) == cp1.limit_in_force(1)


@pytest.mark.parametrize(
    ("error", "key"),
    [
        (EngineConfigError("limit_kw must be >= 0"), "action_failed"),
        (CallTimeoutError("CP-1", "SetChargingProfile", 10.0), "charger_timeout"),
    ],
)
async def test_action_errors_are_translated(
    hass: HomeAssistant,
    free_port: int,
    error: Exception,
    key: str,
    init_site: MockConfigEntry,
) -> None:
    with (
        patch(
            "custom_components.smart_charge.coordinator.SmartChargeCoordinator.async_set_managed",
            side_effect=error,
        ),
        pytest.raises(HomeAssistantError) as err,
    ):
        await hass.services.async_call(
            SWITCH_DOMAIN,
            SERVICE_TURN_OFF,
            {ATTR_ENTITY_ID: "switch.cp_1_load_managed"},
            blocking=True,
        )
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == key


async def test_services_take_areas_floors_and_labels(
    hass: HomeAssistant,
    free_port: int,
    ha_reports: Callable[[], list[str]],
    init_site: MockConfigEntry,
) -> None:
    """Bug 8: an area, floor or label reaches the Smart Charge devices in it."""
    entry = init_site
    floor = fr.async_get(hass).async_create("Ground")
    garage = ar.async_get(hass).async_create("Garage", floor_id=floor.floor_id)
    empty = ar.async_get(hass).async_create("Attic")
    label = lr.async_get(hass).async_create("Fleet")
    devices = dr.async_get(hass)
    garage_panel = device(hass, entry.entry_id, "panel", "garage")
    devices.async_update_device(garage_panel.id, area_id=garage.id)
    cp_1 = device(hass, entry.entry_id, "charger", "CP-1")
    devices.async_update_device(cp_1.id, area_id=garage.id, labels={label.label_id})

    await hass.services.async_call(
        DOMAIN,
        "set_grid_limit",
        {"limit_kw": 4.0},
        target={"area_id": garage.id},  # holds a panel and a charger
        blocking=True,
    )
    assert value_of(hass, "number.garage_grid_limit") == "4.0"
    await hass.services.async_call(
        DOMAIN,
        "clear_grid_limit",
        {},
        target={"floor_id": floor.floor_id},
        blocking=True,
    )
    assert value_of(hass, "number.garage_grid_limit") == "11.0"
    await hass.services.async_call(
        DOMAIN,
        "set_priority",
        {"priority": 9},
        target={"label_id": label.label_id},
        blocking=True,
    )
    assert value_of(hass, "number.cp_1_priority") == "9"
    assert value_of(hass, "number.cp_2_priority") == "1"

    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "clear_grid_limit", {}, target={"area_id": empty.id}, blocking=True
        )
    assert err.value.translation_key == "no_target"
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "set_grid_limit",
            {"limit_kw": 4.0},
            target={"label_id": label.label_id},  # only a charger
            blocking=True,
        )
    assert err.value.translation_key == "no_panel_in_target"
    assert ha_reports() == []
