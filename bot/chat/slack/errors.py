"""Slack's failures, as the rest of the bot sees them (a ``ChatError``)."""

from __future__ import annotations

from bot.chat.output import ChatError


class SlackError(ChatError):
    """A Slack API call that failed; ``error`` is Slack's error code when it gave one."""
