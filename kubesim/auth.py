"""Who may talk to the simulator: optional TLS and a bearer token, as a real API server asks.

Without either, kubesim is plain HTTP and open (tests, the demo). With a token, every request
but the public health and version endpoints must carry ``Authorization: Bearer <token>``
(any case of ``bearer``, as the client's in-cluster loader sends it); anything else gets the
API server's 401 ``Status``. That is what lets the bot's in-cluster configuration (service
account token and CA file) be tested for real.
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from kubesim import status

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# What a real cluster lets anyone read (the system:public-info-viewer role).
PUBLIC_PATHS = frozenset({"/version", "/healthz", "/livez", "/readyz"})


@dataclass(frozen=True)
class ServerTLS:
    """PEM files: the server's certificate chain and key, and the CA that signed it (written
    into the kubeconfig so clients verify the server)."""

    cert_chain: Path
    key: Path
    ca: Path

    def context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_chain, self.key)
        return context


def bearer_middleware(token: str) -> Middleware:
    expected = token.encode()

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.rstrip("/") in PUBLIC_PATHS:
            return await handler(request)
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected
        ):
            return status.error(401, "Unauthorized", "Unauthorized")
        return await handler(request)

    return middleware
