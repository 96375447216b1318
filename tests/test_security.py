"""The site's access settings reach the OCPP server; failsafe and rejecting chargers."""

from __future__ import annotations

from pathlib import Path
import ssl

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from websockets.exceptions import InvalidStatus

from custom_components.smart_charge.const import (
    CONF_PASSWORD,
    CONF_TLS_CERT,
    CONF_TLS_KEY,
    DOMAIN,
)
from tools.simulator import SimulatedCharger

from .common import charger, chargers, site_entry, until, value_of
from .csms.test_security import write_self_signed

pytestmark = pytest.mark.usefixtures("socket_enabled")


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_password_and_reject_policy(hass: HomeAssistant, free_port: int) -> None:
    locked = charger("CP-1")
    locked["data"] = {**locked["data"], CONF_PASSWORD: "s3cret"}
    await _setup(hass, site_entry(free_port, [locked], policy="reject"))
    url = f"ws://127.0.0.1:{free_port}"

    for sim, status in (
        (SimulatedCharger("CP-1", url), 401),  # no credentials
        (SimulatedCharger("CP-1", url, password="wrong"), 401),
        (SimulatedCharger("CP-X", url), 404),  # unknown identity, policy reject
    ):
        with pytest.raises(InvalidStatus) as err:
            await sim.start()
        assert err.value.response.status_code == status
        await sim.stop()

    good = SimulatedCharger("CP-1", url, password="s3cret")
    await good.start()
    assert value_of(hass, "binary_sensor.cp_1_connected") == "on"
    await good.stop()
    # The rejected unknown charger started no discovery flow.
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []


async def test_failsafe_profile_at_boot(hass: HomeAssistant, free_port: int) -> None:
    await _setup(hass, site_entry(free_port, [charger("CP-1")]))
    async with chargers(free_port, "CP-1") as (cp1,):
        received = await cp1.wait_for_profile(lambda p: p.purpose == "TxDefaultProfile")
        assert received.limit == 6.0  # the site's failsafe current


async def test_charger_rejecting_everything_is_a_repair(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = site_entry(free_port, [charger("CP-1")], main_kw=5.0)
    await _setup(hass, entry)
    issue_id = f"charger_rejects_profiles_{entry.entry_id}_CP-1"
    async with chargers(free_port, "CP-1", profile_status="Rejected") as (cp1,):
        await cp1.plug_in()
        await until(
            lambda: ir.async_get(hass).async_get_issue(DOMAIN, issue_id) is not None
        )


async def test_wss_with_the_site_certificate(
    hass: HomeAssistant, free_port: int, tmp_path: Path
) -> None:
    cert, key = write_self_signed(tmp_path)
    entry = site_entry(free_port, [charger("CP-1")])
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_TLS_CERT: str(cert), CONF_TLS_KEY: str(key)}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    client = ssl.create_default_context(cafile=str(cert))
    sim = SimulatedCharger("CP-1", f"wss://127.0.0.1:{free_port}", ssl_context=client)
    await sim.start()
    assert value_of(hass, "binary_sensor.cp_1_connected") == "on"
    await sim.stop()


@pytest.mark.setup_error_expected
async def test_unreadable_certificate_is_a_clear_setup_error(
    hass: HomeAssistant, free_port: int, tmp_path: Path
) -> None:
    (tmp_path / "c.pem").write_text("garbage")
    entry = site_entry(free_port, [])
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry,
        data={
            **entry.data,
            CONF_TLS_CERT: str(tmp_path / "c.pem"),
            CONF_TLS_KEY: str(tmp_path / "c.pem"),
        },
    )
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert "cannot be loaded" in (entry.reason or "")
