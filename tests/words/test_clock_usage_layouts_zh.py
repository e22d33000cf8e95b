"""Island clocks' words, the command's help and answers to bad input, the Block Kit layouts and
the demo console's texts in Simplified Chinese: every one translated (no English sentence left),
placeholders filled, the glossary's terms used, the command grammar kept as it is typed, Slack's
limits kept; English unchanged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.domain.commands import CommandError, Problem
from bot.domain.island_clock import ClockFault
from bot.domain.records import ClockView, IslandRecord
from bot.domain.states import IslandState
from bot.words import clock_text, demo_text, layouts, usage
from bot.words.catalogue import speaking
from bot.words.formatting import escape
from tests.words.chinese import CJK, assert_chinese
from tests.words.test_clock_times import NOW, request

SHANGHAI = ZoneInfo("Asia/Shanghai")
STATES = ("pending", "applying", "applied", "rejected", "expired", "superseded", "failed")


def _chinese(text: str) -> None:
    assert_chinese(text, double_quoted=True)


def _zh(render: Callable[[], Any]) -> Any:
    with speaking("zh-CN"):
        return render()


def island(**changes: Any) -> IslandRecord:
    values: dict[str, Any] = {
        "id": 7,
        "pod_name": "island-alice-dev-7",
        "owner_id": "U0ALICE",
        "owner_name": "alice",
        "branch": "dev",
        "state": IslandState.READY,
        "first_port": 30000,
        "port_count": 3,
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=8),
        "node": "dev-1",
        "host_ip": "127.0.0.2",
        "chat_channel": "C1",
        "chat_thread": "1.000001",
        "ready_at": NOW,
    }
    values.update(changes)
    return IslandRecord(**values)


# ---- island clocks ---------------------------------------------------------------------------


def _clock_texts() -> list[str]:
    last = request(state="applied", applied_at=NOW)
    texts = [
        clock_text.clock_busy(7),
        clock_text.clock_view(ClockView(7, "U0O", 0, NOW, None), SHANGHAI, NOW),
        clock_text.clock_view(ClockView(7, "U0O", 7200, NOW, last), SHANGHAI, NOW),
        clock_text.clock_view(ClockView(7, "U0O", -5400, NOW, None), SHANGHAI, NOW),
        clock_text.clock_history(7, [], SHANGHAI),
        clock_text.clock_history(
            7,
            [
                request(state=s, decided_by="U0C", failure_reason="boom" if s == "failed" else None)
                for s in STATES
            ],
            SHANGHAI,
        ),
        clock_text.clock_request(
            request(kind="now", target_at=None, to_offset_s=0), "U0O", UTC, NOW
        ),
        clock_text.clock_request(request(kind="shift", target_at=None), "U0O", UTC, NOW),
        clock_text.clock_requested(7, "U0O"),
        clock_text.clock_backwards(7),
        clock_text.clock_applied(7, 0),
        clock_text.clock_applied(7, -5400),
        clock_text.clock_failed(7, "boom"),
        clock_text.clock_fault(ClockFault.BUSY, {"island_id": 7}),
        clock_text.clock_fault(ClockFault.CONTENT_REFUSED, {"content": "x"}),
        clock_text.clock_fault(ClockFault.POD_GONE, {}),
        clock_text.clock_fault(ClockFault.ENV_MISSING, {"variable": "FAKETIME_FILE"}),
        clock_text.clock_fault(ClockFault.WRITE_FAILED, {"exit_code": 2, "stderr": "no file"}),
        clock_text.clock_fault(ClockFault.NOT_MOVED, {"seen_s": 12.4, "expected_s": 3600}),
        clock_text.clock_fault(ClockFault.NOT_MOVED, {"seen_s": None, "expected_s": 3600}),
    ]
    texts += [
        clock_text.clock_request(request(state=s, decided_by="U0C"), "U0O", SHANGHAI, NOW)
        for s in STATES
    ]
    return texts


def test_every_clock_text_is_chinese() -> None:
    for text in _zh(_clock_texts):
        _chinese(text)


def test_a_clock_request_in_chinese_keeps_its_people_times_and_outcome() -> None:
    text = _zh(
        lambda: clock_text.clock_request(
            request(state="rejected", decided_by="U0C"), "U0O", SHANGHAI, NOW
        )
    )
    assert text == (
        "<@U0O>：<@U0BOB> 申请把岛 #7 的岛上时间改到 2021-09-18 23:30:07 Asia/Shanghai"
        "（现在是 2026-11-29 20:00:00 Asia/Shanghai）。*已被 <@U0C> 驳回。*"
    )
    pending = _zh(lambda: clock_text.clock_request(request(), "U0O", SHANGHAI, NOW))
    assert pending.endswith("。申请于 2026-11-29 21:00:00 Asia/Shanghai 到期。")
    shift = _zh(lambda: clock_text.clock_view(ClockView(7, "U0O", 93600, NOW, None), UTC, NOW))
    assert "比真实时间快 1天2小时" in shift
    assert _zh(lambda: clock_text.clock_history(7, [], UTC)) == "岛 #7 从未改过时间。"
    history = _zh(lambda: clock_text.clock_history(7, [request(state="pending")], UTC))
    assert history.startswith(
        "岛 #7 的改时间记录（最新的在前）：\n- 2026-11-29 12:00:00 UTC <@U0BOB>："
    )
    assert history.endswith("，待批准")


def test_clock_texts_in_english_are_unchanged() -> None:
    last = request(state="applied", applied_at=NOW)
    assert clock_text.clock_view(ClockView(7, "U0O", -5400, NOW, last), SHANGHAI, NOW) == (
        "Island #7's clock reads 2026-11-29 20:00:00 Asia/Shanghai, 1h30m behind real time. "
        "Set by <@U0BOB> at 2026-11-29 20:00:00 Asia/Shanghai."
    )
    assert clock_text.clock_request(
        request(state="failed", decided_by="U0C", failure_reason="a <b>"), "U0O", UTC, NOW
    ) == (
        "<@U0O>: <@U0BOB> asks to move island #7's clock to 2021-09-18 15:30:07 UTC "
        "(now 2026-11-29 12:00:00 UTC). *Approved by <@U0C> but failed: a &lt;b&gt;.*"
    )
    assert clock_text.clock_request(request(state="odd"), "U0O", UTC, NOW).endswith(" *Odd.*")
    assert clock_text.clock_request(
        request(kind="now", target_at=None, from_offset_s=60, to_offset_s=0), "U0O", UTC, NOW
    ) == (
        "<@U0O>: <@U0BOB> asks to move island #7's clock to real time "
        "(now 2026-11-29 12:01:00 UTC). The request expires at 2026-11-29 13:00:00 UTC."
    )
    history = clock_text.clock_history(
        7,
        [request(state="failed", decided_by="U0C", failure_reason="x", to_offset_s=3600)],
        UTC,
    )
    assert history == (
        "Clock changes of island #7, newest first:\n"
        "- 2026-11-29 12:00:00 UTC <@U0BOB>: real time -> +1h, failed, decided by <@U0C> (x)"
    )
    assert clock_text.clock_not_moved(None, 60) == (
        "the island's clock did not move as expected: it could not be read from real time, not 60s"
    )
    assert clock_text.clock_content_refused("x'y") == (
        'refusing to write "x\'y" into the clock file'
    )


# ---- the command's help and answers to bad input -----------------------------------------------


def _help(verb: str | None) -> str:
    return usage.help_text(
        verb, default_ttl=timedelta(hours=8), max_ttl=timedelta(days=3), timezone="Asia/Shanghai"
    )


@pytest.mark.parametrize("verb", list(usage.USAGE))
def test_each_commands_help_explains_the_english_grammar_in_chinese(verb: str) -> None:
    text = _zh(lambda: _help(verb))
    grammar, explanation = text.split("\n", 1)
    assert grammar == f"`{escape(usage.USAGE[verb])}`"  # what people type, escaped as text
    _chinese(explanation)
    assert ("刮风" in text) == (verb == "time")


def test_the_time_help_names_the_design_notes_word_as_a_likely_reading_beside_the_term() -> None:
    text = _zh(lambda: _help("time"))
    assert "改时间（设计文档里的“刮风”大概就是指改时间）" in text
    assert "Asia/Shanghai" in text
    whole = _zh(lambda: _help(None))
    assert whole.count("刮风") == 1
    assert "默认 8小时，最多 3天" in whole and "`/island help [command]`" in whole


def test_the_help_in_english_is_unchanged() -> None:
    assert _help("extend") == (
        "`/island extend &lt;id&gt; &lt;duration&gt;`\nMove the island's expiry later by a "
        "duration such as `4h` or `2d`. Owner or admin; at most 3d from now."
    )
    assert _help(None).startswith(
        "*islandbot* gives you your own game-server island.\n`/island start &lt;branch&gt; "
    )


ERRORS: list[tuple[Problem, str | None, dict[str, Any]]] = [
    (Problem.EMPTY, None, {}),
    (Problem.TOO_LONG, "start", {"length": 900, "limit": 500}),
    (Problem.CONTROL_CHARACTERS, None, {}),
    (Problem.UNBALANCED_QUOTES, "start", {}),
    (Problem.UNKNOWN_VERB, None, {"given": "strat", "verbs": tuple(usage.USAGE)}),
    (Problem.UNKNOWN_VERB, None, {"given": "zzzz", "verbs": tuple(usage.USAGE)}),
    (Problem.MISSING_ARGUMENT, "stop", {"what": "island id or 'mine'"}),
    (Problem.MISSING_ARGUMENT, "extend", {"what": "duration"}),
    (Problem.EXTRA_ARGUMENTS, "stop", {"extra": "a b c"}),
    (Problem.BAD_ID, "status", {"given": "x"}),
    (Problem.BAD_DURATION, "extend", {"given": "4x"}),
    (Problem.DURATION_TOO_LONG, "extend", {"given": "9d", "limit": timedelta(days=3)}),
    (Problem.UNKNOWN_OPTION, "start", {"given": "foo=1"}),
    (Problem.REPEATED_OPTION, "start", {"option": "ttl"}),
    (Problem.BAD_TIME, "start", {"given": "2021-13-01", "tz": SHANGHAI}),
    (Problem.NOTE_TOO_LONG, "start", {"limit": 200}),
    (Problem.BAD_SETTING, "start", {"given": "FOO"}),
    (Problem.BAD_LINES, "logs", {"given": "0", "limit": 2000}),
    (Problem.BAD_POOL_SIZE, "pool", {"given": "-1"}),
    (Problem.BAD_WHEN, "time", {"given": "tomorrow", "tz": SHANGHAI}),
]


@pytest.mark.parametrize(("problem", "verb", "detail"), ERRORS)
def test_every_answer_to_bad_input_is_chinese_with_the_grammar_as_typed(
    problem: Problem, verb: str | None, detail: dict[str, Any]
) -> None:
    text = _zh(lambda: usage.command_error(CommandError(problem, verb, **detail)))
    _chinese(text)
    if verb is not None:
        assert text.endswith(f"用法：`{escape(usage.USAGE[verb])}`")


def test_answers_to_bad_input_in_chinese_say_what_was_wrong() -> None:
    def said(problem: Problem, verb: str | None, **detail: Any) -> str:
        return str(_zh(lambda: usage.command_error(CommandError(problem, verb, **detail))))

    assert said(Problem.UNKNOWN_VERB, None, given="strat", verbs=tuple(usage.USAGE)).startswith(
        "我不认识命令 'strat'。你是想用 `start` 吗？用法："
    )
    assert said(Problem.MISSING_ARGUMENT, "restart", what="island id").startswith("缺少：岛 id。")
    assert said(Problem.MISSING_ARGUMENT, "start", what="KEY=VALUE").startswith("缺少：KEY=VALUE。")
    assert "最长时长 3天" in said(
        Problem.DURATION_TOO_LONG, "extend", given="9d", limit=timedelta(days=3)
    )
    assert "（Asia/Shanghai 时间" in said(Problem.BAD_TIME, "start", given="x", tz=SHANGHAI)


def test_answers_to_bad_input_in_english_are_unchanged() -> None:
    def said(problem: Problem, verb: str | None, **detail: Any) -> str:
        return usage.command_error(CommandError(problem, verb, **detail))

    assert said(Problem.UNKNOWN_VERB, None, given="strat", verbs=tuple(usage.USAGE)) == (
        "I don't know the command 'strat'. Did you mean `start`? Usage: `/island &lt;command&gt;`; "
        "commands: start, stop, restart, extend, list, status, logs, time, capacity, board, "
        "pool, help. Try `/island help`."
    )
    assert said(Problem.MISSING_ARGUMENT, "restart", what="island id") == (
        "Missing: island id. Usage: `/island restart &lt;id&gt;`"
    )
    assert said(Problem.BAD_WHEN, "time", given="<x>", tz=SHANGHAI) == (
        "'&lt;x&gt;' is not a clock change: use `now`, a shift such as `+2d`, `-90m` or "
        '`+1d12h`, or a time "YYYY-MM-DD HH:MM[:SS]" in Asia/Shanghai, or `history`. '
        'Usage: `/island time &lt;id&gt; [now|+2d|-90m|"YYYY-MM-DD HH:MM[:SS]"|history]`'
    )


# ---- Block Kit layouts ---------------------------------------------------------------------------


def _plain_texts(block: Any) -> list[tuple[str, str]]:
    """Every plain text in a layout with the key it is under (``text``, ``title``...)."""
    found: list[tuple[str, str]] = []
    if isinstance(block, dict):
        for key, value in block.items():
            if isinstance(value, dict) and value.get("type") == "plain_text":
                found.append((key, value["text"]))
            found += _plain_texts(value)
    elif isinstance(block, list):
        for item in block:
            found += _plain_texts(item)
    return found


def _actions(blocks: list[Any]) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"])
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
    ]


def test_buttons_in_chinese_are_short_and_do_what_they_did() -> None:
    english = layouts.buttons(island(), timedelta(hours=4))
    chinese = _zh(lambda: layouts.buttons(island(), timedelta(hours=4)))
    assert _actions([chinese]) == _actions([english])
    labels = [e["text"]["text"] for e in chinese["elements"]]
    assert labels == ["关岛", "续期 4小时", "日志"]
    assert all(2 <= len(label) <= 6 for label in labels)
    confirm = chinese["elements"][0]["confirm"]
    assert (confirm["confirm"]["text"], confirm["deny"]["text"]) == ("关岛", "保留")
    _chinese(confirm["text"]["text"])


def test_a_clock_request_message_in_chinese_has_approve_and_reject() -> None:
    text, blocks = _zh(
        lambda: layouts.clock_request_message(request(), owner_id="U0O", tz=SHANGHAI, now=NOW)
    )
    _chinese(text)
    english = layouts.clock_request_message(request(), owner_id="U0O", tz=SHANGHAI, now=NOW)[1]
    assert _actions(blocks) == _actions(english) == [("clock_approve", "3"), ("clock_reject", "3")]
    assert [t for _k, t in _plain_texts(blocks)] == ["批准", "驳回"]
    assert [t for _k, t in _plain_texts(english)] == ["Approve", "Reject"]


def test_the_home_page_in_chinese_keeps_to_slacks_limits() -> None:
    view = _zh(
        lambda: layouts.home_view(
            mine=[island()],
            team=[island(id=8, owner_id="U0BOB")],
            ports={},
            extend_step=timedelta(minutes=90),
            now=NOW,
            board="看板",
        )
    )
    headers = [b["text"]["text"] for b in view["blocks"] if b["type"] == "header"]
    assert headers == ["你的岛", "团队的岛"]
    limits = {"text": 75, "title": 100, "confirm": 30, "deny": 30}
    for key, text in _plain_texts(view["blocks"]):
        assert CJK.search(text), text
        assert len(text) <= limits.get(key, 150), (key, text)
    empty = _zh(
        lambda: layouts.home_view(
            mine=[], team=[], ports={}, extend_step=timedelta(hours=4), now=NOW
        )
    )
    for block in empty["blocks"]:
        if block["type"] == "section":
            _chinese(block["text"]["text"])


def test_a_table_and_a_digest_in_chinese() -> None:
    title, _blocks = _zh(lambda: layouts.islands_table("在运行的岛", [island()], ports={}, now=NOW))
    assert title == "在运行的岛：1"
    assert layouts.islands_table("Live islands", [island()], ports={}, now=NOW)[0] == (
        "Live islands: 1"
    )
    empty = _zh(lambda: layouts.islands_table("在运行的岛", [], ports={}, now=NOW))[1]
    _chinese(empty[0]["text"]["text"])
    digest = _zh(lambda: layouts.digest_message([island(), island(id=8)]))[1]
    _chinese(digest[-1]["elements"][0]["text"])


def test_a_context_text_is_kept_within_slacks_2000_characters() -> None:
    blocks = layouts.root_message(
        island(note="n" * 2500),
        ports={},
        clock=None,
        extend_step=timedelta(hours=4),
        now=NOW,
        tz=UTC,
    )[1]
    contexts = [b for b in blocks if b["type"] == "context"]
    assert contexts and all(len(e["text"]) <= 2000 for b in contexts for e in b["elements"])


# ---- the demo's console ------------------------------------------------------------------------


def test_the_demos_help_translates_the_explanations_and_keeps_the_commands() -> None:
    english, chinese = demo_text.demo_help(), _zh(demo_text.demo_help)
    assert english == demo_text.DEMO_HELP
    assert len(english.splitlines()) == len(chinese.splitlines())
    for en, zh in zip(english.splitlines()[1:], chinese.splitlines()[1:], strict=True):
        command = en[:31]  # the command column, typed as it is
        assert zh.startswith(command), (en, zh)
        if command.strip():
            _chinese(zh[31:])
    _chinese(chinese.splitlines()[0])


def test_every_demo_text_is_chinese() -> None:
    def texts() -> list[str]:
        return [
            demo_text.demo_banner(
                database="sqlite:///x",
                api_url="http://127.0.0.1:8080",
                kubeconfig="/k",
                namespace="ns",
            ),
            demo_text.demo_board("alice", "http://127.0.0.1:8080/board#t"),
            demo_text.demo_unknown_line("hello there you"),
            demo_text.demo_bad_user("Bob!"),
            demo_text.demo_bad_seconds("wait", "abc"),
            demo_text.demo_no_button("9"),
            demo_text.demo_not_settled(120.0, [1, 2]),
            demo_text.demo_not_settled(1.5, []),
            demo_text.demo_bad_fault("x"),
            demo_text.demo_no_fault_here(),
            demo_text.demo_fault_failed(7, RuntimeError("nope")),
            demo_text.demo_memory_climbing(7, 30.0),
        ]

    said = _zh(texts)
    for text in said:
        _chinese(text)
    assert "`KUBECONFIG=/k kubectl get pods -n ns -o wide`" in said[0]
    assert said[6] == "120 秒后仍未稳定：#1, #2。"
    assert "内存超限被杀（OOMKilled）" in said[-1]


def test_the_demos_texts_in_english_are_unchanged() -> None:
    assert (
        demo_text.demo_not_settled(1.5, [])
        == "Still not settled after 1.5 s: notices still queued."
    )
    assert demo_text.demo_not_settled(120.0, [1, 2]) == "Still not settled after 120 s: #1, #2."
    assert demo_text.demo_banner(
        database="d", api_url="http://h", kubeconfig="/k", namespace="ns"
    ) == (
        "islandbot demo: database d; HTTP API at http://h (try http://h/healthz)\n"
        "The cluster: `KUBECONFIG=/k kubectl get pods -n ns -o wide`\n"
        "Type `help` for the console's commands, `/island help` for the bot's."
    )
