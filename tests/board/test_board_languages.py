"""The board in its reader's language, over real HTTP on a running demo: the browser's
``Accept-Language`` when the bot speaks it, else the deployment's; the pages, the error pages
and the live feed (each page is sent the board in its own language, two languages watching
at once); and, on their own, the rows kept per language and the feed's per-language sends.
English stays the board it always was (the other board tests read it)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app.board_view import BoardIsland, BoardSnapshot
from bot.http.board_feed import BoardFeed
from bot.http.board_pages import BoardPages, Filters, LiveParts
from bot.infra.storage.board_reads import IslandLine
from bot.run.demo import Demo
from bot.words import board_text
from bot.words.catalogue import speaking
from tests import dbutil
from tests.board.boardclient import BoardClient
from tests.board.test_board_parts import line as part_line
from tests.demoworld import demo_on, start, until

ZH = "zh-CN,zh;q=0.9"
NOW = datetime(2026, 12, 3, 12, 0, 30, tzinfo=UTC)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """The language does not depend on the database: SQLite alone."""
    url = dbutil.sqlite_url(tmp_path)
    dbutil.migrated(url).dispose()
    return url


@pytest.fixture
def demo(sqlite_url: str, tmp_path: Path) -> Iterator[Demo]:
    with demo_on(sqlite_url, tmp_path) as (running, _sim):
        yield running


def signed_in(demo: Demo, language: str | None, user: str = "alice") -> BoardClient:
    client = BoardClient(demo.server.url, language=language)
    answer = client.login(demo.board_link(user).url)
    assert answer.status == 303, answer.body
    return client


def _row(body: str, island_id: int) -> str:
    match = re.search(rf'<tr id="island-{island_id}".*?</tr>', body, re.S)
    assert match, f"no row for island {island_id}"
    return match.group(0)


def test_a_chinese_browser_gets_the_chinese_board_and_an_english_one_today_s(demo: Demo) -> None:
    n = start(demo, "alice", 'dev note="<b>x</b>"')
    until(lambda: demo.islands.get(n).state == "ready")
    zh = signed_in(demo, ZH).get("/board")
    assert zh.status == 200 and zh.headers["Vary"] == "Accept-Language"
    assert '<html lang="zh-CN">' in zh.body
    assert "<h2>岛</h2>" in zh.body and "<h2>节点</h2>" in zh.body
    assert "<title>islandbot 看板</title>" in zh.body and "已以 alice 的身份登录" in zh.body
    assert "<th>岛主</th>" in zh.body and "只看我的" in zh.body
    row = _row(zh.body, n)
    assert "就绪" in row and "&lt;b&gt;x&lt;/b&gt;" in row and 'data-state="ready"' in row
    assert re.search(r"还能再起 \d+ 个 dev 岛", zh.body)
    assert "真实时间" in row and re.search(r"约\d+小时后", row)
    for english in ("Islands", "Signed in", "room for", "real time", "only mine", ">ready<"):
        assert english not in zh.body, english
    assert 'data-live="实时"' in zh.body  # the script's words too

    for language in ("en-US,en;q=0.9", None, "fr-FR"):  # English, none, one not spoken
        en = signed_in(demo, language).get("/board")
        assert en.status == 200
        assert '<html lang="en">' in en.body and "<h2>Islands</h2>" in en.body
        assert "Signed in as alice" in en.body and "ready" in _row(en.body, n)
        assert re.search(r"room for \d+ more dev islands", en.body)
        assert not re.search(r"[\u4e00-\u9fff]", en.body), language  # not one Chinese letter

    # the weights decide: French first (not spoken), then Chinese
    assert '<html lang="zh-CN">' in signed_in(demo, "fr-FR, zh;q=0.5").get("/board").body
    assert '<html lang="en">' in signed_in(demo, "zh;q=0.4, en;q=0.8").get("/board").body


def test_the_island_page_and_the_error_pages_speak_the_reader_s_language(demo: Demo) -> None:
    n = start(demo)
    until(lambda: demo.islands.get(n).state == "ready")
    page = signed_in(demo, ZH).get(f"/board/islands/{n}")
    assert page.status == 200 and '<html lang="zh-CN">' in page.body
    assert f"alice 的岛 #{n}（分支 dev）" in page.body
    assert "<dt>状态</dt>" in page.body and "<h2>历史</h2>" in page.body
    assert "alice 起岛（分支 dev）" in page.body and "就绪：服务器已响应" in page.body
    assert "requested by" not in page.body

    client = signed_in(demo, ZH)
    for path, status, says in (
        (f"/board/islands/{n + 999}", 404, f"没有岛 #{n + 999}。"),
        ("/board/islands/abc", 400, "这不是岛的编号"),
        ("/board?colour=red", 400, "看板不认识这个筛选条件"),
        ("/board?" + "mine=1&" * 300, 414, "请求太长"),
        ("/board/static/secret.py", 404, "看板上没有这个页面"),
    ):
        answer = client.get(path)
        assert answer.status == status and says in answer.body, path
        assert '<html lang="zh-CN">' in answer.body
    anonymous = BoardClient(demo.server.url, language=ZH).get("/board")
    assert anonymous.status == 401 and "需要链接才能查看看板。" in anonymous.body
    assert "/island board" in anonymous.body  # the command stays as typed
    forged = BoardClient(demo.server.url, language=ZH).get("/board/login?pass=x.y")
    assert forged.status == 401 and "这个看板链接无效" in forged.body
    english = BoardClient(demo.server.url).get("/board/islands/abc")
    assert english.status == 401 and "You need a link to see the board." in english.body


def test_without_a_browser_language_the_board_speaks_the_deployment_s(
    sqlite_url: str, tmp_path: Path
) -> None:
    with demo_on(sqlite_url, tmp_path, language="zh-CN") as (demo, _sim):
        assert "<h2>岛</h2>" in signed_in(demo, None).get("/board").body
        assert "<h2>岛</h2>" in signed_in(demo, "fr").get("/board").body
        english = signed_in(demo, "en-GB").get("/board").body
        assert "<h2>Islands</h2>" in english and '<html lang="en">' in english


def test_the_live_feed_sends_each_page_the_board_in_its_own_language(demo: Demo) -> None:
    zh, en = signed_in(demo, ZH).stream(), signed_in(demo, "en-US").stream()
    try:
        first = {name: json.loads(stream.event()[1]) for name, stream in (("zh", zh), ("en", en))}
        assert "还能再起" in first["zh"]["parts"]["room"] and "room for" not in str(first["zh"])
        assert "room for" in first["en"]["parts"]["room"]
        assert not re.search(r"[\u4e00-\u9fff]", str(first["en"]))
        n = start(demo)
        rows: dict[str, list[str]] = {"zh": [], "en": []}
        deadline = time.monotonic() + 20
        for name, stream in (("zh", zh), ("en", en)):
            while time.monotonic() < deadline and not any(
                'data-state="ready"' in r for r in rows[name]
            ):
                change = json.loads(stream.event()[1])
                rows[name] += [html for i, html in change["rows"] if i == n]
        zh_ready = next(r for r in rows["zh"] if 'data-state="ready"' in r)
        en_ready = next(r for r in rows["en"] if 'data-state="ready"' in r)
        assert "就绪</td>" in zh_ready and "真实时间" in zh_ready
        assert "ready</td>" in en_ready and "real time" in en_ready
        assert all(not re.search(r"[\u4e00-\u9fff]", r) for r in rows["en"])
        assert all("real time" not in r for r in rows["zh"])
    finally:
        zh.close()
        en.close()
    until(lambda: demo.bot.board.feed.viewers == 0, timeout=20)  # type: ignore[union-attr]


# ---- on their own: the words, the rows kept per language, the feed's sends ------------------


def line(island_id: int, **changes: object) -> IslandLine:
    """The board parts' island line, without an address or a note."""
    base: dict[str, object] = {"first_port": 30000, "host_ip": None, "note": None}
    return part_line(island_id, **{**base, **changes})


def snapshot(*lines: IslandLine) -> BoardSnapshot:
    islands = tuple(BoardIsland(x, ("server-port",), (2**30, 2**31), None) for x in lines)
    return BoardSnapshot(NOW, islands, (), None, (), {})


def test_the_rows_kept_are_kept_per_language() -> None:
    pages = BoardPages(tz=UTC)
    en, _ = pages.rows(snapshot(line(1)), Filters(), "en")
    zh, _ = pages.rows(snapshot(line(1)), Filters(), "zh-CN")
    assert "ready" in en[0][1] and "in about 8h" in en[0][1] and "not yet placed" in en[0][1]
    assert "就绪" in zh[0][1] and "约8小时后" in zh[0][1] and "尚未分配到节点" in zh[0][1]
    assert "2Gi 的 50%" in zh[0][1]
    again, _ = pages.rows(snapshot(line(1)), Filters(), "en")
    assert again[0][1] is en[0][1]  # English kept, not replaced by the Chinese render
    with speaking("zh-CN"):  # no language given: the one spoken
        assert pages.rows(snapshot(line(1)), Filters())[0][0][1] is zh[0][1]
    # the words kept by the minute are kept per language too
    assert board_text.expires(NOW + timedelta(minutes=90), NOW) == "in about 2h"
    with speaking("zh-CN"):
        assert board_text.expires(NOW + timedelta(minutes=90), NOW) == "约2小时后"
        assert board_text.expires(NOW - timedelta(seconds=5), NOW) == "刚刚"


def test_the_feed_sends_each_language_its_own_board() -> None:
    async def run() -> dict[str, list[dict[str, object]]]:
        asked: list[tuple[str, ...]] = []

        def render(languages: tuple[str, ...]) -> dict[str, LiveParts]:
            asked.append(languages)
            return {x: LiveParts({"room": f"room in {x}"}, [(1, f"row in {x}")]) for x in languages}

        feed = BoardFeed(render, every_s=0.01)
        queues: dict[str, asyncio.Queue[bytes]] = {}
        for language in ("en", "zh-CN", "zh-CN"):
            queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
            feed._viewers[queue] = language
            queues.setdefault(language, queue)
        task = asyncio.get_running_loop().create_task(feed._run())
        while not all(q.qsize() for q in queues.values()):
            await asyncio.sleep(0.01)
        assert asked[0] == ("en", "zh-CN")  # one render for both viewers of zh-CN
        feed._viewers.clear()
        await task
        return {
            language: [json.loads(q.get_nowait().split(b"data: ", 1)[1]) for _ in range(q.qsize())]
            for language, q in queues.items()
        }

    sent = asyncio.run(run())
    assert sent["en"][0]["parts"] == {"room": "room in en"}
    assert sent["en"][0]["rows"] == [[1, "row in en"]]
    assert sent["zh-CN"][0]["parts"] == {"room": "room in zh-CN"}
    assert sent["zh-CN"][0]["rows"] == [[1, "row in zh-CN"]]


def test_the_board_s_words_in_chinese() -> None:
    with speaking("zh-CN"):
        assert (
            board_text.room("dev", 3, 2, 1)
            == "还能再起 5 个 dev 岛，其中 2 个是预热岛，另有 1 个正在预热"
        )
        assert board_text.room("dev", 1) == "还能再起 1 个 dev 岛"
        assert board_text.node_load(2 * 2**30, 16 * 2**30, 3) == "已请求 2Gi / 16Gi（12%），3 个岛"
        assert board_text.history("clock:shift", {"to": -5400}, "bob", None) == (
            "bob 把岛上时间改到 -1小时30分"
        )
        assert board_text.history("state:failed", {}, "system", "内存超限") == "失败：内存超限"
        assert board_text.state_filter("starting") == "正在起岛"
        assert board_text.label("expires") == "到期" and board_text.WORDS.ISLANDS == "岛"
        assert board_text.WORDS.COLUMNS[1] == "岛主"
        link = board_text.board_link("http://b/board/login?pass=x", NOW, UTC)
        assert "http://b/board/login?pass=x" in link and "`/island board`" in link
        assert "2026-12-03 12:00:30 UTC" in link
        home = board_text.board_home("http://b", timedelta(hours=12))
        assert home == "<http://b|打开团队看板>（此链接仅限你本人使用，有效期 12小时）"
    # read outside any language: English, whatever was read before
    assert (
        board_text.WORDS.ISLANDS == "Islands" and board_text.state_filter("starting") == "starting"
    )
    assert board_text.WORDS.COLUMNS[1] == "owner" and board_text.label("expires") == "expires"
