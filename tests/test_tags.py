"""Tags: subentries of the site, what chargers are told, local lists, tag events."""

from __future__ import annotations

import functools
from typing import Any

from homeassistant.config_entries import (
    SOURCE_INTEGRATION_DISCOVERY,
    SOURCE_RECONFIGURE,
    SOURCE_USER,
    ConfigSubentryDataWithId,
)
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
)

from custom_components.smart_charge.const import DOMAIN
from custom_components.smart_charge.diagnostics import (
    async_get_config_entry_diagnostics,
)
from custom_components.smart_charge.tag_config import (
    CONF_ALLOWED_CHARGERS,
    CONF_PERSON,
    CONF_TAG_ID,
    CONF_TAG_NAME,
    CONF_TAG_POLICY,
    CONF_VALID_UNTIL,
    EVENT_TAG_SEEN,
    SUBENTRY_TAG,
)
from tools.simulator import SimulatedCharger

from .common import charger, chargers, site_entry, until

pytestmark = pytest.mark.usefixtures("socket_enabled")


def tag(
    subentry_id: str,
    name: str,
    id_tag: str,
    *,
    person: str | None = None,
    allowed: list[str] | None = None,
    valid_until: str | None = None,
) -> ConfigSubentryDataWithId:
    """Return a tag subentry."""
    data: dict[str, Any] = {CONF_TAG_NAME: name, CONF_TAG_ID: id_tag}
    if person:
        data[CONF_PERSON] = person
    if allowed:
        data[CONF_ALLOWED_CHARGERS] = allowed
    if valid_until:
        data[CONF_VALID_UNTIL] = valid_until
    return ConfigSubentryDataWithId(
        data=data,
        subentry_id=subentry_id,
        subentry_type=SUBENTRY_TAG,
        title=name,
        unique_id=id_tag.casefold(),
    )


_until = functools.partial(until, timeout=5.0)


def _offers(hass: HomeAssistant) -> int:
    return len(
        [
            f
            for f in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            if f["step_id"] == "tag_confirm"
        ]
    )


def _in_transaction(sim: SimulatedCharger) -> bool:
    """Return whether connector 1 is in a transaction (a call: read anew each time)."""
    return sim.connectors[1].in_transaction


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def test_known_tag_accepted_unknown_refused(
    hass: HomeAssistant, free_port: int
) -> None:
    """Under *known tags only* a configured card charges and a stranger does not."""
    entry = site_entry(
        free_port,
        [
            charger("CP-1"),
            charger("CP-2"),
            tag("tagalice", "Alice's card", "ALICE-1", person="Alice"),
            tag("tagbob", "Bob", "BOB-1", allowed=["CP-2"]),
            tag("tagold", "Old", "OLD-1", valid_until="2020-01-31"),
        ],
        options={CONF_TAG_POLICY: "known_only"},
    )
    await _setup(hass, entry)
    seen = async_capture_events(hass, EVENT_TAG_SEEN)
    async with chargers(free_port, "CP-1") as (cp1,):
        assert await cp1.authorize("alice-1") == "Accepted"  # case does not matter
        assert await cp1.authorize("EVE") == "Invalid"  # 1.6 has no Unknown
        assert await cp1.authorize("BOB-1") == "Invalid"  # not allowed at CP-1
        assert await cp1.authorize("OLD-1") == "Expired"
        await cp1.plug_in(id_tag="EVE")
        await _until(
            lambda: any(a[0] == "StartTransaction" for a in cp1.authorizations)
        )
        assert ("StartTransaction", "EVE", "Invalid") in cp1.authorizations
    await hass.async_block_till_done()
    first = seen[0].data
    assert first["charger_id"] == "CP-1"
    assert first["id_tag"] == "alice-1"
    assert first["accepted"] is True
    assert (first["name"], first["person"]) == ("Alice's card", "Alice")
    assert [(e.data["id_tag"], e.data["accepted"]) for e in seen[1:]] == [
        ("EVE", False),
        ("BOB-1", False),
        ("OLD-1", False),
        ("EVE", False),
    ]
    assert seen[-1].data["action"] == "StartTransaction"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_accept_any_is_the_default(hass: HomeAssistant, free_port: int) -> None:
    entry = site_entry(free_port, [charger("CP-1")])
    await _setup(hass, entry)
    async with chargers(free_port, "CP-1", version="2.0.1", local_list=True) as (cp1,):
        assert await cp1.authorize("ANYONE") == "Accepted"
        # No tags: the charger's own local list is left alone.
        await hass.async_block_till_done(wait_background_tasks=True)
        assert not [f for f in cp1.frames if f[0] == 2 and f[2] == "SendLocalList"]
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_ask_offers_to_add_an_unknown_tag(
    hass: HomeAssistant, free_port: int
) -> None:
    """*Ask*: an unknown tag is refused and a discovery flow offers to add it."""
    entry = site_entry(free_port, [charger("CP-1")], options={CONF_TAG_POLICY: "ask"})
    await _setup(hass, entry)
    server = entry.runtime_data.server
    async with chargers(free_port, "CP-1", version="2.0.1") as (cp1,):
        assert await cp1.authorize("GUEST-7") == "Unknown"
        assert await cp1.authorize("GUEST-7") == "Unknown"
        await hass.async_block_till_done()
        flows = [
            f
            for f in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
            if f["step_id"] == "tag_confirm"
        ]
        assert len(flows) == 1  # one flow, however often the card is presented
        assert flows[0]["context"]["source"] == SOURCE_INTEGRATION_DISCOVERY
        configure = hass.config_entries.flow.async_configure
        result = await configure(flows[0]["flow_id"], {CONF_TAG_NAME: " "})
        assert result["errors"] == {CONF_TAG_NAME: "name_required"}
        result = await configure(
            flows[0]["flow_id"], {CONF_TAG_NAME: "Guest", CONF_PERSON: "Visitor"}
        )
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "tag_added"
        await hass.async_block_till_done()
        # Added live: the same server answers, now with the new tag.
        assert entry.runtime_data.server is server
        assert await cp1.authorize("GUEST-7") == "Accepted"

        # An offer closes by itself when the tag is added another way.
        assert await cp1.authorize("GUEST-8") == "Unknown"
        await hass.async_block_till_done()
        assert _offers(hass) == 1
        subflow = await hass.config_entries.subentries.async_init(
            (entry.entry_id, SUBENTRY_TAG), context={"source": SOURCE_USER}
        )
        await hass.config_entries.subentries.async_configure(
            subflow["flow_id"], {CONF_TAG_NAME: "Guest 8", CONF_TAG_ID: "GUEST-8"}
        )
        await hass.async_block_till_done()
        assert _offers(hass) == 0
    added = next(s for s in entry.subentries.values() if s.title == "Guest")
    assert dict(added.data) == {
        CONF_TAG_NAME: "Guest",
        CONF_TAG_ID: "GUEST-7",
        CONF_PERSON: "Visitor",
    }
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_tag_subentry_flow(hass: HomeAssistant, free_port: int) -> None:
    entry = site_entry(
        free_port, [charger("CP-1"), charger("CP-2"), tag("tagalice", "Alice", "A-1")]
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_TAG), context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    configure = hass.config_entries.subentries.async_configure
    for bad, error in (
        ({CONF_TAG_NAME: "", CONF_TAG_ID: "B-1"}, {CONF_TAG_NAME: "name_required"}),
        ({CONF_TAG_NAME: "B", CONF_TAG_ID: "X" * 37}, {CONF_TAG_ID: "invalid_tag"}),
        ({CONF_TAG_NAME: "B", CONF_TAG_ID: "a-1"}, {CONF_TAG_ID: "duplicate_tag"}),
    ):
        result = await configure(result["flow_id"], bad)
        assert result["errors"] == error
    result = await configure(
        result["flow_id"],
        {
            CONF_TAG_NAME: "Bob",
            CONF_TAG_ID: " B-1 ",
            CONF_PERSON: "Company car",
            CONF_ALLOWED_CHARGERS: ["CP-2"],
            "priority": 3,
            CONF_VALID_UNTIL: "2030-12-31",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    created = next(s for s in entry.subentries.values() if s.title == "Bob")
    assert dict(created.data) == {
        CONF_TAG_NAME: "Bob",
        CONF_TAG_ID: "B-1",
        CONF_PERSON: "Company car",
        CONF_ALLOWED_CHARGERS: ["CP-2"],
        "priority": 3,
        CONF_VALID_UNTIL: "2030-12-31",
    }
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_TAG),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": created.subentry_id},
    )
    assert result["step_id"] == "reconfigure"
    result = await configure(
        result["flow_id"], {CONF_TAG_NAME: "Bob", CONF_TAG_ID: "A-1"}
    )
    assert result["errors"] == {CONF_TAG_ID: "duplicate_tag"}
    result = await configure(
        result["flow_id"], {CONF_TAG_NAME: "Bob B", CONF_TAG_ID: "B-1"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.subentries[created.subentry_id].title == "Bob B"
    assert entry.subentries[created.subentry_id].data == {
        CONF_TAG_NAME: "Bob B",
        CONF_TAG_ID: "B-1",
    }


async def test_local_list_reaches_16_and_201_chargers(
    hass: HomeAssistant, free_port: int
) -> None:
    """The list goes out at boot and when tags change; offline the chargers use it."""
    entry = site_entry(
        free_port,
        [
            charger("CP-16"),
            charger("CP-201"),
            charger("CP-X"),
            tag("tagalice", "Alice", "ALICE-1", allowed=["CP-16"]),
        ],
        options={CONF_TAG_POLICY: "known_only"},
    )
    await _setup(hass, entry)
    cp16 = SimulatedCharger(
        "CP-16", f"ws://127.0.0.1:{free_port}", version="1.6", local_list=True
    )
    cp201 = SimulatedCharger(
        "CP-201", f"ws://127.0.0.1:{free_port}", version="2.0.1", local_list=True
    )
    plain = SimulatedCharger("CP-X", f"ws://127.0.0.1:{free_port}", version="1.6")
    try:
        for sim in (cp16, cp201, plain):
            await sim.start()
        await _until(
            lambda: cp16.local_list_version == 1 and cp201.local_list_version == 1
        )
        assert cp16.local_status("ALICE-1") == "Accepted"
        assert cp201.local_status("ALICE-1") == "Invalid"  # not allowed there
        frame16 = await cp16.wait_for_call("SendLocalList")
        assert frame16[3]["listVersion"] == 1
        frame201 = await cp201.wait_for_call("SendLocalList")
        assert frame201[3]["versionNumber"] == 1
        assert frame201[3]["localAuthorizationList"][0]["idToken"] == {
            "idToken": "ALICE-1",
            "type": "ISO14443",
        }

        # A new tag: both lists are replaced (version 2), nothing restarts.
        server = entry.runtime_data.server
        result = await hass.config_entries.subentries.async_init(
            (entry.entry_id, SUBENTRY_TAG), context={"source": SOURCE_USER}
        )
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {CONF_TAG_NAME: "Bob", CONF_TAG_ID: "BOB-1"}
        )
        await _until(
            lambda: cp16.local_list_version == 2 and cp201.local_list_version == 2
        )
        assert entry.runtime_data.server is server
        assert cp201.local_status("BOB-1") == "Accepted"
        lists = entry.runtime_data.tags.lists
        await _until(
            lambda: {c: s.version for c, s in lists.items()}
            == {"CP-16": 2, "CP-201": 2}
        )
        diagnostics = await async_get_config_entry_diagnostics(hass, entry)
        assert diagnostics["local_lists"] == {"CP-16": 2, "CP-201": 2}
        # A charger without a local list was asked, and is sent none.
        await plain.wait_for_call("GetConfiguration")
        assert not [f for f in plain.frames if f[0] == 2 and f[2] == "SendLocalList"]

        # A reconnect with the same list sends nothing new.
        def calls(action: str) -> int:
            return len([f for f in cp16.frames if f[0] == 2 and f[2] == action])

        sent, asked = calls("SendLocalList"), calls("GetLocalListVersion")
        await cp16.reconnect()
        await _until(lambda: calls("GetLocalListVersion") > asked)
        await hass.async_block_till_done(wait_background_tasks=True)
        assert calls("SendLocalList") == sent

        # Home Assistant goes away: the chargers decide from their lists.
        assert await hass.config_entries.async_unload(entry.entry_id)
        await _until(lambda: not cp16.connected and not cp201.connected)
        assert await cp16.swipe("EVE") == "Unknown"
        assert not _in_transaction(cp16)
        assert await cp16.swipe("ALICE-1") == "Accepted"
        assert _in_transaction(cp16)
        assert await cp201.swipe("ALICE-1") == "Invalid"
        assert await cp201.swipe("BOB-1") == "Accepted"
    finally:
        for sim in (cp16, cp201, plain):
            await sim.stop()


async def test_tag_priority_weights_its_sessions(
    hass: HomeAssistant, free_port: int
) -> None:
    """Under the priority strategy a session gets its tag's priority (3 against 1)."""
    garage = ConfigSubentryDataWithId(
        data={
            "name": "Garage",
            "limit_kw": 22.0,
            "parent": "main",
            "strategy": "priority",
        },
        subentry_id="garage",
        subentry_type="panel",
        title="Garage",
        unique_id=None,
    )
    entry = site_entry(
        free_port,
        [
            garage,
            charger("CP-1", "garage", max_a=32.0),
            charger("CP-2", "garage", max_a=32.0),
            tag("tagvip", "VIP", "VIP-1"),
            tag("tagguest", "Guest", "GUEST-1"),
        ],
    )
    await _setup(hass, entry)
    # The VIP tag gets priority 3, live (the chargers keep their default 1).
    vip = entry.subentries["tagvip"]
    hass.config_entries.async_update_subentry(
        entry, vip, data={**vip.data, "priority": 3}
    )
    await hass.async_block_till_done()
    assert entry.runtime_data.tags.session_priority("CP-1", "vip-1") == 3

    def last(sim: SimulatedCharger) -> float | None:
        tx = [p for p in sim.received_profiles if p.purpose == "TxProfile"]
        return tx[-1].limit if tx else None

    async with chargers(free_port, "CP-1", "CP-2") as (cp1, cp2):
        await cp1.plug_in(id_tag="VIP-1")
        await cp2.plug_in(id_tag="GUEST-1")
        await _until(
            lambda: (a := last(cp1)) is not None
            and (b := last(cp2)) is not None
            and b > 0
            and abs(a / b - 3) < 0.05
        )
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_options_set_the_tag_policy_and_history(
    hass: HomeAssistant, free_port: int
) -> None:
    entry = site_entry(free_port, [charger("CP-1")])
    await _setup(hass, entry)
    assert entry.runtime_data.tags.policy == "accept_any"
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            "increase_dead_band_a": 0.5,
            "min_increase_interval_s": 10,
            "call_timeout_s": 10,
            CONF_TAG_POLICY: "known_only",
            "cost_price_sensor": "sensor.price",
            "history_days": 31,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options[CONF_TAG_POLICY] == "known_only"
    assert entry.options["cost_price_sensor"] == "sensor.price"
    await hass.async_block_till_done()
    site = entry.runtime_data  # reloaded with the options
    assert site.tags.policy == "known_only"
    assert site.history.price_sensor == "sensor.price"
    assert site.history.keep.days == 31
    async with chargers(free_port, "CP-1") as (cp1,):
        assert await cp1.authorize("STRANGER") == "Invalid"
    assert await hass.config_entries.async_unload(entry.entry_id)
