"""The typed state and limit helpers of tests/common.py fail a test instead of hiding None."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
import pytest

from tools.simulator import SimulatedCharger

from .common import state_of, tx_limit, value_of


async def test_state_of_returns_the_state_or_fails(hass: HomeAssistant) -> None:
    hass.states.async_set("sensor.house", "2000", {"unit_of_measurement": "W"})
    state = state_of(hass, "sensor.house")
    assert state.entity_id == "sensor.house"
    assert state.attributes["unit_of_measurement"] == "W"
    assert value_of(hass, "sensor.house") == "2000"
    with pytest.raises(AssertionError, match=r"sensor\.absent has no state"):
        state_of(hass, "sensor.absent")
    with pytest.raises(AssertionError, match=r"sensor\.absent has no state"):
        value_of(hass, "sensor.absent")


def test_tx_limit_fails_when_no_limit_came() -> None:
    """A charger that received nothing fails the test; `last_tx_limit` says None."""
    sim = SimulatedCharger("CP-1", "ws://127.0.0.1:9")
    assert sim.received_profiles == []
    with pytest.raises(AssertionError, match="CP-1 received no transaction limit"):
        tx_limit(sim)
