"""Every translation key the code uses exists in strings.json, and en.json matches it."""

from __future__ import annotations

import json
from pathlib import Path
import re

PACKAGE = Path(__file__).parent.parent / "custom_components" / "smart_charge"
STRINGS = json.loads((PACKAGE / "strings.json").read_text(encoding="utf-8"))


def _used(pattern: str) -> set[str]:
    keys: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        keys.update(re.findall(pattern, path.read_text(encoding="utf-8")))
    return keys


def test_en_matches_strings() -> None:
    english = json.loads((PACKAGE / "translations" / "en.json").read_text("utf-8"))
    assert english == STRINGS


def test_exception_and_issue_keys_exist() -> None:
    used = _used(r'translation_key="([a-z_]+)"')
    used |= _used(r'translation_key=f"not_a_\{kind\}"') and {
        "not_a_panel",
        "not_a_charger",
    }
    known = set(STRINGS["exceptions"]) | set(STRINGS["issues"])
    entity_keys = {k for platform in STRINGS["entity"].values() for k in platform}
    selector_keys = set(STRINGS["selector"])
    missing = used - known - entity_keys - selector_keys
    assert used
    assert missing == set()


def test_entity_keys_exist() -> None:
    from custom_components.smart_charge import (
        binary_sensor,
        number,
        select,
        sensor,
        switch,
    )

    descriptions = {
        "sensor": [*sensor.PANEL_SENSORS, *sensor.CHARGER_SENSORS],
        "number": [number.GRID_LIMIT, *number.CHARGER_NUMBERS],
        "select": [select.STRATEGY],
        "switch": [switch.MANAGED],
        "binary_sensor": [binary_sensor.CONNECTED],
    }
    for platform, items in descriptions.items():
        for description in items:
            assert description.translation_key in STRINGS["entity"][platform], (
                platform,
                description.key,
            )


def test_config_errors_exist() -> None:
    text = (PACKAGE / "config_flow.py").read_text(encoding="utf-8")
    flow_errors = set(re.findall(r'errors\[[A-Z_]+\] = "([a-z_]+)"', text)) | set(
        re.findall(r'return CONF_[A-Z_]+, "([a-z_]+)"', text)
    )
    known = (
        set(STRINGS["config"]["error"])
        | set(STRINGS["config_subentries"]["panel"]["error"])
        | set(STRINGS["config_subentries"]["charger"]["error"])
    )
    assert flow_errors
    assert flow_errors - known == set()


def test_icons_match_entities_and_services() -> None:
    icons = json.loads((PACKAGE / "icons.json").read_text(encoding="utf-8"))
    for platform, keys in icons["entity"].items():
        assert set(keys) <= set(STRINGS["entity"][platform]), platform
    assert set(icons["services"]) == set(STRINGS["services"])
