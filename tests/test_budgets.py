"""Panel budgets that follow Home Assistant entities, seen on the chargers' profiles."""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType

from homeassistant.config_entries import ConfigSubentry, ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest

from custom_components.smart_charge.const import (
    CONF_CHEAPEST_HOURS,
    CONF_DEPARTURE,
    CONF_GRID_SENSOR,
    CONF_LOAD_SENSOR,
    CONF_PRICE_SENSOR,
    CONF_SOLAR_MODE,
    CONF_SOLAR_START_DELAY,
    CONF_SOLAR_START_KW,
    CONF_SOLAR_STOP_DELAY,
    CONF_STRATEGY,
    CONF_TARIFF_HOLD_MINIMUM,
    CONF_TARIFF_MODE,
    CONF_TOU_WINDOWS,
    DOMAIN,
)

from .common import (
    NO_SPACING,
    budget_site,
    charger,
    chargers,
    last_tx_limit,
    move_time,
    panel,
    settle_limits,
    site_entry,
    state_when,
    tx_limit,
    until,
    value_of,
)

pytestmark = pytest.mark.usefixtures("socket_enabled")

# These tests move simulated hours in real seconds: their sites have NO_SPACING.
KW_PER_A = 3 * 230 / 1000
W = {"unit_of_measurement": "W"}


async def test_household_load_and_unavailable_sensor(
    hass: HomeAssistant, free_port: int
) -> None:
    hass.states.async_set("sensor.house", "2000", W)
    entry = await budget_site(hass, free_port, {CONF_LOAD_SENSOR: "sensor.house"})
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        expected = (11.0 * 0.95 - 2.0) / KW_PER_A
        await until(lambda: last_tx_limit(cp1) is not None)
        assert expected - 0.1 <= tx_limit(cp1) <= expected
        assert value_of(hass, "sensor.home_budget_reason") == "load"

        # The oven goes on: limits drop within the debounce.
        hass.states.async_set("sensor.house", "5.5", {"unit_of_measurement": "kW"})
        await until(lambda: tx_limit(cp1) <= (11.0 * 0.95 - 5.5) / KW_PER_A, 2.0)
        assert tx_limit(cp1) >= 6.0

        # The sensor goes away: the worst case (the whole rating used) pauses the car.
        hass.states.async_set("sensor.house", "unavailable")
        await until(lambda: last_tx_limit(cp1) == 0.0, 2.0)
        issue_id = f"load_sensor_unavailable_{entry.entry_id}_home"
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None
        await move_time(hass, entry, dt_util.utcnow() + timedelta(minutes=6))
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None

        hass.states.async_set("sensor.house", "1000", W)
        await until(lambda: tx_limit(cp1) > 6.0, 2.0)
        assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is None


async def test_solar_surplus_with_hysteresis(
    hass: HomeAssistant, free_port: int
) -> None:
    hass.states.async_set("sensor.grid", "-6000", W)  # 6 kW export
    entry = await budget_site(
        hass,
        free_port,
        {
            CONF_SOLAR_MODE: "solar",
            CONF_GRID_SENSOR: "sensor.grid",
            CONF_SOLAR_START_KW: 4.2,
            CONF_SOLAR_START_DELAY: 60,
            CONF_SOLAR_STOP_DELAY: 300,
        },
    )
    t0 = dt_util.utcnow()
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await until(lambda: last_tx_limit(cp1) == 0.0)  # not before the start delay
        assert value_of(hass, "sensor.home_budget_reason") == "solar"
        await move_time(hass, entry, t0 + timedelta(seconds=30))
        assert last_tx_limit(cp1) == 0.0
        await move_time(hass, entry, t0 + timedelta(seconds=70))
        await until(lambda: tx_limit(cp1) > 0)
        # Surplus = export 6 kW (the car drew nothing yet), less the safety margin.
        assert tx_limit(cp1) <= 6.0 * 0.95 / KW_PER_A

        # The car now draws its limit (once the charger applied it: it is received
        # before it is in force); the meter shows that much less export.
        await until(lambda: cp1.limit_in_force(1) == last_tx_limit(cp1))
        drawn = tx_limit(cp1) * KW_PER_A
        hass.states.async_set("sensor.grid", str(-(6.0 - drawn) * 1000), W)
        cp1.car_max_a = 32
        await cp1.send_meter_values()
        await move_time(hass, entry, t0 + timedelta(seconds=80))
        # The raise goes out after the decreases (idle defaults) are acknowledged.
        await until(lambda: (last_tx_limit(cp1) or 0.0) > 6.0)

        # A cloud: export drops below the threshold, the car keeps charging ...
        hass.states.async_set("sensor.grid", str(drawn * 1000 - 1000), W)
        await move_time(hass, entry, t0 + timedelta(seconds=200))
        assert tx_limit(cp1) > 0
        # ... and pauses only after the stop delay.
        await move_time(hass, entry, t0 + timedelta(seconds=400))
        await until(lambda: last_tx_limit(cp1) == 0.0)
        # Sun again: resumes only after the start delay.
        hass.states.async_set("sensor.grid", "-7000", W)
        await move_time(hass, entry, t0 + timedelta(seconds=420))
        assert last_tx_limit(cp1) == 0.0
        await move_time(hass, entry, t0 + timedelta(seconds=490))
        await until(lambda: tx_limit(cp1) > 6.0)


async def test_cheapest_hours_from_forecast(
    hass: HomeAssistant, free_port: int
) -> None:
    now = dt_util.now().replace(minute=0, second=0, microsecond=0)
    prices = [
        {
            "start": (now + timedelta(hours=h)).isoformat(),
            "end": (now + timedelta(hours=h + 1)).isoformat(),
            "price": price,
        }
        for h, price in enumerate([0.40, 0.10, 0.35, 0.05])
    ]
    hass.states.async_set("sensor.price", "0.40", {"prices": prices})
    departure = (now + timedelta(hours=4)).strftime("%H:%M:00")
    entry = await budget_site(
        hass,
        free_port,
        {
            CONF_TARIFF_MODE: "cheapest",
            CONF_PRICE_SENSOR: "sensor.price",
            CONF_CHEAPEST_HOURS: 2,
            CONF_DEPARTURE: departure,
        },
    )
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await until(lambda: last_tx_limit(cp1) == 0.0)  # 0.40: not among the cheapest
        assert value_of(hass, "sensor.home_budget_reason") == "tariff"
        await move_time(hass, entry, now + timedelta(hours=1, minutes=1))
        await until(lambda: tx_limit(cp1) > 6.0)  # 0.10: charge
        await move_time(hass, entry, now + timedelta(hours=2, minutes=1))
        await until(lambda: last_tx_limit(cp1) == 0.0)  # 0.35: pause
        await move_time(hass, entry, now + timedelta(hours=3, minutes=1))
        await until(lambda: tx_limit(cp1) > 6.0)  # 0.05: charge


async def test_tariff_hold_minimum(hass: HomeAssistant, free_port: int) -> None:
    hass.states.async_set("sensor.price", "0.50")
    await budget_site(
        hass,
        free_port,
        {
            CONF_TARIFF_MODE: "threshold",
            CONF_PRICE_SENSOR: "sensor.price",
            "price_threshold": 0.2,
            CONF_TARIFF_HOLD_MINIMUM: True,
        },
    )
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await until(lambda: last_tx_limit(cp1) == 6.0)  # expensive: held at the minimum
        hass.states.async_set("sensor.price", "0.15")
        await until(lambda: tx_limit(cp1) > 6.0, 2.0)


async def test_time_of_use_window_pauses_rather_than_exceeds(
    hass: HomeAssistant, free_port: int
) -> None:
    hour = dt_util.now().hour
    window = f"{hour}-{(hour + 1) % 24}:0.5"
    await budget_site(
        hass,
        free_port,
        {CONF_STRATEGY: "time_of_use", CONF_TOU_WINDOWS: window},
    )
    home_cp2 = charger("CP-2", "home")
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    hass.config_entries.async_add_subentry(entry, _subentry(home_cp2))
    await hass.async_block_till_done()
    async with chargers(free_port, "CP-1", "CP-2") as (cp1, cp2):
        await cp1.plug_in()
        await cp2.plug_in()
        # 11 kW x 0.5 x 0.95 = 5.2 kW: one car at >= 6 A (4.1 kW), never two.
        await until(
            lambda: last_tx_limit(cp1) is not None
            and last_tx_limit(cp2) is not None
            and sorted([tx_limit(cp1), tx_limit(cp2)])[0] == 0.0
        )
        running = max(tx_limit(cp1), tx_limit(cp2))
        assert 6.0 <= running <= 11.0 * 0.5 * 0.95 / KW_PER_A
        assert value_of(hass, "sensor.home_budget_reason") == "time_of_use"


def _subentry(data: ConfigSubentryDataWithId) -> ConfigSubentry:
    return ConfigSubentry(
        data=MappingProxyType(data["data"]),
        subentry_type=data["subentry_type"],
        title=data["title"],
        unique_id=data["unique_id"],
    )


async def test_per_phase_load_currents(hass: HomeAssistant, free_port: int) -> None:
    """Other load measured per phase counts against the phase the car is wired to."""
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
        free_port, [home, charger("CP-1", "home", phases=1)], options=NO_SPACING
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    async with chargers(free_port, "CP-1", phases=1) as (cp1,):
        await cp1.plug_in()
        # L1 keeps 16 A x 0.95 = 15.2 A; the house takes 8 A of it.
        await until(lambda: last_tx_limit(cp1) == 7.2)
        # L1 is full, the kW budget is not: the budget reason names the phase (the
        # state follows the write the charger already has).
        await state_when(
            hass, "sensor.home_budget_reason", lambda s: s.state == "phase"
        )
        # Load on another phase does not touch the car on L1: once the budget has
        # taken it (the headroom shrinks by its power), the car's limit is the same.
        await settle_limits(hass, entry)
        headroom = value_of(hass, "sensor.home_headroom")
        hass.states.async_set("sensor.house_l2", "14", {"unit_of_measurement": "A"})
        await state_when(hass, "sensor.home_headroom", lambda s: s.state != headroom)
        await settle_limits(hass, entry)
        assert last_tx_limit(cp1) == 7.2
        # More on L1: below the 6 A minimum, the car pauses.
        hass.states.async_set("sensor.house_l1", "12", {"unit_of_measurement": "A"})
        await until(lambda: last_tx_limit(cp1) == 0.0, 2.0)
        hass.states.async_set("sensor.house_l1", "2", {"unit_of_measurement": "A"})
        await until(lambda: last_tx_limit(cp1) == 13.2, 2.0)
        # One phase sensor gone: the worst case on every phase.
        hass.states.async_set("sensor.house_l3", "unavailable")
        await until(lambda: last_tx_limit(cp1) == 0.0, 2.0)
