"""Repair issues of a site: their ids, and raising and clearing them in one place.

None of them can be fixed from the repairs dashboard (they say what to change in the
site's configuration or at the charger); `async_create_fix_flow` exists because Home
Assistant loads this module as the integration's repairs platform.
"""

from __future__ import annotations

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .control import (
    CapabilitiesLearned,
    ChargerCompliant,
    ChargerNonCompliant,
    ChargerRejectsProfiles,
    ControlReport,
)


def port_in_use_id(entry_id: str) -> str:
    """Return the issue id of a site whose port another program holds."""
    return f"port_in_use_{entry_id}"


def panel_tree_invalid_id(entry_id: str) -> str:
    """Return the issue id of a site whose panel tree does not fit."""
    return f"panel_tree_invalid_{entry_id}"


def load_sensor_unavailable_id(entry_id: str, panel_id: str) -> str:
    """Return the issue id of a panel whose load sensor stays unavailable."""
    return f"load_sensor_unavailable_{entry_id}_{panel_id}"


def charger_rejects_profiles_id(entry_id: str, charger_id: str) -> str:
    """Return the issue id of a charger that rejects charging profiles."""
    return f"charger_rejects_profiles_{entry_id}_{charger_id}"


def charger_non_compliant_id(entry_id: str, charger_id: str) -> str:
    """Return the issue id of a charger that draws more than its limit."""
    return f"charger_non_compliant_{entry_id}_{charger_id}"


@callback
def _async_raise(
    hass: HomeAssistant,
    issue_id: str,
    placeholders: dict[str, str],
    *,
    translation_key: str,
    severity: ir.IssueSeverity = ir.IssueSeverity.WARNING,
) -> None:
    """Raise an issue that cannot be fixed from the dashboard."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        is_fixable=False,
        severity=severity,
        translation_key=translation_key,
        translation_placeholders=placeholders,
    )


@callback
def async_port_in_use(hass: HomeAssistant, entry_id: str, port: int) -> None:
    """Say that the site's port is taken."""
    _async_raise(
        hass,
        port_in_use_id(entry_id),
        {"port": str(port)},
        translation_key="port_in_use",
        severity=ir.IssueSeverity.ERROR,
    )


@callback
def async_panel_tree_invalid(
    hass: HomeAssistant, entry_id: str, error: str | None
) -> None:
    """Say why the panel tree does not fit, or clear the issue (error None)."""
    issue_id = panel_tree_invalid_id(entry_id)
    if error is None:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    _async_raise(
        hass,
        issue_id,
        {"error": error},
        translation_key="panel_tree_invalid",
        severity=ir.IssueSeverity.ERROR,
    )


@callback
def async_load_sensor_unavailable(
    hass: HomeAssistant, entry_id: str, panel_id: str, entity_id: str | None
) -> None:
    """Say which load sensors of a panel stay unavailable, or clear the issue (None)."""
    issue_id = load_sensor_unavailable_id(entry_id, panel_id)
    if entity_id is None:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    _async_raise(
        hass,
        issue_id,
        {"entity_id": entity_id},
        translation_key="load_sensor_unavailable",
    )


@callback
def async_control_report(
    hass: HomeAssistant, entry_id: str, report: ControlReport
) -> None:
    """Turn what the controller concluded about a charger into repairs."""
    charger_id = report.charger_id
    rejects_id = charger_rejects_profiles_id(entry_id, charger_id)
    non_compliant_id = charger_non_compliant_id(entry_id, charger_id)
    match report:
        case ChargerRejectsProfiles():
            _async_raise(
                hass,
                rejects_id,
                {"charger_id": charger_id},
                translation_key="charger_rejects_profiles",
            )
        case CapabilitiesLearned(capabilities=capabilities) if (
            capabilities.smart_charging and not capabilities.rejects_profiles
        ):
            ir.async_delete_issue(hass, DOMAIN, rejects_id)
        case ChargerNonCompliant():
            _async_raise(
                hass,
                non_compliant_id,
                {
                    "charger_id": charger_id,
                    "connector_id": str(report.connector_id),
                    "limit": f"{report.limit_a:.1f}",
                    "seen": f"{report.seen_a:.1f}",
                    "source": report.source,
                },
                translation_key="charger_non_compliant",
            )
        case ChargerCompliant():
            ir.async_delete_issue(hass, DOMAIN, non_compliant_id)
        case _:
            pass


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Return a confirm flow (no issue of ours is fixable; the dashboard never asks)."""
    return ConfirmRepairFlow()
