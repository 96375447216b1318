"""`scripts/simulate` / `python -m tools.simulator`: simulated chargers until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import logging
import random
import ssl
import sys
from typing import Any

from .charger import VERSIONS, SimulatedCharger

QUIRKS: dict[str, dict[str, Any]] = {
    "watts-only": {"rate_units": "Power"},
    "amps-only": {"amps_only": True},
    "no-txprofile": {"reject_purposes": frozenset({"TxProfile"})},
    "rejects-all": {"profile_status": "Rejected"},
    "rejects-first": {"reject_first": 1},
    "no-smart-charging": {"smart_charging": False},
    "strict": {"strict": True},
    "slow": {"profile_delay_s": 0.3},
    "ignores-limits": {"ignores_limits": True},
    "stuck-at-9": {"stuck_at_a": 9.0},
}


async def _run_one(
    charger: SimulatedCharger, session_s: float, idle_s: float, rng: random.Random
) -> None:
    await charger.start()
    while True:
        await asyncio.sleep(rng.uniform(0, idle_s))
        await charger.plug_in()
        await asyncio.sleep(session_s)
        await charger.unplug()


def _quirks(names: str | Sequence[str] | None) -> dict[str, Any]:
    """Merge the options of the named quirks."""
    if not names:
        return {}
    merged: dict[str, Any] = {}
    for name in [names] if isinstance(names, str) else names:
        merged.update(QUIRKS[name])
    return merged


async def run(args: argparse.Namespace) -> None:
    """Run `--count` chargers until interrupted (or `--duration` seconds)."""
    versions = args.versions.split(",")
    rng = random.Random(args.seed)  # noqa: S311 - simulation, not crypto
    context = None
    if getattr(args, "cafile", None):
        context = ssl.create_default_context(cafile=args.cafile)
    quirk = _quirks(getattr(args, "quirk", None))
    chargers = [
        SimulatedCharger(
            f"{args.prefix}{index + 1:02d}",
            args.url,
            version=versions[index % len(versions)],
            phases=args.phases,
            car_max_a=args.car_max_a,
            meter_interval_s=args.meter_interval,
            password=getattr(args, "password", None),
            ssl_context=context,
            **quirk,
        )
        for index in range(args.count)
    ]
    try:
        async with asyncio.timeout(args.duration):
            await asyncio.gather(
                *(
                    _run_one(charger, args.session, args.idle, rng)
                    for charger in chargers
                )
            )
    except TimeoutError:
        pass
    finally:
        await asyncio.gather(
            *(charger.stop() for charger in chargers), return_exceptions=True
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line entry point of `scripts/simulate`."""
    parser = argparse.ArgumentParser(description="Simulated OCPP chargers")
    parser.add_argument("--url", default="ws://127.0.0.1:9000")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument(
        "--versions", default="1.6,2.0.1", help="comma separated: 1.6,2.0.1,2.1"
    )
    parser.add_argument("--prefix", default="SIM-")
    parser.add_argument("--phases", type=int, choices=(1, 3), default=3)
    parser.add_argument("--car-max-a", type=float, default=32.0)
    parser.add_argument("--meter-interval", type=float, default=10.0)
    parser.add_argument(
        "--session", type=float, default=300.0, help="seconds per charging session"
    )
    parser.add_argument(
        "--idle", type=float, default=60.0, help="max seconds between sessions"
    )
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds"
    )
    parser.add_argument("--password", help="Basic auth password (every charger)")
    parser.add_argument("--cafile", help="CA certificate to trust for wss://")
    parser.add_argument(
        "--quirk",
        choices=sorted(QUIRKS),
        action="append",
        help="make every charger behave like this (repeatable)",
    )
    args = parser.parse_args(argv)
    if not set(args.versions.split(",")) <= set(VERSIONS):
        parser.error(f"--versions must be among {', '.join(VERSIONS)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("ocpp").setLevel(logging.WARNING)
    try:
        asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0
    except OSError as err:
        print(f"simulate: cannot connect to {args.url}: {err}", file=sys.stderr)  # noqa: T201
        return 1
    return 0
