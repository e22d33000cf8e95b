"""The board in a real browser (Debian's headless Chromium, through Selenium and
chromium-driver) against a real ``islandbot demo`` process: its signed link, the islands of
the running demo, an island started from the console chat appearing and turning ready
without a reload, the island's page, 401 for a forged or an expired link; and a screenshot.

``ISLANDBOT_SCREENSHOTS=DIR`` also saves the screenshots there (docs/board.md's is taken so:
``ISLANDBOT_SCREENSHOTS=docs/images pytest tests/board/test_board_browser.py``)."""

from __future__ import annotations

import os
import queue
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bot.domain.board_pass import BoardPass
from tests.browser import chromium, need_browser

pytestmark = pytest.mark.slow
ISLANDBOT = str(Path(sys.executable).parent / "islandbot")


class DemoProcess:
    """``islandbot demo`` in a process of its own, fed console lines on its standard input;
    what it prints is collected line by line."""

    def __init__(self, cwd: Path) -> None:
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("ISLANDBOT_", "SLACK_"))}
        self.proc = subprocess.Popen(
            [ISLANDBOT, "demo", "--state-dir", str(cwd / "demo")],
            env={**clean, "ISLANDBOT_POOLS": "dev=0"},  # the islands it types are #1, #2...
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        for line in self.seen:
            if found := re.search(pattern, line):
                return found
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found
        pytest.fail(f"{pattern!r} not printed; the demo printed:\n" + "\n".join(self.seen[-40:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.type("quit")
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoProcess]:
    need_browser()  # skip before starting anything when there is no browser
    running = DemoProcess(tmp_path)
    try:
        running.wait_for(r"HTTP API at")
        yield running
    finally:
        running.stop()


def wait(session: Any, what: Any, timeout: float = 30) -> Any:
    return WebDriverWait(session, timeout, poll_frequency=0.1).until(what)


def row_state(session: Any, island_id: int) -> str | None:
    """The row's state, read in one script call (the live feed replaces rows at any time, so
    an element found a moment ago may be gone)."""
    return session.execute_script(  # type: ignore[no-any-return]
        "const r = document.getElementById(arguments[0]); return r ? r.dataset.state : null;",
        f"island-{island_id}",
    )


def text_of(session: Any, element_id: str) -> str:
    return session.execute_script(  # type: ignore[no-any-return]
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : '';",
        element_id,
    )


def hidden(session: Any, element_id: str) -> bool:
    return session.execute_script(  # type: ignore[no-any-return]
        "return document.getElementById(arguments[0]).hidden;", element_id
    )


def _node_share(text: str) -> int:
    """The share of a node's memory requested, when it holds two islands (else 0)."""
    found = re.search(r"\((\d+) %\), 2 islands", text)
    return int(found.group(1)) if found else 0


def save(session: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    session.save_screenshot(str(path))
    assert path.stat().st_size > 10_000  # a rendered page, not a blank one
    wanted = os.environ.get("ISLANDBOT_SCREENSHOTS")
    if wanted:
        Path(wanted).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(wanted) / name)
    return path


def test_the_board_shows_the_demo_live_and_its_island_pages(
    demo: DemoProcess, tmp_path: Path
) -> None:
    link = demo.wait_for(r"The team board, as alice .*?: (http://\S+)").group(1)
    demo.type('/island start dev note="checkout flow"')
    demo.type('@bob /island start weekly note="load test"')
    demo.type("@carol /island start dev set memory=3Gi")
    demo.type("@alice wait 60")
    demo.wait_for(r"island #3 is ready")
    demo.type("@bob /island time 1 +2d")
    demo.wait_for(r"asks to move island #1's clock")

    with chromium() as session:
        session.get(link)
        wait(session, lambda s: s.current_url.endswith("/board"))  # the pass left the URL
        assert "islandbot board" in session.title
        wait(session, lambda s: text_of(s, "live") == "live")
        for n in (1, 2, 3):
            wait(session, lambda s, n=n: row_state(s, n) == "ready")
        assert "bob asks to move the clock to +2d" in text_of(session, "clocks")
        assert re.search(r"room for \d+ more dev islands", text_of(session, "room"))
        session.execute_script("window.notReloaded = true;")

        demo.type('@alice /island start dev note="started while the board watched"')
        wait(session, lambda s: row_state(s, 4) is not None)
        wait(session, lambda s: row_state(s, 4) == "ready", timeout=60)
        assert session.execute_script("return window.notReloaded === true;")  # live, no reload
        row = text_of(session, "island-4")
        assert "started while the board watched" in row and "server-port" in row
        # the nodes follow within seconds (read again once islands moved): dev-1 holds two
        wait(session, lambda s: _node_share(text_of(s, "node-dev-1")) >= 17)
        save(session, tmp_path, "board.png")

        # what people type is text on the board, live too: never markup, never script
        demo.type('@bob /island start weekly note="<img src=x onerror=window.pwned=1>"')
        wait(session, lambda s: row_state(s, 5) is not None)
        assert "<img src=x onerror=window.pwned=1>" in text_of(session, "island-5")
        assert session.execute_script(
            "return window.pwned === undefined && !document.querySelector('#island-5 img');"
        )

        # the filters work in place, and say when nothing matches
        session.find_element(By.CSS_SELECTOR, "select[name=branch] option[value=weekly]").click()
        wait(session, lambda s: hidden(s, "island-1") and not hidden(s, "island-2"))
        assert "branch=weekly" in session.current_url
        assert session.execute_script("return window.notReloaded === true;")

        session.find_element(By.LINK_TEXT, "#2").click()
        wait(session, lambda s: s.current_url.endswith("/board/islands/2"))
        history = text_of(session, "history")
        assert "requested by bob on weekly" in history and "ready: its server answers" in history
        assert "server: started" in text_of(session, "log-tail")
        save(session, tmp_path, "island.png")
        errors = [e for e in session.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors  # no script error, nothing the CSP refused


def test_a_forged_or_an_expired_link_gets_the_401_page(demo: DemoProcess, tmp_path: Path) -> None:
    link = demo.wait_for(r"The team board, as alice .*?: (http://\S+)").group(1)
    base = link.split("/board/")[0]
    token = link.split("pass=")[1]
    version, _alice, name, expires, signature = token.split(".")
    as_bob = BoardPass("bob", "bob", datetime.fromtimestamp(int(expires), UTC)).sign(b"?" * 32)
    forged = (
        f"{base}/board/login?pass={version}.{as_bob.split('.')[1]}.{name}.{expires}.{signature}"
    )
    # a link that expired an hour ago, made with the demo's own secret (kept in its database)
    with sqlite3.connect(tmp_path / "demo" / "islandbot.db") as conn:
        (secret,) = conn.execute("SELECT value FROM server_secrets WHERE name = 'board'").fetchone()
    old = BoardPass("alice", "alice", datetime.now(UTC) - timedelta(hours=1))
    expired = f"{base}/board/login?pass={old.sign(bytes.fromhex(secret))}"
    with chromium() as session:
        for bad, says in (
            (forged, "not valid"),
            (expired, "expired at"),
            (f"{base}/board", "You need a link"),
        ):
            session.get(bad)
            assert session.find_element(By.CSS_SELECTOR, ".error h2").text == "401", bad
            assert says in text_of(session, "error"), bad
            assert "/island board" in session.page_source
            assert not session.find_elements(By.ID, "island-rows")
        # the good link clicked from a page of another site (as from a chat in a browser tab):
        # the session cookie must come with the redirect
        session.get(f"data:text/html,<a id=go href='{link}'>the board</a>")
        session.find_element(By.ID, "go").click()
        wait(session, lambda s: s.current_url.endswith("/board"))
        assert session.find_elements(By.ID, "island-rows")


def test_a_chinese_browser_sees_the_board_in_chinese_live_too(
    demo: DemoProcess, tmp_path: Path
) -> None:
    link = demo.wait_for(r"The team board, as alice .*?: (http://\S+)").group(1)
    with chromium(language="zh-CN") as session:
        session.get(link)
        wait(session, lambda s: s.current_url.endswith("/board"))
        assert session.title == "islandbot 看板"
        assert session.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
        headings = [h.text for h in session.find_elements(By.TAG_NAME, "h2")]
        assert "岛" in headings and "节点" in headings
        wait(session, lambda s: text_of(s, "live") == "实时")  # the script's words
        demo.type('/island start dev note="started while the board watched"')
        island_id = int(demo.wait_for(r"island #(\d+) is ready").group(1))
        wait(session, lambda s: row_state(s, island_id) == "ready", timeout=60)
        row = text_of(session, f"island-{island_id}")  # came live, worded in Chinese
        assert "就绪" in row and "真实时间" in row and "ready" not in row
        assert re.search(r"还能再起 \d+ 个 dev 岛", text_of(session, "room"))
        save(session, tmp_path, "board-zh.png")
        session.find_element(By.LINK_TEXT, f"#{island_id}").click()
        wait(session, lambda s: s.current_url.endswith(f"/board/islands/{island_id}"))
        assert "起岛（分支 dev）" in text_of(session, "history")
        errors = [e for e in session.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == [], errors
