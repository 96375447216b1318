"""Who may charge: the owner's authorization hook and the local authorization list.

The server asks `Authorizer(charger_id, id_tag)` for every Authorize and for the
`idTagInfo` / `idTokenInfo` of StartTransaction (1.6) and TransactionEvent (2.x). The
hook is a plain synchronous callable (it runs inside a frame handler, on the loop); the
default accepts every tag, as the server did before it had one.

A local authorization list (`LocalListEntry`) is what a charger keeps to authorize cards
by itself while the central system is unreachable: 1.6 SendLocalList with `listVersion`,
2.x SendLocalList with `versionNumber`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final


class AuthorizationStatus(StrEnum):
    """The answer for an id tag / id token, in the 2.x vocabulary (1.6 is a subset)."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    UNKNOWN = "Unknown"


# 1.6 has no `Unknown` (§7.1.3 AuthorizationStatus): a tag nobody knows is Invalid.
_STATUS_16: Final = {AuthorizationStatus.UNKNOWN: AuthorizationStatus.INVALID}
MAX_ID_TAG_16: Final = 20
MAX_ID_TOKEN_2X: Final = 36


def _timestamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class AuthorizationResult:
    """What the owner answers for one tag; `expiry` is when the answer stops holding."""

    status: AuthorizationStatus
    expiry: datetime | None = None

    @property
    def accepted(self) -> bool:
        """Return whether the tag may charge."""
        return self.status is AuthorizationStatus.ACCEPTED

    def id_tag_info(self) -> dict[str, Any]:
        """Return the 1.6 `idTagInfo` (snake_case keys, as the library wants them)."""
        info: dict[str, Any] = {"status": str(_STATUS_16.get(self.status, self.status))}
        if self.expiry is not None:
            info["expiry_date"] = _timestamp(self.expiry)
        return info

    def id_token_info(self) -> dict[str, Any]:
        """Return the 2.x `idTokenInfo` (snake_case keys)."""
        info: dict[str, Any] = {"status": str(self.status)}
        if self.expiry is not None:
            info["cache_expiry_date_time"] = _timestamp(self.expiry)
        return info


ACCEPTED: Final = AuthorizationResult(AuthorizationStatus.ACCEPTED)

type Authorizer = Callable[[str, str], AuthorizationResult]


def accept_all(charger_id: str, id_tag: str) -> AuthorizationResult:
    """Accept every tag (the default hook)."""
    return ACCEPTED


@dataclass(frozen=True, slots=True)
class LocalListEntry:
    """One card of a local authorization list."""

    id_tag: str
    status: AuthorizationStatus = AuthorizationStatus.ACCEPTED
    expiry: datetime | None = None

    def as_16(self) -> dict[str, Any]:
        """Return the 1.6 AuthorizationData (snake_case)."""
        return {
            "id_tag": self.id_tag[:MAX_ID_TAG_16],
            "id_tag_info": AuthorizationResult(self.status, self.expiry).id_tag_info(),
        }

    def as_2x(self) -> dict[str, Any]:
        """Return the 2.x AuthorizationData (snake_case)."""
        return {
            "id_token": {"id_token": self.id_tag[:MAX_ID_TOKEN_2X], "type": "ISO14443"},
            "id_token_info": AuthorizationResult(
                self.status, self.expiry
            ).id_token_info(),
        }
