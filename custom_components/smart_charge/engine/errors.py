"""Errors raised by the Smart Charge engine."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of every error the engine raises."""


class EngineConfigError(EngineError):
    """The site, a panel, a session or a setting is invalid."""


class ProfileError(EngineError):
    """An OCPP charging profile would break the protocol's conformance rules."""
