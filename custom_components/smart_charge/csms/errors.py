"""Errors raised by the OCPP central system."""

from __future__ import annotations


class CsmsError(Exception):
    """Base class of every error the central system raises."""


class ChargerNotConnectedError(CsmsError):
    """The charger is not connected, so the call was not sent."""

    def __init__(self, charger_id: str) -> None:
        super().__init__(f"Charger {charger_id!r} is not connected")
        self.charger_id = charger_id


class CallTimeoutError(CsmsError):
    """The charger did not answer a call in time."""

    def __init__(self, charger_id: str, action: str, timeout_s: float) -> None:
        super().__init__(
            f"Charger {charger_id!r} did not answer {action} within {timeout_s:g} s"
        )
        self.charger_id = charger_id
        self.action = action
        self.timeout_s = timeout_s


class CallRejectedError(CsmsError):
    """The charger answered a call with a CALLERROR."""

    def __init__(
        self, charger_id: str, action: str, code: str, description: str
    ) -> None:
        super().__init__(
            f"Charger {charger_id!r} answered {action} with {code}: {description}"
        )
        self.charger_id = charger_id
        self.action = action
        self.code = code
        self.description = description


class NotSupportedByVersionError(CsmsError):
    """The requested operation does not exist in the charger's OCPP version."""

    def __init__(self, charger_id: str, operation: str, ocpp_version: str) -> None:
        super().__init__(
            f"{operation} is not available for charger {charger_id!r} (OCPP {ocpp_version})"
        )
        self.charger_id = charger_id
        self.operation = operation
        self.ocpp_version = ocpp_version
