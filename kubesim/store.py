"""Objects, resourceVersions and watches, like etcd behind an API server.

Runs on the simulator's event loop only. Stored objects are never mutated in place: a change
stores a new dict, so a snapshot handed to a watcher or kept in history stays what it was.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace or "", name)


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Expired(Exception):
    """The requested resourceVersion is older than the watch window (HTTP 410)."""


@dataclass
class Watcher:
    kind: str
    namespace: str | None
    predicate: Callable[[Obj], bool]
    queue: asyncio.Queue[tuple[str, Obj]] = field(default_factory=asyncio.Queue)


@dataclass
class Event:
    rv: int
    kind: str
    type: str  # ADDED, MODIFIED, DELETED
    obj: Obj


class Store:
    def __init__(self, history: int = 20_000) -> None:
        self.rv = 0
        self._objects: dict[str, dict[Key, Obj]] = {}
        self._history: deque[Event] = deque(maxlen=history)
        self._watchers: list[Watcher] = []
        self.compacted_rv = 0  # events at or below this rv are no longer replayable

    # ---- reading ----------------------------------------------------------------------------

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get(kind, {}).get((namespace, name))

    def items(self, kind: str, namespace: str | None = None) -> Iterator[Obj]:
        for (ns, _name), obj in self._objects.get(kind, {}).items():
            if namespace is None or ns == namespace:
                yield obj

    # ---- writing ----------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def create(self, kind: str, obj: Obj) -> Obj:
        """Store a new object; sets uid, creationTimestamp, resourceVersion, generation."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        meta.setdefault("generation", 1)
        meta["resourceVersion"] = str(self._next_rv())
        key = (meta.get("namespace", ""), meta["name"])
        self._objects.setdefault(kind, {})[key] = obj
        self._emit(kind, "ADDED", obj)
        return obj

    def replace(self, kind: str, obj: Obj) -> Obj:
        """Store ``obj`` (a changed copy of a stored object) as its new version."""
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self._next_rv())
        self._objects[kind][(meta.get("namespace", ""), meta["name"])] = obj
        self._emit(kind, "MODIFIED", obj)
        return obj

    def mutate(
        self, kind: str, namespace: str, name: str, change: Callable[[Obj], None]
    ) -> Obj | None:
        """Copy the stored object, apply ``change`` to the copy, store it. None if absent."""
        current = self.get(kind, namespace, name)
        if current is None:
            return None
        new = copy.deepcopy(current)
        change(new)
        return self.replace(kind, new)

    def remove(self, kind: str, namespace: str, name: str) -> Obj | None:
        obj = self._objects.get(kind, {}).pop((namespace, name), None)
        if obj is None:
            return None
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self._next_rv())
        self._emit(kind, "DELETED", obj)
        return obj

    # ---- watching ---------------------------------------------------------------------------

    def _emit(self, kind: str, event_type: str, obj: Obj) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        if self._history.maxlen and len(self._history) == self._history.maxlen:
            self.compacted_rv = self._history[0].rv
        self._history.append(Event(rv, kind, event_type, obj))
        namespace = obj["metadata"].get("namespace", "")
        for w in self._watchers:
            if w.kind == kind and (w.namespace is None or w.namespace == namespace):
                w.queue.put_nowait((event_type, obj))

    def compact(self) -> None:
        """Forget all history: every resourceVersion older than now gets 410 on watch."""
        self._history.clear()
        self.compacted_rv = self.rv

    def subscribe(
        self,
        kind: str,
        namespace: str | None,
        predicate: Callable[[Obj], bool],
        since_rv: int | None,
    ) -> tuple[Watcher, list[tuple[str, Obj]]]:
        """Register a watcher. Returns it and the events to send first: every matching object
        as ADDED when ``since_rv`` is None, else the recorded events after ``since_rv``."""
        if since_rv is not None and since_rv < self.compacted_rv:
            raise Expired(f"too old resource version: {since_rv} ({self.compacted_rv + 1})")
        watcher = Watcher(kind, namespace, predicate)
        if since_rv is None:
            initial = [("ADDED", o) for o in self.items(kind, namespace)]
        else:
            initial = [
                (e.type, e.obj)
                for e in self._history
                if e.rv > since_rv
                and e.kind == kind
                and (namespace is None or e.obj["metadata"].get("namespace", "") == namespace)
            ]
        self._watchers.append(watcher)
        return watcher, initial

    def unsubscribe(self, watcher: Watcher) -> None:
        if watcher in self._watchers:
            self._watchers.remove(watcher)
