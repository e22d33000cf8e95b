"""The Slack app manifest declares what the bot uses: its command, events, buttons, and a
scope for every Web API method the bot calls."""

from __future__ import annotations

import ast

import yaml

from tests.paths import ROOT

MANIFEST = yaml.safe_load((ROOT / "deploy" / "slack-app-manifest.yaml").read_text())
# the scope each Web API method needs (Slack's method reference)
SCOPES = {
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "conversations_replies": {"channels:history", "groups:history", "im:history"},
    "conversations_history": {"channels:history", "groups:history", "im:history"},
    "files_upload_v2": {"files:write"},
    "views_publish": set(),
    "users_info": {"users:read"},
    "users_list": {"users:read"},
}


def test_command_events_and_interactivity() -> None:
    features, settings = MANIFEST["features"], MANIFEST["settings"]
    assert [c["command"] for c in features["slash_commands"]] == ["/island"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True


def test_every_web_api_method_the_bot_calls_has_its_scope() -> None:
    called = set()
    for path in (ROOT / "bot" / "chat" / "slack").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in SCOPES:
                called.add(node.attr)
    assert called == set(SCOPES), called  # a new method needs its scope listed here
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert "commands" in scopes
    for method in called:
        assert SCOPES[method] <= scopes, method
