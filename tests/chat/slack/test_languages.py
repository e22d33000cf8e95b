"""Each person is answered in the language Slack says they read; the channel hears the
deployment's. Their locales come from ``users.list`` at start (one call for the workspace),
a newcomer's from ``users.info`` once; when Slack cannot tell, the answer does not wait."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.chat.pacing import TierPacer
from bot.chat.slack.locales import SlackLocales
from bot.chat.slack.sender import web_client
from bot.infra.storage.database import Database, create_database
from tests import dbutil, fakeslack
from tests.chat.slack.test_burst import burst
from tests.fakeslack import FakeSlack
from tests.slackworld import SlackWorld, slack_world

CJK = re.compile(r"[\u4e00-\u9fff]")
ZH, EN = "U0LI", "U0ALICE"


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Database]:
    url = dbutil.sqlite_url(tmp_path)
    dbutil.migrated(url).dispose()
    database = create_database(url)
    yield database
    database.dispose()


def _workspace() -> FakeSlack:
    return FakeSlack(people={ZH: "zh-CN", EN: "en-US"})


def _ephemeral(world: SlackWorld, text: str, user: str) -> str:
    status, body, _ = world.command(text, user=user, user_name=user.lower())
    assert status == 200
    return str(json.loads(body)["text"]) if body else ""


def _chinese(text: str) -> bool:
    return bool(CJK.search(text))


def test_help_and_bad_input_are_in_each_persons_language(sqlite: Database, tmp_path: Path) -> None:
    with slack_world(sqlite, tmp_path, loop=False, slack=_workspace()) as w:
        w.sender.locales.refresh()  # the job the loop runs at start (no loop here)
        zh_help, en_help = _ephemeral(w, "help", ZH), _ephemeral(w, "help", EN)
        assert _chinese(zh_help) and "/island start" in zh_help  # the grammar stays English
        assert "改时间" in zh_help
        assert not _chinese(en_help) and "Start an island" in en_help
        assert _chinese(_ephemeral(w, "strat dev", ZH))
        assert not _chinese(_ephemeral(w, "strat dev", EN))
        assert w.fake.count("users.info") == 0  # both were in the workspace's list


def test_private_answers_follow_the_person_and_channel_posts_the_deployment(
    sqlite: Database, tmp_path: Path
) -> None:
    with slack_world(sqlite, tmp_path, slack=_workspace()) as w:
        w.until(lambda: w.fake.count("users.list") >= 1)  # the job the bot runs at start
        w.command("start dev", user=ZH, user_name="li")
        (island,) = w.started(1)
        root = w.fake.posts("C0TEAM")[0]["text"]
        assert not _chinese(root), root  # the channel: the deployment's English
        w.command(f"status {island.id}", user=ZH, user_name="li")
        assert _chinese(w.wait_answer(ZH))
        w.command(f"stop {island.id}", user=EN)  # not hers: refused, in English
        refused = w.wait_answer(EN)
        assert not _chinese(refused) and "owner" in refused
        w.command(f"extend {island.id} 1h", user=ZH, user_name="li")
        assert _chinese(w.wait_answer(ZH, 2))
        assert w.fake.count("users.info") == 0  # every one of them was in the list


def test_a_chinese_deployment_posts_in_chinese_and_answers_english_readers_in_english(
    sqlite: Database, tmp_path: Path
) -> None:
    with slack_world(sqlite, tmp_path, slack=_workspace(), language="zh-CN") as w:
        w.until(lambda: w.fake.count("users.list") >= 1)
        w.command("start dev", user=EN)
        (island,) = w.started(1)
        w.until(lambda: any(_chinese(str(m["text"])) for m in w.fake.posts("C0TEAM")))
        w.command(f"status {island.id}", user=EN)
        assert not _chinese(w.wait_answer(EN))


def test_a_newcomer_is_looked_up_once_and_a_failed_lookup_does_not_hold_the_answer(
    sqlite: Database, tmp_path: Path
) -> None:
    with slack_world(sqlite, tmp_path, loop=False, slack=_workspace()) as w:
        w.sender.locales.refresh()
        w.fake.people["U0NEW"] = "zh-CN"  # joined since the list was read
        assert _chinese(_ephemeral(w, "help", "U0NEW"))
        assert _chinese(_ephemeral(w, "help", "U0NEW"))
        assert w.fake.count("users.info") == 1  # then known
        w.fake.people["U0LATE"] = "zh-CN"
        w.fake.fail("users.info", status=503, count=5)  # Slack cannot tell now
        began = time.monotonic()
        assert not _chinese(_ephemeral(w, "help", "U0LATE"))  # the deployment's, at once
        assert time.monotonic() - began < 2.5  # within Slack's 3 s for the command's answer
        assert not _chinese(_ephemeral(w, "help", "U0LATE"))  # not asked again for a while
        assert w.fake.count("users.info") == 2
        w.fake.people["U0SLOW"] = "zh-CN"
        w.fake.fail("users.info", delay=5)  # Slack answers, but only after 5 s
        began = time.monotonic()
        assert not _chinese(_ephemeral(w, "help", "U0SLOW"))  # the answer did not wait
        assert time.monotonic() - began < 2.0


def test_an_app_without_the_scope_stops_asking_and_says_so_once(
    sqlite: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with slack_world(sqlite, tmp_path, loop=False, slack=_workspace()) as w:
        w.fake.fail("users.list", error="missing_scope")
        w.fake.fail("users.info", error="missing_scope")
        with caplog.at_level(logging.INFO, logger="bot.chat.slack"):
            w.sender.locales.refresh()
            for n in range(5):
                assert not _chinese(_ephemeral(w, "help", f"U0NEW{n}"))
        assert w.fake.count("users.info") == 1  # then no more, until a refresh works
        warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 2 and all("missing_scope" in m for m in warned), warned
        w.sender.locales.refresh()  # the app was reinstalled with users:read
        w.fake.people["U0NEW9"] = "zh-CN"
        assert _chinese(_ephemeral(w, "help", "U0NEW9"))


def test_the_workspace_is_read_page_by_page_and_a_failed_read_keeps_what_was_known(
    caplog: pytest.LogCaptureFixture,
) -> None:
    people = {f"U{n:05d}": ("zh-CN" if n % 2 else "en-GB") for n in range(450)}
    with fakeslack.serving(FakeSlack(people=people, tiers={"users.list": 1200})) as fake:
        client = web_client(fakeslack.BOT_TOKEN, base_url=fake.api_url, timeout_s=5)
        locales = SlackLocales(client, TierPacer(per_minute={"users.list": 1200}))
        locales.refresh()
        assert fake.count("users.list") == 3  # 200 a page
        assert locales.language("U00001") == "zh-CN"
        assert locales.language("U00002") == "en"
        fake.fail("users.list", error="fatal_error", count=4)
        with caplog.at_level(logging.INFO, logger="bot.chat.slack.locales"):
            locales.refresh()
            locales.refresh()
        warned = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warned) == 1 and "fatal_error" in warned[0].getMessage()
        assert not any(r.exc_info for r in caplog.records)
        assert locales.language("U00001") == "zh-CN"  # kept
        assert fake.count("users.info") == 0


def test_in_a_burst_each_owner_is_told_ready_directly_in_their_language(
    sqlite: Database, tmp_path: Path
) -> None:
    users = [f"U0T{n:03d}" for n in range(8)]
    people = {u: ("zh-CN" if n % 2 else "en-US") for n, u in enumerate(users)}
    with slack_world(sqlite, tmp_path, slack=FakeSlack(people=people)) as w:
        w.until(lambda: w.fake.count("users.list") >= 1)  # the job the bot runs at start
        burst(w, users)
        w.until(
            lambda: (
                len(w.islands()) == len(users)
                and all(i.state.value == "ready" and i.chat_thread for i in w.islands())
            ),
            timeout=60,
        )
        in_digest = [i for i in w.islands() if i.chat_digest]
        assert in_digest  # the channel was crowded: owners told directly
        for island in in_digest:
            dm = w.until(lambda i=island: w.fake.posts("D" + i.owner_id[1:]))
            text = str(dm[0]["text"])
            assert _chinese(text) == (people[island.owner_id] == "zh-CN"), text
        for message in w.fake.posts("C0TEAM"):  # the channel: the deployment's English
            assert not _chinese(str(message["text"])), message["text"]
        assert w.fake.rate_limited == 0, w.fake.rate_limited_by
        assert w.fake.count("users.info") == 0  # all of them read in one users.list
