"""The per-module coverage gate (scripts/coverage_per_module.py) on real coverage data.

A small package laid out like ours is measured by `coverage run` in a subprocess (with
branch coverage, as pyproject sets it); the gate must name each module below its bar.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
import subprocess
import sys
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "coverage_per_module.py"


def _gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("coverage_per_module", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _layout(root: Path) -> None:
    """Lay out a package under `root` and a script that runs part of it."""
    package = root / "custom_components" / "smart_charge"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    # Called with 1 only: 3 of 4 statements and 1 of 2 branches.
    (package / "config_flow.py").write_text(
        "def step(x):\n    if x:\n        return 1\n    return 2\n"
    )
    (package / "good.py").write_text("def double(x):\n    return 2 * x\n")
    # Never called: 1 of 2 statements.
    (package / "low.py").write_text("def never():\n    return 0\n")
    (root / "pyproject.toml").write_text("[tool.coverage.run]\nbranch = true\n")
    (root / "drive.py").write_text(
        "from custom_components.smart_charge import config_flow, good, low\n"
        "config_flow.step(1)\n"
        "good.double(2)\n"
    )


def _measure(root: Path, lane: str | None = None) -> Path:
    """Run `drive.py` under coverage in a subprocess (as `lane`); return the data file."""
    data = root / (".coverage" if lane is None else f"run-{lane}.coverage")
    # The outer run's pytest-cov must not measure (or write into) this one.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE")}
    if lane is not None:
        env["LANE"] = lane
    subprocess.run(
        [
            sys.executable,
            "-m",
            "coverage",
            "run",
            f"--rcfile={root / 'pyproject.toml'}",
            f"--data-file={data}",
            f"--source={root / 'custom_components' / 'smart_charge'}",
            "drive.py",
        ],
        cwd=root,
        env=env,
        check=True,
    )
    return data


def test_gate_names_modules_below_their_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """config_flow.py under 100 % and low.py under 95 % fail; good.py passes."""
    gate = _gate()
    _layout(tmp_path)
    data = _measure(tmp_path)

    percents = gate.measured_percents(data, tmp_path)
    assert percents["good.py"] == 100.0
    assert percents["config_flow.py"] == pytest.approx(100 * 4 / 6)  # 3+1 of 4+2
    assert percents["low.py"] == 50.0

    assert gate.main(["gate", str(data)], tmp_path) == 1
    err = capsys.readouterr().err
    assert "config_flow.py: 66.67 % (needs 100 %)" in err
    assert "low.py: 50.00 % (needs 95 %)" in err
    assert "good.py" not in err
    assert "__init__.py" not in err


def test_gate_fails_on_a_module_never_measured_and_without_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A module missing from the data fails; no data file at all is its own error."""
    gate = _gate()
    problems = gate.shortfalls(["config_flow.py", "new.py"], {"config_flow.py": 100.0})
    assert problems == [
        "custom_components/smart_charge/new.py: not measured (needs 95 %)"
    ]
    assert gate.main(["gate", str(tmp_path / "missing")], tmp_path) == 2
    assert "no coverage data" in capsys.readouterr().err


def test_gate_passes_when_every_module_reaches_its_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the partly covered modules covered, the gate passes and says the lowest."""
    _layout(tmp_path)
    (tmp_path / "custom_components" / "smart_charge" / "low.py").unlink()
    (tmp_path / "drive.py").write_text(
        "from custom_components.smart_charge import config_flow, good\n"
        "config_flow.step(0)\nconfig_flow.step(1)\ngood.double(2)\n"
    )
    data = _measure(tmp_path)
    gate = _gate()
    assert gate.main(["gate", str(data)], tmp_path) == 0
    assert "coverage gate: 3 modules at their bar or floor" in capsys.readouterr().out


def test_a_pending_module_is_held_at_its_floor(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Listed as pending, low.py (50 %) passes at a floor of 40 % and fails at 60 %."""
    gate = _gate()
    _layout(tmp_path)
    data = _measure(tmp_path)
    monkeypatch.setattr(gate, "PENDING", {"config_flow.py": 60.0, "low.py": 40.0})
    assert gate.main(["gate", str(data)], tmp_path) == 0
    out = capsys.readouterr().out
    assert "low.py 50.00 % (floor 40, bar 95): pending" in out
    monkeypatch.setattr(gate, "PENDING", {"config_flow.py": 60.0, "low.py": 60.0})
    assert gate.main(["gate", str(data)], tmp_path) == 1
    assert "low.py: 50.00 % (needs 60 %)" in capsys.readouterr().err


def _layout_with_compat(root: Path) -> None:
    """Lay out a package whose compat.py takes one branch per "release" (LANE)."""
    package = root / "custom_components" / "smart_charge"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "config_flow.py").write_text("def step():\n    return 1\n")
    (package / "compat.py").write_text(
        "import os\n"
        "if os.environ.get('LANE') == 'newest':\n"
        "    SPELLING = 'new'\n"
        "else:\n"
        "    SPELLING = 'old'\n"
    )
    (root / "pyproject.toml").write_text("[tool.coverage.run]\nbranch = true\n")
    (root / "drive.py").write_text(
        "from custom_components.smart_charge import compat, config_flow\n"
        "config_flow.step()\n"
    )


def test_a_release_dependent_module_is_held_on_the_union_of_the_lanes(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """compat.py is 70 % on each lane: reported alone, gated and 100 % on the union."""
    gate = _gate()
    monkeypatch.setattr(gate, "PENDING", {})
    _layout_with_compat(tmp_path)
    minimum = _measure(tmp_path, "minimum")
    newest = _measure(tmp_path, "newest")
    alone = gate.measured_percents(minimum, tmp_path)["compat.py"]
    assert alone < 95.0

    # One lane only: compat.py is said, not gated, and the other modules are.
    assert gate.main(["gate", "--lane", "minimum", str(minimum)], tmp_path) == 0
    out = capsys.readouterr().out
    assert f"compat.py {alone:.2f} % on this lane alone, not gated" in out
    assert "coverage gate: 2 modules at their bar or floor" in out
    assert (tmp_path / ".coverage-lanes" / "minimum.coverage").is_file()

    # The second lane on the same source: the union covers both branches.
    assert gate.main(["gate", "--lane", "newest", str(newest)], tmp_path) == 0
    out = capsys.readouterr().out
    assert "compat.py 100.00 % on the union of the lanes minimum, newest" in out
    assert "coverage gate: 3 modules at their bar or floor" in out
    union = gate.union_percents(list(gate.kept_lanes(tmp_path).values()), tmp_path)
    assert union["compat.py"] == 100.0
    # The kept files are left as they were by the union.
    assert gate.measured_percents(minimum, tmp_path)["compat.py"] == alone


def test_a_lane_kept_for_another_source_is_not_in_the_union(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a module changes, the other lane's old data no longer counts."""
    gate = _gate()
    monkeypatch.setattr(gate, "PENDING", {})
    _layout_with_compat(tmp_path)
    minimum = _measure(tmp_path, "minimum")
    assert gate.main(["gate", "--lane", "minimum", str(minimum)], tmp_path) == 0
    capsys.readouterr()
    config_flow = tmp_path / "custom_components" / "smart_charge" / "config_flow.py"
    config_flow.write_text("def step():\n    return 2\n")
    assert gate.kept_lanes(tmp_path) == {}

    newest = _measure(tmp_path, "newest")
    assert gate.main(["gate", "--lane", "newest", str(newest)], tmp_path) == 0
    out = capsys.readouterr().out
    assert "on this lane alone, not gated" in out
    assert list(gate.kept_lanes(tmp_path)) == ["newest"]


def test_the_union_still_gates_a_release_dependent_module(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two lanes that take the same branch leave compat.py below its bar: it fails."""
    gate = _gate()
    monkeypatch.setattr(gate, "PENDING", {})
    _layout_with_compat(tmp_path)
    first = _measure(tmp_path, "minimum")
    assert gate.main(["gate", "--lane", "minimum", str(first)], tmp_path) == 0
    again = _measure(tmp_path, "minimum")
    assert gate.main(["gate", "--lane", "other", str(again)], tmp_path) == 1
    assert "compat.py: " in capsys.readouterr().err
