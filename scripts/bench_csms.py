"""Benchmark the OCPP server: messages per second from many simulated chargers.

Prints numbers, never asserts. Bounded in chargers, messages and wall time:
    .venv/bin/python scripts/bench_csms.py [--chargers 50] [--messages 40] [--max-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.smart_charge.csms import CentralSystem, ServerConfig
from custom_components.smart_charge.csms.controller import ChargerConfig, SiteController
from custom_components.smart_charge.csms.simulator import SimulatedCharger
from custom_components.smart_charge.engine import Panel, Site


async def bench(chargers: int, messages: int, max_seconds: float) -> None:
    site = Site(panels=[Panel(id="main", limit_kw=chargers * 7.0)])
    holder: dict[str, SiteController] = {}
    server = CentralSystem(
        ServerConfig(host="127.0.0.1", port=0, call_timeout_s=10.0),
        lambda event: holder["controller"].handle_event(event),
    )
    configs = {f"B{i:03d}": ChargerConfig(f"B{i:03d}", "main") for i in range(chargers)}
    controller = holder["controller"] = SiteController(server, site, configs)
    await server.start()
    url = f"ws://127.0.0.1:{server.port}"
    sims = [
        SimulatedCharger(cid, url, version="1.6" if i % 2 else "2.0.1")
        for i, cid in enumerate(configs)
    ]
    deadline = time.monotonic() + max_seconds
    try:
        start = time.perf_counter()
        await asyncio.gather(*(sim.start() for sim in sims))
        print(f"connect+boot {chargers} chargers: {time.perf_counter() - start:.2f} s")

        start = time.perf_counter()
        await asyncio.gather(*(sim.plug_in() for sim in sims))
        await controller.rebalance()
        elapsed = time.perf_counter() - start
        print(
            f"{chargers} transactions started and first limits applied: {elapsed:.2f} s"
        )

        latencies: list[float] = []

        async def flood(sim: SimulatedCharger) -> int:
            sent = 0
            for _ in range(messages):
                if time.monotonic() > deadline:
                    break
                t0 = time.perf_counter()
                await sim.send_meter_values()
                latencies.append(time.perf_counter() - t0)
                sent += 1
            return sent

        start = time.perf_counter()
        counts = await asyncio.gather(*(flood(sim) for sim in sims))
        elapsed = time.perf_counter() - start
        total = sum(counts)
        print(
            f"MeterValues: {total} messages from {chargers} chargers in {elapsed:.2f} s"
            f" = {total / elapsed:.0f} msg/s"
        )
        if latencies:
            latencies.sort()
            print(
                f"  round trip median {statistics.median(latencies) * 1000:.1f} ms,"
                f" p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.1f} ms"
            )

        # One rebalance that changes every limit: halve the panel.
        controller.update_site(
            Site(panels=[Panel(id="main", limit_kw=chargers * 3.5)]), configs
        )
        start = time.perf_counter()
        await controller.rebalance()
        elapsed = time.perf_counter() - start
        print(f"rebalance sending {chargers} decreased limits: {elapsed * 1000:.0f} ms")
    finally:
        await asyncio.gather(*(sim.stop() for sim in sims), return_exceptions=True)
        await controller.stop()
        await server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chargers", type=int, default=50)
    parser.add_argument(
        "--messages", type=int, default=40, help="meter values per charger"
    )
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args, _ = parser.parse_known_args()
    logging.basicConfig(level=logging.ERROR)
    chargers = max(1, min(args.chargers, 500))
    messages = max(1, min(args.messages, 1000))
    asyncio.run(bench(chargers, messages, args.max_seconds))


if __name__ == "__main__":
    main()
