"""What HACS and Home Assistant read from the repository, checked without running them."""

from __future__ import annotations

import json
from pathlib import Path
import re
import tomllib

from PIL import Image
import pytest

ROOT = Path(__file__).parents[1]
PACKAGE = ROOT / "custom_components" / "smart_charge"


def test_one_version() -> None:
    """manifest.json, pyproject.toml and the CHANGELOG's top entry agree."""
    manifest = json.loads((PACKAGE / "manifest.json").read_text())["version"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    top = re.search(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert top is not None
    assert manifest == pyproject["version"] == top[1]


def test_license_is_the_declared_osi_license() -> None:
    """HACS needs a license file; it is the one pyproject declares."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert declared["license"] == {"text": "MIT"}
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.parametrize(
    ("name", "size"),
    [
        ("icon.png", (256, 256)),
        ("icon@2x.png", (512, 512)),
        ("logo.png", (None, 128)),
        ("logo@2x.png", (None, 256)),
    ],
)
def test_brand_images(name: str, size: tuple[int | None, int]) -> None:
    """Home Assistant's brand rules: PNG, transparent, icon square, logo's height."""
    with Image.open(PACKAGE / "brand" / name) as image:
        assert image.format == "PNG"
        assert image.mode == "RGBA"
        assert image.getpixel((0, 0))[3] == 0  # a transparent corner
        width, height = image.size
        assert height == size[1]
        assert width == (size[0] or width)


def test_hacs_minimum_is_the_minimum_lane() -> None:
    """hacs.json states the Home Assistant that the minimum lane tests."""
    hacs = json.loads((ROOT / "hacs.json").read_text())
    pinned = (ROOT / "requirements_test.txt").read_text()
    assert "pytest-homeassistant-custom-component==0.13.236" in pinned
    assert hacs["homeassistant"] == "2025.4.4"
