"""Session history at its edges: stored data, price and grid sensors, odd event orders.

The history is fed the server's own event types, as the coordinator does; sensors are
real Home Assistant states. Every number is computed by hand in the test's docstring.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import (
    CONF_GRID_SENSOR,
    CONF_PRICE_SENSOR,
    DOMAIN,
)
from custom_components.smart_charge.csms import (
    MeterValuesReceived,
    TagSeen,
    TransactionStarted,
    TransactionStopped,
)
from custom_components.smart_charge.history import SessionHistory
from custom_components.smart_charge.tags import SiteTags

PRICE = "sensor.price"
GRID = "sensor.grid_power"
# Two days ago at 08:00 UTC: inside the kept history, whatever today is.
T0 = (dt_util.utcnow() - timedelta(days=2)).replace(
    hour=8, minute=0, second=0, microsecond=0
)


def _entry(**data: Any) -> MockConfigEntry:
    return MockConfigEntry(domain=DOMAIN, data=data, entry_id="site1")


async def _history(hass: HomeAssistant, entry: MockConfigEntry) -> SessionHistory:
    entry.add_to_hass(hass)
    history = SessionHistory(hass, entry, SiteTags(hass, entry))
    await history.async_start()
    return history


def _start(tx: str, meter_wh: float | None, at: datetime) -> TransactionStarted:
    return TransactionStarted(
        charger_id="CP-1",
        connector_id=1,
        transaction_id=tx,
        id_tag="ALICE",
        meter_start_wh=meter_wh,
        timestamp=at,
    )


def _meter(
    tx: str | None,
    energy_wh: float | None,
    at: datetime,
    *,
    power_w: float | None = None,
    connector_id: int = 1,
) -> MeterValuesReceived:
    return MeterValuesReceived(
        charger_id="CP-1",
        connector_id=connector_id,
        transaction_id=tx,
        power_w=power_w,
        current_a=(),
        voltage_v=None,
        energy_wh=energy_wh,
        soc=None,
        timestamp=at,
    )


def _stop(tx: str, meter_wh: float | None, at: datetime) -> TransactionStopped:
    return TransactionStopped(
        charger_id="CP-1",
        connector_id=1,
        transaction_id=tx,
        meter_stop_wh=meter_wh,
        reason="Local",
        timestamp=at,
    )


async def _set(
    hass: HomeAssistant, entity_id: str, value: str, unit: str, at: datetime
) -> None:
    hass.states.async_set(
        entity_id, value, {"unit_of_measurement": unit}, timestamp=at.timestamp()
    )
    await hass.async_block_till_done()


async def test_unreadable_store_starts_anew_and_keeps_lifetime_energy(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stored session without its fields is dropped with a warning; totals stay."""
    hass_storage[f"{DOMAIN}.site1.sessions"] = {
        "version": 1,
        "minor_version": 1,
        "key": f"{DOMAIN}.site1.sessions",
        "data": {
            "sessions": [{"charger_id": "CP-1"}],  # no transaction, no start
            "running": [],
            "lifetime_wh": {"alice": 4200},
        },
    }
    history = await _history(hass, _entry())

    assert history.sessions == []
    assert history.running == {}
    assert "Session history could not be read, starting anew" in caplog.text
    assert history.lifetime_wh == {"alice": 4200.0}
    assert history.totals("ALICE", T0).energy_total_wh == 4200.0


async def test_stored_prices_and_running_session_survive_a_restart(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """A restored price step prices the restored session's next reading.

    Stored: 0.25 per kWh from 08:00 (an unparsable step is skipped), a session at
    1000 Wh at 08:30. The reading at 09:00 (3000 Wh) costs 2.0 kWh x 0.25 = 0.50.
    """
    key = f"{DOMAIN}.site1.sessions"
    hass_storage[key] = {
        "version": 1,
        "minor_version": 1,
        "key": key,
        "data": {
            "sessions": [],
            "running": [
                {
                    "charger_id": "CP-1",
                    "connector_id": 1,
                    "transaction_id": "7",
                    "id_tag": "ALICE",
                    "tag_name": None,
                    "person": None,
                    "started": (T0 + timedelta(minutes=30)).isoformat(),
                    "meter_start_wh": 1000.0,
                    "last_time": (T0 + timedelta(minutes=30)).isoformat(),
                    "last_energy_wh": 1000.0,
                }
            ],
            "prices": [[T0.isoformat(), 0.25], ["not a time", 9.0]],
            "grid": [],
        },
    }
    history = await _history(hass, _entry(**{CONF_PRICE_SENSOR: PRICE}))
    assert history.prices.prices == [0.25]

    history.handle_event(_meter("7", 3000, T0 + timedelta(hours=1)))
    history.handle_event(_stop("7", None, T0 + timedelta(hours=1)))

    (session,) = history.query()
    assert session.energy_wh == 2000.0
    assert session.meter_stop_wh == 3000.0  # no stop reading: the last one
    assert session.cost == pytest.approx(0.50)


async def test_unknown_and_unparsable_prices_leave_energy_unpriced(
    hass: HomeAssistant,
) -> None:
    """Energy under an unknown price is unpriced and costs nothing; the rest is charged.

    08:00 unknown, 09:00 "n/a", 10:00 200 EUR/MWh (0.20 per kWh). Readings 0, 1000
    (09:00), 2000 (10:00), 5000 Wh (11:00): 2.0 kWh unpriced, 3.0 kWh x 0.20 = 0.60.
    """
    await _set(hass, PRICE, "unknown", "EUR/MWh", T0)
    history = await _history(hass, _entry(**{CONF_PRICE_SENSOR: PRICE}))
    history.handle_event(_start("1", 0, T0))
    await _set(hass, PRICE, "n/a", "EUR/MWh", T0 + timedelta(hours=1))
    history.handle_event(_meter("1", 1000, T0 + timedelta(hours=1)))
    await _set(hass, PRICE, "200", "EUR/MWh", T0 + timedelta(hours=2))
    history.handle_event(_meter("1", 2000, T0 + timedelta(hours=2)))
    history.handle_event(_stop("1", 5000, T0 + timedelta(hours=3)))

    (session,) = history.query()
    assert session.unpriced_wh == 2000.0
    assert session.cost == pytest.approx(0.60)
    assert session.currency == "EUR"
    assert session.export()["energy_kwh"] == 5.0


async def test_a_session_without_any_priced_energy_costs_zero(
    hass: HomeAssistant,
) -> None:
    """With a price sensor and nothing unpriced, a session that used nothing costs 0."""
    await _set(hass, PRICE, "0.30", "EUR/kWh", T0)
    history = await _history(hass, _entry(**{CONF_PRICE_SENSOR: PRICE}))
    history.handle_event(_start("1", 500, T0))
    history.handle_event(_stop("1", 500, T0 + timedelta(minutes=5)))

    (session,) = history.query()
    assert session.cost == 0.0
    assert session.export()["cost"] == 0.0
    assert session.export()["solar_share"] is None  # no grid meter


async def test_grid_meter_readings_give_the_solar_share(hass: HomeAssistant) -> None:
    """The solar share is the car's energy the grid did not import.

    The car takes 3.6 kW for an hour (3600 Wh). 08:00-08:30 the grid imports 1.8 kW
    (half the car's power), 08:30-09:00 the grid reads "unavailable" (import unknown:
    no solar credited): 1800 Wh x 0.5 / 3600 Wh = 0.25 of the session. A reading in
    amperes is no power and counts as unknown too.
    """
    await _set(hass, GRID, "1.8", "kW", T0)
    history = await _history(hass, _entry(**{CONF_GRID_SENSOR: GRID}))
    history.handle_event(_start("1", 0, T0))
    await _set(hass, GRID, "unavailable", "kW", T0 + timedelta(minutes=30))
    history.handle_event(_meter("1", 1800, T0 + timedelta(minutes=30), power_w=3600))
    await _set(hass, GRID, "12", "A", T0 + timedelta(minutes=45))
    history.handle_event(_meter("1", 3600, T0 + timedelta(hours=1), power_w=3700))
    history.handle_event(_stop("1", None, T0 + timedelta(hours=1)))

    assert history.grid.prices[-2:] == [None, None]
    (session,) = history.query()
    assert session.solar_wh == pytest.approx(900.0)
    assert session.export()["solar_share"] == 0.25
    assert session.export()["peak_power_kw"] == 3.7


async def test_events_out_of_order_are_ignored_or_matched(hass: HomeAssistant) -> None:
    """A repeated start is ignored; a reading without a transaction id finds its
    connector's session; readings and stops of unknown sessions change nothing."""
    history = await _history(hass, _entry())
    history.handle_event(_start("1", 100, T0))
    history.handle_event(_start("1", 9999, T0 + timedelta(minutes=1)))  # repeated
    history.handle_event(_meter(None, 600, T0 + timedelta(minutes=10)))
    history.handle_event(_meter(None, 5000, T0 + timedelta(minutes=10), connector_id=2))
    history.handle_event(_meter("unknown", 7000, T0 + timedelta(minutes=15)))
    history.handle_event(_stop("unknown", 8000, T0 + timedelta(minutes=20)))
    history.handle_event(
        TagSeen(
            charger_id="CP-1",
            connector_id=1,
            id_tag="ALICE",
            accepted=True,
            status="Accepted",
            action="Authorize",
        )
    )
    assert history.sessions == []
    history.handle_event(_stop("1", None, T0 + timedelta(minutes=30)))

    (session,) = history.query()
    assert session.meter_start_wh == 100.0
    assert session.meter_stop_wh == 600.0
    assert session.energy_wh == 500.0
    assert session.cost is None  # no price sensor: no cost at all
    assert history.lifetime_wh == {"alice": 500.0}
