"""Benchmark the engine: prints timings, never asserts.

Run: .venv/bin/python scripts/bench_engine.py [runs]   (default 7 runs per figure)
The machine may be shared: compare before/after in one sitting, and look at the min too.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
import random
import statistics
import sys
import time

import engine_path  # noqa: F401  (the engine without Home Assistant)

from custom_components.smart_charge.engine import (
    Panel,
    Phase,
    Session,
    SessionProfile,
    Site,
    SmartChargingEngine,
    allocate_site,
)

NOW = datetime(2025, 1, 1, 12, tzinfo=UTC)
RUNS = 7


def make_sessions(
    count: int, panel_ids: list[str], fair_kw: float, rng: random.Random
) -> list[Session]:
    """Sessions of which ~40 % are capped below their fair share."""
    sessions = []
    for i in range(count):
        capped = rng.random() < 0.4
        hardware = rng.uniform(0.5, 0.95) * fair_kw if capped else 22.0
        sessions.append(
            Session(
                transaction_id=i,
                client_id=f"CP-{i}",
                max_hardware_power_kw=max(hardware, 1.5),
                min_charge_rate_kw=1.4,
                phases=3,
                panel_id=panel_ids[i % len(panel_ids)],
            )
        )
    return sessions


def flat_site(count: int) -> tuple[Site, list[str]]:
    """One panel with room for ~5 kW per session."""
    return Site(panels=[Panel(id="root", limit_kw=5.0 * count)]), ["root"]


def tree_site(count: int) -> tuple[Site, list[str]]:
    """Root, 10 sub-panels, 10 sub-sub-panels each (111 panels)."""
    panels = [Panel(id="root", limit_kw=5.0 * count)]
    leaves = []
    for a in range(10):
        panels.append(Panel(id=f"p{a}", limit_kw=0.7 * count, parent_id="root"))
        for b in range(10):
            leaf = f"p{a}.{b}"
            panels.append(Panel(id=leaf, limit_kw=0.08 * count + 10, parent_id=f"p{a}"))
            leaves.append(leaf)
    return Site(panels=panels), leaves


def short_site(count: int) -> tuple[Site, list[str]]:
    """A 3-level tree (111 panels, 32 A per phase on the leaves) short of power."""
    panels = [Panel(id="root", limit_kw=1.6 * count)]
    leaves = []
    for a in range(10):
        panels.append(Panel(id=f"p{a}", limit_kw=0.2 * count, parent_id="root"))
        for b in range(10):
            leaf = f"p{a}.{b}"
            panels.append(
                Panel(
                    id=leaf,
                    limit_kw=0.025 * count + 5,
                    phase_limit_a=0.04 * count + 10,
                    parent_id=f"p{a}",
                )
            )
            leaves.append(leaf)
    return Site(panels=panels), leaves


def short_sessions(
    count: int, panel_ids: list[str], rng: random.Random
) -> list[Session]:
    """Mixed single- and three-phase cars whose minimums do not all fit."""
    sessions = []
    for i in range(count):
        three = rng.random() < 0.4
        sessions.append(
            Session(
                transaction_id=i,
                client_id=f"CP-{i}",
                max_hardware_power_kw=11.0 if three else 7.4,
                phases=3 if three else 1,
                grid_phase=(Phase.L1, Phase.L2, Phase.L3)[i % 3],
                priority=1 if rng.random() < 0.8 else 2,
                panel_id=panel_ids[i % len(panel_ids)],
                sequence=i,
            )
        )
    return sessions


def times_ms(action: object, runs: int | None = None) -> list[float]:
    """Wall times of action() in ms, one per run (RUNS by default)."""
    assert callable(action)
    times = []
    for _ in range(runs or RUNS):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def median_ms(action: object, runs: int | None = None) -> float:
    """Median wall time of action() in ms."""
    return statistics.median(times_ms(action, runs))


def bench_allocate() -> None:
    """allocate_site for growing n, flat and in a 3-level tree."""
    rng = random.Random(42)
    for label, build in (("flat", flat_site), ("3-level tree", tree_site)):
        print(f"allocate_site, {label} (~40 % capped below fair share):")
        previous = None
        for count in (10, 100, 1_000, 10_000):
            site, ids = build(count)
            sessions = make_sessions(count, ids, 5.0, rng)
            times = times_ms(lambda s=site, x=sessions: allocate_site(s, x, now=NOW))
            ms = statistics.median(times)
            growth = f"x{ms / previous:5.1f} for x10 n" if previous else ""
            print(f"  n={count:>6}: {ms:8.2f} ms (min {min(times):7.2f})  {growth}")
            previous = ms
    print("allocate_site, short of power (3-level tree, 1-/3-phase, ~half paused):")
    for count in (10, 100, 1_000, 10_000):
        site, ids = short_site(count)
        sessions = short_sessions(count, ids, rng)
        result = allocate_site(site, sessions, now=NOW)
        times = times_ms(lambda s=site, x=sessions: allocate_site(s, x, now=NOW))
        print(
            f"  n={count:>6}: {statistics.median(times):8.2f} ms "
            f"(min {min(times):7.2f})  paused {len(result.paused)}"
        )


def bench_engine() -> None:
    """SmartChargingEngine.optimize on one pool."""
    rng = random.Random(7)
    print("SmartChargingEngine.optimize (one pool):")
    for count in (10, 100, 1_000, 10_000):
        engine = SmartChargingEngine("bench", 5.0 * count, _noop)
        for session in make_sessions(count, ["bench"], 5.0, rng):
            engine.add_session(session)
        ms = median_ms(lambda e=engine: e.optimize(now=NOW))
        print(f"  n={count:>6}: {ms:8.2f} ms")


async def _noop(session: Session, profile: SessionProfile) -> None:
    """A dispatcher that sends nothing."""


async def master_sub(panels: int, per_panel: int) -> float:
    """One master dispatch over `panels` sub-engines of `per_panel` sessions each (ms)."""
    subs: dict[str, SmartChargingEngine] = {}
    for p in range(panels):
        sub = SmartChargingEngine(f"SUB-{p}", 80.0, _noop)
        for s in range(per_panel):
            sub.add_session(
                transaction_id=f"{p}-{s}",
                client_id=f"CP-{p}-{s}",
                max_hardware_power_kw=11.0,
            )
        subs[f"PANEL-{p}"] = sub

    async def to_sub(session: Session, profile: SessionProfile) -> None:
        sub = subs[session.client_id]
        sub.set_grid_limit(profile.allocated_kw)
        await sub.dispatch(now=NOW)

    master = SmartChargingEngine("SITE-MASTER", 40.0 * panels, to_sub)
    for p in range(panels):
        master.add_session(
            transaction_id=f"panel{p}",
            client_id=f"PANEL-{p}",
            max_hardware_power_kw=80.0,
        )
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        await master.dispatch(now=NOW)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def main() -> None:
    """Run every benchmark."""
    global RUNS  # noqa: PLW0603 - set once from the command line
    if len(sys.argv) > 1:
        RUNS = int(sys.argv[1])
    print(f"Python {sys.version.split()[0]}, median of {RUNS} runs")
    bench_allocate()
    bench_engine()
    print("Seed master engine + sub-engines (one master dispatch):")
    for panels, per_panel in ((10, 10), (100, 100)):
        ms = asyncio.run(master_sub(panels, per_panel))
        print(f"  {panels:>3} x {per_panel:<3}: {ms:8.2f} ms")


if __name__ == "__main__":
    main()
