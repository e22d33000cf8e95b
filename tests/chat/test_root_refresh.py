"""Root messages are rewritten coalesced: many marks, one chat.update of the latest state;
none when nothing changed; the tier's limit respected (through the real SDK and the fake)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from slack_sdk.errors import SlackApiError

from bot.chat.pacing import ChannelQueues, TierPacer
from bot.chat.root_refresh import Rendered, RootRefresher
from bot.chat.slack.sender import SlackSender, web_client
from bot.domain.errors import DatabaseUnavailable
from tests import fakeslack
from tests.fakeslack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with fakeslack.serving() as f:
        yield f


def slack(fake: FakeSlack, burst_s: float = 5.0, **tiers: int) -> SlackSender:
    client = web_client(fakeslack.BOT_TOKEN, base_url=fake.api_url)
    pacer = TierPacer(per_minute=tiers, burst_s=burst_s) if tiers else None
    return SlackSender(client, queues=ChannelQueues(idle_s=1), tiers=pacer)


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0

    def render(self, _channel: str, _ts: str) -> Rendered:
        with self.lock:
            return f"state {self.n}", [], {"n": self.n}


def test_many_marks_become_one_rewrite_of_the_latest_state(fake: FakeSlack) -> None:
    sender = slack(fake)
    ts = sender.post("C0TEAM", "state 0")
    state = State()
    roots = RootRefresher(sender, state.render, linger_s=0.2)
    for n in range(1, 21):
        with state.lock:
            state.n = n
        roots.mark("C0TEAM", ts)
    assert roots.idle(10)
    assert fake.count("chat.update") == 1
    assert fake.posts("C0TEAM")[0]["text"] == "state 20"
    roots.mark("C0TEAM", ts)  # nothing changed since: nothing to rewrite
    assert roots.idle(10)
    assert fake.count("chat.update") == 1
    roots.close()


def test_a_message_marked_while_being_rewritten_is_rewritten_again(fake: FakeSlack) -> None:
    sender = slack(fake)
    ts = sender.post("C0TEAM", "state 0")
    state = State()
    fake.fail("chat.update", delay=0.5)  # the first rewrite is slow to answer
    roots = RootRefresher(sender, state.render, linger_s=0.0)
    with state.lock:
        state.n = 1
    roots.mark("C0TEAM", ts)
    fake.wait_for(lambda: fake.count("chat.update") == 1, 5)
    with state.lock:
        state.n = 2  # changes while the first rewrite is in flight
    roots.mark("C0TEAM", ts)
    assert roots.idle(10)
    assert fake.count("chat.update") == 2
    assert fake.posts("C0TEAM")[0]["text"] == "state 2"
    roots.close()


def test_rewrites_of_many_messages_keep_under_the_tier_with_no_429(fake: FakeSlack) -> None:
    fake.tiers = {"chat.update": 600}  # Slack's Tier 3 sped up for the test: 10/s, burst 10
    fake.tier_burst_s = 1.0
    sender = slack(fake, burst_s=0.5, **{"chat.update": 600})  # the bot's: 90 %, less burst
    messages = [sender.post(f"C0C{n:02d}", "state 0") for n in range(30)]
    state = State()
    with state.lock:
        state.n = 1
    roots = RootRefresher(sender, state.render, linger_s=0.0)
    for n, ts in enumerate(messages):
        roots.mark(f"C0C{n:02d}", ts)
    assert roots.idle(20)
    assert fake.count("chat.update") == 30
    assert fake.rate_limited == 0, fake.rate_limited_by
    roots.close()


def test_the_fake_answers_429_with_retry_after_to_a_client_over_the_tier(
    fake: FakeSlack,
) -> None:
    fake.tiers = {"chat.update": 60}  # 1/s, burst 10
    sender = slack(fake, **{"chat.update": 60_000})  # a pacer far above the tier
    ts = sender.post("C0TEAM", "x")
    client = sender.client
    for n in range(10):
        client.chat_update(channel="C0TEAM", ts=ts, text=f"{n}")
    client.retry_handlers = []  # see the 429 itself
    with pytest.raises(SlackApiError) as caught:
        client.chat_update(channel="C0TEAM", ts=ts, text="one too many")
    assert caught.value.response.status_code == 429
    assert int(caught.value.response.headers["Retry-After"]) >= 1
    assert fake.rate_limited_by["chat.update"] == 1


def test_the_worker_survives_a_failure_of_ours_and_rewrites_what_is_marked_next(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """A bug in rendering one message (any exception, not only the chat's or the database's)
    is logged with its traceback; the worker goes on, so every later mark is still rewritten
    (issue 21, defect 2: it used to die for good, leaving every root message stale)."""
    sender = slack(fake)
    broken, fine = sender.post("C0TEAM", "broken 0"), sender.post("C0TEAM", "state 0")
    state = State()

    def render(channel: str, ts: str) -> Rendered:
        if ts == broken:
            raise KeyError("a bug while rendering")
        return state.render(channel, ts)

    roots = RootRefresher(sender, render, linger_s=0.05)
    roots.mark("C0TEAM", broken)
    assert roots.idle(10)
    state.n = 1
    roots.mark("C0TEAM", fine)
    assert roots.idle(10)
    assert [p["text"] for p in fake.posts("C0TEAM")] == ["broken 0", "state 1"]
    failures = [r for r in caplog.records if r.exc_info and "broken" not in r.getMessage()]
    assert len(failures) == 1 and isinstance(failures[0].exc_info[1], KeyError)  # type: ignore[index]
    roots.close()


def test_a_message_whose_state_cannot_be_read_now_is_rewritten_once_it_can(
    fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    """The database unreachable while rendering: the mark is kept and tried again, without a
    line in the log per try (the database boundary reports the outage once)."""
    sender = slack(fake)
    ts = sender.post("C0TEAM", "state 0")
    state = State()
    down = threading.Event()
    down.set()
    tries = []

    def render(channel: str, ts: str) -> Rendered:
        tries.append(ts)
        if down.is_set():
            if len(tries) >= 3:
                down.clear()
            raise DatabaseUnavailable("render: the database is unreachable")
        return state.render(channel, ts)

    roots = RootRefresher(sender, render, linger_s=0.05, retry_s=0.05)
    state.n = 1
    roots.mark("C0TEAM", ts)
    assert roots.idle(10)
    assert len(tries) == 4
    assert fake.posts("C0TEAM")[0]["text"] == "state 1"
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    roots.close()
