"""Fixtures for the OCPP server tests: a real server on 127.0.0.1, real ocpp clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from custom_components.smart_charge.csms import CentralSystem, ServerConfig
from tools.simulator import SimulatedCharger


class EventLog:
    """Collects server events; tests await the ones they need."""

    def __init__(self) -> None:
        # Server events, and the control layer's reports where a rig logs those too.
        self.events: list[object] = []
        self._changed = asyncio.Event()

    def __call__(self, event: object) -> None:
        self.events.append(event)
        self._changed.set()

    def of(self, kind: type[Any]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    async def wait_for(
        self,
        kind: type[Any],
        predicate: Callable[[Any], bool] = lambda _: True,
        timeout: float = 5.0,
    ) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if isinstance(event, kind) and predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    async def until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Return once `condition()` holds: checked now and after each event.

        For the server's state that changes with an event: `connected()` changes
        just before ChargerConnected and ChargerDisconnected are sent.
        """
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def event_log() -> EventLog:
    return EventLog()


@pytest.fixture
async def server(
    socket_enabled: None, event_log: EventLog
) -> AsyncIterator[CentralSystem]:
    central = CentralSystem(
        ServerConfig(host="127.0.0.1", port=0, call_timeout_s=2.0), event_log
    )
    await central.start()
    yield central
    await central.stop()


SimFactory = Callable[..., Awaitable[SimulatedCharger]]


@pytest.fixture
async def make_charger(
    socket_enabled: None, server: CentralSystem
) -> AsyncIterator[SimFactory]:
    started: list[SimulatedCharger] = []

    async def factory(charger_id: str, **kwargs: Any) -> SimulatedCharger:
        charger = SimulatedCharger(
            charger_id, f"ws://127.0.0.1:{server.port}", **kwargs
        )
        await charger.start()
        started.append(charger)
        return charger

    yield factory
    for charger in started:
        await charger.stop()
