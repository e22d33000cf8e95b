"""The team board at scale: N ready islands on kubesim (in its own process), the board served
by the bot's HTTP server on SQLite, as a browser reaches it.

    python -m bench.board [--islands 1000] [--requests 200] [--viewers 50] [--ticks 20]

1. ``GET /board`` with a session cookie, ``--requests`` times one after another over real
   HTTP, each one reading the database and rendering the page (no page cache; a row is
   rendered again only when its words changed, as in service): latency p50/p99 as the client
   sees it; the render alone (read + template) in-process; and the render with every row
   rendered anew (as in a fresh process, or at the minute every expiry moves on).
2. The lifecycle tick (``LifecycleEngine.tick``, as the leader runs it every second) timed
   ``--ticks`` times with no one watching, then with ``--viewers`` live viewers connected to
   ``/board/events`` while one island's memory reading moves its row every second (so the feed
   renders and pushes a change to every viewer each second): tick p50/p99 in both, what each
   viewer got (events, KB on joining, KB a second after).
Last stdout line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import pct
from bench.watcher import close_world, drive_to_ready, start_kubesim_nodes, world
from bot.app.board_links import BoardLinks
from bot.app.board_view import BoardView
from bot.app.island_actions import IslandActions
from bot.domain.memory_watch import MemoryPolicy, MemoryReading
from bot.domain.permissions import Policy
from bot.domain.records import Caller
from bot.http.board_pages import BoardPages, Filters
from bot.http.board_routes import BoardRoutes
from bot.http.server import Address, WebServer
from bot.infra.kubernetes.templates import load_templates
from bot.infra.storage.memory import MemoryStore
from bot.run.heap import settle_heap

SECRET = b"bench-board-secret-0123456789abcdef"


def serve(w: dict[str, Any]) -> tuple[WebServer, BoardRoutes, str]:
    actions = IslandActions(
        db=w["db"],
        allocator=w["allocator"],
        templates=load_templates(),
        kube=w["kube"],
        policy=Policy(),
    )
    server = WebServer(address=Address("127.0.0.1", 0)).bind()
    links = BoardLinks(secret=SECRET, base_url=server.url)
    board = BoardRoutes(view=BoardView(actions), links=links, tz=UTC)
    server.add_routes(board.routes())
    server.on_shutdown(board.feed.close)
    server.start()
    token = links.for_caller(Caller("Ubench0", "bench")).url.split("pass=")[1]
    return server, board, token


def get_board(url: str, token: str) -> tuple[float, int]:
    request = urllib.request.Request(f"{url}/board", headers={"Cookie": f"islandbot_board={token}"})
    began = time.monotonic()
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return (time.monotonic() - began) * 1000, len(body)


class Viewers:
    """``n`` live viewers on raw sockets, read by one thread; counts the events each got."""

    def __init__(self, url: str, token: str, n: int) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.selector = selectors.DefaultSelector()
        self.events = [0] * n
        self.bytes = [0] * n
        self.socks = []
        for i in range(n):
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(
                f"GET /board/events HTTP/1.0\r\nHost: {host}\r\n"
                f"Cookie: islandbot_board={token}\r\n\r\n".encode()
            )
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, i)
            self.socks.append(sock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            for key, _ in self.selector.select(timeout=0.2):
                try:
                    data = key.fileobj.recv(1 << 20)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                self.events[key.data] += data.count(b"event: board\n")
                self.bytes[key.data] += len(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for sock in self.socks:
            sock.close()


def time_ticks(w: dict[str, Any], ticks: int, churn: Any) -> list[float]:
    durations = []
    for i in range(ticks):
        churn(i)
        began = time.monotonic()
        w["engine"].tick()
        durations.append((time.monotonic() - began) * 1000)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - began)))
    return durations


def measure(n: int, requests: int, viewers: int, ticks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, _url, kubeconfig = start_kubesim_nodes(tmp, max(2, n // 100 + 1))
        try:
            w = world(tmp, kubeconfig, 40_000)
            ids = drive_to_ready(w, n, "b")
            while w["engine"].deliver():  # steady state: the start-up notices are out
                pass
            w["engine"].inline_ready_probes = False
            w["engine"].inline_exclusions = False
            server, board, token = serve(w)
            get_board(server.url, token)  # templates compiled, nodes read once
            settle_heap()  # as the bot does once started
            http_ms, sizes = [], []
            for _ in range(requests):
                ms, size = get_board(server.url, token)
                http_ms.append(ms)
                sizes.append(size)
            viewer = board.links.read(token)
            render_ms, cold_ms = [], []
            for _ in range(requests):
                began = time.monotonic()
                board.pages.board(board.view.snapshot(), viewer, Filters())
                render_ms.append((time.monotonic() - began) * 1000)
            for _ in range(max(requests // 10, 5)):  # every row rendered anew (a new process)
                pages = BoardPages(tz=UTC)
                began = time.monotonic()
                pages.board(board.view.snapshot(), viewer, Filters())
                cold_ms.append((time.monotonic() - began) * 1000)

            memory = MemoryStore(w["db"])

            def churn(i: int) -> None:  # one row changes every second: the feed pushes
                island = ids[0]  # its memory reading goes between 30 % and 60 % of 2Gi
                used = (30 if i % 2 else 60) * 2 * 2**30 // 100
                reading = MemoryReading(island, used, 2 * 2**30, datetime.now(UTC))
                memory.record([(reading, "server")], policy=MemoryPolicy())

            w["engine"].tick()
            quiet = time_ticks(w, ticks, churn)
            watching = Viewers(server.url, token, viewers)
            time.sleep(2)  # every viewer connected and sent the board
            joined_kb = [b / 1024 for b in watching.bytes]
            renders_before = board.feed.renders
            busy = time_ticks(w, ticks, churn)
            renders = board.feed.renders - renders_before
            connected = board.feed.viewers
            watching.close()
            server.stop()
            close_world(w)
            return {
                "islands": n,
                "page_kb": round(max(sizes) / 1024),
                "get_board_ms_p50": pct(http_ms, 50),
                "get_board_ms_p99": pct(http_ms, 99),
                "render_ms_p50": pct(render_ms, 50),
                "render_ms_p99": pct(render_ms, 99),
                "render_cold_ms_p50": pct(cold_ms, 50),
                "render_cold_ms_p99": pct(cold_ms, 99),
                "tick_ms_p50_no_viewers": pct(quiet, 50),
                "tick_ms_p99_no_viewers": pct(quiet, 99),
                f"tick_ms_p50_{viewers}_viewers": pct(busy, 50),
                f"tick_ms_p99_{viewers}_viewers": pct(busy, 99),
                "viewers_connected": connected,
                "feed_renders": renders,
                "events_per_viewer_min": min(watching.events),
                "events_per_viewer_max": max(watching.events),
                "kb_per_viewer_on_joining": round(max(joined_kb)),
                "kb_per_viewer_per_second_after": round(
                    (max(watching.bytes) / 1024 - max(joined_kb)) / ticks, 1
                ),
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--islands", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--ticks", type=int, default=20)
    args = parser.parse_args()
    result = measure(args.islands, args.requests, args.viewers, args.ticks)
    print(json.dumps({"bench": "board", "date": time.strftime("%Y-%m-%d"), **result}))


if __name__ == "__main__":
    main()
