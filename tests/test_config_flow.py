"""Tests for the Smart Charge config flow and its panel and charger subentry flows.

Every form result goes through `_checked`: each error it shows is translated in the
section of its flow, and every placeholder its title, description and errors use is
given (a missing one shows as a translation error in the frontend).
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
import json
from pathlib import Path
import re
import socket
from typing import Any

from homeassistant.config_entries import (
    SOURCE_IGNORE,
    SOURCE_INTEGRATION_DISCOVERY,
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigFlowResult,
    ConfigSubentryDataWithId,
    SubentryFlowContext,
    SubentryFlowResult,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

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
    CONF_PHASE_SWITCHING,
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

from .common import chargers
from .csms.test_security import write_self_signed

STRINGS = json.loads(
    (
        Path(__file__).parents[1] / "custom_components/smart_charge/strings.json"
    ).read_text(encoding="utf-8")
)
SECTIONS = {
    "site": STRINGS["config"],
    "options": STRINGS["options"],
    SUBENTRY_PANEL: STRINGS["config_subentries"]["panel"],
    SUBENTRY_CHARGER: STRINGS["config_subentries"]["charger"],
}

SITE = {CONF_MAIN_BREAKER_KW: 22, CONF_PHASES: "3", CONF_VOLTAGE: 230}
CHARGER = {
    CONF_CHARGER_ID: "CP-2",
    CONF_PANEL: ROOT_PANEL_ID,
    CONF_MANAGED: True,
    CONF_MIN_CURRENT: 6,
    CONF_MAX_CURRENT: 16,
    CONF_PHASES: "3",
    CONF_PRIORITY: 3,
    CONF_PROFILE_PURPOSE: "tx_profile",
    CONF_STACK_LEVEL: 2,
}
ADOPT = {CONF_PANEL: ROOT_PANEL_ID, CONF_MANAGED: True, CONF_PHASES: "3"}
NO_URL = "ws://HOME-ASSISTANT-ADDRESS:{port}/CHARGER-ID"


def _checked[R: (ConfigFlowResult, SubentryFlowResult)](result: R, section: str) -> R:
    """Return the result after checking the translations a form needs."""
    if result["type"] is not FlowResultType.FORM:
        return result
    strings = SECTIONS[section]
    step = strings["step"][result["step_id"]]
    errors = result["errors"] or {}
    for error in errors.values():
        assert error in strings["error"], (section, error)
    texts = [step.get("title", ""), step.get("description", "")]
    texts += [strings["error"][error] for error in errors.values()]
    given = set(result["description_placeholders"] or {})
    for text in texts:
        assert set(re.findall(r"\{(\w+)\}", text)) <= given, text
    return result


def _placeholders(result: ConfigFlowResult | SubentryFlowResult) -> Mapping[str, str]:
    """Return a form's description placeholders, failing the test if it has none."""
    placeholders = result["description_placeholders"]
    assert placeholders is not None
    return placeholders


def _schema(result: ConfigFlowResult | SubentryFlowResult) -> vol.Schema:
    """Return a form's schema, failing the test if it has none."""
    schema = result["data_schema"]
    assert schema is not None
    return schema


def _site_entry(
    port: int,
    subentries: list[ConfigSubentryDataWithId] | None = None,
    *,
    title: str = "Smart Charge",
    entry_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        entry_id=entry_id,
        data={
            CONF_PORT: port,
            CONF_MAIN_BREAKER_KW: 22.0,
            CONF_PHASES: 3,
            CONF_VOLTAGE: 230.0,
            CONF_FAILSAFE_A: 6.0,
            CONF_UNKNOWN_POLICY: "accept_and_ask",
            **(data or {}),
        },
        subentries_data=subentries or [],
    )


def _panel(
    panel_id: str,
    name: str,
    limit: float,
    parent: str = ROOT_PANEL_ID,
    phase_a: float | None = None,
) -> ConfigSubentryDataWithId:
    data: dict[str, Any] = {CONF_NAME: name, CONF_LIMIT_KW: limit, CONF_PARENT: parent}
    if phase_a is not None:
        data[CONF_PHASE_LIMIT_A] = phase_a
    return ConfigSubentryDataWithId(
        data=data,
        subentry_id=panel_id,
        subentry_type=SUBENTRY_PANEL,
        title=name,
        unique_id=None,
    )


def _charger(
    charger_id: str,
    panel: str = ROOT_PANEL_ID,
    max_a: float = 16.0,
    data: dict[str, Any] | None = None,
) -> ConfigSubentryDataWithId:
    return ConfigSubentryDataWithId(
        data={
            CONF_CHARGER_ID: charger_id,
            CONF_PANEL: panel,
            CONF_MAX_CURRENT: max_a,
            **(data or {}),
        },
        subentry_id=f"sub_{charger_id}",
        subentry_type=SUBENTRY_CHARGER,
        title=charger_id,
        unique_id=charger_id,
    )


def _another_port(port: int) -> int:
    """Return a valid port other than `port` (for a site that is never started)."""
    return port + 1 if port < 65535 else port - 1


async def _site_flow(
    hass: HomeAssistant,
) -> tuple[ConfigFlowResult, Callable[[dict[str, Any]], Awaitable[ConfigFlowResult]]]:
    """Start the add-a-site flow; return its first form and a checked configure."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )

    async def configure(data: dict[str, Any]) -> ConfigFlowResult:
        return _checked(
            await hass.config_entries.flow.async_configure(result["flow_id"], data),
            "site",
        )

    return _checked(result, "site"), configure


async def _subentry_flow(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    kind: str,
    subentry_id: str | None = None,
) -> tuple[
    SubentryFlowResult, Callable[[dict[str, Any]], Awaitable[SubentryFlowResult]]
]:
    """Start a panel or charger flow; return its first form and a checked configure."""
    context: SubentryFlowContext = {"source": SOURCE_USER}
    if subentry_id:
        context = {"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id}
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, kind), context=context
    )

    async def configure(data: dict[str, Any]) -> SubentryFlowResult:
        return _checked(
            await hass.config_entries.subentries.async_configure(
                result["flow_id"], data
            ),
            kind,
        )

    return _checked(result, kind), configure


async def _discover(
    hass: HomeAssistant, entry_id: str, charger_id: str
) -> ConfigFlowResult:
    return _checked(
        await hass.config_entries.flow.async_init(
            DOMAIN,
            context={"source": SOURCE_INTEGRATION_DISCOVERY},
            data={"entry_id": entry_id, CONF_CHARGER_ID: charger_id},
        ),
        "site",
    )


# ------------------------------------------------------------------------ the site


@pytest.mark.usefixtures("socket_enabled")
async def test_user_flow_errors_then_success(
    hass: HomeAssistant, free_port: int, tmp_path: Path
) -> None:
    """Every bad value is an error on its own field; then the site is created."""
    result, configure = await _site_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {}
    # Home Assistant knows no address of its own: a literal without angle brackets.
    assert result["description_placeholders"] == {"url": NO_URL.format(port=9000)}

    good = {**SITE, CONF_PORT: free_port}
    for bad, errors in (
        ({CONF_PORT: 0}, {CONF_PORT: "invalid_port"}),
        ({CONF_PORT: 70000}, {CONF_PORT: "invalid_port"}),
        ({CONF_PORT: 9000.5}, {CONF_PORT: "invalid_port"}),
        ({CONF_MAIN_BREAKER_KW: 0}, {CONF_MAIN_BREAKER_KW: "invalid_rating"}),
        ({CONF_MAIN_BREAKER_KW: 200000}, {CONF_MAIN_BREAKER_KW: "invalid_rating"}),
        (
            {CONF_MAIN_PHASE_LIMIT_A: -1},
            {CONF_MAIN_PHASE_LIMIT_A: "invalid_phase_limit"},
        ),
        ({CONF_VOLTAGE: 50}, {CONF_VOLTAGE: "invalid_voltage"}),
        ({CONF_FAILSAFE_A: 100}, {CONF_FAILSAFE_A: "invalid_failsafe"}),
        (
            {"budget": {"solar_start_kw": 5000, "solar_stop_delay_s": -1}},
            {
                "solar_start_kw": "invalid_solar_start",
                "solar_stop_delay_s": "invalid_delay",
            },
        ),
        # Bug 6: 500 A per phase can never be reached on 17 kW (at most 74 A at 230 V).
        (
            {CONF_MAIN_BREAKER_KW: 17, CONF_MAIN_PHASE_LIMIT_A: 500},
            {CONF_MAIN_PHASE_LIMIT_A: "phase_limit_above_rating"},
        ),
    ):
        result = await configure({**good, **bad})
        assert result["type"] is FlowResultType.FORM
        assert result["errors"] == errors, bad
    # The URL follows the port typed; a port out of range shows the default.
    assert result["description_placeholders"] == {"url": NO_URL.format(port=free_port)}

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("", 0))
        busy.listen()
        used = busy.getsockname()[1]
        result = await configure({**SITE, CONF_PORT: used})
    assert result["errors"] == {CONF_PORT: "port_in_use"}

    result = await configure({**good, CONF_TLS_CERT: "/x.pem"})
    assert result["errors"] == {CONF_TLS_KEY: "tls_pair"}
    assert _placeholders(result)["url"].startswith("wss://")
    result = await configure({**good, CONF_TLS_CERT: "/x", CONF_TLS_KEY: "/y"})
    assert result["errors"] == {CONF_TLS_CERT: "tls_file_missing"}

    bad_cert, bad_key = tmp_path / "bad.pem", tmp_path / "bad.key"
    bad_cert.write_text("not a certificate")
    bad_key.write_text("not a key")
    result = await configure(
        {**good, CONF_TLS_CERT: str(bad_cert), CONF_TLS_KEY: str(bad_key)}
    )
    assert result["errors"] == {CONF_TLS_CERT: "tls_invalid"}

    cert, key = write_self_signed(tmp_path)
    result = await configure(
        {
            **good,
            CONF_MAIN_PHASE_LIMIT_A: 32,
            CONF_TLS_CERT: str(cert),
            CONF_TLS_KEY: str(key),
        }
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


@pytest.mark.parametrize(
    ("internal_url", "host"),
    [
        ("http://192.168.1.10:8123", "192.168.1.10"),
        ("http://[fd00::1]:8123", "[fd00::1]"),
    ],
)
async def test_charger_url_uses_home_assistant_address(
    hass: HomeAssistant, internal_url: str, host: str
) -> None:
    """The form shows the real charger URL once Home Assistant knows its address."""
    await hass.config.async_update(internal_url=internal_url)
    result, _ = await _site_flow(hass)
    assert result["description_placeholders"] == {"url": f"ws://{host}:9000/CHARGER-ID"}


@pytest.mark.usefixtures("socket_enabled")
async def test_port_of_another_site_names_it(
    hass: HomeAssistant, free_port: int
) -> None:
    """A port another Smart Charge site uses names that site; another port works."""
    _site_entry(free_port, title="Home").add_to_hass(hass)
    # An ignored discovery is an entry without data: it owns no port.
    MockConfigEntry(domain=DOMAIN, source=SOURCE_IGNORE, data={}).add_to_hass(hass)
    _, configure = await _site_flow(hass)
    result = await configure({**SITE, CONF_NAME: "Office", CONF_PORT: free_port})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_PORT: "port_used_by_site"}
    assert _placeholders(result)["site"] == "Home"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.bind(("", 0))
        other_port = other.getsockname()[1]
    result = await configure({**SITE, CONF_NAME: "Office", CONF_PORT: other_port})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Office"


@pytest.mark.usefixtures("socket_enabled")
async def test_reconfigure_site(hass: HomeAssistant, free_port: int) -> None:
    """The main breaker cannot drop below a panel or charger, in kW or A per phase."""
    entry = _site_entry(
        free_port,
        [_panel("p1", "Garage", 11, phase_a=20), _charger("CP-1", max_a=16)],
        data={CONF_MAIN_PHASE_LIMIT_A: 32.0},
    )
    entry.add_to_hass(hass)
    _site_entry(_another_port(free_port), title="Home").add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    result = _checked(result, "site")
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {"url": NO_URL.format(port=free_port)}
    configure = hass.config_entries.flow.async_configure
    good = {**SITE, CONF_PORT: free_port, CONF_MAIN_PHASE_LIMIT_A: 32}
    for bad, errors in (
        ({CONF_MAIN_BREAKER_KW: 10}, {CONF_MAIN_BREAKER_KW: "smaller_than_child"}),
        # A 16 A three-phase charger is 11.04 kW: it needs a main breaker of 11 kW.
        (
            {CONF_MAIN_PHASE_LIMIT_A: 18},
            {CONF_MAIN_PHASE_LIMIT_A: "phase_limit_below_child"},
        ),
        (
            {CONF_MAIN_PHASE_LIMIT_A: 12},
            {CONF_MAIN_PHASE_LIMIT_A: "phase_limit_below_child"},
        ),
        ({CONF_VOLTAGE: 500}, {CONF_VOLTAGE: "invalid_voltage"}),
    ):
        result = _checked(await configure(result["flow_id"], {**good, **bad}), "site")
        assert result["errors"] == errors, bad
    result = _checked(
        await configure(
            result["flow_id"], {**good, CONF_PORT: _another_port(free_port)}
        ),
        "site",
    )
    assert result["errors"] == {CONF_PORT: "port_used_by_site"}
    assert _placeholders(result)["site"] == "Home"
    result = await configure(
        result["flow_id"],
        {**good, CONF_NAME: " Office ", CONF_MAIN_BREAKER_KW: 30},
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_MAIN_BREAKER_KW] == 30.0
    assert entry.title == "Office"
    # The site reloads with the new breaker; unload it so its server stops.
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


# ------------------------------------------------------------------------ panels


async def test_panel_subentry_errors_then_create(
    hass: HomeAssistant, free_port: int
) -> None:
    """Every bad value is an error on its own field, phase limits included."""
    entry = _site_entry(
        free_port,
        [_panel("p1", "Garage", 11, phase_a=25)],
        data={CONF_MAIN_BREAKER_KW: 17.0, CONF_MAIN_PHASE_LIMIT_A: 25.0},
    )
    entry.add_to_hass(hass)
    result, configure = await _subentry_flow(hass, entry, SUBENTRY_PANEL)
    assert result["type"] is FlowResultType.FORM
    panel = {CONF_NAME: "Carport", CONF_PARENT: "p1", CONF_STRATEGY: "priority"}
    for bad, errors in (
        ({CONF_NAME: " ", CONF_LIMIT_KW: 5}, {CONF_NAME: "name_required"}),
        ({CONF_LIMIT_KW: 0}, {CONF_LIMIT_KW: "invalid_rating"}),
        ({CONF_LIMIT_KW: 200000}, {CONF_LIMIT_KW: "invalid_rating"}),
        (
            {CONF_LIMIT_KW: 5, CONF_SAFETY_MARGIN: 60},
            {CONF_SAFETY_MARGIN: "invalid_margin"},
        ),
        (
            {CONF_LIMIT_KW: 5, CONF_PHASE_LIMIT_A: 20000},
            {CONF_PHASE_LIMIT_A: "invalid_phase_limit"},
        ),
        ({CONF_LIMIT_KW: 12}, {CONF_LIMIT_KW: "child_exceeds_parent"}),
        # Bug 6: 40 A under a 25 A panel (itself under a 25 A main).
        (
            {CONF_LIMIT_KW: 7.4, CONF_PHASE_LIMIT_A: 40},
            {CONF_PHASE_LIMIT_A: "phase_limit_exceeds_parent"},
        ),
        # The earlier message on Rating is gone: only the current per phase is wrong.
        (
            {CONF_LIMIT_KW: 2, CONF_PHASE_LIMIT_A: 16},
            {CONF_PHASE_LIMIT_A: "phase_limit_above_rating"},
        ),
        (
            {CONF_LIMIT_KW: 7.4, "budget": {"cheapest_hours": 30}},
            {"cheapest_hours": "invalid_cheapest_hours"},
        ),
    ):
        result = await configure({**panel, **bad})
        assert result["errors"] == errors, bad
    result = await configure(
        {**panel, CONF_LIMIT_KW: 7.4, CONF_PHASE_LIMIT_A: 16, CONF_SAFETY_MARGIN: 10}
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


async def test_panel_reconfigure_checks_parent_and_children(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site_entry(
        free_port,
        [
            _panel("p1", "A", 11, phase_a=32),
            _panel("p2", "B", 5, "p1", phase_a=20),
            _charger("CP-1", "p1", max_a=10),
        ],
    )
    entry.add_to_hass(hass)
    result, configure = await _subentry_flow(hass, entry, SUBENTRY_PANEL, "p1")
    assert result["step_id"] == "reconfigure"
    a = {CONF_NAME: "A", CONF_LIMIT_KW: 11, CONF_PARENT: ROOT_PANEL_ID}
    for bad, errors in (
        ({CONF_PARENT: "p2"}, {CONF_PARENT: "panel_cycle"}),
        ({CONF_LIMIT_KW: 4}, {CONF_LIMIT_KW: "smaller_than_child"}),
        ({CONF_LIMIT_KW: 30}, {CONF_LIMIT_KW: "child_exceeds_parent"}),
        ({CONF_PHASE_LIMIT_A: 16}, {CONF_PHASE_LIMIT_A: "phase_limit_below_child"}),
    ):
        result = await configure({**a, **bad})
        assert result["errors"] == errors, bad
    result = await configure({**a, CONF_NAME: "A2", CONF_LIMIT_KW: 9})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries["p1"].title == "A2"
    assert entry.subentries["p1"].data[CONF_LIMIT_KW] == 9.0
    assert CONF_PHASE_LIMIT_A not in entry.subentries["p1"].data


async def test_panel_budget_section_errors_then_create(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site_entry(free_port)
    entry.add_to_hass(hass)
    result, configure = await _subentry_flow(hass, entry, SUBENTRY_PANEL)
    base = {CONF_NAME: "Home", CONF_LIMIT_KW: 11, CONF_PARENT: ROOT_PANEL_ID}
    for budget, error in (
        ({"solar_mode": "solar"}, {"grid_sensor": "grid_sensor_required"}),
        ({"tariff_mode": "threshold"}, {"price_sensor": "price_sensor_required"}),
        (
            {"tariff_mode": "threshold", "price_sensor": "sensor.p"},
            {"price_threshold": "threshold_required"},
        ),
        (
            {
                "tariff_mode": "threshold",
                "price_sensor": "sensor.p",
                "price_threshold": 5000,
            },
            {"price_threshold": "invalid_price_threshold"},
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
        result = await configure({**base, "budget": budget})
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
    result = await configure({**base, "budget": budget})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = next(s for s in entry.subentries.values() if s.title == "Home")
    for key, value in budget.items():
        assert created.data[key] == value
    # Reconfigure shows the stored budget in its section.
    result, _ = await _subentry_flow(hass, entry, SUBENTRY_PANEL, created.subentry_id)
    schema_keys = [str(k) for k in _schema(result).schema]
    assert "budget" in schema_keys


# ------------------------------------------------------------------------ chargers


async def test_charger_subentry_errors_then_create(
    hass: HomeAssistant, free_port: int
) -> None:
    """Each bad value is an error on its own field, and no earlier error stays."""
    await hass.config.async_update(internal_url="http://192.168.1.10:8123")
    entry = _site_entry(
        free_port,
        [_panel("p1", "Garage", 11, phase_a=16), _charger("gar-01")],
        data={CONF_MAIN_BREAKER_KW: 17.0, CONF_MAIN_PHASE_LIMIT_A: 25.0},
    )
    entry.add_to_hass(hass)
    result, configure = await _subentry_flow(hass, entry, SUBENTRY_CHARGER)
    assert result["description_placeholders"] == {
        "url": f"ws://192.168.1.10:{free_port}/CHARGER-ID"
    }
    base = {**CHARGER, CONF_PHASES: "1", CONF_GRID_PHASE: "l2"}
    for bad, errors in (
        ({CONF_CHARGER_ID: "a/b"}, {CONF_CHARGER_ID: "invalid_identity"}),
        ({CONF_CHARGER_ID: " "}, {CONF_CHARGER_ID: "invalid_identity"}),
        # Bug 9: identities differ by more than their case.
        ({CONF_CHARGER_ID: "GAR-01"}, {CONF_CHARGER_ID: "duplicate_identity"}),
        ({CONF_MAX_CURRENT: 0}, {CONF_MAX_CURRENT: "invalid_current"}),
        ({CONF_MAX_CURRENT: 2000}, {CONF_MAX_CURRENT: "invalid_current"}),
        ({CONF_MIN_CURRENT: 0}, {CONF_MIN_CURRENT: "min_above_max"}),
        ({CONF_MIN_CURRENT: 20}, {CONF_MIN_CURRENT: "min_above_max"}),
        # Bug 5: a priority of 0 is an error on Priority, not the minimum's message.
        ({CONF_PRIORITY: 0}, {CONF_PRIORITY: "invalid_priority"}),
        ({CONF_PRIORITY: 1.5}, {CONF_PRIORITY: "invalid_priority"}),
        ({CONF_PRIORITY: "nan"}, {CONF_PRIORITY: "invalid_priority"}),
        ({CONF_MAX_CURRENT: "inf"}, {CONF_MAX_CURRENT: "invalid_current"}),
        ({CONF_STACK_LEVEL: 100}, {CONF_STACK_LEVEL: "invalid_stack_level"}),
        # Bug 6: 63 A on a site whose main breaker carries 25 A per phase.
        ({CONF_MAX_CURRENT: 63}, {CONF_MAX_CURRENT: "above_panel_current"}),
        # ... and 20 A under the 16 A Garage panel (below that main breaker).
        (
            {CONF_MAX_CURRENT: 20, CONF_PANEL: "p1"},
            {CONF_MAX_CURRENT: "above_panel_current"},
        ),
        # 16 A on three phases is 11.04 kW: it fits the "11 kW" Garage; 17 A does not.
        (
            {CONF_MAX_CURRENT: 17, CONF_PANEL: "p1", CONF_PHASES: "3"},
            {CONF_MAX_CURRENT: "above_panel_current"},
        ),
    ):
        result = await configure({**base, **bad})
        assert result["errors"] == errors, bad
    result = await configure(
        {**base, CONF_PANEL: "p1", CONF_PASSWORD: "s3cret", CONF_PHASES: "3"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = next(s for s in entry.subentries.values() if s.title == "CP-2")
    assert created.unique_id == "CP-2"
    assert created.data[CONF_PHASES] == 3
    assert created.data[CONF_PASSWORD] == "s3cret"
    # Three-phase, and it may switch to one phase (auto): the phase it would use.
    assert created.data[CONF_GRID_PHASE] == "L2"
    assert CONF_PHASE_SWITCHING not in created.data  # the default, auto


@pytest.mark.parametrize(
    ("switching", "grid_phase"),
    [("supported", "L3"), ("unsupported", None)],
)
async def test_charger_phase_switching_setting(
    hass: HomeAssistant, free_port: int, switching: str, grid_phase: str | None
) -> None:
    """A three-phase charger's phase switching setting, and its phase on one phase."""
    entry = _site_entry(free_port, [])
    entry.add_to_hass(hass)
    _, configure = await _subentry_flow(hass, entry, SUBENTRY_CHARGER)
    result = await configure(
        {**CHARGER, CONF_PHASE_SWITCHING: switching, CONF_GRID_PHASE: "l3"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = next(s for s in entry.subentries.values() if s.title == "CP-2")
    assert created.data[CONF_PHASE_SWITCHING] == switching
    assert created.data.get(CONF_GRID_PHASE) == grid_phase


async def test_charger_kw_checked_against_the_site(
    hass: HomeAssistant, free_port: int
) -> None:
    """A 63 A three-phase charger (43 kW) does not fit a 17 kW site without A limits."""
    entry = _site_entry(free_port, data={CONF_MAIN_BREAKER_KW: 17.0})
    entry.add_to_hass(hass)
    _, configure = await _subentry_flow(hass, entry, SUBENTRY_CHARGER)
    result = await configure({**CHARGER, CONF_MAX_CURRENT: 63})
    assert result["errors"] == {CONF_MAX_CURRENT: "above_panel_rating"}
    # Single-phase, 63 A is 14.5 kW: it fits.
    result = await configure(
        {**CHARGER, CONF_MAX_CURRENT: 63, CONF_PHASES: "1", CONF_GRID_PHASE: "l3"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = next(s for s in entry.subentries.values() if s.title == "CP-2")
    assert created.data[CONF_GRID_PHASE] == "L3"


async def test_charger_reconfigure_password_and_stored_values(
    hass: HomeAssistant, free_port: int
) -> None:
    """Old stored values (L2, TxDefaultProfile) load; a password can be removed."""
    entry = _site_entry(
        free_port,
        [
            _charger(
                "CP-1",
                data={
                    CONF_PHASES: 1,
                    CONF_GRID_PHASE: "L2",
                    CONF_PROFILE_PURPOSE: "TxDefaultProfile",
                    CONF_PASSWORD: "old",
                },
            ),
            _charger("CP-9"),
        ],
    )
    entry.add_to_hass(hass)
    result, configure = await _subentry_flow(hass, entry, SUBENTRY_CHARGER, "sub_CP-1")
    assert result["step_id"] == "reconfigure"
    assert result["description_placeholders"] == {
        "url": f"ws://HOME-ASSISTANT-ADDRESS:{free_port}/CP-1"
    }
    suggested = {
        str(key): key.description.get("suggested_value")
        for key in _schema(result).schema
        if key.description
    }
    assert suggested[CONF_GRID_PHASE] == "l2"
    assert suggested[CONF_PROFILE_PURPOSE] == "tx_default_profile"
    assert CONF_PASSWORD not in suggested
    assert "remove_password" in [str(key) for key in _schema(result).schema]

    form = {
        **CHARGER,
        CONF_CHARGER_ID: "CP-1",
        CONF_PHASES: "1",
        CONF_GRID_PHASE: "l2",
        CONF_PROFILE_PURPOSE: "tx_default_profile",
    }
    result = await configure({**form, CONF_PASSWORD: "new", "remove_password": True})
    assert result["errors"] == {CONF_PASSWORD: "password_conflict"}
    # Renaming to another charger's identity in another case is refused too.
    result = await configure({**form, CONF_CHARGER_ID: "cp-9"})
    assert result["errors"] == {CONF_CHARGER_ID: "duplicate_identity"}
    # An empty password keeps the stored one.
    result = await configure({**form, CONF_MAX_CURRENT: 32})
    assert result["reason"] == "reconfigure_successful"
    data = entry.subentries["sub_CP-1"].data
    assert data[CONF_MAX_CURRENT] == 32.0
    assert data[CONF_PASSWORD] == "old"
    assert data[CONF_GRID_PHASE] == "L2"
    assert data[CONF_PROFILE_PURPOSE] == "TxDefaultProfile"

    # Bug 12: the password can be removed, and the charger may change its own case.
    _, configure = await _subentry_flow(hass, entry, SUBENTRY_CHARGER, "sub_CP-1")
    result = await configure({**form, CONF_CHARGER_ID: "cp-1", "remove_password": True})
    assert result["reason"] == "reconfigure_successful"
    data = entry.subentries["sub_CP-1"].data
    assert CONF_PASSWORD not in data
    assert data[CONF_CHARGER_ID] == "cp-1"
    # Without a stored password there is nothing to remove.
    result, _ = await _subentry_flow(hass, entry, SUBENTRY_CHARGER, "sub_CP-1")
    assert "remove_password" not in [str(key) for key in _schema(result).schema]


async def test_trees_saved_before_the_checks_stay_editable(
    hass: HomeAssistant, free_port: int
) -> None:
    """A tree saved before these checks is reported on the item that is wrong.

    The 32 A single-phase charger under a 25 A main breaker blocks neither the site's
    form (unless its current per phase is changed) nor a case-only identity pair.
    """
    entry = _site_entry(
        free_port,
        [
            _charger("HOME-2", max_a=32, data={CONF_PHASES: 1, CONF_GRID_PHASE: "L2"}),
            _charger("gar-01"),
            _charger("GAR-01"),
        ],
        data={CONF_MAIN_BREAKER_KW: 17.0, CONF_MAIN_PHASE_LIMIT_A: 25.0},
    )
    entry.add_to_hass(hass)
    result = _checked(await entry.start_reconfigure_flow(hass), "site")
    configure = hass.config_entries.flow.async_configure
    site = {
        **SITE,
        CONF_PORT: free_port,
        CONF_MAIN_BREAKER_KW: 17,
        CONF_MAIN_PHASE_LIMIT_A: 25,
    }
    # Only the unrelated error: the stored current per phase is not blamed.
    result = _checked(
        await configure(result["flow_id"], {**site, CONF_TLS_CERT: "/x.pem"}), "site"
    )
    assert result["errors"] == {CONF_TLS_KEY: "tls_pair"}
    result = _checked(
        await configure(result["flow_id"], {**site, CONF_MAIN_PHASE_LIMIT_A: 24}),
        "site",
    )
    assert result["errors"] == {CONF_MAIN_PHASE_LIMIT_A: "phase_limit_below_child"}

    # The charger's own form says what is wrong, and takes the fix.
    charger = {
        **CHARGER,
        CONF_CHARGER_ID: "HOME-2",
        CONF_MAX_CURRENT: 32,
        CONF_PHASES: "1",
        CONF_GRID_PHASE: "l2",
    }
    _, configure_charger = await _subentry_flow(
        hass, entry, SUBENTRY_CHARGER, "sub_HOME-2"
    )
    step = await configure_charger({**charger, CONF_PRIORITY: 5})
    assert step["errors"] == {CONF_MAX_CURRENT: "above_panel_current"}
    step = await configure_charger({**charger, CONF_MAX_CURRENT: 25})
    assert step["reason"] == "reconfigure_successful"

    # A pair differing by case stays editable; it cannot be made again.
    _, configure_charger = await _subentry_flow(
        hass, entry, SUBENTRY_CHARGER, "sub_gar-01"
    )
    step = await configure_charger({**CHARGER, CONF_CHARGER_ID: "Gar-01"})
    assert step["errors"] == {CONF_CHARGER_ID: "duplicate_identity"}
    step = await configure_charger(
        {**CHARGER, CONF_CHARGER_ID: "gar-01", CONF_MAX_CURRENT: 10}
    )
    assert step["reason"] == "reconfigure_successful"
    assert entry.subentries["sub_gar-01"].data[CONF_MAX_CURRENT] == 10.0


# ------------------------------------------------------------------------ discovery


async def test_discovery_adopts_charger(
    hass: HomeAssistant, free_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """The card and the form name the site; the adopt form checks its values."""
    entry = _site_entry(
        free_port,
        [_panel("p1", "Garage", 11, phase_a=16), _charger("CP-1")],
        title="Home",
    )
    entry.add_to_hass(hass)
    result = await _discover(hass, entry.entry_id, "CP-7")
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "discovery_confirm"
    assert result["description_placeholders"] == {
        "charger_id": "CP-7",
        "site": "Home",
        "url": f"ws://HOME-ASSISTANT-ADDRESS:{free_port}/CP-7",
    }
    flow = hass.config_entries.flow.async_get(result["flow_id"])
    assert flow["context"]["title_placeholders"] == {
        "charger_id": "CP-7",
        "site": "Home",
    }
    assert flow["context"]["unique_id"] == f"{entry.entry_id}_cp-7"
    assert set(re.findall(r"\{(\w+)\}", STRINGS["config"]["flow_title"])) <= set(
        flow["context"]["title_placeholders"]
    )

    configure = hass.config_entries.flow.async_configure
    for bad, errors in (
        ({CONF_MAX_CURRENT: 0}, {CONF_MAX_CURRENT: "invalid_current"}),
        (
            {CONF_MAX_CURRENT: 32, CONF_PANEL: "p1"},
            {CONF_MAX_CURRENT: "above_panel_current"},
        ),
    ):
        result = _checked(await configure(result["flow_id"], {**ADOPT, **bad}), "site")
        assert result["errors"] == errors, bad
    result = await configure(
        result["flow_id"], {**ADOPT, CONF_PANEL: "p1", CONF_MAX_CURRENT: 16}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "charger_adopted"
    adopted = next(s for s in entry.subentries.values() if s.title == "CP-7")
    assert adopted.data[CONF_PANEL] == "p1"

    # Known chargers (in any case) and gone sites do not start a flow.
    for entry_id, charger_id, reason in (
        (entry.entry_id, "CP-1", "already_configured"),
        (entry.entry_id, "cp-7", "already_configured"),
        ("nope", "CP-9", "site_gone"),
    ):
        result = await _discover(hass, entry_id, charger_id)
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == reason
    # Only the case-only twin is worth a word in the log.
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [w for w in warnings if "configured as" in w] == [
        "Charger cp-7 connected to Home, which has it configured as CP-7; it stays "
        "unmanaged until both spell its identity the same"
    ]


async def test_discovery_site_removed_before_adopting(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site_entry(free_port)
    entry.add_to_hass(hass)
    result = await _discover(hass, entry.entry_id, "CP-7")
    assert await hass.config_entries.async_remove(entry.entry_id)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**ADOPT, CONF_MAX_CURRENT: 16}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "site_gone"


async def test_ignore_is_per_site(hass: HomeAssistant, free_port: int) -> None:
    """Ignoring a charger on one site still offers it on another."""
    home = _site_entry(free_port, title="Home")
    office = _site_entry(_another_port(free_port), title="Office")
    home.add_to_hass(hass)
    office.add_to_hass(hass)
    result = await _discover(hass, home.entry_id, "CP-7")
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_IGNORE},
        data={"unique_id": f"{home.entry_id}_cp-7", "title": "CP-7"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert hass.config_entries.flow.async_progress_by_handler(DOMAIN) == []

    result = await _discover(hass, home.entry_id, "CP-7")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    result = await _discover(hass, office.entry_id, "CP-7")
    assert result["type"] is FlowResultType.FORM
    assert _placeholders(result)["site"] == "Office"


async def _until_site(entry: MockConfigEntry, predicate: Callable[[], bool]) -> None:
    """Wait until `predicate()` holds, checked at each update the site pushes."""
    done = asyncio.Event()

    def check() -> None:
        if predicate():
            done.set()

    remove = entry.runtime_data.async_add_listener(check)
    try:
        check()
        async with asyncio.timeout(5):
            await done.wait()
    finally:
        remove()


def _discovered(hass: HomeAssistant) -> list[Mapping[str, str]]:
    return [
        flow["context"]["title_placeholders"]
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    ]


async def test_removed_charger_is_offered_again_only_after_reconnecting(
    hass: HomeAssistant, free_port: int
) -> None:
    """A charger removed while connected is not under Discovered at once.

    It is offered again when it connects anew (after a disconnect or a restart).
    """
    entry = _site_entry(free_port, [_charger("CP-1")])
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    server = entry.runtime_data.server
    async with chargers(free_port, "CP-1") as (cp1,):
        assert hass.config_entries.async_remove_subentry(entry, "sub_CP-1")
        await hass.async_block_till_done()
        await cp1.heartbeat()
        await hass.async_block_till_done()
        assert _discovered(hass) == []

        await cp1.disconnect()
        await _until_site(entry, lambda: not server.connected("CP-1"))
        await cp1.start()
        await hass.async_block_till_done()
        assert _discovered(hass) == [{"charger_id": "CP-1", "site": "Smart Charge"}]
    assert await hass.config_entries.async_unload(entry.entry_id)


# ------------------------------------------------------------------------ options


async def test_options_flow_tunes_profile_writes(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = _site_entry(free_port)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    controller = entry.runtime_data.controller
    assert (controller.increase_dead_band_a, controller.min_increase_interval_s) == (
        0.5,
        10.0,
    )
    assert controller.rotation_period_s == 900.0  # paused cars take turns: 15 min
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "init"
    good = {
        "increase_dead_band_a": 1,
        "min_increase_interval_s": 60,
        "call_timeout_s": 20,
        "rotation_period_min": 5,
    }
    for bad, errors in (
        ({"increase_dead_band_a": 6}, {"increase_dead_band_a": "invalid_dead_band"}),
        (
            {"rotation_period_min": -1},
            {"rotation_period_min": "invalid_rotation_period"},
        ),
        (
            {"min_increase_interval_s": -1, "call_timeout_s": 0},
            {
                "min_increase_interval_s": "invalid_interval",
                "call_timeout_s": "invalid_timeout",
            },
        ),
    ):
        result = _checked(
            await hass.config_entries.options.async_configure(
                result["flow_id"], {**good, **bad}
            ),
            "options",
        )
        assert result["errors"] == errors, bad
    result = await hass.config_entries.options.async_configure(result["flow_id"], good)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # The site reloaded with the new options.
    site = entry.runtime_data
    assert site.controller.increase_dead_band_a == 1.0
    assert site.controller.min_increase_interval_s == 60.0
    assert site.controller.rotation_period_s == 300.0
    assert site.server.config.call_timeout_s == 20.0
    assert await hass.config_entries.async_unload(entry.entry_id)
