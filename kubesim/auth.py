"""Who may talk to the simulator: optional TLS and a bearer token, as a real API server asks.

Without either, kubesim is plain HTTP and open (tests, the demo). With tokens, every request
but the public health and version endpoints must carry ``Authorization: Bearer <token>``
(any case of ``bearer``, as the client's in-cluster loader sends it); anything else gets the
API server's 401 ``Status``. The admin token may do anything; a service account's token may do
what the RBAC objects given to the simulator grant it (``kubesim.rbac``), and gets the API
server's 403 for the rest. That is what lets the bot's in-cluster configuration (service
account token and CA file) and its permissions be tested for real.
"""

from __future__ import annotations

import hmac
import ssl
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from kubesim import status
from kubesim.rbac import MASTERS, Attributes, Identity, Rbac, attributes, forbidden

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


def access_middleware(tokens: Mapping[str, Identity], rbac: Rbac) -> Middleware:
    """Authentication (a bearer token, one of ``tokens``) then authorization (``rbac``): 401
    for a request without a known token, 403 for one its user may not make. The health and
    version endpoints are public; the control API (``/kubesim/``) is for admins only."""
    known = [(token.encode(), who) for token, who in tokens.items()]

    def identify(request: web.Request) -> Identity | None:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        offered = presented.strip().encode()
        found = None
        for token, who in known:  # compare with every token: no timing hint of which
            if hmac.compare_digest(offered, token):
                found = who
        return found

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.rstrip("/") in PUBLIC_PATHS:
            return await handler(request)
        who = identify(request)
        if who is None:
            return status.error(401, "Unauthorized", "Unauthorized")
        if request.path.startswith("/kubesim/"):
            allowed = MASTERS in who.groups
            attrs = Attributes(request.method.lower(), request.path)
        else:
            attrs = attributes(request.method, request.path, request.query)
            allowed = rbac.allows(who, attrs)
        if not allowed:
            return forbidden(who, attrs)
        return await handler(request)

    return middleware
