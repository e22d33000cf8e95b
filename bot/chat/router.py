"""Several chats in one deployment (Slack and Lark, say): one ``ChatOutput`` that hands each
call to the chat the conversation, person or message belongs to.

Each chat names its conversations and people its own way (Slack ``C0…``/``U0…``, Lark
``oc_…``/``ou_…``), so the ids the records keep (an island's ``chat_channel``, its owner, a
request's reply) say which chat they are of, and nothing above this needs to know: an island
started from Lark is announced, threaded and told about in Lark. A chat claims its ids with
``owns``; the first chat given takes whatever no other claims (the records written before
there was a second chat are the first's).

A message may name someone of the other chat (an admin of Lark stopping an island started from
Slack): a chat cannot mention a person it does not know, so such a mention (``<@ou_…>`` in a
Slack message, ``<@U0…>`` in a Lark one) is written as plain ``@name`` (the name when the other
chat has told it, else the id).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.chat.output import Blocks, ChatOutput
from bot.domain.notice_routes import Pace

T = TypeVar("T")
_MENTION = re.compile(r"<@([^<>|]+)(?:\|[^<>]*)?>")


def _no_name(_person: str) -> str | None:
    return None


@dataclass(frozen=True)
class Routed:
    """A chat and the ids that are its own (``owns``: a channel, person or URL of that chat);
    ``name``: a person's name as that chat has told it, if it has (never waits)."""

    chat: ChatOutput
    owns: Callable[[str], bool]
    name: Callable[[str], str | None] = _no_name


class ChatRouter:
    def __init__(self, first: ChatOutput, *others: Routed) -> None:
        self.first = first
        self.others: Sequence[Routed] = others

    def of(self, ident: str) -> ChatOutput:
        """The chat ``ident`` (a conversation, a person, a response URL) belongs to."""
        return self._routed(ident).chat

    def _routed(self, ident: str) -> Routed:
        for routed in self.others:
            if routed.owns(ident):
                return routed
        return Routed(self.first, lambda _ident: True)

    def _for(self, chat: ChatOutput, said: T) -> T:
        """``said`` (a text, blocks, a view) with the mentions of other chats' people plain."""

        def plain(match: re.Match[str]) -> str:
            routed = self._routed(match.group(1))
            if routed.chat is chat:
                return match.group(0)
            return "@" + (routed.name(match.group(1)) or match.group(1))

        def walk(value: Any) -> Any:
            if isinstance(value, str):
                return _MENTION.sub(plain, value) if "<@" in value else value
            if isinstance(value, Mapping):
                return {k: walk(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [walk(v) for v in value]
            return value

        return walk(said)  # type: ignore[no-any-return]

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
        chat = self.of(channel)
        return chat.post(
            channel,
            self._for(chat, text),
            blocks=self._for(chat, blocks),
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
        chat = self.of(channel)
        chat.update(channel, ts, self._for(chat, text), blocks=self._for(chat, blocks), meta=meta)

    def ephemeral(
        self, channel: str, user: str, text: str, *, blocks: Blocks | None = None
    ) -> None:
        chat = self.of(channel)
        chat.ephemeral(channel, user, self._for(chat, text), blocks=self._for(chat, blocks))

    def respond(self, response_url: str, text: str, *, blocks: Blocks | None = None) -> None:
        chat = self.of(response_url)
        chat.respond(response_url, self._for(chat, text), blocks=self._for(chat, blocks))

    def upload(
        self, channel: str, *, filename: str, content: str, title: str, thread_ts: str | None
    ) -> None:
        chat = self.of(channel)
        chat.upload(
            channel,
            filename=filename,
            content=content,
            title=self._for(chat, title),
            thread_ts=thread_ts,
        )

    def publish_home(self, user: str, view: Mapping[str, Any]) -> None:
        chat = self.of(user)
        chat.publish_home(user, self._for(chat, view))

    def direct(self, user: str) -> str:
        return self.of(user).direct(user)

    def language(self, user: str) -> str | None:
        return self.of(user).language(user)

    def pace(self) -> Pace | None:
        """The slowest of the chats' paces (a channel of any of them takes posts at least this
        fast; digests are then decided as for the slowest), or None when none holds posts."""
        paces = [p for p in (c.pace() for c in (self.first, *(r.chat for r in self.others))) if p]
        return min(paces, key=lambda p: (p.per_second, p.burst), default=None)
