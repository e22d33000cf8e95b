"""The aiohttp application: discovery, the core/v1 API, pod log/exec, the resource metrics API
(unless turned off) and the control API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from kubesim import discovery
from kubesim.api import Api
from kubesim.auth import access_middleware
from kubesim.cluster import Cluster
from kubesim.control import Control
from kubesim.discovery import METRICS_GROUP, METRICS_VERSION
from kubesim.faults import Faults
from kubesim.jsonio import json_response
from kubesim.metrics import MetricsApi, page_not_found
from kubesim.podio import PodIO
from kubesim.rbac import Identity, Rbac
from kubesim.status import not_found
from kubesim.store import Store


def build_app(
    store: Store,
    cluster: Cluster,
    faults: Faults,
    address: str,
    *,
    tokens: Mapping[str, Identity] | None = None,
    rbac: Rbac | None = None,
) -> web.Application:
    """``tokens``: who each bearer token is (none: open to all); ``rbac``: what they may do."""
    middlewares: list[Middleware] = [faults.middleware]
    if tokens:  # authentication and authorization come first
        middlewares.insert(0, access_middleware(tokens, rbac or Rbac([])))
    app = web.Application(middlewares=middlewares, client_max_size=8 * 2**20)

    metrics = cluster.config.metrics
    docs: dict[str, Any] = {
        "/version": discovery.VERSION,
        "/api": discovery.api_versions(address),
        "/apis": discovery.api_group_list(metrics=metrics),
        "/api/v1": discovery.api_resource_list(),
        "/openapi/v3": discovery.openapi_v3_root(),
        "/openapi/v3/api/v1": discovery.openapi_v3_core(),
        "/healthz": "ok",
        "/readyz": "ok",
        "/livez": "ok",
    }
    if metrics:
        docs[f"/apis/{METRICS_GROUP}"] = discovery.metrics_api_group()
        docs[f"/apis/{METRICS_GROUP}/{METRICS_VERSION}"] = discovery.metrics_resource_list()

    async def fixed(request: web.Request) -> web.Response:
        doc = docs[request.path.rstrip("/") or "/"]
        if isinstance(doc, str):
            return web.Response(text=doc)
        return json_response(doc)

    for path in docs:
        app.router.add_get(path, fixed)
        app.router.add_get(path + "/", fixed)
    app.router.add_routes(Api(store, cluster).routes())
    app.router.add_routes(PodIO(store, cluster).routes())
    app.router.add_routes(Control(store, cluster, faults).routes())
    if metrics:
        app.router.add_routes(MetricsApi(store, cluster).routes())
    else:  # no APIService for the group: the API server has nothing at these paths

        async def no_metrics_api(_request: web.Request) -> web.Response:
            return page_not_found()

        app.router.add_route("*", f"/apis/{METRICS_GROUP}{{tail:(/.*)?}}", no_metrics_api)

    async def fallback(request: web.Request) -> web.Response:
        return not_found("resource", request.path)

    app.router.add_route("*", "/{tail:.*}", fallback)
    return app
