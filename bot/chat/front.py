"""The chat front end, chat-neutral: what ``/island``, the island buttons and the home page do.

The adapters feed it: Slack's bolt listeners (``bot.chat.slack.listeners``) and the embedded
demo's console (``bot.chat.console``). Every entry point answers at once: input is parsed (pure) and
refused or accepted on the spot (the returned text is the immediate answer), and the work goes to
a bounded pool, so a chat's deadline (Slack's 3 seconds) holds however slow the database or the
cluster is. Work that cannot be queued (pool full) is refused, and nothing is done. Duplicated
deliveries are acted on once (``Deliveries``); button presses are idempotent by what they act
on (a stop of a stopping island, an extension of an expiry that already moved, are no-ops).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from bot.app.clock_actions import ClockActions
from bot.app.island_actions import IslandActions
from bot.chat.output import ChatError, ChatOutput, Reply
from bot.chat.work_pool import WorkPool, delivery_key
from bot.domain.buttons import (
    CLOCK_ACTIONS,
    ButtonAction,
    parse_island_button,
    parse_request_button,
)
from bot.domain.commands import (
    Capacity,
    Command,
    CommandError,
    Extend,
    Help,
    ListIslands,
    ListScope,
    Logs,
    ParseContext,
    Restart,
    Start,
    Status,
    Stop,
    Time,
    parse_command,
)
from bot.domain.errors import UserError
from bot.domain.permissions import Action
from bot.domain.records import Caller, ClockRecord, IslandRecord
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.deliveries import Deliveries
from bot.words import clock_text, island_text, layouts, refusals, usage

log = logging.getLogger(__name__)

LOG_LINES_BUTTON = 50
MAX_LOG_MESSAGE = 3500  # characters of log shown in a message; longer goes in a file


@dataclass(frozen=True)
class FrontSettings:
    default_ttl: timedelta
    max_ttl: timedelta
    extend_step: timedelta
    workers: int = 8
    max_pending: int = 500
    tz: tzinfo = UTC  # the team's time zone


class ChatFront:
    def __init__(
        self,
        *,
        actions: IslandActions,
        clocks: ClockActions,
        sender: ChatOutput,
        deliveries: Deliveries,
        settings: FrontSettings,
        clock: Clock = utcnow,
    ) -> None:
        self.actions = actions
        self.clocks = clocks
        self.sender = sender
        self.deliveries = deliveries
        self.settings = settings
        self.clock = clock
        self.pool = WorkPool(settings.workers, settings.max_pending)
        self.context = ParseContext(
            branches=tuple(actions.templates.branches), max_ttl=settings.max_ttl, tz=settings.tz
        )

    # ---- entry points (the adapters call these) ---------------------------------------------

    def command(self, caller: Caller, text: str, *, trigger: str, reply: Reply) -> str | None:
        """``/island <text>``: the immediate answer for the caller, or None when the command
        was accepted and its work queued (its answers arrive through ``reply``). ``trigger``
        identifies this request: a redelivery with the same trigger is acted on once."""
        try:
            parsed = parse_command(text, self.context)
        except CommandError as exc:
            return usage.command_error(exc)
        if not self.actions.policy.channel_allowed(caller.channel):
            return refusals.channel_not_allowed(sorted(self.actions.policy.allowed_channels))
        if isinstance(parsed, Help):
            return usage.help_text(
                parsed.verb,
                default_ttl=self.settings.default_ttl,
                max_ttl=self.settings.max_ttl,
                timezone=str(self.settings.tz),
            )
        key = delivery_key("cmd", trigger)
        if not self.pool.submit(lambda: self._run_command(key, caller, parsed, reply)):
            return island_text.BUSY
        return None

    def button(
        self,
        caller: Caller,
        action_id: str,
        value: str,
        *,
        trigger: str,
        reply: Reply,
        in_home: bool = False,
    ) -> bool:
        """A press of one of the bot's buttons; False when the work could not be queued."""
        key = f"act:{action_id}:{caller.user_id}:{trigger}"
        if action_id in CLOCK_ACTIONS:
            approve = action_id == ButtonAction.CLOCK_APPROVE
            return self.pool.submit(
                lambda: self._once(key, lambda: self._clock_button(caller, value, approve, reply))
            )
        return self.pool.submit(
            lambda: self._run_button(key, caller, action_id, value, reply, in_home)
        )

    def home_opened(self, user: str, *, trigger: str) -> bool:
        key = f"evt:{trigger}"
        return self.pool.submit(lambda: self._once(key, lambda: self.publish_home(user)))

    # ---- the work, after the answer ---------------------------------------------------------

    def _once(self, key: str, work: Callable[[], None]) -> None:
        if not self.deliveries.first(key):
            log.info("duplicate delivery %s ignored", key)
            return
        work()

    def _run_command(self, key: str, caller: Caller, command: Command, reply: Reply) -> None:
        def work() -> None:
            try:
                self._command(key, caller, command, reply)
            except UserError as exc:
                self._tell(reply, refusals.text(exc))
            except Exception:
                log.exception("/island %s from %s failed", type(command).__name__, caller.user_id)
                self._tell(reply, island_text.SORRY)

        self._once(key, work)

    def _command(self, key: str, caller: Caller, command: Command, reply: Reply) -> None:
        if isinstance(command, Start):
            self._start(key, caller, command, reply)
        elif isinstance(command, Stop | Restart | Extend):
            self._tell(reply, self._change(caller, command))
        elif isinstance(command, ListIslands | Status | Logs | Capacity):
            self._look(caller, command, reply)
        elif isinstance(command, Time):
            self._time(caller, command, reply)

    def _look(
        self, caller: Caller, command: ListIslands | Status | Logs | Capacity, reply: Reply
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
                    extend_step=self.settings.extend_step,
                    now=self.clock(),
                )
            elif isinstance(command, Logs):
                text = self._logs(command.island_id, command.lines, command.previous, reply)
            else:
                text, blocks = layouts.capacity_blocks(self.actions.capacity())
        except UserError as exc:
            self.actions.record_look(
                caller, action, island_id=island_id, detail=detail, refusal=refusals.text(exc)
            )
            raise
        self.actions.record_look(caller, action, island_id=island_id, detail=detail)
        self._tell(reply, text, blocks=blocks)

    def _change(self, caller: Caller, command: Stop | Restart | Extend) -> str:
        """Stop, restart or extend; returns the answer for the person who asked."""
        if isinstance(command, Stop):
            if command.island_id is None:
                return island_text.stopping(self.actions.stop_mine(caller))
            if self.actions.stop(caller, command.island_id):
                return island_text.stopping([command.island_id])
            return island_text.already_stopping(command.island_id)
        if isinstance(command, Restart):
            if self.actions.restart(caller, command.island_id):
                return island_text.restarting(command.island_id)
            return island_text.restart_pending(command.island_id)
        done = self.actions.extend(caller, command.island_id, command.by)
        return island_text.extended(done.island_id, done.expires_at)

    def _time(self, caller: Caller, command: Time, reply: Reply) -> None:
        tz = self.settings.tz
        if command.history:
            records = self.clocks.history(command.island_id)
            self._tell(reply, clock_text.clock_history(command.island_id, records, tz))
            return
        if command.when is None:
            self._tell(
                reply, clock_text.clock_view(self.clocks.show(command.island_id), tz, self.clock())
            )
            return
        outcome = self.clocks.shift(caller, command.island_id, command.when)
        for old in outcome.superseded:
            self.refresh_clock_request(old)
        request = outcome.request
        if outcome.applied:
            text = (
                clock_text.clock_applied(request.island_id, request.to_offset_s)
                if request.state == "applied"
                else clock_text.clock_failed(request.island_id, request.failure_reason or "")
            )
        else:
            owner = self.actions.status(request.island_id).owner_id
            channel = request.chat_channel or caller.channel or caller.user_id
            text_, blocks = layouts.clock_request_message(
                request, owner_id=owner, tz=tz, now=self.clock()
            )
            ts = self.sender.post(channel, text_, blocks=blocks)
            self.clocks.attach_message(request.id, channel, ts)
            text = clock_text.clock_requested(request.island_id, owner)
        if outcome.backwards and request.state != "failed":
            text += " " + clock_text.clock_backwards(request.island_id)
        self._tell(reply, text)

    def refresh_clock_request(self, request: ClockRecord) -> None:
        """Bring a clock request's channel message up to date (decided, expired...)."""
        if request.chat_channel is None or request.chat_ts is None:
            return
        owner = self.actions.status(request.island_id).owner_id
        text, blocks = layouts.clock_request_message(
            request, owner_id=owner, tz=self.settings.tz, now=self.clock()
        )
        try:
            self.sender.update(request.chat_channel, request.chat_ts, text, blocks=blocks)
        except ChatError as exc:
            log.warning("clock request %d: message not updated: %s", request.id, exc)

    def expire_clock_requests(self) -> None:
        for request in self.clocks.expire():
            self.refresh_clock_request(request)

    def _start(self, key: str, caller: Caller, command: Start, reply: Reply) -> None:
        allocation = self.actions.start(caller, command, request_key=key)
        island = self.actions.status(allocation.island_id)
        if island.chat_thread is not None:
            return  # this start was handled already (a retried delivery)
        text, blocks = self._root(island)
        try:
            ts = self.sender.post(str(caller.channel), text, blocks=blocks)
            self.actions.attach_thread(island.id, str(caller.channel), ts)
        except ChatError as exc:  # not in the channel, archived...: follow up in a DM
            log.warning("island %d: root message not posted: %s", island.id, exc)
            ts = self.sender.post(caller.user_id, text, blocks=blocks)
            self.actions.attach_thread(island.id, caller.user_id, ts)
            self._tell(reply, island_text.started_elsewhere(island.id, exc.error or str(exc)))

    def _root(self, island: IslandRecord) -> tuple[str, list[dict[str, Any]]]:
        return layouts.root_message(
            island,
            ports=self.actions.ports(island),
            clock=self.actions.island_clock(island),
            extend_step=self.settings.extend_step,
            now=self.clock(),
        )

    def _list(self, caller: Caller, command: ListIslands) -> tuple[str, list[dict[str, Any]]]:
        islands = self.actions.islands(caller, command)
        title = {
            ListScope.ALL: "Live islands",
            ListScope.MINE: "Your live islands",
            ListScope.BRANCH: f"Live {command.branch} islands",
        }[command.scope]
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
        self.sender.upload(
            channel,
            filename=f"island-{island_id}{'-previous' if previous else ''}.log",
            content=tail.text + "\n",
            title=f"Island #{island_id} log, last {tail.lines} lines",
            thread_ts=island.chat_thread if island.chat_channel else None,
        )
        kept: list[str] = []
        for line in reversed(tail.text.splitlines()):  # whole lines only, newest last
            if sum(len(k) + 1 for k in kept) + len(line) > MAX_LOG_MESSAGE - 400:
                break
            kept.insert(0, line)
        shown = "\n".join(kept)
        return island_text.logs_cut(tail, len(kept)) + (f"\n```{shown}```" if kept else "")

    def _clock_button(self, caller: Caller, value: str, approve: bool, reply: Reply) -> None:
        request_id = parse_request_button(value)
        if request_id is None:
            self._tell(reply, island_text.stale_button())
            return
        try:
            request = self.clocks.decide(caller, request_id, approve=approve)
        except UserError as exc:
            self._tell(reply, refusals.text(exc))
            return
        self.refresh_clock_request(request)
        if request.state == "failed":
            self._tell(
                reply, clock_text.clock_failed(request.island_id, request.failure_reason or "")
            )

    def _run_button(  # noqa: PLR0917 - private, called from one place
        self, key: str, caller: Caller, action_id: str, value: str, reply: Reply, in_home: bool
    ) -> None:
        def work() -> None:
            parsed = parse_island_button(value)
            if parsed is None:
                self._tell(reply, island_text.stale_button())
                return
            island_id, seen = parsed
            try:
                if action_id == ButtonAction.STOP:
                    done = self.actions.stop(caller, island_id)
                    text = (
                        island_text.stopping([island_id])
                        if done
                        else island_text.already_stopping(island_id)
                    )
                    self._tell(reply, text)
                elif action_id == ButtonAction.EXTEND:
                    result = self.actions.extend(
                        caller,
                        island_id,
                        self.settings.extend_step,
                        seen_expires_at=datetime.fromtimestamp(seen, UTC),
                    )
                    self._tell(
                        reply,
                        island_text.extended(island_id, result.expires_at)
                        if result.changed
                        else island_text.extended_already(island_id, result.expires_at),
                    )
                elif action_id == ButtonAction.LOGS:
                    bucket = int(time.time() // 10)  # a double click within seconds: once
                    if self.deliveries.first(f"logs:{caller.user_id}:{island_id}:{bucket}"):
                        self._tell(reply, self._logs(island_id, LOG_LINES_BUTTON, False, reply))
            except UserError as exc:
                self._tell(reply, refusals.text(exc))
            except Exception:
                log.exception("button %s on island %d failed", action_id, island_id)
                self._tell(reply, island_text.SORRY)
            if in_home:
                self.publish_home(caller.user_id)

        self._once(key, work)

    def publish_home(self, user: str) -> None:
        caller = Caller(user, user)
        mine = self.actions.islands(caller, ListIslands(ListScope.MINE))
        team = self.actions.islands(caller, ListIslands(ListScope.ALL))
        ports = {i.id: self.actions.ports(i) for i in team}
        ports.update({i.id: self.actions.ports(i) for i in mine})
        view = layouts.home_view(
            mine=mine,
            team=team,
            ports=ports,
            extend_step=self.settings.extend_step,
            now=self.clock(),
        )
        self.sender.publish_home(user, view)

    def _tell(self, reply: Reply, text: str, *, blocks: list[dict[str, Any]] | None = None) -> None:
        """Answer the person who asked; never raises (the log gets why it failed)."""
        try:
            if reply.response_url:
                self.sender.respond(reply.response_url, text, blocks=blocks)
            elif reply.channel:
                self.sender.ephemeral(reply.channel, reply.user, text, blocks=blocks)
            else:
                self.sender.post(reply.user, text, blocks=blocks)
        except ChatError as exc:
            log.warning("could not answer %s: %s", reply.user, exc)


def _audit_of_look(
    command: ListIslands | Status | Logs | Capacity,
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
    return Action.CAPACITY, None, {}
