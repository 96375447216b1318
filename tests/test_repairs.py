"""What the controller concludes about a charger becomes a repair, and goes again."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from custom_components.smart_charge.const import DOMAIN
from custom_components.smart_charge.control import (
    CapabilitiesLearned,
    ChargerCompliant,
    ChargerNonCompliant,
    ChargerRejectsProfiles,
)
from custom_components.smart_charge.csms import ChargerCapabilities
from custom_components.smart_charge.repairs import (
    async_control_report,
    charger_non_compliant_id,
    charger_rejects_profiles_id,
)


async def test_non_compliant_charger_is_a_repair_until_it_complies(
    hass: HomeAssistant,
) -> None:
    registry = ir.async_get(hass)
    issue_id = charger_non_compliant_id("site", "CP-1")
    report = ChargerNonCompliant(
        charger_id="CP-1", connector_id=1, limit_a=6.0, seen_a=16.04, source="meter"
    )
    async_control_report(hass, "site", report)
    issue = registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "charger_non_compliant"
    assert not issue.is_fixable
    assert issue.translation_placeholders == {
        "charger_id": "CP-1",
        "connector_id": "1",
        "limit": "6.0",
        "seen": "16.0",
        "source": "meter",
    }
    # Another charger's recovery leaves it; its own clears it.
    async_control_report(hass, "site", ChargerCompliant(charger_id="CP-2"))
    assert registry.async_get_issue(DOMAIN, issue_id) is not None
    async_control_report(hass, "site", ChargerCompliant(charger_id="CP-1"))
    assert registry.async_get_issue(DOMAIN, issue_id) is None


async def test_profile_rejection_clears_once_profiles_work(
    hass: HomeAssistant,
) -> None:
    registry = ir.async_get(hass)
    issue_id = charger_rejects_profiles_id("site", "CP-1")
    async_control_report(hass, "site", ChargerRejectsProfiles(charger_id="CP-1"))
    assert registry.async_get_issue(DOMAIN, issue_id) is not None
    # Capabilities without smart charging do not clear it...
    no_smart = ChargerCapabilities(smart_charging=False)
    async_control_report(hass, "site", CapabilitiesLearned("CP-1", no_smart))
    assert registry.async_get_issue(DOMAIN, issue_id) is not None
    # ... a charger that takes profiles again does.
    async_control_report(
        hass, "site", CapabilitiesLearned("CP-1", ChargerCapabilities())
    )
    assert registry.async_get_issue(DOMAIN, issue_id) is None
