"""Watches as the official client's ``Watch.stream`` sees them."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from kubesim import KubeSim
from kubesim.tests.conftest import island_pod
from kubesim.tests.util import wait_ready


def collect(v1: client.CoreV1Api, seconds: int, **kw: object) -> list[tuple[str, str]]:
    events = []
    for ev in watch.Watch().stream(
        v1.list_namespaced_pod, "default", timeout_seconds=seconds, **kw
    ):
        events.append((ev["type"], ev["object"].metadata.name))
    return events


def test_existing_objects_come_as_added_then_live_changes(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("before"))
    wait_ready(v1, "before")

    def later() -> None:
        time.sleep(0.3)
        v1.delete_namespaced_pod("before", "default", grace_period_seconds=0)

    threading.Thread(target=later).start()
    events = collect(v1, 2)
    assert events[0] == ("ADDED", "before")
    assert events[-1] == ("DELETED", "before")


def test_from_a_resource_version_only_later_events(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("a", ports=(31000, 31001, 31002)))
    wait_ready(v1, "a")  # from here on "a" does not change
    rv = v1.list_namespaced_pod("default").metadata.resource_version
    v1.create_namespaced_pod("default", island_pod("b", ports=(31003, 31004, 31005)))
    events = collect(v1, 1, resource_version=rv)
    names = {name for _, name in events}
    assert names == {"b"}
    assert events[0] == ("ADDED", "b")
    assert ("MODIFIED", "b") in events  # scheduled, started, ready...


def test_label_selector_watch_reports_objects_leaving_the_selection(
    sim: KubeSim, v1: client.CoreV1Api
) -> None:
    v1.create_namespaced_pod("default", island_pod("sel", labels={"state": "new"}))

    def relabel() -> None:
        time.sleep(0.3)
        v1.patch_namespaced_pod("sel", "default", {"metadata": {"labels": {"state": "old"}}})

    threading.Thread(target=relabel).start()
    events = collect(v1, 1, label_selector="state=new")
    assert events[0] == ("ADDED", "sel")
    assert events[-1] == ("DELETED", "sel")


def test_too_old_resource_version_gets_410(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("x"))
    old = v1.list_namespaced_pod("default").metadata.resource_version
    v1.create_namespaced_pod("default", island_pod("y", ports=(31000, 31001, 31002)))
    sim.expire_watches()
    with pytest.raises(ApiException) as expired:
        collect(v1, 2, resource_version=old)
    assert expired.value.status == 410
    # a fresh list gives a resourceVersion that can be watched again
    fresh = v1.list_namespaced_pod("default").metadata.resource_version
    v1.create_namespaced_pod("default", island_pod("z", ports=(31003, 31004, 31005)))
    assert ("ADDED", "z") in collect(v1, 1, resource_version=fresh)


def test_timeout_seconds_is_honoured(sim: KubeSim, v1: client.CoreV1Api) -> None:
    began = time.monotonic()
    assert collect(v1, 1) == []
    assert 0.9 < time.monotonic() - began < 3


def test_initial_events_end_with_a_bookmark(sim: KubeSim, v1: client.CoreV1Api) -> None:
    v1.create_namespaced_pod("default", island_pod("bm"))
    query = (
        "watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        "&allowWatchBookmarks=true&timeoutSeconds=1"
    )
    with urllib.request.urlopen(
        f"{sim.url}/api/v1/namespaces/default/pods?{query}", timeout=5
    ) as response:
        body = response.read()
    lines = [json.loads(line) for line in body.decode().splitlines() if line]
    assert lines[0]["type"] == "ADDED" and lines[0]["object"]["metadata"]["name"] == "bm"
    bookmark = next(e for e in lines if e["type"] == "BOOKMARK")
    assert bookmark["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
