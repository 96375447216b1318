"""Tags at runtime: the server's authorization hook, tag events, local lists on chargers.

The OCPP server asks `SiteTags.authorize` for every tag; `handle_event` turns the
server's TagSeen into the `smart_charge_tag_seen` event (and, under the *ask* policy,
a discovery flow to add an unknown tag), and pushes the local authorization list to a
charger that booted. `async_tags_changed` pushes the new lists to every connected
charger. A list is sent as a Full update with a new version number whenever its
content changed; versions are kept per charger in a Store, so they only grow.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
import hashlib
import json
from typing import Any, Final

from homeassistant.config_entries import SOURCE_INTEGRATION_DISCOVERY, ConfigEntry
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import discovery_flow
from homeassistant.helpers.dispatcher import async_dispatcher_send
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .const import DOMAIN, LOGGER
from .csms import (
    AuthorizationResult,
    BootReceived,
    CentralSystem,
    ChargerEvent,
    CsmsError,
    LocalListEntry,
    TagSeen,
)
from .tag_config import (
    CONF_TAG_ID,
    EVENT_TAG_SEEN,
    TagConfig,
    TagPolicy,
    authorize,
    local_list,
    tag_key,
    tag_policy,
    tags_of,
)

STORAGE_VERSION: Final = 1


def tags_signal(entry_id: str) -> str:
    """Return the dispatcher signal sent when a site's tags changed."""
    return f"{DOMAIN}_{entry_id}_tags"


@dataclass(kw_only=True)
class LocalListState:
    """The list last accepted by one charger."""

    version: int = 0
    digest: str = ""


def _digest(entries: list[LocalListEntry]) -> str:
    wire = [
        [e.id_tag, str(e.status), e.expiry.isoformat() if e.expiry else None]
        for e in entries
    ]
    return hashlib.sha256(json.dumps(wire).encode()).hexdigest()


class SiteTags:
    """The tags of one site while it runs."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        """Read the tags of the entry; nothing is sent before `async_start`."""
        self.hass = hass
        self.entry = entry
        self.tags: dict[str, TagConfig] = tags_of(entry)
        self.policy: TagPolicy = tag_policy(entry)
        self.server: CentralSystem | None = None
        self.lists: dict[str, LocalListState] = {}
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}.tags"
        )
        self._asked: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}

    async def async_start(self, server: CentralSystem) -> None:
        """Load the list versions sent before."""
        self.server = server
        stored = await self._store.async_load() or {}
        self.lists = {
            charger_id: LocalListState(
                version=int(item.get("version", 0)), digest=str(item.get("digest", ""))
            )
            for charger_id, item in stored.get("lists", {}).items()
        }

    def _save(self) -> dict[str, Any]:
        return {
            "lists": {
                cid: {"version": s.version, "digest": s.digest}
                for cid, s in self.lists.items()
            }
        }

    def tag(self, id_tag: str | None) -> TagConfig | None:
        """Return the configured tag with this id, if any."""
        return None if id_tag is None else self.tags.get(tag_key(id_tag))

    # ---------------------------------------------------------------- answers

    def authorize(self, charger_id: str, id_tag: str) -> AuthorizationResult:
        """Answer the server for a tag at a charger (runs inside a frame handler)."""
        return authorize(self.tags, self.policy, charger_id, id_tag, dt_util.utcnow())

    def session_priority(self, charger_id: str, id_tag: str | None) -> int | None:
        """Return the priority of a session started with a tag (None: the charger's)."""
        tag = self.tag(id_tag)
        return tag.priority if tag is not None else None

    @callback
    def handle_event(self, event: ChargerEvent, known_charger: bool) -> None:
        """React to what a charger said: tags seen, boots (push the local list)."""
        if isinstance(event, TagSeen):
            self._tag_seen(event)
        elif isinstance(event, BootReceived) and known_charger:
            self._schedule_push(event.charger_id)

    def _tag_seen(self, event: TagSeen) -> None:
        tag = self.tag(event.id_tag)
        self.hass.bus.async_fire(
            EVENT_TAG_SEEN,
            {
                "entry_id": self.entry.entry_id,
                "charger_id": event.charger_id,
                "connector_id": event.connector_id,
                "id_tag": event.id_tag,
                "accepted": event.accepted,
                "status": event.status,
                "action": event.action,
                "name": tag.name if tag else None,
                "person": tag.person if tag else None,
            },
        )
        if (
            tag is None
            and self.policy is TagPolicy.ASK
            and tag_key(event.id_tag) not in self._asked
        ):
            self._asked.add(tag_key(event.id_tag))
            LOGGER.info(
                "Unknown tag seen at charger %s; asking to add it", event.charger_id
            )
            discovery_flow.async_create_flow(
                self.hass,
                DOMAIN,
                context={"source": SOURCE_INTEGRATION_DISCOVERY},
                data={
                    "entry_id": self.entry.entry_id,
                    CONF_TAG_ID: event.id_tag,
                    "charger_id": event.charger_id,
                },
            )

    # ------------------------------------------------------------ local lists

    @callback
    def async_tags_changed(self) -> None:
        """Take new tags (subentries changed) and push the lists that changed."""
        tags = tags_of(self.entry)
        if tags == self.tags:
            return
        self.tags = tags
        self._asked = {key for key in self._asked if key not in self.tags}
        self._abort_answered_flows()
        async_dispatcher_send(self.hass, tags_signal(self.entry.entry_id))
        if self.server is None:
            return
        for charger_id, state in self.server.chargers.items():
            if state.connected and state.boot is not None:
                self._schedule_push(charger_id)

    def _abort_answered_flows(self) -> None:
        """Close the offers to add a tag that has been added meanwhile."""
        wanted = {f"tag_{self.entry.entry_id}_{key}" for key in self.tags}
        for flow in self.hass.config_entries.flow.async_progress_by_handler(DOMAIN):
            context = flow["context"]
            if context.get("unique_id") in wanted and not context.get("tag_adding"):
                self.hass.config_entries.flow.async_abort(flow["flow_id"])

    def _schedule_push(self, charger_id: str) -> None:
        self.entry.async_create_background_task(
            self.hass,
            self.async_push(charger_id),
            f"{DOMAIN} local list {charger_id}",
        )

    async def async_push(self, charger_id: str) -> bool:
        """Send a charger its local list if it has one and it differs; True if sent."""
        lock = self._locks.setdefault(charger_id, asyncio.Lock())
        async with lock:
            return await self._async_push(charger_id)

    async def _async_push(self, charger_id: str) -> bool:
        server = self.server
        if server is None:
            return False
        entries = local_list(self.tags.values(), charger_id, dt_util.utcnow())
        if not entries and charger_id not in self.lists:
            return False  # no tags, and never sent a list: leave the charger's own
        digest = _digest(entries)
        known = self.lists.get(charger_id, LocalListState())
        try:
            if not await server.local_list_supported(charger_id):
                LOGGER.debug("Charger %s keeps no local list", charger_id)
                return False
            on_charger = await server.get_local_list_version(charger_id)
            if known.digest == digest and on_charger == known.version:
                return False
            version = max(known.version, on_charger) + 1
            status = await server.send_local_list(charger_id, version, entries)
        except CsmsError as err:
            LOGGER.warning(
                "Charger %s: could not send the local list: %s", charger_id, err
            )
            return False
        if status != "Accepted":
            LOGGER.warning(
                "Charger %s answered %s to its local list", charger_id, status
            )
            return False
        LOGGER.debug(
            "Charger %s: local list version %s (%s tags)",
            charger_id,
            version,
            len(entries),
        )
        self.lists[charger_id] = LocalListState(version=version, digest=digest)
        self._store.async_delay_save(self._save, 1)
        return True

    async def async_stop(self) -> None:
        """Save the list versions now."""
        await self._store.async_save(self._save())


async def async_remove_tag_stores(hass: HomeAssistant, entry_id: str) -> None:
    """Delete the stored list versions and session history of a deleted site."""
    for key in (f"{DOMAIN}.{entry_id}.tags", f"{DOMAIN}.{entry_id}.sessions"):
        await Store[dict[str, Any]](hass, STORAGE_VERSION, key).async_remove()
