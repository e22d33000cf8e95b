"""The board's parts on their own: room on a branch's nodes, the memory chart, rows rendered
again only when what they show changed, and what the live feed sends for a change."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.app.board_view import BoardBranch, BoardIsland, BoardNode, BoardSnapshot
from bot.domain.states import IslandState
from bot.http.board_chart import memory_chart
from bot.http.board_feed import BoardFeed
from bot.http.board_pages import BoardPages, Filters, LiveParts
from bot.infra.storage.board_reads import IslandLine

NOW = datetime(2026, 12, 3, 12, 0, 30, tzinfo=UTC)
GI = 2**30
PORTS = ("app-common-port", "remote-msg-port", "server-port")


def node(name: str, free_gi: float, *, ready: bool = True, cordoned: bool = False) -> BoardNode:
    return BoardNode(name, None, 16 * GI, int((16 - free_gi) * GI), 0, ready, cordoned)


def test_room_is_fitted_node_by_node_on_usable_nodes_less_islands_on_their_way() -> None:
    nodes = (node("a", 3.9), node("b", 2.5), node("c", 8, ready=False), node("d", 8, cordoned=True))
    assert BoardBranch("dev", 2 * GI, nodes).room == 2  # 1 + 1, not 6.4 // 2
    assert BoardBranch("dev", 2 * GI, nodes, unplaced=1).room == 1
    assert BoardBranch("dev", 2 * GI, nodes, unplaced=5).room == 0
    assert BoardBranch("dev", 0, nodes).room is None  # islands that ask nothing: unknown


def test_the_memory_chart_scales_to_the_limit_and_spans_the_hour() -> None:
    samples = [(NOW - timedelta(minutes=60), GI, 2 * GI), (NOW, 2 * GI, 2 * GI)]
    chart = memory_chart(samples, now=NOW, span=timedelta(hours=1), tz=UTC)
    assert chart is not None
    (x0, y0), (x1, y1) = (tuple(map(float, p.split(","))) for p in chart.points.split())
    assert (x0, x1) == (0.0, float(chart.width))
    assert y1 == chart.limit_y and y0 > y1  # at the limit: on its line; half: below it
    assert "limit 2Gi" in chart.limit_text and chart.start_text == "11:00"
    assert memory_chart([], now=NOW, span=timedelta(hours=1), tz=UTC) is None


def line(island_id: int, **changes: object) -> IslandLine:
    base = IslandLine(
        island_id,
        "U1",
        "alice",
        "dev",
        IslandState.READY,
        30000 + 3 * island_id,
        "dev-1",
        "127.0.0.2",
        0,
        "a <b>note</b>",
        NOW + timedelta(hours=8, seconds=40),
        None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def snapshot(*lines: IslandLine, at: datetime = NOW) -> BoardSnapshot:
    islands = tuple(BoardIsland(x, PORTS, None, None) for x in lines)
    return BoardSnapshot(at, islands, (), None, (), {})


def test_a_row_is_rendered_again_only_when_what_it_shows_changed() -> None:
    pages = BoardPages(tz=UTC)
    first, shown = pages.rows(snapshot(line(1), line(2)), Filters())
    assert shown == 2 and "a &lt;b&gt;note&lt;/b&gt;" in first[0][1]
    again, _ = pages.rows(snapshot(line(1), line(2), at=NOW + timedelta(seconds=20)), Filters())
    assert [a[1] is b[1] for a, b in zip(first, again, strict=True)] == [True, True]  # kept
    moved, _ = pages.rows(
        snapshot(line(1), line(2, state=IslandState.FAILED), at=NOW + timedelta(seconds=20)),
        Filters(),
    )
    assert moved[0][1] is first[0][1] and moved[1][1] is not first[1][1]
    assert 'data-state="failed"' in moved[1][1]
    half = NOW + timedelta(minutes=30, seconds=41)  # from "about 8h" to "about 7h"
    later, _ = pages.rows(snapshot(line(1), at=half), Filters())
    assert "in about 7h" in later[0][1] and later[0][1] is not first[0][1]
    mine, shown = pages.rows(snapshot(line(1), line(2, owner_id="U2")), Filters(mine_of="U2"))
    assert shown == 1 and " hidden>" in mine[0][1] and " hidden>" not in mine[1][1]


def test_the_feed_sends_the_whole_board_then_only_what_changed() -> None:
    async def run() -> list[dict[str, object]]:
        feed = BoardFeed(lambda languages: {})
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
        feed._viewers[queue] = "en"
        parts = {"room": "r", "nodes": "n", "clocks": "c"}
        feed._changed(LiveParts(parts, [(1, "<tr id=island-1>a"), (2, "<tr id=island-2>b")]), "en")
        feed._changed(LiveParts(parts, [(1, "<tr id=island-1>a"), (2, "<tr id=island-2>b")]), "en")
        feed._changed(
            LiveParts(
                {**parts, "room": "r2"}, [(1, "<tr id=island-1>A"), (2, "<tr id=island-2>b")]
            ),
            "en",
        )
        feed._changed(LiveParts({**parts, "room": "r2"}, [(2, "<tr id=island-2>b")]), "en")
        sent = []
        while not queue.empty():
            raw = queue.get_nowait().decode()
            sent.append(json.loads(raw.split("data: ", 1)[1]))
        return sent

    whole, change, gone = asyncio.run(run())  # the same board twice: nothing sent
    assert whole["order"] == [1, 2] and len(whole["rows"]) == 2  # type: ignore[arg-type]
    assert change == {"parts": {"room": "r2"}, "rows": [[1, "<tr id=island-1>A"]], "order": None}
    assert gone == {"parts": {}, "rows": [], "order": [2]}


def test_a_viewer_too_far_behind_is_sent_the_whole_board_instead() -> None:
    async def run() -> list[bytes]:
        feed = BoardFeed(lambda languages: {})
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=3)
        feed._viewers[queue] = "en"
        for i in range(10):
            feed._changed(LiveParts({"room": str(i)}, []), "en")
        return [queue.get_nowait() for _ in range(queue.qsize())]

    got = asyncio.run(run())
    assert len(got) <= 3
    assert any(b'"order":[]' in g and b'"room":"' in g for g in got)  # a whole board
    assert b'"room":"9"' in got[-1]  # and the latest
