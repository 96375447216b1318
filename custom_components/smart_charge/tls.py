"""TLS for the OCPP server (wss://, security profile 2) from certificate files."""

from __future__ import annotations

import ssl


def server_ssl_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    """Return a server TLS context; blocking (reads files). Raises OSError/ssl.SSLError."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    return context
