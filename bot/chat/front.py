"""The chat front end, chat-neutral: what ``/island``, the island buttons and the home page do.

The adapters feed it: Slack's bolt listeners (``bot.chat.slack.listeners``) and the embedded
demo's console (``bot.chat.console``). Every entry point answers at once: input is parsed (pure)
and refused on the spot, or *accepted*: recorded in the durable intake (one insert, before the
chat is acknowledged) with what carrying it out needs, then carried out by the bounded work
pool (``bot.chat.work``). A redelivered request finds its key taken and is acknowledged
without being acted on again. A request whose worker died (a crash, an OOM kill, a node
drained) is found by ``recover`` (a job on every replica) and carried out then; the change it
makes and its being done are one transaction, so it is never done twice.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta, tzinfo
from typing import Any

from bot.app.board_links import BoardLinks
from bot.app.clock_actions import ClockActions
from bot.app.island_actions import IslandActions
from bot.app.pool_keeper import PoolKeeper
from bot.chat.output import ChatOutput, Reply
from bot.chat.work import ChatWork
from bot.chat.work_pool import WorkPool, delivery_key
from bot.domain.buttons import CLOCK_ACTIONS, ButtonAction
from bot.domain.commands import CommandError, Help, ParseContext, parse_command
from bot.domain.errors import DatabaseUnavailable, IslandbotError, log_failure
from bot.domain.records import Accepted, Caller, ClockRecord, WorkTicket
from bot.domain.time_source import Clock, utcnow
from bot.infra.storage.intake import Intake
from bot.words import island_text, refusals, usage
from bot.words.catalogue import speaking

log = logging.getLogger(__name__)

# The longest one worker holds a request. A live worker's claim lasts as long as the work (an
# answer may wait minutes behind a paced channel); a dead one's ends with its heartbeat.
CLAIM_TTL = timedelta(minutes=15)
RECOVER_AFTER = timedelta(seconds=2)  # an accepted request not yet taken by its own replica
MAX_ATTEMPTS = 5  # a request that failed this often is answered with an apology and dropped


def retry_after(attempts: int) -> timedelta:
    """How long a request whose work met an expected fault waits before it is tried again:
    5 s, 10 s, 20 s, then 30 s (about a minute and a half over its attempts)."""
    return timedelta(seconds=min(30, 5 * 2 ** max(0, attempts - 1)))


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
        intake: Intake,
        settings: FrontSettings,
        clock: Clock = utcnow,
        board_links: BoardLinks | None = None,
        pools: PoolKeeper | None = None,
    ) -> None:
        self.actions = actions
        self.sender = sender
        self.intake = intake
        self.settings = settings
        self.work = ChatWork(
            actions=actions,
            clocks=clocks,
            sender=sender,
            intake=intake,
            extend_step=settings.extend_step,
            tz=settings.tz,
            clock=clock,
            board_links=board_links,
            pools=pools,
        )
        self.pool = WorkPool(settings.workers, settings.max_pending)
        self._lock = threading.Lock()
        # given back after a fault, not yet recorded: (the request's ticket, retried after)
        self._unreleased: list[tuple[WorkTicket, timedelta]] = []
        self.context = ParseContext(
            branches=tuple(actions.templates.branches), max_ttl=settings.max_ttl, tz=settings.tz
        )

    # ---- entry points (the adapters call these) ---------------------------------------------

    def command(self, caller: Caller, text: str, *, trigger: str, reply: Reply) -> str | None:
        """``/island <text>``: the immediate answer for the caller (in their language), or None
        when the command was accepted (its answers arrive through ``reply``). ``trigger``
        identifies this request: a redelivery with the same trigger is acted on once."""
        try:
            parsed = parse_command(text, self.context)
        except CommandError as exc:
            return self._say(caller.user_id, functools.partial(usage.command_error, exc))
        if not self.actions.policy.channel_allowed(caller.channel):
            allowed = sorted(self.actions.policy.allowed_channels)
            return self._say(
                caller.user_id, functools.partial(refusals.channel_not_allowed, allowed)
            )
        if isinstance(parsed, Help):
            return self._say(
                caller.user_id,
                functools.partial(
                    usage.help_text,
                    parsed.verb,
                    default_ttl=self.settings.default_ttl,
                    max_ttl=self.settings.max_ttl,
                    timezone=str(self.settings.tz),
                ),
            )
        payload = {"caller": _caller(caller), "text": text, "reply": _reply(reply)}
        refused = self._accept(delivery_key("cmd", trigger), "command", payload)
        return None if refused is None else self._say(caller.user_id, refused)

    def _say(self, user: str, words: Callable[[], str]) -> str:
        """An answer for ``user`` alone, in the language their chat says they read."""
        with speaking(self.sender.language(user)):
            return words()

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
        """A press of one of the bot's buttons; False when it was not accepted (the person is
        told why; nothing was done)."""
        if action_id not in set(ButtonAction):
            self.work.tell(reply, self._say(caller.user_id, island_text.stale_button))
            return False
        payload = {
            "caller": _caller(caller),
            "action_id": action_id,
            "value": value,
            "reply": _reply(reply),
            "in_home": in_home,
        }
        refused = self._accept(f"act:{action_id}:{caller.user_id}:{trigger}", "button", payload)
        if refused is not None:
            self.work.tell(reply, self._say(caller.user_id, refused))
        return refused is None

    def home_opened(self, user: str, *, trigger: str) -> bool:
        return self._accept(f"evt:{trigger}", "home", {"user": user}) is None

    def _accept(self, key: str, kind: str, payload: dict[str, Any]) -> Callable[[], str] | None:
        """Record the request (taken for a worker at once when one is free: one write, not
        two), and queue it; None, or the words of why it was not accepted."""
        free = self.pool.reserve()
        ticket: WorkTicket | None = None
        taken: Accepted | None = None
        try:
            if free:
                ticket = self.intake.ticket(key)
                taken = self.intake.take(ticket, kind, payload, ttl=CLAIM_TTL)
                first = taken is not None
            else:
                first = self.intake.accept(key, kind, payload)
        except DatabaseUnavailable as exc:  # take nothing we cannot keep, and say why
            log.debug("request %s not accepted: %s", key, exc)
            if ticket is not None:  # its commit may have happened: give it back, later
                self._release_later(ticket, timedelta(0))
            return functools.partial(island_text.database_down, exc.down_for_s)
        except IslandbotError as exc:  # locked for too long: nothing was begun
            log.warning("request %s not accepted: %s", key, exc)
            return island_text.busy
        finally:
            if free and taken is None:
                self.pool.unreserve()
        if not first:
            log.info("duplicate delivery %s ignored", key)
            return None
        if taken is not None:
            self.pool.submit(functools.partial(self.carry_out, key, taken), reserved=True)
        elif not self.pool.submit(functools.partial(self.carry_out, key)):
            log.info("request %s waits in the intake: the work pool is full", key)
        return None

    # ---- the work, after the answer ---------------------------------------------------------

    def carry_out(self, key: str, taken: Accepted | None = None) -> None:
        """Claim the request and do it (``taken``: claimed when it was accepted); nothing when
        another worker has it or it is done. An expected fault (the database or the cluster
        down, a lost claim) leaves it unfinished and gives it back: ``recover`` carries it out
        again, here or on another replica."""
        try:
            self._carry_out(key, taken)
        except IslandbotError as exc:
            log_failure(log, f"request {key} not carried out now (it is kept)", exc)

    def _carry_out(self, key: str, taken: Accepted | None) -> None:
        self._release_pending()
        accepted = taken or self.intake.claim(key, ttl=CLAIM_TTL)
        if accepted is None:
            return
        try:
            self._do(key, accepted)
        except IslandbotError:
            self._release(accepted.ticket, retry_after(accepted.attempts))
            raise

    def _release(self, ticket: WorkTicket, after: timedelta) -> None:
        """Give a request back after an expected fault, to be tried again ``after`` from now;
        when the database cannot take that either, remember it and try again before the next
        claim or recovery round (its process lives on, so its claim would otherwise hold
        until its cap)."""
        try:
            self.intake.release(ticket, after=after)
        except IslandbotError:
            self._release_later(ticket, after)

    def _release_later(self, ticket: WorkTicket, after: timedelta) -> None:
        """Give the request back before the next claim or recovery round (``_release``)."""
        with self._lock:
            self._unreleased.append((ticket, after))

    def _release_pending(self) -> None:
        with self._lock:
            pending, self._unreleased = self._unreleased, []
        for ticket, after in pending:
            self._release(ticket, after)

    def _do(self, key: str, accepted: Accepted) -> None:
        reply = Reply(**accepted.payload.get("reply", {"user": "", "channel": None}))
        # answers to the person who asked are in their language; what goes to a channel
        # is in the deployment's (``ChatWork`` says so where it posts there)
        who = reply.user or str(accepted.payload.get("user", ""))
        with speaking(self.sender.language(who) if who else None):
            self._answer(key, accepted, reply)

    def _answer(self, key: str, accepted: Accepted, reply: Reply) -> None:
        if accepted.attempts > MAX_ATTEMPTS:
            log.error("request %s failed %d times; dropped", key, accepted.attempts - 1)
            self.work.tell(reply, island_text.sorry())
            self.intake.done(accepted.ticket)
            return
        try:
            self._dispatch(accepted, reply)
        except IslandbotError:
            raise
        except Exception:  # a bug of ours: doing it again would fail again
            log.exception("request %s (%s) failed", key, accepted.kind)
            self.work.tell(reply, island_text.sorry())
        self.intake.done(accepted.ticket)

    def _dispatch(self, accepted: Accepted, reply: Reply) -> None:
        payload, ticket = accepted.payload, accepted.ticket
        if accepted.kind == "home":
            self.work.publish_home(str(payload["user"]))
            return
        caller = Caller(**payload["caller"])
        if accepted.kind == "command":
            try:
                parsed = parse_command(str(payload["text"]), self.context)
            except CommandError as exc:  # the branches changed since it was accepted
                self.work.tell(reply, usage.command_error(exc))
                return
            self.work.command(caller, parsed, reply, ticket)
            return
        action_id, value = str(payload["action_id"]), str(payload["value"])
        if action_id in CLOCK_ACTIONS:
            approve = action_id == ButtonAction.CLOCK_APPROVE
            self.work.clock_button(caller, value, approve, reply, ticket)
        else:
            self.work.button(caller, action_id, value, reply, bool(payload["in_home"]), ticket)

    def recover(self) -> int:
        """Carry out the requests accepted (here or by another replica) whose worker never
        finished; returns how many were queued. A job on every replica."""
        self._release_pending()
        keys = self.intake.unfinished(older_than=RECOVER_AFTER)
        queued = 0
        for key in keys:
            queued += self.pool.submit(functools.partial(self.carry_out, key))
        if keys:
            log.info("recovering %d unfinished requests (%d queued)", len(keys), queued)
        return queued

    def recover_now(self) -> None:
        """``recover``, as a scheduled job."""
        self.recover()

    # ---- what other parts ask of the front ----------------------------------------------------

    def publish_home(self, user: str) -> None:
        self.work.publish_home(user)

    def refresh_clock_request(self, request: ClockRecord) -> None:
        self.work.refresh_clock_request(request)

    def expire_clock_requests(self) -> None:
        self.work.expire_clock_requests()


def _caller(caller: Caller) -> dict[str, Any]:
    return {"user_id": caller.user_id, "name": caller.name, "channel": caller.channel}


def _reply(reply: Reply) -> dict[str, Any]:
    return {"user": reply.user, "channel": reply.channel, "response_url": reply.response_url}
