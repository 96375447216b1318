"""Security profiles 1/2, the unknown-identity policy and the connection bound."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
import datetime as dt
import logging
from pathlib import Path
import ssl
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
import pytest
import websockets
from websockets.typing import Subprotocol

from custom_components.smart_charge.csms import (
    BootReceived,
    CentralSystem,
    ChargerConnected,
    ServerConfig,
)
from custom_components.smart_charge.csms.server import basic_credentials
from tools.simulator import SimulatedCharger

from .conftest import EventLog

pytestmark = pytest.mark.usefixtures("socket_enabled")

ServerFactory = Callable[..., Awaitable[CentralSystem]]


@pytest.fixture
async def make_server(
    socket_enabled: None, event_log: EventLog
) -> AsyncIterator[ServerFactory]:
    servers: list[CentralSystem] = []

    async def factory(**options: Any) -> CentralSystem:
        central = CentralSystem(
            ServerConfig(host="127.0.0.1", port=0, call_timeout_s=2.0, **options),
            event_log,
        )
        await central.start()
        servers.append(central)
        return central

    yield factory
    for central in servers:
        await central.stop()


def write_self_signed(directory: Path) -> tuple[Path, Path]:
    """Write a self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    import ipaddress

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def _status_of_refusal(url: str, **kwargs: Any) -> websockets.InvalidStatus:
    with pytest.raises(websockets.InvalidStatus) as err:
        await websockets.connect(url, subprotocols=[Subprotocol("ocpp1.6")], **kwargs)
    return err.value


def _warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno >= logging.WARNING and text in record.getMessage()
    ]


async def test_basic_auth_security_profile_1(
    make_server: ServerFactory, event_log: EventLog, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(passwords={"SEC": "0123456789abcdef"})
    url = f"ws://127.0.0.1:{server.port}"
    good = SimulatedCharger("SEC", url, password="0123456789abcdef")
    await good.start()
    await event_log.wait_for(BootReceived, lambda e: e.charger_id == "SEC")
    await good.stop()

    missing = await _status_of_refusal(f"{url}/SEC")
    assert missing.response.status_code == 401
    assert missing.response.headers["WWW-Authenticate"].startswith("Basic")
    for _ in range(3):  # a charger retrying with a wrong password is logged once
        wrong = SimulatedCharger("SEC", url, password="not-the-password")
        with pytest.raises(websockets.InvalidStatus) as err:
            await wrong.start()
        assert err.value.response.status_code == 401
    # Another identity's credentials do not open this one.
    token = base64.b64encode(b"OTHER:0123456789abcdef").decode()
    borrowed = await _status_of_refusal(
        f"{url}/SEC", additional_headers={"Authorization": f"Basic {token}"}
    )
    assert borrowed.response.status_code == 401
    assert len(_warnings_about(caplog, "Charger SEC refused: wrong password")) == 1
    assert len(_warnings_about(caplog, "Charger SEC refused: no credentials")) == 1
    # Identities without a password still connect (no unknown-identity policy).
    free = SimulatedCharger("FREE", url)
    await free.start()
    await free.stop()


def test_basic_credentials_parsing() -> None:
    assert basic_credentials("Basic QUJDOnNlY3JldA==") == ("ABC", "secret")
    assert basic_credentials("Bearer xyz") is None
    assert basic_credentials("Basic !!!") is None
    assert basic_credentials("Basic bm9jb2xvbg==") is None  # "nocolon"
    assert basic_credentials(None) is None


async def test_unknown_identities_rejected_and_access_updated(
    make_server: ServerFactory, event_log: EventLog, caplog: pytest.LogCaptureFixture
) -> None:
    server = await make_server(
        reject_unknown=True, known_ids=frozenset({"KNOWN"}), passwords={"PW": "pw"}
    )
    url = f"ws://127.0.0.1:{server.port}"
    refused = await _status_of_refusal(f"{url}/STRANGER")
    assert refused.response.status_code == 404
    assert _warnings_about(caplog, "Charger STRANGER refused: unknown identity")
    known = SimulatedCharger("KNOWN", url)
    await known.start()
    with_password = SimulatedCharger("PW", url, password="pw")
    await with_password.start()
    assert server.connected("KNOWN") and server.connected("PW")

    # Adopt the stranger, change PW's password: PW is disconnected, KNOWN stays.
    server.update_access(
        known_ids=frozenset({"KNOWN", "STRANGER"}), passwords={"PW": "new"}
    )
    stranger = SimulatedCharger("STRANGER", url)
    await stranger.start()
    await event_log.wait_for(ChargerConnected, lambda e: e.charger_id == "STRANGER")
    await event_log.until(lambda: not server.connected("PW"))
    assert server.connected("KNOWN")
    # Revoke KNOWN: it is disconnected too.
    server.update_access(known_ids=frozenset({"STRANGER"}))
    await event_log.until(lambda: not server.connected("KNOWN"))
    # Accepting unknown identities again lets anyone in.
    server.update_access(reject_unknown=False)
    await known.reconnect()
    assert server.connected("KNOWN")
    for charger in (known, with_password, stranger):
        await charger.stop()


async def test_connection_bound(make_server: ServerFactory) -> None:
    server = await make_server(max_connections=2)
    url = f"ws://127.0.0.1:{server.port}"
    first, second = SimulatedCharger("B1", url), SimulatedCharger("B2", url)
    await first.start()
    await second.start()
    busy = await _status_of_refusal(f"{url}/B3")
    assert busy.response.status_code == 503
    await first.reconnect()  # a connected identity may always replace its connection
    assert server.connected("B1")
    await second.stop()
    third = SimulatedCharger("B3", url)
    async with asyncio.timeout(5):
        while True:
            try:
                await third.start()
                break
            except websockets.InvalidStatus:
                await asyncio.sleep(0.01)  # B2's handler is still finishing
    await first.stop()
    await third.stop()


async def test_wss_with_basic_auth_security_profile_2(
    make_server: ServerFactory, event_log: EventLog, tmp_path: Path
) -> None:
    cert, key = write_self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    server = await make_server(
        ssl_context=server_context, passwords={"TLS": "secret-16-chars!"}
    )
    client_context = ssl.create_default_context(cafile=str(cert))
    url = f"wss://127.0.0.1:{server.port}"
    charger = SimulatedCharger(
        "TLS",
        url,
        version="2.0.1",
        password="secret-16-chars!",
        ssl_context=client_context,
    )
    await charger.start()
    boot = await event_log.wait_for(BootReceived)
    assert boot.charger_id == "TLS"
    await charger.stop()
    wrong = SimulatedCharger("TLS", url, password="nope", ssl_context=client_context)
    with pytest.raises(websockets.InvalidStatus) as err:
        await wrong.start()
    assert err.value.response.status_code == 401
