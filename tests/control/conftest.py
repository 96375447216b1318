"""Fixtures for the control tests: a real server and controller, real ocpp clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from custom_components.smart_charge.control import ChargerConfig, SiteController
from custom_components.smart_charge.csms import (
    CentralSystem,
    ChargerDisconnected,
    ChargerEvent,
    ServerConfig,
)
from custom_components.smart_charge.engine import Panel, Site
from tests.csms.conftest import (  # noqa: F401 - fixtures shared with the server tests
    EventLog,
    SimFactory,
    event_log,
    make_charger,
    server,
)
from tools.simulator import ReceivedProfile, SimulatedCharger

VOLTS_3P = 230 * 3


class Rig:
    """A server, a controller over one panel, and simulated chargers."""

    def __init__(self, limit_kw: float, **server_options: Any) -> None:
        self.site = Site(panels=[Panel(id="main", limit_kw=limit_kw)], voltage_v=230)
        self.budget_w = limit_kw * 1000 * 0.95
        self.changes = 0
        self.disconnected = asyncio.Event()
        self.events = EventLog()
        boot_default_a = float(server_options.pop("failsafe_current_a", None) or 0.0)
        options: dict[str, Any] = {"call_timeout_s": 1.0, **server_options}
        self.server = CentralSystem(
            ServerConfig(host="127.0.0.1", port=0, **options), self._event
        )
        self.controller = SiteController(
            self.server,
            self.site,
            {},
            on_change=self._changed,
            on_report=self.events,
            boot_default_a=boot_default_a,
        )
        self.chargers: dict[str, SimulatedCharger] = {}

    def _event(self, event: ChargerEvent) -> None:
        self.events(event)
        self.controller.handle_event(event)
        if isinstance(event, ChargerDisconnected):
            self.disconnected.set()

    def _changed(self) -> None:
        self.changes += 1

    async def add(self, charger_id: str, **kwargs: Any) -> SimulatedCharger:
        config_keys = {
            "managed",
            "max_current_a",
            "priority",
            "profile_purpose",
            "stack_level",
        }
        config = {k: kwargs.pop(k) for k in list(kwargs) if k in config_keys}
        configs = dict(self.controller.chargers)
        configs[charger_id] = ChargerConfig(charger_id, "main", **config)
        self.controller.update_site(self.site, configs)
        charger = SimulatedCharger(
            charger_id, f"ws://127.0.0.1:{self.server.port}", **kwargs
        )
        await charger.start()
        self.chargers[charger_id] = charger
        await self.controller.rebalance()
        return charger

    def limits(self) -> dict[str, float]:
        """The limit in force on each charging simulator (A per phase)."""
        return {
            cid: charger.limit_in_force(1)
            for cid, charger in self.chargers.items()
            if charger.connectors[1].transaction_id is not None
        }

    def held_w(self) -> float:
        return sum(limit * VOLTS_3P for limit in self.limits().values())


@pytest.fixture
async def rig_factory(
    socket_enabled: None,
) -> AsyncIterator[Callable[..., Awaitable[Rig]]]:
    rigs: list[Rig] = []

    async def factory(limit_kw: float, **server_options: Any) -> Rig:
        rig = Rig(limit_kw, **server_options)
        await rig.server.start()
        rigs.append(rig)
        return rig

    yield factory
    for rig in rigs:
        for charger in rig.chargers.values():
            await charger.stop()
        await rig.controller.stop()
        await rig.server.stop()


def tx(charger: SimulatedCharger) -> list[ReceivedProfile]:
    """Return the session limits a charger received (TxProfiles), in order.

    Besides them every managed charger gets its boot defaults and connector defaults
    (TxDefaultProfile) and a station ceiling; tests about session limits look at these.
    """
    return [p for p in charger.received_profiles if p.purpose == "TxProfile"]
