"""Read every OCPP JSON schema once, before the server runs.

The `ocpp` library reads a schema file the first time an action is validated and caches
the validator. The first validation of each action would then open a file; on the event
loop that is blocking I/O. `preload_schemas` fills the library's cache up front (call it
in an executor), so later validations never touch the disk.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
import threading
from typing import Final

import ocpp
from ocpp.messages import MessageType, get_validator

from .charge_point import OCPP16, OCPP21, OCPP201

_SCHEMA_DIRS: Final = {OCPP16: "v16", OCPP201: "v201", OCPP21: "v21"}
# The schemas the library itself reads with Decimal floats (ocpp.messages._validate_payload).
# Its cache key ignores the float parser, so these must be read the same way here.
_DECIMAL_16: Final = {
    (MessageType.Call, "SetChargingProfile"),
    (MessageType.Call, "RemoteStartTransaction"),
    (MessageType.CallResult, "GetCompositeSchedule"),
}

_lock = threading.Lock()
_loaded = 0


def _schema_message(version: str, stem: str) -> tuple[int, str] | None:
    """Return the message type and action of a schema file name (None: not a call)."""
    if stem.endswith("Response"):
        return MessageType.CallResult, stem.removesuffix("Response")
    if version == OCPP16:
        return MessageType.Call, stem
    if stem.endswith("Request"):
        return MessageType.Call, stem.removesuffix("Request")
    return None  # 2.1's SEND messages (NotifyPeriodicEventStream): no request schema


def preload_schemas() -> int:
    """Load the validators of every action of OCPP 1.6, 2.0.1 and 2.1 (blocking).

    Requests and answers alike, for the server and the simulated chargers. Once per
    process: later calls return at once. Returns the number of validators loaded.
    """
    global _loaded  # noqa: PLW0603 - a process-wide cache, like the library's own
    with _lock:
        if _loaded:
            return _loaded
        root = Path(ocpp.__file__).resolve().parent
        count = 0
        for version, folder in _SCHEMA_DIRS.items():
            for path in sorted((root / folder / "schemas").glob("*.json")):
                if (message := _schema_message(version, path.stem)) is None:
                    continue
                message_type, action = message
                if version == OCPP16 and (message_type, action) in _DECIMAL_16:
                    get_validator(message_type, action, version, parse_float=Decimal)
                else:
                    get_validator(message_type, action, version)
                count += 1
        _loaded = count
        return count
