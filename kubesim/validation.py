"""Pod validation with the API server's messages (pure). Returns a list of causes."""

from __future__ import annotations

import re
from typing import Any

from kubesim.quantity import parse_quantity

DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
IANA_SVC_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

Cause = dict[str, str]


def _cause(field: str, message: str, reason: str = "FieldValueInvalid") -> Cause:
    return {"reason": reason, "message": message, "field": field}


def validate_name(name: Any, field: str = "metadata.name") -> list[Cause]:
    if not name:
        return [
            _cause(field, "Required value: name or generateName is required", "FieldValueRequired")
        ]
    if len(name) > 253 or not DNS1123_SUBDOMAIN.match(name):
        return [
            _cause(
                field,
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must '
                "consist of lower case alphanumeric characters, '-' or '.', and "
                "must start and end with an alphanumeric character",
            )
        ]
    return []


def validate_labels(labels: Any, field: str = "metadata.labels") -> list[Cause]:
    causes = []
    for key, value in (labels or {}).items():
        prefix, _, name = str(key).rpartition("/")
        if (
            not LABEL_NAME.match(name)
            or len(name) > 63
            or (prefix and not DNS1123_SUBDOMAIN.match(prefix))
        ):
            causes.append(
                _cause(
                    field,
                    f'Invalid value: "{key}": name part must consist of '
                    "alphanumeric characters, '-', '_' or '.'",
                )
            )
        if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
            causes.append(
                _cause(
                    f"{field}",
                    f'Invalid value: "{value}": a valid label must be '
                    "an empty string or consist of alphanumeric "
                    "characters, '-', '_' or '.', and must start and "
                    "end with an alphanumeric character (max 63)",
                )
            )
    return causes


def validate_pod(pod: dict[str, Any]) -> list[Cause]:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    causes = validate_name(meta.get("name"))
    causes += validate_labels(meta.get("labels"))
    containers = spec.get("containers")
    if not containers:
        causes.append(_cause("spec.containers", "Required value", "FieldValueRequired"))
        return causes
    seen: set[str] = set()
    host_ports: set[tuple[int, str]] = set()
    for i, c in enumerate(containers):
        path = f"spec.containers[{i}]"
        name = c.get("name")
        if not name:
            causes.append(_cause(f"{path}.name", "Required value", "FieldValueRequired"))
        elif not DNS1123_LABEL.match(name) or len(name) > 63:
            causes.append(
                _cause(
                    f"{path}.name",
                    f'Invalid value: "{name}": a lowercase RFC '
                    "1123 label must consist of lower case "
                    "alphanumeric characters or '-'",
                )
            )
        elif name in seen:
            causes.append(
                _cause(f"{path}.name", f'Duplicate value: "{name}"', "FieldValueDuplicate")
            )
        seen.add(name or "")
        if not c.get("image"):
            causes.append(_cause(f"{path}.image", "Required value", "FieldValueRequired"))
        port_names: set[str] = set()
        for j, p in enumerate(c.get("ports") or []):
            ppath = f"{path}.ports[{j}]"
            container_port = p.get("containerPort")
            if not isinstance(container_port, int) or not 1 <= container_port <= 65535:
                causes.append(
                    _cause(
                        f"{ppath}.containerPort",
                        f"Invalid value: {container_port}: must be between 1 and 65535, inclusive",
                    )
                )
            host_port = p.get("hostPort")
            if host_port is not None:
                if not isinstance(host_port, int) or not 1 <= host_port <= 65535:
                    causes.append(
                        _cause(
                            f"{ppath}.hostPort",
                            f"Invalid value: {host_port}: must be between 1 and 65535, inclusive",
                        )
                    )
                else:
                    proto = p.get("protocol", "TCP")
                    if (host_port, proto) in host_ports:
                        causes.append(
                            _cause(
                                f"{ppath}.hostPort",
                                f'Duplicate value: "{host_port}/{proto}"',
                                "FieldValueDuplicate",
                            )
                        )
                    host_ports.add((host_port, proto))
            pname = p.get("name")
            if pname is not None:
                if len(pname) > 15 or not IANA_SVC_NAME.match(pname):
                    causes.append(
                        _cause(
                            f"{ppath}.name",
                            f'Invalid value: "{pname}": must be no more than 15 characters',
                        )
                    )
                elif pname in port_names:
                    causes.append(
                        _cause(
                            f"{ppath}.name", f'Duplicate value: "{pname}"', "FieldValueDuplicate"
                        )
                    )
                port_names.add(pname)
        for kind in ("limits", "requests"):
            for res, qty in ((c.get("resources") or {}).get(kind) or {}).items():
                try:
                    parse_quantity(qty)
                except ValueError as exc:
                    causes.append(_cause(f"{path}.resources.{kind}[{res}]", str(exc)))
    causes += validate_labels(spec.get("nodeSelector"), "spec.nodeSelector")
    policy = spec.get("restartPolicy", "Always")
    if policy not in ("Always", "OnFailure", "Never"):
        causes.append(
            _cause("spec.restartPolicy", f'Unsupported value: "{policy}"', "FieldValueNotSupported")
        )
    return causes
