"""Refusals, the warm pools' words and the HTTP API's errors in Simplified Chinese: every one
translated (no English sentence left), placeholders filled, the glossary's terms used; English
unchanged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.domain.errors import Refusal, UserError
from bot.domain.pool import PoolStatus, Streak
from bot.domain.states import IslandState
from bot.words import api_text, pool_text, refusals
from bot.words.catalogue import speaking
from tests.words.chinese import assert_chinese
from tests.words.test_refusals import SAMPLES

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _chinese(text: str) -> None:
    assert_chinese(text)


def _zh(render: object) -> str:
    assert callable(render)
    with speaking("zh-CN"):
        said = render()
    assert isinstance(said, str)
    return said


def _status(**changes: object) -> PoolStatus:
    status = PoolStatus(
        branch="dev",
        size=3,
        size_source="chat",
        size_set_by="U9",
        max_age=timedelta(hours=12, minutes=30),
        ready=2,
        starting=1,
        stopping=1,
        failed=1,
        claims_today=4,
        misses_today=1,
        code_version="abc123",
        refreshed_at=NOW,
    )
    return PoolStatus(**{**status.__dict__, **changes})


@pytest.mark.parametrize("refusal", list(Refusal))
def test_every_refusal_is_said_in_chinese(refusal: Refusal) -> None:
    detail, _shown = SAMPLES[refusal]
    error = UserError(refusal, **detail)
    english = refusals.text(error)
    chinese = _zh(lambda: refusals.text(error))
    assert chinese != english
    _chinese(chinese)
    assert refusals.text(error) == english  # outside the block: English again


@pytest.mark.parametrize(
    "refusal",
    [
        Refusal.PORTS_STILL_NEEDED,
        Refusal.CANNOT_RESTART,
        Refusal.CANNOT_EXTEND,
        Refusal.NO_LOGS,
        Refusal.CLOCK_NOT_NOW,
        Refusal.REGISTRATION_STOPPED,
    ],
)
@pytest.mark.parametrize("state", list(IslandState))
def test_an_islands_state_is_named_in_chinese(refusal: Refusal, state: IslandState) -> None:
    error = UserError(refusal, island_id=4, state=state.value)
    chinese = _zh(lambda: refusals.text(error))
    assert "岛 #4" in chinese and state.value not in chinese
    _chinese(chinese)
    assert f"{state.value}" in refusals.text(error)


@pytest.mark.parametrize(
    "state", ["applying", "applied", "rejected", "expired", "superseded", "failed"]
)
def test_a_closed_clock_requests_state_is_named_in_chinese(state: str) -> None:
    error = UserError(Refusal.CLOCK_REQUEST_CLOSED, request_id=11, state=state)
    chinese = _zh(lambda: refusals.text(error))
    assert "改时间申请 11" in chinese and state not in chinese
    assert refusals.text(error) == f"Clock request 11 is already {state}."


@pytest.mark.parametrize(
    ("action", "verb"),
    [("stop", "关岛"), ("restart", "重启"), ("extend", "续期"), ("logs", "logs")],
)
def test_who_may_act_on_an_island_names_the_action(action: str, verb: str) -> None:
    error = UserError(Refusal.NOT_ALLOWED, action=action, island_id=9, who=["U1", "U2"])
    chinese = _zh(lambda: refusals.text(error))
    assert verb in chinese and "岛主或管理员" in chinese and "<@U1>, <@U2>" in chinese
    assert refusals.text(error) == (
        f"Only its owner or an admin may {action} island #9: <@U1>, <@U2>."
    )


def test_refusals_in_chinese_use_chinese_durations_and_the_glossary() -> None:
    far = UserError(Refusal.EXTEND_TOO_FAR, island_id=2, max_ttl_s=2 * 86400, room_s=3 * 3600)
    assert _zh(lambda: refusals.text(far)) == "岛 #2 从现在起最多还能存活2天，最多只能续期3小时。"
    bounds = UserError(Refusal.CLOCK_OUT_OF_BOUNDS, island_id=2, bound_s=30 * 86400)
    assert "30天" in _zh(lambda: refusals.text(bounds))
    assert "真实时间" in _zh(lambda: refusals.text(bounds))
    nobody = UserError(Refusal.NO_POOL_ADMIN, who=[])
    assert "ISLANDBOT_ADMINS 为空" in _zh(lambda: refusals.text(nobody))
    assert "预热池" in _zh(lambda: refusals.text(nobody))
    none = UserError(Refusal.OVERRIDE_NOT_ALLOWED, key="image", branch="dev", allowed=[])
    assert _zh(lambda: refusals.text(none)).endswith("：无")
    earlier = UserError(Refusal.LOGS_UNAVAILABLE, island_id=2, previous=False)
    assert "日志" in _zh(lambda: refusals.text(earlier))
    assert "上一次" not in _zh(lambda: refusals.text(earlier))


def test_english_refusals_are_unchanged() -> None:
    texts = {
        Refusal.QUOTA_EXCEEDED: (
            "You already have 2 live islands (#3, #5); the limit is 2 per person. Stop one "
            "with `/island stop &lt;id&gt;` and try again."
        ),
        Refusal.EXTEND_TOO_FAR: (
            "Island #2 may live at most 2d from now; it can be extended by 3h at most."
        ),
        Refusal.LOGS_UNAVAILABLE: (
            "Could not read its previous run's log for island #2 (the server may not have "
            "started yet, or has never restarted). Try again in a moment."
        ),
        Refusal.OVERRIDE_NOT_ALLOWED: "'image' cannot be set on dev islands; allowed: none",
        Refusal.NO_LOGS: "Island #2 is requested: it has no pod to read logs from.",
    }
    for refusal, english in texts.items():
        assert refusals.text(UserError(refusal, **SAMPLES[refusal][0])) == english
    nobody = refusals.text(UserError(Refusal.NO_POOL_ADMIN, who=[]))
    assert nobody == (
        "Only admins steer the warm pools: no one (ISLANDBOT_ADMINS is empty). "
        "`/island pool` shows them to anyone."
    )


def test_the_warm_pools_in_chinese() -> None:
    tz = UTC
    failing = _status(streak=Streak(failures=3, held_until=NOW + timedelta(minutes=5)))
    shown = _zh(
        lambda: pool_text.pools([failing, _status(branch="weekly")], branch=None, now=NOW, tz=tz)
    )
    _chinese(shown)
    assert shown.startswith("*预热池*")
    assert "- *dev*：共 3 个，2 个就绪" in shown and "<@U9>" in shown
    assert "12小时30分" in shown and "abc123" in shown and "2024-05-01 12:00:00 UTC" in shown
    assert "最近 3 个预热岛都失败了" in shown
    for none in (
        _zh(lambda: pool_text.pools([], branch=None, now=NOW, tz=tz)),
        _zh(lambda: pool_text.pools([], branch="dev", now=NOW, tz=tz)),
    ):
        _chinese(none)
        assert "预热池" in none and "size=N`" in none
    for said in (
        _zh(lambda: pool_text.size_set(_status(), by_default=True)),
        _zh(lambda: pool_text.size_set(_status(size=0), by_default=False)),
        _zh(lambda: pool_text.size_set(_status(), by_default=False)),
        _zh(lambda: pool_text.refreshed("dev", 0)),
        _zh(lambda: pool_text.refreshed("dev", 2)),
    ):
        _chinese(said)
        assert "dev 预热" in said


@pytest.mark.parametrize("why", ["empty", "options"])
@pytest.mark.parametrize("typical", [None, 45, 300])
def test_a_pool_miss_in_chinese(why: str, typical: int | None) -> None:
    detail: dict[str, object] = {"why": why}
    if typical is not None:
        detail["typical_s"] = typical
    said = _zh(lambda: pool_text.miss(detail, branch="dev"))
    _chinese(said)
    assert "新起的岛" in said
    if typical == 45:
        assert "45秒" in said
    if typical == 300:
        assert "5分钟" in said


def test_english_pool_words_are_unchanged() -> None:
    line = pool_text.pools([_status()], branch=None, now=NOW, tz=UTC)
    assert line == (
        "*Warm pools* (islands started ahead, handed out at once by `/island start`):\n"
        "- *dev*: 2 ready, 1 starting, 1 being renewed, 1 failed of 3 (set from chat by <@U9>); "
        "today 4 handed out, 1 started fresh instead; renewed after 12h30m, code abc123, "
        "refreshed 2024-05-01 12:00:00 UTC."
    )
    assert pool_text.pools([], branch=None, now=NOW, tz=UTC) == (
        "No warm pools. Admins start one with `/island pool &lt;branch&gt; size=N`."
    )
    assert pool_text.miss({"why": "empty", "typical_s": 300}, branch="dev") == (
        "No warm dev island was free, so this is a fresh one: usually about 5 minutes."
    )


def test_the_api_errors_in_chinese() -> None:
    texts = [getattr(api_text, name) for name in dir(api_text) if name.startswith("API_")]
    assert len(texts) == 12
    for english in texts:
        chinese = _zh(lambda english=english: api_text.said(english))
        assert chinese != english
        _chinese(chinese)
        assert api_text.said(english) == english
    assert _zh(lambda: api_text.api_body_too_big(65536)) == "请求体最多 65536 字节"
    assert api_text.api_body_too_big(65536) == "the body may be 65536 bytes at most"
