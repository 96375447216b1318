"""The demo's simulated fleet: cars arrive at the chargers of both sites and leave again.

    .venv/bin/python demo/fleet.py [--table] [--token-file demo-config/demo-token.txt]

Every charger of `sites.py` connects to its site's OCPP port on 127.0.0.1 (OCPP 1.6J and
2.0.1 alternate). Cars marked `stays` plug in at once and charge all day; the others come
and go every few minutes. Each charging car sends meter values every few seconds that follow
the limit Smart Charge gave it, so the panels' allocated and measured power move. A charger
that loses its connection (Home Assistant restarting, a site reloading) reconnects by itself
and keeps its transaction.

`--table` prints a live table of panels, sessions and limits read from Home Assistant's REST
API instead of the arrival/departure log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
import logging
import math
from pathlib import Path
import random
import signal
import sys
import time
from zoneinfo import ZoneInfo

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "demo"))

from sites import HTTP_PORT, SITES, DemoCharger, DemoSite  # noqa: E402

from tools.simulator import SimulatedCharger  # noqa: E402

METER_INTERVAL_S = 3.0
TIME_ZONE = "Europe/Berlin"  # the demo's Home Assistant (config/configuration.yaml)
_LOGGER = logging.getLogger("fleet")


@dataclass
class Car:
    """One charger of the fleet and the car schedule at it."""

    site: DemoSite
    spec: DemoCharger
    charger: SimulatedCharger
    rng: random.Random
    plugged: bool = False
    online: bool = False
    started: bool = False
    next_change: float = 0.0
    events: list[str] = field(default_factory=list)

    def panel_name(self) -> str:
        """Return the name of the charger's panel."""
        for panel in self.site.panels:
            if panel.panel_id == self.spec.panel:
                return panel.name
        return "Main fuse" if self.site.title == "Home" else "Main breaker"


def _say(table: bool, text: str) -> None:
    if not table:
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)  # noqa: T201


async def _connect(car: Car) -> None:
    if car.started:
        await car.charger.reconnect()
    else:
        await car.charger.start()
        car.started = True


def next_departure(hour: int, now: datetime) -> datetime:
    """Return the next time the clock shows `hour`:00 (local time of `now`)."""
    departure = now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return departure if departure > now else departure + timedelta(days=1)


async def _tell_needs(car: Car) -> None:
    """Send a 2.x car's energy and departure of its goal (NotifyEVChargingNeeds)."""
    spec = car.spec
    if spec.goal_kwh is None or spec.departure_hour is None or spec.version == "1.6":
        return
    now = datetime.now(ZoneInfo(TIME_ZONE))
    await car.charger.notify_ev_charging_needs(
        energy_wh=spec.goal_kwh * 1000,
        departure=next_departure(spec.departure_hour, now),
        max_current_a=spec.car_max_a,
    )


async def drive(car: Car, table: bool) -> None:
    """Run one charger forever: connect, plug in, meter, unplug, reconnect on failure."""
    spec = car.spec
    now = time.monotonic()
    # A car plugs in a few seconds after its charger booted (and got its failsafe profile).
    car.next_change = now + (4 if spec.stays else car.rng.uniform(8, 40))
    while True:
        try:
            if not car.online:
                await _connect(car)
                car.online = True
                _say(table, f"{spec.charger_id} connected to {car.site.url}")
            now = time.monotonic()
            if not car.plugged and now >= car.next_change:
                await car.charger.plug_in()
                car.plugged = True
                await _tell_needs(car)
                car.next_change = (
                    math.inf if spec.stays else now + car.rng.uniform(90, 240)
                )
                _say(table, f"{spec.charger_id} car plugged in ({car.panel_name()})")
            elif car.plugged and now >= car.next_change:
                await car.charger.unplug()
                car.plugged = False
                car.next_change = now + car.rng.uniform(30, 120)
                _say(table, f"{spec.charger_id} car left ({car.panel_name()})")
            elif car.plugged:
                await car.charger.send_meter_values()
            await asyncio.sleep(METER_INTERVAL_S)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure: reconnect
            if car.online:
                _say(
                    table, f"{spec.charger_id} lost its connection ({err!r}); retrying"
                )
            car.online = False
            with contextlib.suppress(Exception):
                await car.charger.disconnect()
            await asyncio.sleep(2)


# ----------------------------------------------------------------- live table


async def _states(session: aiohttp.ClientSession, base: str) -> dict[str, str]:
    async with session.get(f"{base}/api/states") as response:
        response.raise_for_status()
        return {s["entity_id"]: s["state"] for s in await response.json()}


def _num(value: str | None, digits: int = 1) -> str:
    try:
        return f"{float(value or ''):.{digits}f}"
    except ValueError:
        return "-"


def _slug(text: str) -> str:
    return text.lower().replace(" ", "_").replace("-", "_")


def render(states: dict[str, str], cars: list[Car]) -> str:
    """Return the table of panels and chargers as text."""
    lines = [f"Smart Charge demo - {time.strftime('%H:%M:%S')}   (Ctrl-C stops)", ""]
    lines.append(
        f"{'site':<7} {'panel':<13} {'limit kW':>9} {'alloc kW':>9} {'meas kW':>8} "
        f"{'headroom':>9} {'sessions':>8}  reason"
    )
    for site in SITES:
        panels = [
            (
                site.root_object_id,
                "Main breaker" if site.title == "Office" else "Main fuse",
            )
        ]
        panels += [(_slug(p.name), p.name) for p in site.panels]
        for prefix, name in panels:
            lines.append(
                f"{site.title:<7} {name:<13} "
                f"{_num(states.get(f'number.{prefix}_grid_limit')):>9} "
                f"{_num(states.get(f'sensor.{prefix}_allocated_power')):>9} "
                f"{_num(states.get(f'sensor.{prefix}_measured_power')):>8} "
                f"{_num(states.get(f'sensor.{prefix}_headroom')):>9} "
                f"{_num(states.get(f'sensor.{prefix}_active_sessions'), 0):>8}  "
                f"{states.get(f'sensor.{prefix}_budget_reason', '-')}"
            )
    lines += [
        "",
        f"{'charger':<8} {'panel':<13} {'ocpp':<6} {'status':<14} {'alloc A':>8} "
        f"{'limit at charger':>16} {'power kW':>9}",
    ]
    for car in cars:
        slug = _slug(car.spec.charger_id)
        limit = car.charger.limit_in_force(1) if car.plugged else None
        managed = "" if car.spec.managed else "  (not managed)"
        lines.append(
            f"{car.spec.charger_id:<8} {car.panel_name():<13} {car.spec.version:<6} "
            f"{states.get(f'sensor.{slug}_status', '-'):<14} "
            f"{_num(states.get(f'sensor.{slug}_allocated_current')):>8} "
            f"{('-' if limit is None else f'{limit:.1f} A'):>16} "
            f"{_num(states.get(f'sensor.{slug}_power'), 2):>9}{managed}"
        )
    return "\n".join(lines)


async def show_table(cars: list[Car], base: str, token: str) -> None:
    """Print the table every few seconds (clearing the screen on a terminal)."""
    tty = sys.stdout.isatty()
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        while True:
            try:
                text = render(await _states(session, base), cars)
            except (aiohttp.ClientError, TimeoutError) as err:
                text = f"Home Assistant at {base} does not answer: {err!r}"
            print(("\x1b[H\x1b[2J" if tty else "\n") + text, flush=True)  # noqa: T201
            await asyncio.sleep(3 if tty else 15)


async def run(args: argparse.Namespace) -> None:
    """Drive every charger (and the table) until cancelled."""
    rng = random.Random(args.seed)  # noqa: S311 - a simulation
    cars = [
        Car(
            site=site,
            spec=spec,
            rng=random.Random(rng.random()),  # noqa: S311
            charger=SimulatedCharger(
                spec.charger_id,
                site.url,
                version=spec.version,
                phases=spec.phases,
                car_max_a=spec.car_max_a,
            ),
        )
        for site in SITES
        for spec in site.chargers
    ]
    tasks = [asyncio.create_task(drive(car, args.table)) for car in cars]
    if args.table:
        token = args.token_file.read_text().strip()
        tasks.append(asyncio.create_task(show_table(cars, args.url, token)))
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(
            *(car.charger.stop() for car in cars), return_exceptions=True
        )


def main() -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description="Smart Charge demo fleet")
    parser.add_argument("--table", action="store_true", help="print a live table")
    parser.add_argument("--url", default=f"http://127.0.0.1:{HTTP_PORT}")
    parser.add_argument(
        "--token-file", type=Path, default=REPO / "demo-config" / "demo-token.txt"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(name)s %(message)s"
    )
    # A charger whose connection drops mid-call logs from inside the ocpp library.
    logging.getLogger("ocpp").setLevel(logging.CRITICAL)
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(_main(args))
    return 0


async def _main(args: argparse.Namespace) -> None:
    """Run until SIGTERM or Ctrl-C; close every charger's connection on the way out."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    await run(args)


if __name__ == "__main__":
    sys.exit(main())
