"""The Kubernetes boundary: the only module that talks to the cluster.

Every operation has a request timeout and a bounded retry policy of its own (urllib3's built-in
retries are switched off, so a 429's Retry-After can never stall a tick for long): 429 waits for
Retry-After (capped), 5xx and connection errors back off exponentially, other 4xx fail at once.
Library errors never leave this module: callers see ``KubeError`` and its children.
Reads are parsed from raw JSON into small frozen views (building the client's models for
thousands of pods per tick would cost more than the request).
"""

from __future__ import annotations

import logging
import os
import platform
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from pathlib import Path
from typing import Any, TypeVar

import orjson
import urllib3
from kubernetes import client
from kubernetes import config as kube_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config import incluster_config
from kubernetes.stream import stream
from kubernetes.utils import parse_quantity

from bot import __version__
from bot.domain.podspec import LABEL_ISLAND, LABEL_OWNER, SELECTOR
from bot.domain.quantity import MAX_BYTES
from bot.infra import metrics
from bot.infra.kubernetes.errors import (
    KubeConflict,
    KubeError,
    KubeNotFound,
    KubeUnavailable,
    retry_after,
    wrap,
)
from bot.infra.kubernetes.views import (
    ClusterSnapshot,
    ExecResult,
    NodeView,
    PodSource,
    PodView,
    parse_pod,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
_IDS_PER_LIST = 100  # island ids in one label selector (the request line stays short)
# Where Kubernetes mounts a pod's service account (token, ca.crt, namespace).
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
Obj = dict[str, Any]
# Who sends each request, as the API server's audit log shows it: this program, its version and
# the process (a replica's host and pid)
USER_AGENT = f"islandbot/{__version__} ({platform.node()}/{os.getpid()})"


@dataclass(frozen=True)
class KubeSettings:
    namespace: str = "islands"
    request_timeout_s: float = 10.0  # per request
    attempts: int = 4  # tries per operation, first one included
    backoff_s: float = 0.2  # first back-off; doubles each time, with jitter
    max_wait_s: float = 5.0  # cap on any single wait, Retry-After included


def memory_of(value: object) -> int:
    """A memory quantity as the API server sends it (``64Gi``, ``64e9``, ``129500m``), read
    with the client library's parser, as bytes: a fraction of a byte counts as one (as
    ``Quantity.Value()`` rounds), beyond ``MAX_BYTES`` as ``MAX_BYTES``. ``ValueError`` if it
    is not a quantity."""
    try:
        number: Decimal = parse_quantity(str(value))  # type: ignore[no-untyped-call]
    except ArithmeticError as exc:  # the library lets a few through (overflow)
        raise ValueError(f"{value!r} is not a quantity") from exc
    if not number.is_finite():  # "Infinity", "NaN": the library's Decimal reads them
        raise ValueError(f"{value!r} is not a quantity")
    if number.is_zero():
        return 0
    bound = Decimal(MAX_BYTES)
    whole = min(number.copy_abs(), bound).to_integral_value(rounding=ROUND_UP)
    return int(whole) if number > 0 else -int(whole)


def pod_memory_request(pod: Obj) -> int:
    """The memory a pod asks of its node: its containers' requests (a limit alone counts as
    its request, as the scheduler takes it)."""
    total = 0
    for c in pod.get("spec", {}).get("containers", []):
        res = c.get("resources") or {}
        value = (res.get("requests") or {}).get("memory") or (res.get("limits") or {}).get("memory")
        if value:
            try:
                total += memory_of(value)
            except ValueError:
                log.warning(
                    "pod %s: unreadable memory request %r", pod["metadata"].get("name"), value
                )
    return total


class Kube:
    """Island operations on one namespace. Thread-safe."""

    def __init__(
        self,
        api_client: client.ApiClient,
        settings: KubeSettings,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        api_client.configuration.retries = False  # our own policy below, bounded and logged
        self._api = api_client
        self.core = client.CoreV1Api(api_client)
        self.settings = settings
        self._sleep = sleep
        self.retries = 0  # how many requests were sent again (for metrics)
        self._views: dict[tuple[str, str], PodView] = {}
        self.reflector: PodSource | None = None  # a started PodReflector, when used

    # ---- configuration ------------------------------------------------------------------------

    @classmethod
    def connect(
        cls,
        settings: KubeSettings,
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        environ: Mapping[str, str] = os.environ,
        service_account: Path = SERVICE_ACCOUNT_DIR,
    ) -> Kube:
        """A kubeconfig given by the settings wins. Else, in a pod (``KUBERNETES_SERVICE_HOST``
        set): its service account's token and CA. Else the kubeconfig in ``KUBECONFIG`` or
        ``~/.kube/config``, with ``context``."""
        configuration = client.Configuration()
        try:
            if kubeconfig is None and environ.get("KUBERNETES_SERVICE_HOST"):
                incluster_config.InClusterConfigLoader(  # type: ignore[no-untyped-call]
                    token_filename=str(service_account / "token"),
                    cert_filename=str(service_account / "ca.crt"),
                    environ=environ,
                ).load_and_set(configuration)
            else:
                path = kubeconfig or environ.get("KUBECONFIG") or "~/.kube/config"
                kube_config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=str(Path(path).expanduser()),
                    context=context,
                    client_configuration=configuration,
                )
        except (kube_config.ConfigException, OSError) as exc:
            raise KubeError(f"no usable Kubernetes configuration: {exc}") from exc
        configuration.retries = False
        api_client = client.ApiClient(configuration)
        api_client.user_agent = USER_AGENT  # which process did what, in the API's audit log
        return cls(api_client, settings)

    @property
    def api_client(self) -> client.ApiClient:
        """The configured client, for the adapter's other APIs (``pod_metrics``)."""
        return self._api

    def ping(self) -> None:
        """Raise a ``KubeError`` unless the API server answers (``GET /version``), quickly."""
        self._call("get version", client.VersionApi(self._api).get_code, _request_timeout=3)

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # ---- the retry policy ---------------------------------------------------------------------

    def _call(
        self, what: str, fn: Callable[..., T], *args: Any, once: bool = False, **kwargs: Any
    ) -> T:
        """``fn`` under the retry policy; ``once``: a single attempt (a best-effort read whose
        next interval is its retry)."""
        attempts = 1 if once else self.settings.attempts
        kwargs.setdefault("_request_timeout", self.settings.request_timeout_s)
        operation = what.split(" ", maxsplit=1)[0]  # the metrics label: create, list, get...
        delay = self.settings.backoff_s
        for attempt in range(1, attempts + 1):
            wait: float | None
            try:
                return fn(*args, **kwargs)
            except ApiException as exc:
                status = exc.status or 0
                if status == 429 or status >= 500:
                    wait = retry_after(exc) if status == 429 else None
                    problem = f"HTTP {status}"
                else:
                    metrics.KUBE_ERRORS.labels(operation=operation).inc()
                    raise wrap(what, exc) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                wait, problem = None, f"{type(exc).__name__}"
            if attempt == attempts:
                metrics.KUBE_ERRORS.labels(operation=operation).inc()
                raise KubeUnavailable(
                    f"{what}: Kubernetes API still failing after {attempt} attempts ({problem})"
                )
            if wait is None:
                wait = delay * random.uniform(0.5, 1.5)  # noqa: S311 - jitter, not security
                delay *= 2
            wait = min(wait, self.settings.max_wait_s)
            self.retries += 1
            metrics.KUBE_RETRIES.labels(operation=operation).inc()
            log.warning(
                "%s: %s; retrying in %.2fs (attempt %d/%d)",
                what,
                problem,
                wait,
                attempt + 1,
                attempts,
            )
            self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def json(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Obj:
        """``fn``'s answer as JSON, unparsed into the client's models, under the retry policy."""
        response = self._call(what, fn, *args, _preload_content=False, **kwargs)
        data = orjson.loads(response.data)
        if not isinstance(data, dict):  # pragma: no cover - the API always answers objects
            raise KubeError(f"{what}: unexpected answer")
        return data

    # ---- pods ---------------------------------------------------------------------------------

    def create_island_pod(self, body: Obj) -> PodView:
        """Create the pod. If it exists already for the same island and owner (a retried
        create), that pod is returned; a pod of that name for anyone else is a conflict."""
        ns = self.settings.namespace
        name = body["metadata"]["name"]
        try:
            return parse_pod(
                self.json(f"create pod {name}", self.core.create_namespaced_pod, ns, body)
            )
        except KubeConflict:
            existing = self.get_pod(name)
            labels = body["metadata"].get("labels", {})
            if existing is not None and (existing.island_id, existing.owner_id) == (
                int(labels.get(LABEL_ISLAND, -1)),
                labels.get(LABEL_OWNER),
            ):
                return existing
            raise

    def get_pod(self, name: str) -> PodView | None:
        try:
            return parse_pod(
                self.json(
                    f"get pod {name}", self.core.read_namespaced_pod, name, self.settings.namespace
                )
            )
        except KubeNotFound:
            return None

    def island_pods(self, island_ids: Iterable[int]) -> dict[int, PodView]:
        """The pods of these islands as the API server has them now (not a cache's word), by
        island id: one LIST per hundred islands, however many are asked about."""
        ids = sorted(set(island_ids))
        found: dict[int, PodView] = {}
        for start in range(0, len(ids), _IDS_PER_LIST):
            chunk = ",".join(str(i) for i in ids[start : start + _IDS_PER_LIST])
            data = self.json(
                "list pods of islands",
                self.core.list_namespaced_pod,
                self.settings.namespace,
                label_selector=f"{SELECTOR},{LABEL_ISLAND} in ({chunk})",
            )
            for item in data.get("items", []):
                view = parse_pod(item)
                if view.island_id is not None:
                    found[view.island_id] = view
        return found

    def delete_pod(self, name: str, *, grace_seconds: int | None = None) -> bool:
        """Ask for the pod to go. False when it was already gone."""
        try:
            self._call(
                f"delete pod {name}",
                self.core.delete_namespaced_pod,
                name,
                self.settings.namespace,
                grace_period_seconds=grace_seconds,
                _preload_content=False,
            )
        except KubeNotFound:
            return False
        return True

    def list_island_pods(self) -> list[PodView]:
        """Every pod islandbot manages in the namespace: one request, whatever their number.
        Pods whose resourceVersion has not changed since the last list are not parsed again."""
        data = self.json(
            "list island pods",
            self.core.list_namespaced_pod,
            self.settings.namespace,
            label_selector=SELECTOR,
        )
        views, cache = [], {}
        for item in data.get("items", []):
            meta = item.get("metadata", {})
            key = (meta.get("uid", ""), meta.get("resourceVersion", ""))
            view = self._views.get(key) or parse_pod(item)
            cache[key] = view
            views.append(view)
        self._views = cache
        return views

    def snapshot(self) -> ClusterSnapshot:
        """Everything a reconcile tick needs: with a synced reflector no request at all (one
        while a pod is unbound, for the scheduler's message); without, one or two."""
        cached = self.reflector.pods() if self.reflector is not None else None
        pods = cached if cached is not None else self.list_island_pods()
        return ClusterSnapshot(
            pods={p.island_id: p for p in pods if p.island_id is not None},
            strays=[p for p in pods if p.island_id is None],
            scheduling=self.scheduling_failures() if any(p.node is None for p in pods) else {},
        )

    def scheduling_failures(self) -> dict[str, str]:
        """Pod name -> the scheduler's latest FailedScheduling message, in one request."""
        data = self.json(
            "list scheduling events",
            self.core.list_namespaced_event,
            self.settings.namespace,
            field_selector="reason=FailedScheduling",
        )
        latest: dict[str, tuple[str, str]] = {}
        for ev in data.get("items", []):
            name = ev.get("involvedObject", {}).get("name", "")
            stamp = ev.get("lastTimestamp") or ev.get("eventTime") or ""
            if name not in latest or stamp >= latest[name][0]:
                latest[name] = (stamp, ev.get("message", ""))
        return {name: message for name, (_, message) in latest.items()}

    # ---- cluster ------------------------------------------------------------------------------

    def nodes(self) -> list[NodeView]:
        """Nodes with allocatable memory and what the pods on them request (two requests)."""
        nodes = self.json("list nodes", self.core.list_node).get("items", [])
        pods = self.json(
            "list pods",
            self.core.list_pod_for_all_namespaces,
            field_selector="status.phase!=Succeeded,status.phase!=Failed",
        ).get("items", [])
        requested: dict[str, int] = {}
        for pod in pods:
            node = pod.get("spec", {}).get("nodeName")
            if node:
                requested[node] = requested.get(node, 0) + pod_memory_request(pod)
        views = []
        for node in nodes:
            status = node.get("status", {})
            name = node["metadata"]["name"]
            memory = status.get("allocatable", {}).get("memory", "0")
            try:
                allocatable = memory_of(memory)
            except ValueError:
                log.warning("node %s: unreadable allocatable memory %r, left out", name, memory)
                continue
            views.append(
                NodeView(
                    name=name,
                    labels=node["metadata"].get("labels") or {},
                    address=next(
                        (
                            a["address"]
                            for a in status.get("addresses", [])
                            if a.get("type") == "InternalIP"
                        ),
                        None,
                    ),
                    allocatable_memory=allocatable,
                    requested_memory=requested.get(name, 0),
                    ready=any(
                        c.get("type") == "Ready" and c.get("status") == "True"
                        for c in status.get("conditions", [])
                    ),
                    unschedulable=bool(node.get("spec", {}).get("unschedulable")),
                )
            )
        return views

    def node_ports(self) -> dict[int, str]:
        """Host ports held by NodePort (and LoadBalancer) Services, cluster-wide."""
        services = self.json("list services", self.core.list_service_for_all_namespaces).get(
            "items", []
        )
        ports: dict[int, str] = {}
        for svc in services:
            meta = svc["metadata"]
            for port in (svc.get("spec") or {}).get("ports") or []:
                if port.get("nodePort"):
                    ports[int(port["nodePort"])] = (
                        f"NodePort of Service {meta.get('namespace')}/{meta['name']}"
                    )
        return ports

    # ---- inside pods --------------------------------------------------------------------------

    def annotate_pod(self, name: str, annotations: Mapping[str, str]) -> None:
        """Merge ``annotations`` into the pod's (a strategic-merge patch)."""
        self._call(
            f"annotate {name}",
            self.core.patch_namespaced_pod,
            name,
            self.settings.namespace,
            {"metadata": {"annotations": dict(annotations)}},
        )

    def relabel_pod(
        self, name: str, labels: Mapping[str, str], annotations: Mapping[str, str]
    ) -> None:
        """Merge ``labels`` and ``annotations`` into the pod's (a warm island handed to its
        owner: ``kubectl get pods -L islandbot.io/owner`` shows who holds it)."""
        self._call(
            f"relabel {name}",
            self.core.patch_namespaced_pod,
            name,
            self.settings.namespace,
            {"metadata": {"labels": dict(labels), "annotations": dict(annotations)}},
        )

    def pod_logs(
        self, name: str, *, container: str, tail_lines: int | None = None, previous: bool = False
    ) -> str:
        kwargs: dict[str, Any] = {"container": container, "previous": previous}
        if tail_lines is not None:
            kwargs["tail_lines"] = tail_lines
        response: Any = self._call(
            f"logs of {name}/{container}",
            self.core.read_namespaced_pod_log,
            name,
            self.settings.namespace,
            _preload_content=False,
            **kwargs,
        )
        return str(response.data.decode("utf-8", errors="replace"))

    def exec(
        self, name: str, *, container: str, command: list[str], timeout_s: float = 20.0
    ) -> ExecResult:
        """Run a command in a container (websocket). Not retried: it may not be idempotent."""
        # stream() swaps the request method of the client it is given: use a separate one
        exec_client = client.ApiClient(self._api.configuration)
        exec_client.user_agent = USER_AGENT
        api = client.CoreV1Api(exec_client)
        try:
            resp = stream(
                api.connect_get_namespaced_pod_exec,
                name,
                self.settings.namespace,
                command=command,
                container=container,
                stderr=True,
                stdin=False,
                stdout=True,
                tty=False,
                _preload_content=False,
                _request_timeout=self.settings.request_timeout_s,
            )
            resp.run_forever(timeout=timeout_s)
            code = resp.returncode
            out, err = resp.read_stdout() or "", resp.read_stderr() or ""
            resp.close()
        except ApiException as exc:
            raise wrap(f"exec in {name}/{container}", exc) from exc
        except Exception as exc:  # websocket and socket errors of every kind
            raise KubeUnavailable(
                f"exec in {name}/{container}: {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            api.api_client.close()
        return ExecResult(out, err, -1 if code is None else int(code))
