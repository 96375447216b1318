"""`scripts/simulate`: reconnects with backoff, contains refusals, explains itself."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from custom_components.smart_charge.csms import (
    BootReceived,
    CentralSystem,
    ServerConfig,
)
from tests.csms.conftest import EventLog
from tools.simulator import SimulatedCharger, main
from tools.simulator.cli import _stay_connected


class _Seen(logging.Handler):
    """Sets an event once a log line containing `text` was written."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage():
            self.seen.set()


def test_help_says_what_url_and_identities_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "ws://HOST:PORT" in text
    assert "SIM-01, SIM-02" in text
    assert "HTTP 401" in text


async def test_refusal_is_contained_and_chargers_come_back_after_a_restart(
    socket_enabled: None,
) -> None:
    def config(port: int) -> ServerConfig:
        return ServerConfig(
            host="127.0.0.1",
            port=port,
            call_timeout_s=2.0,
            passwords={"SIM-01": "right", "SIM-02": "right"},
        )

    first_log = EventLog()
    first = CentralSystem(config(0), first_log)
    await first.start()
    port = first.port
    url = f"ws://127.0.0.1:{port}"
    good = SimulatedCharger("SIM-01", url, password="right")
    bad = SimulatedCharger("SIM-02", url, password="wrong")
    refused = _Seen(
        f"SIM-02: cannot connect to ws://127.0.0.1:{port}: refused with HTTP 401"
    )
    logging.getLogger("simulate").addHandler(refused)
    up = {sim.charger_id: asyncio.Event() for sim in (good, bad)}
    tasks = [
        asyncio.get_running_loop().create_task(
            _stay_connected(sim, up[sim.charger_id], 0.05, 0.2)
        )
        for sim in (good, bad)
    ]
    try:
        async with asyncio.timeout(5):
            await up["SIM-01"].wait()  # booted and told its status
            await refused.seen.wait()
        up["SIM-01"].clear()
        assert not tasks[1].done()  # still trying
        # The server restarts (a reconfigure does that): the good charger is back.
        await first.stop()
        second_log = EventLog()
        second = CentralSystem(config(port), second_log)
        await second.start()
        try:
            await second_log.wait_for(BootReceived, lambda e: e.charger_id == "SIM-01")
            async with asyncio.timeout(5):
                await up["SIM-01"].wait()
            assert good.connected
            assert not bad.connected
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await good.stop()
            await bad.stop()
            await second.stop()
    finally:
        logging.getLogger("simulate").removeHandler(refused)
        for task in tasks:
            task.cancel()
        await first.stop()
