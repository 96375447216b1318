"""The standalone runner as a black box: a subprocess and a simulated charger."""

from __future__ import annotations

import asyncio
from pathlib import Path
import re
import signal
import socket
import sys

import pytest

from custom_components.smart_charge.csms.simulator import SimulatedCharger

pytestmark = pytest.mark.usefixtures("socket_enabled")

ROOT = Path(__file__).parents[2]
MODULE = "custom_components.smart_charge.csms"


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
        await charger.plug_in()
        profile = await charger.wait_for_profile(timeout=10)
        assert profile.limit == 30.2  # 22 kW less 5 % over three phases at 230 V
        await charger.stop()
    finally:
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    assert process.returncode == 0
    assert b"sending limit 30.2 A" in stderr


@pytest.mark.parametrize(
    "args",
    [
        ("--limit-kw", "0"),
        ("--limit-kw", "abc"),
        ("--port", "70000", "--limit-kw", "22"),
        ("--strategy", "nope", "--limit-kw", "22"),
        ("--limit-kw", "22", "--min-a", "40"),
        (),
    ],
)
async def test_runner_refuses_bad_arguments(args: tuple[str, ...]) -> None:
    process = await _run(*args)
    async with asyncio.timeout(30):
        _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"error" in stderr


async def test_runner_refuses_a_busy_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        process = await _run(
            "--host", "127.0.0.1", "--port", str(port), "--limit-kw", "22"
        )
        async with asyncio.timeout(30):
            _, stderr = await process.communicate()
    assert process.returncode == 2
    assert b"Cannot listen" in stderr
