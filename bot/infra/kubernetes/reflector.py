"""A watch-backed copy of the island pods, so a reconcile tick needs no Kubernetes request.

One LIST, then a WATCH from the list's resourceVersion, applied to an in-memory map. When the
watch ends (timeout, dropped connection) it resumes from the last resourceVersion seen; when the
server answers 410 (too old) or anything goes wrong, it lists again. Until the first list has
succeeded, ``pods()`` returns None and callers list for themselves.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import orjson
import urllib3
from kubernetes.client.exceptions import ApiException

from bot.domain.podspec import SELECTOR
from bot.infra.kubernetes.client import Kube
from bot.infra.kubernetes.errors import KubeError
from bot.infra.kubernetes.views import PodView, parse_pod

log = logging.getLogger(__name__)


class Expired(Exception):
    """The watch's resourceVersion is too old: list again."""


class PodReflector:
    def __init__(
        self, kube: Kube, *, watch_timeout_s: int = 300, retry_delay_s: float = 1.0
    ) -> None:
        self.kube = kube
        self.watch_timeout_s = watch_timeout_s
        self.retry_delay_s = retry_delay_s
        self._pods: dict[str, PodView] = {}
        self._lock = threading.Lock()
        self._synced = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._response: Any = None
        self.lists = 0  # how often it listed (start-up, 410s, errors)
        self.events = 0  # watch events applied
        self.expired = 0  # 410s answered by listing again

    # ---- reading ----------------------------------------------------------------------------

    def pods(self) -> list[PodView] | None:
        """The island pods as last seen, or None before the first successful list."""
        with self._lock:
            return list(self._pods.values()) if self._synced else None

    # ---- running ----------------------------------------------------------------------------

    def start(self) -> PodReflector:
        self._thread = threading.Thread(target=self._run, name="pod-reflector", daemon=True)
        self._thread.start()
        return self

    def wait_synced(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pods() is not None:
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        self._stop.set()
        response = self._response
        if response is not None:
            with contextlib.suppress(Exception):  # best effort on the way out
                response.shutdown()  # unblock the watch read
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                version = self._list()
                while not self._stop.is_set():
                    version = self._watch(version)
            except Expired:
                self.expired += 1
                log.info("pod watch expired; listing again")
            except (
                KubeError,
                ApiException,
                urllib3.exceptions.HTTPError,
                OSError,
                ValueError,
            ) as exc:
                if self._stop.is_set():
                    return
                log.warning("pod reflector: %s; listing again in %.1fs", exc, self.retry_delay_s)
                self._stop.wait(self.retry_delay_s)

    def _list(self) -> str:
        data = self.kube.json(
            "list island pods",
            self.kube.core.list_namespaced_pod,
            self.kube.settings.namespace,
            label_selector=SELECTOR,
        )
        pods = {item["metadata"]["uid"]: parse_pod(item) for item in data.get("items", [])}
        with self._lock:
            self._pods = pods
            self._synced = True
        self.lists += 1
        return str(data.get("metadata", {}).get("resourceVersion", ""))

    def _watch(self, version: str) -> str:
        """Apply events until the stream ends; returns the last resourceVersion seen."""
        response: Any = self.kube.core.list_namespaced_pod(
            self.kube.settings.namespace,
            label_selector=SELECTOR,
            watch=True,
            resource_version=version,
            timeout_seconds=self.watch_timeout_s,
            allow_watch_bookmarks=True,
            _preload_content=False,
            _request_timeout=(self.kube.settings.request_timeout_s, self.watch_timeout_s + 30),
        )
        self._response = response
        buffer = b""
        try:
            for chunk in response.stream(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        version = self._apply(orjson.loads(line), version)
        finally:
            self._response = None
            response.release_conn()
        return version

    def _apply(self, event: dict[str, Any], version: str) -> str:
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Expired(obj.get("message", "expired"))
            raise ValueError(f"watch error: {obj.get('message')}")
        meta = obj.get("metadata", {})
        new_version = str(meta.get("resourceVersion") or version)
        if kind == "BOOKMARK":
            return new_version
        uid = meta.get("uid", "")
        with self._lock:
            if kind == "DELETED":
                self._pods.pop(uid, None)
            else:
                self._pods[uid] = parse_pod(obj)
        self.events += 1
        return new_version
