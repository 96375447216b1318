"""Readings a panel budget cannot use: unreadable numbers, wrong units, no price.

Each is seen where it matters, on the car's limit: an unreadable load counts as the
worst case (the car pauses, as for an unavailable sensor) and a price that cannot be
read falls back to the running slot's price, or charges when there is none (fail open).
"""

from __future__ import annotations

from datetime import timedelta

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest

from custom_components.smart_charge.const import (
    CONF_LOAD_SENSOR,
    CONF_PRICE_SENSOR,
    CONF_TARIFF_MODE,
)

from .common import budget_site, chargers, last_tx_limit, tx_limit, until, value_of

pytestmark = pytest.mark.usefixtures("socket_enabled")

KW_PER_A = 3 * 230 / 1000


@pytest.mark.parametrize(
    ("state", "attributes"),
    [
        ("plenty", {"unit_of_measurement": "W"}),  # not a number
        ("2000", {"unit_of_measurement": "°C"}),  # not a power
    ],
)
async def test_a_load_that_cannot_be_read_is_the_worst_case(
    hass: HomeAssistant, free_port: int, state: str, attributes: dict[str, str]
) -> None:
    hass.states.async_set("sensor.house", "2000", {"unit_of_measurement": "W"})
    await budget_site(hass, free_port, {CONF_LOAD_SENSOR: "sensor.house"})
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await until(lambda: (last_tx_limit(cp1) or 0.0) > 6.0)
        assert tx_limit(cp1) <= (11.0 * 0.95 - 2.0) / KW_PER_A
        hass.states.async_set("sensor.house", state, attributes)
        await until(lambda: last_tx_limit(cp1) == 0.0, 2.0)
        hass.states.async_set("sensor.house", "1000", {"unit_of_measurement": "W"})
        await until(lambda: tx_limit(cp1) > 6.0, 2.0)


async def test_a_phase_current_that_cannot_be_read_is_the_worst_case(
    hass: HomeAssistant, free_port: int
) -> None:
    for phase in ("l1", "l2", "l3"):
        hass.states.async_set(
            f"sensor.house_{phase}", "2", {"unit_of_measurement": "A"}
        )
    await budget_site(
        hass,
        free_port,
        {
            "phase_limit_a": 16.0,
            **{f"load_current_{p}": f"sensor.house_{p}" for p in ("l1", "l2", "l3")},
        },
    )
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        # 16 A x 0.95 - 2 A per phase, or the kW left: never more than 13.2 A.
        await until(lambda: (last_tx_limit(cp1) or 0.0) > 6.0)
        assert tx_limit(cp1) <= 13.2
        hass.states.async_set("sensor.house_l2", "two", {"unit_of_measurement": "A"})
        await until(lambda: last_tx_limit(cp1) == 0.0, 2.0)


async def test_an_unreadable_price_falls_back_to_the_running_slot(
    hass: HomeAssistant, free_port: int
) -> None:
    """Price 'n/a' with a forecast: the slot of now decides (0.40 > 0.20: pause)."""
    now = dt_util.now().replace(minute=0, second=0, microsecond=0)
    prices = [
        {
            "start": (now + timedelta(hours=h)).isoformat(),
            "end": (now + timedelta(hours=h + 1)).isoformat(),
            "price": price,
        }
        for h, price in enumerate([0.40, 0.10])
    ]
    hass.states.async_set("sensor.price", "n/a", {"prices": prices})
    await budget_site(
        hass,
        free_port,
        {
            CONF_TARIFF_MODE: "threshold",
            CONF_PRICE_SENSOR: "sensor.price",
            "price_threshold": 0.2,
        },
    )
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await until(lambda: last_tx_limit(cp1) == 0.0)
        assert value_of(hass, "sensor.home_budget_reason") == "tariff"
        # The price is readable again and cheap: the car charges.
        hass.states.async_set("sensor.price", "0.15", {"prices": prices})
        await until(lambda: tx_limit(cp1) > 6.0, 2.0)


async def test_a_price_sensor_that_does_not_exist_lets_the_car_charge(
    hass: HomeAssistant, free_port: int
) -> None:
    await budget_site(
        hass,
        free_port,
        {
            CONF_TARIFF_MODE: "threshold",
            CONF_PRICE_SENSOR: "sensor.no_such_price",
            "price_threshold": 0.2,
        },
    )
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await until(lambda: (last_tx_limit(cp1) or 0.0) > 6.0)
        assert value_of(hass, "sensor.home_budget_reason") != "tariff"
