"""Which ids are Lark's: open_ids of people (``ou_…``) and chat ids (``oc_…``), as the Open API
documents them. Slack's ids (``U0…``, ``C0…``, ``D0…``) never look like these, so one deployment
can keep both chats' islands in one table (``bot.chat.router``)."""

from __future__ import annotations

PERSON = "ou_"
CHAT = "oc_"


def owns(ident: str) -> bool:
    """Whether ``ident`` is a Lark person or chat."""
    return ident.startswith((PERSON, CHAT))


def is_person(ident: str) -> bool:
    return ident.startswith(PERSON)
