"""The core/v1 REST API: pods, nodes, events, services, namespaces; list, watch, CRUD."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from kubesim import quota, status
from kubesim.cluster import Cluster
from kubesim.jsonio import dumps, dumps_bytes, json_response
from kubesim.selectors import (
    SelectorError,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from kubesim.store import Expired, Obj, Store
from kubesim.tables import to_table, wants_table
from kubesim.validation import validate_labels, validate_name, validate_pod


@dataclass(frozen=True)
class Kind:
    resource: str
    kind: str
    namespaced: bool
    fields: frozenset[str]


_META_FIELDS = frozenset({"metadata.name", "metadata.namespace"})
KINDS = {
    "pods": Kind(
        "pods", "Pod", True, _META_FIELDS | {"status.phase", "spec.nodeName", "status.podIP"}
    ),
    "nodes": Kind("nodes", "Node", False, _META_FIELDS | {"spec.unschedulable"}),
    "events": Kind(
        "events",
        "Event",
        True,
        _META_FIELDS
        | {
            "involvedObject.name",
            "involvedObject.namespace",
            "involvedObject.uid",
            "involvedObject.kind",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "type",
            "source",
            "reportingComponent",
        },
    ),
    "services": Kind("services", "Service", True, _META_FIELDS),
    "namespaces": Kind("namespaces", "Namespace", False, _META_FIELDS | {"status.phase"}),
    "resourcequotas": Kind("resourcequotas", "ResourceQuota", True, _META_FIELDS),
}


class Api:
    def __init__(self, store: Store, cluster: Cluster) -> None:
        self.store = store
        self.cluster = cluster

    def routes(self) -> list[web.RouteDef]:
        r = []
        for name, kind in KINDS.items():
            if kind.namespaced:
                base = f"/api/v1/namespaces/{{namespace}}/{name}"
                r += [
                    web.get(f"/api/v1/{name}", self.list_or_watch),
                    web.get(base, self.list_or_watch),
                    web.post(base, self.create),
                    web.get(base + "/{name}", self.get),
                    web.delete(base + "/{name}", self.delete),
                    web.patch(base + "/{name}", self.patch),
                ]
            else:
                r += [
                    web.get(f"/api/v1/{name}", self.list_or_watch),
                    web.post(f"/api/v1/{name}", self.create),
                    web.get(f"/api/v1/{name}/{{name}}", self.get),
                    web.patch(f"/api/v1/{name}/{{name}}", self.patch),
                ]
        return r

    # ---- helpers ----------------------------------------------------------------------------

    @staticmethod
    def _kind(request: web.Request) -> Kind:
        parts = request.path.split("/")
        resource = parts[5] if parts[3] == "namespaces" and len(parts) > 5 else parts[3]
        return KINDS[resource]

    def _namespace_missing(self, kind: Kind, ns: str | None) -> web.Response | None:
        if kind.namespaced and ns is not None and self.store.get("namespaces", "", ns) is None:
            return status.not_found("namespaces", ns)
        return None

    @staticmethod
    async def _body(request: web.Request) -> Obj | web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return status.bad_request(f"the body of the request was in an unknown format: {exc}")
        if not isinstance(body, dict):
            return status.bad_request("the body of the request must be a JSON object")
        return body

    # ---- list and watch ---------------------------------------------------------------------

    def _filters(self, request: web.Request, kind: Kind) -> Any:
        q = request.query
        labels = parse_label_selector(q.get("labelSelector"))
        fields = parse_field_selector(q.get("fieldSelector"), kind.fields)
        return lambda o: labels_match(labels, o["metadata"].get("labels")) and fields(o)

    async def list_or_watch(self, request: web.Request) -> web.StreamResponse:
        kind = self._kind(request)
        ns = request.match_info.get("namespace")
        try:
            match = self._filters(request, kind)
        except SelectorError as exc:
            return status.bad_request(str(exc))
        if request.query.get("watch") in ("true", "1"):
            return await self._watch(request, kind, ns, match)
        items = sorted(
            (o for o in self.store.items(kind.resource, ns) if match(o)),
            key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]),
        )
        meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        token = request.query.get("continue")
        if token:
            try:
                after = json.loads(base64.urlsafe_b64decode(token.encode()))
                start = tuple(after["k"])
            except (ValueError, KeyError, TypeError):
                return status.error(
                    410,
                    "Expired",
                    "The provided continue parameter is "
                    "too old to display a consistent list result.",
                )
            items = [
                o
                for o in items
                if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > start
            ]
        limit = request.query.get("limit")
        if limit and limit.isdigit() and 0 < int(limit) < len(items):
            items = items[: int(limit)]
            last = items[-1]["metadata"]
            meta["continue"] = base64.urlsafe_b64encode(
                dumps({"k": [last.get("namespace", ""), last["name"]]}).encode()
            ).decode()
        if wants_table(request.headers.get("Accept", "")):
            table = to_table(kind.resource, items, meta["resourceVersion"])
            if table is not None:
                table["metadata"].update(meta)
                return json_response(table)
        return json_response(
            {"kind": f"{kind.kind}List", "apiVersion": "v1", "metadata": meta, "items": items}
        )

    async def _watch(
        self, request: web.Request, kind: Kind, ns: str | None, match: Any
    ) -> web.StreamResponse:
        q = request.query
        rv_text = q.get("resourceVersion", "")
        initial_events = q.get("sendInitialEvents") == "true"
        since: int | None = None
        if rv_text not in ("", "0") and not initial_events:
            if not rv_text.isdigit():
                return status.bad_request(f"invalid resourceVersion {rv_text!r}")
            since = int(rv_text)
        timeout = q.get("timeoutSeconds")
        deadline = time.monotonic() + (float(timeout) if timeout and timeout.isdigit() else 1800.0)
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        )
        await response.prepare(request)

        async def send(event_type: str, obj: Obj) -> None:
            await response.write(dumps_bytes({"type": event_type, "object": obj}) + b"\n")

        try:
            watcher, initial = self.store.subscribe(kind.resource, ns, match, since)
        except Expired as exc:
            await send("ERROR", status.status_body(410, "Expired", str(exc)))
            return response
        visible: set[tuple[str, str]] = set()
        try:
            for event_type, obj in initial:
                await self._send_filtered(send, event_type, obj, match, visible)
            if initial_events:
                await send(
                    "BOOKMARK",
                    {
                        "kind": kind.kind,
                        "apiVersion": "v1",
                        "metadata": {
                            "resourceVersion": str(self.store.rv),
                            "annotations": {"k8s.io/initial-events-end": "true"},
                        },
                    },
                )
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    event_type, obj = await asyncio.wait_for(watcher.queue.get(), left)
                except TimeoutError:
                    break
                await self._send_filtered(send, event_type, obj, match, visible)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.store.unsubscribe(watcher)
        return response

    @staticmethod
    async def _send_filtered(
        send: Any, event_type: str, obj: Obj, match: Any, visible: set[tuple[str, str]]
    ) -> None:
        """Selectors apply to the object as it is now: an object that stops matching is
        reported DELETED to this watcher, one that starts matching ADDED (as the server)."""
        key = (obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if event_type == "DELETED":
            if key in visible or match(obj):
                visible.discard(key)
                await send("DELETED", obj)
            return
        if match(obj):
            await send("ADDED" if key not in visible and event_type != "ADDED" else event_type, obj)
            visible.add(key)
        elif key in visible:
            visible.discard(key)
            await send("DELETED", obj)

    # ---- single objects ---------------------------------------------------------------------

    async def get(self, request: web.Request) -> web.Response:
        kind = self._kind(request)
        ns = request.match_info.get("namespace", "")
        name = request.match_info["name"]
        obj = self.store.get(kind.resource, ns, name)
        if obj is None:
            return status.not_found(kind.resource, name)
        return json_response(obj)

    async def create(self, request: web.Request) -> web.Response:
        kind = self._kind(request)
        ns = request.match_info.get("namespace")
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        missing = self._namespace_missing(kind, ns)
        if missing is not None:
            return missing
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            return status.bad_request("metadata must be an object")
        if body.get("kind") not in (None, kind.kind):
            return status.bad_request(
                f"the API version in the data (v1) does not match the "
                f"expected kind: {body.get('kind')} is not {kind.kind}"
            )
        if ns is not None:
            if meta.get("namespace") not in (None, ns):
                return status.bad_request(
                    "the namespace of the provided object does not "
                    "match the namespace sent on the request"
                )
            meta["namespace"] = ns
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
            meta.pop(key, None)
        body["kind"], body["apiVersion"] = kind.kind, "v1"
        causes = (
            validate_pod(body)
            if kind.resource == "pods"
            else validate_name(meta.get("name")) + validate_labels(meta.get("labels"))
        )
        if causes:
            return status.invalid(kind.kind, str(meta.get("name", "")), causes)
        if self.store.get(kind.resource, ns or "", meta["name"]) is not None:
            return status.already_exists(kind.resource, meta["name"])
        if kind.resource == "pods" and (refused := quota.admit(self.store, body)) is not None:
            return refused
        if request.query.get("dryRun") == "All":
            return json_response(body, status=201)
        if kind.resource == "pods":
            body.setdefault("spec", {}).setdefault("restartPolicy", "Always")
            body["spec"].setdefault("dnsPolicy", "ClusterFirst")
            body["spec"].setdefault("schedulerName", "default-scheduler")
            body["status"] = {"phase": "Pending", "qosClass": _qos(body)}
        elif kind.resource == "namespaces":
            body["status"] = {"phase": "Active"}
        elif kind.resource == "services":
            body.setdefault("spec", {}).setdefault("type", "ClusterIP")
        elif kind.resource == "resourcequotas":
            body["status"] = {"hard": dict(body.get("spec", {}).get("hard") or {})}
        obj = self.store.create(kind.resource, body)
        if kind.resource == "pods":
            self.cluster.pod_created(obj)
        return json_response(obj, status=201)

    async def delete(self, request: web.Request) -> web.Response:
        kind = self._kind(request)
        ns = request.match_info.get("namespace", "")
        name = request.match_info["name"]
        grace: float | None = None
        raw = await request.read()
        if raw:
            try:
                options = json.loads(raw)
                if isinstance(options, dict) and options.get("gracePeriodSeconds") is not None:
                    grace = float(options["gracePeriodSeconds"])
            except (ValueError, TypeError):
                return status.bad_request("invalid DeleteOptions")
        if request.query.get("gracePeriodSeconds", "").isdigit():
            grace = float(request.query["gracePeriodSeconds"])
        if kind.resource == "pods":
            obj = self.cluster.delete_pod(ns, name, grace)
        else:
            obj = self.store.remove(kind.resource, ns, name)
        if obj is None:
            return status.not_found(kind.resource, name)
        return json_response(obj)

    async def patch(self, request: web.Request) -> web.Response:
        kind = self._kind(request)
        ns = request.match_info.get("namespace", "")
        name = request.match_info["name"]
        current = self.store.get(kind.resource, ns, name)
        if current is None:
            return status.not_found(kind.resource, name)
        body = await self._body(request)
        if isinstance(body, web.Response):
            return body
        ctype = request.content_type
        if ctype not in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
            "application/apply-patch+yaml",
        ):
            return error_415(ctype)
        new = _merge(copy.deepcopy(current), body)
        allowed = {"labels", "annotations"} | (
            {"unschedulable"} if kind.resource == "nodes" else set()
        )
        if _strip(new, allowed) != _strip(current, allowed):
            return status.invalid(
                kind.kind,
                name,
                [
                    {
                        "reason": "FieldValueForbidden",
                        "field": "spec",
                        "message": "Forbidden: pod updates may not change fields other than "
                        "metadata.labels and metadata.annotations in this simulator",
                    }
                ],
            )
        causes = validate_labels(new["metadata"].get("labels"))
        if causes:
            return status.invalid(kind.kind, name, causes)
        if new == current:
            return json_response(current)
        obj = self.store.replace(kind.resource, new)
        if kind.resource == "nodes":
            self.cluster.kick()  # a cordon may change scheduling
        return json_response(obj)


def error_415(ctype: str) -> web.Response:
    return status.error(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media "
        f"types include: application/merge-patch+json, "
        f"application/strategic-merge-patch+json (got {ctype})",
    )


def _merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return patch
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge(target.get(key), value)
    return target


def _strip(obj: Obj, allowed: set[str]) -> Obj:
    copy_ = copy.deepcopy(obj)
    meta = copy_.get("metadata", {})
    for key in allowed:
        meta.pop(key, None)
        copy_.get("spec", {}).pop(key, None)
    for key in ("resourceVersion", "managedFields", "generation"):
        meta.pop(key, None)
    return copy_


def _qos(pod: Obj) -> str:
    containers = pod.get("spec", {}).get("containers", [])
    res = [(c.get("resources") or {}) for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in res):
        return "BestEffort"
    if all(
        (r.get("limits") or {}).keys() >= {"cpu", "memory"}
        and (r.get("requests") or r.get("limits")) == r.get("limits")
        for r in res
    ):
        return "Guaranteed"
    return "Burstable"
