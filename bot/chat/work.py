"""Carrying out what a person asked in a chat, whatever the chat: a command, a button press, the
home page. Every answer goes to the person who asked (``Reply``); every look and change is
audited. A change is made under the request's ``WorkTicket``, so the change and the request
being done are one transaction: a request picked up again after a crash is never done twice.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from bot.app.board_links import BoardLinks
from bot.app.clock_actions import ClockActions
from bot.app.island_actions import IslandActions
from bot.app.pool_keeper import PoolKeeper
from bot.chat.output import ChatError, ChatOutput, Reply, tell
from bot.domain.buttons import (
    ISLAND_BUTTON_ACTION,
    ButtonAction,
    parse_island_button,
    parse_request_button,
)
from bot.domain.commands import (
    Board,
    Capacity,
    Command,
    Extend,
    ListIslands,
    ListScope,
    Logs,
    Pool,
    PoolVerb,
    Restart,
    Start,
    Status,
    Stop,
    Time,
)
from bot.domain.errors import Refusal, UserError
from bot.domain.permissions import Action
from bot.domain.records import Caller, ClockRecord, WorkTicket
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.board_reads import BoardReads
from bot.infra.storage.intake import Intake
from bot.words import board_text, clock_text, island_text, layouts, pool_text, refusals
from bot.words.catalogue import speaking
from bot.words.formatting import sentences

log = logging.getLogger(__name__)

LOG_LINES_BUTTON = 50
MAX_LOG_MESSAGE = 3500  # characters of log shown in a message; longer goes in a file


class ChatWork:
    def __init__(
        self,
        *,
        actions: IslandActions,
        clocks: ClockActions,
        sender: ChatOutput,
        intake: Intake,
        extend_step: timedelta,
        tz: tzinfo = UTC,
        clock: Clock = utcnow,
        board_links: BoardLinks | None = None,
        pools: PoolKeeper | None = None,
    ) -> None:
        self.actions = actions
        self.clocks = clocks
        self.sender = sender
        self.intake = intake
        self.extend_step = extend_step
        self.tz = tz
        self.clock = clock
        self.board_links = board_links
        self.pools = pools

    # ---- what a request asks ------------------------------------------------------------------

    def command(
        self, caller: Caller, command: Command, reply: Reply, ticket: WorkTicket | None
    ) -> None:
        """Carry out a parsed ``/island`` command; refusals are told to the caller."""
        try:
            if isinstance(command, Start):
                self._start(caller, command, reply, ticket)
            elif isinstance(command, Stop | Restart | Extend):
                self.tell(reply, self._change(caller, command, ticket))
            elif isinstance(command, ListIslands | Status | Logs | Capacity | Board):
                self._look(caller, command, reply)
            elif isinstance(command, Time):
                self._time(caller, command, reply, ticket)
            elif isinstance(command, Pool):
                self.tell(reply, self._pool(caller, command))
        except UserError as exc:
            self.tell(reply, refusals.text(exc))

    def _look(
        self,
        caller: Caller,
        command: ListIslands | Status | Logs | Capacity | Board,
        reply: Reply,
    ) -> None:
        """The commands that change nothing; each is audited (answered or refused) before the
        answer goes out, so the audit log has every look in the order people saw them."""
        action, island_id, detail = _audit_of_look(command)
        blocks: list[dict[str, Any]] | None = None
        try:
            if isinstance(command, ListIslands):
                text, blocks = self._list(caller, command)
            elif isinstance(command, Status):
                island = self.actions.status(command.island_id)
                text, blocks = layouts.status_blocks(
                    island,
                    ports=self.actions.ports(island),
                    clock=self.actions.island_clock(island),
                    extend_step=self.extend_step,
                    now=self.clock(),
                    tz=self.tz,
                    memory=self.actions.memory(island.id),
                )
            elif isinstance(command, Logs):
                text = self._logs(command.island_id, command.lines, command.previous, reply)
            elif isinstance(command, Board):
                text = self._board_link(caller)
            else:
                text, blocks = layouts.capacity_blocks(self.actions.capacity())
        except UserError as exc:
            self.actions.record_look(
                caller, action, island_id=island_id, detail=detail, refusal=exc
            )
            raise
        self.actions.record_look(caller, action, island_id=island_id, detail=detail)
        self.tell(reply, text, blocks=blocks)

    def _pool(self, caller: Caller, command: Pool) -> str:
        """The warm pools shown (audited as a look), or an admin's size or refresh."""
        if self.pools is None:  # a chat without the pools' keeper (tests of other parts)
            return pool_text.pools([], branch=command.branch, now=self.clock(), tz=self.tz)
        if command.what == PoolVerb.SIZE and command.branch is not None:
            status = self.pools.set_size(caller, command.branch, command.size)
            return pool_text.size_set(status, by_default=command.size is None)
        if command.what == PoolVerb.REFRESH and command.branch is not None:
            return pool_text.refreshed(command.branch, self.pools.refresh(caller, command.branch))
        shown = [s for s in self.pools.status() if command.branch in (None, s.branch)]
        detail = {} if command.branch is None else {"branch": command.branch}
        self.actions.record_look(caller, Action.POOL, detail=detail)
        return pool_text.pools(shown, branch=command.branch, now=self.clock(), tz=self.tz)

    def _board_link(self, caller: Caller) -> str:
        if self.board_links is None:
            raise UserError(Refusal.NO_BOARD)
        link = self.board_links.for_caller(caller)
        return board_text.board_link(link.url, link.expires_at, self.tz)

    def _change(
        self, caller: Caller, command: Stop | Restart | Extend, ticket: WorkTicket | None
    ) -> str:
        """Stop, restart or extend; returns the answer for the person who asked."""
        if isinstance(command, Stop):
            if command.island_id is None:
                return island_text.stopping(self.actions.stop_mine(caller))
            if self.actions.stop(caller, command.island_id, ticket=ticket):
                return island_text.stopping([command.island_id])
            return island_text.already_stopping(command.island_id)
        if isinstance(command, Restart):
            if self.actions.restart(caller, command.island_id, ticket=ticket):
                return island_text.restarting(command.island_id)
            return island_text.restart_pending(command.island_id)
        done = self.actions.extend(caller, command.island_id, command.by, ticket=ticket)
        return island_text.extended(done.island_id, done.expires_at)

    def _time(self, caller: Caller, command: Time, reply: Reply, ticket: WorkTicket | None) -> None:
        tz = self.tz
        if command.history:
            records = self.clocks.history(command.island_id)
            self.tell(reply, clock_text.clock_history(command.island_id, records, tz))
            return
        if command.when is None:
            self.tell(
                reply, clock_text.clock_view(self.clocks.show(command.island_id), tz, self.clock())
            )
            return
        outcome = self.clocks.shift(caller, command.island_id, command.when, ticket=ticket)
        for old in outcome.superseded:
            self.refresh_clock_request(old)
        request = outcome.request
        if outcome.applied:
            text = (
                clock_text.clock_applied(request.island_id, request.to_offset_s)
                if request.state == "applied"
                else clock_text.clock_failed(request.island_id, request.failure_reason or "")
            )
        else:  # the request's message goes to the channel from the outbox
            owner = self.actions.status(request.island_id).owner_id
            text = clock_text.clock_requested(request.island_id, owner)
        if outcome.backwards and request.state != "failed":
            text = sentences(text, clock_text.clock_backwards(request.island_id))
        self.tell(reply, text)

    def refresh_clock_request(self, request: ClockRecord) -> None:
        """Bring a clock request's channel message up to date (decided, expired...)."""
        if request.chat_channel is None or request.chat_ts is None:
            return
        owner = self.actions.status(request.island_id).owner_id
        with speaking(None):  # the channel's message: in the deployment's language
            text, blocks = layouts.clock_request_message(
                request, owner_id=owner, tz=self.tz, now=self.clock()
            )
        try:
            self.sender.update(request.chat_channel, request.chat_ts, text, blocks=blocks)
        except ChatError as exc:
            log.warning("clock request %d: message not updated: %s", request.id, exc)

    def expire_clock_requests(self) -> None:
        for request in self.clocks.expire():
            self.refresh_clock_request(request)

    def _start(
        self, caller: Caller, command: Start, reply: Reply, ticket: WorkTicket | None
    ) -> None:
        """Take the id and ports; the island's root message goes out from the outbox (first of
        its notices), so it is posted even if this process dies right after."""
        self.actions.start(
            caller,
            command,
            request_key=None if ticket is None else ticket.key,
            reply={
                "user": reply.user,
                "channel": reply.channel,
                "response_url": reply.response_url,
            },
            ticket=ticket,
        )

    def _list(self, caller: Caller, command: ListIslands) -> tuple[str, list[dict[str, Any]]]:
        islands = self.actions.islands(caller, command)
        title = island_text.list_title(command.scope.value, command.branch)
        server = {i.id: max(self.actions.ports(i).values()) for i in islands}
        return layouts.islands_table(title, islands, ports=server, now=self.clock())

    def _logs(self, island_id: int, lines: int, previous: bool, reply: Reply) -> str:
        """The answer to a look at the log; a tail too long for a message is uploaded first."""
        tail = self.actions.logs(island_id, lines=lines, previous=previous)
        text = layouts.logs_text(tail)
        if len(text) <= MAX_LOG_MESSAGE:
            return text
        island = self.actions.status(island_id)
        channel = island.chat_channel or reply.channel or reply.user
        with speaking(None):  # shared in the island's thread: the deployment's language
            title = island_text.log_file_title(island_id, tail.lines)
        self.sender.upload(
            channel,
            filename=f"island-{island_id}{'-previous' if previous else ''}.log",
            content=tail.text + "\n",
            title=title,
            thread_ts=island.chat_thread if island.chat_channel else None,
        )
        kept: list[str] = []
        for line in reversed(tail.text.splitlines()):  # whole lines only, newest last
            if sum(len(k) + 1 for k in kept) + len(line) > MAX_LOG_MESSAGE - 400:
                break
            kept.insert(0, line)
        shown = "\n".join(kept)
        return island_text.logs_cut(tail, len(kept)) + (f"\n```{shown}```" if kept else "")

    def clock_button(
        self, caller: Caller, value: str, approve: bool, reply: Reply, ticket: WorkTicket | None
    ) -> None:
        request_id = parse_request_button(value)
        if request_id is None:
            self.tell(reply, island_text.stale_button())
            return
        try:
            self.actions.check_channel(caller)  # as for every button
            request = self.clocks.decide(caller, request_id, approve=approve, ticket=ticket)
        except UserError as exc:
            self.tell(reply, refusals.text(exc))
            return
        self.refresh_clock_request(request)
        if request.state == "failed":
            self.tell(
                reply, clock_text.clock_failed(request.island_id, request.failure_reason or "")
            )

    def button(  # noqa: PLR0917 - the press, as the front hands it over
        self,
        caller: Caller,
        action_id: str,
        value: str,
        reply: Reply,
        in_home: bool,
        ticket: WorkTicket | None,
    ) -> None:
        """An island's Stop, Extend or Logs button."""
        parsed = parse_island_button(value)
        if parsed is None:
            self.tell(reply, island_text.stale_button())
            return
        island_id, seen = parsed
        try:
            # a button in a channel the bot may not serve: refused, and audited as its action
            self.actions.check_channel(
                caller, ISLAND_BUTTON_ACTION.get(action_id), island_id=island_id
            )
            if action_id == ButtonAction.STOP:
                done = self.actions.stop(caller, island_id, ticket=ticket)
                text = (
                    island_text.stopping([island_id])
                    if done
                    else island_text.already_stopping(island_id)
                )
                self.tell(reply, text)
            elif action_id == ButtonAction.EXTEND:
                result = self.actions.extend(
                    caller,
                    island_id,
                    self.extend_step,
                    seen_expires_at=datetime.fromtimestamp(seen, UTC),
                    ticket=ticket,
                )
                self.tell(
                    reply,
                    island_text.extended(island_id, result.expires_at)
                    if result.changed
                    else island_text.extended_already(island_id, result.expires_at),
                )
            elif action_id == ButtonAction.LOGS:
                bucket = int(time.time() // 10)  # a double click within seconds: once
                if self.intake.first(f"logs:{caller.user_id}:{island_id}:{bucket}"):
                    self._look(caller, Logs(island_id, LOG_LINES_BUTTON), reply)
        except UserError as exc:
            self.tell(reply, refusals.text(exc))
        if in_home:
            self.publish_home(caller.user_id)

    def publish_home(self, user: str) -> None:
        """``user``'s home page of the bot, in their language."""
        with speaking(self.sender.language(user)):
            self._publish_home(user)

    def _publish_home(self, user: str) -> None:
        caller = Caller(user, user)
        mine = self.actions.islands(caller, ListIslands(ListScope.MINE))
        team = self.actions.islands(caller, ListIslands(ListScope.ALL))
        ports = {i.id: self.actions.ports(i) for i in team}
        ports.update({i.id: self.actions.ports(i) for i in mine})
        board = None
        # a link on Home only where any channel may use the bot: the board shows what
        # `/island logs` shows, which a deployment with allowed channels keeps to them
        if self.board_links is not None and not self.actions.policy.allowed_channels:
            name = BoardReads(self.actions.db).names([user]).get(user, user)
            link = self.board_links.for_caller(Caller(user, name))
            board = board_text.board_home(link.url, self.board_links.ttl)
        view = layouts.home_view(
            board=board,
            mine=mine,
            team=team,
            ports=ports,
            memory=self.actions.memories([i.id for i in [*mine, *team]]),
            extend_step=self.extend_step,
            now=self.clock(),
        )
        self.sender.publish_home(user, view)

    def tell(self, reply: Reply, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None:
        """Answer the person who asked; never raises (the log gets why it failed)."""
        try:
            tell(self.sender, reply, text, blocks=blocks)
        except ChatError as exc:
            log.warning("could not answer %s: %s", reply.user, exc)


def _audit_of_look(
    command: ListIslands | Status | Logs | Capacity | Board,
) -> tuple[Action, int | None, dict[str, Any]]:
    """What the audit log says of a command that only looks: action, island, detail."""
    if isinstance(command, ListIslands):
        return Action.LIST, None, {"scope": command.scope.value}
    if isinstance(command, Status):
        return Action.STATUS, command.island_id, {}
    if isinstance(command, Logs):
        return (
            Action.LOGS,
            command.island_id,
            {"lines": command.lines, "previous": command.previous},
        )
    if isinstance(command, Board):
        return Action.BOARD, None, {}
    return Action.CAPACITY, None, {}
