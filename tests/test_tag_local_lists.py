"""Local lists that do not arrive: a charger that refuses the list, one that went away.

Neither is fatal: the site logs why, keeps no version for the charger (so the next boot
sends the list again) and goes on.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant
import pytest

from custom_components.smart_charge.tag_config import CONF_TAG_POLICY
from tools.simulator import SimulatedCharger

from .common import charger, site_entry, until
from .test_tags import tag

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def _site(hass: HomeAssistant, port: int) -> Any:
    entry = site_entry(
        port,
        [charger("CP-1"), tag("tagalice", "Alice", "ALICE-1")],
        options={CONF_TAG_POLICY: "known_only"},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_a_refused_list_is_logged_and_not_recorded(
    hass: HomeAssistant,
    free_port: int,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The charger answers Failed to SendLocalList: no version is kept for it."""
    entry = await _site(hass, free_port)
    sim = SimulatedCharger(
        "CP-1", f"ws://127.0.0.1:{free_port}", version="1.6", local_list=True
    )
    monkeypatch.setattr(sim, "set_local_list", lambda *args: "Failed")
    try:
        await sim.start()
        frame = await sim.wait_for_call("SendLocalList")
        assert frame[3]["localAuthorizationList"][0]["idTag"] == "ALICE-1"
        await until(lambda: "answered Failed to its local list" in caplog.text)
        assert "CP-1" not in entry.runtime_data.tags.lists
        # Asked again, it tries again (nothing was recorded as sent) and fails again.
        assert await entry.runtime_data.tags.async_push("CP-1") is False
        assert caplog.text.count("answered Failed to its local list") == 2
    finally:
        await sim.stop()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_charger_gone_offline_gets_no_list_and_nothing_breaks(
    hass: HomeAssistant, free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A push to a charger that is not connected is a logged CSMS error, not a crash."""
    entry = await _site(hass, free_port)
    sim = SimulatedCharger(
        "CP-1", f"ws://127.0.0.1:{free_port}", version="1.6", local_list=True
    )
    await sim.start()
    await until(lambda: sim.local_list_version == 1)
    await sim.stop()
    server = entry.runtime_data.server
    await until(lambda: not server.chargers["CP-1"].connected)

    assert await entry.runtime_data.tags.async_push("CP-1") is False
    assert "CP-1: could not send the local list" in caplog.text
    assert entry.runtime_data.tags.lists["CP-1"].version == 1
    assert await hass.config_entries.async_unload(entry.entry_id)
