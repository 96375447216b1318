"""The engine, the control layer and the OCPP server never import Home Assistant;
the OCPP server never imports the engine or the control layer."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "custom_components" / "smart_charge"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("subpackage", ["engine", "control", "csms"])
def test_no_homeassistant_import(subpackage: str) -> None:
    files = sorted((PACKAGE / subpackage).rglob("*.py"))
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            name
            for name in _imported_modules(path)
            if name == "homeassistant" or name.startswith("homeassistant.")
        )
        for path in files
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def _relative_targets(path: Path) -> set[str]:
    """Return the sibling packages a module reaches with `from ..x import`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.level >= 2
    }


def test_csms_is_a_pure_protocol_package() -> None:
    """csms/ imports neither the engine nor the control layer (only ocpp, websockets)."""
    offenders = {}
    for path in sorted((PACKAGE / "csms").rglob("*.py")):
        bad = sorted(
            name
            for name in _imported_modules(path) | _relative_targets(path)
            if name.startswith(
                (
                    "custom_components.smart_charge.engine",
                    "custom_components.smart_charge.control",
                )
            )
            or name in {"engine", "control"}
        )
        if bad:
            offenders[str(path.relative_to(PACKAGE))] = bad
    assert offenders == {}


def test_walker_sees_imports(tmp_path: Path) -> None:
    """The check itself can fail: it finds an import when there is one."""
    sample = tmp_path / "sample.py"
    sample.write_text("from homeassistant.core import HomeAssistant\nimport os\n")
    assert _imported_modules(sample) == {"homeassistant.core", "os"}
    sample.write_text("from ..engine import Site\nfrom .events import X\n")
    assert _relative_targets(sample) == {"engine"}


def test_the_shared_vocabulary_is_a_leaf() -> None:
    """units.py, which csms/ and the engine both import, imports neither (nor HA)."""
    path = PACKAGE / "units.py"
    imported = _imported_modules(path) | _relative_targets(path)
    ours_or_ha = {
        name
        for name in imported
        if name.startswith(("custom_components", "homeassistant"))
        or name in {"engine", "control", "csms"}
    }
    assert ours_or_ha == set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert not any(
        isinstance(node, ast.ImportFrom) and node.level >= 1 for node in ast.walk(tree)
    )
