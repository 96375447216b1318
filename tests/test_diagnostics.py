"""Diagnostics redact secrets and carry the runtime and OCPP frames."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigSubentryDataWithId
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import CONF_PASSWORD
from custom_components.smart_charge.diagnostics import (
    async_get_config_entry_diagnostics,
)

from .common import charger, chargers

pytestmark = pytest.mark.usefixtures("socket_enabled")


@pytest.fixture
def site_subentries() -> list[ConfigSubentryDataWithId]:
    """One charger on the main breaker, with a password."""
    secret = charger("CP-1")
    secret["data"] = {**secret["data"], CONF_PASSWORD: "hunter2"}
    return [secret]


@pytest.fixture
def site_options() -> dict[str, Any]:
    """A 5 kW main breaker."""
    return {"main_kw": 5.0}


async def test_diagnostics_redacts_passwords(
    hass: HomeAssistant, free_port: int, init_site: MockConfigEntry
) -> None:
    entry = init_site
    async with chargers(free_port, "CP-1", password="hunter2") as (cp1,):
        await cp1.plug_in()
        await cp1.wait_for_profile(lambda p: p.purpose == "TxProfile")
        data = await async_get_config_entry_diagnostics(hass, entry)
    assert "hunter2" not in repr(data)
    assert "SIMTAG" not in repr(data)  # the id tag, also inside raw frames
    assert data["subentries"][0]["data"][CONF_PASSWORD] == "**REDACTED**"
    cp = data["chargers"]["CP-1"]
    assert cp["ocpp_version"] == "1.6"
    assert cp["recent_frames"]
    assert cp["capabilities"]["smart_charging"] is True
    assert len(cp["transactions"]) == 1
    assert data["site_data"]["chargers"]["CP-1"]["transaction_id"] is not None
