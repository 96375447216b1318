"""Prepare the demo's Home Assistant config folder (idempotent).

    .venv/bin/python demo/prepare.py demo-config [--fresh]

Writes configuration.yaml and the dashboard from `demo/config/`, and on the first run the
storage Home Assistant would otherwise fill in through its UI: onboarding done, the demo
user (owner, administrator) with a long-lived token for the scripts, and the two Smart
Charge sites as config entries with their panel and charger subentries.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import shutil
import sys
from typing import Any

from homeassistant import runner
from homeassistant.auth import auth_manager_from_config
from homeassistant.auth.const import GROUP_ID_ADMIN
from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
from homeassistant.config_entries import ConfigEntries
from homeassistant.core import CoreState, HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sites import PANEL_ENTITY_KEYS, PASSWORD, SITES, USERNAME, DemoSite

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOKEN_FILE = "demo-token.txt"  # noqa: S105 - a file name, not a secret


def _storage(key: str, data: Any, version: int = 1, minor: int = 1) -> dict[str, Any]:
    return {"version": version, "minor_version": minor, "key": key, "data": data}


def _site_entry(site: DemoSite) -> dict[str, Any]:
    """Return the stored form of a site config entry (HA 2025.4 format, 1.5)."""
    now = datetime.now(UTC).isoformat()
    data: dict[str, Any] = {
        "port": site.port,
        "main_breaker_kw": site.main_breaker_kw,
        "phases": 3,
        "voltage": 230.0,
        "failsafe_current_a": 6.0,
        "unknown_charger_policy": "accept_and_ask",
    }
    if site.main_phase_limit_a:
        data["main_phase_limit_a"] = site.main_phase_limit_a
    if site.load_sensor:
        data["load_sensor"] = site.load_sensor
    if site.price_sensor:
        data["price_sensor"] = site.price_sensor
    subentries: list[dict[str, Any]] = [
        {
            "data": {
                "name": panel.name,
                "limit_kw": panel.limit_kw,
                "parent": panel.parent,
                "strategy": panel.strategy,
                "safety_margin_pct": 5.0,
            },
            "subentry_id": panel.panel_id,
            "subentry_type": "panel",
            "title": panel.name,
            "unique_id": None,
        }
        for panel in site.panels
    ]
    for charger in site.chargers:
        charger_data: dict[str, Any] = {
            "charger_id": charger.charger_id,
            "panel": charger.panel,
            "managed": charger.managed,
            "min_current_a": charger.min_current_a,
            "max_current_a": charger.max_current_a,
            "phases": charger.phases,
            "priority": charger.priority,
            "profile_purpose": "TxProfile",
            "stack_level": 1,
        }
        if charger.grid_phase:
            charger_data["grid_phase"] = charger.grid_phase
        if charger.goal_mode:
            # The charger's default goal: every car that plugs in gets it (what a 2.x car
            # reports with NotifyEVChargingNeeds replaces its energy and departure).
            charger_data["default_mode"] = charger.goal_mode
            charger_data["default_energy_kwh"] = charger.goal_kwh
            charger_data["default_departure"] = f"{charger.departure_hour:02d}:00:00"
        subentries.append(
            {
                "data": charger_data,
                "subentry_id": f"{site.title.lower()}_{charger.charger_id.lower()}",
                "subentry_type": "charger",
                "title": charger.charger_id,
                "unique_id": charger.charger_id,
            }
        )
    return {
        "created_at": now,
        "data": data,
        "discovery_keys": {},
        "disabled_by": None,
        "domain": "smart_charge",
        "entry_id": site.entry_id,
        "minor_version": 1,
        "modified_at": now,
        "options": {},
        "pref_disable_new_entities": False,
        "pref_disable_polling": False,
        "source": "user",
        "subentries": subentries,
        "title": site.title,
        "unique_id": None,
        "version": 1,
    }


def write_storage(config: Path) -> None:
    """Write the onboarding state and the config entries."""
    storage = config / ".storage"
    storage.mkdir(parents=True, exist_ok=True)
    onboarding = _storage(
        "onboarding",
        {"done": ["user", "core_config", "analytics", "integration"]},
        version=4,
    )
    (storage / "onboarding").write_text(json.dumps(onboarding, indent=2))
    entries = _storage(
        "core.config_entries",
        {"entries": [_site_entry(site) for site in SITES]},
        version=1,
        minor=5,
    )
    (storage / "core.config_entries").write_text(json.dumps(entries, indent=2))


async def _create_user(config: Path) -> str:
    """Create the demo owner with a password login; return a long-lived token.

    The same calls the onboarding view makes, plus the entity ids of the two root panels
    (both are called "Main breaker", so their ids would otherwise depend on which site
    starts first).
    """
    hass = HomeAssistant(str(config))
    if hasattr(dr, "async_setup"):  # newer Home Assistant: set up before loading
        dr.async_setup(hass)
    # Newer Home Assistant: the entity registry waits for the config entries to load.
    hass.config_entries = ConfigEntries(hass, {})
    await hass.config_entries.async_initialize()
    await asyncio.gather(dr.async_load(hass), er.async_load(hass))
    hass.auth = await auth_manager_from_config(hass, [{"type": "homeassistant"}], [])
    provider = hass.auth.auth_providers[0]
    await provider.async_initialize()
    user = await hass.auth.async_create_user("Demo", group_ids=[GROUP_ID_ADMIN])
    await provider.async_add_auth(USERNAME, PASSWORD)  # type: ignore[attr-defined]
    credentials = await provider.async_get_or_create_credentials({"username": USERNAME})
    await hass.auth.async_link_user(user, credentials)
    refresh = await hass.auth.async_create_refresh_token(
        user,
        client_name="Smart Charge demo scripts",
        token_type=TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN,
        access_token_expiration=timedelta(days=3650),
    )
    token = hass.auth.async_create_access_token(refresh)
    registry = er.async_get(hass)
    for site in SITES:
        for domain, keys in PANEL_ENTITY_KEYS.items():
            for key in keys:
                registry.async_get_or_create(
                    domain,
                    "smart_charge",
                    f"{site.entry_id}_panel_main_{key}",
                    suggested_object_id=f"{site.root_object_id}_{key}",
                )
    # Stopping a running instance flushes the delayed saves (auth, entity registry).
    hass.set_state(CoreState.running)
    await hass.async_stop()
    return token


def _hass_runner() -> asyncio.Runner:
    """Return a runner with Home Assistant's event loop, on every supported version."""
    if hasattr(runner, "create_event_loop"):  # newer Home Assistant
        return asyncio.Runner(loop_factory=runner.create_event_loop)
    asyncio.set_event_loop_policy(runner.HassEventLoopPolicy(False))
    return asyncio.Runner()


def prepare(config: Path, fresh: bool) -> None:
    """Make `config` a ready-to-run Home Assistant config folder."""
    if fresh and config.exists():
        shutil.rmtree(config)
    config.mkdir(parents=True, exist_ok=True)
    for name in ("configuration.yaml", "smart_charge_dashboard.yaml"):
        shutil.copyfile(HERE / "config" / name, config / name)
    custom = config / "custom_components"
    custom.mkdir(exist_ok=True)
    link = custom / "smart_charge"
    if not link.exists():
        link.symlink_to(REPO / "custom_components" / "smart_charge")
    if not (config / TOKEN_FILE).exists():
        write_storage(config)
        with _hass_runner() as loop_runner:
            token = loop_runner.run(_create_user(config))
        (config / TOKEN_FILE).write_text(token + "\n")
        (config / TOKEN_FILE).chmod(0o600)


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--fresh", action="store_true", help="start from scratch")
    args = parser.parse_args()
    prepare(args.config.resolve(), args.fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
