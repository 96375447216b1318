"""Charging plans that follow a solar forecast entity (the site's *Solar forecast*)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from homeassistant.core import HomeAssistant, State
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import (
    CONF_FEED_IN_PRICE,
    CONF_PRICE_SENSOR,
    CONF_SOLAR_FORECAST,
    DOMAIN,
)

from .common import (
    charger,
    chargers,
    device,
    last_tx_limit,
    move_time,
    panel,
    site_entry,
    until,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

PLANNED = "sensor.cp_1_planned_energy"
NEXT_START = "sensor.cp_1_next_charging_start"
SOLAR = "sensor.solar_forecast_today"
KW_PER_A = 3 * 230 / 1000  # the simulated charger is three-phase


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


def _sun(start: datetime, hours: list[int], kw: float) -> dict[str, Any]:
    """Solcast's shape: half-hourly `pv_estimate` in kW for the given hours."""
    return {
        "detailedForecast": [
            {
                "period_start": (start + timedelta(hours=h, minutes=m)).isoformat(),
                "pv_estimate": kw,
                "pv_estimate10": kw / 2,
                "pv_estimate90": kw,
            }
            for h in hours
            for m in (0, 30)
        ],
        "unit_of_measurement": "kWh",
    }


async def _site(hass: HomeAssistant, port: int, **budget: Any) -> MockConfigEntry:
    """A site whose main breaker reads `sensor.solar_forecast_today`."""
    home = panel("home", "Home", 11.0)
    home["data"] = {**home["data"], CONF_PRICE_SENSOR: "sensor.price"}
    base = site_entry(port, [home, charger("CP-1", "home")])
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=base.title,
        data={**base.data, CONF_SOLAR_FORECAST: [SOLAR], **budget},
        subentries_data=[home, charger("CP-1", "home")],
        options={"min_increase_interval_s": 0.0},
    )
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


def _state(hass: HomeAssistant, entity_id: str) -> State:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return state


def _charging(hass: HomeAssistant) -> list[dict[str, Any]]:
    return [p for p in _state(hass, PLANNED).attributes["plan"] if p["power_kw"] > 0]


def _next_start(hass: HomeAssistant) -> datetime | None:
    return dt_util.parse_datetime(_state(hass, NEXT_START).state)


async def test_solar_only_follows_the_forecast(
    hass: HomeAssistant, free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    start = _hour()
    hass.states.async_set("sensor.price", "0.30", _prices(start, [0.30] * 24))
    # 6.9 kW (10 A on three phases) of PV from +3 h to +5 h.
    hass.states.async_set(SOLAR, "20.7", _sun(start, [3, 4, 5], 6.9))
    entry = await _site(hass, free_port)
    plans = entry.runtime_data.plans
    async with chargers(free_port, "CP-1", clock=plans.now) as (cp1,):
        await cp1.plug_in()
        await until(lambda: (last_tx_limit(cp1) or 0) > 6.0)
        await _set_goal(hass, entry, mode="solar_only", energy_kwh=6.9)
        await move_time(hass, entry, dt_util.utcnow() + timedelta(seconds=2))
        # No sun now: paused; the 6.9 kWh fit into the first sunny hour at 10 A.
        await until(lambda: last_tx_limit(cp1) == 0.0)
        await until(lambda: _next_start(hass) == start + timedelta(hours=3))
        assert float(_state(hass, PLANNED).state) == pytest.approx(6.9, abs=0.05)
        charging = _charging(hass)
        assert len(charging) == 1
        assert dt_util.parse_datetime(charging[0]["start"]) == start + timedelta(
            hours=3
        )
        assert dt_util.parse_datetime(charging[0]["end"]) == start + timedelta(hours=4)
        assert charging[0]["power_kw"] == pytest.approx(10 * KW_PER_A, abs=0.01)

        # The forecast moves the sun later and makes it weaker: the plan follows it
        # (after the debounce), and charges only what the sun gives (4.83 of 6.9 kWh).
        hass.states.async_set(SOLAR, "4.83", _sun(start, [6], 4.83))
        await move_time(hass, entry, dt_util.utcnow() + timedelta(seconds=2))
        await until(lambda: _next_start(hass) == start + timedelta(hours=6))
        assert [
            (dt_util.parse_datetime(p["start"]), p["power_kw"]) for p in _charging(hass)
        ] == [(start + timedelta(hours=6), pytest.approx(7 * KW_PER_A, abs=0.01))]
        assert float(_state(hass, PLANNED).state) == pytest.approx(
            7 * KW_PER_A, abs=0.01
        )

        # A forecast Smart Charge cannot read counts as no sun, and says so once.
        hass.states.async_set(SOLAR, "0", {"forecast": "sunny"})
        await move_time(hass, entry, dt_util.utcnow() + timedelta(seconds=2))
        await until(lambda: _state(hass, NEXT_START).state == "unknown")
        assert float(_state(hass, PLANNED).state) == 0.0
        assert _charging(hass) == []
        assert "holds no forecast Smart Charge can read" in caplog.text
        assert last_tx_limit(cp1) == 0.0
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("budget", "hour"),
    [
        ({}, 3),  # free sun beats the cheap night
        ({CONF_FEED_IN_PRICE: 0.20}, 1),  # exporting earns more than the night costs
    ],
)
async def test_feed_in_price_decides_between_sun_and_cheap_grid(
    hass: HomeAssistant, free_port: int, budget: dict[str, Any], hour: int
) -> None:
    start = _hour()
    prices = [0.30] * 24
    prices[1] = 0.10
    hass.states.async_set("sensor.price", "0.30", _prices(start, prices))
    hass.states.async_set(SOLAR, "20.7", _sun(start, [3], 6.9))
    entry = await _site(hass, free_port, **budget)
    async with chargers(free_port, "CP-1", clock=entry.runtime_data.plans.now) as (
        cp1,
    ):
        await cp1.plug_in()
        await _set_goal(
            hass,
            entry,
            mode="by_departure_cheapest",
            energy_kwh=6.9,
            departure=(start + timedelta(hours=8)).isoformat(),
        )
        await move_time(hass, entry, dt_util.utcnow() + timedelta(seconds=2))
        await until(lambda: _next_start(hass) == start + timedelta(hours=hour))
        charging = _charging(hass)
        assert [dt_util.parse_datetime(p["start"]) for p in charging] == [
            start + timedelta(hours=hour)
        ]
        assert float(_state(hass, PLANNED).state) == pytest.approx(6.9, abs=0.05)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_solar_only_needs_no_price_sensor(
    hass: HomeAssistant, free_port: int
) -> None:
    start = _hour()
    # No sensor.price at all: hourly slots at a flat price; the sun alone decides.
    hass.states.async_set(
        SOLAR,
        "4.83",
        {
            "watts": {
                (start + timedelta(hours=2, minutes=15 * q)).isoformat(): 4830
                for q in range(4)
            }
        },
    )
    entry = await _site(hass, free_port)
    async with chargers(free_port, "CP-1", clock=entry.runtime_data.plans.now) as (
        cp1,
    ):
        await cp1.plug_in()
        await _set_goal(hass, entry, mode="solar_only")  # no energy: whatever fits
        await move_time(hass, entry, dt_util.utcnow() + timedelta(seconds=2))
        await until(lambda: _next_start(hass) == start + timedelta(hours=2))
        assert [
            (dt_util.parse_datetime(p["start"]), p["power_kw"]) for p in _charging(hass)
        ] == [(start + timedelta(hours=2), pytest.approx(7 * KW_PER_A, abs=0.01))]
        await until(lambda: last_tx_limit(cp1) == 0.0)  # no sun now: paused
    assert await hass.config_entries.async_unload(entry.entry_id)
