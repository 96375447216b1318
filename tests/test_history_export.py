"""The export service's targets and failures: entity targets, foreign devices, write errors.

Finished sessions are put into the site's history as the history records them
(`SessionRecord`), then exported through the real service of a loaded site.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import DOMAIN
from custom_components.smart_charge.history import SessionRecord

from .common import charger, device, site_entry

pytestmark = pytest.mark.usefixtures("socket_enabled")

DAY = (dt_util.utcnow() - timedelta(days=3)).replace(
    hour=0, minute=0, second=0, microsecond=0
)


def _session(charger_id: str, tx: str, started: datetime, wh: float) -> SessionRecord:
    return SessionRecord(
        charger_id=charger_id,
        connector_id=1,
        transaction_id=tx,
        id_tag=None,
        tag_name=None,
        person=None,
        started=started,
        ended=started + timedelta(hours=1),
        meter_start_wh=0.0,
        meter_stop_wh=wh,
        energy_wh=wh,
    )


async def _site(hass: HomeAssistant, port: int, tmp_path: Path) -> MockConfigEntry:
    hass.config.config_dir = str(tmp_path)
    entry = site_entry(port, [charger("CP-1"), charger("CP-2")])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    entry.runtime_data.history.sessions.extend(
        [
            _session("CP-1", "1", DAY + timedelta(hours=8), 4000),
            _session("CP-2", "2", DAY + timedelta(hours=9), 6000),
            _session("CP-2", "3", DAY + timedelta(days=1, hours=9), 1500),
        ]
    )
    return entry


async def _export(
    hass: HomeAssistant, data: dict[str, Any], target: dict[str, Any] | None = None
) -> dict[str, Any]:
    response = await hass.services.async_call(
        DOMAIN,
        "export_sessions",
        data,
        target=target,
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


async def test_an_entity_target_exports_its_charger_from_an_aware_start(
    hass: HomeAssistant, free_port: int, tmp_path: Path
) -> None:
    """An entity of CP-2 selects CP-2; a start with its own offset is taken as given.

    The start is DAY 10:00 at +01:00, i.e. 09:00 UTC: CP-2's two sessions start at or
    after it, CP-1's (08:00 UTC) is another charger anyway.
    """
    entry = await _site(hass, free_port, tmp_path)
    cp2 = device(hass, entry.entry_id, "charger", "CP-2")
    entity = er.async_entries_for_device(er.async_get(hass), cp2.id)[0]
    start = (DAY + timedelta(hours=9)).astimezone(dt_util.get_time_zone("Europe/Paris"))
    response = await _export(
        hass, {"start": start.isoformat()}, {"entity_id": entity.entity_id}
    )
    assert [row["transaction_id"] for row in response["sessions"]] == ["2", "3"]
    assert response["energy_kwh"] == 7.5
    assert {row["charger_id"] for row in response["sessions"]} == {"CP-2"}
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_device_of_another_integration_is_refused_by_name(
    hass: HomeAssistant, free_port: int, tmp_path: Path
) -> None:
    """A target that is no charger or tag of a site is named in the error."""
    entry = await _site(hass, free_port, tmp_path)
    other = MockConfigEntry(domain="demo")
    other.add_to_hass(hass)
    lamp = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id,
        identifiers={("demo", f"{entry.entry_id}_charger_CP-1")},
        name="Kitchen lamp",
    )
    with pytest.raises(ServiceValidationError) as err:
        await _export(hass, {}, {"device_id": lamp.id})
    assert err.value.translation_key == "not_a_charger_or_tag"
    assert err.value.translation_placeholders == {"target": "Kitchen lamp"}
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_csv_that_cannot_be_written_is_a_translated_error(
    hass: HomeAssistant, free_port: int, tmp_path: Path
) -> None:
    """A folder where the CSV should go: the export fails and says why."""
    entry = await _site(hass, free_port, tmp_path)
    (tmp_path / "sessions.csv").mkdir()
    with pytest.raises(HomeAssistantError) as err:
        await _export(hass, {"csv_path": "sessions.csv"})
    assert not isinstance(err.value, ServiceValidationError)
    assert err.value.translation_key == "export_failed"
    placeholders = err.value.translation_placeholders or {}
    assert placeholders["path"] == "sessions.csv"
    assert "Is a directory" in placeholders["error"]
    assert await hass.config_entries.async_unload(entry.entry_id)
