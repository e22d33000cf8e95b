"""Several chats in one deployment: each call goes to the chat the id belongs to, the rest to
the first chat; digests are decided at the slowest chat's pace."""

from __future__ import annotations

from bot.chat.console.chat import ConsoleChat
from bot.chat.lark import ids
from bot.chat.router import ChatRouter, Routed
from bot.domain.notice_routes import Pace


class PacedConsole(ConsoleChat):
    """A console chat that says it holds posts at ``paced`` (as a real chat's adapter does)."""

    def __init__(self, paced: Pace | None) -> None:
        super().__init__(write=None)
        self.paced = paced

    def pace(self) -> Pace | None:
        return self.paced


def test_each_call_goes_to_the_chat_its_id_belongs_to() -> None:
    slack, lark = ConsoleChat(write=None), ConsoleChat(write=None)
    router = ChatRouter(slack, Routed(lark, ids.owns))
    root = router.post("oc_islands", "a card")
    router.post("oc_islands", "in its thread", thread_ts=root)
    router.update("oc_islands", root, "the card, later")
    router.ephemeral("oc_islands", "ou_bob", "for bob")
    router.post("C0TEAM", "a Slack post")
    router.ephemeral("C0TEAM", "U0ALICE", "for alice")
    assert router.direct("ou_bob") == lark.direct("ou_bob")
    assert [e.kind for e in lark.snapshot()] == ["post", "reply", "update", "ephemeral"]
    assert [e.kind for e in slack.snapshot()] == ["post", "ephemeral"]
    assert all("Slack" in e.text or "alice" in e.text for e in slack.snapshot())
    assert router.language("ou_bob") is None


def test_a_person_of_the_other_chat_is_named_not_mentioned() -> None:
    slack, lark = ConsoleChat(write=None), ConsoleChat(write=None)
    names = {"ou_admin": "Admin Li"}
    router = ChatRouter(slack, Routed(lark, ids.owns, names.get))
    block = {"type": "section", "text": {"type": "mrkdwn", "text": "by <@ou_admin> for <@U0A>"}}
    router.post("C0TEAM", "<@ou_admin> is stopping island #1 of <@U0A>.", blocks=[block])
    router.post("oc_islands", "<@U0ADMIN> is stopping island #2 of <@ou_bob>.")
    slack_post, lark_post = slack.snapshot()[0].text, lark.snapshot()[0].text
    assert slack_post == "by @Admin Li for @U0A"  # its blocks shown; U0A still Slack's
    assert lark_post == "@U0ADMIN is stopping island #2 of @ou_bob."  # the console's @ for <@…>


def test_digests_are_decided_at_the_slowest_chats_pace() -> None:
    slow, fast = Pace(per_second=0.9, burst=2), Pace(per_second=4, burst=1)
    assert ChatRouter(PacedConsole(fast), Routed(PacedConsole(slow), ids.owns)).pace() == slow
    assert ChatRouter(PacedConsole(None), Routed(PacedConsole(fast), ids.owns)).pace() == fast
    assert ChatRouter(PacedConsole(None), Routed(PacedConsole(None), ids.owns)).pace() is None
