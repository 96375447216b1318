"""The OCPP words every layer speaks: the charging rate unit.

A leaf module (the standard library only), so that the OCPP server (`csms/`) and the
engine, which may not import each other, share one spelling.
"""

from __future__ import annotations

from enum import StrEnum


class RateUnit(StrEnum):
    """A charging schedule's `chargingRateUnit`: amps per phase or watts (OCPP 1.6 and 2.x)."""

    AMPS = "A"
    WATTS = "W"


__all__ = ["RateUnit"]
