"""The cluster's failures as the bot's own exceptions: the kubernetes library's never leave
this package."""

from __future__ import annotations

import json
import re

from kubernetes.client.exceptions import ApiException

from bot.domain.errors import IslandbotError


class KubeError(IslandbotError):
    """The cluster refused or failed an operation."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KubeNotFound(KubeError):
    pass


class KubeConflict(KubeError):
    pass


class KubeRefused(KubeError):
    """The cluster will not take this object as it is, whatever the retries: 400, 403 (a
    ResourceQuota, an admission webhook or policy, RBAC), 422. The message is the API
    server's."""


class KubeInvalid(KubeRefused):
    """422: the object was refused; the message carries the API server's causes."""


class KubeForbidden(KubeRefused):
    """403: forbidden (RBAC, a ResourceQuota, an admission webhook or policy)."""


class KubeUnavailable(KubeError):
    """Still failing after every retry (5xx, 429, timeouts, dropped connections)."""


def retry_after(exc: ApiException) -> float | None:
    value = (exc.headers or {}).get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def wrap(what: str, exc: ApiException) -> KubeError:
    status = exc.status or 0
    body = exc.body or ""
    # A refused websocket upgrade (exec) comes as "Handshake status 404 ... -+-+- {Status}"
    if not status and (match := re.search(r"Handshake status (\d{3})", str(exc.reason))):
        status = int(match.group(1))
        body = str(exc.reason).rsplit("-+-+-", 1)[-1]
    try:
        message = json.loads(body or "{}").get("message") or exc.reason
    except (ValueError, AttributeError):
        message = exc.reason
    kinds: dict[int, type[KubeError]] = {
        400: KubeRefused,
        403: KubeForbidden,
        404: KubeNotFound,
        409: KubeConflict,
        422: KubeInvalid,
    }
    return kinds.get(status, KubeError)(f"{what}: {message}", status=status or None)
