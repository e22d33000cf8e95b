"""The console demo, whole, in Chinese: a Chinese-speaking tester starts an island, reads it
ready with its ports, shifts its clock with the owner's approval, extends it, reads its log,
looks at the pools, capacity and help, and stops it, and reads no English on the way (but
what they typed, names, ids, ports and commands)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.paths import ROOT
from tests.run.test_cli import run

EVERYTHING = """\
help
wait
@alice /island start dev note="checkout flow"
wait
@bob /island time 1 +2d
wait
@alice press 4
wait
/island status 1
/island extend 1 2h
/island logs 1 lines=5
/island time 1 history
/island time 1 now
/island list
/island list mine
/island capacity
/island pool
/island board
@bob /island stop 1
/island frobnicate
/island strat dev
/island help time
/island help
@carol /island start nosuchbranch
@alice /island stop 1
wait
"""

# what is not prose: stamps, message and button numbers, mentions, commands and what people
# typed, code, links, addresses, port names, sizes, times, zone names
_NOT_PROSE = re.compile(
    r"\d\d:\d\d:\d\d|\[[mb]\d+\]|@\w+|`[^`]*`|/island[^\n，。）]*|https?://\S+|sqlite:\S+"
    r"|[\w.-]+-port\b|\b[\w-]+\.(?:txt|log|db)\b|\d+(?:\.\d+)*|\b(?:Mi|Gi|Ki|UTC|KUBECONFIG|kubectl"
    r"|pods|get|islands|wide|pod|Pod|API|HTTP|JSON|id|dev|main|weekly|alice|bob|carol"
    r"|checkout flow|nosuchbranch|frobnicate|strat|note|ttl|set|mine|all|now|history|lines"
    r"|previous|size|default|refresh|at|KEY|VALUE|OOMKilled|islandbot|healthz|board|login"
    r"|pass|press|wait|sleep|fault|memory-climb|ID|help|quit|SECONDS|N|start|stop|restart"
    r"|extend|list|status|logs|time|capacity|pool|command)\b"
)
_SERVER_LOG = re.compile(r"^\s+(?:INFO|WARN|ERROR|DEBUG|server:)")
_ENGLISH_RUN = re.compile(r"[A-Za-z]{2,}(?:[\s,;:'-]+[A-Za-z]{2,}){2,}")


def english_left(text: str) -> list[str]:
    """Runs of three or more English words a reader would have to read."""
    found = []
    for line in text.splitlines():
        if _SERVER_LOG.match(line):
            continue  # the island server's own log, as it wrote it
        said = line.split("> ", 1)[0]  # a console line: what was typed is the person's own
        found += _ENGLISH_RUN.findall(_NOT_PROSE.sub(" ", said))
    return found


def _chinese_run(tmp_path: Path, *args: str, env: dict[str, str]) -> str:
    (tmp_path / "script.txt").write_text(EVERYTHING)
    result = run("demo", "--script", "script.txt", *args, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_the_demo_runs_whole_in_chinese(tmp_path: Path) -> None:
    out = _chinese_run(tmp_path, "--lang", "zh-CN", env={})
    assert "岛 #1" in out and "就绪" in out  # ready, with its ports
    assert "app-common-port 30000" in out
    assert "改时间" in out or "岛上时间" in out
    assert "批准" in out  # the approval
    assert "续期" in out  # extended
    assert "已关" in out  # stopped
    assert "刮风" in out  # the help names the design note's word, beside 改时间
    assert english_left(out) == []


@pytest.mark.slow
def test_the_deployments_language_comes_from_the_environment_too(tmp_path: Path) -> None:
    out = _chinese_run(tmp_path, env={"ISLANDBOT_LANGUAGE": "zh-CN"})
    assert "岛 #1" in out and english_left(out) == []


def test_the_english_tour_is_english_and_the_checker_sees_english(tmp_path: Path) -> None:
    (tmp_path / "tour.txt").write_text((ROOT / "examples" / "demo-tour.txt").read_text())
    result = run("demo", "--script", "tour.txt", env={}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "is ready on" in result.stdout
    assert english_left(result.stdout)  # the check above would see English left over


def test_an_unknown_language_is_refused_with_the_ones_there_are(tmp_path: Path) -> None:
    result = run("demo", "--lang", "fr", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert "en, zh-CN" in result.stderr
    bad = run("config", env={"ISLANDBOT_LANGUAGE": "klingon"}, cwd=tmp_path)
    assert bad.returncode != 0 and "ISLANDBOT_LANGUAGE" in bad.stderr
