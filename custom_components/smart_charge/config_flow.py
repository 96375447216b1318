"""Config flow for Smart Charge."""

from __future__ import annotations

import errno
import socket
from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.core import HomeAssistant
from homeassistant.helpers import selector
import voluptuous as vol

from .const import (
    CONF_MAIN_BREAKER_KW,
    CONF_PORT,
    DEFAULT_MAIN_BREAKER_KW,
    DEFAULT_PORT,
    DOMAIN,
)


def _port_is_free(port: int) -> bool:
    """Return whether a TCP port can be bound on all interfaces (blocking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
        except OSError as err:
            if err.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


async def async_validate_port(hass: HomeAssistant, port: int) -> str | None:
    """Return the error key for an unusable port, or None."""
    if not 1 <= port <= 65535:
        return "invalid_port"
    if not await hass.async_add_executor_job(_port_is_free, port):
        return "port_in_use"
    return None


SITE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_PORT, default=DEFAULT_PORT): selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=0, max=99999, step=1, mode=selector.NumberSelectorMode.BOX
            )
        ),
        vol.Required(
            CONF_MAIN_BREAKER_KW, default=DEFAULT_MAIN_BREAKER_KW
        ): selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=0,
                step=0.1,
                unit_of_measurement="kW",
                mode=selector.NumberSelectorMode.BOX,
            )
        ),
    }
)


class SmartChargeConfigFlow(ConfigFlow, domain=DOMAIN):
    """Create a Smart Charge site."""

    VERSION = 1

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the OCPP server port and the main breaker."""
        errors: dict[str, str] = {}
        if user_input is not None:
            port = int(user_input[CONF_PORT])
            breaker = float(user_input[CONF_MAIN_BREAKER_KW])
            if error := await async_validate_port(self.hass, port):
                errors[CONF_PORT] = error
            if breaker <= 0:
                errors[CONF_MAIN_BREAKER_KW] = "invalid_rating"
            if not errors:
                self._async_abort_entries_match({CONF_PORT: port})
                return self.async_create_entry(
                    title="Smart Charge",
                    data={CONF_PORT: port, CONF_MAIN_BREAKER_KW: breaker},
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(SITE_SCHEMA, user_input),
            errors=errors,
        )
