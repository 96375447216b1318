"""Tags (RFID cards, 2.x id tokens) as configured: subentries of the site, and the rules.

`authorize` decides what the OCPP server answers for a tag at a charger; `local_list`
is what a charger keeps to decide by itself while Home Assistant is down. Both are
plain functions of the configuration and the time, so they are tested without a server.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.util import dt as dt_util

from .csms import AuthorizationResult, AuthorizationStatus, LocalListEntry

SUBENTRY_TAG: Final = "tag"

# Tag subentry data.
CONF_TAG_NAME: Final = "name"
CONF_TAG_ID: Final = "id_tag"
CONF_PERSON: Final = "person"
CONF_ALLOWED_CHARGERS: Final = "allowed_chargers"
CONF_TAG_PRIORITY: Final = "priority"
CONF_VALID_UNTIL: Final = "valid_until"

# Site options.
CONF_TAG_POLICY: Final = "tag_policy"
CONF_COST_SENSOR: Final = "cost_price_sensor"
CONF_HISTORY_DAYS: Final = "history_days"
DEFAULT_HISTORY_DAYS: Final = 400

# 2.x id tokens are at most 36 characters (1.6 id tags 20: longer ones never arrive).
MAX_TAG_LENGTH: Final = 36

EVENT_TAG_SEEN: Final = "smart_charge_tag_seen"
EVENT_SESSION_FINISHED: Final = "smart_charge_session_finished"


class TagPolicy(StrEnum):
    """What the server answers for a tag that is not configured.

    ASK refuses the tag (like KNOWN_ONLY) and offers to add it: a card only charges
    once someone said so, and adding it takes one click in the notification.
    """

    ACCEPT_ANY = "accept_any"
    KNOWN_ONLY = "known_only"
    ASK = "ask"


@dataclass(frozen=True, kw_only=True)
class TagConfig:
    """One configured tag."""

    subentry_id: str
    name: str
    id_tag: str
    person: str | None = None
    allowed_chargers: frozenset[str] = frozenset()  # empty: every charger
    priority: int | None = None
    valid_until: date | None = None

    @property
    def key(self) -> str:
        """Return the tag id as compared (OCPP id tags are case-insensitive)."""
        return tag_key(self.id_tag)

    def expiry(self) -> datetime | None:
        """Return the end of the last valid day (local time), as an aware UTC time."""
        if self.valid_until is None:
            return None
        end = datetime.combine(
            self.valid_until + timedelta(days=1),
            time(),
            dt_util.get_default_time_zone(),
        )
        return dt_util.as_utc(end)

    def allows(self, charger_id: str) -> bool:
        """Return whether the tag may charge at a charger."""
        return not self.allowed_chargers or charger_id in self.allowed_chargers

    def status(self, charger_id: str, now: datetime) -> AuthorizationStatus:
        """Return the tag's own answer at a charger now."""
        expiry = self.expiry()
        if expiry is not None and now >= expiry:
            return AuthorizationStatus.EXPIRED
        if not self.allows(charger_id):
            return AuthorizationStatus.INVALID
        return AuthorizationStatus.ACCEPTED


def tag_key(id_tag: str) -> str:
    """Return the form in which tag ids are compared."""
    return id_tag.strip().casefold()


def tag_from_data(subentry_id: str, data: Mapping[str, Any]) -> TagConfig:
    """Return the tag described by subentry data."""
    valid_until = data.get(CONF_VALID_UNTIL)
    priority: Any = data.get(CONF_TAG_PRIORITY)
    return TagConfig(
        subentry_id=subentry_id,
        name=str(data[CONF_TAG_NAME]),
        id_tag=str(data[CONF_TAG_ID]),
        person=data.get(CONF_PERSON) or None,
        allowed_chargers=frozenset(data.get(CONF_ALLOWED_CHARGERS) or ()),
        priority=int(priority) if priority not in (None, "") else None,
        valid_until=date.fromisoformat(valid_until) if valid_until else None,
    )


def tags_of(entry: ConfigEntry) -> dict[str, TagConfig]:
    """Return every tag of a site keyed by `tag_key` of its id."""
    tags: dict[str, TagConfig] = {}
    for subentry in entry.subentries.values():
        if subentry.subentry_type == SUBENTRY_TAG:
            tag = tag_from_data(subentry.subentry_id, subentry.data)
            tags[tag.key] = tag
    return tags


def tag_policy(entry: ConfigEntry) -> TagPolicy:
    """Return the site's policy for tags that are not configured."""
    try:
        return TagPolicy(entry.options.get(CONF_TAG_POLICY, TagPolicy.ACCEPT_ANY))
    except ValueError:
        return TagPolicy.ACCEPT_ANY


def authorize(
    tags: Mapping[str, TagConfig],
    policy: TagPolicy,
    charger_id: str,
    id_tag: str,
    now: datetime,
) -> AuthorizationResult:
    """Answer for a tag at a charger.

    A configured tag follows its own rules (valid until, allowed chargers) under every
    policy; the policy only decides about tags that are not configured.
    """
    tag = tags.get(tag_key(id_tag))
    if tag is None:
        if policy is TagPolicy.ACCEPT_ANY:
            return AuthorizationResult(AuthorizationStatus.ACCEPTED)
        return AuthorizationResult(AuthorizationStatus.UNKNOWN)
    status = tag.status(charger_id, now)
    return AuthorizationResult(
        status, tag.expiry() if status is AuthorizationStatus.ACCEPTED else None
    )


def local_list(
    tags: Iterable[TagConfig], charger_id: str, now: datetime
) -> list[LocalListEntry]:
    """Return a charger's local authorization list, sorted by tag id.

    Every configured tag is on it: the ones not allowed at this charger as Invalid and
    expired ones as Expired, so the charger refuses them offline too.
    """
    return [
        LocalListEntry(
            tag.id_tag,
            status := tag.status(charger_id, now),
            tag.expiry() if status is AuthorizationStatus.ACCEPTED else None,
        )
        for tag in sorted(tags, key=lambda t: t.key)
    ]
