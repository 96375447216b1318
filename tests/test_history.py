"""Session history: energy and cost per session and tag, restarts, export, diagnostics.

Three sessions with two tags against a price that steps at 09:00 and 10:00; every
number below is computed by hand from the readings (the energy between two readings
at the time-weighted price between their timestamps):

    price      0.30 from 08:00, 0.20 from 09:00, 0.40 from 10:00 (EUR/kWh)
    session 1  CP-1 (1.6), Alice: 08:30 1000 Wh, 08:45 3000, 09:15 6000, 09:30 7000
               2.0 kWh x 0.30 + 3.0 kWh x (0.30 + 0.20) / 2 + 1.0 kWh x 0.20 = 1.55
    session 2  CP-2 (2.0.1), Bob: 09:30 500 Wh, 10:00 4500, 10:30 6500
               4.0 kWh x 0.20 + 2.0 kWh x 0.40 = 1.60
    session 3  CP-1, Alice: 10:30 7000 Wh, 11:00 9000, 11:30 10000
               2.0 kWh x 0.40 + 1.0 kWh x 0.40 = 1.20
    Alice 9.0 kWh, 2.75 EUR; Bob 6.0 kWh, 1.60 EUR.
"""

from __future__ import annotations

from collections.abc import Callable
import csv
from datetime import datetime, timedelta
import functools
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant, ServiceResponse, State
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from homeassistant.util.json import JsonObjectType
import pytest
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.smart_charge.const import DOMAIN
from custom_components.smart_charge.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.smart_charge.history import SessionHistory
from custom_components.smart_charge.tag_config import (
    CONF_COST_SENSOR,
    CONF_TAG_POLICY,
    EVENT_SESSION_FINISHED,
)
from tools.simulator import SimulatedCharger

from .common import charger, device, site_entry, state_of, until
from .test_tags import tag

pytestmark = pytest.mark.usefixtures("socket_enabled")

PRICE = "sensor.price"
GRID = "sensor.grid_power"


class Clock:
    """The time the simulated chargers write into their messages."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


_until = functools.partial(until, timeout=5.0)


def _set_price(hass: HomeAssistant, price: float, moment: datetime) -> None:
    hass.states.async_set(
        PRICE,
        str(price),
        {"unit_of_measurement": "EUR/kWh"},
        timestamp=moment.timestamp(),
    )


def _set_power(hass: HomeAssistant, watts: float, moment: datetime) -> None:
    hass.states.async_set(
        GRID, str(watts), {"unit_of_measurement": "W"}, timestamp=moment.timestamp()
    )


def _sensor(hass: HomeAssistant, entry_id: str, subentry: str, key: str) -> State:
    entity_id = er.async_get(hass).async_get_entity_id(
        "sensor", DOMAIN, f"{entry_id}_tag_{subentry}_{key}"
    )
    assert entity_id is not None
    return state_of(hass, entity_id)


def _sessions(response: ServiceResponse) -> list[JsonObjectType]:
    """Return the sessions of an `export_sessions` response, checking their shape."""
    assert response is not None
    sessions = response["sessions"]
    assert isinstance(sessions, list)
    assert all(isinstance(s, dict) for s in sessions)
    return [s for s in sessions if isinstance(s, dict)]


async def _run_sessions(
    hass: HomeAssistant, port: int, base: datetime, history: SessionHistory
) -> None:
    clock = Clock(base)
    at: Callable[[int, int], datetime] = lambda h, m: base + timedelta(  # noqa: E731
        hours=h - 8, minutes=m
    )
    kwargs: dict[str, Any] = {"car_max_a": 0.0, "message_clock": clock}
    cp1 = SimulatedCharger("CP-1", f"ws://127.0.0.1:{port}", version="1.6", **kwargs)
    cp2 = SimulatedCharger("CP-2", f"ws://127.0.0.1:{port}", version="2.0.1", **kwargs)

    async def reading(
        sim: SimulatedCharger, moment: datetime, energy: float, power: float
    ) -> None:
        clock.now = moment
        count = len(sim.sent)
        await sim.send_meter_values(1, energy_wh=energy, power_w=power)
        await _until(lambda: len(sim.sent) > count)
        await hass.async_block_till_done()

    async def finished(count: int) -> None:
        await _until(lambda: len(history.sessions) == count)

    try:
        await cp1.start()
        await cp2.start()
        # Session 1: Alice at CP-1.
        clock.now = at(8, 30)
        cp1.connectors[1].energy_wh = 1000
        await cp1.plug_in(id_tag="ALICE-1")
        await _until(lambda: len(history.running) == 1)
        await reading(cp1, at(8, 45), 3000, 8000)
        _set_price(hass, 0.20, at(9, 0))
        await reading(cp1, at(9, 15), 6000, 11000)
        clock.now = at(9, 30)
        cp1.connectors[1].energy_wh = 7000
        await cp1.unplug()
        await finished(1)
        # Session 2: Bob at CP-2 (2.0.1: the meter comes with the TransactionEvents).
        cp2.connectors[1].energy_wh = 500
        await cp2.plug_in(id_tag="BOB-1")
        await _until(lambda: len(history.running) == 1)
        _set_price(hass, 0.40, at(10, 0))
        await reading(cp2, at(10, 0), 4500, 7400)
        clock.now = at(10, 30)
        cp2.connectors[1].energy_wh = 6500
        await cp2.unplug()
        await finished(2)
        # Session 3: Alice again at CP-1.
        await cp1.plug_in(id_tag="alice-1")
        await _until(lambda: len(history.running) == 1)
        await reading(cp1, at(11, 0), 9000, 4000)
        clock.now = at(11, 30)
        cp1.connectors[1].energy_wh = 10000
        await cp1.unplug()
        await finished(3)
    finally:
        await cp1.stop()
        await cp2.stop()


async def test_sessions_energy_cost_restart_export(
    hass: HomeAssistant,
    free_port: int,
    tmp_path: Path,
    ha_reports: Callable[[], list[str]],
) -> None:
    hass.config.config_dir = str(tmp_path)  # CSV files go to a folder of this test
    # A day of this month (local time), so the monthly sensors count it.
    month_start = dt_util.start_of_local_day(dt_util.now().replace(day=1))
    base = dt_util.as_utc(month_start + timedelta(days=1, hours=8))
    _set_price(hass, 0.30, base)
    entry = site_entry(
        free_port,
        [
            charger("CP-1"),
            charger("CP-2"),
            tag("tagalice", "Alice", "ALICE-1", person="Alice"),
            tag("tagbob", "Bob", "BOB-1", person="Company car"),
        ],
        options={CONF_TAG_POLICY: "known_only", CONF_COST_SENSOR: PRICE},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    finished = async_capture_events(hass, EVENT_SESSION_FINISHED)

    await _run_sessions(hass, free_port, base, entry.runtime_data.history)
    await hass.async_block_till_done()

    expected = [
        ("CP-1", "Alice", 6.0, 11.0, 1.55),
        ("CP-2", "Bob", 6.0, 7.4, 1.6),
        ("CP-1", "Alice", 3.0, 4.0, 1.2),
    ]
    got = [
        (
            e.data["charger_id"],
            e.data["tag"],
            e.data["energy_kwh"],
            e.data["peak_power_kw"],
            e.data["cost"],
        )
        for e in finished
    ]
    assert got == expected
    assert finished[0].data["person"] == "Alice"
    assert finished[0].data["currency"] == "EUR"
    assert finished[0].data["started"] == (base + timedelta(minutes=30)).isoformat()
    assert (
        finished[0].data["ended"] == (base + timedelta(hours=1, minutes=30)).isoformat()
    )

    def sensors() -> dict[str, tuple[float, float, float, str]]:
        values = {}
        for sub in ("tagalice", "tagbob"):
            month = _sensor(hass, entry.entry_id, sub, "tag_energy_month")
            total = _sensor(hass, entry.entry_id, sub, "tag_energy_total")
            cost = _sensor(hass, entry.entry_id, sub, "tag_cost_month")
            values[sub] = (
                float(month.state),
                float(total.state),
                float(cost.state),
                cost.attributes["unit_of_measurement"],
            )
        return values

    assert sensors() == {
        "tagalice": (9.0, 9.0, 2.75, "EUR"),
        "tagbob": (6.0, 6.0, 1.6, "EUR"),
    }
    month = _sensor(hass, entry.entry_id, "tagalice", "tag_energy_month")
    assert month.attributes["state_class"] == "total_increasing"
    assert month.attributes["unit_of_measurement"] == "kWh"
    last = _sensor(hass, entry.entry_id, "tagalice", "tag_last_session")
    assert last.attributes["energy_kwh"] == 3.0
    assert last.attributes["cost"] == 1.2

    # A restart: the history and the totals come back from the Store.
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert len(entry.runtime_data.history.sessions) == 3
    assert sensors() == {
        "tagalice": (9.0, 9.0, 2.75, "EUR"),
        "tagbob": (6.0, 6.0, 1.6, "EUR"),
    }

    # Export Alice's sessions: response data and CSV carry the same numbers.
    alice = device(hass, entry.entry_id, "tag", "tagalice").id
    response = await hass.services.async_call(
        DOMAIN,
        "export_sessions",
        {
            "start": dt_util.as_local(base).replace(tzinfo=None).isoformat(),
            "end": dt_util.as_local(base + timedelta(days=1))
            .replace(tzinfo=None)
            .isoformat(),
            "csv_path": "smart_charge/alice.csv",
        },
        target={"device_id": alice},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert response["count"] == 2
    assert response["energy_kwh"] == 9.0
    assert response["cost"] == 2.75
    sessions = _sessions(response)
    assert [(s["energy_kwh"], s["cost"]) for s in sessions] == [(6.0, 1.55), (3.0, 1.2)]
    path = Path(hass.config.path("smart_charge/alice.csv"))
    assert response["csv_path"] == str(path)
    rows = await hass.async_add_executor_job(_read_csv, path)
    assert [(float(r["energy_kwh"]), float(r["cost"])) for r in rows] == [
        (s["energy_kwh"], s["cost"]) for s in sessions
    ]
    assert [r["person"] for r in rows] == ["Alice", "Alice"]
    assert rows[0]["started"] == sessions[0]["started"]

    # By charger, and everything.
    cp2 = device(hass, entry.entry_id, "charger", "CP-2").id
    response = await hass.services.async_call(
        DOMAIN,
        "export_sessions",
        {},
        target={"device_id": cp2},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    assert [(s["tag"], s["cost"]) for s in _sessions(response)] == [("Bob", 1.6)]
    response = await hass.services.async_call(
        DOMAIN, "export_sessions", {}, blocking=True, return_response=True
    )
    assert response is not None
    assert (response["count"], response["energy_kwh"], response["cost"]) == (
        3,
        15.0,
        4.35,
    )

    # Diagnostics show the last sessions, without their tag ids.
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert [s["energy_kwh"] for s in diagnostics["sessions"]] == [6.0, 6.0, 3.0]
    assert {s["id_tag"] for s in diagnostics["sessions"]} == {"**REDACTED**"}
    assert "ALICE-1" not in str(diagnostics)
    assert await hass.config_entries.async_unload(entry.entry_id)
    # No blocking call on the loop (the CSV is written in the executor), nothing deprecated.
    assert ha_reports() == []


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


async def test_export_rejects_bad_input(
    hass: HomeAssistant, free_port: int, tmp_path: Path
) -> None:
    hass.config.config_dir = str(tmp_path / "config")
    entry = site_entry(free_port, [charger("CP-1")])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for data, key in (
        ({"csv_path": "../outside.csv"}, "export_path_invalid"),
        ({"csv_path": "/etc/sessions.csv"}, "export_path_invalid"),
        ({"csv_path": "sessions.txt"}, "export_path_invalid"),
        (
            {"start": "2026-11-02 00:00:00", "end": "2026-11-01 00:00:00"},
            "export_period_invalid",
        ),
    ):
        with pytest.raises(ServiceValidationError) as err:
            await hass.services.async_call(
                DOMAIN, "export_sessions", data, blocking=True, return_response=True
            )
        assert err.value.translation_key == key
    main = device(hass, entry.entry_id, "panel", "main").id
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN,
            "export_sessions",
            {},
            target={"device_id": main},
            blocking=True,
            return_response=True,
        )
    assert err.value.translation_key == "not_a_charger_or_tag"
    assert list(tmp_path.iterdir()) == []
    assert await hass.config_entries.async_unload(entry.entry_id)


def test_tag_sensor_keys_are_translated() -> None:
    import json

    from custom_components.smart_charge.tag_sensor import TAG_SENSORS

    strings = json.loads(
        (
            Path(__file__).parents[1]
            / "custom_components"
            / "smart_charge"
            / "strings.json"
        ).read_text(encoding="utf-8")
    )
    for description in TAG_SENSORS:
        assert description.translation_key in strings["entity"]["sensor"]


async def test_session_running_across_a_restart(
    hass: HomeAssistant, free_port: int
) -> None:
    """Started before Home Assistant restarts, finished after: one session, priced.

    0.30 EUR/kWh until 09:00, 0.50 from 09:00 (set while Home Assistant is down):
    08:00 1000 Wh, 08:30 3000, 09:30 6000, 10:00 7000
    2 kWh x 0.30 + 3 kWh x (0.30 + 0.50) / 2 + 1 kWh x 0.50 = 2.30
    """
    month_start = dt_util.start_of_local_day(dt_util.now().replace(day=1))
    base = dt_util.as_utc(month_start + timedelta(days=1, hours=8))
    _set_price(hass, 0.30, base)
    entry = site_entry(
        free_port,
        [charger("CP-1"), tag("tagalice", "Alice", "ALICE-1")],
        options={CONF_COST_SENSOR: PRICE},
    )
    entry.add_to_hass(hass)
    # A grid meter: 1 kW import until 08:30, then 0.5 kW export.
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, "grid_sensor": GRID}
    )
    _set_power(hass, 1000, base)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    clock = Clock(base)
    sim = SimulatedCharger(
        "CP-1",
        f"ws://127.0.0.1:{free_port}",
        car_max_a=0.0,
        message_clock=clock,
    )
    try:
        await sim.start()
        sim.connectors[1].energy_wh = 1000
        await sim.plug_in(id_tag="ALICE-1")
        await _until(lambda: len(entry.runtime_data.history.running) == 1)
        clock.now = base + timedelta(minutes=30)
        await sim.send_meter_values(1, energy_wh=3000, power_w=4000)
        _set_power(hass, -500, base + timedelta(minutes=30))
        await hass.async_block_till_done()

        assert await hass.config_entries.async_unload(entry.entry_id)
        await _until(lambda: not sim.connected)
        _set_price(hass, 0.50, base + timedelta(hours=1))
        assert await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        history = entry.runtime_data.history
        assert len(history.running) == 1

        await sim.start()
        clock.now = base + timedelta(hours=1, minutes=30)
        await sim.send_meter_values(1, energy_wh=6000, power_w=6000)
        clock.now = base + timedelta(hours=2)
        sim.connectors[1].energy_wh = 7000
        await sim.unplug()
        await _until(lambda: len(history.sessions) == 1)
    finally:
        await sim.stop()
    record = history.sessions[0].export()
    assert (record["energy_kwh"], record["peak_power_kw"], record["cost"]) == (
        6.0,
        6.0,
        2.3,
    )
    # Solar: 08:00-08:30 the car drew 4 kW with 1 kW imported (1.5 of 2 kWh), then
    # the grid exported (4 kWh): 5.5 / 6.
    assert record["solar_share"] == 0.917
    assert record["started"] == base.isoformat()
    assert history.running == {}
    assert await hass.config_entries.async_unload(entry.entry_id)
