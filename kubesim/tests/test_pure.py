"""Pure parts: selectors, quantities, the scheduler's choice, libfaketime semantics."""

from __future__ import annotations

import pytest

from kubesim.faketime import FakeClock, FaketimeError, parse_spec
from kubesim.quantity import cpu_millis, memory_bytes
from kubesim.scheduler import NodeUsage, NodeView, choose_node, host_ports, pod_requests
from kubesim.selectors import SelectorError, labels_match, parse_label_selector

T2021 = 1632007807.0  # 2021-09-18 23:30:07 UTC


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a=b", {}, False),
        ("a!=b", {}, True),
        ("a in (b, c)", {"a": "c"}, True),
        ("a notin (b,c)", {"a": "c"}, False),
        ("a notin (b)", {}, True),
        ("a", {"a": ""}, True),
        ("!a", {"a": "x"}, False),
        ("x.io/k=v,a", {"x.io/k": "v", "a": "1"}, True),
        ("", {"z": "1"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert labels_match(parse_label_selector(selector), labels) is expected


@pytest.mark.parametrize("selector", ["a in (b", "a=b=c", "a,,b", "=b", "a in b)", "a == (b)"])
def test_bad_selectors(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(selector)


def test_quantities() -> None:
    assert memory_bytes("1500Mi") == 1500 * 2**20
    assert memory_bytes("2G") == 2 * 10**9
    assert cpu_millis("500m") == 500 and cpu_millis("1.5") == 1500
    with pytest.raises(ValueError):
        memory_bytes("lots")


def test_scheduler_prefers_the_emptier_node_and_explains_refusals() -> None:
    nodes = [
        NodeView("a", {"branch": "dev"}, 8000, 4 * 2**30, 110, True, False),
        NodeView("b", {"branch": "dev"}, 8000, 4 * 2**30, 110, True, False),
    ]
    pod = {
        "spec": {
            "nodeSelector": {"branch": "dev"},
            "containers": [
                {
                    "name": "c",
                    "resources": {"requests": {"memory": "1Gi"}},
                    "ports": [{"containerPort": 1, "hostPort": 30000}],
                }
            ],
        }
    }
    one = NodeUsage()
    one.add(*pod_requests(pod), host_ports(pod))
    assert choose_node(pod, nodes, {"a": one}) == ("b", "")
    assert choose_node(pod, nodes, {"a": one, "b": one}) == (
        None,
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports.",
    )


def test_faketime_specs() -> None:
    assert parse_spec("+86400").value == 86400
    assert parse_spec("-2d").value == -172800
    assert parse_spec("+1y").value == 365 * 86400
    assert parse_spec("2021-09-18 23:30:07").kind == "frozen"
    start = parse_spec("@2021-09-18 23:30:07\n")
    assert (start.kind, start.value) == ("start", T2021)
    for bad in ("", "tomorrow", "+1w", "2021-13-40 25:00:00"):
        with pytest.raises(FaketimeError):
            parse_spec(bad)


def clock(content: list[str | None], *, dont_reset: bool, cache: float = 0) -> FakeClock:
    return FakeClock(
        read_file=lambda: content[0],
        process_start=1000.0,
        dont_reset=dont_reset,
        cache_duration=cache,
    )


def test_start_at_with_dont_reset_counts_process_uptime() -> None:
    content: list[str | None] = [None]
    c = clock(content, dont_reset=True)
    assert c.now(1100.0) == 1100.0  # no file: real time
    content[0] = "@2021-09-18 23:30:07"
    assert c.now(1500.0) == T2021 + 500  # date + process uptime
    c2 = clock(content, dont_reset=False)
    c2.now(1500.0)
    assert c2.now(1510.0) == T2021 + 10  # without: from when it was read


def test_offsets_frozen_time_and_the_cache() -> None:
    content: list[str | None] = ["+3600"]
    c = clock(content, dont_reset=True, cache=10)
    assert c.now(2000.0) == 5600.0
    content[0] = "-60"
    assert c.now(2005.0) == 5605.0  # still cached
    assert c.now(2010.0) == 1950.0  # re-read after 10 s
    content[0] = "2021-09-18 23:30:07"
    assert c.now(2030.0) == T2021 == c.now(2040.0)  # frozen
    content[0] = "garbage"
    with pytest.raises(FaketimeError):
        c.now(2050.0)
