"""The standalone runner as a black box: a subprocess and a simulated charger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import logging
from pathlib import Path
import re
import signal
import socket
import ssl
import sys

import pytest
import websockets

from custom_components.smart_charge.control import ChargerConfig
from custom_components.smart_charge.engine import Phase
from tests.csms.test_security import write_self_signed
from tools.runner import Runner, build_parser, main
from tools.simulator import SimulatedCharger

pytestmark = pytest.mark.usefixtures("socket_enabled")

ROOT = Path(__file__).parents[2]
MODULE = "tools.runner"


async def _run(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        MODULE,
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_runner_serves_a_charger_and_logs_profiles() -> None:
    process = await _run("--host", "127.0.0.1", "--port", "0", "--limit-kw", "22")
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        match = re.search(r"port (\d+)", line)
        assert match, line
        charger = SimulatedCharger(
            "RUN-1", f"ws://127.0.0.1:{match[1]}", version="2.0.1"
        )
        await charger.start()
        failsafe = await charger.wait_for_profile(
            lambda p: p.purpose == "TxDefaultProfile" and p.connector_id == 0,
            timeout=10,
        )
        assert failsafe.limit == 0.0  # the safe default: nothing until its share
        idle = await charger.wait_for_profile(
            lambda p: p.purpose == "TxDefaultProfile" and p.connector_id == 1,
            timeout=10,
        )
        assert idle.limit == 6.0  # its minimum fits: a car starts inside the budget
        await charger.plug_in()
        profile = await charger.wait_for_profile(
            lambda p: p.purpose == "TxProfile", timeout=10
        )
        assert profile.limit == 30.2  # 22 kW less 5 % over three phases at 230 V
        assert charger.limit_in_force(1) == 30.2
        await charger.stop()
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    assert process.returncode == 0
    assert b"limit 30.2 A as TxProfile" in stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--limit-kw", "0"),
        ("--limit-kw", "abc"),
        ("--port", "70000", "--limit-kw", "22"),
        ("--strategy", "nope", "--limit-kw", "22"),
        ("--limit-kw", "22", "--min-a", "40"),
        ("--limit-kw", "22", "--password", "nosecret"),
        ("--limit-kw", "22", "--tls-cert", "cert.pem"),
        ("--limit-kw", "22", "--failsafe-a", "-1"),
        ("--limit-kw", "22", "--charger", ""),
        ("--limit-kw", "22", "--charger", "CP:phases=2"),
        ("--limit-kw", "22", "--charger", "CP:max-a=abc"),
        ("--limit-kw", "22", "--charger", "CP:max-a=0"),
        ("--limit-kw", "22", "--charger", "CP:volts=230"),
        ("--limit-kw", "22", "--charger", "CP:phases"),
        ("--limit-kw", "22", "--charger", "CP:grid-phase=L4"),
        ("--limit-kw", "22", "--charger", "CP:phases=3:grid-phase=L2"),
        ("--limit-kw", "22", "--charger", "CP:max-a=16:max-a=10"),
        ("--limit-kw", "22", "--charger", "CP:min-a=20:max-a=16"),
        ("--limit-kw", "22", "--charger", "CP", "--charger", "CP:phases=1"),
        (),
    ],
)
def test_runner_refuses_bad_arguments(
    args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as err:
        main(list(args))
    assert err.value.code == 2
    assert "error" in capsys.readouterr().err


def test_runner_charger_settings() -> None:
    args = build_parser().parse_args(
        [
            "--limit-kw", "22",
            "--charger", "ONE:phases=1:max-a=16:min-a=8:grid-phase=l2",
            "--charger", "SIDE:grid-phase=L3",
            "--charger", "BIG:max-a=40",
        ]
    )  # fmt: skip
    runner = Runner(args)
    assert runner.charger_config("ONE") == ChargerConfig(
        "ONE",
        "main",
        phases=1,
        max_current_a=16.0,
        min_current_a=8.0,
        grid_phase=Phase.L2,
    )
    side = runner.charger_config("SIDE")
    assert (side.phases, side.grid_phase, side.max_current_a) == (1, Phase.L3, 32.0)
    big = runner.charger_config("BIG")
    assert (big.phases, big.max_current_a, big.min_current_a) == (3, 40.0, 6.0)
    other = runner.charger_config("OTHER")  # not listed: three-phase 32 A
    assert (other.phases, other.max_current_a, other.grid_phase) == (3, 32.0, None)
    assert args.failsafe_a == 0.0
    assert "(default 0:" in " ".join(build_parser().format_help().split())


async def test_runner_single_phase_charger() -> None:
    process = await _run(
        "--host", "127.0.0.1", "--port", "0", "--limit-kw", "22",
        "--charger", "MONO:phases=1:max-a=16:grid-phase=L2",
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        match = re.search(r"port (\d+)", line)
        assert match, line
        url = f"ws://127.0.0.1:{match[1]}"
        mono = SimulatedCharger("MONO", url, phases=1, grid_phase="L2", strict=True)
        three = SimulatedCharger("TRI", url, version="2.0.1", strict=True)
        await mono.start()
        await three.start()
        await mono.plug_in()
        await three.plug_in()
        limit = await mono.wait_for_profile(
            lambda p: p.purpose == "TxProfile", timeout=10
        )
        period = limit.schedule["chargingSchedulePeriod"][0]
        assert period.get("numberPhases") == 1
        assert limit.limit <= 16.0
        assert mono.limit_in_force(1) == limit.limit
        assert mono.phases_in_use(1) == ("L2",)
        await three.wait_for_profile(lambda p: p.purpose == "TxProfile", timeout=10)
        await mono.stop()
        await three.stop()
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    assert process.returncode == 0
    assert b"Traceback" not in stderr


@pytest.fixture
def _restore_ocpp_logger() -> Iterator[None]:
    level = logging.getLogger("ocpp").level
    yield
    logging.getLogger("ocpp").setLevel(level)


@pytest.mark.usefixtures("_restore_ocpp_logger")
def test_runner_refuses_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["--host", "127.0.0.1", "--port", str(port), "--limit-kw", "22"])
    assert code == 2
    assert "Cannot listen" in capsys.readouterr().err


@pytest.mark.usefixtures("_restore_ocpp_logger")
def test_runner_refuses_a_missing_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing.pem")
    code = main(
        ["--port", "0", "--limit-kw", "22", "--tls-cert", missing, "--tls-key", missing]
    )
    assert code == 2
    assert "error" in capsys.readouterr().err


async def test_runner_wss_password_unknown_policy_and_failsafe(tmp_path: Path) -> None:
    cert, key = write_self_signed(tmp_path)
    process = await _run(
        "--host", "127.0.0.1", "--port", "0", "--limit-kw", "22",
        "--tls-cert", str(cert), "--tls-key", str(key),
        "--password", "TLS-1=secret-password-1",
        "--reject-unknown", "--failsafe-a", "10",
    )  # fmt: skip
    try:
        assert process.stdout is not None
        async with asyncio.timeout(30):
            line = (await process.stdout.readline()).decode()
        match = re.search(r"port (\d+) \(wss\)", line)
        assert match, line
        url = f"wss://127.0.0.1:{match[1]}"
        context = ssl.create_default_context(cafile=str(cert))
        stranger = SimulatedCharger("WHO", url, ssl_context=context)
        with pytest.raises(websockets.InvalidStatus) as err:
            await stranger.start()
        assert err.value.response.status_code == 404
        charger = SimulatedCharger(
            "TLS-1", url, password="secret-password-1", ssl_context=context
        )
        await charger.start()
        failsafe = await charger.wait_for_profile(
            lambda p: p.purpose == "TxDefaultProfile" and p.connector_id == 0,
            timeout=10,
        )
        assert failsafe.limit == 10.0
        await charger.plug_in()
        limit = await charger.wait_for_profile(lambda p: p.purpose == "TxProfile")
        assert limit.limit == 30.2
        await charger.stop()
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    assert process.returncode == 0
    assert b"Charger WHO refused: unknown identity" in stderr
