"""A charger's default goal for cars that report nothing, and a goal ends with its session.

A goal set while no car is plugged in applies to the next car; a goal belongs to one
session and is cleared when that session ends; a session that starts without a goal
gets its charger's default (the next occurrence of the default departure time).
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from homeassistant.config_entries import (
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    SubentryFlowContext,
)
from homeassistant.core import HomeAssistant, State
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import (
    CONF_CHARGER_ID,
    CONF_DEFAULT_DEPARTURE,
    CONF_DEFAULT_ENERGY,
    CONF_DEFAULT_MODE,
    CONF_MANAGED,
    CONF_MAX_CURRENT,
    CONF_MIN_CURRENT,
    CONF_PANEL,
    CONF_PHASES,
    CONF_PRIORITY,
    CONF_PROFILE_PURPOSE,
    CONF_SOC_SENSOR,
    CONF_STACK_LEVEL,
    DOMAIN,
    ROOT_PANEL_ID,
    SUBENTRY_CHARGER,
)
from custom_components.smart_charge.goals import next_departure

from .common import charger, chargers, device, site_entry, until

MODE = "select.cp_1_charging_mode"
ENERGY = "number.cp_1_energy_to_add"
DEPARTURE = "datetime.cp_1_departure"

FORM: dict[str, Any] = {
    CONF_CHARGER_ID: "CP-2",
    CONF_PANEL: ROOT_PANEL_ID,
    CONF_MANAGED: True,
    CONF_MIN_CURRENT: 6,
    CONF_MAX_CURRENT: 16,
    CONF_PHASES: "3",
    CONF_PRIORITY: 3,
    CONF_PROFILE_PURPOSE: "tx_profile",
    CONF_STACK_LEVEL: 2,
}
DEFAULTS: dict[str, Any] = {
    CONF_DEFAULT_MODE: "by_departure_cheapest",
    CONF_DEFAULT_ENERGY: 12.5,
    CONF_DEFAULT_DEPARTURE: "07:00:00",
}


def _state(hass: HomeAssistant, entity_id: str) -> State:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state


# ------------------------------------------------------------------ the departure


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Before 7:00: today; at or after it: tomorrow.
        ("2026-06-01T06:59:00", "2026-06-01T07:00:00+02:00"),
        ("2026-06-01T07:00:00", "2026-06-02T07:00:00+02:00"),
        ("2026-06-01T22:30:00", "2026-06-02T07:00:00+02:00"),
        # Across the change to winter time the wall clock stays 7:00.
        ("2026-10-24T20:00:00", "2026-10-25T07:00:00+01:00"),
    ],
)
def test_next_departure(now: str, expected: str) -> None:
    zone = ZoneInfo("Europe/Amsterdam")
    moment = datetime.fromisoformat(now).replace(tzinfo=zone)
    departure = next_departure(time(7, 0), moment)
    assert departure == datetime.fromisoformat(expected)
    assert departure.utcoffset() == datetime.fromisoformat(expected).utcoffset()


# ------------------------------------------------------------------ the form


async def _charger_flow(
    hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str | None = None
) -> tuple[dict[str, Any], Any]:
    context = SubentryFlowContext(source=SOURCE_USER)
    if subentry_id is not None:
        context = SubentryFlowContext(
            source=SOURCE_RECONFIGURE, subentry_id=subentry_id
        )
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_CHARGER), context=context
    )

    async def configure(data: dict[str, Any]) -> Any:
        return await hass.config_entries.subentries.async_configure(
            result["flow_id"], data
        )

    return dict(result), configure


async def test_default_goal_form_errors_then_create_and_reconfigure(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = site_entry(free_port, [])
    entry.add_to_hass(hass)
    result, configure = await _charger_flow(hass, entry)
    fields = [str(key) for key in result["data_schema"].schema]
    for key in (
        CONF_DEFAULT_MODE,
        CONF_DEFAULT_ENERGY,
        CONF_DEFAULT_DEPARTURE,
        CONF_SOC_SENSOR,
    ):
        assert key in fields
    for bad, errors in (
        # A planning mode needs the energy to add.
        (
            {CONF_DEFAULT_MODE: "by_departure_solar_first"},
            {CONF_DEFAULT_ENERGY: "default_needs_energy"},
        ),
        # An energy or a departure without a mode would never apply.
        ({CONF_DEFAULT_ENERGY: 10}, {CONF_DEFAULT_MODE: "default_needs_mode"}),
        (
            {
                CONF_DEFAULT_MODE: "as_fast_as_possible",
                CONF_DEFAULT_DEPARTURE: "07:00:00",
            },
            {CONF_DEFAULT_MODE: "default_needs_mode"},
        ),
        (
            {**DEFAULTS, CONF_DEFAULT_ENERGY: 0},
            {CONF_DEFAULT_ENERGY: "invalid_default_energy"},
        ),
        (
            {**DEFAULTS, CONF_DEFAULT_ENERGY: 5000},
            {CONF_DEFAULT_ENERGY: "invalid_default_energy"},
        ),
    ):
        result = await configure({**FORM, **bad})
        assert result["type"] is FlowResultType.FORM, bad
        assert result["errors"] == errors, bad
    # The default goal and the SoC sensor are stored as given.
    result = await configure({**FORM, **DEFAULTS, CONF_SOC_SENSOR: "sensor.car_soc"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = next(s for s in entry.subentries.values() if s.title == "CP-2")
    assert created.data[CONF_DEFAULT_MODE] == "by_departure_cheapest"
    assert created.data[CONF_DEFAULT_ENERGY] == 12.5
    assert created.data[CONF_DEFAULT_DEPARTURE] == "07:00:00"
    assert created.data[CONF_SOC_SENSOR] == "sensor.car_soc"

    # Reconfigure: the stored default is suggested; solar only without energy is
    # fine, and the fields left empty are dropped.
    result, configure = await _charger_flow(hass, entry, created.subentry_id)
    suggested = {
        str(key): key.description.get("suggested_value")
        for key in result["data_schema"].schema
        if key.description
    }
    assert suggested[CONF_DEFAULT_MODE] == "by_departure_cheapest"
    assert suggested[CONF_DEFAULT_ENERGY] == 12.5
    assert suggested[CONF_SOC_SENSOR] == "sensor.car_soc"
    result = await configure({**FORM, CONF_DEFAULT_MODE: "solar_only"})
    assert result["reason"] == "reconfigure_successful"
    data = entry.subentries[created.subentry_id].data
    assert data[CONF_DEFAULT_MODE] == "solar_only"
    for key in (CONF_DEFAULT_ENERGY, CONF_DEFAULT_DEPARTURE, CONF_SOC_SENSOR):
        assert key not in data


# ------------------------------------------------------------------ sessions


def _site(port: int, **defaults: Any) -> MockConfigEntry:
    cp1 = charger("CP-1")
    cp1["data"] = {**cp1["data"], **defaults}
    return site_entry(port, [cp1], options={"min_increase_interval_s": 0.0})


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.usefixtures("socket_enabled")
async def test_default_goal_per_session_and_cleared_at_its_end(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site(free_port, **DEFAULTS)
    await _setup(hass, entry)
    assert _state(hass, MODE).state == "as_fast_as_possible"  # no car: no goal
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await until(lambda: _state(hass, MODE).state == "by_departure_cheapest")
        assert float(_state(hass, ENERGY).state) == 12.5
        departure = dt_util.parse_datetime(_state(hass, DEPARTURE).state)
        assert departure is not None
        now = dt_util.now()
        assert now < departure <= now + timedelta(days=1)
        local = dt_util.as_local(departure)
        assert (local.hour, local.minute) == (7, 0)
        # The user's change wins over the default for this session.
        await hass.services.async_call(
            DOMAIN,
            "set_charging_goal",
            {
                "device_id": device(hass, entry.entry_id, "charger", "CP-1").id,
                "mode": "by_departure_cheapest",
                "energy_kwh": 3,
            },
            blocking=True,
        )
        assert float(_state(hass, ENERGY).state) == 3.0
        # The car leaves: its goal goes with it.
        await cp1.unplug()
        await until(lambda: _state(hass, MODE).state == "as_fast_as_possible")
        assert _state(hass, ENERGY).state == "unknown"
        assert entry.runtime_data.state.goals == {}
        # The next car gets the default again, not the last car's goal.
        await cp1.plug_in()
        await until(lambda: _state(hass, MODE).state == "by_departure_cheapest")
        assert float(_state(hass, ENERGY).state) == 12.5
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.usefixtures("socket_enabled")
async def test_goal_set_without_a_car_is_for_the_next_car(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site(free_port, **DEFAULTS)
    await _setup(hass, entry)
    await hass.services.async_call(
        DOMAIN,
        "set_charging_goal",
        {
            "device_id": device(hass, entry.entry_id, "charger", "CP-1").id,
            "mode": "by_departure_cheapest",
            "energy_kwh": 4,
        },
        blocking=True,
    )
    goal = entry.runtime_data.state.goals["CP-1"]
    assert goal.session is None  # waiting for a car
    async with chargers(free_port, "CP-1") as (cp1,):
        transaction_id = await cp1.plug_in()
        await until(lambda: entry.runtime_data.state.goals["CP-1"].session is not None)
        # The user's goal wins over the default.
        assert entry.runtime_data.state.goals["CP-1"].session == transaction_id
        assert float(_state(hass, ENERGY).state) == 4.0
        await cp1.unplug()
        await until(lambda: "CP-1" not in entry.runtime_data.state.goals)
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.usefixtures("socket_enabled")
async def test_without_a_default_a_session_goal_still_ends(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site(free_port)
    await _setup(hass, entry)
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await until(
            lambda: bool(entry.runtime_data.server.chargers["CP-1"].transactions)
        )
        assert _state(hass, MODE).state == "as_fast_as_possible"
        await hass.services.async_call(
            DOMAIN,
            "set_charging_goal",
            {
                "device_id": device(hass, entry.entry_id, "charger", "CP-1").id,
                "mode": "by_departure_cheapest",
                "energy_kwh": 4,
            },
            blocking=True,
        )
        assert _state(hass, MODE).state == "by_departure_cheapest"
        await cp1.unplug()
        await until(lambda: _state(hass, MODE).state == "as_fast_as_possible")
        # The next car shares as fast as possible: nothing carried over.
        await cp1.plug_in()
        await until(lambda: len(cp1.received_profiles) > 0)
        await hass.async_block_till_done()
        assert _state(hass, MODE).state == "as_fast_as_possible"
        assert "CP-1" not in entry.runtime_data.state.goals
    assert await hass.config_entries.async_unload(entry.entry_id)
