"""Charging goals: entities and services, the plan executed slot by slot, plan sensors."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from homeassistant.components.datetime.const import (
    ATTR_DATETIME,
    DOMAIN as DATETIME_DOMAIN,
    SERVICE_SET_VALUE as DATETIME_SET_VALUE,
)
from homeassistant.components.number.const import (
    ATTR_VALUE,
    DOMAIN as NUMBER_DOMAIN,
    SERVICE_SET_VALUE as NUMBER_SET_VALUE,
)
from homeassistant.components.select import (
    ATTR_OPTION,
    DOMAIN as SELECT_DOMAIN,
    SERVICE_SELECT_OPTION,
)
from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.const import ATTR_ENTITY_ID
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import CONF_PRICE_SENSOR, DOMAIN

from .common import (
    charger,
    chargers,
    device,
    last_tx_limit,
    move_time,
    panel,
    settle_limits,
    site_entry,
    state_of,
    until,
    value_of,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

NO_SPACING = {"min_increase_interval_s": 0.0}
ENERGY = "number.cp_1_energy_to_add"
MODE = "select.cp_1_charging_mode"
DEPARTURE = "datetime.cp_1_departure"
FINISH = "sensor.cp_1_planned_finish"
PLANNED = "sensor.cp_1_planned_energy"
NEXT_START = "sensor.cp_1_next_charging_start"


def _hour() -> datetime:
    return dt_util.utcnow().replace(minute=0, second=0, microsecond=0)


def _prices(start: datetime, prices: list[float]) -> dict[str, Any]:
    return {
        "prices": [
            {
                "start": (start + timedelta(hours=h)).isoformat(),
                "end": (start + timedelta(hours=h + 1)).isoformat(),
                "price": price,
            }
            for h, price in enumerate(prices)
        ]
    }


def _subentries() -> list[ConfigSubentryDataWithId]:
    home = panel("home", "Home", 11.0)
    home["data"] = {**home["data"], CONF_PRICE_SENSOR: "sensor.price"}
    return [home, charger("CP-1", "home"), charger("VIP-1", "home", managed=False)]


@pytest.fixture
def site_subentries() -> list[ConfigSubentryDataWithId]:
    """A managed and an unmanaged charger on a panel priced by `sensor.price`."""
    return _subentries()


@pytest.fixture
def site_options() -> dict[str, Any]:
    """Profile writes without spacing, so each replan reaches the charger at once."""
    return {"options": NO_SPACING}


async def _site(hass: HomeAssistant, port: int) -> MockConfigEntry:
    """Set up the same site as `init_site`, for a test whose prices exist before it."""
    entry = site_entry(port, _subentries(), options=NO_SPACING)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _set_goal(hass: HomeAssistant, entry: MockConfigEntry, **data: Any) -> None:
    await hass.services.async_call(
        DOMAIN,
        "set_charging_goal",
        {"device_id": device(hass, entry.entry_id, "charger", "CP-1").id, **data},
        blocking=True,
    )
    await hass.async_block_till_done()


async def test_goal_waits_for_the_cheap_hour_and_clears(
    hass: HomeAssistant, free_port: int
) -> None:
    start = _hour()
    # Dear for two hours, then cheap: 5 kWh fit in the first cheap hour.
    hass.states.async_set(
        "sensor.price", "0.40", _prices(start, [0.40, 0.40, 0.05] + [0.30] * 21)
    )
    entry = await _site(hass, free_port)
    plans = entry.runtime_data.plans
    # The charger's clock is the one the plan runs on (moved with HA's below).
    async with chargers(free_port, "CP-1", clock=plans.now) as (cp1,):
        await cp1.plug_in()
        await until(lambda: (last_tx_limit(cp1) or 0) > 6.0)  # no goal: shares as today
        await _set_goal(
            hass,
            entry,
            mode="by_departure_cheapest",
            energy_kwh=5,
            departure=(start + timedelta(hours=6)).isoformat(),
        )
        await move_time(
            hass, entry, dt_util.utcnow() + timedelta(seconds=2)
        )  # debounce
        await until(lambda: last_tx_limit(cp1) == 0.0)  # dear now: paused
        await until(
            lambda: value_of(hass, "sensor.cp_1_limit_reason") == "charging_plan"
        )
        assert value_of(hass, "sensor.cp_1_status") == "paused"
        assert value_of(hass, MODE) == "by_departure_cheapest"
        assert float(value_of(hass, ENERGY)) == 5.0
        assert dt_util.parse_datetime(value_of(hass, NEXT_START)) == (
            start + timedelta(hours=2)
        )
        assert dt_util.parse_datetime(value_of(hass, FINISH)) == (
            start + timedelta(hours=3)
        )
        planned = state_of(hass, PLANNED)
        assert float(planned.state) == pytest.approx(5.0, abs=0.1)
        charging = [p for p in planned.attributes["plan"] if p["power_kw"] > 0]
        assert len(charging) == 1
        assert dt_util.parse_datetime(charging[0]["start"]) == start + timedelta(
            hours=2
        )
        assert charging[0]["power_kw"] == pytest.approx(5.0, abs=0.1)

        # The next dear hour: still paused; the cheap hour: it charges. The whole plan
        # went out as one schedule, which the charger follows by itself.
        await move_time(hass, entry, start + timedelta(hours=1, seconds=1))
        assert cp1.limit_in_force(1) == 0.0
        await move_time(hass, entry, start + timedelta(hours=2, seconds=1))
        await until(lambda: cp1.limit_in_force(1) >= 6.0)
        assert cp1.limit_in_force(1) == pytest.approx(5.0 / (3 * 230 / 1000), abs=0.2)
        assert len([p for p in cp1.received_profiles if p.purpose == "TxProfile"]) == 2

        # Cleared: back to sharing at full speed.
        await hass.services.async_call(
            DOMAIN,
            "clear_charging_goal",
            {"device_id": device(hass, entry.entry_id, "charger", "CP-1").id},
            blocking=True,
        )
        await move_time(hass, entry, start + timedelta(hours=2, seconds=5))
        await until(lambda: (last_tx_limit(cp1) or 0) > 14.0)
        assert value_of(hass, MODE) == "as_fast_as_possible"
        assert value_of(hass, PLANNED) == "unknown"
        assert state_of(hass, PLANNED).attributes["plan"] == []
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_no_forecast_plans_hourly_at_a_flat_price(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    entry = init_site  # sensor.price does not exist
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await _set_goal(hass, entry, mode="by_departure_cheapest", energy_kwh=3)
        await move_time(hass, entry, dt_util.utcnow() + timedelta(seconds=2))
        # All hours cost the same: the earliest serves.
        await until(lambda: (last_tx_limit(cp1) or 0) >= 6.0)
        assert value_of(hass, PLANNED) not in ("unknown", "unavailable")
        plan = state_of(hass, PLANNED).attributes["plan"]
        assert plan
        for period in plan:
            begins = dt_util.parse_datetime(period["start"])
            ends = dt_util.parse_datetime(period["end"])
            assert begins is not None and ends is not None
            length = ends - begins
            assert length.total_seconds() % 3600 == 0 or period is plan[0]
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"mode": "by_departure_cheapest"}, "goal_needs_energy"),
        ({"mode": "fastest"}, "invalid_charging_mode"),
        ({"target_soc": 80}, "goal_soc_incomplete"),
        (
            {"target_soc": 50, "current_soc": 60, "battery_kwh": 60},
            "goal_soc_reached",
        ),
        (
            {"energy_kwh": 5, "departure": "2020-01-01T07:00:00+00:00"},
            "departure_in_past",
        ),
    ],
)
async def test_bad_goal_is_a_translated_error(
    hass: HomeAssistant,
    free_port: int,
    data: dict[str, Any],
    error: str,
    init_site: MockConfigEntry,
) -> None:
    entry = init_site
    with pytest.raises(ServiceValidationError) as err:
        await _set_goal(hass, entry, **data)
    assert err.value.translation_key == error
    assert err.value.translation_domain == DOMAIN
    assert value_of(hass, MODE) == "as_fast_as_possible"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_goal_on_an_unmanaged_charger_is_refused(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    entry = init_site
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "set_charging_goal",
            {
                "device_id": device(hass, entry.entry_id, "charger", "VIP-1").id,
                "energy_kwh": 5,
            },
            blocking=True,
        )
    assert err.value.translation_key == "goal_not_managed"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_entity_actions_and_restart(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    entry = init_site
    departure = (_hour() + timedelta(hours=8)).replace(microsecond=0)
    await hass.services.async_call(
        NUMBER_DOMAIN,
        NUMBER_SET_VALUE,
        {ATTR_ENTITY_ID: ENERGY, ATTR_VALUE: 12.5},
        blocking=True,
    )
    await hass.services.async_call(
        SELECT_DOMAIN,
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: MODE, ATTR_OPTION: "by_departure_solar_first"},
        blocking=True,
    )
    await hass.services.async_call(
        DATETIME_DOMAIN,
        DATETIME_SET_VALUE,
        {ATTR_ENTITY_ID: DEPARTURE, ATTR_DATETIME: departure},
        blocking=True,
    )
    await hass.async_block_till_done()
    assert float(value_of(hass, ENERGY)) == 12.5
    assert value_of(hass, MODE) == "by_departure_solar_first"
    assert dt_util.parse_datetime(value_of(hass, DEPARTURE)) == departure

    # The goal survives a restart.
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert float(value_of(hass, ENERGY)) == 12.5
    assert value_of(hass, MODE) == "by_departure_solar_first"
    assert dt_util.parse_datetime(value_of(hass, DEPARTURE)) == departure
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_ev_charging_needs_fill_the_goal(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    entry = init_site
    departure = (_hour() + timedelta(hours=9)).replace(microsecond=0)
    async with chargers(free_port, "CP-1", version="2.0.1") as (cp1,):
        await cp1.plug_in()
        await cp1.notify_ev_charging_needs(energy_wh=18000, departure=departure)
        await hass.async_block_till_done()
        await until(lambda: value_of(hass, ENERGY) == "18.0")
        assert dt_util.parse_datetime(value_of(hass, DEPARTURE)) == departure
        # The mode stays the user's: as fast as possible until one is chosen.
        assert value_of(hass, MODE) == "as_fast_as_possible"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_car_with_a_goal_waits_from_its_arrival_and_prices_replan(
    hass: HomeAssistant, free_port: int
) -> None:
    start = _hour()
    hass.states.async_set(
        "sensor.price", "0.40", _prices(start, [0.40, 0.40, 0.05] + [0.30] * 21)
    )
    entry = await _site(hass, free_port)
    await _set_goal(
        hass,
        entry,
        mode="by_departure_cheapest",
        energy_kwh=5,
        departure=(start + timedelta(hours=6)).isoformat(),
    )
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await until(lambda: last_tx_limit(cp1) is not None)
        await settle_limits(hass, entry)
        # Paused from its first limit on: it never got a share before the plan.
        assert {p.limit for p in cp1.received_profiles if p.purpose == "TxProfile"} == {
            0.0
        }
        # New prices make now the cheapest hour: replanned, it charges now.
        hass.states.async_set(
            "sensor.price", "0.01", _prices(start, [0.01, 0.40, 0.40] + [0.30] * 21)
        )
        await move_time(hass, entry, dt_util.utcnow() + timedelta(seconds=2))
        await until(lambda: (last_tx_limit(cp1) or 0) >= 6.0)
        # The plan starts now (the part of the hour already past is not planned).
        next_start = dt_util.parse_datetime(value_of(hass, NEXT_START))
        assert next_start is not None
        assert start <= next_start <= dt_util.utcnow()
    assert await hass.config_entries.async_unload(entry.entry_id)
