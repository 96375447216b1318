"""Constants for the Smart Charge integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "smart_charge"
LOGGER = logging.getLogger(__package__)

CONF_PORT: Final = "port"
CONF_MAIN_BREAKER_KW: Final = "main_breaker_kw"

DEFAULT_PORT: Final = 9000
DEFAULT_MAIN_BREAKER_KW: Final = 11.0
