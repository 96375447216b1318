"""Shared fixtures for the Smart Charge tests."""

# Importing our package first makes it shadow the harness's own testing_config copy.
from custom_components.smart_charge.const import DOMAIN  # isort: skip

from collections.abc import Callable, Generator
import logging
import os
from pathlib import Path
import socket
import sys
from types import FrameType
from typing import Any
from unittest.mock import PropertyMock, patch

from homeassistant import block_async_io
from homeassistant.core import HomeAssistant
from homeassistant.util import loop as loop_util
from hypothesis import settings as hypothesis_settings
import ocpp.charge_point
import ocpp.messages
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.csms import schemas

from .common import charger, panel, site_entry

__all__ = ["DOMAIN"]

# Property tests draw the same examples on every run (CI must not depend on luck);
# HYPOTHESIS_PROFILE=explore draws new ones each time, to hunt locally.
hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
hypothesis_settings.register_profile("explore")
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# The simulated chargers' code (a module or a package).
SIMULATOR = str(Path(__file__).parents[1] / "tools" / "simulator")


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


# What Home Assistant logs when its frame helper (deprecated calls) or its loop-blocking
# detector catches an integration.
HA_REPORTS = (
    "Detected blocking call",
    "Detected that",
    "Detected code that",
    "deprecated",
)


@pytest.fixture
def ha_reports(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> Generator[Callable[[], list[str]]]:
    """Return a function listing what HA reported about smart_charge during the test.

    The loop-blocking detector is on, file access included (tests normally skip it),
    and every report counts, also those HA only logs at debug level once it has
    reported the same line before. The `ocpp` library's schema cache starts empty, so
    a schema read on the loop is caught whatever ran before in this process. The
    simulated chargers skip their own schema checks here: they share that cache (one
    process) and would fill it first, which a real charger cannot do.
    """
    monkeypatch.setattr(loop_util, "_PREVIOUSLY_REPORTED", set())
    monkeypatch.setattr(ocpp.messages, "_validators", {})
    monkeypatch.setattr(schemas, "_loaded", 0)
    validate = ocpp.charge_point.validate_payload

    async def validate_on_csms_side(message: Any, ocpp_version: str) -> None:
        frame: FrameType | None = sys._getframe(1)
        while frame is not None:
            if frame.f_code.co_filename.startswith(SIMULATOR):
                return
            frame = frame.f_back
        await validate(message, ocpp_version)

    monkeypatch.setattr(ocpp.charge_point, "validate_payload", validate_on_csms_side)
    caplog.set_level(logging.DEBUG, logger="homeassistant.util.loop")
    with patch.object(block_async_io, "_IN_TESTS", False):
        block_async_io.enable()

    def reports() -> list[str]:
        found = []
        for record in caplog.get_records("call"):
            message = record.getMessage()
            text = f"{message}\n{record.stack_info or ''}\n{record.exc_text or ''}"
            if any(m in message for m in HA_REPORTS) and "smart_charge" in text:
                found.append(message)
        return found

    try:
        yield reports
    finally:
        calls = block_async_io._BLOCKED_CALLS.calls
        for call in calls:
            setattr(call.object, call.function, call.original_func)
        calls.clear()


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Register every entity enabled, also those disabled by default (as core's)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
def site_subentries() -> list[Any]:
    """Return the panels and chargers of the `init_site` site.

    A module overrides this fixture, or a test parametrizes it by name.
    """
    return [panel("garage", "Garage", 11.0), charger("CP-1", "garage")]


@pytest.fixture
def site_options() -> dict[str, Any]:
    """Return further `site_entry` arguments of the `init_site` site (main_kw, ...)."""
    return {}


@pytest.fixture
async def init_site(
    hass: HomeAssistant,
    free_port: int,
    site_subentries: list[Any],
    site_options: dict[str, Any],
) -> MockConfigEntry:
    """Set up a site with its panels and chargers as subentries; return its entry.

    Its OCPP server listens on `free_port` (the same port the test gets from that
    fixture), for simulated chargers to connect to.
    """
    entry = site_entry(free_port, site_subentries, **site_options)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry
