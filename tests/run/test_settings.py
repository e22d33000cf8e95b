"""Settings: defaults, every variable parsed, every bad value named with what is accepted."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.domain.port_blocks import PortRange
from bot.run.settings import ConfigError, Secret, Settings
from bot.run.settings_env import describe_settings, env_names, load_settings
from tests.paths import ROOT


def test_defaults_without_any_environment() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.database_url == "sqlite:///islandbot.db"
    assert settings.port_range == PortRange(30000, 39999)
    assert settings.default_ttl == timedelta(hours=8)
    assert settings.max_islands_per_user == 3
    assert settings.namespace == "islands"
    assert settings.admins == frozenset()
    assert settings.slack_bot_token is None
    assert settings.is_sqlite


def test_every_variable_is_read() -> None:
    settings = load_settings(
        {
            "ISLANDBOT_DATABASE_URL": "mysql+pymysql://bot:pw@db:3306/islands",
            "ISLANDBOT_DB_POOL_SIZE": "20",
            "ISLANDBOT_PORT_RANGE": " 40000-40999 ",
            "ISLANDBOT_DEFAULT_TTL": "90m",
            "ISLANDBOT_MAX_TTL": "2d",
            "ISLANDBOT_MAX_ISLANDS_PER_USER": "5",
            "ISLANDBOT_NAMESPACE": "game-islands",
            "ISLANDBOT_ADMINS": "U0123ABCD, W9ZZZ ,",
            "ISLANDBOT_LOG_LEVEL": "debug",
            "ISLANDBOT_LANGUAGE": "zh",
            "SLACK_BOT_TOKEN": "xoxb-1234-5678-abcdef",
            "SLACK_SIGNING_SECRET": "0123456789abcdef",
            "SLACK_APP_TOKEN": "xapp-1-A111-222-abcdef",
            "ISLANDBOT_TEST_MYSQL_URL": "ignored: belongs to the test suite",
        }
    )
    assert settings.database_url.startswith("mysql+pymysql://")
    assert not settings.is_sqlite
    assert settings.db_pool_size == 20
    assert settings.port_range == PortRange(40000, 40999)
    assert settings.default_ttl == timedelta(minutes=90)
    assert settings.max_ttl == timedelta(days=2)
    assert settings.max_islands_per_user == 5
    assert settings.namespace == "game-islands"
    assert settings.admins == frozenset({"U0123ABCD", "W9ZZZ"})
    assert settings.log_level == "DEBUG"
    assert settings.language == "zh-CN"  # the language the bot speaks that fits the tag
    assert settings.slack_bot_token == Secret("xoxb-1234-5678-abcdef")
    assert settings.slack_app_token is not None
    assert settings.slack_app_token.reveal() == "xapp-1-A111-222-abcdef"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("ISLANDBOT_DATABASE_URL", "postgres://x", "expected sqlite:///FILE or mysql+pymysql://"),
        ("ISLANDBOT_DB_POOL_SIZE", "0", "whole number from 1 to 100"),
        ("ISLANDBOT_DB_POOL_SIZE", "ten", "whole number from 1 to 100"),
        ("ISLANDBOT_PORT_RANGE", "40000-30000", "1024 <= FIRST <= LAST <= 65535"),
        ("ISLANDBOT_PORT_RANGE", "30000", "expected FIRST-LAST"),
        ("ISLANDBOT_PORT_RANGE", "80-90", "1024 <= FIRST"),
        ("ISLANDBOT_PORT_RANGE", "30000-70000", "LAST <= 65535"),
        ("ISLANDBOT_DEFAULT_TTL", "8 hours", "not a duration"),
        ("ISLANDBOT_DEFAULT_TTL", "0h", "not a positive duration"),
        ("ISLANDBOT_MAX_ISLANDS_PER_USER", "-1", "whole number from 1 to 1000"),
        ("ISLANDBOT_NAMESPACE", "Islands_Prod", "DNS-1123 label"),
        ("ISLANDBOT_ADMINS", "alice,U0123ABCD", "alice is not a Slack user id"),
        ("ISLANDBOT_LOG_LEVEL", "chatty", "DEBUG, INFO, WARNING, ERROR"),
        ("ISLANDBOT_LANGUAGE", "fr-FR", "expected one of en, zh-CN"),
        ("SLACK_APP_TOKEN", "xoxb-looks-like-a-bot-token", "starts with 'xapp-'"),
    ],
)
def test_bad_values_name_the_variable_the_value_and_what_is_accepted(
    name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({name: value})
    (problem,) = err.value.problems
    assert problem.startswith(f"{name}=")
    assert expected in problem
    if not name.startswith("SLACK_"):
        assert repr(value) in problem


def test_secrets_never_appear_in_errors_or_reprs() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"SLACK_BOT_TOKEN": "xoxp-user-token-secret-value"})
    assert "secret-value" not in str(err.value)
    assert "<hidden>" in str(err.value)
    settings = load_settings({"SLACK_SIGNING_SECRET": "super-secret-123"})
    assert "super-secret" not in repr(settings)
    assert "super-secret" not in str(describe_settings(settings))


def test_all_problems_are_reported_at_once_with_typo_hints() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(
            {
                "ISLANDBOT_PORT_RANGE": "x",
                "ISLANDBOT_NAMESPCE": "islands",
                "ISLANDBOT_DEFAULT_TTL": "never",
            }
        )
    text = str(err.value)
    assert len(err.value.problems) == 3
    assert "ISLANDBOT_NAMESPCE: unknown setting; did you mean ISLANDBOT_NAMESPACE?" in text


def test_max_ttl_below_default_is_refused() -> None:
    with pytest.raises(ConfigError, match="ISLANDBOT_MAX_TTL=1h: must be at least"):
        load_settings({"ISLANDBOT_MAX_TTL": "1h"})


def test_empty_values_mean_default() -> None:
    assert load_settings({"ISLANDBOT_ADMINS": "", "SLACK_BOT_TOKEN": "  "}) == Settings()


def test_database_password_is_masked_for_display() -> None:
    settings = load_settings({"ISLANDBOT_DATABASE_URL": "mysql+pymysql://bot:s3cret@db/x"})
    shown = dict(describe_settings(settings))
    assert shown["ISLANDBOT_DATABASE_URL"] == "mysql+pymysql://bot:****@db/x"
    assert list(shown) == env_names()


def test_the_configuration_doc_documents_every_setting_with_its_default() -> None:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    rows = {}
    for line in doc.splitlines():
        if line.startswith("| `") and line.count("|") >= 4:
            cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
            rows[cells[0]] = cells[1]
    documented = {name: rows.get(name) for name in env_names()}
    assert documented == dict(describe_settings(Settings()))


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("https://islands.example.com", True),
        ("http://10.0.0.5:3000/", True),
        ("https://islands.example.com/islandbot", False),  # the board's paths are absolute
        ("islands.example.com", False),
        ("https://x.example.com/?a=1", False),
    ],
)
def test_the_board_url_names_a_server_without_a_path(value: str, ok: bool) -> None:
    if ok:
        assert load_settings({"ISLANDBOT_BOARD_URL": value}).board_url == value.rstrip("/")
    else:
        with pytest.raises(ConfigError, match="ISLANDBOT_BOARD_URL"):
            load_settings({"ISLANDBOT_BOARD_URL": value})


def test_a_short_board_secret_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"ISLANDBOT_BOARD_SECRET": "tooshort-secret"})
    assert "tooshort-secret" not in str(caught.value) and "32 characters" in str(caught.value)
