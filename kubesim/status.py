"""API errors as ``Status`` bodies with the codes and reasons the API server uses."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from kubesim.jsonio import json_response


def status_body(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


def error(
    code: int,
    reason: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return json_response(status_body(code, reason, message, details), status=code, headers=headers)


def not_found(resource: str, name: str) -> web.Response:
    return error(
        404, "NotFound", f'{resource} "{name}" not found', {"name": name, "kind": resource}
    )


def already_exists(resource: str, name: str) -> web.Response:
    return error(
        409,
        "AlreadyExists",
        f'{resource} "{name}" already exists',
        {"name": name, "kind": resource},
    )


def invalid(kind: str, name: str, causes: list[dict[str, str]]) -> web.Response:
    text = "; ".join(f"{c['field']}: {c['message']}" for c in causes)
    return error(
        422,
        "Invalid",
        f'{kind} "{name}" is invalid: [{text}]',
        {"name": name, "kind": kind.lower() + "s", "causes": causes},
    )


def bad_request(message: str) -> web.Response:
    return error(400, "BadRequest", message)
