"""A finished session's record carries the goal it followed and its first plan (#17)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import DOMAIN
from custom_components.smart_charge.history import EXPORT_FIELDS, SessionRecord

from .common import charger, chargers, device, move_time, site_entry, until

PLANNED = "sensor.cp_1_planned_energy"


def test_records_stored_before_the_plan_fields_still_load() -> None:
    old: dict[str, Any] = {
        "charger_id": "CP-1",
        "connector_id": 1,
        "transaction_id": "7",
        "id_tag": None,
        "tag_name": None,
        "person": None,
        "started": "2026-01-05T06:00:00+00:00",
        "ended": "2026-01-05T08:00:00+00:00",
        "energy_wh": 6000.0,
    }
    record = SessionRecord.from_dict(old)
    exported = record.export()
    assert exported["goal_mode"] is None
    assert exported["planned_energy_kwh"] is None
    assert set(EXPORT_FIELDS) <= set(exported)
    # And the new fields round-trip through the stored form.
    record.goal_mode = "by_departure_cheapest"
    record.goal_energy_kwh = 5.0
    record.goal_departure = datetime(2026, 1, 5, 7, tzinfo=UTC)
    record.planned_energy_kwh = 4.9
    again = SessionRecord.from_dict(record.as_dict())
    assert again == record


async def _setup(hass: HomeAssistant, port: int) -> MockConfigEntry:
    entry = site_entry(
        port, [charger("CP-1")], options={"min_increase_interval_s": 0.0}
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@pytest.mark.usefixtures("socket_enabled")
async def test_finished_session_exports_its_goal_and_plan(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = await _setup(hass, free_port)
    departure = (dt_util.utcnow() + timedelta(hours=6)).replace(microsecond=0)
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await hass.services.async_call(
            DOMAIN,
            "set_charging_goal",
            {
                "device_id": device(hass, entry.entry_id, "charger", "CP-1").id,
                "mode": "by_departure_cheapest",
                "energy_kwh": 5,
                "departure": departure.isoformat(),
            },
            blocking=True,
        )
        await move_time(hass, entry, dt_util.utcnow() + timedelta(seconds=2))
        await until(
            lambda: (state := hass.states.get(PLANNED)) is not None
            and state.state not in ("unknown", "unavailable")
        )
        state = hass.states.get(PLANNED)
        assert state is not None
        planned = float(state.state)
        await cp1.unplug()
        await until(lambda: len(entry.runtime_data.history.sessions) == 1)
    response = await hass.services.async_call(
        DOMAIN, "export_sessions", {}, blocking=True, return_response=True
    )
    assert response is not None
    sessions = response["sessions"]
    assert isinstance(sessions, list)
    assert len(sessions) == 1
    session = sessions[0]
    assert isinstance(session, dict)
    assert session["goal_mode"] == "by_departure_cheapest"
    assert session["goal_energy_kwh"] == 5.0
    assert dt_util.parse_datetime(str(session["goal_departure"])) == departure
    assert session["planned_energy_kwh"] == pytest.approx(planned)
    assert planned >= 4.9
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.usefixtures("socket_enabled")
async def test_session_without_a_goal_records_none(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = await _setup(hass, free_port)
    async with chargers(free_port, "CP-1") as (cp1,):
        await cp1.plug_in()
        await until(lambda: bool(entry.runtime_data.history.running))
        await cp1.unplug()
        await until(lambda: len(entry.runtime_data.history.sessions) == 1)
    exported = entry.runtime_data.history.sessions[0].export()
    assert exported["goal_mode"] is None
    assert exported["planned_energy_kwh"] is None
    assert await hass.config_entries.async_unload(entry.entry_id)
