"""The team board over real HTTP, on a running demo (kubesim, the console chat, SQLite and
MariaDB): the signed link and its session, what the pages show, the live feed, and the 4xx
pages bad input gets (changing nothing)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.app.board_links import BoardLinks
from bot.chat.console.chat import ConsoleChat
from bot.domain.board_pass import BoardPass
from bot.domain.records import Caller
from bot.domain.time_source import utcnow
from bot.http.server import Address
from bot.infra.storage.secrets import ServerSecrets
from bot.run.board_setup import SECRET_NAME
from bot.run.demo import CHANNEL, CHANNEL_NAME, Cluster, Demo
from bot.run.settings_env import load_settings
from kubesim import running
from tests.board.boardclient import BoardClient
from tests.demoworld import FAST, PORTS, demo_on, start, until


@pytest.fixture
def demo(db_url: str, tmp_path: Path) -> Iterator[Demo]:
    with demo_on(db_url, tmp_path) as (running, _sim):
        yield running


def signed_in(demo: Demo, user: str = "alice") -> BoardClient:
    client = BoardClient(demo.server.url)
    answer = client.login(demo.board_link(user).url)
    assert answer.status == 303, answer.body
    return client


def secret(demo: Demo) -> bytes:
    return ServerSecrets(demo.bot.db).get_or_make(SECRET_NAME)


def _count(demo: Demo, table: str) -> int:
    return int(
        demo.bot.db.run(
            lambda c: c.exec_driver_sql(f"SELECT COUNT(*) FROM {table}").scalar(), what="count"
        )
    )


def test_a_link_signs_in_once_and_the_board_shows_the_team_s_islands(demo: Demo) -> None:
    mine = start(demo, "alice", 'dev note="<script>alert(1)</script>"')
    theirs = start(demo, "bob", "weekly")
    until(lambda: all(demo.islands.get(n).state == "ready" for n in (mine, theirs)))
    client = BoardClient(demo.server.url)
    answer = client.login(demo.board_link("alice").url)
    assert answer.status == 303 and answer.headers["Location"] == "/board"
    cookie = client.set_cookies[-1]["islandbot_board"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/board"
    assert 11 * 3600 < int(cookie["max-age"]) <= 12 * 3600
    assert answer.headers["Referrer-Policy"] == "no-referrer"  # the link carries the pass

    page = client.get("/board")
    assert page.status == 200
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    assert "Signed in as alice" in page.body
    for n in (mine, theirs):
        assert f'id="island-{n}"' in page.body
    row = _row(page.body, mine)
    assert "ready" in row and "server-port" in row and "alice" in row
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in row and "<script>alert" not in page.body
    assert re.search(r"room for \d+ more dev islands", page.body)
    assert 'id="node-dev-1"' in page.body and 'id="node-weekly-1"' in page.body


def _row(body: str, island_id: int) -> str:
    match = re.search(rf'<tr id="island-{island_id}".*?</tr>', body, re.S)
    assert match, f"no row for island {island_id}"
    return match.group(0)


def test_filters_narrow_the_rows_on_the_server_for_pages_without_script(demo: Demo) -> None:
    mine = start(demo, "alice", "dev")
    theirs = start(demo, "bob", "weekly")
    until(lambda: demo.islands.get(theirs).state == "ready")
    client = signed_in(demo)
    only_mine = client.get("/board?mine=1").body
    assert "hidden" not in _row(only_mine, mine) and "hidden" in _row(only_mine, theirs)
    weekly = client.get("/board?branch=weekly&state=ready").body
    assert "hidden" in _row(weekly, mine) and "hidden" not in _row(weekly, theirs)
    nothing = client.get("/board?state=failed").body
    assert re.search(r'<p id="no-match">', nothing)


def test_no_link_a_forged_link_or_an_expired_one_gets_401_and_no_board(demo: Demo) -> None:
    start(demo)
    anonymous = BoardClient(demo.server.url)
    for path in ("/board", "/board/islands/1", "/board/events"):
        answer = anonymous.get(path)
        assert answer.status == 401 and "/island board" in answer.body, path
        assert "island-" not in answer.body

    good = demo.board_link("alice").url
    forged = good.replace("YWxpY2U", "Ym9i", 1)  # the user part now says bob
    assert forged != good
    answer = BoardClient(demo.server.url).login(forged)
    assert answer.status == 401 and "not valid" in answer.body

    other_secret = BoardPass("alice", "alice", utcnow() + timedelta(hours=1)).sign(b"x" * 32)
    answer = BoardClient(demo.server.url).get(f"/board/login?pass={other_secret}")
    assert answer.status == 401 and "not valid" in answer.body

    past = BoardLinks(
        secret=secret(demo),
        base_url=demo.server.url,
        ttl=timedelta(hours=12),
        clock=lambda: utcnow() - timedelta(hours=13),
    )
    answer = BoardClient(demo.server.url).login(past.for_caller(Caller("alice", "alice")).url)
    assert answer.status == 401 and "expired at" in answer.body


def links_made(demo: Demo, ago: timedelta, ttl: timedelta = timedelta(hours=12)) -> BoardLinks:
    """Links made with the demo's secret as if ``ago`` earlier."""
    return BoardLinks(
        secret=secret(demo), base_url=demo.server.url, ttl=ttl, clock=lambda: utcnow() - ago
    )


def test_a_session_ends_when_its_link_expires(demo: Demo) -> None:
    """The cookie holds the pass itself: when the link's time is over the session is too (a
    browser drops the cookie at its Max-Age; one that sends it anyway gets 401 and the cookie
    cleared)."""
    old = links_made(demo, timedelta(hours=13)).for_caller(Caller("alice", "alice"))
    client = BoardClient(demo.server.url, cookie=old.url.split("pass=")[1])
    answer = client.get("/board")
    assert answer.status == 401 and "expired at" in answer.body
    assert client.cookie is None  # cleared by the answer


def test_an_old_link_clicked_again_leaves_the_session_of_a_newer_one(demo: Demo) -> None:
    client = signed_in(demo)
    old = links_made(demo, timedelta(hours=13)).for_caller(Caller("alice", "alice"))
    assert client.login(old.url).status == 401
    assert client.cookie is not None and client.get("/board").status == 200


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("/board/islands/999999", 404, "There is no island #999999"),
        ("/board/islands/abc", 400, "not an island id"),
        ("/board/islands/-1", 400, "not an island id"),
        ("/board/islands/0", 400, "not an island id"),
        ("/board/islands/99999999999999999999", 400, "not an island id"),
        ("/board/islands/%D9%A3", 400, "not an island id"),  # an Arabic-Indic digit
        ("/board/islands/1?x=1", 400, "not an island id"),
        ("/board?" + "mine=1&" * 300, 414, "too long"),
        ("/board?colour=red", 400, "filter"),
        ("/board?branch=nope", 400, "filter"),
        ("/board?state=sleeping", 400, "filter"),
        ("/board?mine=yes", 400, "filter"),
        ("/board?branch=dev&branch=weekly", 400, "filter"),
        ("/board/events?x=1", 400, "filter"),
        ("/board/static/../../etc/passwd", 404, ""),
        ("/board/static/secret.py", 404, "no such page"),
    ],
)
def test_bad_input_gets_a_clear_4xx_page_and_changes_nothing(
    demo: Demo, path: str, status: int, says: str
) -> None:
    n = start(demo)
    until(lambda: demo.islands.get(n).state == "ready")
    client = signed_in(demo)
    before = _count(demo, "audit_log"), _count(demo, "islands")
    answer = client.get(path)
    assert answer.status == status
    assert says.lower() in answer.body.lower()
    assert (_count(demo, "audit_log"), _count(demo, "islands")) == before
    assert client.cookie is not None  # a bad request does not end the session


def test_a_login_link_with_more_than_its_pass_is_refused(demo: Demo) -> None:
    link = demo.board_link("alice").url
    answer = BoardClient(demo.server.url).login(link + "&next=https://evil.example")
    assert answer.status == 400


def test_the_island_page_shows_its_history_log_tail_and_memory_chart(demo: Demo) -> None:
    n = start(demo)
    until(lambda: demo.islands.get(n).state == "ready")
    demo.handle(f"@bob /island time {n} +2d")
    pending = until(lambda: demo.bot.clocks.requests.history(n))
    board = signed_in(demo).get("/board").body
    assert "bob asks to move the clock to +2d" in board and ">alice<" in board
    demo.handle("@alice press " + until(lambda: _approve_button(demo)))
    until(lambda: demo.islands.get(n).clock_offset_s == 2 * 86400)
    until(lambda: demo.bot.actions.memory(n))  # the demo reads memory every second
    until(
        lambda: len(demo.bot.board.view.memory.samples(n, since=utcnow() - timedelta(hours=1))) >= 2
    )  # type: ignore[union-attr]
    page = signed_in(demo).get(f"/board/islands/{n}")
    assert page.status == 200 and pending
    history = re.search(r'<ol id="history">(.*?)</ol>', page.body, re.S)
    assert history
    lines = re.findall(r"</time> (.*?)</li>", history.group(1))
    assert lines[0] == "requested by alice on dev"
    assert "ready: its server answers" in lines
    assert "bob asked to move the clock to +2d" in lines
    assert "alice approved clock request 1" in lines or any("approved" in x for x in lines)
    assert "clock moved to +2d" in lines
    assert re.search(r'<pre id="log-tail">[^<]*server: started', page.body)
    chart = re.search(r'<svg id="memory-chart".*?</svg>', page.body, re.S)
    assert chart and "limit 2Gi" in chart.group(0)
    points = re.search(r'points="([^"]+)"', chart.group(0))
    assert points and len(points.group(1).split()) >= 2


def _approve_button(demo: Demo) -> str | None:
    for event in reversed(demo.chat.events):
        for number, label in event.buttons:
            if label == "Approve":
                return str(number)
    return None


def test_the_live_feed_sends_the_board_then_each_change(demo: Demo) -> None:
    client = signed_in(demo)
    stream = client.stream()
    try:
        assert stream.status == 200 and "text/event-stream" in stream.head
        name, data = stream.event()
        assert name == "board"
        first = json.loads(data)  # the whole board
        assert set(first["parts"]) == {"room", "nodes", "clocks"}
        assert first["rows"] == [] and first["order"] == []
        n = start(demo)
        seen, orders = [], []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "ready" not in seen:
            name, data = stream.event()
            change = json.loads(data)
            orders.append(change["order"])
            for island_id, html in change["rows"]:  # only the rows that changed
                assert island_id == n
                seen.append(re.search(r'data-state="(\w+)"', html).group(1))  # type: ignore[union-attr]
        assert seen[-1] == "ready"  # (starting too, when a render fell before ready)
        assert orders[0] == [n]  # the row came: the order says so, once
        assert all(o is None for o in orders[1:])
    finally:
        stream.close()
    until(lambda: demo.bot.board.feed.viewers == 0, timeout=20)  # type: ignore[union-attr]


def test_a_stream_ends_when_its_pass_expires(demo: Demo) -> None:
    soon = links_made(demo, timedelta(0), ttl=timedelta(seconds=2))
    client = BoardClient(demo.server.url)
    assert client.login(soon.for_caller(Caller("alice", "alice")).url).status == 303
    stream = client.stream()
    try:
        names = [stream.event()[0] for _ in range(2)]
        assert names == ["board", "expired"]
    finally:
        stream.close()


def test_viewers_beyond_the_limit_are_told_to_come_back(demo: Demo) -> None:
    feed = demo.bot.board.feed  # type: ignore[union-attr]
    feed.max_viewers = 2
    client = signed_in(demo)
    streams = [client.stream(), client.stream()]
    try:
        for s in streams:
            assert s.event()[0] == "board"
        third = client.stream()
        assert third.status == 200 and third.event()[0] == "busy"
        assert third.retry == 60000  # a browser comes back in a minute
        third.close()
        assert feed.viewers == 2
    finally:
        for s in streams:
            s.close()


def test_the_bot_stops_at_once_with_viewers_watching(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, _sim):
        client = signed_in(demo)
        streams = [client.stream() for _ in range(3)]
        for s in streams:
            assert s.event()[0] == "board"
        began = time.monotonic()
        demo.stop()
        assert time.monotonic() - began < 8
        for s in streams:
            s.close()


def test_the_island_board_command_answers_privately_with_a_working_link(demo: Demo) -> None:
    demo.handle("@carol /island board")
    answer = until(
        lambda: next(
            (e for e in demo.chat.events if e.kind == "ephemeral" and "team board" in e.text),
            None,
        )
    )
    assert answer.user == "carol"
    link = re.search(r"(http://\S+/board/login\?pass=\S+)", answer.text)
    assert link
    client = BoardClient(demo.server.url)
    assert client.login(link.group(1)).status == 303
    assert "Signed in as carol" in client.get("/board").body
    demo.handle("home")
    home = until(lambda: next((e for e in demo.chat.events if e.kind == "home"), None))
    assert "Open the team board" in home.text
    demo.handle("/island help")
    until(lambda: any("`/island board`" in e.text for e in demo.chat.events))


def test_static_files_are_served_with_their_types(demo: Demo) -> None:
    client = BoardClient(demo.server.url)  # no session needed for the style and the script
    css = client.get("/board/static/board.css")
    js = client.get("/board/static/board.js")
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
    assert js.status == 200 and "EventSource" in js.body


def test_without_a_board_url_a_bot_on_every_interface_serves_no_board(
    db_url: str, tmp_path: Path
) -> None:
    """Listening on 0.0.0.0 it cannot know a name people could open: no links, no board, and
    a person who asks is told so (not given a link that cannot work)."""
    settings = load_settings({"ISLANDBOT_DATABASE_URL": db_url, "ISLANDBOT_PORT_RANGE": PORTS})
    kubeconfig = tmp_path / "kubeconfig"
    with running(FAST, kubeconfig_path=kubeconfig):
        chat = ConsoleChat(write=None, names={CHANNEL: CHANNEL_NAME})
        demo = Demo(settings, chat, cluster=Cluster(kubeconfig), http_address=Address("0.0.0.0", 0))
        demo.start()
        try:
            assert demo.bot.board is None
            assert BoardClient(f"http://127.0.0.1:{demo.server.port}").get("/board").status == 404
            demo.handle("/island board")
            answer = until(lambda: next((e for e in chat.events if e.kind == "ephemeral"), None))
            assert "ISLANDBOT_BOARD_URL" in answer.text and "pass=" not in answer.text
        finally:
            demo.stop()


def test_home_has_no_board_link_where_the_bot_is_kept_to_some_channels(
    db_url: str, tmp_path: Path
) -> None:
    """The board shows every island's log tail, which `/island logs` shows only in the allowed
    channels: Home (open to the whole workspace) then leaves the link to `/island board`."""
    with demo_on(db_url, tmp_path, allowed_channels=frozenset({CHANNEL})) as (demo, _sim):
        demo.handle("home")
        home = until(lambda: next((e for e in demo.chat.events if e.kind == "home"), None))
        assert "team board" not in home.text and "Your islands" in home.text
        demo.handle("/island board")  # from the allowed channel: a link
        until(lambda: any("pass=" in e.text for e in demo.chat.events if e.kind == "ephemeral"))


def test_warm_islands_are_shown_apart_from_people_s(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path, pools={"dev": 2}) as (demo, _sim):
        warm = until(
            lambda: (
                ids
                if len(
                    ids := [
                        i.id
                        for i in demo.islands.live()
                        if i.owner_id == "islandbot-pool" and i.state == "ready"
                    ]
                )
                == 2
                else None
            )
        )
        page = signed_in(demo).get("/board").body
        for n in warm:
            assert f'id="island-{n}"' not in page  # not among the people's islands
        assert re.search(r"room for \d+ more dev islands, 2 of them warm", page)
        mine = start(demo, "alice", "dev")
        assert mine == min(warm)  # handed out at once: a row of alice's now
        page = signed_in(demo).get("/board").body
        assert "alice" in _row(page, mine) and "ready" in _row(page, mine)
