"""Prometheus metrics (``GET /metrics``), in one registry of islandbot's own.

Counters and histograms are updated where things happen; the islands-by-state gauge is filled
from the database when the endpoint is scraped.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)
CONTENT_TYPE = CONTENT_TYPE_LATEST

ISLANDS = Gauge(
    "islandbot_islands",
    "Islands by state and branch (stopped ones not counted).",
    ["state", "branch"],
    registry=REGISTRY,
)
START_TO_READY = Histogram(
    "islandbot_island_start_to_ready_seconds",
    "From the start command to the island being ready.",
    buckets=(1, 2, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600),
    registry=REGISTRY,
)
ALLOCATION_FAILURES = Counter(
    "islandbot_allocation_failures_total",
    "Starts refused by the allocator, by reason (quota, ports).",
    ["reason"],
    registry=REGISTRY,
)
KUBE_ERRORS = Counter(
    "islandbot_kubernetes_api_errors_total",
    "Kubernetes API calls that failed for good, by operation.",
    ["operation"],
    registry=REGISTRY,
)
KUBE_RETRIES = Counter(
    "islandbot_kubernetes_api_retries_total",
    "Kubernetes API calls retried after a transient failure, by operation.",
    ["operation"],
    registry=REGISTRY,
)
SLACK_ERRORS = Counter(
    "islandbot_slack_api_errors_total",
    "Slack API calls that failed after the client's retries, by method and error.",
    ["method", "error"],
    registry=REGISTRY,
)
SLACK_RETRIES = Counter(
    "islandbot_slack_api_retries_total",
    "Slack API calls retried by the client (429 with Retry-After, 5xx, dropped connections).",
    ["reason"],
    registry=REGISTRY,
)
LARK_ERRORS = Counter(
    "islandbot_lark_api_errors_total",
    "Lark Open API calls that failed (each attempt), by method and Lark's code.",
    ["method", "error"],
    registry=REGISTRY,
)
LARK_RETRIES = Counter(
    "islandbot_lark_api_retries_total",
    "Lark Open API calls retried in place (rate limited, 5xx, dropped connections, a token "
    "refused).",
    ["reason"],
    registry=REGISTRY,
)
NOTICES_GIVEN_UP = Counter(
    "islandbot_notices_given_up_total",
    "Notices that could not be delivered within their maximum age and were given up.",
    registry=REGISTRY,
)
NOTICES_REFUSED = Counter(
    "islandbot_notices_refused_total",
    "Notices the chat refused for good, by its reason and what became of them: reworded "
    "(posted again as plain, shortened text), rerouted (to the island's owner directly) or "
    "failed (recorded as refused, not tried again; the island's later notices went on).",
    ["reason", "outcome"],
    registry=REGISTRY,
)
NOTICE_ERRORS = Counter(
    "islandbot_notice_errors_total",
    "Notices whose delivery met an error of islandbot's own (a bug, logged with its "
    "traceback), recorded as failed at once, by the exception's type.",
    ["error"],
    registry=REGISTRY,
)
DATABASE_UNREACHABLE = Counter(
    "islandbot_database_unreachable_total",
    "Database operations that failed because the database could not be reached.",
    registry=REGISTRY,
)
DATABASE_UP = Gauge(
    "islandbot_database_up",
    "1 while the database answers, 0 from its first unreachable operation until it answers again.",
    registry=REGISTRY,
)
DATABASE_UP.set(1)
TICK = Histogram(
    "islandbot_reconcile_tick_seconds",
    "Duration of one reconcile tick.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=REGISTRY,
)
PROBE_FAILURES = Counter(
    "islandbot_probe_failures_total",
    "TCP probes of island server ports that found the port closed.",
    registry=REGISTRY,
)
MEMORY_RATIO = Histogram(
    "islandbot_island_memory_ratio",
    "Islands' memory readings: working set over the container's memory limit (no series per "
    "island: one observation per island and reading).",
    buckets=(0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0),
    registry=REGISTRY,
)
MEMORY_WARNINGS = Counter(
    "islandbot_memory_warnings_total",
    "Owners warned that their island nears its memory limit.",
    registry=REGISTRY,
)
REGISTRATIONS = Counter(
    "islandbot_registrations_total",
    "Registration requests from islands, by HTTP status.",
    ["status"],
    registry=REGISTRY,
)

POOL_READY = Gauge(
    "islandbot_pool_ready",
    "Warm pool islands ready to be handed out, by branch (filled when scraped).",
    ["branch"],
    registry=REGISTRY,
)
POOL_CLAIMS = Counter(
    "islandbot_pool_claims_total",
    "Starts served by a warm pool island, by branch.",
    ["branch"],
    registry=REGISTRY,
)
POOL_MISSES = Counter(
    "islandbot_pool_misses_total",
    "Starts of a branch with a warm pool that got a fresh island instead, by branch and why "
    "(empty: none ready and fresh; options: `set` changes the pod).",
    ["branch", "why"],
    registry=REGISTRY,
)
POOL_CLAIM_SECONDS = Histogram(
    "islandbot_pool_claim_seconds",
    "A start that was handed a warm island: its whole transaction, lock waits included.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)
POOL_RECYCLED = Counter(
    "islandbot_pool_recycled_total",
    "Warm pool islands stopped instead of handed out, by branch and why (failed, too_old, "
    "old_code, refreshed, shrunk, room).",
    ["branch", "why"],
    registry=REGISTRY,
)


def set_pool_ready(counts: Iterable[tuple[str, int]]) -> None:
    """Replace the pool gauge with (branch, ready) rows."""
    POOL_READY.clear()
    for branch, count in counts:
        POOL_READY.labels(branch=branch).set(count)


def set_island_counts(counts: Iterable[tuple[str, str, int]]) -> None:
    """Replace the islands gauge with (state, branch, count) rows."""
    ISLANDS.clear()
    for state, branch, count in counts:
        ISLANDS.labels(state=state, branch=branch).set(count)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
