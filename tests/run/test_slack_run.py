"""The bot as it is run: ``chats.slack_bot`` from settings in Socket Mode (a real WebSocket to
the fake Slack), and ``islandbot run`` as a process in HTTP mode, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bot.run.chats import slack_bot
from bot.run.settings import ConfigError
from bot.run.settings_env import load_settings
from bot.run.slack_setup import check_slack_settings
from kubesim import running
from tests import fakeslack
from tests.dbutil import sqlite_url
from tests.slackworld import SIM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_refuses_to_start_without_what_slack_needs() -> None:
    with pytest.raises(ConfigError) as caught:
        check_slack_settings(load_settings({}))
    assert "SLACK_BOT_TOKEN" in str(caught.value)
    assert "SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN" in str(caught.value)
    check_slack_settings(
        load_settings(
            {"SLACK_BOT_TOKEN": "xoxb-1-123456789", "SLACK_APP_TOKEN": "xapp-1-123456789"}
        )
    )


def test_socket_mode_carries_commands_and_acks_them(tmp_path: Path) -> None:
    socket_fake = fakeslack.SocketModeFake()
    with (
        running(SIM, kubeconfig_path=tmp_path / "kubeconfig") as sim,
        fakeslack.serving() as fake,
    ):
        fake.socket_url = socket_fake.start()
        settings = load_settings(
            {
                "ISLANDBOT_DATABASE_URL": sqlite_url(tmp_path),
                "ISLANDBOT_KUBECONFIG": str(sim.kubeconfig_path),
                "ISLANDBOT_PORT_RANGE": "38000-38299",
                "ISLANDBOT_HTTP_ADDRESS": "127.0.0.1:0",
                "ISLANDBOT_SLACK_API_URL": fake.api_url,
                "SLACK_BOT_TOKEN": fakeslack.BOT_TOKEN,
                "SLACK_APP_TOKEN": "xapp-1-test-token",
            }
        )
        bot = slack_bot(settings)
        assert bot.socket_mode is not None
        bot.start()
        assert bot.server is not None
        with pytest.raises(urllib.error.HTTPError) as refused:  # no signing secret: no route
            urllib.request.urlopen(f"{bot.server.url}/slack/events", data=b"{}", timeout=5)
        assert refused.value.code in (404, 405)
        try:
            fake.wait_for(lambda: socket_fake.connections >= 1)
            help_id = socket_fake.send("slash_commands", fakeslack.command_payload("help"))
            ack = fake.wait_for(lambda: socket_fake.acks.get(help_id), 10)
            assert "/island start" in ack["payload"]["text"]
            start_id = socket_fake.send("slash_commands", fakeslack.command_payload("start dev"))
            fake.wait_for(lambda: socket_fake.acks.get(start_id), 10)
            root = fake.wait_for(lambda: fake.posts("C0TEAM"))[0]
            fake.wait_for(
                lambda: any("is ready on" in m["text"] for m in fake.thread("C0TEAM", root["ts"])),
                30,
            )
            home_id = socket_fake.send("events_api", json.loads(fakeslack.home_opened()))
            fake.wait_for(lambda: socket_fake.acks.get(home_id), 10)
            fake.wait_for(lambda: fake.homes.get("U0ALICE"))
        finally:
            bot.stop()
            socket_fake.stop()


def test_islandbot_run_in_http_mode_and_sigterm(tmp_path: Path) -> None:
    with (
        running(SIM, kubeconfig_path=tmp_path / "kubeconfig") as sim,
        fakeslack.serving() as fake,
    ):
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ISLANDBOT_", "SLACK_"))},
            "ISLANDBOT_DATABASE_URL": sqlite_url(tmp_path),
            "ISLANDBOT_KUBECONFIG": str(sim.kubeconfig_path),
            "ISLANDBOT_PORT_RANGE": "38300-38599",
            "ISLANDBOT_HTTP_ADDRESS": f"127.0.0.1:{port}",
            "ISLANDBOT_SLACK_API_URL": fake.api_url,
            "SLACK_BOT_TOKEN": fakeslack.BOT_TOKEN,
            "SLACK_SIGNING_SECRET": fakeslack.SIGNING_SECRET,
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.run.cli", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert "running (Slack: POST /slack/events" in line, proc.stderr.read()  # type: ignore[union-attr]
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                assert json.loads(r.read()) == {"status": "ok"}
            body = fakeslack.slash_command("start dev", response_url=fake.response_url("a"))
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/slack/events",
                data=body.encode(),
                headers={"Content-Type": fakeslack.FORM, **fakeslack.sign(body)},
            )
            with urllib.request.urlopen(request, timeout=5) as r:
                assert r.status == 200
            root = fake.wait_for(lambda: fake.posts("C0TEAM"))[0]
            fake.wait_for(
                lambda: any("is ready on" in m["text"] for m in fake.thread("C0TEAM", root["ts"])),
                30,
            )
            began = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
            assert time.monotonic() - began < 15
            logged = proc.stderr.read()  # type: ignore[union-attr]
            assert fakeslack.BOT_TOKEN not in logged and fakeslack.SIGNING_SECRET not in logged
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
