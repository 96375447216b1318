"""Stored runtime state: what cannot be read is dropped, the rest still loads."""

from __future__ import annotations

from typing import Any

from custom_components.smart_charge.runtime_state import RuntimeState


def test_broken_charger_infos_and_goals_are_left_out() -> None:
    data: dict[str, Any] = {
        "charger_info": {
            "CP-1": {"vendor": "ACME", "model": "Box", "firmware": "1.2"},
            "CP-2": {"model": "no vendor"},  # KeyError
            "CP-3": "not a dict",  # TypeError
        },
        "goals": {
            "CP-1": {"mode": "by_departure_cheapest", "energy_kwh": 12},
            "CP-2": {"energy_kwh": 5},  # no mode
            "CP-3": {"mode": "solar_only", "energy_kwh": "lots"},  # ValueError
            "CP-4": None,  # not a goal at all
        },
        "priorities": {"CP-1": "3"},
    }
    state = RuntimeState.from_dict(data)
    assert set(state.charger_info) == {"CP-1"}
    assert state.charger_info["CP-1"].vendor == "ACME"
    assert state.charger_info["CP-1"].firmware == "1.2"
    assert set(state.goals) == {"CP-1"}
    assert state.goals["CP-1"].energy_kwh == 12.0
    assert state.priorities == {"CP-1": 3}
    # What loads is what it saves again.
    again = RuntimeState.from_dict(state.as_dict())
    assert again.as_dict() == state.as_dict()


def test_parts_of_the_wrong_shape_load_as_empty() -> None:
    state = RuntimeState.from_dict({"charger_info": ["CP-1"], "goals": "CP-1"})
    assert state.charger_info == {}
    assert state.goals == {}
