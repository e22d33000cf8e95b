"""RBAC as the API server's authorizer applies it: Roles, ClusterRoles and their bindings decide
what a user (a service account's token, say) may do; anything else is 403 Forbidden, with the
message a real cluster sends.

What is modelled: rules with ``apiGroups``, ``resources`` (``pods``, ``pods/log``, ``*``,
``*/log``), ``resourceNames``, ``verbs`` and ``nonResourceURLs``; RoleBindings (a Role or a
ClusterRole, in the binding's namespace only) and ClusterRoleBindings; subjects of kind
ServiceAccount, User and Group; the ``system:masters`` group, which may do anything; and the
discovery paths every authenticated user may read (``system:discovery``). The verb of a request
is derived as the API server does (``get``/``list``/``watch``/``create``/``update``/``patch``/
``delete``/``deletecollection``); ``pods/exec``, ``pods/attach`` and ``pods/portforward`` need
``create`` whether they arrive as POST or as a websocket GET (Kubernetes 1.35).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from kubesim import status

MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
RBAC_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
CONNECT = frozenset({"exec", "attach", "portforward"})  # need "create", however they arrive
# system:discovery and system:public-info-viewer, bound to every authenticated user
DISCOVERY_RULE: Mapping[str, Any] = {
    "nonResourceURLs": [
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/readyz",
        "/openapi",
        "/openapi/*",
        "/version",
        "/version/",
    ],
    "verbs": ["get"],
}


@dataclass(frozen=True)
class Identity:
    """Who a request comes from, as the authenticator found them."""

    name: str
    groups: frozenset[str] = frozenset({AUTHENTICATED})

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Identity:
        return cls(
            f"system:serviceaccount:{namespace}:{name}",
            frozenset(
                {AUTHENTICATED, "system:serviceaccounts", f"system:serviceaccounts:{namespace}"}
            ),
        )

    @classmethod
    def admin(cls) -> Identity:
        return cls("kubesim-admin", frozenset({AUTHENTICATED, MASTERS}))


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do, in the authorizer's terms."""

    verb: str
    path: str
    resource: str = ""  # empty: a non-resource request (discovery, health)
    subresource: str = ""
    name: str = ""
    namespace: str = ""
    api_group: str = ""

    @property
    def is_resource(self) -> bool:
        return bool(self.resource)

    @property
    def full_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def attributes(method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """The authorizer's view of a request to the core API (``/api/v1/...``) or a named group's
    (``/apis/GROUP/VERSION/...``, e.g. ``metrics.k8s.io``); shorter paths are discovery."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"] and len(parts) >= 3:
        api_group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        api_group, rest = parts[1], parts[3:]
    else:
        return Attributes("get" if method in ("GET", "HEAD") else method.lower(), path)
    namespace = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    resource, name = rest[0], rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if resource == "namespaces" and name:
        namespace = name  # a namespace is its own namespace
    if subresource in CONNECT:
        verb = "create"
    elif method in ("GET", "HEAD"):
        verb = "get" if name else "watch" if query.get("watch") in ("true", "1") else "list"
    else:
        verb = {
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if name else "deletecollection",
        }.get(method, method.lower())
    return Attributes(verb, path, resource, subresource, name, namespace, api_group)


def _rule_allows(rule: Mapping[str, Any], attrs: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.is_resource:
        return any(
            url in {"*", attrs.path} or (url.endswith("*") and attrs.path.startswith(url[:-1]))
            for url in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.api_group not in groups:
        return False
    resources = rule.get("resources") or []
    wanted = {attrs.full_resource, "*"}
    if attrs.subresource:
        wanted.add(f"*/{attrs.subresource}")
    if not wanted & set(resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


def _subject_is(subject: Mapping[str, Any], who: Identity, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return who.name == f"system:serviceaccount:{namespace}:{subject.get('name')}"
    if kind == "User":
        return who.name == subject.get("name")
    if kind == "Group":
        return subject.get("name") in who.groups
    return False


class Rbac:
    """The authorizer over a fixed set of RBAC objects."""

    def __init__(self, documents: Iterable[Mapping[str, Any]]) -> None:
        docs = [d for d in documents if d and d.get("kind") in RBAC_KINDS]
        self._roles = {
            (d["metadata"].get("namespace", ""), d["metadata"]["name"]): d.get("rules") or []
            for d in docs
            if d["kind"] == "Role"
        }
        self._cluster_roles = {
            d["metadata"]["name"]: d.get("rules") or [] for d in docs if d["kind"] == "ClusterRole"
        }
        self._bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]

    @classmethod
    def from_files(cls, paths: Sequence[Path]) -> Rbac:
        docs: list[Mapping[str, Any]] = []
        for path in paths:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict)]
        return cls(docs)

    def allows(self, who: Identity, attrs: Attributes) -> bool:
        if MASTERS in who.groups:
            return True
        if AUTHENTICATED in who.groups and _rule_allows(DISCOVERY_RULE, attrs):
            return True
        return any(_rule_allows(rule, attrs) for rule in self._rules_for(who, attrs))

    def _rules_for(self, who: Identity, attrs: Attributes) -> Iterable[Mapping[str, Any]]:
        for binding in self._bindings:
            namespace = binding["metadata"].get("namespace", "")
            if binding["kind"] == "RoleBinding" and (
                not attrs.is_resource or attrs.namespace != namespace
            ):
                continue  # a RoleBinding grants inside its namespace only
            if not any(_subject_is(s, who, namespace) for s in binding.get("subjects") or []):
                continue
            ref = binding.get("roleRef") or {}
            if ref.get("kind") == "ClusterRole":
                yield from self._cluster_roles.get(ref.get("name", ""), [])
            elif ref.get("kind") == "Role" and binding["kind"] == "RoleBinding":
                yield from self._roles.get((namespace, ref.get("name", "")), [])


def forbidden(who: Identity, attrs: Attributes) -> web.Response:
    """The 403 the API server answers, word for word."""
    if not attrs.is_resource:
        return status.error(
            403,
            "Forbidden",
            f'forbidden: User "{who.name}" cannot {attrs.verb} path "{attrs.path}"',
        )
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    why = (
        f'User "{who.name}" cannot {attrs.verb} resource "{attrs.full_resource}" '
        f'in API group "{attrs.api_group}" {scope}'
    )
    qualified = f"{attrs.resource}.{attrs.api_group}" if attrs.api_group else attrs.resource
    subject = f'{qualified} "{attrs.name}"' if attrs.name else qualified
    details: dict[str, Any] = {"kind": attrs.resource}
    if attrs.api_group:
        details["group"] = attrs.api_group
    if attrs.name:
        details["name"] = attrs.name
    return status.error(403, "Forbidden", f"{subject} is forbidden: {why}", details)
