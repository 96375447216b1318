"""The per-module coverage gate: each module of the integration is at least 95 % covered.

    .venv/bin/python scripts/coverage_per_module.py [DATA_FILE]

Reads the coverage data pytest-cov wrote (`.coverage` in the repo, already combined from
the xdist workers) with the repo's own settings (pyproject's `[tool.coverage]`: branch
coverage, omissions, exclusions), so its percentages are those of pytest's report.
Every `.py` file under `custom_components/smart_charge` must be measured and reach
`MINIMUM` percent (statements and branches); `config_flow.py` must reach 100 %.
Exits 1 and names each module below its bar; exits 2 without coverage data.

`scripts/test` runs it after a run of the whole suite; a run of part of the suite
(`scripts/test tests/engine`) covers part of the code, so it is not gated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
import json
from pathlib import Path
import sys
import tempfile

import coverage
from coverage.exceptions import NoDataError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path("custom_components/smart_charge")
MINIMUM = 95.0
# Modules held to a higher bar than MINIMUM, by path inside the package.
REQUIRED: Mapping[str, float] = {"config_flow.py": 100.0}
# Issue #14 is not done: these modules are still below their bar. Each may not fall
# below its floor here (one point under what it reached when listed, 2026-12-01, as
# timing-dependent paths vary a little between runs); a module leaves this table once it
# reaches its bar, and the gate says when one has. compat.py's other half runs on the
# newest Home Assistant only (its version branches), which this lane does not measure.
PENDING: Mapping[str, float] = {
    "__init__.py": 93.0,  # 94.37
    "budgets.py": 92.0,  # 93.87
    "compat.py": 81.0,  # 82.46
    "control/discharge.py": 91.0,  # 92.15
    "control/orchestrator.py": 93.0,  # 94.00
    "control/writer.py": 84.0,  # 85.79-86.31: its timeout branches vary run to run
    "devices.py": 93.0,  # 94.44
    "services.py": 93.0,  # 94.98
}


def measured_percents(data_file: Path, root: Path = ROOT) -> dict[str, float]:
    """Return each measured module of the package (path inside it) and its percent."""
    cov = coverage.Coverage(
        data_file=str(data_file), config_file=str(root / "pyproject.toml")
    )
    cov.load()
    package = (root / PACKAGE).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out), include=[f"{package}/*"])
        files: dict[str, dict[str, dict[str, float]]] = json.loads(
            out.read_text(encoding="utf-8")
        )["files"]
    percents: dict[str, float] = {}
    for name, report in files.items():
        path = Path(name)
        path = (path if path.is_absolute() else root / path).resolve()
        percents[path.relative_to(package).as_posix()] = report["summary"][
            "percent_covered"
        ]
    return percents


def shortfalls(modules: Iterable[str], percents: Mapping[str, float]) -> list[str]:
    """Return a line for each module below its bar, or not measured at all."""
    problems: list[str] = []
    for module in sorted(modules):
        bar = PENDING.get(module, REQUIRED.get(module, MINIMUM))
        if module not in percents:
            problems.append(f"{PACKAGE / module}: not measured (needs {bar:g} %)")
        elif percents[module] < bar:
            problems.append(
                f"{PACKAGE / module}: {percents[module]:.2f} % (needs {bar:g} %)"
            )
    return problems


def package_modules(root: Path = ROOT) -> list[str]:
    """Return every Python module of the package, as a path inside it."""
    package = root / PACKAGE
    return sorted(p.relative_to(package).as_posix() for p in package.rglob("*.py"))


def main(argv: list[str], root: Path = ROOT) -> int:
    """Check the data file named in `argv` (default `.coverage` in the repo)."""
    data_file = Path(argv[1]) if len(argv) > 1 else root / ".coverage"
    if not data_file.is_file():
        print(f"coverage gate: no coverage data at {data_file}", file=sys.stderr)
        return 2
    try:
        percents = measured_percents(data_file, root)
    except NoDataError as err:
        print(f"coverage gate: {err}", file=sys.stderr)
        return 2
    problems = shortfalls(package_modules(root), percents)
    if problems:
        print("coverage gate: modules below their bar:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    for module, floor in sorted(PENDING.items()):
        bar = REQUIRED.get(module, MINIMUM)
        now = percents.get(module, 0.0)
        state = "reached its bar: remove it from PENDING" if now >= bar else "pending"
        print(
            f"coverage gate: {module} {now:.2f} % (floor {floor:g}, bar {bar:g}): {state}"
        )
    lowest = min(percents, key=lambda module: percents[module])
    print(
        f"coverage gate: {len(percents)} modules at their bar or floor "
        f"(lowest: {lowest} {percents[lowest]:.2f} %)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
