"""Services: validation errors are translated; charger calls reach the charger."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import DOMAIN

from .common import chargers, device, until, value_of

pytestmark = pytest.mark.usefixtures("socket_enabled")


def _device(hass: HomeAssistant, entry_id: str, kind: str, key: str) -> str:
    return device(hass, entry_id, kind, key).id


@pytest.mark.parametrize(
    ("service", "data", "kind", "key", "error"),
    [
        ("set_grid_limit", {"limit_kw": 12}, "panel", "garage", "limit_above_rating"),
        ("set_grid_limit", {"limit_kw": -1}, "panel", "garage", "limit_negative"),
        ("set_grid_limit", {"limit_kw": 5}, "charger", "CP-1", "not_a_panel"),
        ("set_priority", {"priority": 3}, "panel", "garage", "not_a_charger"),
        ("set_strategy", {"strategy": "random"}, "panel", "garage", "invalid_strategy"),
        ("stop_charging", {}, "charger", "CP-1", "no_transaction"),
    ],
)
async def test_bad_calls_are_translated(
    hass: HomeAssistant,
    free_port: int,
    service: str,
    data: dict[str, object],
    kind: str,
    key: str,
    error: str,
    init_site: MockConfigEntry,
) -> None:
    entry = init_site
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            service,
            data,
            target={"device_id": _device(hass, entry.entry_id, kind, key)},
            blocking=True,
        )
    assert err.value.translation_key == error
    assert err.value.translation_domain == DOMAIN


async def test_no_target(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "clear_grid_limit", {}, blocking=True)
    assert err.value.translation_key == "no_target"


async def test_runtime_settings_and_charger_calls(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    entry = init_site
    panel_dev = _device(hass, entry.entry_id, "panel", "garage")
    charger_dev = _device(hass, entry.entry_id, "charger", "CP-1")

    await hass.services.async_call(
        DOMAIN,
        "set_strategy",
        {"strategy": "priority"},
        target={"device_id": panel_dev},
        blocking=True,
    )
    assert value_of(hass, "select.garage_strategy") == "priority"
    await hass.services.async_call(
        DOMAIN,
        "set_priority",
        {"priority": 7},
        target={"device_id": charger_dev},
        blocking=True,
    )
    assert value_of(hass, "number.cp_1_priority") == "7"
    await hass.services.async_call(
        DOMAIN,
        "set_grid_limit",
        {"limit_kw": 3},
        target={"entity_id": "number.garage_grid_limit"},
        blocking=True,
    )
    assert value_of(hass, "number.garage_grid_limit") == "3.0"
    assert value_of(hass, "sensor.garage_budget_reason") == "override"
    await hass.services.async_call(
        DOMAIN, "clear_grid_limit", {}, target={"device_id": panel_dev}, blocking=True
    )
    assert value_of(hass, "number.garage_grid_limit") == "11.0"
    assert value_of(hass, "sensor.garage_budget_reason") == "limit"

    # Offline charger: a clear error, not a traceback.
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            DOMAIN,
            "start_charging",
            {"id_tag": "A"},
            target={"device_id": charger_dev},
            blocking=True,
        )
    assert err.value.translation_key == "charger_offline"

    async with chargers(free_port, "CP-1") as (cp1,):
        await hass.services.async_call(
            DOMAIN,
            "start_charging",
            {"id_tag": "CARD1"},
            target={"device_id": charger_dev},
            blocking=True,
        )
        frame = await cp1.wait_for_call("RemoteStartTransaction")
        assert frame[3]["idTag"] == "CARD1"
        # The simulated charger starts the transaction it was asked for.
        server = entry.runtime_data.server
        await until(lambda: bool(server.chargers["CP-1"].transactions), 5)
        (transaction_id,) = server.chargers["CP-1"].transactions
        await hass.services.async_call(
            DOMAIN,
            "stop_charging",
            {},
            target={"device_id": charger_dev},
            blocking=True,
        )
        frame = await cp1.wait_for_call("RemoteStopTransaction")
        assert str(frame[3]["transactionId"]) == transaction_id
