"""An answer that takes long (issue 21, defect 6): a look (``/island status``) is done only once
its answer is out, and the answer may wait far longer than any fixed claim (behind a channel
the chat paces, or a chat slow to answer). While its worker lives, the request is not taken up
again by the intake's recovery (which runs every 2 s on every replica): one answer, one audit
entry. It used to be run again once its 30 s claim ran out: the answer twice, the look audited
twice, and in the end an apology. Bounded: about 40 s."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.chat.console.chat import ConsoleChat
from bot.infra.storage.tables import AuditEntry
from bot.run.demo import CHANNEL, CHANNEL_NAME
from tests.demoworld import demo_on, start

SLOW_S = 35.0  # longer than the claim the intake used to give a request (30 s)


class SlowToAnswer(ConsoleChat):
    """The console chat, taking ``SLOW_S`` to deliver the first answer that mentions ``word``
    (as a message waits behind a paced channel), however many answers there are."""

    def __init__(self, word: str) -> None:
        super().__init__(write=None, names={CHANNEL: CHANNEL_NAME})
        self.word = word
        self.answers: list[str] = []
        self.held = threading.Event()

    def ephemeral(self, channel: str, user: str, text: str, **kw: Any) -> None:
        if self.word in text:
            self.answers.append(text)
            if not self.held.is_set():
                self.held.set()
                time.sleep(SLOW_S)
        super().ephemeral(channel, user, text, **kw)


@pytest.mark.slow
def test_a_look_whose_answer_takes_long_is_answered_and_audited_once(tmp_path: Path) -> None:
    chat = SlowToAnswer("'s island #")  # the status answer
    with demo_on(f"sqlite:///{tmp_path / 'islandbot.db'}", tmp_path, chat=chat) as (demo, _sim):
        island_id = start(demo)
        began = time.monotonic()
        demo.command(f"status {island_id}", settle_s=SLOW_S + 10)
        assert time.monotonic() - began >= SLOW_S
        time.sleep(3)  # a recovery round that would take it up again has run by now
        assert demo.front.pool.wait_idle(10)
        with demo.bot.db.engine.connect() as conn:
            looks = conn.execute(
                select(AuditEntry.action).where(AuditEntry.action == "status")
            ).all()
    assert len(chat.answers) == 1, chat.answers
    assert len(looks) == 1
