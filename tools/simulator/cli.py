"""`scripts/simulate` / `python -m tools.simulator`: simulated chargers until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Sequence
import contextlib
from http import HTTPStatus
import logging
import random
import ssl
import sys
from typing import Any

import websockets

from .charger import VERSIONS, SimulatedCharger

_LOGGER = logging.getLogger("simulate")

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
    # 2.1 only (ignored by 1.6 / 2.0.1 chargers): a bidirectional car at 70 % of 60 kWh.
    "bidirectional": {"bidirectional": True, "soc_pct": 70.0, "capacity_kwh": 60.0},
    "pulls-dynamic": {"pull_dynamic_s": 30.0},
    # Honours numberPhases 1 (then draws on L1) and reports it (2.x variables).
    "phase-switching": {"phase_switching": True},
}


# Reconnect after 1 s, then twice as long each failed try, at most this long.
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0


def _refusal(err: BaseException) -> str:
    """Say why a connection failed, with the HTTP status the server answered."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    if status == HTTPStatus.UNAUTHORIZED:
        return (
            "refused with HTTP 401: wrong or missing password "
            "(--password; user name = the identity)"
        )
    if status is not None:
        return f"refused with HTTP {status}"
    return str(err) or type(err).__name__


async def _stay_connected(
    charger: SimulatedCharger,
    connected: asyncio.Event,
    backoff_first_s: float = BACKOFF_FIRST_S,
    backoff_max_s: float = BACKOFF_MAX_S,
) -> None:
    """Connect, and connect again whenever the connection is lost, with backoff.

    A failure (the server restarting, a refusal) is this charger's alone: it is
    logged once per try and tried again; the other chargers are not touched.
    """
    delay = backoff_first_s
    while True:
        try:
            await charger.start()
        except (OSError, TimeoutError, websockets.WebSocketException) as err:
            _LOGGER.warning(
                "%s: cannot connect to %s: %s; trying again in %.0f s",
                charger.charger_id,
                charger.url,
                _refusal(err),
                delay,
            )
            await charger.disconnect()  # a half-open try (boot unanswered) ends
            await asyncio.sleep(delay)
            delay = min(delay * 2, backoff_max_s)
            continue
        _LOGGER.info("%s: connected to %s", charger.charger_id, charger.url)
        delay = backoff_first_s
        connected.set()
        await charger.wait_closed()
        _LOGGER.warning(
            "%s: connection to %s lost; reconnecting", charger.charger_id, charger.url
        )


async def _contained(
    charger: SimulatedCharger, what: str, step: Awaitable[Any]
) -> None:
    """Run a step of a charger; a connection lost on the way is logged, not fatal."""
    try:
        await step
    except (OSError, TimeoutError, websockets.WebSocketException) as err:
        _LOGGER.warning("%s: %s interrupted: %r", charger.charger_id, what, err)


async def _run_one(
    charger: SimulatedCharger, session_s: float, idle_s: float, rng: random.Random
) -> None:
    connected = asyncio.Event()
    supervisor = asyncio.get_running_loop().create_task(
        _stay_connected(charger, connected)
    )
    try:
        await connected.wait()
        # Cars come and go also while the charger is offline (it queues messages).
        while True:
            await asyncio.sleep(rng.uniform(0, idle_s))
            await _contained(charger, "plug-in", charger.plug_in())
            await asyncio.sleep(session_s)
            await _contained(charger, "unplug", charger.unplug())
    finally:
        supervisor.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await supervisor


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
    parser = argparse.ArgumentParser(
        description=(
            "Simulated OCPP chargers for a Smart Charge site. Charger N connects to "
            "URL/PREFIXNN (SIM-01, SIM-02, ... by default), the URL a real charger "
            "is given; configure those identities in Home Assistant or adopt them "
            "under Discovered. A charger that loses its connection or is refused "
            "(HTTP 401: wrong password) says so and keeps trying, the others go on."
        ),
    )
    parser.add_argument(
        "--url",
        default="ws://127.0.0.1:9000",
        help=(
            "the site's OCPP server: ws://HOST:PORT (wss:// with TLS; a path prefix "
            "such as ws://HOST:PORT/ocpp works too); the identity is appended "
            "(default: %(default)s)"
        ),
    )
    parser.add_argument(
        "--count", type=int, default=3, help="how many chargers (default: %(default)s)"
    )
    parser.add_argument(
        "--versions", default="1.6,2.0.1", help="comma separated: 1.6,2.0.1,2.1"
    )
    parser.add_argument(
        "--prefix",
        default="SIM-",
        help=(
            "identities are PREFIX plus a two-digit number: SIM-01, SIM-02, ... "
            "(default: %(default)s)"
        ),
    )
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
    parser.add_argument(
        "--password",
        help="HTTP Basic auth password of every charger (user name: its identity)",
    )
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
