"""Fan-out of limits: the frames stay schema-valid and the sends keep a window.

The controller's profiles skip the library's request validation (it is the costliest
step of a call); these tests check every SetChargingProfile frame the server wrote
against the library's own schemas, and that a malformed answer is still refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
import decimal
import json
from typing import Any

from ocpp.messages import MessageType, get_validator
import pytest
import websockets
from websockets.typing import Subprotocol

from custom_components.smart_charge.control import SEND_WINDOW
from custom_components.smart_charge.csms import CallRejectedError, CentralSystem
from tests.control.conftest import Rig
from tests.csms.conftest import EventLog

pytestmark = pytest.mark.usefixtures("socket_enabled")


def _profile_frames(rig: Rig) -> list[tuple[str, list[Any]]]:
    """Return (OCPP version, frame) of every SetChargingProfile the server sent."""
    frames: list[tuple[str, list[Any]]] = []
    for state in rig.server.chargers.values():
        assert state.ocpp_version is not None
        for direction, text in state.recent_frames:
            if direction != "out":
                continue
            # 1.6 limits are `multipleOf 0.1`: the library parses them as Decimal.
            frame = json.loads(text, parse_float=decimal.Decimal)
            if frame[0] == MessageType.Call and frame[2] == "SetChargingProfile":
                frames.append((state.ocpp_version, frame))
    return frames


async def test_every_profile_frame_is_schema_valid(
    rig_factory: Callable[..., Awaitable[Rig]],
) -> None:
    rig = await rig_factory(30.0, failsafe_current_a=6.0)
    chargers = {
        "V16": await rig.add("V16", version="1.6"),
        "V201": await rig.add("V201", version="2.0.1"),
        "V21": await rig.add("V21", version="2.0.1", subprotocols=["ocpp2.1"]),
        "WATTS": await rig.add("WATTS", version="2.0.1", rate_units="Power"),
        "W16": await rig.add("W16", version="1.6", rate_units="Power"),
        "DEFAULT": await rig.add(
            "DEFAULT", version="2.0.1", reject_purposes={"TxProfile"}
        ),
    }
    for charger in chargers.values():
        await charger.plug_in()
    await rig.controller.rebalance()
    # Down, then up again: decreases and increases, amps and watts, Tx and TxDefault.
    configs = dict(rig.controller.chargers)
    capped = {**configs, "V16": replace(configs["V16"], max_current_a=6.5)}
    rig.controller.update_site(rig.site, capped)
    await rig.controller.rebalance()
    rig.controller.update_site(rig.site, configs)
    await rig.controller.rebalance()

    frames = _profile_frames(rig)
    assert {version for version, _ in frames} == {"1.6", "2.0.1", "2.1"}
    assert len(frames) >= 12
    for version, frame in frames:
        validator = get_validator(
            MessageType.Call,
            "SetChargingProfile",
            version,
            parse_float=decimal.Decimal if version == "1.6" else float,
        )
        errors = [error.message for error in validator.iter_errors(frame[3])]
        assert not errors, (version, frame, errors)
    # And every charger took its limit (a charger answers a bad frame with a CALLERROR).
    assert set(rig.limits()) == set(chargers)


@pytest.mark.parametrize(
    ("answer", "accepted"),
    [
        ({"status": "Accepted"}, True),
        ({"status": "Bogus"}, False),
        ({"status": "Accepted", "surprise": 1}, False),
        ({}, False),
        ({"status": 1}, False),
    ],
)
async def test_prebuilt_profile_answer_is_still_validated(
    server: CentralSystem, event_log: EventLog, answer: dict[str, Any], accepted: bool
) -> None:
    async with websockets.connect(
        f"ws://127.0.0.1:{server.port}/RAW",
        subprotocols=[Subprotocol("ocpp2.0.1")],
    ) as ws:
        await event_log.until(lambda: server.connected("RAW"))
        profile = {
            "id": 1,
            "stackLevel": 0,
            "chargingProfilePurpose": "TxDefaultProfile",
            "chargingProfileKind": "Absolute",
            "chargingSchedule": [
                {
                    "id": 1,
                    "startSchedule": "2025-01-01T00:00:00.000Z",
                    "chargingRateUnit": "A",
                    "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.0}],
                }
            ],
        }
        sending = asyncio.create_task(
            server.set_charging_profile("RAW", 1, profile, prebuilt=True)
        )
        async with asyncio.timeout(5):
            call = json.loads(await ws.recv())
        assert call[2] == "SetChargingProfile"
        await ws.send(json.dumps([3, call[1], answer]))
        if accepted:
            assert await sending == "Accepted"
            assert server.chargers["RAW"].limit_acked[1].limit == 6.0
        else:
            with pytest.raises(CallRejectedError) as err:
                await sending
            assert err.value.charger_id == "RAW"
            assert 1 not in server.chargers["RAW"].limit_acked


async def test_fan_out_keeps_a_window_and_decreases_first(
    rig_factory: Callable[..., Awaitable[Rig]],
) -> None:
    count = SEND_WINDOW + 8
    rig = await rig_factory(count * 11.0)
    chargers = [
        await rig.add(f"W{i:02d}", version="1.6" if i % 2 else "2.0.1")
        for i in range(count)
    ]
    for charger in chargers:
        await charger.plug_in()
    await rig.controller.rebalance()
    # Every session has its first limit before the change (on a loaded machine a
    # start may be handled after the first rebalance).
    for charger in chargers:
        await charger.wait_for_profile(lambda p: p.purpose == "TxProfile")
    await rig.controller.rebalance()
    for charger in chargers:
        charger.profile_delay_s = 0.05
    sent = {id(charger): len(charger.received_profiles) for charger in chargers}
    # Half the chargers are capped (decreases), the others take the power (increases).
    configs = dict(rig.controller.chargers)
    for charger_id in list(configs)[::2]:
        configs[charger_id] = replace(configs[charger_id], max_current_a=8.0)
    rig.controller.update_site(rig.site, configs)
    await rig.controller.rebalance()

    # (received, answered, limit, the limit it replaced)
    spans: list[tuple[float, float, float, float]] = []
    for charger in chargers:
        before = charger.received_profiles[: sent[id(charger)]]
        previous = next(p.limit for p in reversed(before) if p.purpose == "TxProfile")
        for profile in charger.received_profiles[sent[id(charger)] :]:
            answered = charger.profile_answered_at[profile.sequence]
            spans.append((profile.received_at, answered, profile.limit, previous))
            previous = profile.limit
    assert len(spans) == count
    in_flight = max(
        sum(1 for start, end, _, _ in spans if start <= moment < end)
        for moment, _, _, _ in spans
    )
    assert 1 < in_flight <= SEND_WINDOW
    decreases = [end for _, end, limit, old in spans if limit < old]
    increases = [start for start, _, limit, old in spans if limit > old]
    assert decreases
    assert increases
    assert min(increases) >= max(decreases)
