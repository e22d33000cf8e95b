"""The Lark settings, checked at start like every setting: what is missing or malformed is
named, secrets are never echoed, and the chats the settings set up are the ones served."""

from __future__ import annotations

import pytest

from bot.run.chats import chat_bot
from bot.run.settings import ConfigError
from bot.run.settings_env import describe_settings, load_settings

APP = {"LARK_APP_ID": "cli_a1b2c3d4e5f6a7b8", "LARK_APP_SECRET": "s3cret-app-secret"}


def test_a_lark_deployment_reads_its_settings() -> None:
    settings = load_settings(
        {
            **APP,
            "LARK_VERIFICATION_TOKEN": "v-token-123456",
            "LARK_ENCRYPT_KEY": "e-key-123456",
            "ISLANDBOT_LARK_DOMAIN": "Lark",
            "ISLANDBOT_ADMINS": "U0ADMIN,ou_7d8a6e6df7621556ce0d21922b676706",
            "ISLANDBOT_ALLOWED_CHANNELS": "C0TEAM,oc_a0553eda9014c201e6969b478895c230",
        }
    )
    assert settings.lark_app_id == "cli_a1b2c3d4e5f6a7b8"
    assert settings.lark_origin == "https://open.larksuite.com"
    assert "ou_7d8a6e6df7621556ce0d21922b676706" in settings.admins
    assert "oc_a0553eda9014c201e6969b478895c230" in settings.allowed_channels
    shown = dict(describe_settings(settings))
    for secret in ("s3cret-app-secret", "v-token-123456", "e-key-123456"):
        assert secret not in str(shown) and secret not in repr(settings)
    assert load_settings(APP).lark_origin == "https://open.feishu.cn"  # Feishu by default
    url = load_settings({**APP, "ISLANDBOT_LARK_API_URL": "http://127.0.0.1:8123/"})
    assert url.lark_origin == "http://127.0.0.1:8123"


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"LARK_APP_ID": "app-1"}, "LARK_APP_ID='app-1': expected the App ID"),
        ({"ISLANDBOT_LARK_DOMAIN": "dingtalk"}, "expected feishu (open.feishu.cn) or lark"),
        ({"ISLANDBOT_LARK_API_URL": "http://open.example.com"}, "plain http is only for"),
        ({"ISLANDBOT_LARK_API_URL": "https://open.example.com/open-apis"}, "(no path)"),
        ({"LARK_APP_SECRET": "short"}, "LARK_APP_SECRET=<hidden>"),
        ({"ISLANDBOT_ADMINS": "alice"}, "not a Slack user id or a Lark open_id"),
        ({"ISLANDBOT_ALLOWED_CHANNELS": "#islands"}, "not a Slack channel id or a Lark chat id"),
    ],
)
def test_a_malformed_lark_setting_is_named(env: dict[str, str], problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(env)
    assert problem in str(refused.value)


@pytest.mark.parametrize(
    ("env", "problems"),
    [
        ({}, ["SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN"]),
        ({"LARK_APP_ID": APP["LARK_APP_ID"]}, ["LARK_APP_SECRET: needed with LARK_APP_ID"]),
        ({**APP, "LARK_ENCRYPT_KEY": "e-key-123456"}, ["LARK_VERIFICATION_TOKEN: needed"]),
        ({**APP, "SLACK_APP_TOKEN": "xapp-1-A0-123456"}, ["SLACK_BOT_TOKEN: needed"]),
    ],
)
def test_the_chats_settings_are_checked_before_anything_opens(
    env: dict[str, str], problems: list[str]
) -> None:
    settings = load_settings({"ISLANDBOT_DATABASE_URL": "sqlite:////nonexistent/dir/x.db", **env})
    with pytest.raises(ConfigError) as refused:
        chat_bot(settings)  # refused before the database (which could not open) is touched
    for problem in problems:
        assert problem in str(refused.value)
    assert len(refused.value.problems) == len(problems)
