"""Honest entity states (issue 14): session energy, status, device info, budgets, phases."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import DOMAIN
from tools.simulator import SimulatedCharger

from .common import (
    charger,
    chargers,
    device,
    panel,
    site_entry,
    state_of,
    state_when,
    value_of,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

ENERGY = "sensor.cp_1_session_energy"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_session_energy_after_restart_with_a_new_transaction(
    hass: HomeAssistant, free_port: int, version: str, init_site: MockConfigEntry
) -> None:
    """Bug 2: the current transaction is shown; the one it replaced is gone."""
    entry = init_site
    async with chargers(free_port, "CP-1", version=version) as (cp1,):
        old = await cp1.plug_in()
        cp1.connectors[1].energy_wh += 2000.0
        await cp1.send_meter_values()
        assert float(value_of(hass, ENERGY)) == pytest.approx(2.0, abs=0.01)
    # Home Assistant restarts; the charger restarts too and forgets its transaction.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    server = entry.runtime_data.server
    assert list(server.chargers["CP-1"].transactions) == [old]
    async with chargers(free_port, "CP-1", version=version) as (cp1,):
        cp1.connectors[1].energy_wh = 5000.0
        new = await cp1.plug_in()
        cp1.connectors[1].energy_wh += 1500.0
        await cp1.send_meter_values()
        assert list(server.chargers["CP-1"].transactions) == [new]
        state = state_of(hass, ENERGY)
        assert float(state.state) == pytest.approx(1.5, abs=0.01)


async def test_session_energy_resets_with_each_session(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    """Bug 3: a total whose last reset is the session start (statistics cycle there)."""
    entry = init_site
    server = entry.runtime_data.server
    async with chargers(free_port, "CP-1") as (cp1,):
        first_id = await cp1.plug_in()
        cp1.connectors[1].energy_wh += 3000.0
        await cp1.send_meter_values()
        first = state_of(hass, ENERGY)
        assert first.attributes["state_class"] == "total"
        started = server.chargers["CP-1"].transactions[first_id].started
        assert dt_util.parse_datetime(first.attributes["last_reset"]) == started
        await cp1.unplug()
        second_id = await cp1.plug_in()
        await cp1.send_meter_values()
        second = state_of(hass, ENERGY)
        assert float(second.state) < 0.01
        reset = dt_util.parse_datetime(second.attributes["last_reset"])
        assert reset == server.chargers["CP-1"].transactions[second_id].started
        assert reset >= started
        # A restart keeps the session's start, so no new cycle begins.
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        await cp1.reconnect()
        await cp1.send_meter_values()
        again = state_of(hass, ENERGY)
        assert dt_util.parse_datetime(again.attributes["last_reset"]) == reset


async def test_status_never_collides_and_shows_paused(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    """Bug 4: offline / out_of_service instead of HA's own states; 0 A is paused."""
    entry = init_site
    status = "sensor.cp_1_status"
    assert value_of(hass, status) == "offline"
    async with chargers(free_port, "CP-1") as (cp1,):
        assert value_of(hass, status) == "available"
        await cp1.send_status(1, "Unavailable")
        assert value_of(hass, status) == "out_of_service"
        await cp1.send_status(1, "Available")
        await cp1.plug_in()
        await state_when(hass, status, lambda s: s.state == "charging")
        # No room for the minimum (6 A on three phases is 4.14 kW): paused at 0 A.
        await hass.services.async_call(
            DOMAIN,
            "set_grid_limit",
            {"limit_kw": 2.0},
            target={"device_id": device(hass, entry.entry_id, "panel", "garage").id},
            blocking=True,
        )
        await state_when(hass, status, lambda s: s.state == "paused")
        assert float(value_of(hass, "sensor.cp_1_allocated_current")) == 0
        await cp1.wait_for_profile(lambda p: p.limit == 0)
        await hass.services.async_call(
            DOMAIN,
            "clear_grid_limit",
            {},
            target={"device_id": device(hass, entry.entry_id, "panel", "garage").id},
            blocking=True,
        )
        await state_when(hass, status, lambda s: s.state == "charging")
    await state_when(hass, status, lambda s: s.state == "offline")


async def test_status_of_a_charger_that_has_not_told_it(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    """Bug 4: connected without a StatusNotification: unknown, not a made-up option."""
    sim = SimulatedCharger("CP-1", f"ws://127.0.0.1:{free_port}")
    try:
        await sim.start(boot=False)
        await state_when(
            hass, "binary_sensor.cp_1_connected", lambda s: s.state == "on"
        )
        assert value_of(hass, "sensor.cp_1_status") == STATE_UNKNOWN
    finally:
        await sim.stop()


async def test_device_info_survives_a_reload(
    hass: HomeAssistant,
    free_port: int,
    hass_storage: dict[str, Any],
    ha_reports: Callable[[], list[str]],
    init_site: MockConfigEntry,
) -> None:
    """Bug 7: what the charger said at boot stays on its device."""
    entry = init_site
    async with chargers(free_port, "CP-1", version="2.0.1"):
        pass
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    stored = hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]["charger_info"]
    assert stored["CP-1"]["model"] == "Sim201"
    cp_1 = device(hass, entry.entry_id, "charger", "CP-1")
    assert (cp_1.manufacturer, cp_1.model) == ("SmartChargeSim", "Sim201")
    assert (cp_1.serial_number, cp_1.sw_version) == ("SN-CP-1", "1.0.0")
    assert ha_reports() == []


@pytest.mark.parametrize("site_subentries", [[panel("garage", "Garage", 11.0)]])
async def test_adopted_charger_shows_what_it_said_at_boot(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    """Bug 7: a charger adopted after its boot does not keep the placeholder."""
    entry = init_site
    async with chargers(free_port, "CP-NEW"):
        await hass.async_block_till_done()
        (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"],
            {"panel": "garage", "managed": True, "max_current_a": 16, "phases": "3"},
        )
        assert result["reason"] == "charger_adopted"
        await hass.async_block_till_done()
        new = device(hass, entry.entry_id, "charger", "CP-NEW")
        assert (new.manufacturer, new.model) == ("SmartChargeSim", "Sim16")
        assert new.serial_number == "SN-CP-NEW"


async def test_budget_after_a_restart_with_chargers_offline(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    """Bug 11: the budget is the real one at once, offline reserves included."""
    entry = init_site
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await cp1.wait_for_profile(lambda p: p.purpose == "TxProfile")
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert not entry.runtime_data.server.connected("CP-1")
    assert float(value_of(hass, "sensor.garage_budget")) == 10.45
    # The offline charger's session keeps its last limit reserved.
    headroom = float(value_of(hass, "sensor.garage_headroom"))
    assert 0 <= headroom < 10.45


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_no_float_noise_in_states(hass: HomeAssistant, free_port: int) -> None:
    """Bug 10: numbers are rounded at the source; never -0.

    7.6 kW less 5 % shared by three single-phase cars: the headroom is 2 W (limits
    go out rounded down to 0.1 A), 0.00199999999999978 kW in floats before.
    """
    ids = ("CP-1", "CP-2", "CP-3")
    entry = site_entry(
        free_port,
        [
            panel("garage", "Garage", 7.6),
            *(charger(cid, "garage", max_a=32.0, phases=1) for cid in ids),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    async with chargers(free_port, *ids, phases=1) as sims:
        for sim in sims:
            await sim.plug_in()
        for sim in sims:
            await sim.wait_for_profile(lambda p: p.purpose == "TxProfile")
        for sim in sims:
            await sim.send_meter_values()
        await hass.async_block_till_done()
        assert value_of(hass, "sensor.garage_headroom") == "0.002"
        registry = er.async_get(hass)
        for entity in registry.entities.values():
            if entity.platform != DOMAIN or entity.domain != "sensor":
                continue
            state = state_of(hass, entity.entity_id)
            try:
                value = float(state.state)
            except ValueError:
                continue
            assert not state.state.startswith("-0"), entity.entity_id
            assert "e-" not in state.state, entity.entity_id
            # kW to the watt, A to 0.01 A, Wh to 0.1 Wh (shown in kWh).
            assert round(value, 4) == value, (entity.entity_id, state.state)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize("meter_phase", ["L2", None])
@pytest.mark.parametrize(
    "site_subentries",
    [
        [
            panel("garage", "Garage", 11.0),
            charger("HOME-2", "garage", phases=1, grid_phase="L2"),
        ]
    ],
    ids=["l2_charger"],
)
async def test_single_phase_current_on_its_grid_phase(
    hass: HomeAssistant,
    free_port: int,
    meter_phase: str | None,
    init_site: MockConfigEntry,
) -> None:
    """Bug 12: an L2 charger's current is L2, whatever label its meter uses."""
    entry = init_site
    assert hass.states.get("sensor.home_2_current_l1") is None
    async with chargers(
        free_port, "HOME-2", phases=1, grid_phase=meter_phase, car_max_a=10.0
    ) as (sim,):
        await sim.plug_in()
        await sim.wait_for_profile(lambda p: p.purpose == "TxProfile")
        await sim.send_meter_values()
        (drawn,) = [
            float(sample["value"])
            for sample in sim.sent_calls("MeterValues")[-1]["meterValue"][0][
                "sampledValue"
            ]
            if sample["measurand"] == "Current.Import"
        ]
        assert drawn > 0
        assert float(value_of(hass, "sensor.home_2_current_l2")) == drawn
    registry = er.async_get(hass)
    assert [
        e.unique_id.rsplit("_", 2)[-2:]
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if "current_l" in e.unique_id
    ] == [["current", "l2"]]
