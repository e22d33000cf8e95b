"""The port every chat adapter implements: how the bot talks back.

Two adapters implement ``ChatOutput``: ``SlackSender`` (Slack's Web API) and ``ConsoleChat``
(the embedded demo's terminal). Messages are given as a fallback ``text`` plus Block Kit
``blocks``; an adapter that cannot show blocks renders them (``bot.chat.console.render``).
Failures are ``ChatError``; the front end and the notifier catch only that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.domain.errors import IslandbotError
from bot.domain.notice_routes import Pace

Blocks = Sequence[Mapping[str, Any]]


class Liveness(Protocol):
    """Whether this process may still act on what it took on: after a pause (SIGSTOP, a long
    GC, a VM frozen) or a time cut off from its database, other replicas may have taken this
    process for dead and taken its work over; a call queued before that must then not be made.
    An adapter asks for a ``token`` when a call is queued and, right before making it, whether
    the process still ``holds`` it."""

    def token(self) -> int: ...

    def holds(self, token: int) -> bool: ...


class AlwaysAlive:
    """The ``Liveness`` of a process no other can take over from (the demo, a test)."""

    def token(self) -> int:
        return 0

    def holds(self, token: int) -> bool:
        return True


class ChatError(IslandbotError):
    """The chat refused or failed a call. ``error``: the chat's own code, if any;
    ``retry_after``: the chat asked to wait this long.

    Whether trying the same call again can help is the adapter's to say (it knows its chat's
    codes): ``permanent``, the chat refuses the call as it is, for good; of those,
    ``unreachable``, the channel cannot take the bot's messages (gone, archived, the bot not in
    it: another channel may), and ``malformed``, the message itself is refused (too long, its
    blocks or metadata invalid: a plainer, shorter one may pass). Anything else (the chat down,
    slow, rate limiting) is transient: the same call may succeed later."""

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        unreachable: bool = False,
        malformed: bool = False,
        permanent: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.error = error
        self.unreachable = unreachable
        self.malformed = malformed
        self.permanent = permanent or unreachable or malformed
        self.retry_after = retry_after


@dataclass(frozen=True)
class Reply:
    """Where an answer meant for one person goes: the request's response_url, else an
    ephemeral message in the channel, else a direct message."""

    user: str
    channel: str | None
    response_url: str | None = None


class ChatOutput(Protocol):
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
        """Post (in ``thread_ts``'s thread if given); return the new message's ts. With
        ``key`` and ``look_first``, a message in the thread carrying ``key`` is returned
        instead of posting again. ``meta``: machine-readable facts the message shows (Slack:
        its metadata), for other tools; an adapter may drop them."""

    def find(self, channel: str, key: str, *, thread_ts: str | None = None) -> str | None:
        """The message carrying ``key`` in ``channel`` (in ``thread_ts``'s thread if given),
        after whatever is still queued for that conversation; None when there is none."""

    def update(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        """Rewrite a message the bot posted (and the facts it carries)."""

    def ephemeral(
        self, channel: str, user: str, text: str, *, blocks: Blocks | None = None
    ) -> None:
        """Show a message in the channel to ``user`` only."""

    def respond(self, response_url: str, text: str, *, blocks: Blocks | None = None) -> None:
        """Answer the person who asked, through the request's response URL."""

    def upload(
        self, channel: str, *, filename: str, content: str, title: str, thread_ts: str | None
    ) -> None:
        """Share a text file in the channel (in the thread when given)."""

    def publish_home(self, user: str, view: Mapping[str, Any]) -> None:
        """Show ``view`` as the user's home page of the bot."""

    def direct(self, user: str) -> str:
        """The channel of the bot's direct conversation with ``user`` (opened if need be)."""

    def language(self, user: str) -> str | None:
        """The language ``user`` reads as the chat says (a language the bot speaks, such as
        ``zh-CN``), or None when it does not say: answers meant for them alone are then in the
        deployment's language. Never waits on the chat for long (an answer is behind it)."""

    def pace(self) -> Pace | None:
        """How fast one channel takes the bot's posts (the pace this adapter keeps to, a
        little under the chat's limit), or None when it takes them all at once. Where
        notices go is decided from it (``bot.domain.notice_routes.digest_or_not``)."""


def tell(sender: ChatOutput, reply: Reply, text: str, *, blocks: Blocks | None = None) -> None:
    """Answer one person where ``reply`` says. Raises ``ChatError``."""
    if reply.response_url:
        sender.respond(reply.response_url, text, blocks=blocks)
    elif reply.channel:
        sender.ephemeral(reply.channel, reply.user, text, blocks=blocks)
    else:
        sender.post(reply.user, text, blocks=blocks)
