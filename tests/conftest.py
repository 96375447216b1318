"""Shared fixtures for the Smart Charge tests."""

# Importing our package first makes it shadow the harness's own testing_config copy.
from custom_components.smart_charge.const import DOMAIN  # isort: skip

from collections.abc import Generator
import logging
import socket

import pytest

__all__ = ["DOMAIN"]


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Load custom integrations in every Home Assistant test."""


@pytest.fixture
def free_port(socket_enabled: None) -> int:
    """Return a TCP port that is free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SWALLOWED = ("Error setting up entry", "Error unloading entry", "Unexpected error")


@pytest.fixture(autouse=True)
def fail_on_swallowed_setup_errors(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Generator[None]:
    """Fail a test whose log shows a setup or unload error that HA swallowed."""
    yield
    if request.node.get_closest_marker("setup_error_expected"):
        return
    swallowed = [
        record.getMessage()
        for record in caplog.get_records("call")
        if record.levelno >= logging.ERROR
        and record.name.startswith("homeassistant.")
        and record.getMessage().startswith(SWALLOWED)
    ]
    assert swallowed == []
