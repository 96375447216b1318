"""A snapshot of a site's diagnostics: what a user attaches to an issue, secrets hidden.

The diagnostics are read as the user downloads them (JSON from Home Assistant's
diagnostics endpoint). The snapshot holds what the integration puts there; what changes from run to run (the
port, times, transaction and message ids, the order in which concurrent frames were
logged) is replaced by `stable`, a syrupy matcher, not left out of the diagnostics.
"""

from __future__ import annotations

import re
from typing import Any

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.types import PropertyPath

from custom_components.smart_charge.const import CONF_PASSWORD

from .common import charger, chargers, panel, settle_limits, site_entry, until

pytestmark = pytest.mark.usefixtures("socket_enabled")

ENTRY_ID = "01JSMARTCHARGEDIAGNOSTICS0"
PASSWORD = "hunter2"
ID_TAG = "SIMTAG"  # the simulated charger's id tag

MESSAGE_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)")
TRANSACTION = re.compile(r'("transactionId":)"?\d+"?')
SECRET_FIELD = re.compile(r'"id(?:Tag|Token)"')


def _frame(frame: list[str]) -> list[str]:
    """A logged frame with its message id, times and transaction id replaced."""
    direction, text = frame
    text = MESSAGE_ID.sub("<message id>", text)
    text = TIMESTAMP.sub("<time>", text)
    return [direction, TRANSACTION.sub(r'\1"<transaction id>"', text)]


def stable(*, data: Any, path: PropertyPath) -> Any:
    """Replace the values that differ between runs (a syrupy property matcher).

    Of the recent frames only those that carry an id tag are kept, in the order they
    were logged: they show the redaction; how many others there are and how they
    interleave depends on timing.
    """
    key = str(path[-1][0]) if path else ""
    if isinstance(data, str) and TIMESTAMP.fullmatch(data):
        return "<time>"
    if key == "port" and isinstance(data, int):
        return "<port>"
    if key == "transaction_id" and data is not None:
        return "<transaction id>"
    if key == "transactions" and isinstance(data, dict):
        return {f"<transaction {i}>": value for i, value in enumerate(data.values())}
    if key == "recent_frames" and isinstance(data, list):
        return [_frame(frame) for frame in data if SECRET_FIELD.search(frame[1])]
    return data


async def test_config_entry_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    snapshot: SnapshotAssertion,
    free_port: int,
) -> None:
    secret = charger("CP-1", "garage")
    secret["data"] = {**secret["data"], CONF_PASSWORD: PASSWORD}
    entry = site_entry(
        free_port,
        [panel("garage", "Garage", 11.0), secret],
        main_kw=22.0,
        entry_id=ENTRY_ID,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    server = entry.runtime_data.server
    async with chargers(free_port, "CP-1", password=PASSWORD) as (cp1,):
        await cp1.plug_in()
        await cp1.wait_for_profile(lambda p: p.purpose == "TxProfile")
        await until(lambda: server.chargers["CP-1"].connectors[1].status == "Charging")
        await settle_limits(hass, entry)
        # JSON as downloaded; read below as plain dicts and lists.
        data: dict[str, Any] = dict(
            await get_diagnostics_for_config_entry(hass, hass_client, entry)
        )

    shown = repr(data)
    assert PASSWORD not in shown
    assert ID_TAG not in shown  # in the transaction and inside the raw frames
    frames = data["chargers"]["CP-1"]["recent_frames"]
    assert any(SECRET_FIELD.search(text) for _, text in frames)
    assert data == snapshot(
        extension_class=HomeAssistantSnapshotExtension, matcher=stable
    )
    assert await hass.config_entries.async_unload(entry.entry_id)
