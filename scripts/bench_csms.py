"""Load figure for the OCPP server: many simulated chargers at once. Prints, never asserts.

    .venv/bin/python scripts/bench_csms.py [--chargers 500] [--interval 10] [--window 12]
                                           [--max-seconds 120]

The server and the controller run in this process; the simulated chargers run in a child
process, so the memory figure is the server's alone. Every charger boots, starts a
transaction and sends a heartbeat and meter values every `--interval` seconds during a
`--window`; the figures are the MeterValues round trip seen by the chargers (median, p99),
the time to fan a limit change out to every charger (idle, then under the meter load), the
longest the server's event loop went without running anything else during each fan-out (a
task wakes every millisecond and records how late it is) and the server memory per connected
charger.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
from pathlib import Path
import random
import resource
import statistics
import sys
import time
import tracemalloc
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.smart_charge.control import ChargerConfig, SiteController
from custom_components.smart_charge.csms import CentralSystem, ServerConfig
from custom_components.smart_charge.engine import Panel, Site
from tools.simulator import SimulatedCharger

PAGE = resource.getpagesize()


def _rss_bytes() -> int:
    with contextlib.suppress(OSError):
        return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


# ------------------------------------------------------------------ charger side


async def _chargers(args: argparse.Namespace) -> None:
    """Child process: connect, plug in, report ready, then load for one window."""
    ids = [f"B{i:03d}" for i in range(args.chargers)]
    sims = [
        SimulatedCharger(cid, args.url, version="1.6" if i % 2 else "2.0.1")
        for i, cid in enumerate(ids)
    ]
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )
    try:
        start = time.perf_counter()
        for batch in range(0, len(sims), 50):
            await asyncio.gather(*(sim.start() for sim in sims[batch : batch + 50]))
        connected = time.perf_counter() - start
        await asyncio.gather(*(sim.plug_in() for sim in sims))
        print(json.dumps({"ready": True, "connect_s": connected}), flush=True)
        await reader.readline()  # "go"

        latencies: list[tuple[float, float]] = []  # (monotonic start, seconds)
        rng = random.Random(1)
        deadline = time.monotonic() + args.window

        async def load(sim: SimulatedCharger) -> None:
            await asyncio.sleep(rng.uniform(0, args.interval))
            while time.monotonic() < deadline:
                await sim.heartbeat()
                t0, p0 = time.monotonic(), time.perf_counter()
                await sim.send_meter_values()
                latencies.append((t0, time.perf_counter() - p0))
                await asyncio.sleep(args.interval)

        await asyncio.gather(*(load(sim) for sim in sims))
        print(json.dumps({"latencies": latencies}), flush=True)
        await reader.readline()  # "stop"
    finally:
        await asyncio.gather(*(sim.stop() for sim in sims), return_exceptions=True)


# ------------------------------------------------------------------- server side


class _LoopLag:
    """Wake every millisecond; the lateness of each wake-up is an event loop stall."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []  # (monotonic wake-up, lateness s)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.001)
            now = time.monotonic()
            self.samples.append((now, max(0.0, now - before - 0.001)))

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def worst_ms(self, start: float, end: float) -> float:
        """Return the longest stall (ms) that ended between `start` and `end`."""
        lags = [lag for at, lag in self.samples if start <= at <= end + 0.1]
        return max(lags, default=0.0) * 1000


async def _fan_out(
    controller: SiteController, configs: dict[str, ChargerConfig], kw_each: float
) -> tuple[float, float, float]:
    """Change the site limit; return (seconds, monotonic start, monotonic end)."""
    controller.update_site(
        Site(panels=[Panel(id="main", limit_kw=len(configs) * kw_each)]), configs
    )
    fan_start, start = time.monotonic(), time.perf_counter()
    await controller.rebalance()
    return time.perf_counter() - start, fan_start, time.monotonic()


def _print_latencies(label: str, latencies: list[float], interval: float) -> None:
    if not latencies:
        return
    latencies.sort()
    p99 = latencies[max(0, int(len(latencies) * 0.99) - 1)]
    print(
        f"MeterValues round trip, {label}: {len(latencies)} messages "
        f"(heartbeat + meter values every {interval:g} s per charger): "
        f"median {statistics.median(latencies) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms"
    )


async def _server(args: argparse.Namespace) -> None:
    count = args.chargers
    configs = {f"B{i:03d}": ChargerConfig(f"B{i:03d}", "main") for i in range(count)}
    holder: dict[str, SiteController] = {}
    lag = _LoopLag()
    tracemalloc.start()
    rss_before = _rss_bytes()
    traced_before = tracemalloc.get_traced_memory()[0]
    server = CentralSystem(
        ServerConfig(host="127.0.0.1", port=0, call_timeout_s=30.0),
        lambda event: holder["controller"].handle_event(event),
    )
    # The server's own share of a MeterValues round trip: frame in to answer sent.
    handled: list[tuple[float, float]] = []  # (monotonic start, seconds)
    handle_frame = server.handle_frame

    async def timed_handle_frame(*frame_args: Any) -> None:
        t0, p0 = time.monotonic(), time.perf_counter()
        await handle_frame(*frame_args)
        if '"MeterValues"' in frame_args[3]:
            handled.append((t0, time.perf_counter() - p0))

    server.handle_frame = timed_handle_frame  # type: ignore[method-assign]
    site = Site(panels=[Panel(id="main", limit_kw=count * 7.0)])
    controller = holder["controller"] = SiteController(server, site, configs)
    await server.start()
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--role",
        "chargers",
        "--url",
        f"ws://127.0.0.1:{server.port}",
        "--chargers",
        str(count),
        "--interval",
        str(args.interval),
        "--window",
        str(args.window),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None
    assert child.stdout is not None

    async def message() -> dict[str, Any]:
        assert child.stdout is not None
        line = await child.stdout.readline()
        if not line:
            raise RuntimeError("the charger process ended early")
        result: dict[str, Any] = json.loads(line)
        return result

    try:
        async with asyncio.timeout(args.max_seconds):
            ready = await message()
            print(
                f"{count} chargers connected and booted in {ready['connect_s']:.2f} s"
            )
            await controller.rebalance()
            pending = set(controller._tasks)  # noqa: SLF001 - capability reads settle
            if pending:
                await asyncio.wait(pending)
            sessions = len(controller.sessions())
            traced = tracemalloc.get_traced_memory()[0] - traced_before
            rss = _rss_bytes() - rss_before
            print(
                f"server memory per charger ({sessions} in a transaction): "
                f"{traced / count / 1024:.1f} KiB traced, "
                f"{rss / count / 1024:.1f} KiB RSS"
            )
            tracemalloc.stop()

            lag.start()
            elapsed, fan_start, fan_end = await _fan_out(controller, configs, 3.5)
            print(
                f"fan-out of a limit change to {count} chargers, idle: {elapsed:.2f} s"
                f" (longest event loop stall {lag.worst_ms(fan_start, fan_end):.1f} ms)"
            )

            child.stdin.write(b"go\n")
            await child.stdin.drain()
            await asyncio.sleep(args.window / 2)
            elapsed, fan_start, fan_end = await _fan_out(controller, configs, 5.0)
            print(
                f"fan-out of a limit change to {count} chargers, under meter load: "
                f"{elapsed:.2f} s (longest event loop stall "
                f"{lag.worst_ms(fan_start, fan_end):.1f} ms)"
            )
            samples = (await message())["latencies"]
            print(
                "longest event loop stall under meter load after the fan-out: "
                f"{lag.worst_ms(fan_end + 0.5, time.monotonic()):.1f} ms"
            )
            _print_latencies("all", [rtt for _, rtt in samples], args.interval)
            _print_latencies(
                "outside the fan-out",
                [rtt for t0, rtt in samples if t0 + rtt < fan_start or t0 > fan_end],
                args.interval,
            )
            _print_latencies(
                "overlapping the fan-out",
                [rtt for t0, rtt in samples if t0 <= fan_end and t0 + rtt >= fan_start],
                args.interval,
            )
            _print_latencies(
                "server side only (frame in to answer sent), overlapping the fan-out",
                [rtt for t0, rtt in handled if t0 <= fan_end and t0 + rtt >= fan_start],
                args.interval,
            )
    except TimeoutError:
        print(f"stopped after --max-seconds {args.max_seconds:g}")
    finally:
        with contextlib.suppress(OSError):
            child.stdin.write(b"stop\n")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await child.wait()
        if child.returncode is None:
            child.kill()
        await lag.stop()
        await controller.stop()
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chargers", type=int, default=500)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--window", type=float, default=12.0)
    parser.add_argument("--max-seconds", type=float, default=180.0)
    parser.add_argument("--role", choices=("server", "chargers"), default="server")
    parser.add_argument("--url", default="")
    args, _ = parser.parse_known_args()
    args.chargers = max(1, min(args.chargers, 2000))
    args.window = max(1.0, min(args.window, 120.0))
    logging.basicConfig(level=logging.ERROR)
    _raise_fd_limit(args.chargers * 2 + 100)
    asyncio.run(_chargers(args) if args.role == "chargers" else _server(args))


if __name__ == "__main__":
    main()
