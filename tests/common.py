"""Helpers for the Home Assistant tests: a site entry with panels and chargers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigSubentryDataWithId,
)
from homeassistant.core import (
    Event,
    EventStateChangedData,
    HomeAssistant,
    State,
    callback,
)
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.event import async_track_state_change_event
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
)

from custom_components.smart_charge.compat import async_get_device
from custom_components.smart_charge.const import (
    CONF_CHARGER_ID,
    CONF_FAILSAFE_A,
    CONF_GRID_PHASE,
    CONF_LIMIT_KW,
    CONF_MAIN_BREAKER_KW,
    CONF_MANAGED,
    CONF_MAX_CURRENT,
    CONF_MIN_CURRENT,
    CONF_NAME,
    CONF_PANEL,
    CONF_PARENT,
    CONF_PHASES,
    CONF_PORT,
    CONF_UNKNOWN_POLICY,
    CONF_VOLTAGE,
    DOMAIN,
    ROOT_PANEL_ID,
    SUBENTRY_CHARGER,
    SUBENTRY_PANEL,
)
from tests.waits import until
from tools.simulator import SimulatedCharger

# `until` lives in tests/waits.py (no Home Assistant there); the HA tests import it here.
__all__ = ["until"]


def device(hass: HomeAssistant, entry_id: str, kind: str, key: str) -> dr.DeviceEntry:
    """Return a site's panel or charger device, looked up the way this HA allows."""
    found = async_get_device(hass, (DOMAIN, f"{entry_id}_{kind}_{key}"), entry_id)
    assert found is not None
    return found


def state_of(hass: HomeAssistant, entity_id: str) -> State:
    """Return the entity's state, failing the test if the entity has none."""
    state = hass.states.get(entity_id)
    assert state is not None, f"{entity_id} has no state"
    return state


def value_of(hass: HomeAssistant, entity_id: str) -> str:
    """Return the entity's state value, failing the test if the entity has none."""
    return state_of(hass, entity_id).state


def entry_state(entry: ConfigEntry[Any]) -> ConfigEntryState:
    """Return the entry's state now; a call, so an earlier assert does not narrow it."""
    return entry.state


def panel(
    panel_id: str, name: str, limit_kw: float, parent: str = ROOT_PANEL_ID
) -> ConfigSubentryDataWithId:
    """Return a panel subentry."""
    return ConfigSubentryDataWithId(
        data={CONF_NAME: name, CONF_LIMIT_KW: limit_kw, CONF_PARENT: parent},
        subentry_id=panel_id,
        subentry_type=SUBENTRY_PANEL,
        title=name,
        unique_id=None,
    )


def charger(
    charger_id: str,
    panel_id: str = ROOT_PANEL_ID,
    *,
    managed: bool = True,
    max_a: float = 16.0,
    phases: int = 3,
    grid_phase: str | None = None,
) -> ConfigSubentryDataWithId:
    """Return a charger subentry."""
    return ConfigSubentryDataWithId(
        data={
            CONF_CHARGER_ID: charger_id,
            CONF_PANEL: panel_id,
            CONF_MANAGED: managed,
            CONF_MIN_CURRENT: 6.0,
            CONF_MAX_CURRENT: max_a,
            CONF_PHASES: phases,
            **({CONF_GRID_PHASE: grid_phase} if grid_phase else {}),
        },
        subentry_id=f"sub{charger_id.replace('-', '')}",
        subentry_type=SUBENTRY_CHARGER,
        title=charger_id,
        unique_id=charger_id,
    )


def site_entry(
    port: int,
    subentries: list[Any],
    *,
    main_kw: float = 50.0,
    policy: str = "accept_and_ask",
    entry_id: str | None = None,
    options: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """Return a site entry listening on `port`."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Smart Charge",
        data={
            CONF_PORT: port,
            CONF_MAIN_BREAKER_KW: main_kw,
            CONF_PHASES: 3,
            CONF_VOLTAGE: 230.0,
            CONF_FAILSAFE_A: 6.0,
            CONF_UNKNOWN_POLICY: policy,
        },
        subentries_data=subentries,
        entry_id=entry_id,
        options=options or {},
    )


# Increases spaced 10 s apart (a site option) would slow tests that move simulated hours
# in real seconds; the spacing is tested with real time in tests/csms/test_controller.py
# and the option in test_config_flow.py.
NO_SPACING: dict[str, Any] = {"min_increase_interval_s": 0.0}


async def budget_site(
    hass: HomeAssistant, port: int, budget: dict[str, Any]
) -> MockConfigEntry:
    """Set up a site whose 11 kW panel "home" has the `budget` settings, CP-1 under it."""
    home = panel("home", "Home", 11.0)
    home["data"] = {**home["data"], **budget}
    entry = site_entry(port, [home, charger("CP-1", "home")], options=NO_SPACING)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


@asynccontextmanager
async def chargers(
    port: int, *ids: str, version: str = "1.6", **kwargs: Any
) -> AsyncIterator[list[SimulatedCharger]]:
    """Connect simulated chargers to the site and stop them afterwards."""
    sims = [
        SimulatedCharger(cid, f"ws://127.0.0.1:{port}", version=version, **kwargs)
        for cid in ids
    ]
    try:
        for sim in sims:
            await sim.start()
        yield sims
    finally:
        for sim in sims:
            await sim.stop()


async def state_when(
    hass: HomeAssistant,
    entity_id: str,
    predicate: Callable[[State], bool],
    timeout: float = 5.0,
) -> State:
    """Return the entity's state once `predicate` holds: now or at a later change."""
    future: asyncio.Future[State] = asyncio.get_running_loop().create_future()

    def check(state: State | None) -> None:
        if state is not None and not future.done() and predicate(state):
            future.set_result(state)

    @callback
    def changed(event: Event[EventStateChangedData]) -> None:
        check(event.data["new_state"])

    check(hass.states.get(entity_id))
    unsubscribe = async_track_state_change_event(hass, [entity_id], changed)
    try:
        async with asyncio.timeout(timeout):
            return await future
    finally:
        unsubscribe()


def last_tx_limit(sim: SimulatedCharger) -> float | None:
    """Return the last transaction limit the charger received (not a default)."""
    tx = [p for p in sim.received_profiles if p.purpose == "TxProfile"]
    return tx[-1].limit if tx else None


def tx_limit(sim: SimulatedCharger) -> float:
    """Return the last transaction limit the charger received, failing if none came."""
    limit = last_tx_limit(sim)
    assert limit is not None, f"{sim.charger_id} received no transaction limit"
    return limit


async def settle_limits(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Let every call to the chargers finish: moving time also fires call timeouts."""
    await hass.async_block_till_done()
    server = entry.runtime_data.server
    await until(
        lambda: all(
            state.limit_sent.get(c) == state.limit_acked.get(c)
            for state in server.chargers.values()
            for c in state.limit_sent
        )
    )
    await asyncio.sleep(0.1)


async def move_time(
    hass: HomeAssistant, entry: MockConfigEntry, when: datetime
) -> None:
    """Settle the chargers' calls, then move Home Assistant's clock to `when`."""
    await settle_limits(hass, entry)
    async_fire_time_changed(hass, when)
    await hass.async_block_till_done()
