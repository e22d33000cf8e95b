"""The timeouts that decide whether work is done twice, and the inequalities between them
(issue 21: "timeouts derived from one budget with the inequality between them written down
and tested"). Each is a named constant where it is used; this is where they meet.

- A chat request's claim (``front.CLAIM_TTL``) outlives the longest its worker can take to
  answer it while alive: a turn in its conversation's queue, then one chat call (Slack's or
  Lark's, the slower) with all its retries and the Retry-After slept in place. Its worker
  dying ends it sooner (heartbeat). So
  does a notice's claim (``DeliveryPolicy.claim_ttl``) outlive one post: the deliverer claims
  no more notices at once than it hands over at once. (An attempt that posts more than once,
  a refused notice reworded or sent to its owner, can outlast it: docs/guarantees.md says so.)
- A heartbeat is renewed well within the time its process still trusts it, which is within
  the time the others trust it (its ttl): a process acts on what it took on only while no
  other may have taken it over.
- A leader renews its lease as often as its heartbeat, and the lease and the heartbeat share
  one ttl (``compose``): a leader that lost its lease by not being heard from has also stopped
  trusting its heartbeat, so it makes none of the chat calls it had queued.
- Every replica looks for requests a dead worker left more often than a heartbeat lives.
"""

from __future__ import annotations

from datetime import timedelta

from bot.app.reconcile.deliver import DeliveryPolicy
from bot.chat import front, pacing
from bot.chat.lark import client as lark
from bot.chat.slack import sender
from bot.infra.storage import heartbeat
from bot.run.compose import Tuning
from bot.run.settings_env import load_settings


def slowest_slack_call_s() -> float:
    http = sender.HTTP_TIMEOUT_S * (1 + sender.HTTP_RETRIES)
    return pacing.QUEUE_WAIT_S + http + sender.RETRY_AFTER_BUDGET_S


def slowest_lark_call_s() -> float:
    """Each attempt may first fetch a token (as slow as the call), then wait its backoff."""
    http = 2 * lark.HTTP_TIMEOUT_S * lark.HTTP_RETRIES
    backoffs = sum(0.5 * 2**i for i in range(lark.HTTP_RETRIES - 1))
    return pacing.QUEUE_WAIT_S + http + backoffs + lark.RETRY_AFTER_BUDGET_S


def slowest_chat_call_s() -> float:
    return max(slowest_slack_call_s(), slowest_lark_call_s())


def test_a_live_workers_claim_outlives_its_slowest_answer() -> None:
    assert timedelta(seconds=slowest_chat_call_s()) < front.CLAIM_TTL


def test_a_live_deliverers_claim_outlives_its_slowest_post() -> None:
    assert timedelta(seconds=slowest_chat_call_s()) < DeliveryPolicy().claim_ttl


def test_a_process_trusts_its_heartbeat_less_long_than_the_others_do() -> None:
    assert 0 < heartbeat.BEAT_EVERY < heartbeat.FRESH_FOR < 1
    # one beat may be lost (a slow write) before the process stops trusting itself
    assert heartbeat.FRESH_FOR - heartbeat.BEAT_EVERY >= heartbeat.BEAT_EVERY


def test_a_dead_workers_requests_are_looked_for_more_often_than_its_heartbeat_lives() -> None:
    """So a restarted bot takes up what its predecessor left within about one ttl."""
    assert Tuning().recover_every < load_settings({}).lease_ttl
