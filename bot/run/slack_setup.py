"""Slack as a chat, set up from the settings: its sender (the ``ChatOutput``, built before the
bot), then its intake once the front exists: the events route (HTTP mode) when a signing
secret is set, Socket Mode when an app token is, and the people's languages read hourly."""

from __future__ import annotations

from bot.chat.front import ChatFront
from bot.chat.pacing import ChannelQueues
from bot.chat.slack.events_route import events_route
from bot.chat.slack.listeners import SlackListeners, SocketModeHandler, socket_mode_handler
from bot.chat.slack.sender import SlackSender, web_client
from bot.http.server import WebServer
from bot.run.loop import LifecycleService
from bot.run.settings import ConfigError, Settings

LANGUAGES_EVERY_S = 3600.0  # how often every person's Slack locale is read again


def slack_configured(settings: Settings) -> bool:
    return any(
        s is not None
        for s in (
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
        )
    )


def check_slack_settings(settings: Settings) -> None:
    """Raise ``ConfigError`` when what the bot needs to reach Slack is missing."""
    problems = []
    if settings.slack_bot_token is None:
        problems.append("SLACK_BOT_TOKEN: needed to talk to Slack (xoxb-...)")
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        problems.append(
            "SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode): one is needed "
            "to receive Slack's requests"
        )
    if problems:
        raise ConfigError(problems)


def slack_sender(settings: Settings, *, rate: float, burst: float, timeout_s: int) -> SlackSender:
    """The Slack ``ChatOutput`` (nothing is called before the bot starts)."""
    assert settings.slack_bot_token is not None
    client = web_client(
        settings.slack_bot_token.reveal(), base_url=settings.slack_api_url, timeout_s=timeout_s
    )
    return SlackSender(client, queues=ChannelQueues(rate=rate, burst=burst, name="slack"))


def serve_slack(
    sender: SlackSender,
    front: ChatFront,
    settings: Settings,
    *,
    service: LifecycleService,
    server: WebServer,
) -> SocketModeHandler | None:
    """Slack's requests to the front: the events route (HTTP mode) and, when an app token is
    set, the Socket Mode handler to connect when the bot starts (returned)."""
    # the people's languages, for answers meant for one of them: read at start, then hourly
    service.add_job(
        sender.locales.refresh,
        "slack-languages",
        seconds=LANGUAGES_EVERY_S,
        leader_only=False,
        at_once=True,
    )
    secret = settings.slack_signing_secret
    app = SlackListeners(front).build_app(
        signing_secret=secret.reveal() if secret else None, client=sender.client
    )
    if secret is not None:  # Socket Mode alone needs no (unauthenticated) HTTP route
        server.add_routes([events_route(app)])
    if settings.slack_app_token is not None:
        return socket_mode_handler(app, settings.slack_app_token.reveal())
    return None
