"""Standalone runner: the OCPP server and the engine over one panel, no Home Assistant.

    python -m tools.runner --limit-kw 22 [--port 9000]
        [--charger ID:phases=1:max-a=16:min-a=6:grid-phase=L2 ...]
        [--password ID=SECRET ...] [--reject-unknown] [--known ID ...]
        [--tls-cert FILE --tls-key FILE] [--failsafe-a AMPS]

Every charger that connects is managed under the one panel; each limit sent is logged.
A charger without `--charger` settings takes `--phases`/`--max-a`/`--min-a` (three-phase
32 A by default). The failsafe is 0 A unless `--failsafe-a` says otherwise: a charger that
boots holds a 0 A station default until its share is sent.
A bad argument, unreadable certificate or a port that cannot be bound exits with code 2.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
import contextlib
from dataclasses import dataclass
import logging
import signal
import ssl
import sys

from custom_components.smart_charge import control as control_package
from custom_components.smart_charge.control import ChargerConfig, SiteController
from custom_components.smart_charge.csms.events import ChargerEvent
from custom_components.smart_charge.csms.server import (
    CentralSystem,
    ServerConfig,
    ServerStartError,
)
from custom_components.smart_charge.engine import (
    EngineError,
    Panel,
    Phase,
    Site,
    Strategy,
)

_LOGGER = logging.getLogger("smart_charge.csms")
PANEL_ID = "main"


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return number


def _port(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {value}")
    return number


def _password(value: str) -> tuple[str, str]:
    charger_id, sep, secret = value.partition("=")
    if not sep or not charger_id or not secret:
        raise argparse.ArgumentTypeError(f"expected ID=SECRET, got {value!r}")
    return charger_id, secret


@dataclass(frozen=True, slots=True)
class ChargerSettings:
    """What `--charger ID:key=value:...` sets for one charger (None: the default)."""

    charger_id: str
    phases: int | None = None
    max_current_a: float | None = None
    min_current_a: float | None = None
    grid_phase: Phase | None = None


_CHARGER_KEYS = ("phases", "max-a", "min-a", "grid-phase")


def _amps(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not number > 0:
        raise argparse.ArgumentTypeError(f"{key} must be a number > 0, got {value!r}")
    return number


def parse_charger(value: str) -> ChargerSettings:
    """Parse `ID:phases=1:max-a=16:min-a=6:grid-phase=L2` (every setting optional)."""
    charger_id, *settings = value.split(":")
    if not charger_id or "=" in charger_id:
        raise argparse.ArgumentTypeError(
            f"expected ID:key=value:..., got {value!r} (keys: {', '.join(_CHARGER_KEYS)})"
        )
    found: dict[str, str] = {}
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or key not in _CHARGER_KEYS or not raw:
            raise argparse.ArgumentTypeError(
                f"bad setting {setting!r} for {charger_id} "
                f"(keys: {', '.join(_CHARGER_KEYS)}, as key=value)"
            )
        if key in found:
            raise argparse.ArgumentTypeError(f"{key} given twice for {charger_id}")
        found[key] = raw
    phases = None
    if "phases" in found:
        if found["phases"] not in ("1", "3"):
            raise argparse.ArgumentTypeError(
                f"phases must be 1 or 3, got {found['phases']!r}"
            )
        phases = int(found["phases"])
    grid_phase = None
    if "grid-phase" in found:
        try:
            grid_phase = Phase(found["grid-phase"].upper())
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"grid-phase must be L1, L2 or L3, got {found['grid-phase']!r}"
            ) from None
        if phases == 3:
            raise argparse.ArgumentTypeError(
                f"grid-phase is for a single-phase charger ({charger_id} has phases=3)"
            )
        phases = 1
    return ChargerSettings(
        charger_id,
        phases=phases,
        max_current_a=_amps("max-a", found["max-a"]) if "max-a" in found else None,
        min_current_a=_amps("min-a", found["min-a"]) if "min-a" in found else None,
        grid_phase=grid_phase,
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the command line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.runner",
        description="Run the Smart Charge OCPP server with load management over one panel.",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")  # noqa: S104
    parser.add_argument(
        "--port", type=_port, default=9000, help="port (0: any free port)"
    )
    parser.add_argument(
        "--limit-kw", type=_positive, required=True, help="panel limit in kW"
    )
    parser.add_argument(
        "--min-a", type=_positive, default=6.0, help="minimum current per phase"
    )
    parser.add_argument(
        "--max-a", type=_positive, default=32.0, help="charger maximum current"
    )
    parser.add_argument(
        "--phases",
        type=int,
        choices=(1, 3),
        default=3,
        help="phases of a charger without --charger settings",
    )
    parser.add_argument(
        "--charger",
        type=parse_charger,
        action="append",
        default=[],
        metavar="ID:KEY=VALUE:...",
        help="settings of one charger (repeatable): phases=1|3, max-a=A, min-a=A, "
        "grid-phase=L1|L2|L3 (single-phase), e.g. CP-1:phases=1:max-a=16:grid-phase=L2",
    )
    parser.add_argument(
        "--margin-pct", type=float, default=5.0, help="safety margin in %%"
    )
    parser.add_argument(
        "--strategy",
        choices=[s.value for s in Strategy],
        default=Strategy.EQUAL_SHARE.value,
    )
    parser.add_argument(
        "--timeout", type=_positive, default=10.0, help="call timeout (s)"
    )
    parser.add_argument(
        "--password",
        type=_password,
        action="append",
        default=[],
        metavar="ID=SECRET",
        help="Basic auth password of a charger (repeatable)",
    )
    parser.add_argument(
        "--reject-unknown",
        action="store_true",
        help="refuse identities without --password or --known",
    )
    parser.add_argument(
        "--known", action="append", default=[], metavar="ID", help="a known identity"
    )
    parser.add_argument("--tls-cert", metavar="FILE", help="certificate (wss://)")
    parser.add_argument("--tls-key", metavar="FILE", help="private key (wss://)")
    parser.add_argument(
        "--failsafe-a",
        type=float,
        default=0.0,
        metavar="AMPS",
        help="TxDefaultProfile sent to each charger at boot (default 0: a car that "
        "plugs in draws nothing until its share is sent)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log OCPP frames")
    return parser


def ssl_context(cert: str | None, key: str | None) -> ssl.SSLContext | None:
    """Return a server TLS context, or None without a certificate."""
    if cert is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class Runner:
    """Server + controller; chargers are adopted as they connect."""

    def __init__(self, args: argparse.Namespace) -> None:
        """Build the site from the arguments."""
        self.args = args
        self.site = Site(
            panels=[
                Panel(
                    id=PANEL_ID,
                    limit_kw=args.limit_kw,
                    safety_margin_pct=args.margin_pct,
                    strategy=Strategy(args.strategy),
                )
            ]
        )
        passwords = dict(args.password)
        self.server = CentralSystem(
            ServerConfig(
                host=args.host,
                port=args.port,
                call_timeout_s=args.timeout,
                ssl_context=ssl_context(args.tls_cert, args.tls_key),
                passwords=passwords,
                reject_unknown=args.reject_unknown,
                known_ids=frozenset(args.known) | frozenset(passwords),
            ),
            self._on_event,
        )
        self.settings = {s.charger_id: s for s in args.charger}
        self.controller = SiteController(
            self.server, self.site, {}, boot_default_a=args.failsafe_a
        )

    def charger_config(self, charger_id: str) -> ChargerConfig:
        """Return how the site treats a charger: its --charger settings, else defaults."""
        settings = self.settings.get(charger_id, ChargerSettings(charger_id))
        phases = settings.phases or self.args.phases
        return ChargerConfig(
            charger_id,
            PANEL_ID,
            phases=phases,
            max_current_a=settings.max_current_a or self.args.max_a,
            min_current_a=settings.min_current_a or self.args.min_a,
            grid_phase=settings.grid_phase if phases == 1 else None,
        )

    def _on_event(self, event: ChargerEvent) -> None:
        if event.charger_id not in self.controller.chargers:
            _LOGGER.info(
                "Adopting charger %s under panel %s", event.charger_id, PANEL_ID
            )
            chargers = dict(self.controller.chargers)
            chargers[event.charger_id] = self.charger_config(event.charger_id)
            self.controller.update_site(self.site, chargers)
        self.controller.handle_event(event)

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set."""
        await self.server.start()
        scheme = "wss" if self.server.config.ssl_context else "ws"
        print(  # noqa: T201 - the one line scripts and tests wait for
            f"Smart Charge OCPP server listening on {self.args.host} port "
            f"{self.server.port} ({scheme})",
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await self.controller.stop()
            await self.server.stop()


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    await Runner(args).run(stop)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.min_a > args.max_a:
        parser.error("--min-a must not exceed --max-a")
    seen: set[str] = set()
    for settings in args.charger:
        if settings.charger_id in seen:
            parser.error(f"--charger {settings.charger_id} given twice")
        seen.add(settings.charger_id)
        low = settings.min_current_a or args.min_a
        high = settings.max_current_a or args.max_a
        if low > high:
            parser.error(f"--charger {settings.charger_id}: min-a exceeds max-a")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.failsafe_a < 0:
        parser.error("--failsafe-a must be >= 0")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # Frames and each limit sent are DEBUG lines (quiet inside Home Assistant).
    logging.getLogger("ocpp").setLevel(
        logging.DEBUG if args.verbose else logging.WARNING
    )
    logging.getLogger(control_package.__name__).setLevel(logging.DEBUG)
    try:
        asyncio.run(_main(args))
    except ServerStartError as err:
        print(f"error: {err}", file=sys.stderr)  # noqa: T201
        return 2
    except (EngineError, OSError, ssl.SSLError) as err:
        print(f"error: {err}", file=sys.stderr)  # noqa: T201
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
