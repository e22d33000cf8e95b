"""Several chats in one deployment (Slack and Lark, say): one ``ChatOutput`` that hands each
call to the chat the conversation, person or message belongs to.

Each chat names its conversations and people its own way (Slack ``C0…``/``U0…``, Lark
``oc_…``/``ou_…``), so the ids the records keep (an island's ``chat_channel``, its owner, a
request's reply) say which chat they are of, and nothing above this needs to know: an island
started from Lark is announced, threaded and told about in Lark. A chat claims its ids with
``owns``; the first chat given takes whatever no other claims (the records written before
there was a second chat are the first's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.chat.output import Blocks, ChatOutput
from bot.domain.notice_routes import Pace


@dataclass(frozen=True)
class Routed:
    """A chat and the ids that are its own (``owns``: a channel, person or URL of that chat)."""

    chat: ChatOutput
    owns: Callable[[str], bool]


class ChatRouter:
    def __init__(self, first: ChatOutput, *others: Routed) -> None:
        self.first = first
        self.others: Sequence[Routed] = others

    def of(self, ident: str) -> ChatOutput:
        """The chat ``ident`` (a conversation, a person, a response URL) belongs to."""
        for routed in self.others:
            if routed.owns(ident):
                return routed.chat
        return self.first

    def post(
        self,
        channel: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        key: str | None = None,
        look_first: bool = False,
        meta: Mapping[str, Any] | None = None,
    ) -> str:
        return self.of(channel).post(
            channel,
            text,
            blocks=blocks,
            thread_ts=thread_ts,
            broadcast=broadcast,
            key=key,
            look_first=look_first,
            meta=meta,
        )

    def find(self, channel: str, key: str, *, thread_ts: str | None = None) -> str | None:
        return self.of(channel).find(channel, key, thread_ts=thread_ts)

    def update(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.of(channel).update(channel, ts, text, blocks=blocks, meta=meta)

    def ephemeral(
        self, channel: str, user: str, text: str, *, blocks: Blocks | None = None
    ) -> None:
        self.of(channel).ephemeral(channel, user, text, blocks=blocks)

    def respond(self, response_url: str, text: str, *, blocks: Blocks | None = None) -> None:
        self.of(response_url).respond(response_url, text, blocks=blocks)

    def upload(
        self, channel: str, *, filename: str, content: str, title: str, thread_ts: str | None
    ) -> None:
        self.of(channel).upload(
            channel, filename=filename, content=content, title=title, thread_ts=thread_ts
        )

    def publish_home(self, user: str, view: Mapping[str, Any]) -> None:
        self.of(user).publish_home(user, view)

    def direct(self, user: str) -> str:
        return self.of(user).direct(user)

    def language(self, user: str) -> str | None:
        return self.of(user).language(user)

    def pace(self) -> Pace | None:
        """The slowest of the chats' paces (a channel of any of them takes posts at least this
        fast; digests are then decided as for the slowest), or None when none holds posts."""
        paces = [p for p in (c.pace() for c in (self.first, *(r.chat for r in self.others))) if p]
        return min(paces, key=lambda p: (p.per_second, p.burst), default=None)
