"""Capability probing: what a charger can do with profiles, read after each boot.

1.6 reads configuration keys, 2.x the SmartChargingCtrlr variables. A charger that cannot
be read keeps what was known (or the common defaults: amps, the configured purpose).
"""

from __future__ import annotations

from dataclasses import replace
import logging

from custom_components.smart_charge.csms.capabilities import (
    OCPP2_VARIABLES,
    OCPP16_KEYS,
    ChargerCapabilities,
    from_ocpp2_variables,
    from_ocpp16_configuration,
)
from custom_components.smart_charge.csms.charge_point import OCPP16
from custom_components.smart_charge.csms.errors import CsmsError
from custom_components.smart_charge.csms.server import CentralSystem

_LOGGER = logging.getLogger(__name__)


async def probe_capabilities(
    server: CentralSystem,
    charger_id: str,
    previous: ChargerCapabilities | None,
    *,
    boot: bool,
) -> ChargerCapabilities:
    """Read a charger's smart-charging capabilities.

    At a boot (often a firmware update) a charger that refused every profile gets
    another chance.
    """
    try:
        if server.ocpp_version(charger_id) == OCPP16:
            result = await server.get_configuration(charger_id, list(OCPP16_KEYS))
            learned = from_ocpp16_configuration(result.values, previous)
        else:
            variables = await server.get_variables(charger_id, list(OCPP2_VARIABLES))
            learned = from_ocpp2_variables(variables, previous)
    except CsmsError as err:
        _LOGGER.warning(
            "Charger %s: cannot read its smart-charging capabilities (%s); "
            "assuming amps and the configured profile",
            charger_id,
            err,
        )
        learned = previous or ChargerCapabilities()
    if boot:
        learned = after_boot(learned)
    _LOGGER.info("Charger %s capabilities: %s", charger_id, learned)
    return learned


def after_boot(learned: ChargerCapabilities) -> ChargerCapabilities:
    """Forget a refusal and the shape that seemed to work: a boot starts afresh."""
    if not learned.rejects_profiles:
        return learned
    return replace(
        learned,
        rejects_profiles=False,
        working_purpose=None,
        working_rate_unit=None,
    )


__all__ = ["after_boot", "probe_capabilities"]
