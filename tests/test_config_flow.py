"""Tests for the Smart Charge config flow."""

import socket

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import CONF_MAIN_BREAKER_KW, CONF_PORT, DOMAIN


@pytest.mark.usefixtures("socket_enabled")
async def test_user_flow_errors_then_success(
    hass: HomeAssistant, free_port: int
) -> None:
    """Bad ports and ratings are form errors; a good port creates the site."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {}

    for bad_port in (0, 70000):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_PORT: bad_port, CONF_MAIN_BREAKER_KW: 11}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {CONF_PORT: "invalid_port"}

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("", 0))
        busy.listen()
        used = busy.getsockname()[1]
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_PORT: used, CONF_MAIN_BREAKER_KW: 11}
        )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PORT: "port_in_use"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: free_port, CONF_MAIN_BREAKER_KW: 0}
    )
    assert result["errors"] == {CONF_MAIN_BREAKER_KW: "invalid_rating"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: free_port, CONF_MAIN_BREAKER_KW: 22}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_PORT: free_port, CONF_MAIN_BREAKER_KW: 22.0}


@pytest.mark.usefixtures("socket_enabled")
async def test_same_port_aborts(hass: HomeAssistant, free_port: int) -> None:
    """A second site on the same port is refused."""
    MockConfigEntry(
        domain=DOMAIN, data={CONF_PORT: free_port, CONF_MAIN_BREAKER_KW: 11}
    ).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_PORT: free_port, CONF_MAIN_BREAKER_KW: 11}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
