"""Tests for the Smart Charge config flow and its panel and charger subentry flows."""

from pathlib import Path
import socket
from typing import Any

from homeassistant.config_entries import (
    SOURCE_INTEGRATION_DISCOVERY,
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigSubentryData,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge.const import (
    CONF_CHARGER_ID,
    CONF_FAILSAFE_A,
    CONF_GRID_PHASE,
    CONF_LIMIT_KW,
    CONF_MAIN_BREAKER_KW,
    CONF_MAIN_PHASE_LIMIT_A,
    CONF_MANAGED,
    CONF_MAX_CURRENT,
    CONF_MIN_CURRENT,
    CONF_NAME,
    CONF_PANEL,
    CONF_PARENT,
    CONF_PASSWORD,
    CONF_PHASE_LIMIT_A,
    CONF_PHASES,
    CONF_PORT,
    CONF_PRIORITY,
    CONF_PROFILE_PURPOSE,
    CONF_SAFETY_MARGIN,
    CONF_STACK_LEVEL,
    CONF_STRATEGY,
    CONF_TLS_CERT,
    CONF_TLS_KEY,
    CONF_UNKNOWN_POLICY,
    CONF_VOLTAGE,
    DOMAIN,
    ROOT_PANEL_ID,
    SUBENTRY_CHARGER,
    SUBENTRY_PANEL,
)

from .csms.test_security import write_self_signed

SITE = {CONF_MAIN_BREAKER_KW: 22, CONF_PHASES: "3", CONF_VOLTAGE: 230}


def _site_entry(port: int, subentries: list[ConfigSubentryData] | None = None) -> Any:
    return MockConfigEntry(
        domain=DOMAIN,
        title="Smart Charge",
        data={
            CONF_PORT: port,
            CONF_MAIN_BREAKER_KW: 22.0,
            CONF_PHASES: 3,
            CONF_VOLTAGE: 230.0,
            CONF_FAILSAFE_A: 6.0,
            CONF_UNKNOWN_POLICY: "accept_and_ask",
        },
        subentries_data=subentries or [],
    )


def _panel(panel_id: str, name: str, limit: float, parent: str = ROOT_PANEL_ID) -> Any:
    return ConfigSubentryData(
        data={CONF_NAME: name, CONF_LIMIT_KW: limit, CONF_PARENT: parent},
        subentry_id=panel_id,
        subentry_type=SUBENTRY_PANEL,
        title=name,
        unique_id=None,
    )


def _charger(charger_id: str, panel: str = ROOT_PANEL_ID) -> Any:
    return ConfigSubentryData(
        data={CONF_CHARGER_ID: charger_id, CONF_PANEL: panel, CONF_MAX_CURRENT: 16.0},
        subentry_id=f"sub_{charger_id}",
        subentry_type=SUBENTRY_CHARGER,
        title=charger_id,
        unique_id=charger_id,
    )


@pytest.mark.usefixtures("socket_enabled")
async def test_user_flow_errors_then_success(
    hass: HomeAssistant, free_port: int, tmp_path: Path
) -> None:
    """Bad ports, ratings and TLS files are form errors; then the site is created."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {}

    for bad_port in (0, 70000):
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**SITE, CONF_PORT: bad_port}
        )
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == {CONF_PORT: "invalid_port"}

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("", 0))
        busy.listen()
        used = busy.getsockname()[1]
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**SITE, CONF_PORT: used}
        )
    assert result["errors"] == {CONF_PORT: "port_in_use"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {**SITE, CONF_PORT: free_port, CONF_MAIN_BREAKER_KW: 0},
    )
    assert result["errors"] == {CONF_MAIN_BREAKER_KW: "invalid_rating"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**SITE, CONF_PORT: free_port, CONF_TLS_CERT: "/x.pem"}
    )
    assert result["errors"] == {CONF_TLS_KEY: "tls_pair"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {**SITE, CONF_PORT: free_port, CONF_TLS_CERT: "/x", CONF_TLS_KEY: "/y"},
    )
    assert result["errors"] == {CONF_TLS_CERT: "tls_file_missing"}

    bad_cert, bad_key = tmp_path / "bad.pem", tmp_path / "bad.key"
    bad_cert.write_text("not a certificate")
    bad_key.write_text("not a key")
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            **SITE,
            CONF_PORT: free_port,
            CONF_TLS_CERT: str(bad_cert),
            CONF_TLS_KEY: str(bad_key),
        },
    )
    assert result["errors"] == {CONF_TLS_CERT: "tls_invalid"}

    cert, key = write_self_signed(tmp_path)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {
            **SITE,
            CONF_PORT: free_port,
            CONF_MAIN_PHASE_LIMIT_A: 32,
            CONF_TLS_CERT: str(cert),
            CONF_TLS_KEY: str(key),
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Smart Charge"  # no name given: the default
    assert result["data"] == {
        CONF_PORT: free_port,
        CONF_MAIN_BREAKER_KW: 22.0,
        CONF_MAIN_PHASE_LIMIT_A: 32.0,
        CONF_PHASES: 3,
        CONF_VOLTAGE: 230.0,
        CONF_FAILSAFE_A: 0.0,
        CONF_UNKNOWN_POLICY: "accept_and_ask",
        CONF_TLS_CERT: str(cert),
        CONF_TLS_KEY: str(key),
    }


@pytest.mark.usefixtures("socket_enabled")
async def test_same_port_aborts(hass: HomeAssistant, free_port: int) -> None:
    """A second site on the same port is refused."""
    _site_entry(free_port).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**SITE, CONF_PORT: free_port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_reconfigure_site(hass: HomeAssistant, free_port: int) -> None:
    """The main breaker cannot drop below a panel; the same port is not re-checked."""
    entry = _site_entry(free_port, [_panel("p1", "Garage", 11)])
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**SITE, CONF_PORT: free_port, CONF_MAIN_BREAKER_KW: 10}
    )
    assert result["errors"] == {CONF_MAIN_BREAKER_KW: "smaller_than_child"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {**SITE, CONF_NAME: " Office ", CONF_PORT: free_port, CONF_MAIN_BREAKER_KW: 30},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_MAIN_BREAKER_KW] == 30.0
    assert entry.title == "Office"
    # The site reloads with the new breaker; unload it so its server stops.
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def _subentry_flow(
    hass: HomeAssistant, entry: Any, kind: str, subentry_id: str | None = None
) -> Any:
    context: dict[str, Any] = {"source": SOURCE_USER}
    if subentry_id:
        context = {"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id}
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context=context
    )


async def test_panel_subentry_errors_then_create(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site_entry(free_port, [_panel("p1", "Garage", 11)])
    entry.add_to_hass(hass)
    result = await _subentry_flow(hass, entry, SUBENTRY_PANEL)
    assert result["type"] is FlowResultType.FORM
    panel = {CONF_NAME: "Carport", CONF_PARENT: "p1", CONF_STRATEGY: "priority"}
    configure = hass.config_entries.subentries.async_configure
    result = await configure(
        result["flow_id"], {**panel, CONF_NAME: " ", CONF_LIMIT_KW: 5}
    )
    assert result["errors"] == {CONF_NAME: "name_required"}
    result = await configure(result["flow_id"], {**panel, CONF_LIMIT_KW: 0})
    assert result["errors"] == {CONF_LIMIT_KW: "invalid_rating"}
    result = await configure(result["flow_id"], {**panel, CONF_LIMIT_KW: 12})
    assert result["errors"] == {CONF_LIMIT_KW: "child_exceeds_parent"}
    result = await configure(
        result["flow_id"],
        {**panel, CONF_LIMIT_KW: 7.4, CONF_PHASE_LIMIT_A: 16, CONF_SAFETY_MARGIN: 10},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = [s for s in entry.subentries.values() if s.title == "Carport"]
    assert len(created) == 1
    assert created[0].data == {
        CONF_NAME: "Carport",
        CONF_LIMIT_KW: 7.4,
        CONF_PARENT: "p1",
        CONF_STRATEGY: "priority",
        CONF_SAFETY_MARGIN: 10.0,
        CONF_PHASE_LIMIT_A: 16.0,
    }


async def test_panel_reconfigure_detects_cycle(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site_entry(free_port, [_panel("p1", "A", 11), _panel("p2", "B", 5, "p1")])
    entry.add_to_hass(hass)
    result = await _subentry_flow(hass, entry, SUBENTRY_PANEL, "p1")
    assert result["step_id"] == "reconfigure"
    configure = hass.config_entries.subentries.async_configure
    result = await configure(
        result["flow_id"], {CONF_NAME: "A", CONF_LIMIT_KW: 11, CONF_PARENT: "p2"}
    )
    assert result["errors"] == {CONF_PARENT: "panel_cycle"}
    result = await configure(
        result["flow_id"],
        {CONF_NAME: "A", CONF_LIMIT_KW: 4, CONF_PARENT: ROOT_PANEL_ID},
    )
    assert result["errors"] == {CONF_LIMIT_KW: "child_exceeds_parent"}
    result = await configure(
        result["flow_id"],
        {CONF_NAME: "A2", CONF_LIMIT_KW: 9, CONF_PARENT: ROOT_PANEL_ID},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries["p1"].title == "A2"
    assert entry.subentries["p1"].data[CONF_LIMIT_KW] == 9.0


async def test_charger_subentry_errors_then_create(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site_entry(free_port, [_panel("p1", "Garage", 11), _charger("CP-1")])
    entry.add_to_hass(hass)
    result = await _subentry_flow(hass, entry, SUBENTRY_CHARGER)
    configure = hass.config_entries.subentries.async_configure
    base = {
        CONF_CHARGER_ID: "CP-2",
        CONF_PANEL: "p1",
        CONF_MANAGED: True,
        CONF_MIN_CURRENT: 6,
        CONF_MAX_CURRENT: 16,
        CONF_PHASES: "1",
        CONF_GRID_PHASE: "L2",
        CONF_PRIORITY: 3,
        CONF_PROFILE_PURPOSE: "TxProfile",
        CONF_STACK_LEVEL: 2,
    }
    for bad, error in (
        ({CONF_CHARGER_ID: "a/b"}, {CONF_CHARGER_ID: "invalid_identity"}),
        ({CONF_CHARGER_ID: "CP-1"}, {CONF_CHARGER_ID: "duplicate_identity"}),
        ({CONF_MAX_CURRENT: 0}, {CONF_MAX_CURRENT: "invalid_rating"}),
        ({CONF_MIN_CURRENT: 20}, {CONF_MIN_CURRENT: "min_above_max"}),
    ):
        result = await configure(result["flow_id"], {**base, **bad})
        assert result["errors"] == error, bad
    result = await configure(result["flow_id"], {**base, CONF_PASSWORD: "s3cret"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = next(s for s in entry.subentries.values() if s.title == "CP-2")
    assert created.unique_id == "CP-2"
    assert created.data[CONF_GRID_PHASE] == "L2"
    assert created.data[CONF_PHASES] == 1
    assert created.data[CONF_PASSWORD] == "s3cret"

    # Reconfigure with an empty password keeps the stored one.
    result = await _subentry_flow(hass, entry, SUBENTRY_CHARGER, created.subentry_id)
    result = await configure(result["flow_id"], {**base, CONF_MAX_CURRENT: 32})
    assert result["reason"] == "reconfigure_successful"
    updated = entry.subentries[created.subentry_id]
    assert updated.data[CONF_MAX_CURRENT] == 32.0
    assert updated.data[CONF_PASSWORD] == "s3cret"


async def test_discovery_adopts_charger(hass: HomeAssistant, free_port: int) -> None:
    entry = _site_entry(free_port, [_panel("p1", "Garage", 11), _charger("CP-1")])
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_INTEGRATION_DISCOVERY},
        data={"entry_id": entry.entry_id, CONF_CHARGER_ID: "CP-7"},
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    assert result["description_placeholders"] == {"charger_id": "CP-7"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_PANEL: "p1", CONF_MANAGED: True, CONF_MAX_CURRENT: 16, CONF_PHASES: "3"},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "charger_adopted"
    adopted = next(s for s in entry.subentries.values() if s.title == "CP-7")
    assert adopted.data[CONF_PANEL] == "p1"

    # Known chargers and gone sites do not start a flow.
    for data, reason in (
        ({"entry_id": entry.entry_id, CONF_CHARGER_ID: "CP-1"}, "already_configured"),
        ({"entry_id": "nope", CONF_CHARGER_ID: "CP-9"}, "site_gone"),
    ):
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": SOURCE_INTEGRATION_DISCOVERY}, data=data
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == reason


async def test_panel_budget_section_errors_then_create(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site_entry(free_port)
    entry.add_to_hass(hass)
    result = await _subentry_flow(hass, entry, SUBENTRY_PANEL)
    configure = hass.config_entries.subentries.async_configure
    base = {CONF_NAME: "Home", CONF_LIMIT_KW: 11, CONF_PARENT: ROOT_PANEL_ID}
    for budget, error in (
        ({"solar_mode": "solar"}, {"grid_sensor": "grid_sensor_required"}),
        ({"tariff_mode": "threshold"}, {"price_sensor": "price_sensor_required"}),
        (
            {"tariff_mode": "threshold", "price_sensor": "sensor.p"},
            {"price_threshold": "threshold_required"},
        ),
        (
            {"tariff_mode": "cheapest", "price_sensor": "sensor.p"},
            {"cheapest_hours": "cheapest_required"},
        ),
        (
            {"time_of_use_windows": "17:0.5"},
            {"time_of_use_windows": "invalid_time_of_use"},
        ),
    ):
        result = await configure(result["flow_id"], {**base, "budget": budget})
        assert result["errors"] == error, budget
    budget = {
        "load_sensor": "sensor.house",
        "solar_mode": "min_solar",
        "grid_sensor": "sensor.grid",
        "tariff_mode": "cheapest",
        "price_sensor": "sensor.p",
        "cheapest_hours": 3,
        "departure_time": "07:00:00",
        "time_of_use_windows": "17-21:0.5",
    }
    result = await configure(result["flow_id"], {**base, "budget": budget})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = next(s for s in entry.subentries.values() if s.title == "Home")
    for key, value in budget.items():
        assert created.data[key] == value
    # Reconfigure shows the stored budget in its section.
    result = await _subentry_flow(hass, entry, SUBENTRY_PANEL, created.subentry_id)
    schema_keys = [str(k) for k in result["data_schema"].schema]
    assert "budget" in schema_keys


async def test_options_flow_tunes_profile_writes(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site_entry(free_port)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    controller = entry.runtime_data.site.controller
    assert (controller.increase_dead_band_a, controller.min_increase_interval_s) == (
        0.5,
        10.0,
    )
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "increase_dead_band_a": 1,
            "min_increase_interval_s": 60,
            "call_timeout_s": 20,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # The site reloaded with the new options.
    site = entry.runtime_data.site
    assert site.controller.increase_dead_band_a == 1.0
    assert site.controller.min_increase_interval_s == 60.0
    assert site.server.config.call_timeout_s == 20.0
    assert await hass.config_entries.async_unload(entry.entry_id)
