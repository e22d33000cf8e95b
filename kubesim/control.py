"""The control API (``/kubesim/v1/...``) used by ``serve`` users; the Python handle calls the
same cluster methods directly."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from kubesim import status
from kubesim.cluster import Cluster
from kubesim.faults import FaultRule, Faults
from kubesim.jsonio import json_response
from kubesim.oom import start_climb
from kubesim.store import Store


class Control:
    def __init__(self, store: Store, cluster: Cluster, faults: Faults) -> None:
        self.store, self.cluster, self.faults = store, cluster, faults

    def routes(self) -> list[web.RouteDef]:
        p = "/kubesim/v1"
        return [
            web.post(p + "/faults", self.add_fault),
            web.delete(p + "/faults", self.clear_faults),
            web.post(p + "/namespaces/{namespace}/pods/{name}/kill", self.kill),
            web.post(p + "/namespaces/{namespace}/pods/{name}/evict", self.evict),
            web.post(p + "/namespaces/{namespace}/pods/{name}/answering", self.answering),
            web.post(p + "/namespaces/{namespace}/pods/{name}/readiness", self.readiness),
            web.post(p + "/namespaces/{namespace}/pods/{name}/memory-climb", self.memory_climb),
            web.post(p + "/nodes/{name}/ready", self.node_ready),
            web.post(p + "/nodes/{name}/cordon", self.cordon),
            web.post(p + "/compact", self.compact),
            web.get(p + "/requests", self.requests),
            web.get(p + "/audit", self.audit),
        ]

    @staticmethod
    async def _json(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        data = json.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise TypeError("expected a JSON object")
        return data

    async def add_fault(self, request: web.Request) -> web.Response:
        try:
            self.faults.add(FaultRule(**await self._json(request)))
        except (TypeError, ValueError) as exc:
            return status.bad_request(str(exc))
        return json_response({"rules": len(self.faults.rules)}, status=201)

    async def clear_faults(self, _request: web.Request) -> web.Response:
        self.faults.clear()
        return json_response({"rules": 0})

    async def kill(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        reason = body.get("reason", "OOMKilled")
        code = int(body.get("exitCode", 137 if reason == "OOMKilled" else 1))
        try:
            await self.cluster.kill_container(
                request.match_info["namespace"],
                request.match_info["name"],
                body.get("container", ""),
                exit_code=code,
                reason=reason,
            )
        except KeyError as exc:
            return status.not_found("pods", str(exc))
        return json_response({"killed": True})

    async def evict(self, request: web.Request) -> web.Response:
        try:
            await self.cluster.evict(request.match_info["namespace"], request.match_info["name"])
        except KeyError as exc:
            return status.not_found("pods", str(exc))
        return json_response({"evicted": True})

    async def answering(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            await self.cluster.set_answering(
                request.match_info["namespace"],
                request.match_info["name"],
                body.get("container", ""),
                bool(body.get("answering", True)),
            )
        except KeyError as exc:
            return status.not_found("pods", str(exc))
        except ValueError as exc:
            return status.bad_request(str(exc))
        return json_response({"ok": True})

    async def readiness(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            self.cluster.fail_readiness(
                request.match_info["namespace"],
                request.match_info["name"],
                body.get("container", ""),
                bool(body.get("failing", True)),
            )
        except KeyError as exc:
            return status.not_found("pods", str(exc))
        return json_response({"ok": True})

    async def memory_climb(self, request: web.Request) -> web.Response:
        """{"seconds": N, "container": optional}: the container's working set climbs to its
        memory limit over N seconds, then it is OOM-killed (``kubesim.oom``)."""
        try:
            body = await self._json(request)
        except (TypeError, ValueError) as exc:
            return status.bad_request(str(exc))
        raw = body.get("seconds", 0)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            return status.bad_request(f"seconds must be a number, not {raw!r}")
        seconds = float(raw)
        try:
            container, climb = await start_climb(
                self.cluster,
                request.match_info["namespace"],
                request.match_info["name"],
                body.get("container"),
                seconds,
            )
        except KeyError as exc:
            return status.not_found("pods", str(exc))
        except ValueError as exc:
            return status.bad_request(str(exc))
        return json_response(
            {
                "container": container,
                "fromBytes": climb.start_bytes,
                "limitBytes": climb.limit_bytes,
                "seconds": climb.seconds,
            }
        )

    async def node_ready(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            await self.cluster.set_node_ready(
                request.match_info["name"], bool(body.get("ready", True))
            )
        except KeyError as exc:
            return status.not_found("nodes", str(exc))
        return json_response({"ok": True})

    async def cordon(self, request: web.Request) -> web.Response:
        body = await self._json(request)
        try:
            self.cluster.cordon(request.match_info["name"], bool(body.get("unschedulable", True)))
        except KeyError as exc:
            return status.not_found("nodes", str(exc))
        return json_response({"ok": True})

    async def requests(self, _request: web.Request) -> web.Response:
        """API requests served so far: {"total": N, "by_path": {"GET /api/v1/...": n}}."""
        seen = self.faults.seen
        return json_response(
            {"total": sum(seen.values()), "by_path": {f"{m} {p}": n for (m, p), n in seen.items()}}
        )

    async def audit(self, _request: web.Request) -> web.Response:
        """The requests that changed something (or tried to), oldest first: {"items": [{"time":
        unix seconds, "verb", "path", "userAgent", "code": the HTTP status}]}."""
        return json_response({"items": list(self.faults.audit)})

    async def compact(self, _request: web.Request) -> web.Response:
        self.store.compact()
        return json_response({"compactedResourceVersion": self.store.compacted_rv})
