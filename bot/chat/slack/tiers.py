"""Slack's rate-limit tiers, as the shared ``TierPacer`` takes them."""

from __future__ import annotations

from collections.abc import Mapping

from bot.chat.pacing import TierPacer

# Slack's tier of each method the bot calls, as requests a minute per workspace (Tier 2: 20,
# Tier 3: 50, Tier 4: 100); the bot keeps to 90 % of it. Posts are paced per channel instead.
TIER_PER_MINUTE: Mapping[str, int] = {
    "chat.update": 50,
    "conversations.open": 50,
    "conversations.replies": 50,
    "conversations.history": 50,
    "chat.postEphemeral": 100,
    "views.publish": 100,
    "users.info": 100,
    "users.list": 20,
}


def slack_tiers() -> TierPacer:
    return TierPacer(TIER_PER_MINUTE)
