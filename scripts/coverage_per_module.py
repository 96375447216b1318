"""The per-module coverage gate: each module of the integration is at least 95 % covered.

    .venv/bin/python scripts/coverage_per_module.py [--lane NAME] [DATA_FILE]

Reads the coverage data pytest-cov wrote (`.coverage` in the repo, already combined from
the xdist workers) with the repo's own settings (pyproject's `[tool.coverage]`: branch
coverage, omissions, exclusions), so its percentages are those of pytest's report.
Every `.py` file under `custom_components/smart_charge` must be measured and reach
`MINIMUM` percent (statements and branches); `config_flow.py` must reach 100 %.
Exits 1 and names each module below its bar; exits 2 without coverage data.

Some code runs on one Home Assistant release only (`compat.py` picks, once, the call
each release offers). With `--lane NAME` the run's data is also kept as
`.coverage-lanes/NAME.coverage`, beside a fingerprint of the package's source; each
module of `BOTH_LANES` is then held to its bar on the union of every lane kept for this
very source (`scripts/test` keeps `minimum`, `scripts/test --latest` keeps `newest`).
Until a second lane has run on this source such a module is reported, not gated.

`scripts/test` runs it after a run of the whole suite; a run of part of the suite
(`scripts/test tests/engine`) covers part of the code, so it is not gated.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping, Sequence
import hashlib
import json
from pathlib import Path
import shutil
import sys
import tempfile

import coverage
from coverage.exceptions import NoDataError

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = Path("custom_components/smart_charge")
MINIMUM = 95.0
# Modules held to a higher bar than MINIMUM, by path inside the package.
REQUIRED: Mapping[str, float] = {"config_flow.py": 100.0}
# Modules whose branches depend on the Home Assistant release: measured on the union of
# the lanes (see the module's docstring).
BOTH_LANES: frozenset[str] = frozenset({"compat.py"})
# Where `--lane` keeps each lane's data, inside the repo.
LANES_DIR = Path(".coverage-lanes")
# Modules still below their bar, each held at a floor it may not fall below (a module
# leaves the table once it reaches its bar; the gate says when one has). Empty since
# issue #14: every module reaches its bar. Keep it empty; a new module comes with tests.
PENDING: Mapping[str, float] = {}


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


def source_fingerprint(root: Path = ROOT) -> str:
    """Return a digest of every module of the package: its path and its bytes."""
    digest = hashlib.sha256()
    for module in package_modules(root):
        digest.update(module.encode())
        digest.update(b"\0")
        digest.update((root / PACKAGE / module).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def keep_lane(data_file: Path, lane: str, root: Path = ROOT) -> None:
    """Keep `data_file` as lane `lane`'s data for the package's current source."""
    lanes = root / LANES_DIR
    lanes.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data_file, lanes / f"{lane}.coverage")
    (lanes / f"{lane}.source").write_text(source_fingerprint(root), encoding="utf-8")


def kept_lanes(root: Path = ROOT) -> dict[str, Path]:
    """Return each kept lane's data file whose source is the package's current one."""
    lanes = root / LANES_DIR
    if not lanes.is_dir():
        return {}
    current = source_fingerprint(root)
    kept: dict[str, Path] = {}
    for data in sorted(lanes.glob("*.coverage")):
        source = data.with_suffix(".source")
        if source.is_file() and source.read_text(encoding="utf-8").strip() == current:
            kept[data.stem] = data
    return kept


def union_percents(data_files: Sequence[Path], root: Path = ROOT) -> dict[str, float]:
    """Return each module's percent on the union of `data_files` (left unchanged)."""
    with tempfile.TemporaryDirectory() as tmp:
        union = Path(tmp) / ".coverage"
        cov = coverage.Coverage(
            data_file=str(union), config_file=str(root / "pyproject.toml")
        )
        cov.combine([str(path) for path in data_files], keep=True)
        cov.save()
        return measured_percents(union, root)


def _arguments(argv: Sequence[str], root: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=Path(argv[0]).name if argv else "gate")
    parser.add_argument(
        "--lane", help="keep this run's data as this lane's, for the union"
    )
    parser.add_argument("data_file", nargs="?", type=Path, default=root / ".coverage")
    return parser.parse_args(list(argv[1:]))


def main(argv: Sequence[str], root: Path = ROOT) -> int:
    """Check the data file named in `argv` (default `.coverage` in the repo)."""
    args = _arguments(argv, root)
    data_file: Path = args.data_file
    if not data_file.is_file():
        print(f"coverage gate: no coverage data at {data_file}", file=sys.stderr)
        return 2
    try:
        percents = measured_percents(data_file, root)
    except NoDataError as err:
        print(f"coverage gate: {err}", file=sys.stderr)
        return 2
    modules = package_modules(root)
    both = [module for module in modules if module in BOTH_LANES]
    if both:
        if args.lane:
            keep_lane(data_file, args.lane, root)
        lanes = kept_lanes(root)
        if len(lanes) >= 2:
            union = union_percents(list(lanes.values()), root)
            percents.update({module: union.get(module, 0.0) for module in both})
            for module in both:
                print(
                    f"coverage gate: {module} {percents[module]:.2f} % on the union "
                    f"of the lanes {', '.join(sorted(lanes))}"
                )
        else:
            for module in both:
                now = percents.get(module, 0.0)
                print(
                    f"coverage gate: {module} {now:.2f} % on this lane alone, not gated:"
                    " its bar applies to both lanes' data (run scripts/test and"
                    " scripts/test --latest)"
                )
            modules = [module for module in modules if module not in BOTH_LANES]
    problems = shortfalls(modules, percents)
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
    gated = {module: percents[module] for module in modules}
    lowest = min(gated, key=lambda module: gated[module])
    print(
        f"coverage gate: {len(gated)} modules at their bar or floor "
        f"(lowest: {lowest} {gated[lowest]:.2f} %)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
