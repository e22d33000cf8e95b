"""The outbound path through the real slack_sdk against the fake Web API: pacing per channel,
429 and 5xx retried, order kept, errors wrapped, a notice never posted twice."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from bot.chat.output import ChatError
from bot.chat.pacing import ChannelQueues
from bot.chat.slack.sender import (
    SlackError,
    SlackSender,
    retry_after_s,
    web_client,
)
from bot.infra import metrics
from bot.infra.storage.database import Database
from bot.infra.storage.heartbeat import Heartbeat
from tests import fakeslack
from tests.fakeslack import FakeSlack


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with fakeslack.serving() as f:
        yield f


def sender(fake: FakeSlack, rate: float = 50.0, burst: float = 3.0) -> SlackSender:
    client = web_client(fakeslack.BOT_TOKEN, base_url=fake.api_url)
    return SlackSender(client, queues=ChannelQueues(rate=rate, burst=burst, idle_s=1))


def _metric(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_429_is_retried_after_retry_after(fake: FakeSlack) -> None:
    retries = _metric("islandbot_slack_api_retries_total", reason="rate_limited")
    fake.fail("chat.postMessage", status=429, retry_after=1, count=2)
    began = time.monotonic()
    ts = sender(fake).post("C0TEAM", "hello")
    assert time.monotonic() - began >= 2.0  # slept Retry-After twice
    assert fake.count("chat.postMessage") == 3
    assert [m["ts"] for m in fake.posts("C0TEAM")] == [ts]
    assert _metric("islandbot_slack_api_retries_total", reason="rate_limited") == retries + 2


def test_a_long_retry_after_is_handed_back_not_slept(fake: FakeSlack) -> None:
    """Waiting 30 s in place would hold a thread and outlive a notice's claim: the caller
    gets the wait (the outbox backs off durably), however Slack cases the header."""
    fake.fail("chat.postMessage", status=429, retry_after=30, count=1)
    began = time.monotonic()
    with pytest.raises(SlackError) as caught:
        sender(fake).post("C0TEAM", "hello")
    assert caught.value.retry_after == 30
    assert time.monotonic() - began < 5 and fake.count("chat.postMessage") == 1
    assert retry_after_s({"retry-after": "7"}) == retry_after_s({"Retry-After": ["7"]}) == 7


def test_server_errors_are_retried(fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", status=500, count=2)
    fake.fail("chat.update", status=503, count=1)
    s = sender(fake)
    ts = s.post("C0TEAM", "hello")
    s.update("C0TEAM", ts, "edited")
    assert fake.posts("C0TEAM")[0]["text"] == "edited"


def test_errors_that_retrying_cannot_fix_are_wrapped(fake: FakeSlack) -> None:
    errors = _metric(
        "islandbot_slack_api_errors_total", method="chat.postMessage", error="channel_not_found"
    )
    with pytest.raises(SlackError) as caught:
        sender(fake).post("C0GONE", "hello")
    assert caught.value.error == "channel_not_found"
    assert (
        _metric(
            "islandbot_slack_api_errors_total",
            method="chat.postMessage",
            error="channel_not_found",
        )
        == errors + 1
    )
    fake.fail("chat.postMessage", status=500, count=10)
    client = web_client(fakeslack.BOT_TOKEN, base_url=fake.api_url, max_retries=1)
    with pytest.raises(SlackError):
        SlackSender(client).post("C0TEAM", "hello")
    assert fake.count("chat.postMessage") == 1 + 2  # the first, then one retry


def test_slacks_answers_are_told_apart_as_permanent_or_transient(fake: FakeSlack) -> None:
    """What will never pass as it is (the channel gone or archived, the message too long or
    its blocks invalid, a bot that cannot be written to) is ``permanent``, saying what to
    change; Slack down, a bad token or an unknown error is transient (issue 21, defect 7)."""
    fake.refuse("is_archived", channel="C0OLD")
    fake.refuse("msg_too_long", match="long")
    fake.refuse("invalid_blocks", match="boxed", with_blocks=True)
    s = sender(fake)

    def refusal(call: Callable[[], object]) -> tuple[bool, bool, bool]:
        with pytest.raises(SlackError) as caught:
            call()
        e = caught.value
        return e.permanent, e.unreachable, e.malformed

    assert refusal(lambda: s.post("C0OLD", "hi")) == (True, True, False)
    assert refusal(lambda: s.post("C0GONE", "hi")) == (True, True, False)
    assert refusal(lambda: s.post("C0TEAM", "too long")) == (True, False, True)
    block = {"type": "section", "text": {"type": "mrkdwn", "text": "boxed"}}
    assert refusal(lambda: s.post("C0TEAM", "boxed", blocks=[block])) == (True, False, True)
    s.post("C0TEAM", "boxed")  # its plain text passes, as with Slack
    fake.fail("conversations.open", error="cannot_dm_bot")
    assert refusal(lambda: s.direct("U0BOTUSER")) == (True, False, False)
    fake.fail("chat.postMessage", error="fatal_error")
    assert refusal(lambda: s.post("C0TEAM", "hi")) == (False, False, False)
    fake.fail("chat.postMessage", status=503, count=1)
    client = web_client(fakeslack.BOT_TOKEN, base_url=fake.api_url, max_retries=0)
    assert refusal(lambda: SlackSender(client).post("C0TEAM", "hi")) == (False, False, False)
    bad = web_client("xoxp-not-a-bot", base_url=fake.api_url)
    assert refusal(lambda: SlackSender(bad).post("C0TEAM", "hi")) == (False, False, False)
    assert [(m, e) for m, e, _p in fake.refused] == [
        ("chat.postMessage", "is_archived"),
        ("chat.postMessage", "msg_too_long"),
        ("chat.postMessage", "invalid_blocks"),
    ]


def test_bad_token_is_an_error_not_a_crash(fake: FakeSlack) -> None:
    client = web_client("xoxp-not-a-bot", base_url=fake.api_url)
    with pytest.raises(SlackError) as caught:
        SlackSender(client).post("C0TEAM", "hi")
    assert caught.value.error == "invalid_auth"


def test_a_fast_burst_is_paced_so_slack_never_says_429(fake: FakeSlack) -> None:
    fake.channel_rate, fake.channel_burst = 5.0, 3  # Slack's pace, sped up for the test
    s = sender(fake, rate=4.5, burst=2)  # as the bot runs: a little under Slack's pace
    began = time.monotonic()
    threads = [
        threading.Thread(target=s.post, args=(channel, f"{channel} {i}"))
        for i in range(12)
        for channel in ("C0ONE", "C0TWO")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.monotonic() - began
    assert fake.rate_limited == 0
    assert len(fake.posts("C0ONE")) == 12 and len(fake.posts("C0TWO")) == 12
    assert 2.0 <= elapsed < 5.0  # (12 - 2 burst) / 4.5 per second; channels in parallel


def test_a_client_that_ignores_the_pace_gets_429_and_still_delivers_everything(
    fake: FakeSlack,
) -> None:
    fake.channel_rate, fake.channel_burst = 5.0, 2
    s = sender(fake, rate=1000.0, burst=1000)  # no pacing of our own: the retries must cope
    for i in range(4):
        s.post("C0TEAM", f"m{i}")
    assert fake.rate_limited > 0
    assert [m["text"] for m in fake.posts("C0TEAM")] == [f"m{i}" for i in range(4)]


def test_a_threads_replies_keep_their_order_under_failures(fake: FakeSlack) -> None:
    s = sender(fake)
    root = s.post("C0TEAM", "root")
    fake.fail("chat.postMessage", status=429, retry_after=1, count=1)
    done: list[str] = []
    lock = threading.Lock()

    def reply(i: int) -> None:
        s.post("C0TEAM", f"r{i}", thread_ts=root)
        with lock:
            done.append(f"r{i}")

    for i in range(5):  # handed in order, one after the other, from different threads
        threading.Thread(target=reply, args=(i,)).start()
        time.sleep(0.05)
    fake.wait_for(lambda: len(fake.thread("C0TEAM", root)) == 5, 15)
    assert [m["text"] for m in fake.thread("C0TEAM", root)] == [f"r{i}" for i in range(5)]


def test_a_retried_notice_is_not_posted_twice(fake: FakeSlack) -> None:
    s = sender(fake)
    root = s.post("C0TEAM", "root")
    first = s.post("C0TEAM", "ready!", thread_ts=root, key="outbox-7")
    # the bot died before recording the post: the retry looks first and finds it
    again = s.post("C0TEAM", "ready!", thread_ts=root, key="outbox-7", look_first=True)
    assert again == first
    assert len(fake.thread("C0TEAM", root)) == 1
    assert fake.count("conversations.replies") == 1
    other = s.post("C0TEAM", "expiring", thread_ts=root, key="outbox-8", look_first=True)
    assert other != first and len(fake.thread("C0TEAM", root)) == 2


def test_a_direct_conversation_is_one_queue_however_it_is_named(fake: FakeSlack) -> None:
    """A notice to an owner goes to their user id on its first try (it lands in the direct
    conversation) and to the conversation's ``D...`` id on a retry (history needs it): both
    wait in the one FIFO of that conversation, so the retry looks for the first try only once
    it is out, and finds it (issue 21, defect 8: two queues, paced apart, and a notice
    posted twice)."""
    slack = sender(fake, rate=1000.0, burst=100.0)
    dm = slack.direct("U0ANN")  # known, as after any earlier notice to ann
    fake.fail("chat.postMessage", delay=1.0, match="slow")  # ann's queue is busy a while
    posting = threading.Thread(target=slack.post, args=("U0ANN", "slow one"))
    posting.start()
    time.sleep(0.2)
    first = threading.Thread(target=slack.post, args=("U0ANN", "ready"), kwargs={"key": "outbox-7"})
    first.start()  # queued behind the slow one
    time.sleep(0.2)
    ts = slack.post(dm, "ready", key="outbox-7", look_first=True)  # the retry, by the D... id
    posting.join(timeout=10)
    first.join(timeout=10)
    readies = [m for m in fake.posts(dm) if m["text"] == "ready"]
    assert [m["ts"] for m in readies] == [ts], readies


def test_a_call_queued_before_this_process_lapsed_is_not_made(
    fake: FakeSlack, db: Database
) -> None:
    """A notice queued, then the process frozen (here: its heartbeat not renewed) past its
    heartbeat's life: other replicas may have taken its work over and posted it. Woken, it
    drops the call instead of posting it a second time; what is queued after the next beat is
    made as usual."""
    beat = Heartbeat(db, instance="host/1/me", ttl=timedelta(seconds=1))
    beat.beat()
    slack = SlackSender(
        web_client(fakeslack.BOT_TOKEN, base_url=fake.api_url),
        queues=ChannelQueues(rate=50.0, burst=3.0, idle_s=1, liveness=beat),
    )
    fake.fail("chat.postMessage", delay=1.2, match="slow")  # the channel is busy meanwhile
    busy = threading.Thread(target=slack.post, args=("C0TEAM", "slow one"))
    busy.start()
    time.sleep(0.1)
    with pytest.raises(ChatError, match="taken for dead"):
        slack.post("C0TEAM", "queued before the lapse")  # made only after 1.2 s: too late
    busy.join(timeout=10)
    beat.beat()  # awake again: a new generation
    slack.post("C0TEAM", "after")
    assert [m["text"] for m in fake.posts("C0TEAM")] == ["slow one", "after"]


def test_a_call_is_not_retried_after_this_process_lapsed_during_its_wait(
    fake: FakeSlack, db: Database
) -> None:
    """The SDK retries a 429 in place within the Retry-After budget. A process whose heartbeat
    lapses during that wait (paused; here: not renewed) may have had its notice taken over:
    the retry is not made, and the caller is told why (the outbox's claim is another's)."""
    beat = Heartbeat(db, instance="host/1/me", ttl=timedelta(seconds=1))
    beat.beat()
    slack = SlackSender(
        web_client(fakeslack.BOT_TOKEN, base_url=fake.api_url),
        queues=ChannelQueues(rate=50.0, burst=3.0, idle_s=1, liveness=beat),
    )
    fake.fail("chat.postMessage", status=429, retry_after=2, count=2)  # 4 s in all: in budget
    with pytest.raises(SlackError, match="taken for dead"):
        slack.post("C0TEAM", "asked before the lapse")
    assert fake.count("chat.postMessage") == 1  # the retry after the lapse was not made
    assert fake.posts("C0TEAM") == []
    beat.start()  # awake again, and beating: calls made from now on are retried as usual
    try:
        fake.fail("chat.postMessage", status=429, retry_after=1, count=1)
        slack.post("C0TEAM", "after")
    finally:
        beat.stop()
    assert [m["text"] for m in fake.posts("C0TEAM")] == ["after"]
