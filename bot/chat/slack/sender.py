"""Everything islandbot sends to Slack's Web API goes through here (the Slack ``ChatOutput``).

- One FIFO queue per channel, drained by its own thread: a channel's messages go out in the
  order they were handed in (a thread's replies stay in order), at most ``rate`` posts per
  second with a small burst, a little under what Slack allows (about one message per second
  per channel, short bursts tolerated), so that 429s stay the exception.
- ``slack_sdk``'s retry handlers retry 429 (sleeping ``Retry-After``, up to 10 s in all; a
  longer wait is the caller's, as ``SlackError.retry_after``), 500/503 and dropped
  connections; what still fails becomes ``SlackError`` (the library's errors stop here).
- ``post`` can tag a message with a key in its metadata and, when asked, first look in the
  thread for a message with that key: a notice whose earlier attempt may have reached Slack is
  not posted twice.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from bot.chat.output import Blocks
from bot.chat.pacing import NOT_LIVE, ChannelQueues, TierPacer, still_live
from bot.chat.slack.errors import SlackError
from bot.chat.slack.locales import SlackLocales
from bot.chat.slack.tiers import slack_tiers
from bot.domain.notice_routes import Pace
from bot.infra import metrics

log = logging.getLogger(__name__)

T = TypeVar("T")
NOTICE_EVENT = "islandbot_notice"
# Slack's answers that will not change if the call is made again as it is (``ChatError``'s
# ``permanent``); anything else (5xx, ratelimited, fatal_error, internal_error, a dropped
# connection, but also a bad token, which stops every call until it is fixed) may pass later.
# The channel cannot take the bot's messages at all (another channel may):
UNREACHABLE = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "channel_is_archived",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
    }
)
# The message itself is refused (a plainer, shorter one may pass): its text over 40,000
# characters, its blocks invalid or too long (50 blocks, 3,000 characters a section's text),
# its metadata invalid
MALFORMED = frozenset(
    {
        "msg_too_long",
        "msg_blocks_too_long",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "no_text",
        "too_many_attachments",
        "invalid_attachments",
    }
)
# The person or conversation cannot be written to at all
REFUSED = frozenset(
    {
        "cannot_dm_bot",
        "user_not_found",
        "user_disabled",
        "messages_tab_disabled",
        "cannot_reply_to_message",
    }
)
DEFAULT_API_URL = "https://slack.com/api/"
HTTP_TIMEOUT_S = 15  # one HTTP request to Slack
HTTP_RETRIES = 4  # a call retried this often by the SDK (429 within the budget, 5xx, resets)
RETRY_AFTER_BUDGET_S = 10.0  # Retry-After slept in place, in all; a longer one is handed back


def _metadata(key: str | None, meta: Mapping[str, Any] | None) -> dict[str, Any]:
    payload = {**(meta or {}), **({"key": key} if key is not None else {})}
    return {"event_type": NOTICE_EVENT, "event_payload": payload}


class _Counted:
    """Counts each retry the handler decides on (``islandbot_slack_api_retries_total``), and
    retries only while the process still holds what it held when the call was queued
    (``still_live``), before its wait and after it: a call retried for long (Retry-After,
    a pause) must not go out after another replica has taken its work over."""

    reason = "retry"

    def can_retry(self, **kwargs: Any) -> bool:
        return still_live() and bool(super().can_retry(**kwargs))  # type: ignore[misc]

    def prepare_for_next_attempt(self, **kwargs: Any) -> None:
        metrics.SLACK_RETRIES.labels(reason=self.reason).inc()
        super().prepare_for_next_attempt(**kwargs)  # type: ignore[misc]
        if not still_live():
            raise SlackError(f"retry: {NOT_LIVE}")


def retry_after_s(headers: Mapping[str, Any] | None) -> float | None:
    """The ``Retry-After`` of an answer, however its name is cased (a header may come as a
    list of values)."""
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            first = value[0] if isinstance(value, list | tuple) and value else value
            with contextlib.suppress(TypeError, ValueError):
                return float(first)
    return None


class _RateLimited(_Counted, RateLimitErrorRetryHandler):
    """Retries a 429 in place only while the waits add up to ``max_wait_s``: a longer wait is
    handed back to the caller (``SlackError.retry_after``), whose durable backoff (the outbox)
    waits without holding a thread or a claim."""

    reason = "rate_limited"

    def __init__(self, *, max_retry_count: int, max_wait_s: float) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait_s = max_wait_s

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = retry_after_s(response.headers) or 1.0
        return (state.current_attempt + 1) * wait <= self.max_wait_s


class _ServerError(_Counted, ServerErrorRetryHandler):
    reason = "server_error"


class _Connection(_Counted, ConnectionErrorRetryHandler):
    reason = "connection"


def retry_handlers(
    max_retries: int = HTTP_RETRIES, max_wait_s: float = RETRY_AFTER_BUDGET_S
) -> list[Any]:
    return [
        _RateLimited(max_retry_count=max_retries, max_wait_s=max_wait_s),
        _ServerError(max_retry_count=max_retries),
        _Connection(max_retry_count=2),
    ]


def web_client(
    token: str,
    *,
    base_url: str = DEFAULT_API_URL,
    timeout_s: int = HTTP_TIMEOUT_S,
    max_retries: int = HTTP_RETRIES,
) -> WebClient:
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout_s,
        retry_handlers=retry_handlers(max_retries),
    )


class SlackSender:
    def __init__(
        self,
        client: WebClient,
        *,
        queues: ChannelQueues | None = None,
        tiers: TierPacer | None = None,
    ) -> None:
        self.client = client
        self.queues = queues or ChannelQueues(name="slack")
        self.tiers = tiers or slack_tiers()
        self.locales = SlackLocales(client, self.tiers)
        self._direct: dict[str, str] = {}  # user id -> their direct conversation's id
        self._users: dict[str, str] = {}  # direct conversation's id -> its user's id

    def _queue_of(self, channel: str) -> str:
        """One FIFO per conversation: a direct conversation is queued under its user's id,
        whether it is addressed by the user (``U...``: a notice's first try lands there) or
        by its ``D...`` id (a retry, which must look up the history, or an update). Two
        queues would pace it twice over and let a retry look before the first try is out."""
        return self._users.get(channel, channel)

    def _learn(self, user: str, conversation: str) -> None:
        self._direct[user] = conversation
        self._users[conversation] = user

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        self.tiers.wait(what)
        try:
            return fn(**kwargs)
        except SlackApiError as exc:
            response = exc.response
            error = response.get("error") if response is not None else None
            metrics.SLACK_ERRORS.labels(method=what, error=str(error or "http")).inc()
            retry_after = None
            if response is not None and response.status_code == 429:
                retry_after = retry_after_s(response.headers)
            raise SlackError(
                f"{what}: {error or exc}",
                error=error,
                unreachable=error in UNREACHABLE,
                malformed=error in MALFORMED,
                permanent=error in REFUSED,
                retry_after=retry_after,
            ) from exc
        except (SlackClientError, OSError) as exc:
            metrics.SLACK_ERRORS.labels(method=what, error="connection").inc()
            raise SlackError(f"{what}: {exc}") from exc

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
        """Post (in ``thread_ts``'s thread if given) and return the message ts. With ``key``
        and ``look_first``, a message in the thread already carrying ``key`` is returned
        instead of posting again. ``key`` and ``meta`` go in the message's metadata."""

        def send() -> str:
            if key is not None and look_first:
                found = self._find(channel, thread_ts, key)
                if found is not None:
                    log.info("notice %s was already posted as %s", key, found)
                    return found
            kwargs: dict[str, Any] = {"channel": channel, "text": text}
            if blocks is not None:
                kwargs["blocks"] = list(blocks)
            if thread_ts is not None:
                kwargs["thread_ts"] = thread_ts
                kwargs["reply_broadcast"] = broadcast
            if key is not None or meta:
                kwargs["metadata"] = _metadata(key, meta)
            response = self._call("chat.postMessage", self.client.chat_postMessage, **kwargs)
            if channel.startswith(("U", "W")) and response.get("channel"):
                self._learn(channel, str(response["channel"]))  # the D... it landed in
            return str(response["ts"])

        return self.queues.run(self._queue_of(channel), send)

    def find(self, channel: str, key: str, *, thread_ts: str | None = None) -> str | None:
        return self.queues.run(
            self._queue_of(channel), lambda: self._find(channel, thread_ts, key), paced=False
        )

    def _find(self, channel: str, thread_ts: str | None, key: str) -> str | None:
        """The message carrying ``key`` in the thread (or, without one, among the channel's
        recent messages: a root message), or None."""
        cursor = None
        for _page in range(20 if thread_ts is not None else 5):
            if thread_ts is not None:
                response = self._call(
                    "conversations.replies",
                    self.client.conversations_replies,
                    channel=channel,
                    ts=thread_ts,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
            else:
                response = self._call(
                    "conversations.history",
                    self.client.conversations_history,
                    channel=channel,
                    include_all_metadata=True,
                    limit=200,
                    cursor=cursor,
                )
            for message in response.get("messages", []):
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                if payload.get("key") == key:
                    return str(message["ts"])
            cursor = (response.get("response_metadata") or {}).get("next_cursor")
            if not cursor:
                return None
        return None

    def update(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        blocks: Blocks | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        def send() -> None:
            kwargs: dict[str, Any] = {"channel": channel, "ts": ts, "text": text}
            if blocks is not None:
                kwargs["blocks"] = list(blocks)
            if meta:
                kwargs["metadata"] = _metadata(None, meta)
            self._call("chat.update", self.client.chat_update, **kwargs)

        self.queues.run(self._queue_of(channel), send, paced=False)

    def ephemeral(
        self, channel: str, user: str, text: str, *, blocks: Blocks | None = None
    ) -> None:
        def send() -> None:
            kwargs: dict[str, Any] = {"channel": channel, "user": user, "text": text}
            if blocks is not None:
                kwargs["blocks"] = list(blocks)
            self._call("chat.postEphemeral", self.client.chat_postEphemeral, **kwargs)

        self.queues.run(self._queue_of(channel), send)

    def respond(self, response_url: str, text: str, *, blocks: Blocks | None = None) -> None:
        """Answer only the person who asked, through the request's ``response_url``."""
        hook = WebhookClient(response_url, timeout=HTTP_TIMEOUT_S, retry_handlers=retry_handlers())
        try:
            response = hook.send(
                text=text,
                blocks=[dict(b) for b in blocks] if blocks is not None else None,
                response_type="ephemeral",
                replace_original=False,
            )
        except (SlackClientError, OSError) as exc:
            raise SlackError(f"response_url: {exc}") from exc
        if response.status_code != 200:
            raise SlackError(f"response_url: HTTP {response.status_code} {response.body[:200]}")

    def upload(
        self, channel: str, *, filename: str, content: str, title: str, thread_ts: str | None
    ) -> None:
        def send() -> None:
            kwargs: dict[str, Any] = {
                "channel": channel,
                "filename": filename,
                "content": content,
                "title": title,
            }
            if thread_ts is not None:
                kwargs["thread_ts"] = thread_ts
            self._call("files.upload", self.client.files_upload_v2, **kwargs)

        self.queues.run(self._queue_of(channel), send)

    def direct(self, user: str) -> str:
        """conversations.open: the IM channel's id (``D...``), which chat.update and the
        history methods need (a user id is not a channel to them)."""
        known = self._direct.get(user)
        if known is not None:
            return known
        response = self._call("conversations.open", self.client.conversations_open, users=user)
        channel = response.get("channel")
        if not isinstance(channel, dict) or not channel.get("id"):  # not Slack's answer
            raise SlackError(f"conversations.open for {user}: no channel in {response.data!r}")
        self._learn(user, str(channel["id"]))
        return self._direct[user]

    def language(self, user: str) -> str | None:
        return self.locales.language(user)

    def pace(self) -> Pace:
        """The pace each channel's queue keeps to (``ChannelQueues``: posts a second, burst)."""
        return Pace(per_second=self.queues.rate, burst=self.queues.burst)

    def publish_home(self, user: str, view: Mapping[str, Any]) -> None:
        self._call("views.publish", self.client.views_publish, user_id=user, view=dict(view))
