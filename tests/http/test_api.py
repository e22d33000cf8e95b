"""The HTTP API over real HTTP: registration from inside the islands (kubesim's seed does what
seed.sh does), the registry, readiness, metrics; and a schemathesis fuzz against the OpenAPI
description, on SQLite and MariaDB."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from bot.run.demo import Demo
from bot.run.settings import Secret
from tests.demoworld import FAST, demo_on, start, until

REGISTERING = replace(FAST, register_islands=True)


def call(
    demo: Demo,
    method: str,
    path: str,
    body: bytes | dict[str, Any] | None = None,
    token: str | None = None,
    language: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    headers = {"Content-Type": "application/json"}
    if language is not None:
        headers["Accept-Language"] = language
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        demo.server.url + path, data=data, headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, dict(exc.headers)
    try:
        return status, json.loads(raw), got
    except ValueError:
        return status, raw.decode(), got


def token_of(sim: Any, pod_name: str) -> str:
    """The token the bot put in the island's pod (once the loop has created it)."""
    pod = until(lambda: sim.get("pods", "islands", pod_name))
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    return str(env["ISLANDBOT_REGISTER_TOKEN"])


REGISTRATION = {"node": "dev-1", "pod_ip": "10.0.0.7", "version": "1.2.3", "build": "77"}


def test_islands_register_from_inside_and_the_registry_shows_them(
    db_url: str, tmp_path: Path
) -> None:
    with demo_on(db_url, tmp_path, sim=REGISTERING, require_registration=True) as (demo, sim):
        n = start(demo)
        until(lambda: demo.islands.get(n).state == "ready")
        status, island, _ = call(demo, "GET", f"/api/v1/islands/{n}")
        assert status == 200
        assert island["registration"]["node"] in {"dev-1", "dev-2"}
        assert island["registration"]["version"] == "kubesim"
        assert island["registration"]["ports"] == island["ports"]
        first = island["ports"]["app-common-port"]
        assert island["ports"] == {
            "app-common-port": first,
            "remote-msg-port": first + 1,
            "server-port": first + 2,
        }
        assert island["registered_at"] is not None and island["state"] == "ready"
        assert island["owner"] == {"id": "alice", "name": "alice"}
        logs = sim.container_logs("islands", demo.islands.get(n).pod_name, "altraserver")
        assert any("seed: registered with" in line for line in logs)
        status, page, _ = call(demo, "GET", "/api/v1/islands?branch=dev")
        assert status == 200 and [i["id"] for i in page["islands"]] == [n]
        assert page["next_after"] is None


def test_ready_waits_for_the_registration_when_it_is_required(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path, require_registration=True) as (demo, sim):
        n = start(demo)
        until(lambda: demo.islands.get(n).state == "running")
        time.sleep(1.5)  # its port answers, the pod is Ready: still not registered
        assert demo.islands.get(n).state == "running"
        pod = demo.islands.get(n).pod_name
        status, body, _ = call(
            demo, "POST", f"/api/v1/islands/{n}/register", REGISTRATION, token_of(sim, pod)
        )
        assert (status, body) == (200, {"id": n, "registered": True})
        until(lambda: demo.islands.get(n).state == "ready", timeout=5)
        status, _, _ = call(  # a restarted container registers again: updated
            demo,
            "POST",
            f"/api/v1/islands/{n}/register",
            {**REGISTRATION, "version": "1.2.4"},
            token_of(sim, pod),
        )
        assert status == 200
        assert call(demo, "GET", f"/api/v1/islands/{n}")[1]["registration"]["version"] == "1.2.4"


def test_bad_registrations_are_refused_and_change_nothing(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, sim):
        n = start(demo)
        token = token_of(sim, demo.islands.get(n).pod_name)
        path = f"/api/v1/islands/{n}/register"
        status, body, headers = call(demo, "POST", path, REGISTRATION, "not-the-token")
        assert status == 401 and "registration token" in body["error"]
        assert headers.get("WWW-Authenticate") == "Bearer"
        assert call(demo, "POST", path, REGISTRATION)[0] == 401  # no token at all
        assert call(demo, "POST", "/api/v1/islands/999999/register", REGISTRATION, token)[0] == 404
        assert call(demo, "POST", "/api/v1/islands/abc/register", REGISTRATION, token)[0] == 404
        status, body, _ = call(demo, "POST", path, b"{not json", token)
        assert status == 422 and body["problems"] == ["body: expected a JSON object"]
        status, body, _ = call(
            demo,
            "POST",
            path,
            {"node": "Dev 1", "pod_ip": "300.1.1.1", "ports": {"nope": 0}, "colour": "red"},
            token,
        )
        assert status == 422
        assert body["problems"] == [
            "colour: unknown field",
            "node: expected the node's name (a DNS-1123 subdomain)",
            "pod_ip: expected an IPv4 or IPv6 address",
            "version: required",
            "ports.nope: unknown port; known: app-common-port, remote-msg-port, server-port",
            "ports.nope: expected a port number 1-65535",
        ]
        status, body, _ = call(demo, "POST", path, b"{" + b" " * 20000 + b"}", token)
        assert status == 413
        until(lambda: demo.islands.get(n).state == "ready")  # registration is not required
        assert call(demo, "GET", f"/api/v1/islands/{n}")[1]["registered_at"] is None
        demo.handle(f"/island stop {n}")
        until(lambda: demo.islands.get(n).state == "stopped")
        status, body, _ = call(demo, "POST", path, REGISTRATION, token)
        assert status == 409 and "cannot register" in body["error"]
        assert call(demo, "GET", f"/api/v1/islands/{n}")[1]["registered_at"] is None


def test_the_registry_pages_and_filters_and_refuses_bad_queries(
    db_url: str, tmp_path: Path
) -> None:
    with demo_on(db_url, tmp_path) as (demo, _sim):
        ids = [start(demo, "alice"), start(demo, "alice"), start(demo, "bob")]
        first = call(demo, "GET", "/api/v1/islands?limit=2")[1]
        assert [i["id"] for i in first["islands"]] == ids[:2]
        assert first["next_after"] == ids[1]
        rest = call(demo, "GET", f"/api/v1/islands?limit=2&after={ids[1]}")[1]
        assert [i["id"] for i in rest["islands"]] == ids[2:] and rest["next_after"] is None
        bobs = call(demo, "GET", "/api/v1/islands?owner=bob")[1]
        assert [i["id"] for i in bobs["islands"]] == ids[2:]
        status, body, _ = call(demo, "GET", "/api/v1/islands?state=sunk&limit=0&colour=red")
        assert status == 400
        assert body["problems"] == [
            "colour: unknown parameter",
            "state: expected one of requested, creating, scheduled, running, ready, failed, "
            "stopping, stopped",
            "limit: expected a whole number from 1 to 1000",
        ]
        assert call(demo, "GET", "/api/v1/islands/0")[0] == 404
        assert call(demo, "GET", "/api/v1/islands/99999999999999999999")[0] == 404
        # a reader who asks for Chinese gets it; the deployment's English otherwise
        path = "/api/v1/islands?state=sunk&limit=0&colour=red"
        status, body, _ = call(demo, "GET", path, language="zh-CN,zh;q=0.9,en;q=0.5")
        assert status == 400 and body["error"] == "查询参数有误"
        assert body["problems"][0] == "colour：未知参数"
        assert "1 到 1000 之间的整数" in body["problems"][2]
        status, body, _ = call(demo, "GET", "/api/v1/islands/0", language="zh-CN")
        assert status == 404 and "岛" in body["error"]
        assert call(demo, "GET", path, language="fr-FR, de;q=0.5")[1]["error"] == "bad query"


def test_a_read_token_guards_the_registry(db_url: str, tmp_path: Path) -> None:
    token = Secret("r3ad-t0ken-for-tools")
    with demo_on(db_url, tmp_path, api_read_token=token) as (demo, _sim):
        n = start(demo)
        for path in ("/api/v1/islands", f"/api/v1/islands/{n}"):
            status, body, headers = call(demo, "GET", path)
            assert status == 401 and "ISLANDBOT_API_READ_TOKEN" in body["error"]
            assert headers.get("WWW-Authenticate") == "Bearer"
            assert call(demo, "GET", path, token="wrong-token-value")[0] == 401
            assert call(demo, "GET", path, token="r3ad-t0ken-for-tools")[0] == 200
        assert call(demo, "GET", "/readyz")[0] == 200  # health stays open


def test_readyz_follows_its_dependencies_and_metrics_count(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, sim):
        n = start(demo)
        until(lambda: demo.islands.get(n).state == "ready")
        status, body, _ = call(demo, "GET", "/readyz")
        assert (status, body) == (
            200,
            {"status": "ready", "checks": {"database": "ok", "kubernetes": "ok"}},
        )
        status, text, headers = call(demo, "GET", "/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert 'islandbot_islands{branch="dev",state="ready"} 1.0' in text
        assert "islandbot_island_start_to_ready_seconds_count" in text
        assert "islandbot_reconcile_tick_seconds_count" in text
        sim.stop()  # the cluster goes away
        time.sleep(2.1)  # past the cached answer
        status, body, _ = call(demo, "GET", "/readyz")
        assert status == 503 and body["status"] == "not ready"
        assert body["checks"]["database"] == "ok"
        assert body["checks"]["kubernetes"].startswith("failing: ")


def test_the_api_keeps_to_its_openapi_description_under_fuzzing(
    db_url: str, tmp_path: Path
) -> None:
    """schemathesis generates requests from ``bot/openapi.yaml`` (valid and invalid ones):
    no 5xx, and every answer matches the description."""
    with demo_on(db_url, tmp_path) as (demo, _sim):
        start(demo)
        schema = schemathesis.openapi.from_url(f"{demo.server.url}/api/v1/openapi.yaml")
        failures: list[str] = []
        calls = 0
        for result in schema.get_all_operations():
            operation = result.ok()
            if operation.path == "/metrics":  # Prometheus text: nothing to generate
                continue

            @settings(
                max_examples=40,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            )
            @given(case=operation.as_strategy())
            def run(case: schemathesis.Case) -> None:
                nonlocal calls
                calls += 1
                response = case.call(base_url=demo.server.url, timeout=10)
                try:
                    case.validate_response(
                        response,
                        checks=[checks.not_a_server_error, checks.response_schema_conformance],
                    )
                except Exception as exc:
                    failures.append(f"{case.method} {case.formatted_path}: {exc}"[:500])

            run()
        assert failures == []
        assert calls >= 100
