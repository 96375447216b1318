"""Control-layer figures: reaction time, CPU per meter value, flash writes. Prints only.

    .venv/bin/python scripts/bench_control.py [--quick] [--only wire|day]   (wire: (a) and (b))

(a) **Budget change to the wire.** The real server and `SiteController` run in this
    process; 50, then 500 simulated chargers (real `ocpp` clients, half 1.6, half 2.0.1,
    each with a car charging) run in a child process. The panel limit is changed with
    `update_site` (what Home Assistant does), alternately down and up, and each change
    waits until its rebalance is done. The time is from the `update_site` call to the
    first SetChargingProfile *received by a charger* (the simulator's `received_at`, the
    same CLOCK_MONOTONIC in both processes), and to the last charger's.
(b) **CPU per MeterValues.** In the same setup, every charger sends MeterValues (1.6) or
    TransactionEvent(Updated) with meter values (2.0.1) at a fixed rate and nothing else;
    the server process's CPU time (user + sys: websocket, JSON, schema validation, the
    server's handlers, the controller and any rebalance they cause) over that window,
    divided by the messages answered, minus the process's idle CPU. The controller's
    own share (`handle_event` for those events, thread CPU time) is shown apart.
(c) **Profile writes in a simulated day.** The real server and a few real simulated
    chargers in one process whose event loop runs on a compressed clock: when nothing is
    ready to run and no socket is readable, the loop's clock jumps to its next timer, so
    every timer (the controller's `min_increase_interval_s`, the chargers' meter values
    every 60 s, the call timeouts, websocket keepalives) runs in simulated time. The
    panel's limit follows a solar curve with passing clouds, sampled every minute for
    24 h; cars stay plugged in all day (the worst case). Counted: the SetChargingProfile
    each charger received, with the realistic options (dead band 0.5 A, one increase per
    10 s) and, for comparison, without either.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import Counter
from collections.abc import Callable, Sequence
import contextlib
import itertools
import json
import logging
import math
from pathlib import Path
import random
import resource
import selectors
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from custom_components.smart_charge.control import ChargerConfig, SiteController
from custom_components.smart_charge.csms import CentralSystem, ServerConfig
from custom_components.smart_charge.csms.events import ChargerEvent, MeterValuesReceived
from custom_components.smart_charge.engine import Panel, Site
from tools.simulator import SimulatedCharger

VOLTAGE_V = 230.0


def _raise_fd_limit(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(len(ordered) * pct) - 1))]


def _site(limit_kw: float) -> Site:
    return Site(panels=[Panel(id="main", limit_kw=limit_kw)], voltage_v=VOLTAGE_V)


def _print_table(
    title: str, header: tuple[str, ...], rows: Sequence[tuple[str, ...]]
) -> None:
    widths = [
        max(len(header[i]), *(len(row[i]) for row in rows)) for i in range(len(header))
    ]
    print(title)
    print("  " + "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  " + "  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


# ---------------------------------------------------------- (a), (b): charger side


async def _chargers(args: argparse.Namespace) -> None:
    """Child process: connect, plug in, then obey commands on stdin."""
    sims = [
        SimulatedCharger(f"B{i:03d}", args.url, version="1.6" if i % 2 else "2.0.1")
        for i in range(args.chargers)
    ]
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin
    )

    def say(data: dict[str, Any]) -> None:
        print(json.dumps(data), flush=True)

    try:
        for batch in range(0, len(sims), 50):
            await asyncio.gather(*(sim.start() for sim in sims[batch : batch + 50]))
        await asyncio.gather(*(sim.plug_in() for sim in sims))
        say({"ready": True})
        while line := (await reader.readline()).decode().split():
            if line[0] == "profiles":
                say(
                    {
                        "received": [
                            [p.received_at for p in s.received_profiles] for s in sims
                        ]
                    }
                )
            elif line[0] == "meter":
                sent = await _meter_load(sims, float(line[1]), float(line[2]))
                say({"sent": sent})
            else:
                break
    finally:
        await asyncio.gather(*(sim.stop() for sim in sims), return_exceptions=True)


async def _meter_load(
    sims: list[SimulatedCharger], interval: float, window: float
) -> int:
    """Every charger sends meter values every `interval` s for `window` s."""
    sent = 0
    rng = random.Random(1)
    deadline = time.monotonic() + window

    async def load(sim: SimulatedCharger) -> None:
        nonlocal sent
        await asyncio.sleep(rng.uniform(0, interval))
        while time.monotonic() < deadline:
            await sim.send_meter_values()
            sent += 1
            await asyncio.sleep(interval)

    await asyncio.gather(*(load(sim) for sim in sims))
    return sent


# ----------------------------------------------------------- (a), (b): server side


async def _wire_and_cpu(
    count: int, changes: int, meter_window: float, meter_interval: float
) -> dict[str, Any]:
    configs = {
        f"B{i:03d}": ChargerConfig(f"B{i:03d}", "main", max_current_a=16.0)
        for i in range(count)
    }
    holder: dict[str, SiteController] = {}
    controller_cpu = [0.0, 0]  # thread CPU seconds in handle_event, MeterValues seen

    def on_event(event: ChargerEvent) -> None:
        if isinstance(event, MeterValuesReceived):
            t0 = time.thread_time()
            holder["controller"].handle_event(event)
            controller_cpu[0] += time.thread_time() - t0
            controller_cpu[1] += 1
        else:
            holder["controller"].handle_event(event)

    server = CentralSystem(
        ServerConfig(host="127.0.0.1", port=0, call_timeout_s=30.0), on_event
    )
    # Two budgets, both above every minimum: each change moves every session's limit.
    low, high = count * 5.0, count * 7.0
    controller = holder["controller"] = SiteController(server, _site(high), configs)
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
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=2**26,
    )
    assert child.stdin is not None
    assert child.stdout is not None

    async def ask(command: str) -> dict[str, Any]:
        assert child.stdin is not None
        assert child.stdout is not None
        if command:
            child.stdin.write(command.encode() + b"\n")
            await child.stdin.drain()
        line = await child.stdout.readline()
        if not line:
            raise RuntimeError("the charger process ended early")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def settle() -> None:
        while True:
            pending = {t for t in controller._tasks if not t.done()}  # noqa: SLF001
            if not pending:
                return
            await asyncio.wait(pending)

    result: dict[str, Any] = {"chargers": count}
    try:
        await ask("")  # ready
        await controller.rebalance()
        await settle()
        await asyncio.sleep(0.5)
        # (a) budget changes
        starts: list[tuple[str, float]] = []
        for i in range(changes):
            direction = "down" if i % 2 == 0 else "up"
            await asyncio.sleep(0.2)
            t0 = time.monotonic()
            controller.update_site(_site(low if direction == "down" else high), configs)
            await settle()
            starts.append((direction, t0))
        await asyncio.sleep(0.3)
        received = (await ask("profiles"))["received"]
        times = sorted(t for charger in received for t in charger)
        first: dict[str, list[float]] = {"down": [], "up": []}
        last: dict[str, list[float]] = {"down": [], "up": []}
        for i, (direction, t0) in enumerate(starts):
            end = starts[i + 1][1] if i + 1 < len(starts) else math.inf
            inside = [t for t in times if t0 <= t < end]
            if inside:
                first[direction].append(inside[0] - t0)
                last[direction].append(inside[-1] - t0)
        result["first"], result["last"] = first, last
        result["writes_per_change"] = len(
            [t for t in times if t >= starts[0][1]]
        ) / max(1, changes)
        # (b) CPU per MeterValues
        idle0 = time.process_time()
        await asyncio.sleep(1.0)
        idle_per_s = time.process_time() - idle0
        controller_cpu[:] = [0.0, 0]
        cpu0, wall0 = time.process_time(), time.monotonic()
        sent = (await ask(f"meter {meter_interval} {meter_window}"))["sent"]
        await settle()
        cpu = time.process_time() - cpu0 - idle_per_s * (time.monotonic() - wall0)
        result["meter"] = {
            "sent": sent,
            "rate": sent / meter_window,
            "cpu_per_msg": cpu / max(1, sent),
            "controller_per_msg": controller_cpu[0] / max(1, controller_cpu[1]),
            "idle_cpu_per_s": idle_per_s,
        }
    finally:
        with contextlib.suppress(OSError):
            child.stdin.write(b"stop\n")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                await child.wait()
        if child.returncode is None:
            child.kill()
        await controller.stop()
        await server.stop()
    return result


# --------------------------------------------------------------- (c) solar day


class _JumpSelector(selectors.DefaultSelector):
    """A selector that, instead of sleeping, moves its loop's clock to the next timer."""

    loop: _CompressedLoop

    def select(self, timeout: float | None = None) -> list[Any]:
        if self.loop.in_executor:
            # A thread (the ocpp library validates schemas in one) will wake the
            # loop: wait for it in real time.
            real: list[Any] = super().select(timeout)
            return real
        events: list[Any] = super().select(0 if timeout is not None else None)
        if not events and timeout is not None:
            self.loop.offset += timeout  # nothing to do until the next timer: go there
            self.loop.jumps += 1
        return events


class _CompressedLoop(asyncio.SelectorEventLoop):
    """An event loop on a compressed clock: idle waits take no real time."""

    def __init__(self) -> None:
        selector = _JumpSelector()
        super().__init__(selector)
        selector.loop = self
        self.offset = 0.0
        self.in_executor = 0
        self.jumps = 0

    def time(self) -> float:
        return float(time.monotonic() + self.offset)

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        self.in_executor += 1
        future = super().run_in_executor(executor, func, *args)

        def done(_: asyncio.Future[Any]) -> None:
            self.in_executor -= 1

        future.add_done_callback(done)
        return future

    async def shutdown_default_executor(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 (asyncio's own signature)
    ) -> None:
        """Join the executor's threads on the real clock (a thread joins them)."""
        self.in_executor += 1
        try:
            await super().shutdown_default_executor(timeout)
        finally:
            self.in_executor -= 1


def _solar_kw(minute: int, peak_kw: float, clouds: list[float]) -> float:
    """A clear-sky bell from 06:00 to 20:00 times a cloud factor."""
    hour = minute / 60.0
    if not 6.0 < hour < 20.0:
        return 0.0
    clear = float(math.sin(math.pi * (hour - 6.0) / 14.0)) ** 1.5
    return round(float(peak_kw * clear * clouds[minute]), 2)


def _clouds(seed: int) -> list[float]:
    """Per-minute cloud factor: a slow random walk with passing cloud dips."""
    rng = random.Random(seed)
    factor, cloud, out = 0.9, 0, []
    for _ in range(24 * 60 + 1):
        factor = min(1.0, max(0.5, factor + rng.gauss(0, 0.02)))
        if cloud == 0 and rng.random() < 0.03:
            cloud = rng.randint(2, 12)  # a cloud passes for a few minutes
        dip = rng.uniform(0.3, 0.6) if cloud else 1.0
        cloud = max(0, cloud - 1)
        out.append(factor * dip)
    return out


async def _solar_day(
    dead_band_a: float,
    interval_s: float,
    step_s: float,
    hours: float,
    chargers: int,
    versions: tuple[str, ...] = ("2.0.1", "1.6"),
    dynamic: bool = True,
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, _CompressedLoop)
    ids = [f"S{i}" for i in range(chargers)]
    configs = {
        cid: ChargerConfig(cid, "main", max_current_a=16.0, min_current_a=6.0)
        for cid in ids
    }
    peak_kw = chargers * 8.0  # enough PV to run every car at ~11.6 A at noon
    clouds = _clouds(7)
    holder: dict[str, SiteController] = {}
    server = CentralSystem(
        ServerConfig(host="127.0.0.1", port=0, call_timeout_s=10.0),
        lambda event: holder["controller"].handle_event(event),
    )
    controller = holder["controller"] = SiteController(
        server,
        _site(0.0),
        configs,
        increase_dead_band_a=dead_band_a,
        min_increase_interval_s=interval_s,
    )
    await server.start()
    sims = [
        SimulatedCharger(
            cid,
            f"ws://127.0.0.1:{server.port}",
            version=versions[i % len(versions)],
            car_max_a=16.0,
            meter_interval_s=60.0,
            dynamic_profiles=dynamic,
        )
        for i, cid in enumerate(ids)
    ]
    warnings = Counter[str]()

    class _Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            warnings[record.levelname] += 1

    counter = _Count(logging.WARNING)
    logging.getLogger().addHandler(counter)
    real0, sim0 = time.monotonic(), loop.time()
    try:
        for sim in sims:
            await sim.start()
            await sim.plug_in()
        await asyncio.sleep(30)
        before = [len(sim.received_profiles) for sim in sims]
        updates_before = [len(sim.dynamic_updates) for sim in sims]
        steps = int(hours * 3600 / step_s)
        day0 = loop.time()
        for step in range(steps):
            minute = int(step * step_s / 60) % (24 * 60)
            controller.update_site(_site(_solar_kw(minute, peak_kw, clouds)), configs)
            await asyncio.sleep(day0 + (step + 1) * step_s - loop.time())
        writes = []
        decreases = []
        for sim, n in zip(sims, before, strict=True):
            received = sim.received_profiles
            writes.append(Counter(p.purpose for p in received[n:]))
            decreases.append(
                sum(
                    1
                    for old, new in itertools.pairwise(received[max(0, n - 1) :])
                    if new.rate_unit == old.rate_unit and new.limit < old.limit
                )
            )
        updates = [
            len(sim.dynamic_updates) - n
            for sim, n in zip(sims, updates_before, strict=True)
        ]
        disconnected = sum(not sim.connected for sim in sims)
    finally:
        logging.getLogger().removeHandler(counter)
        for sim in sims:
            with contextlib.suppress(Exception):
                await sim.stop()
        await controller.stop()
        await server.stop()
    return {
        "writes": writes,
        "updates": updates,
        "decreases": decreases,
        "budget_changes": sum(
            1
            for minute in range(1, int(hours * 60))
            if _solar_kw(minute, peak_kw, clouds)
            != _solar_kw(minute - 1, peak_kw, clouds)
        ),
        "peak_kw": peak_kw,
        "real_s": time.monotonic() - real0,
        "simulated_h": (loop.time() - sim0) / 3600,
        "warnings": dict(warnings),
        "disconnected": disconnected,
        "steps": steps,
    }


def _run_day(*day_args: Any) -> dict[str, Any]:
    with asyncio.Runner(loop_factory=_CompressedLoop) as runner:
        result: dict[str, Any] = runner.run(_solar_day(*day_args))
        return result


# ------------------------------------------------------------------------ main


def _ms(values: list[float], pct: float) -> str:
    return f"{_pct(values, pct) * 1000:.1f}" if values else "-"


def _report_wire(results: list[dict[str, Any]]) -> None:
    rows: list[tuple[str, ...]] = []
    for r in results:
        for direction in ("down", "up"):
            first, last = r["first"][direction], r["last"][direction]
            rows.append(
                (
                    str(r["chargers"]),
                    direction,
                    str(len(first)),
                    _ms(first, 0.5),
                    _ms(first, 0.99),
                    _ms(last, 0.5),
                    _ms(last, 0.99),
                )
            )
    _print_table(
        "(a) budget change (update_site) to SetChargingProfile received by a charger, ms"
        " [every session's limit moves; min_increase_interval_s 0]",
        ("chargers", "change", "n", "first p50", "first p99", "last p50", "last p99"),
        rows,
    )
    rows = [
        (
            str(r["chargers"]),
            str(r["meter"]["sent"]),
            f"{r['meter']['rate']:.0f}",
            f"{r['meter']['cpu_per_msg'] * 1e6:.0f}",
            f"{r['meter']['controller_per_msg'] * 1e6:.0f}",
        )
        for r in results
    ]
    _print_table(
        "(b) CPU time per MeterValues handled (server process, idle CPU subtracted), us",
        ("chargers", "messages", "per s", "server+controller", "of which controller"),
        rows,
    )


def _report_day(label_results: list[tuple[str, dict[str, Any]]]) -> None:
    rows: list[tuple[str, ...]] = []
    for label, r in label_results:
        totals = [sum(w.values()) for w in r["writes"]]
        kinds = Counter[str]()
        for w in r["writes"]:
            kinds.update(w)
        rows.append(
            (
                label,
                str(len(totals)),
                f"{statistics.mean(totals):.0f}",
                str(min(totals)),
                str(max(totals)),
                f"{statistics.mean(r['decreases']):.0f}",
                f"{statistics.mean(r['updates']):.0f}",
                ", ".join(
                    f"{k} {v / len(totals):.0f}" for k, v in sorted(kinds.items())
                ),
                f"{r['simulated_h']:.1f} h in {r['real_s']:.0f} s",
                str(r["warnings"].get("WARNING", 0) + r["warnings"].get("ERROR", 0)),
                str(r["disconnected"]),
            )
        )
    first = label_results[0][1]
    _print_table(
        "(c) SetChargingProfile writes per charger in a simulated solar day: real server"
        " and simulated chargers (car 16 A, 3 phases, meter values every"
        f" 60 s), compressed clock; panel limit = PV with clouds, peak {first['peak_kw']:g}"
        f" kW, sampled every minute ({first['budget_changes']} changes of the limit)",
        (
            "options",
            "chargers",
            "mean",
            "min",
            "max",
            "of which lower",
            "UpdateDynamicSchedule",
            "mean by purpose",
            "simulated",
            "warnings",
            "disconnects",
        ),
        rows,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer changes, shorter meter load, one day",
    )
    parser.add_argument("--only", choices=("wire", "day"), default=None)
    parser.add_argument("--role", choices=("server", "chargers"), default="server")
    parser.add_argument("--url", default="")
    parser.add_argument("--chargers", type=int, default=50)
    args, _ = parser.parse_known_args()
    logging.basicConfig(level=logging.ERROR)
    _raise_fd_limit(2 * 500 + 100)
    if args.role == "chargers":
        asyncio.run(_chargers(args))
        return
    print("(shared machine: figures move with the other jobs running on it)")
    if args.only in (None, "wire"):
        changes = 10 if args.quick else 40
        window = 4.0 if args.quick else 10.0
        results = [
            asyncio.run(_wire_and_cpu(n, c, window, interval))
            for n, c, interval in (
                (50, changes, 0.5),
                (500, changes // 2, 5.0),
            )
        ]
        _report_wire(results)
    if args.only in (None, "day"):
        options = ((0.5, 10.0),) if args.quick else ((0.5, 10.0), (0.0, 0.0))
        days = [
            (
                f"1.6 / 2.0.1, dead band {band:g} A, {interval:g} s",
                _run_day(band, interval, 60.0, 24.0, 4),
            )
            for band, interval in options
        ]
        # OCPP 2.1: one Dynamic TxProfile per session, its limit moved by updates
        # (no flash write); and the same chargers refusing Dynamic profiles.
        for dynamic in (True, False):
            label = "2.1 Dynamic" if dynamic else "2.1 Absolute (Dynamic refused)"
            days.append(
                (
                    f"{label}, dead band 0.5 A, 10 s",
                    _run_day(0.5, 10.0, 60.0, 24.0, 4, ("2.1",), dynamic),
                )
            )
        _report_day(days)


if __name__ == "__main__":
    main()
