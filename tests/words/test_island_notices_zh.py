"""The islands' words and the lifecycle's notices in Chinese (``island_text``, ``notices``); the
English ones as they were."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po

from bot.domain.lifecycle_rules import Failure, FailureKind, Notice
from bot.domain.records import BranchCapacity, CapacityReport, LogTail, PortUsage
from bot.domain.states import IslandState
from bot.words import island_text, notices
from bot.words.catalogue import LOCALE_DIR, _, speaking
from tests.words.test_digest_layout import NOW, island

GI, MI = 2**30, 2**20
SHANGHAI = ZoneInfo("Asia/Shanghai")
MODULES = (Path(island_text.__file__), Path(notices.__file__))
KEYWORDS = {"_": None, "n_": (1, 2), "p_": ((1, "c"), 2), "N_": None}

# what may stay in Latin letters in a Chinese text: data, names, Kubernetes' own words
DATA = re.compile(
    r"`[^`]*`|<[^>]*>|&[a-z]+;|\b(?:islandbot|Kubernetes|Pod|OOMKilled|GiB|UTC|Asia/Shanghai|"
    r"server-port|gm|dev|main|node-a|id|Error|Killed|ErrImagePull|[0-9.]+(?:Gi|Mi|Ki))\b"
    r"|\([^()]*[a-z]{3,}[^()]*\)|（[^（）]*[a-z]{3,}[^（）]*）"  # Kubernetes' messages, quoted
)


def _english_left(text: str) -> list[str]:
    """Runs of two English words or more: a sentence left untranslated."""
    return re.findall(r"[A-Za-z]{2,}[ ,:;]+[A-Za-z]{2,}", DATA.sub(" ", text))


def _ids() -> Iterator[str]:
    for module in MODULES:
        for _line, message, _comments, context in extract_from_file(
            "python", str(module), keywords=KEYWORDS
        ):
            text = message[0] if isinstance(message, tuple) else message
            yield f"{context}\x04{text}" if context else text


def test_every_sentence_of_both_modules_has_its_chinese() -> None:
    with (LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "islandbot.po").open("rb") as po:
        catalog = read_po(po)
    translated = set()
    for m in catalog:
        if m.id and m.string and all(m.string):
            text = m.id[0] if isinstance(m.id, tuple) else m.id
            translated.add(f"{m.context}\x04{text}" if m.context else text)
    ids = list(_ids())
    assert len(ids) > 90
    assert [i for i in ids if i not in translated] == []


def _fields(**extra: Any) -> list[str]:
    return island_text.root_fields(
        island(1, IslandState.READY),
        ports={"server-port": 30003, "gm": 30004},
        clock=NOW + timedelta(days=1),
        now=NOW,
        tz=SHANGHAI,
        **extra,
    )


def test_english_is_what_it_was() -> None:
    ready, starting = island(1, IslandState.READY), island(2, IslandState.SCHEDULED)
    running = island(3, IslandState.RUNNING)
    assert island_text.digest_headline([ready, starting, ready, running]) == (
        "*Islands started here at once*: 2 ready, 1 scheduled, 1 running"
    )
    assert island_text.digest_line(ready) == ("#1001 dev · <@U0B0001> · *ready* on 127.0.0.2")
    assert island_text.digest_line(starting) == (
        "#1002 dev · <@U0B0002> · *scheduled, starting its server*"
    )
    assert _fields(memory=(int(1.6 * GI) + 1, 2 * GI))[-1] == "*Memory*\n1.6Gi of 2Gi (80 %)"
    assert _fields(memory=(612 * MI, None))[-1] == "*Memory*\n612Mi"
    assert island_text.home_line(ready, {"server-port": 30003}, now=NOW, memory=(MI, 2 * MI)) == (
        "*#1001* dev (user1): ready on 127.0.0.2:30003, memory 1Mi of 2Mi (50 %), expires in 8h"
    )
    assert island_text.database_down(90) == (
        "islandbot cannot reach its database (for 1m30s now), so this was not done. Try again "
        "in a minute or two; what it accepted before is kept and carried out once the database "
        "is back."
    )
    assert island_text.busy() == island_text.BUSY
    assert island_text.sorry() == island_text.SORRY
    assert island_text.database_down(0.5).startswith(island_text.DATABASE_DOWN + ", so this")
    branches = (BranchCapacity("dev", 2, 1, 3 * GI, warm=0, warming=2),)
    assert island_text.capacity_lines(CapacityReport(PortUsage(9, 2, 1, 6), 2, branches, None))[
        1
    ] == (
        "- *dev*: 2 live, 0 warm ready to hand out at once, 2 more starting, 1 ready nodes with "
        "3.0 GiB of memory free"
    )
    oom = Failure(FailureKind.OOM_KILLED, {"limit": "2Gi", "last_used": GI})
    assert notices.failure_text(oom, island_id=7, branch="dev") == (
        "island #7 blew up: OOMKilled at the 2Gi limit (its last memory reading: 1Gi)"
    )


def _notice(kind: Notice, detail: Mapping[str, Any], **extra: Any) -> str:
    values: dict[str, Any] = {
        "island_id": 12,
        "owner_id": "U0ANN",
        "branch": "dev",
        "ports": {"server-port": 30001},
        "clock": None,
        "tz": SHANGHAI,
        **extra,
    }
    return notices.notice_text(kind, detail, **values)


def test_an_extension_is_told_from_its_seconds_and_from_an_older_rows_text() -> None:
    seconds = {"by": "U0BOB", "added_s": 4 * 3600 + 1800, "expires_at": NOW}
    older = {"by": "U0BOB", "added": "4h", "expires_at": NOW}
    told = "<@U0BOB> extended island #12 by {}: it now expires at 2026-12-01 10:00 UTC."
    assert _notice(Notice.EXTENDED, seconds) == told.format("4h30m")
    assert _notice(Notice.EXTENDED, older) == told.format("4h")
    with speaking("zh-CN"):
        assert _notice(Notice.EXTENDED, seconds) == (
            "<@U0BOB> 给岛 #12 续期了 4小时30分：现在 2026-12-01 10:00 UTC 到期。"
        )
        assert "续期了 4h：" in _notice(Notice.EXTENDED, older)


def test_the_digest_counts_with_short_chinese_state_words() -> None:
    ready, starting = island(1, IslandState.READY), island(2, IslandState.SCHEDULED)
    with speaking("zh-CN"):
        assert island_text.digest_headline([ready, starting, ready]) == (
            "*这里同时起的岛*：就绪 2 个, 已调度 1 个"
        )
        assert island_text.short_state_words("running") == "运行中"
        assert island_text.digest_line(ready) == "#1001 dev · <@U0B0001> · *就绪*，在 127.0.0.2 上"


def test_root_fields_and_home_line_in_chinese() -> None:
    with speaking("zh-CN"):
        fields = _fields(memory=(int(1.6 * GI) + 1, 2 * GI))
        home = island_text.home_line(
            island(1, IslandState.READY), {"server-port": 30003}, now=NOW, memory=(MI, 2 * MI)
        )
        placed = island_text.root_fields(
            island(2, IslandState.REQUESTED), ports={}, clock=None, now=NOW, tz=SHANGHAI
        )
    assert fields == [
        "*主机*\n127.0.0.2",
        "*端口*\nserver-port 30003, gm 30004",
        "*岛上时间*\n2026-12-02 18:00:00 Asia/Shanghai",
        "*到期*\n2026-12-01 18:00 UTC（8小时后）",
        "*内存*\n1.6Gi / 2Gi（80%）",
    ]
    assert placed[0] == "*主机*\n尚未分配到节点"
    assert placed[2] == "*岛上时间*\n真实时间"
    assert (
        home
        == "*#1001* dev（user1）：就绪，在 127.0.0.2:30003 上，内存 1Mi / 2Mi（50%），8小时后到期"
    )


def _island_texts() -> list[str]:
    ready = island(1, IslandState.READY)
    tail = LogTail(1001, "a\nb", 2, previous=True)
    branches = (
        BranchCapacity("dev", 2, 1, 3 * GI, warm=1, warming=2),
        BranchCapacity("main", 0, 2, GI, warm=3),
        BranchCapacity("qa", 1, 1, GI),
    )
    report = CapacityReport(PortUsage(9, 2, 1, 6), 2, branches, "timeout")
    return [
        _(island_text.BUTTON_STOP),
        _(island_text.BUTTON_KEEP),
        _(island_text.BUTTON_LOGS),
        _(island_text.HOME_MINE),
        _(island_text.HOME_TEAM),
        _(island_text.NO_ISLANDS),
        _(island_text.NO_ISLANDS_OF_YOURS),
        island_text.sorry(),
        island_text.busy(),
        _(island_text.DIGEST_FOOTER),
        island_text.database_down(0),
        island_text.database_down(3600),
        island_text.button_extend("4小时"),
        island_text.confirm_stop(3),
        island_text.root_headline(ready),
        island_text.note_line("QA"),
        island_text.failure_line("ErrImagePull"),
        island_text.table_cut(80),
        *_fields(),
        island_text.home_line(island(2, IslandState.RUNNING), {}, now=NOW),
        *island_text.capacity_lines(report),
        island_text.logs_message(tail),
        island_text.logs_message(LogTail(1001, "", 0, previous=False)),
        island_text.logs_message(LogTail(1001, "x", 1, previous=False)),
        island_text.logs_cut(tail, 1),
        island_text.started_elsewhere(3, "not_in_channel"),
        island_text.stopping([]),
        island_text.stopping([3, 4]),
        island_text.already_stopping(3),
        island_text.restart_pending(3),
        island_text.extended_already(3, NOW),
        island_text.extended(3, NOW),
        island_text.restarting(3),
        island_text.stale_button(),
    ]


FAILURES: dict[FailureKind, dict[str, Any]] = {
    FailureKind.UNSCHEDULABLE: {
        "waited_s": 600,
        "message": "0/3: Insufficient memory",
        "memory": "4Gi",
    },
    FailureKind.IMAGE_PULL: {"reason": "ErrImagePull", "message": "NotFound"},
    FailureKind.OOM_KILLED: {"limit": "2Gi", "last_used": GI},
    FailureKind.CRASHED: {"exit_code": 137, "reason": "Killed"},
    FailureKind.EVICTED: {"message": "DiskPressure"},
    FailureKind.POD_DELETED: {},
    FailureKind.POD_DELETING: {},
    FailureKind.NOT_READY: {"waited_s": 600},
    FailureKind.POD_REFUSED: {"message": "forbidden"},
    FailureKind.POD_NOT_CREATED: {"message": "timeout"},
    FailureKind.NOT_ANSWERING: {"probes": 3},
}


def _notice_texts() -> list[str]:
    told = [
        _notice(Notice.FAILED, {"kind": kind.value, **detail}) for kind, detail in FAILURES.items()
    ]
    told += [
        notices.failure_text(Failure(FailureKind.OOM_KILLED, d), island_id=12, branch="dev")
        for d in ({}, {"limit": "2Gi"}, {"last_used": MI})
    ]
    details: list[tuple[Notice, dict[str, Any]]] = [
        (Notice.READY, {"host": "10.0.0.9"}),
        (Notice.READY, {"host": "10.0.0.9", "warm": True}),
        (Notice.MEMORY_HIGH, {"used": GI, "limit": 2 * GI, "more": 4 * GI}),
        (Notice.MEMORY_HIGH, {"used": GI, "limit": 2 * GI}),
        (Notice.EXPIRING, {"expires_at": NOW}),
        (Notice.STOP_REQUESTED, {"by": "U0BOB"}),
        (Notice.RESTARTING, {"by": "U0BOB"}),
        (Notice.CLOCK_SHIFTED, {"by": "U0BOB", "from_clock": "a", "to_clock": "b", "shift": "+1d"}),
        (
            Notice.CLOCK_SHIFTED,
            {
                "by": "U0BOB",
                "approved_by": "U0ANN",
                "from_clock": "a",
                "to_clock": "b",
                "shift": "+1d",
            },
        ),
        (Notice.CLOCK_FAILED, {"by": "U0BOB", "error": "gone"}),
        (Notice.EXTENDED, {"by": "U0BOB", "added_s": 7200, "expires_at": NOW}),
        (Notice.ANNOUNCE, {}),
        (Notice.CLOCK_REQUESTED, {}),
        (Notice.SCHEDULED, {"node": "node-a"}),
        (Notice.UNSCHEDULABLE, {"message": "0/3: didn't have free ports"}),
        (Notice.UNSCHEDULABLE, {"message": "0/3: node affinity/selector"}),
        (Notice.EXPIRED, {}),
        (Notice.STOPPED, {}),
    ]
    told += [_notice(kind, detail) for kind, detail in details]
    told.append(_notice(Notice.READY, {"host": "h"}, clock=NOW))
    told += [
        notices.status_line(12, "ready", "dev"),
        notices.plain("x" * 100, limit=80),
        notices.rerouted("岛 #12 已关岛。", "C0TEAM"),
    ]
    return told


@pytest.mark.parametrize("texts", [_island_texts, _notice_texts], ids=["island_text", "notices"])
def test_no_english_sentence_is_left_in_chinese(texts: Callable[[], list[str]]) -> None:
    english = texts()
    with speaking("zh-CN"):
        chinese = texts()
    assert len(chinese) == len(english)
    for en, zh in zip(english, chinese, strict=True):
        assert zh != en or not _english_left(en), en
        assert _english_left(zh) == [], zh
        assert "{" not in zh, zh  # every placeholder filled
        assert not re.search(r"\b[Ii]slands?\b", DATA.sub(" ", zh)), zh


def test_the_notices_keep_to_the_glossary() -> None:
    with speaking("zh-CN"):
        failed = _notice(Notice.FAILED, {"kind": "oom_killed", "limit": "2Gi"})
        ready = _notice(Notice.READY, {"host": "10.0.0.9", "warm": True}, clock=NOW)
        shifted = _notice(
            Notice.CLOCK_SHIFTED,
            {
                "by": "U0BOB",
                "approved_by": "U0ANN",
                "from_clock": "a",
                "to_clock": "b",
                "shift": "+1d",
            },
        )
        expiring = _notice(Notice.EXPIRING, {"expires_at": NOW})
        why = notices.explain_unschedulable("0/3: Insufficient memory", "dev", "4Gi")
        cut = notices.plain("岛" * 100, limit=40)
    assert failed.startswith(
        "<@U0ANN> 岛 #12 失败：岛 #12 崩了：到了 2Gi 上限，内存超限被杀（OOMKilled）"
    )
    assert "`/island stop 12`" in failed
    assert ready == (
        "<@U0ANN> 岛 #12 已就绪，在 10.0.0.9 上（预热岛，立即交付）：server-port 30001。"
        "岛上时间：2026-12-01 18:00:00 Asia/Shanghai。"
    )
    assert "批准" in shifted and "岛上时间" in shifted
    assert "续期" in expiring and "`/island extend 12 4h`" in expiring
    assert why == "dev 分支的节点都没有 4Gi 空闲内存（0/3: Insufficient memory）"
    assert len(cut) == 40 and cut.endswith("（已截短：完整通知太长，聊天里放不下）")
