"""The island image's ``seed.sh``, run by ``sh`` as the container runs it, against the bot's
real registration endpoint (the demo's wiring over kubesim) and a stand-in server start script.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from bot.run.demo import Demo
from tests.demoworld import demo_on, start
from tests.http.test_api import call, token_of
from tests.paths import ROOT

SEED = ROOT / "deploy" / "island-image" / "seed.sh"
pytestmark = pytest.mark.skipif(
    shutil.which("curl") is None and not os.environ.get("CI"), reason="seed.sh needs curl"
)
START_SCRIPT = """\
printf '%s\\n' "$@" > "$(dirname "$0")/started"
printf 'server=%s\\n' "$PORT_SERVER_PORT" >> "$(dirname "$0")/started"
"""


def seed(
    tmp_path: Path, args: list[str], env: dict[str, str], timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "start.sh").write_text(START_SCRIPT)
    base = {
        "PATH": os.environ["PATH"],
        "FAKETIME_TIMESTAMP_FILE": str(tmp_path / "clock" / "server-faketime.rc"),
        "ISLAND_SERVER_START": str(tmp_path / "start.sh"),
        "NODE_NAME": "dev-1",
        "POD_IP": "10.1.2.3",
        "SERVER_VERSION": "2.7.0",
        "PORT_APP_COMMON_PORT": "38000",
        "PORT_REMOTE_MSG_PORT": "38001",
        "PORT_SERVER_PORT": "38002",
    }
    return subprocess.run(
        ["sh", str(SEED), *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def island_env(demo: Demo, sim: Any, n: int) -> dict[str, str]:
    return {
        "ISLANDBOT_REGISTER_URL": f"{demo.server.url}/api/v1/islands/{n}/register",
        "ISLANDBOT_REGISTER_TOKEN": token_of(sim, demo.islands.get(n).pod_name),
    }


def test_seed_writes_the_clock_registers_and_starts_the_server(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, sim):
        n = start(demo)
        env = island_env(demo, sim, n)
        result = seed(tmp_path, [str(n), "false", "1269", "2021-09-18 23:30:07"], env)
        assert result.returncode == 0, result.stdout + result.stderr
        clock = (tmp_path / "clock" / "server-faketime.rc").read_text()
        assert clock == "@2021-09-18 23:30:07\n"
        started = (tmp_path / "started").read_text().splitlines()
        assert started == [str(n), "false", "1269", "2021-09-18 23:30:07", "server=38002"]
        assert f"island {n} registered with islandbot (attempt 1)" in result.stdout
        assert env["ISLANDBOT_REGISTER_TOKEN"] not in result.stdout + result.stderr
        island = call(demo, "GET", f"/api/v1/islands/{n}")[1]
        assert island["registration"] == {
            "node": "dev-1",
            "pod_ip": "10.1.2.3",
            "version": "2.7.0",
            "ports": {"app-common-port": 38000, "remote-msg-port": 38001, "server-port": 38002},
        }


def test_a_refused_registration_stops_before_the_server(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, sim):
        n = start(demo)
        env = {**island_env(demo, sim, n), "ISLANDBOT_REGISTER_TOKEN": "stolen-or-stale"}
        result = seed(tmp_path, [str(n), "false", "1269", "2021-09-18 23:30:07"], env)
        assert result.returncode == 3
        assert "registration refused: HTTP 401" in result.stdout
        assert not (tmp_path / "started").exists()
        assert call(demo, "GET", f"/api/v1/islands/{n}")[1]["registered_at"] is None


def test_registration_retries_then_gives_up_within_its_deadline(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "ISLANDBOT_REGISTER_URL": f"http://127.0.0.1:{port}/api/v1/islands/7/register",
        "ISLANDBOT_REGISTER_TOKEN": "t0ken-value",
        "ISLANDBOT_REGISTER_TIMEOUT": "4",
    }
    began = time.monotonic()
    result = seed(tmp_path, ["7", "false", "1007", "2021-09-18 23:30:07"], env)
    took = time.monotonic() - began
    assert result.returncode == 4
    assert "registration attempt 1 failed (no answer" in result.stdout
    assert "registration attempt 2 failed" in result.stdout
    assert "registration gave up after 3 attempts" in result.stdout
    assert took < 10
    assert not (tmp_path / "started").exists()
    assert "t0ken-value" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["7", "false", "1007", "2021-13-45 99:00:00"], "initial clock '2021-13-45 99:00:00'"),
        (["7", "false", "1007", "yesterday"], "initial clock 'yesterday'"),
        (["seven", "false", "1007", "2021-09-18 23:30:07"], "island id 'seven' is not a number"),
        (["7", "false", "1007"], "usage: seed.sh"),
    ],
)
def test_bad_arguments_exit_2_and_touch_nothing(tmp_path: Path, args: list[str], said: str) -> None:
    result = seed(tmp_path, args, {"ISLANDBOT_REGISTER_URL": "http://127.0.0.1:9/x"})
    assert result.returncode == 2
    assert said in result.stdout
    assert not (tmp_path / "clock").exists()
    assert not (tmp_path / "started").exists()


def test_no_start_script_is_a_clear_failure(tmp_path: Path) -> None:
    result = seed(
        tmp_path,
        ["7", "false", "1007", "2021-09-18 23:30:07"],
        {"ISLAND_SERVER_START": str(tmp_path / "missing.sh")},
    )
    assert result.returncode == 5
    assert "no ISLANDBOT_REGISTER_URL: not registering" in result.stdout
    assert "no server start script at" in result.stdout
