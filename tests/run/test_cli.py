"""The installed ``islandbot`` command, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from bot.infra.storage import migrate
from tests.paths import ROOT

ISLANDBOT = str(Path(sys.executable).parent / "islandbot")


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ISLANDBOT_", "SLACK_"))}
    return subprocess.run(
        [ISLANDBOT, *args],
        env={**clean, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_db_upgrade_current_and_downgrade(tmp_path: Path) -> None:
    env = {"ISLANDBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    first = run("db", "current", env=env, cwd=tmp_path)
    assert first.returncode == 0
    assert f"(empty) (behind, newest is {migrate.head_revision()})" in first.stdout
    up = run("db", "upgrade", env=env, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert f"database at revision {migrate.head_revision()}" in up.stdout
    assert "(up to date)" in run("db", "current", env=env, cwd=tmp_path).stdout
    down = run("db", "downgrade", "base", env=env, cwd=tmp_path)
    assert down.returncode == 0 and "(empty)" in down.stdout
    tables = sa.inspect(sa.create_engine(env["ISLANDBOT_DATABASE_URL"])).get_table_names()
    assert tables == ["alembic_version"]


def test_bad_settings_stop_the_command_with_every_problem(tmp_path: Path) -> None:
    result = run(
        "db",
        "upgrade",
        env={
            "ISLANDBOT_PORT_RANGE": "99999-1",
            "ISLANDBOT_MAX_ISLANDS_PER_USER": "lots",
            "SLACK_BOT_TOKEN": "xoxp-not-a-bot-token",
        },
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "ISLANDBOT_PORT_RANGE='99999-1'" in result.stderr
    assert "ISLANDBOT_MAX_ISLANDS_PER_USER='lots'" in result.stderr
    assert "SLACK_BOT_TOKEN=<hidden>" in result.stderr
    assert "not-a-bot-token" not in result.stderr
    assert not (tmp_path / "islandbot.db").exists()  # nothing was created


def test_config_shows_settings_with_secrets_masked(tmp_path: Path) -> None:
    result = run("config", env={"SLACK_SIGNING_SECRET": "abcdef0123456789"}, cwd=tmp_path)
    assert result.returncode == 0
    assert "ISLANDBOT_PORT_RANGE" in result.stdout and "30000-39999" in result.stdout
    assert "abcdef0123456789" not in result.stdout
    assert "templates: branches dev, weekly; 3 ports per island" in result.stdout


def test_a_broken_template_stops_the_bot_with_the_file_and_field(tmp_path: Path) -> None:
    templates = tmp_path / "templates"
    shutil.copytree(ROOT / "k8s_templates", templates)
    (templates / "branches" / "dev.yaml").write_text("pod:\n  spec:\n    restartPolicy: 7\n")
    result = run("demo", env={"ISLANDBOT_TEMPLATES_DIR": str(templates)}, cwd=tmp_path)
    assert result.returncode == 1
    assert "dev.yaml (rendered over island-pod.yaml): spec.restartPolicy" in result.stderr
    assert not (tmp_path / "islandbot.db").exists()


DEMO_SCRIPT = """\
# a script: one console line each
/island start dev
@bob /island start weekly
wait 60
@alice /island stop 1
@bob /island stop mine
/island frobnicate
wait 30
"""


def test_demo_runs_a_script_through_the_whole_bot(tmp_path: Path) -> None:
    (tmp_path / "demo.txt").write_text(DEMO_SCRIPT)
    # no warm pool: the islands are #1 and #2, each started fresh
    result = run("demo", "--script", "demo.txt", env={"ISLANDBOT_POOLS": "dev=0"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "HTTP API at http://127.0.0.1:" in out
    assert f"KUBECONFIG={Path('.islandbot-demo') / 'kubeconfig'} kubectl get pods" in out
    assert "island #1 is ready on 127.0.0.2: app-common-port 30000" in out
    assert "island #2 is ready on 127.0.0.4: app-common-port 30003" in out
    assert "(to bob only) I don't know the command 'frobnicate'" in out
    assert "Island #1 is stopped." in out and "Island #2 is stopped." in out
    db = tmp_path / ".islandbot-demo" / "islandbot.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        states = conn.execute(sa.text("SELECT id, state FROM islands ORDER BY id")).all()
    engine.dispose()
    assert [tuple(r) for r in states] == [(1, "stopped"), (2, "stopped")]


def test_demo_reads_standard_input_and_prints_json_lines(tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ISLANDBOT_", "SLACK_"))}
    result = subprocess.run(
        [ISLANDBOT, "demo", "--json"],
        input="/island start dev\nwait 60\n/island list\npress 999\n",
        env={**clean, "ISLANDBOT_POOLS": "dev=0"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]  # JSON only on stdout
    board, events = events[0], events[1:]  # the board's link for alice, first
    assert board["kind"] == "board" and board["user"] == "alice"
    assert "/board/login?pass=" in board["text"] and board["expires_at"]
    kinds = [e["kind"] for e in events]
    assert kinds[:2] == ["command", "post"]
    assert events[1]["buttons"][0] == {"press": 1, "label": "Stop"}
    ready = [e for e in events if e["kind"] == "reply" and "is ready" in e["text"]]
    assert len(ready) == 1 and ready[0]["thread"] == events[1]["message"]
    assert ready[0]["broadcast"] is True
    assert any(e["kind"] == "update" and e["message"] == 1 for e in events)
    listing = [e for e in events if e["kind"] == "ephemeral" and "Live islands" in e["text"]]
    assert listing and listing[0]["user"] == "alice"
    assert "no button `999`" in events[-1]["text"]
    assert "HTTP API at" in result.stderr  # the banner stays off the JSON stream


def test_demo_refuses_a_wait_that_times_out_with_exit_1(tmp_path: Path) -> None:
    (tmp_path / "demo.txt").write_text("/island start dev\nwait 0\n")
    result = run("demo", "--script", "demo.txt", env={"ISLANDBOT_POOLS": "dev=0"}, cwd=tmp_path)
    assert result.returncode == 1
    assert "Still not settled after 0 s: #1." in result.stdout


WARM_SCRIPT = """\
# the demo's dev pool (2 by default) warms up while nobody asks
wait 60
/island start dev note=warm
@bob /island start dev set memory=2Gi
wait 60
"""


def test_demo_hands_out_a_warm_island_at_once_and_says_why_another_start_is_fresh(
    tmp_path: Path,
) -> None:
    (tmp_path / "demo.txt").write_text(WARM_SCRIPT)
    result = run(
        "demo", "--script", "demo.txt", "--boot-delay", "3", "--json", env={}, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()][1:]
    said = [(e["kind"], e.get("text", "")) for e in events]
    warm = [t for k, t in said if k == "reply" and "(a warm island, handed over at once)" in t]
    assert len(warm) == 1 and "@alice island #1 is ready on 127.0.0." in warm[0]
    assert any("cannot take `set` options" in t and "fresh one" in t for _, t in said)
    fresh = [t for k, t in said if k == "reply" and "@bob island" in t and "is ready" in t]
    assert len(fresh) == 1 and "warm island" not in fresh[0]
    db = tmp_path / ".islandbot-demo" / "islandbot.db"
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT id, owner_id, claimed_at IS NOT NULL FROM islands ORDER BY id")
        ).all()
    engine.dispose()
    owners = {r[0]: (r[1], bool(r[2])) for r in rows}
    assert owners[1] == ("alice", True)  # the oldest warm island, handed over
    assert ("bob", False) in owners.values()
    # the pool was refilled: two warm islands again beside the claimed one
    assert sum(owner == "islandbot-pool" for owner, _ in owners.values()) >= 2
