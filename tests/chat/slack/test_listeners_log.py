"""Building the Slack app logs nothing at warning level when ``SLACK_BOT_TOKEN`` is set as
deployed (slack_bolt would warn at every start that the client's token is used instead)."""

from __future__ import annotations

import logging

import pytest

from bot.chat.slack.listeners import SlackListeners
from bot.chat.slack.sender import web_client


def test_building_the_app_with_the_token_in_the_environment_warns_of_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    with caplog.at_level(logging.WARNING):
        app = SlackListeners(front=None).build_app(  # type: ignore[arg-type]
            signing_secret="s3cret",
            client=web_client("xoxb-test-token", base_url="http://127.0.0.1:9/api/"),
            verify_token=False,
        )
    assert app.client.token == "xoxb-test-token"
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
