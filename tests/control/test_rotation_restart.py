"""The rotation of paused cars survives a restart (#15: the turn order is stored).

Real server and controller, real ocpp clients over loopback (`safety_rig.py`): three
three-phase cars with room for the minimums of two take turns; after a turn has gone
round, the exported state names the turn order, and a controller restarted from it
keeps that order instead of starting over with the first car that arrived.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import json

import pytest

from custom_components.smart_charge.control import SiteController
from custom_components.smart_charge.control.persistence import (
    export_rotation,
    import_rotation,
)
from custom_components.smart_charge.engine import Panel
from tests.control.safety_rig import ChargerSpec, SafetyRig
from tests.waits import until

pytestmark = pytest.mark.usefixtures("socket_enabled")

PERIOD_S = 0.3


@pytest.fixture
async def rig() -> AsyncIterator[SafetyRig]:
    # 10 kW x 0.95 = 9.5 kW: two minimums of 6 A x 690 V = 4.14 kW fit, three do not.
    site = SafetyRig([Panel(id="main", limit_kw=10.0)], rotation_period_s=PERIOD_S)
    await site.start()
    yield site
    await site.close()


def test_rotation_data_round_trip() -> None:
    turn = {"b#1": 5.0, "a#1": 7.0, "c#1": 6.0}
    data = json.loads(json.dumps(export_rotation(turn, {"c#1": 4.0}, {"c#1"}, 10.0)))
    assert data == {
        "order": ["b#1", "c#1", "a#1"],
        "waited_s": {"c#1": 6.0},
        "due": ["c#1"],
    }
    restored, waiting, due = import_rotation(data, 100.0)
    assert sorted(restored, key=restored.__getitem__) == ["b#1", "c#1", "a#1"]
    # Before anyone who joins later (at the loop time of then, at least 100).
    assert max(restored.values()) < 100.0
    assert waiting == {"c#1": 94.0}
    assert due == {"c#1"}
    # Older stored data has no rotation; what cannot be read is left out.
    assert import_rotation(None, 1.0) == ({}, {}, set())
    assert import_rotation({"order": "x", "waited_s": {"a": "?"}, "due": 3}, 1.0) == (
        {},
        {},
        set(),
    )


async def test_turn_order_survives_a_restart(rig: SafetyRig) -> None:
    chargers = [
        await rig.add(ChargerSpec("CP1", "main", version="1.6")),
        await rig.add(ChargerSpec("CP2", "main", version="2.0.1")),
        await rig.add(ChargerSpec("CP3", "main", version="2.1")),
    ]
    for charger in chargers:
        await charger.plug_in()
        await rig.settle()
    arrival = rig.controller.rotation_order()
    assert [key.split("#")[0] for key in arrival] == ["CP1", "CP2", "CP3"]
    assert chargers[2].limit_in_force(1) == 0.0  # no room: it waits for its turn

    # One boundary later the two that ran a full turn go behind the waiting car.
    await until(lambda: chargers[2].limit_in_force(1) > 0.0, 3 * PERIOD_S + 2.0)
    await rig.settle()
    order = rig.controller.rotation_order()
    assert order[0].startswith("CP3")
    assert order != arrival

    stored = json.loads(json.dumps(rig.controller.export_state()))
    assert stored["rotation"]["order"] == order
    restarted = SiteController(
        rig.server, rig.site, rig.configs(), rotation_period_s=PERIOD_S
    )
    try:
        restarted.import_state(stored)
        assert restarted.rotation_order() == order
        # Without the rotation (data stored before it was kept) it starts over.
        fresh = SiteController(
            rig.server, rig.site, rig.configs(), rotation_period_s=PERIOD_S
        )
        try:
            fresh.import_state({k: v for k, v in stored.items() if k != "rotation"})
            assert fresh.rotation_order() == []
        finally:
            await fresh.stop()
    finally:
        await restarted.stop()
    assert not rig.violations, "\n".join(map(str, rig.violations))
