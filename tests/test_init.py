"""End to end: the integration with its real OCPP server and simulated chargers."""

from __future__ import annotations

from datetime import timedelta
import functools
import socket
from types import MappingProxyType
from typing import Any

from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.smart_charge import runtime_state
from custom_components.smart_charge.const import DOMAIN

from .common import (
    charger,
    chargers,
    device,
    entry_state,
    last_tx_limit,
    move_time,
    panel,
    site_entry,
    state_when,
    tx_limit,
    until,
    value_of,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

# A 3-phase 230 V session: kW per A per phase.
KW_PER_A = 3 * 230 / 1000


_until = functools.partial(until, timeout=5.0)


def _panel_device(hass: HomeAssistant, entry_id: str, panel_id: str) -> str:
    return device(hass, entry_id, "panel", panel_id).id


async def test_setup_unload_frees_port(hass: HomeAssistant, free_port: int) -> None:
    entry = site_entry(free_port, [])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    # Flash-friendly writes are on: dead band and spacing of increases.
    controller = entry.runtime_data.controller
    assert controller.increase_dead_band_a == 0.5
    assert controller.min_increase_interval_s == 10.0
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry_state(entry) is ConfigEntryState.NOT_LOADED
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", free_port))  # the port is free again


async def test_port_in_use_is_not_ready(hass: HomeAssistant, free_port: int) -> None:
    entry = site_entry(free_port, [])
    entry.add_to_hass(hass)
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", free_port))
        busy.listen()
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY


async def test_two_sessions_share_panel_and_grid_limit(
    hass: HomeAssistant, free_port: int
) -> None:
    """Two cars under an 11 kW panel get equal limits; set_grid_limit lowers then restores."""
    entry = site_entry(
        free_port,
        [
            panel("garage", "Garage", 11.0),
            charger("CP-1", "garage"),
            charger("CP-2", "garage"),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    async with chargers(free_port, "CP-1", "CP-2") as (cp1, cp2):
        await cp1.plug_in()
        await cp2.plug_in()
        budget_a = 11.0 * 0.95 / KW_PER_A
        await _until(
            lambda: last_tx_limit(cp1) is not None
            and last_tx_limit(cp2) is not None
            and last_tx_limit(cp1) == last_tx_limit(cp2)
            and tx_limit(cp1) > 0
        )
        equal = tx_limit(cp1)
        assert equal * 2 <= budget_a
        assert equal >= round(budget_a / 2, 1) - 0.1

        state = hass.states.get("sensor.garage_allocated_power")
        assert state is not None
        assert 2 * equal * KW_PER_A - 0.01 <= float(state.state) <= 11.0 * 0.95

        # Demand response: 9 kW for an hour.
        before = (len(cp1.received_profiles), len(cp2.received_profiles))
        await hass.services.async_call(
            DOMAIN,
            "set_grid_limit",
            {"limit_kw": 9.0, "duration": {"hours": 1}},
            target={"device_id": _panel_device(hass, entry.entry_id, "garage")},
            blocking=True,
        )
        await _until(
            lambda: len(cp1.received_profiles) > before[0]
            and len(cp2.received_profiles) > before[1]
        )
        low = tx_limit(cp1)
        assert low == last_tx_limit(cp2)
        assert 2 * low * KW_PER_A <= 9.0 * 0.95
        assert low >= 6.0
        assert value_of(hass, "number.garage_grid_limit") == "9.0"

        # The duration ends: the configured limit returns. Every call finishes first
        # (firing time also fires pending call timeouts).
        await move_time(hass, entry, dt_util.utcnow() + timedelta(hours=1, seconds=1))
        await _until(lambda: last_tx_limit(cp1) == equal)
        await _until(lambda: last_tx_limit(cp2) == equal)
        assert value_of(hass, "number.garage_grid_limit") == "11.0"

    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_unmanaged_charger_counts_but_gets_no_profile(
    hass: HomeAssistant, free_port: int
) -> None:
    """A VIP charger is never limited, but what it draws lowers its siblings' budget."""
    entry = site_entry(
        free_port,
        [
            panel("lot", "Lot", 11.0),
            charger("VIP-1", "lot", managed=False),
            charger("CP-1", "lot"),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    async with chargers(free_port, "VIP-1", "CP-1") as (vip, cp1):
        await vip.plug_in()
        await cp1.plug_in()
        await _until(lambda: last_tx_limit(cp1) is not None)
        first = tx_limit(cp1)
        # The VIP car draws 16 A on three phases (11 kW at the meter).
        vip.car_max_a = 10.0
        await vip.send_meter_values()
        await _until(lambda: tx_limit(cp1) < first)
        expected = (11.0 * 0.95 - vip.power_w() / 1000) / KW_PER_A
        assert tx_limit(cp1) <= expected
        assert vip.received_profiles == []
        assert value_of(hass, "switch.vip_1_load_managed") == "off"
        assert hass.states.get("sensor.vip_1_allocated_current") is None


async def test_unknown_charger_starts_discovery(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = site_entry(free_port, [])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    async with chargers(free_port, "CP-NEW"):
        await hass.async_block_till_done()
        flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        # The Discovered card names the site the charger came to.
        assert [f["context"]["title_placeholders"] for f in flows] == [
            {"charger_id": "CP-NEW", "site": "Smart Charge"}
        ]


async def test_restart_keeps_sessions_and_overrides(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    entry = init_site
    async with chargers(free_port, "CP-1") as (cp1,):
        transaction_id = await cp1.plug_in()
        await _until(lambda: last_tx_limit(cp1) is not None)
        await hass.services.async_call(
            DOMAIN,
            "set_grid_limit",
            {"limit_kw": 5.0},
            target={"device_id": _panel_device(hass, entry.entry_id, "garage")},
            blocking=True,
        )
        # Home Assistant restarts while the car charges.
        assert await hass.config_entries.async_reload(entry.entry_id)
        await hass.async_block_till_done()
        assert value_of(hass, "number.garage_grid_limit") == "5.0"
        server = entry.runtime_data.server
        assert transaction_id in server.chargers["CP-1"].transactions
        await cp1.reconnect()
        # The re-balanced limit reaches the same transaction after the restart.
        received = await cp1.wait_for_profile(
            lambda p: p.purpose == "TxProfile" and p.limit <= 5.0 * 0.95 / KW_PER_A
        )
        assert received.transaction_id == transaction_id
        assert received.limit >= 6.0


@pytest.mark.setup_error_expected
async def test_broken_panel_tree_is_a_repair(
    hass: HomeAssistant, free_port: int
) -> None:
    """A panel whose parent was removed stops setup with a repair issue, not a crash."""
    entry = site_entry(free_port, [panel("orphan", "Orphan", 5.0, parent="gone")])
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    issue = ir.async_get(hass).async_get_issue(
        DOMAIN, f"panel_tree_invalid_{entry.entry_id}"
    )
    assert issue is not None
    assert issue.translation_placeholders == {"error": "parent_missing"}


async def test_boot_fills_device_info(hass: HomeAssistant, free_port: int) -> None:
    entry = site_entry(free_port, [charger("CP-1")])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    async with chargers(free_port, "CP-1"):
        await hass.async_block_till_done()
        cp_1 = device(hass, entry.entry_id, "charger", "CP-1")
        assert (cp_1.manufacturer, cp_1.model) == ("SmartChargeSim", "Sim16")
        assert cp_1.serial_number == "SN-CP-1"
        assert value_of(hass, "binary_sensor.cp_1_connected") == "on"
    await hass.async_block_till_done()
    assert value_of(hass, "binary_sensor.cp_1_connected") == "off"
    assert value_of(hass, "sensor.cp_1_power") == "unavailable"


async def test_removing_the_site_forgets_its_state(
    hass: HomeAssistant, free_port: int, hass_storage: dict[str, Any]
) -> None:
    entry = site_entry(free_port, [panel("garage", "Garage", 11.0)])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await hass.services.async_call(
        DOMAIN,
        "set_grid_limit",
        {"limit_kw": 5.0},
        target={"device_id": _panel_device(hass, entry.entry_id, "garage")},
        blocking=True,
    )
    assert await hass.config_entries.async_unload(entry.entry_id)
    key = f"{DOMAIN}.{entry.entry_id}"
    assert hass_storage[key]["data"]["grid_limits"]["garage"]["limit_kw"] == 5.0
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage


async def test_sessions_are_saved_while_running(
    hass: HomeAssistant,
    free_port: int,
    hass_storage: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A running session is in the store soon after it starts, not only at unload.

    Real time, with a short save delay: once two saves coalesce, HA's Store checks the
    loop's clock, which moving the test clock does not advance.
    """
    monkeypatch.setattr(runtime_state, "SAVE_DELAY_S", 0.2)
    entry = site_entry(
        free_port, [panel("garage", "Garage", 11.0), charger("CP-1", "garage")]
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    async with chargers(free_port, "CP-1") as (cp1,):
        transaction_id = await cp1.plug_in()
        server = entry.runtime_data.server
        await _until(
            lambda: last_tx_limit(cp1) is not None
            and bool(server.chargers["CP-1"].limit_acked)
        )
        key = f"{DOMAIN}.{entry.entry_id}"
        await _until(lambda: key in hass_storage)
        await hass.async_block_till_done()
        stored = hass_storage[key]["data"]["controller"]
        assert [s["transaction_id"] for s in stored["sessions"]] == [transaction_id]
        assert "CP-1" in stored["capabilities"]


async def test_adopting_a_charger_keeps_everyone_connected(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    """Discovery adopts an unknown charger live: no reload, no reconnect, it is balanced."""
    entry = init_site
    server = entry.runtime_data.server
    async with chargers(free_port, "CP-1", "CP-NEW") as (cp1, new):
        await cp1.plug_in()
        await _until(lambda: last_tx_limit(cp1) is not None)
        alone = tx_limit(cp1)
        (flow,) = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        result = await hass.config_entries.flow.async_configure(
            flow["flow_id"],
            {"panel": "garage", "managed": True, "max_current_a": 16, "phases": "3"},
        )
        assert result["reason"] == "charger_adopted"
        await hass.async_block_till_done()
        assert entry.state is ConfigEntryState.LOADED
        assert entry.runtime_data.server is server  # not reloaded
        assert cp1.connected
        assert new.connected
        assert value_of(hass, "binary_sensor.cp_new_connected") == "on"
        # The adopted charger is balanced with the others at once.
        await new.plug_in()
        await _until(lambda: last_tx_limit(new) is not None and tx_limit(cp1) < alone)
        assert last_tx_limit(cp1) == last_tx_limit(new)

        # Changing a charger's settings still reloads (its entities depend on them).
        subentry = next(s for s in entry.subentries.values() if s.title == "CP-NEW")
        hass.config_entries.async_update_subentry(
            entry, subentry, data={**subentry.data, "max_current_a": 10.0}
        )
        await hass.async_block_till_done()
        assert entry.runtime_data.server is not server


async def test_adding_a_panel_live(hass: HomeAssistant, free_port: int) -> None:
    entry = site_entry(free_port, [])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    server = entry.runtime_data.server
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(
                {
                    "name": "Carport",
                    "limit_kw": 7.0,
                    "parent": "main",
                    "load_sensor": "sensor.x",
                }
            ),
            subentry_type="panel",
            title="Carport",
            unique_id=None,
        ),
    )
    await hass.async_block_till_done()
    assert entry.runtime_data.server is server
    assert value_of(hass, "number.carport_grid_limit") == "7.0"
    # Its load sensor is followed at once (unavailable: the worst case).
    assert value_of(hass, "sensor.carport_budget_reason") == "load"


async def test_charger_added_and_removed_live(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    """A charger subentry added while the site runs gets its entities, no reload.

    The coordinator's listener adds them (keyed by subentry); removing the subentry
    takes them away again, and later updates do not bring them back.
    """
    entry = init_site
    server = entry.runtime_data.server
    registry = er.async_get(hass)

    def entities_of(subentry_id: str) -> list[er.RegistryEntry]:
        return [
            e
            for e in er.async_entries_for_config_entry(registry, entry.entry_id)
            if e.config_subentry_id == subentry_id
        ]

    cp_1 = entities_of("subCP1")
    assert cp_1
    data = charger("CP-2", "garage")
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(data["data"]),
            subentry_type=data["subentry_type"],
            title=data["title"],
            unique_id=data["unique_id"],
        ),
    )
    await hass.async_block_till_done()
    assert entry.runtime_data.server is server  # not reloaded
    (subentry_id,) = (
        s.subentry_id for s in entry.subentries.values() if s.title == "CP-2"
    )
    cp_2 = entities_of(subentry_id)
    # Every platform's entities, as many as the charger with the same settings has.
    assert {e.domain for e in cp_2} == {e.domain for e in cp_1}
    assert len(cp_2) == len(cp_1)
    enabled = [e for e in cp_2 if e.disabled_by is None]
    assert enabled
    assert all(hass.states.get(e.entity_id) is not None for e in enabled)
    connected = hass.states.get("binary_sensor.cp_2_connected")
    assert connected is not None and connected.state == "off"
    async with chargers(free_port, "CP-2"):
        await state_when(
            hass, "binary_sensor.cp_2_connected", lambda s: s.state == "on"
        )

    hass.config_entries.async_remove_subentry(entry, subentry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.server is server
    assert entities_of(subentry_id) == []
    assert all(hass.states.get(e.entity_id) is None for e in enabled)
    # A later update of the coordinator does not add them again.
    await hass.services.async_call(
        DOMAIN,
        "set_grid_limit",
        {"limit_kw": 5.0},
        target={"device_id": _panel_device(hass, entry.entry_id, "garage")},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert entities_of(subentry_id) == []
    assert hass.states.get("binary_sensor.cp_2_connected") is None
    assert len(entities_of("subCP1")) == len(cp_1)


async def test_repairs_platform_loads(
    hass: HomeAssistant,
    init_site: MockConfigEntry,
    hass_client: ClientSessionGenerator,
) -> None:
    """`repairs.py` is a valid repairs platform.

    HA loads the module of that name when a fix flow of the domain starts, and refuses
    one without `async_create_fix_flow`. None of our issues is fixable, so the test
    raises one that is, and starts its fix flow as the frontend does.
    """
    assert await async_setup_component(hass, "repairs", {})
    ir.async_create_issue(
        hass,
        DOMAIN,
        "fixable",
        is_fixable=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="port_in_use",
        translation_placeholders={"port": "1"},
    )
    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": "fixable"}
    )
    assert response.status == 200
    assert (await response.json())["step_id"] == "confirm"


async def test_manual_refresh_rebuilds_the_snapshot(
    hass: HomeAssistant, init_site: MockConfigEntry
) -> None:
    """`homeassistant.update_entity` refreshes the push coordinator from its state."""
    assert await async_setup_component(hass, "homeassistant", {})
    coordinator = init_site.runtime_data
    before = coordinator.data
    await hass.services.async_call(
        "homeassistant",
        "update_entity",
        {"entity_id": "sensor.garage_budget"},
        blocking=True,
    )
    assert coordinator.last_update_success
    assert coordinator.data is not before
    assert coordinator.data == before  # nothing changed meanwhile
    budget = hass.states.get("sensor.garage_budget")
    assert budget is not None and budget.state == "10.45"
