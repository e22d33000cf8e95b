"""Events as the cluster records them: one per (object, reason, message), its count bumped
when the same thing happens again."""

from __future__ import annotations

import random
import time

from kubesim.store import Obj, Store, now_rfc3339


class EventRecorder:
    def __init__(self, store: Store) -> None:
        self.store = store
        # (namespace, involved uid, reason, message) -> event name, to count repeats
        self._events: dict[tuple[str, str, str, str], str] = {}

    def record(self, obj: Obj, type_: str, reason: str, message: str, component: str) -> None:
        meta = obj["metadata"]
        ns = meta.get("namespace", "default")
        key = (ns, str(meta.get("uid")), reason, message)
        existing = self._events.get(key)
        if existing is not None:

            def bump(e: Obj) -> None:
                e["count"] = e.get("count", 1) + 1
                e["lastTimestamp"] = now_rfc3339()

            if self.store.mutate("events", ns, existing, bump) is not None:
                return
        stamp = now_rfc3339()
        suffix = f"{time.time_ns():x}{random.randrange(16**4):04x}"  # noqa: S311
        self._events[key] = f"{meta['name']}.{suffix}"
        self.store.create(
            "events",
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{meta['name']}.{suffix}", "namespace": ns},
                "involvedObject": {
                    "kind": obj.get("kind", "Pod"),
                    "namespace": ns,
                    "name": meta["name"],
                    "uid": meta.get("uid"),
                    "apiVersion": "v1",
                    "resourceVersion": meta.get("resourceVersion"),
                },
                "reason": reason,
                "message": message,
                "type": type_,
                "count": 1,
                "firstTimestamp": stamp,
                "lastTimestamp": stamp,
                "source": {"component": component},
                "reportingComponent": component,
            },
        )
