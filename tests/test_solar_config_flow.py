"""The site's solar forecast and feed-in price in the main breaker's budget section."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.smart_charge import config_flow
from custom_components.smart_charge.const import (
    CONF_FAILSAFE_A,
    CONF_FEED_IN_PRICE,
    CONF_MAIN_BREAKER_KW,
    CONF_PHASES,
    CONF_PORT,
    CONF_SOLAR_FORECAST,
    CONF_UNKNOWN_POLICY,
    CONF_VOLTAGE,
    DOMAIN,
    SUBENTRY_PANEL,
)
from custom_components.smart_charge.site_config import BudgetConfig

PACKAGE = Path(config_flow.__file__).parent
STRINGS = json.loads((PACKAGE / "strings.json").read_text(encoding="utf-8"))
SITE = {CONF_MAIN_BREAKER_KW: 22, CONF_PHASES: "3", CONF_VOLTAGE: 230}
SOLCAST = {
    "detailedForecast": [
        {"period_start": "2026-06-01T10:00:00+00:00", "pv_estimate": 2.5},
        {"period_start": "2026-06-01T10:30:00+00:00", "pv_estimate": 3.0},
    ]
}
OPEN_METEO = {"watts": {"2026-06-02T10:00:00+00:00": 2500}}


def _errors(result: Any) -> dict[str, str]:
    """Return the form's errors, each of them translated for the site's forms."""
    assert result["type"] is FlowResultType.FORM
    errors: dict[str, str] = result["errors"] or {}
    for error in errors.values():
        assert error in STRINGS["config"]["error"], error
    return errors


async def test_site_flow_checks_the_forecast_then_stores_it(
    hass: HomeAssistant, free_port: int
) -> None:
    hass.states.async_set("sensor.solcast_today", "20.1", SOLCAST)
    hass.states.async_set("sensor.energy_production_tomorrow", "9", OPEN_METEO)
    hass.states.async_set("sensor.outdoor_temperature", "21", {"unit": "°C"})
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    flow_id = result["flow_id"]
    good = {**SITE, CONF_PORT: free_port}
    for budget, errors in (
        ({CONF_FEED_IN_PRICE: 0.08}, {CONF_FEED_IN_PRICE: "feed_in_needs_forecast"}),
        (
            {
                CONF_SOLAR_FORECAST: [
                    "sensor.solcast_today",
                    "sensor.outdoor_temperature",
                ]
            },
            {CONF_SOLAR_FORECAST: "solar_forecast_unreadable"},
        ),
        (
            {CONF_SOLAR_FORECAST: ["sensor.solcast_today"], CONF_FEED_IN_PRICE: 5000},
            {CONF_FEED_IN_PRICE: "invalid_feed_in_price"},
        ),
    ):
        result = await hass.config_entries.flow.async_configure(
            flow_id, {**good, "budget": budget}
        )
        assert _errors(result) == errors, budget

    forecast = [
        "sensor.solcast_today",
        "sensor.energy_production_tomorrow",
        "sensor.not_loaded_yet",  # accepted: it may come up after Smart Charge
    ]
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {**good, "budget": {CONF_SOLAR_FORECAST: forecast, CONF_FEED_IN_PRICE: 0.08}},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"][CONF_SOLAR_FORECAST] == forecast
    assert result["data"][CONF_FEED_IN_PRICE] == 0.08
    stored = BudgetConfig.from_data(result["data"])
    assert stored.solar_forecast == tuple(forecast)
    assert stored.feed_in_price == 0.08
    entry = hass.config_entries.async_entries(DOMAIN)[0]
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_shows_and_changes_the_forecast(
    hass: HomeAssistant, free_port: int
) -> None:
    hass.states.async_set("sensor.solcast_today", "20.1", SOLCAST)
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Smart Charge",
        data={
            CONF_PORT: free_port,
            CONF_MAIN_BREAKER_KW: 22.0,
            CONF_PHASES: 3,
            CONF_VOLTAGE: 230.0,
            CONF_FAILSAFE_A: 6.0,
            CONF_UNKNOWN_POLICY: "accept_and_ask",
            CONF_SOLAR_FORECAST: ["sensor.solcast_today"],
            CONF_FEED_IN_PRICE: 0.08,
        },
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    data_schema = result["data_schema"]
    assert data_schema is not None
    schema: dict[Any, Any] = data_schema.schema
    budget = next(value for key, value in schema.items() if str(key) == "budget")
    suggested = {
        str(key): (key.description or {}).get("suggested_value")
        for key in budget.schema.schema
    }
    assert suggested[CONF_SOLAR_FORECAST] == ["sensor.solcast_today"]
    assert suggested[CONF_FEED_IN_PRICE] == 0.08

    configure = hass.config_entries.flow.async_configure
    result = await configure(
        result["flow_id"],
        {**SITE, CONF_PORT: free_port, "budget": {CONF_FEED_IN_PRICE: 0.1}},
    )
    assert _errors(result) == {CONF_FEED_IN_PRICE: "feed_in_needs_forecast"}
    # Cleared: neither is kept.
    result = await configure(result["flow_id"], {**SITE, CONF_PORT: free_port})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert CONF_SOLAR_FORECAST not in entry.data
    assert CONF_FEED_IN_PRICE not in entry.data
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(entry.entry_id)


def test_only_the_site_offers_the_forecast_and_every_field_is_translated() -> None:
    site_keys = {str(key) for key in config_flow.SITE_BUDGET_SCHEMA.schema}
    panel_keys = {str(key) for key in config_flow.BUDGET_SCHEMA.schema}
    assert site_keys - panel_keys == {CONF_SOLAR_FORECAST, CONF_FEED_IN_PRICE}
    step: str
    for step in ("user", "reconfigure"):
        strings = STRINGS["config"]["step"][step]["sections"]["budget"]
        for key in (CONF_SOLAR_FORECAST, CONF_FEED_IN_PRICE):
            assert strings["data"][key]
            assert strings["data_description"][key]
    panel: dict[str, Any] = STRINGS["config_subentries"][SUBENTRY_PANEL]["step"]
    for panel_step in panel.values():
        budget = panel_step.get("sections", {}).get("budget", {})
        assert CONF_SOLAR_FORECAST not in budget.get("data", {})
    errors = {allowed.error for allowed in config_flow.SITE_BUDGET_RANGES.values()}
    assert errors <= set(STRINGS["config"]["error"])


@pytest.mark.parametrize(
    ("stored", "entities"),
    [
        ("sensor.one", ("sensor.one",)),
        (["sensor.one", "", "sensor.two"], ("sensor.one", "sensor.two")),
        (None, ()),
        ("", ()),
        (7, ()),
    ],
)
def test_stored_forecast_entities_are_read_leniently(
    stored: Any, entities: tuple[str, ...]
) -> None:
    assert BudgetConfig.from_data({CONF_SOLAR_FORECAST: stored}).solar_forecast == (
        entities
    )
