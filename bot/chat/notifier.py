"""Lifecycle notices as chat messages, through any ``ChatOutput``.

An island's announcement (its first notice) posts its root message in the channel it was
started from, returned to be recorded as the island's thread (the notifier reads islands and
clock requests, and writes neither: the deliverer records what was posted, then says so with
``recorded``); when that channel cannot take the bot's messages, the root message goes to the
owner directly and the person who started it is told.
A clock change someone asks for is posted in the channel with its Approve / Reject buttons.
Every later notice is a threaded reply under the root message, which is then brought up to
date (state, host, ports, clock, expiry, buttons) by the ``RootRefresher``, coalesced.

Islands announced together share a digest: one message in the channel listing each island's
state, kept current the same way. Their notices then go where ``Announcement.route`` says:
to the owner directly (ready with the island's ports and buttons, failures, expiry, clock
changes), or nowhere but the digest.

A notice the chat refuses for good (``ChatError.permanent``) is not tried again as it was:
when the message itself was refused (too long, its blocks invalid) it is posted once more as
plain, shortened text; when the channel was (gone, archived, the bot not in it) it goes to
the island's owner directly; when nothing helps, ``NoticeRefused`` tells the outbox to record
it as refused at once, and the island's later notices go on. Each is logged and counted
(``islandbot_notices_refused_total``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta, tzinfo
from typing import Any

from bot.app.notices import Announcement, NoticeRefused, Posted
from bot.chat.output import Blocks, ChatError, ChatOutput, Reply, tell
from bot.chat.root_refresh import Rendered, RootRefresher
from bot.domain.island_clock import island_time
from bot.domain.lifecycle_rules import Notice
from bot.domain.notice_routes import FOR_THE_OWNER, Fallback, Pace, Route, after_refusal
from bot.domain.port_blocks import named_ports
from bot.domain.records import IslandRecord
from bot.domain.time_source import Clock, utcnow
from bot.infra import metrics
from bot.infra.storage.clock_requests import ClockRequests
from bot.infra.storage.islands import IslandStore
from bot.infra.storage.memory import MemoryStore
from bot.words import island_text, layouts, notices
from bot.words.catalogue import speaking

log = logging.getLogger(__name__)


def digest_key(first_island_id: int) -> str:
    """The key a digest is posted with: its first (lowest) island's id when it was planned
    (``digest_of``: the same however many of its islands are tried again with it)."""
    return f"digest-{first_island_id}"


def shows(*islands: IslandRecord) -> dict[str, Any]:
    """The facts a message about these islands carries for other tools: each one's state."""
    return {"islands": {str(i.id): i.state.value for i in islands}}


@dataclass(frozen=True)
class Sent:
    """Where a notice went: its channel and ts, and the refusal of its channel when it went
    to the owner instead."""

    channel: str
    ts: str
    rerouted: ChatError | None = None


class ChatNotifier:
    def __init__(
        self,
        sender: ChatOutput,
        islands: IslandStore,
        *,
        requests: ClockRequests,
        port_names: Sequence[str],
        extend_step: timedelta,
        tz: tzinfo = UTC,
        clock: Clock = utcnow,
    ) -> None:
        self.sender = sender
        self.islands = islands
        self.requests = requests
        self.tz = tz
        self.port_names = tuple(port_names)
        self.extend_step = extend_step
        self.clock = clock
        self.roots = RootRefresher(sender, self._render)

    def announce(self, announcement: Announcement) -> Posted | None:
        a = announcement
        if a.kind == Notice.ANNOUNCE:
            return self._post_root(a)
        if a.kind == Notice.CLOCK_REQUESTED:
            return self._post_request(a)
        if a.route == Route.DIRECT:
            self._tell_owner(a)
        elif a.route == Route.THREAD:
            if a.channel is None:  # started outside a chat (the command line): nowhere to post
                log.info("island %d: %s", a.island_id, a.text)
                return None
            if self._told_owner_before(a):
                return None
            self._post(
                a,
                a.channel,
                a.text,
                thread_ts=a.thread_ts,
                broadcast=a.broadcast and a.thread_ts is not None,
            )
        if a.channel is not None and a.thread_ts is not None:
            self.roots.mark(a.channel, a.thread_ts)
        return None

    def _told_owner_before(self, a: Announcement) -> bool:
        """A retried notice for its owner, of an island with a root message of its own, may
        have gone to the owner directly on its first attempt (the channel crowded then:
        ``notice_routes.crowded``); found there, it is not posted in the thread as well."""
        if not (a.retry and not a.in_digest and Notice(a.kind) in FOR_THE_OWNER):
            return False
        try:
            found = self.sender.find(self._direct(a.owner_id), a.key)
        except NoticeRefused:  # the owner cannot be told directly: it went nowhere else
            return False
        if found is not None:
            log.info("island %d: %s notice was already told to its owner", a.island_id, a.kind)
        return found is not None

    def _tell_owner(self, a: Announcement) -> None:
        """A notice for the owner of an island in a digest, in their direct conversation with
        the bot: the notice, and the island's card (ports, buttons) while it is live."""
        island = self.islands.get(a.island_id)
        with speaking(self.sender.language(island.owner_id)):  # for them alone: theirs
            _, card = self._root(island)
            text, blocks = layouts.owner_notice(a.words() if a.words else a.text, card)
        channel = self._direct(island.owner_id) if a.retry else island.owner_id
        self._post(a, channel, text, blocks=blocks, meta=shows(island), to_owner=True)

    def pace(self) -> Pace | None:
        """How fast a channel takes the notices' posts: the chat adapter's pace."""
        return self.sender.pace()

    def announce_together(
        self, channel: str, announcements: Sequence[Announcement], *, join: str | None
    ) -> Posted:
        """One digest for islands started at once (or ``join``: a young one), to be recorded
        as each island's root message, keyed by the island it was planned for; refused for
        good: ``NoticeRefused`` (the deliverer announces each island on its own)."""
        if join is not None:
            return Posted(channel, join)
        planned = {a.digest_of for a in announcements}
        leader = next(iter(planned), None)
        if len(planned) != 1 or leader is None:
            raise ValueError(f"a new digest is planned for one island, not {planned}")
        ids = sorted(a.island_id for a in announcements)
        islands = self.islands.many(ids)
        text, blocks = layouts.digest_message(islands)
        try:
            ts = self.sender.post(
                channel,
                text,
                blocks=blocks,
                key=digest_key(leader),
                look_first=any(a.retry for a in announcements),
                meta=shows(*islands),
            )
        except ChatError as exc:
            if not exc.permanent:
                raise  # the outbox tries again later
            log.warning("digest not posted in %s: %s; each island on its own", channel, exc)
            raise NoticeRefused(
                f"digest refused in {channel}: {exc}", reason=str(exc.error or "refused")
            ) from exc
        return Posted(channel, ts)

    def recorded(self, posted: Posted) -> None:
        """A root message or digest is rendered again from what is recorded now; a clock
        change decided or expired while its request was being posted is shown so."""
        if posted.request is None:
            self.roots.mark(posted.channel, posted.ts)
            return
        request = self.requests.get(posted.request)
        if request.state == "pending":
            return
        owner = self.islands.get(request.island_id).owner_id
        text, blocks = layouts.clock_request_message(
            request, owner_id=owner, tz=self.tz, now=self.clock()
        )
        try:
            self.sender.update(posted.channel, posted.ts, text, blocks=blocks)
        except ChatError as exc:  # the request stands; its message shows it undecided
            log.warning("clock request %d: message not updated: %s", request.id, exc)

    def _post_root(self, a: Announcement) -> Posted | None:
        """The island's root message; its ts is the island's thread from now on."""
        island = self.islands.get(a.island_id)
        if island.chat_thread is not None and island.chat_channel is not None:
            return Posted(island.chat_channel, island.chat_thread)  # an earlier attempt's
        if island.chat_channel is None:
            return None
        text, blocks = self._root(island)
        meta = shows(island)
        posted = self._post(a, island.chat_channel, text, blocks=blocks, meta=meta, say_where=False)
        channel, ts = posted.channel, posted.ts
        if posted.rerouted is not None:  # to the owner directly: the starter is told why
            self._started_elsewhere(island.id, a.detail.get("reply"), posted.rerouted)
        self.roots.remember(channel, ts, (text, blocks, {**meta, "key": a.key}))
        return Posted(channel, ts)

    def _post_request(self, a: Announcement) -> Posted | None:
        """A clock change someone asks for, with Approve / Reject, where the team sees it."""
        request = self.requests.get(int(a.detail["request"]))
        if request.chat_ts is not None and request.chat_channel is not None:
            # posted and recorded by an earlier attempt (brought up to date once recorded)
            return Posted(request.chat_channel, request.chat_ts, request=request.id)
        owner = self.islands.get(request.island_id).owner_id
        channel = request.chat_channel or owner
        text, blocks = layouts.clock_request_message(
            request, owner_id=owner, tz=self.tz, now=self.clock()
        )
        sent = self._post(a, channel, text, blocks=blocks, to_owner=channel == owner)
        return Posted(sent.channel, sent.ts, request=request.id)

    def _post(
        self,
        a: Announcement,
        channel: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        thread_ts: str | None = None,
        broadcast: bool = False,
        meta: Mapping[str, Any] | None = None,
        to_owner: bool = False,
        say_where: bool = True,
    ) -> Sent:
        """Post the notice ``a``, once (``a.key``). When the chat refuses it for good: once
        more as plain, shortened text if the message was refused; to the owner directly if
        the channel was (unless it went to them: ``to_owner``; ``say_where``: saying where it
        could not go); else ``NoticeRefused``. A chat failing for now raises ``ChatError``
        (the outbox tries the notice again later)."""
        refusals: list[ChatError] = []
        rerouted: ChatError | None = None
        look = a.retry  # an earlier attempt may have posted it
        while True:
            try:
                ts = self.sender.post(
                    channel,
                    text,
                    blocks=blocks,
                    thread_ts=thread_ts,
                    broadcast=broadcast,
                    key=a.key,
                    look_first=look,
                    meta=meta,
                )
            except ChatError as exc:
                if not exc.permanent:
                    raise
                refusals.append(exc)
                shorter = notices.plain(text)
                fallback = after_refusal(
                    malformed=exc.malformed,
                    unreachable=exc.unreachable,
                    rewordable=blocks is not None or bool(meta) or shorter != text,
                    to_owner=to_owner or rerouted is not None,
                )
                if fallback == Fallback.REWORD:
                    log.warning(
                        "island %d: %s notice refused in %s (%s); posting it as plain text",
                        a.island_id,
                        a.kind,
                        channel,
                        exc,
                    )
                    text, blocks, meta, look = shorter, None, None, False
                    continue
                if fallback == Fallback.TO_OWNER:
                    log.warning(
                        "island %d: %s notice refused in %s (%s); telling its owner directly",
                        a.island_id,
                        a.kind,
                        channel,
                        exc,
                    )
                    with speaking(self.sender.language(a.owner_id)):  # for them alone
                        if a.words is not None and text == a.text:  # said again, in theirs
                            text = a.words()
                        if say_where:
                            text = notices.rerouted(text, channel)
                    rerouted, look = exc, a.retry
                    channel, thread_ts, broadcast = self._direct(a.owner_id), None, False
                    continue
                raise NoticeRefused(
                    f"island {a.island_id}: {a.kind} notice refused in {channel}: {exc}",
                    reason=str(refusals[0].error or "refused"),
                ) from exc
            if refusals:
                outcome = "rerouted" if rerouted is not None else "reworded"
                reason = str(refusals[0].error or "refused")
                metrics.NOTICES_REFUSED.labels(reason=reason, outcome=outcome).inc()
            return Sent(channel, ts, rerouted)

    def _direct(self, user: str) -> str:
        """The owner's direct conversation; ``NoticeRefused`` when the chat will never open
        one (the owner gone, or a bot)."""
        try:
            return self.sender.direct(user)
        except ChatError as exc:
            if not exc.permanent:
                raise
            raise NoticeRefused(
                f"no direct conversation with {user}: {exc}", reason=str(exc.error or "refused")
            ) from exc

    def _started_elsewhere(self, island_id: int, reply: object, exc: ChatError) -> None:
        if not isinstance(reply, dict) or not reply.get("user"):
            return
        target = Reply(str(reply["user"]), reply.get("channel"), reply.get("response_url"))
        with speaking(self.sender.language(target.user)):  # for the starter alone: theirs
            text = island_text.started_elsewhere(island_id, exc.error or str(exc))
        try:
            tell(self.sender, target, text)
        except ChatError as told:
            log.warning("island %d: could not say where it was announced: %s", island_id, told)

    def _root(self, island: IslandRecord) -> tuple[str, list[dict[str, Any]]]:
        now = self.clock()
        return layouts.root_message(
            island,
            ports=named_ports(self.port_names, island.first_port),
            clock=island_time(island.clock_offset_s, now) if island.clock_offset_s else None,
            extend_step=self.extend_step,
            now=now,
            tz=self.tz,
            memory=self._memory(island.id),
        )

    def _memory(self, island_id: int) -> tuple[int, int | None] | None:
        kept = MemoryStore(self.islands.db).last([island_id]).get(island_id)
        return None if kept is None else (kept.used, kept.limit)

    def _render(self, channel: str, ts: str) -> Rendered | None:
        """What the root message ``ts`` should show now: its island's, or its digest's (with
        the key it was posted with: a rewrite of Slack's metadata replaces all of it)."""
        islands = self.islands.in_digest(channel, ts)
        if not islands:
            return None
        if len(islands) == 1 and not islands[0].chat_digest:
            text, blocks = self._root(islands[0])
            announced = self.islands.announcement_id(islands[0].id)
            key = None if announced is None else f"outbox-{announced}"
        else:
            text, blocks = layouts.digest_message(islands)
            planned = [i.digest_of for i in islands if i.digest_of is not None]
            key = digest_key(min(planned) if planned else islands[0].id)  # (before 0012)
        meta = shows(*islands)
        return text, blocks, meta if key is None else {**meta, "key": key}

    def close(self) -> None:
        self.roots.close()
