"""The simulator against the real server: the OCPP server test fixtures, and a clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.csms.conftest import EventLog, SimFactory, event_log, make_charger, server

__all__ = ["EventLog", "FakeClock", "SimFactory", "event_log", "make_charger", "server"]


class FakeClock:
    """A charger's clock that tests move forward."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
