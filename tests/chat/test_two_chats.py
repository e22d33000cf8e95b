"""Slack and Lark served by one bot, as ``islandbot run`` builds it when both chats' settings
are given (``chat_bot``): Slack over its signed HTTP requests (``/slack/events``) against the
fake Web API (tests/fakeslack.py, its rate limits enforced), Lark over its encrypted HTTP
callbacks (``/lark/events``) against the fake Open API (tests/fakelark.py), one database, one
kubesim. An island belongs to the chat it was started from; admins of either chat may act on
any island, and the island's notices stay in its own chat."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.chat.router import ChatRouter
from bot.domain.records import IslandRecord
from bot.infra.storage.database import Database
from tests import fakeslack
from tests.fakeslack import FakeSlack
from tests.larkworld import ADMIN as LARK_ADMIN
from tests.larkworld import GROUP, LarkWorld, lark_world
from tests.slackworld import ADMIN as SLACK_ADMIN

pytestmark = pytest.mark.timeout(90)

CHANNEL = "C0TEAM"  # the Slack channel the slash commands come from
PORTS = "38700-38789"  # its own: islands of other worlds may listen on the shared ones meanwhile


@dataclass
class TwoChats:
    """The bot on both chats: ``lark`` (a ``LarkWorld``: Lark's side, the bot, the database)
    and ``slack``, the fake Slack the same bot posts to."""

    lark: LarkWorld
    slack: FakeSlack

    # ---- Slack's side ------------------------------------------------------------------------

    def command(self, text: str, *, user: str = "U0ALICE", user_name: str = "alice") -> str:
        """``user`` types ``/island text`` in the Slack channel (a signed slash command, as
        Slack POSTs it); the body of the bot's answer, which must be a 200."""
        body = fakeslack.slash_command(
            text,
            user=user,
            user_name=user_name,
            channel=CHANNEL,
            response_url=self.slack.response_url(user),
        )
        assert self.lark.bot.server is not None
        request = urllib.request.Request(
            f"{self.lark.bot.server.url}/slack/events",
            data=body.encode(),
            headers={"Content-Type": fakeslack.FORM, **fakeslack.sign(body)},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as refused:
            status, raw = refused.code, refused.read()
        said = bytes(raw).decode()
        assert status == 200, (status, said)
        return said

    def answered(self, user: str, pattern: str, timeout: float = 20) -> str:
        """What the bot said to ``user`` in Slack through the response_url, containing
        ``pattern``."""

        def found() -> str | None:
            texts = [
                str(r.get("text"))
                for r in list(self.slack.responses)
                if r["path"].endswith(f"/{user}")
            ]
            return next((t for t in texts if pattern in t), None)

        return str(self.lark.until(found, timeout))

    def slack_thread(self, island: IslandRecord) -> list[str]:
        return [str(m["text"]) for m in self.slack.thread(CHANNEL, str(island.chat_thread))]

    # ---- both --------------------------------------------------------------------------------

    def start_both(self) -> tuple[IslandRecord, IslandRecord]:
        """Alice starts an island from Slack and ou_bob one from Lark, at once; both (Slack's,
        Lark's) once ready, their ready replies posted."""
        assert self.command("start dev") == ""
        self.lark.say("ou_bob", "start dev")
        started = self.lark.started(2)
        slack = next(i for i in started if i.owner_id == "U0ALICE")
        lark = next(i for i in started if i.owner_id == "ou_bob")
        self.lark.until(lambda: any("is ready on" in t for t in self.slack_thread(slack)))
        self.lark.until(lambda: any("is ready on" in t for t in self.lark.thread(lark)))
        for island in (slack, lark):
            self.ready(island.id)
        return self.lark.island(slack.id), self.lark.island(lark.id)

    def ready(self, island_id: int) -> None:
        self.lark.until(lambda: self.lark.island(island_id).state == "ready")

    def slack_texts(self) -> list[str]:
        """Every message the bot posted to Slack (roots and replies), as they are now."""
        return [str(m["text"]) for m in self.slack.posts()]

    def lark_texts(self) -> list[str]:
        """Every message the bot sent in Lark (cards' and texts' words), as they are now."""
        return [
            str(m["content"])
            for m in self.lark.fake.messages()
            if m["sender"] == self.lark.fake.app_id
        ]


def about(island: IslandRecord, texts: list[str]) -> list[str]:
    """The texts that name ``island`` (``#7``, not ``#70``)."""
    return [t for t in texts if re.search(rf"#{island.id}(?!\d)", t)]


def slack_settings(slack: FakeSlack) -> dict[str, str]:
    """Slack's settings beside Lark's (HTTP mode: a signing secret), as ``world_settings`` of
    tests/slackworld.py gives them, and admins of both chats."""
    return {
        "ISLANDBOT_SLACK_API_URL": slack.api_url,
        "ISLANDBOT_SLACK_WORKERS": "8",
        "SLACK_BOT_TOKEN": fakeslack.BOT_TOKEN,
        "SLACK_SIGNING_SECRET": fakeslack.SIGNING_SECRET,
        "ISLANDBOT_ADMINS": f"{LARK_ADMIN},{SLACK_ADMIN}",
        "ISLANDBOT_PORT_RANGE": PORTS,
    }


@pytest.fixture
def chats(db: Database, tmp_path: Path) -> Iterator[TwoChats]:
    pacing: dict[str, Any] = {"channel_rate": 0.9, "channel_burst": 2}  # Slack's, as in prod
    with (
        fakeslack.serving(FakeSlack()) as slack,
        lark_world(db, tmp_path, env=slack_settings(slack), **pacing) as world,
    ):
        yield TwoChats(world, slack)


def test_each_island_is_announced_and_told_about_in_its_own_chat_only(chats: TwoChats) -> None:
    """Two islands, one started from each chat: each one's root message (Slack's message, Lark's
    card) and ready reply went to its own chat and thread, and nothing about it to the other
    chat; each island's ``chat_channel`` is its chat's id. The Lark owner's Stop on his card
    stops his island; the Slack island stays ready and its thread hears nothing of it."""
    assert isinstance(chats.lark.front.sender, ChatRouter)
    slack_island, lark_island = chats.start_both()
    assert slack_island.chat_channel == CHANNEL and lark_island.chat_channel == GROUP

    root = chats.slack.posts(CHANNEL)[0]
    assert root["ts"] == slack_island.chat_thread and root["thread_ts"] is None
    assert f"island #{slack_island.id} on *dev*" in str(root["text"])
    ready = [t for t in chats.slack_thread(slack_island) if "is ready on" in t]
    assert len(ready) == 1 and "<@U0ALICE>" in ready[0] and str(slack_island.host_ip) in ready[0]
    card = chats.lark.fake.message(str(lark_island.chat_thread))
    assert card["msg_type"] == "interactive" and card["chat_id"] == GROUP
    ready = [t for t in chats.lark.thread(lark_island) if "is ready on" in t]
    assert len(ready) == 1 and '<at user_id="ou_bob"></at>' in ready[0]

    assert set(chats.slack.messages) == {CHANNEL}  # no Lark chat, no direct message
    assert about(lark_island, chats.slack_texts()) == []
    assert {m["chat_id"] for m in chats.lark.fake.messages()} == {GROUP}
    assert about(slack_island, chats.lark_texts()) == []
    slack_calls = " ".join(str(c.params) for c in list(chats.slack.calls))
    lark_calls = " ".join(f"{c.path} {c.query} {c.json}" for c in list(chats.lark.fake.calls))
    assert "oc_" not in slack_calls and "ou_" not in slack_calls  # no Lark id sent to Slack
    assert CHANNEL not in lark_calls and "U0ALICE" not in lark_calls  # nor a Slack one to Lark

    chats.lark.until(lambda: "[Stop]" in chats.lark.texts(GROUP)[0])
    status, _ = chats.lark.click("ou_bob", str(lark_island.chat_thread), "Stop")
    assert status == 200
    chats.lark.until(lambda: chats.lark.island(lark_island.id).state == "stopped", timeout=30)
    chats.lark.until(lambda: any("is stopping" in t for t in chats.lark.thread(lark_island)))
    assert chats.lark.island(slack_island.id).state == "ready"
    assert not [t for t in chats.slack_thread(slack_island) if "stop" in t]
    assert about(lark_island, chats.slack_texts()) == []
    assert chats.slack.rate_limited == chats.lark.fake.rate_limited == 0


def test_admins_of_either_chat_act_on_the_other_chats_islands(chats: TwoChats) -> None:
    """ISLANDBOT_ADMINS lists a Lark open_id and a Slack id: the Lark admin stops the Slack
    island with a Lark command and the Slack admin the Lark island with a slash command; each
    is answered in the chat they wrote from, and each island's notices (its owner told it is
    stopping, its root brought up to date) still go to the island's own chat."""
    slack_island, lark_island = chats.start_both()

    chats.lark.say(LARK_ADMIN, f"stop {slack_island.id}")
    assert f"#{slack_island.id}" in chats.lark.told(LARK_ADMIN, "Stopping")
    chats.lark.until(lambda: chats.lark.island(slack_island.id).state == "stopped", timeout=30)
    stopping = chats.lark.until(
        lambda: [t for t in chats.slack_thread(slack_island) if "is stopping" in t]
    )
    assert f"island #{slack_island.id}" in stopping[0]
    chats.lark.until(lambda: "*stopped*" in str(chats.slack.posts(CHANNEL)[0]["text"]))
    assert chats.lark.island(lark_island.id).state == "ready"
    lark_notices = [t for t in chats.lark_texts() if "is stopping" in t or "stopped" in t]
    assert lark_notices == []  # the admin's answer is his, in Lark; the notices are Slack's

    said = chats.command(f"stop {lark_island.id}", user=SLACK_ADMIN, user_name="admin")
    assert said == ""  # accepted: the answer comes through the response_url
    assert f"#{lark_island.id}" in chats.answered(SLACK_ADMIN, "Stopping")
    chats.lark.until(lambda: chats.lark.island(lark_island.id).state == "stopped", timeout=30)
    chats.lark.until(lambda: any("is stopping" in t for t in chats.lark.thread(lark_island)))
    chats.lark.until(lambda: ": **stopped**" in chats.lark.texts(GROUP)[0])
    assert about(lark_island, chats.slack_texts()) == []
    assert set(chats.slack.messages) == {CHANNEL}
    assert {m["chat_id"] for m in chats.lark.fake.messages()} == {
        GROUP,
        f"oc_p2p_{LARK_ADMIN}",  # the Lark admin's answer, in his chat with the bot
    }
    assert chats.slack.rate_limited == chats.lark.fake.rate_limited == 0
