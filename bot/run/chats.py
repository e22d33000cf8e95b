"""The bot on its chats: ``build`` (``bot.run.compose``) with Slack, Lark or both as the chat,
then each chat's intake served (``slack_setup``, ``lark_setup``)."""

from __future__ import annotations

from bot.chat.lark import ids as lark_ids
from bot.chat.output import ChatOutput
from bot.chat.router import ChatRouter, Routed
from bot.chat.slack.sender import SlackSender
from bot.infra.kubernetes.client import Kube
from bot.run.compose import Bot, Tuning, build
from bot.run.settings import ConfigError, Settings
from bot.run.slack_setup import (
    check_slack_settings,
    serve_slack,
    slack_configured,
    slack_sender,
)

DEFAULT_TUNING = Tuning()


def lark_problems(settings: Settings) -> list[str]:
    """What is missing for Lark (its settings given)."""
    problems = []
    if settings.lark_app_id is None:
        problems.append("LARK_APP_ID: needed with LARK_APP_SECRET (the app's Credentials page)")
    if settings.lark_app_secret is None:
        problems.append("LARK_APP_SECRET: needed with LARK_APP_ID (the app's Credentials page)")
    if settings.lark_encrypt_key is not None and settings.lark_verification_token is None:
        problems.append(
            "LARK_VERIFICATION_TOKEN: needed with LARK_ENCRYPT_KEY (HTTP events check both)"
        )
    return problems


def lark_configured(settings: Settings) -> bool:
    """Whether the settings set Lark up (any of its credentials given)."""
    return settings.lark_app_id is not None or settings.lark_app_secret is not None


def slack_bot(
    settings: Settings,
    *,
    kube: Kube | None = None,
    tuning: Tuning = DEFAULT_TUNING,
) -> Bot:
    """The bot with Slack as its chat. ``ConfigError`` when a Slack setting it needs is
    missing (before anything is opened). HTTP mode when a signing secret is set (the events
    route is served), Socket Mode when an app token is."""
    check_slack_settings(settings)
    sender = _slack(settings, tuning)
    bot = build(settings, chat=sender, kube=kube, tuning=tuning)
    _serve_slack(bot, sender)
    return bot


def chat_bot(
    settings: Settings,
    *,
    kube: Kube | None = None,
    tuning: Tuning = DEFAULT_TUNING,
) -> Bot:
    """Everything ``islandbot run`` runs: the bot on each chat its settings set up (Slack,
    Lark, or both: each island in the chat it was started from). ``ConfigError`` before
    anything is opened when no chat is set up or one's settings are incomplete."""
    problems = lark_problems(settings) if lark_configured(settings) else []
    slack = slack_configured(settings) or not lark_configured(settings)
    if slack:
        try:
            check_slack_settings(settings)
        except ConfigError as exc:
            problems = exc.problems + problems
    if problems:
        raise ConfigError(problems)
    slack_chat = _slack(settings, tuning) if slack else None
    lark = None
    if lark_configured(settings):
        # the Lark SDK is imported only to serve Lark (2 s and about 150 MB of modules)
        from bot.run import lark_setup  # noqa: PLC0415

        lark = lark_setup.lark_sender(settings, pace=tuning.lark_pace)
    chat: ChatOutput
    if slack_chat is not None and lark is not None:
        chat = ChatRouter(slack_chat, Routed(lark.sender, lark_ids.owns, lark.names.known))
    else:
        chat = slack_chat or lark.sender  # type: ignore[union-attr]
    bot = build(settings, chat=chat, kube=kube, tuning=tuning)
    if slack_chat is not None:
        _serve_slack(bot, slack_chat)
    if lark is not None:
        assert bot.front is not None
        lark.sender.queues.liveness = bot.heartbeat  # no call queued before a lapse made after
        lark_setup.serve_lark(lark, bot.front, settings, service=bot.service, server=bot.server)
        if lark.connection is not None:
            bot.connections.append(lark.connection)
    return bot


def _slack(settings: Settings, tuning: Tuning) -> SlackSender:
    return slack_sender(
        settings,
        rate=tuning.channel_rate,
        burst=tuning.channel_burst,
        timeout_s=tuning.slack_timeout_s,
    )


def _serve_slack(bot: Bot, sender: SlackSender) -> None:
    sender.queues.liveness = bot.heartbeat  # a call queued before a lapse is not made after
    assert bot.front is not None and bot.server is not None
    bot.socket_mode = serve_slack(
        sender, bot.front, bot.settings, service=bot.service, server=bot.server
    )


def modes(bot: Bot) -> list[str]:
    """How each chat's requests reach the bot, for the start-up line."""
    settings, shown = bot.settings, []
    if slack_configured(settings):
        shown.append(
            "Slack: Socket Mode" if bot.socket_mode is not None else "Slack: POST /slack/events"
        )
    if lark_configured(settings):
        http = settings.lark_verification_token is not None
        shown.append("Lark: POST /lark/events" if http else "Lark: the long connection")
    return shown
