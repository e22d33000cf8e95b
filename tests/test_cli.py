"""The installed ``islandbot`` command, run as a user runs it (a real subprocess)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from bot import schema

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
    assert f"(empty) (behind, newest is {schema.head_revision()})" in first.stdout
    up = run("db", "upgrade", env=env, cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert f"database at revision {schema.head_revision()}" in up.stdout
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
    shutil.copytree(Path(__file__).resolve().parent.parent / "k8s_templates", templates)
    (templates / "branches" / "dev.yaml").write_text("pod:\n  spec:\n    restartPolicy: 7\n")
    result = run("demo", env={"ISLANDBOT_TEMPLATES_DIR": str(templates)}, cwd=tmp_path)
    assert result.returncode == 1
    assert "dev.yaml (rendered over island-pod.yaml): spec.restartPolicy" in result.stderr
    assert not (tmp_path / "islandbot.db").exists()


def test_demo_prepares_the_embedded_database(tmp_path: Path) -> None:
    result = run("demo", env={}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "islandbot.db").exists()
    assert f"revision {schema.head_revision()} (just migrated)" in result.stdout
    assert "3333 of 3333 port blocks of 3 free in 30000-39999" in result.stdout
