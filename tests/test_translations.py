"""Every translation key the code uses exists in strings.json, and en.json matches it."""

from __future__ import annotations

import json
from pathlib import Path
import re

from homeassistant.helpers.entity import EntityDescription

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

    descriptions: dict[str, list[EntityDescription]] = {
        "sensor": [*sensor.PANEL_SENSORS, *sensor.CHARGER_SENSORS],
        "number": [number.GRID_LIMIT, *number.CHARGER_NUMBERS],
        "select": [select.STRATEGY, *select.CHARGER_SELECTS],
        "switch": [*switch.CHARGER_SWITCHES],
        "binary_sensor": [binary_sensor.CONNECTED],
    }
    for platform, items in descriptions.items():
        for description in items:
            assert description.translation_key in STRINGS["entity"][platform], (
                platform,
                description.key,
            )


def test_config_errors_exist() -> None:
    """Every error key a form can show exists in the section of its flow."""
    from custom_components.smart_charge import config_flow

    text = (PACKAGE / "config_flow.py").read_text(encoding="utf-8")
    literal = set(re.findall(r'errors\[[A-Z_]+\] = "([a-z_]+)"', text))
    literal |= set(re.findall(r'\{CONF_[A-Z_]+: "([a-z_]+)"\}', text))
    literal |= set(re.findall(r'errors\.setdefault\([A-Z_]+, "([a-z_]+)"\)', text))
    literal |= set(re.findall(r'^\s+"([a-z_]+)"$', text, re.MULTILINE))
    literal |= set(re.findall(r'CONF_MAX_CURRENT: "([a-z_]+)"', text))
    assert literal
    site = set(STRINGS["config"]["error"])
    panel = set(STRINGS["config_subentries"]["panel"]["error"])
    charger = set(STRINGS["config_subentries"]["charger"]["error"])
    assert literal - site - panel - charger == set()

    def errors(ranges: dict[str, config_flow._Range]) -> set[str]:
        return {allowed.error for allowed in ranges.values()}

    budget = errors(config_flow.BUDGET_RANGES)
    assert errors(config_flow.SITE_RANGES) | budget <= site
    assert errors(config_flow.PANEL_RANGES) | budget <= panel
    # The adopt form (a step of the site's flow) checks a charger too.
    assert errors(config_flow.CHARGER_RANGES) <= charger & site
    assert errors(config_flow.OPTIONS_RANGES) <= set(STRINGS["options"]["error"])
    for key in ("above_panel_current", "above_panel_rating"):
        assert key in charger & site
    breaker = {
        "parent_missing",
        "panel_cycle",
        "child_exceeds_parent",
        "phase_limit_exceeds_parent",
        "smaller_than_child",
        "phase_limit_below_child",
        "phase_limit_above_rating",
    }
    assert breaker <= panel
    assert {"smaller_than_child", "phase_limit_below_child"} <= site


def test_abort_reasons_and_steps_exist() -> None:
    text = (PACKAGE / "config_flow.py").read_text(encoding="utf-8")
    reasons = set(re.findall(r'reason="([a-z_]+)"', text))
    assert reasons
    assert reasons <= set(STRINGS["config"]["abort"])
    steps = set(re.findall(r'step_id="([a-z_]+)"', text))
    steps |= set(re.findall(r'_async_(?:panel|charger)_form\("([a-z_]+)"', text))
    known = set(STRINGS["config"]["step"]) | set(STRINGS["options"]["step"])
    for flow in STRINGS["config_subentries"].values():
        known |= set(flow["step"])
    assert {"user", "reconfigure", "discovery_confirm", "init"} <= steps
    assert steps <= known


def test_selector_options_match_the_code() -> None:
    """Every select's options are translated, with keys hassfest accepts."""
    from custom_components.smart_charge import config_flow, const
    from custom_components.smart_charge.engine import ProfilePurpose

    options = {
        "phases": {"1", "3"},
        "unknown_charger_policy": {p.value for p in const.UnknownChargerPolicy},
        "strategy": set(const.STRATEGIES),
        "grid_phase": set(config_flow.GRID_PHASE_OPTIONS),
        "profile_purpose": set(config_flow.PURPOSE_OPTIONS),
        "solar_mode": set(const.SOLAR_MODES),
        "tariff_mode": set(const.TARIFF_MODES),
    }
    for key, values in options.items():
        assert set(STRINGS["selector"][key]["options"]) == values, key
    # The stored values stay the OCPP spellings, which old entries hold.
    assert set(config_flow.GRID_PHASE_OPTIONS.values()) == {"L1", "L2", "L3"}
    assert set(config_flow.PURPOSE_OPTIONS.values()) == {
        ProfilePurpose.TX_PROFILE,
        ProfilePurpose.TX_DEFAULT_PROFILE,
    }


# hassfest's rule for translation keys: lowercase letters, digits, '-' and '_', not
# starting or ending with a separator, and no two separators in a row.
TRANSLATION_KEY = re.compile(r"^(?!.+[_-]{2})(?![_-])[a-z0-9-_]+(?<![_-])$")
# What the frontend parses as a tag (hassfest: cv.string_with_no_html), and angle
# brackets at all: "<port>" shows "Translation error: INVALID_TAG".
HTML = re.compile(r"<[a-z].*?>", re.IGNORECASE)


def _walk(
    node: object, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], str]]:
    """Return (path, string) for every string in a translation tree."""
    if isinstance(node, str):
        return [(path, node)]
    assert isinstance(node, dict), path
    found = []
    for key, child in node.items():
        found += _walk(child, (*path, key))
    return found


def test_keys_follow_hassfest() -> None:
    """Step ids, error and abort keys, selector option keys: every key, in fact."""
    bad = [
        "/".join(path)
        for path, _ in _walk(STRINGS)
        for key in path
        if not TRANSLATION_KEY.match(key)
    ]
    assert bad == []


def test_strings_have_no_html_nor_urls() -> None:
    """No tags, no angle brackets and no URLs: a URL is a description placeholder."""
    strings = _walk(STRINGS)
    assert strings
    for path, text in strings:
        assert not HTML.search(text), path
        assert "<" not in text, path
        assert ">" not in text, path
        assert "://" not in text, path


def test_reconfigure_keeps_the_help_texts() -> None:
    """A reconfigure form explains every field its add form explains."""
    flows = [STRINGS["config"], *STRINGS["config_subentries"].values()]
    for flow in flows:
        steps = flow["step"]
        if "user" not in steps or "reconfigure" not in steps:
            continue
        user, reconfigure = steps["user"], steps["reconfigure"]
        assert set(user.get("data_description", {})) <= set(
            reconfigure.get("data_description", {})
        )
        assert set(user["data"]) <= set(reconfigure["data"])
        for name, section in user.get("sections", {}).items():
            assert section == reconfigure["sections"][name]


def test_icons_match_entities_and_services() -> None:
    icons = json.loads((PACKAGE / "icons.json").read_text(encoding="utf-8"))
    for platform, keys in icons["entity"].items():
        assert set(keys) <= set(STRINGS["entity"][platform]), platform
    assert set(icons["services"]) == set(STRINGS["services"])
