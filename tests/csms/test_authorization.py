"""The owner's authorization hook, TagSeen events and the local authorization list."""

from __future__ import annotations

from asyncio import timeout as asyncio_timeout
from datetime import UTC, datetime, timedelta

import pytest

from custom_components.smart_charge.csms import (
    AuthorizationResult,
    AuthorizationStatus,
    CentralSystem,
    LocalListEntry,
    ServerConfig,
    TagSeen,
    TransactionStarted,
)
from tools.simulator import SimulatedCharger

from .conftest import EventLog, SimFactory

KNOWN = "CARD-1"
UNTIL = datetime(2030, 1, 1, tzinfo=UTC)


def _owner(charger_id: str, id_tag: str) -> AuthorizationResult:
    if id_tag == KNOWN:
        return AuthorizationResult(AuthorizationStatus.ACCEPTED, UNTIL)
    if id_tag == "BLOCKED":
        return AuthorizationResult(AuthorizationStatus.BLOCKED)
    return AuthorizationResult(AuthorizationStatus.UNKNOWN)


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_default_accepts_every_tag(
    make_charger: SimFactory, event_log: EventLog, version: str
) -> None:
    sim = await make_charger("CP-A", version=version)
    assert await sim.authorize("ANY") == "Accepted"
    seen = await event_log.wait_for(TagSeen)
    assert seen == TagSeen("CP-A", "ANY", True, "Accepted", "Authorize", None)


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_hook_answers_authorize_and_start(
    make_charger: SimFactory,
    server: CentralSystem,
    event_log: EventLog,
    version: str,
) -> None:
    server.set_authorizer(_owner)
    sim = await make_charger("CP-H", version=version)
    assert await sim.authorize(KNOWN) == "Accepted"
    # 1.6 has no Unknown: an unknown tag is Invalid there.
    unknown = "Invalid" if version == "1.6" else "Unknown"
    assert await sim.authorize("STRANGER") == unknown
    assert await sim.authorize("BLOCKED") == "Blocked"
    await sim.plug_in(id_tag="STRANGER")
    await event_log.wait_for(TransactionStarted)
    start_action = "StartTransaction" if version == "1.6" else "TransactionEvent"
    assert (start_action, "STRANGER", unknown) in sim.authorizations
    seen = [e for e in event_log.of(TagSeen) if e.action == start_action]
    # The event carries the owner's answer (Unknown), whatever the wire spelling.
    assert seen == [TagSeen("CP-H", "STRANGER", False, "Unknown", start_action, 1)]
    # The expiry travels with the answer (1.6 expiryDate, 2.x cacheExpiryDateTime).
    answers = [f for f in sim.frames if f[0] == 3 and "idTagInfo" in str(f[2])] or [
        f for f in sim.frames if f[0] == 3 and "idTokenInfo" in str(f[2])
    ]
    assert "2030-01-01T00:00:00Z" in str(answers[0])


async def test_failing_hook_refuses(
    make_charger: SimFactory, server: CentralSystem
) -> None:
    def broken(charger_id: str, id_tag: str) -> AuthorizationResult:
        raise RuntimeError("bug")

    server.set_authorizer(broken)
    sim = await make_charger("CP-B")
    assert await sim.authorize(KNOWN) == "Invalid"


@pytest.mark.parametrize("version", ["1.6", "2.0.1", "2.1"])
async def test_local_list_reaches_the_charger(
    make_charger: SimFactory, server: CentralSystem, version: str
) -> None:
    sim: SimulatedCharger = await make_charger("CP-L", version=version, local_list=True)
    assert await server.local_list_supported("CP-L")
    assert await server.get_local_list_version("CP-L") == 0
    entries = [
        LocalListEntry(KNOWN, AuthorizationStatus.ACCEPTED, UNTIL),
        LocalListEntry("OLD", AuthorizationStatus.BLOCKED),
    ]
    assert await server.send_local_list("CP-L", 7, entries) == "Accepted"
    assert await server.get_local_list_version("CP-L") == 7
    assert sim.local_list_version == 7
    assert sim.local_status(KNOWN) == "Accepted"
    assert sim.local_status("OLD") == "Blocked"
    assert sim.local_status("STRANGER") == "Unknown"
    frame = await sim.wait_for_call("SendLocalList")
    key = "listVersion" if version == "1.6" else "versionNumber"
    assert frame[3][key] == 7
    assert frame[3]["updateType"] == "Full"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
async def test_no_local_list_support(
    make_charger: SimFactory, server: CentralSystem, version: str
) -> None:
    await make_charger("CP-N", version=version)
    assert not await server.local_list_supported("CP-N")


def charging(sim: SimulatedCharger, connector_id: int = 1) -> bool:
    """Whether the connector is in a transaction (read afresh after each await)."""
    return sim.connectors[connector_id].in_transaction


async def test_charger_uses_its_list_while_the_server_is_down(
    socket_enabled: None, event_log: EventLog
) -> None:
    central = CentralSystem(
        ServerConfig(host="127.0.0.1", port=0, call_timeout_s=2.0),
        event_log,
        authorize=_owner,
    )
    await central.start()
    port = central.port
    sim = SimulatedCharger(
        "CP-OFF", f"ws://127.0.0.1:{port}", version="2.0.1", local_list=True
    )
    await sim.start()
    try:
        await central.send_local_list(
            "CP-OFF", 1, [LocalListEntry(KNOWN, expiry=UNTIL)]
        )
        await central.stop()
        async with asyncio_timeout(5):
            await sim.wait_closed()
        assert not sim.connected
        # Offline: the known card starts charging, a stranger is refused.
        assert await sim.swipe("STRANGER") == "Unknown"
        assert not charging(sim)
        assert await sim.swipe(KNOWN) == "Accepted"
        assert charging(sim)
        expired = SimulatedCharger(
            "X",
            "ws://127.0.0.1:1",
            clock=lambda: UNTIL + timedelta(days=1),
        )
        expired.local_list = dict(sim.local_list)
        assert expired.local_status(KNOWN) == "Expired"
    finally:
        await sim.stop()
        await central.stop()


def test_result_shapes() -> None:
    result = AuthorizationResult(AuthorizationStatus.UNKNOWN, UNTIL)
    assert result.id_tag_info() == {
        "status": "Invalid",
        "expiry_date": "2030-01-01T00:00:00Z",
    }
    assert result.id_token_info() == {
        "status": "Unknown",
        "cache_expiry_date_time": "2030-01-01T00:00:00Z",
    }
    assert not result.accepted
    long_tag = LocalListEntry("X" * 40)
    assert len(long_tag.as_16()["id_tag"]) == 20
    assert len(long_tag.as_2x()["id_token"]["id_token"]) == 36
