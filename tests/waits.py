"""Waits for tests, without Home Assistant (the engine, server and control tests use it).

Wait for what a test needs with an event where there is one (`EventLog.until` in
tests/csms/conftest.py, a simulator's `wait_for_profile`, `wait_for_call`,
`wait_closed`); `until` is for conditions nothing announces.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until `predicate()` is true, letting the server and HA work."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)
