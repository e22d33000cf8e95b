"""The bot's messages as Lark shows them (pure): Slack mrkdwn becomes Lark's markdown, a Block
Kit layout becomes an interactive card (schema 1.0: ``div``, ``note``, ``hr``, ``action``
with buttons), a plain text a ``text`` message.

The words layer writes every message once, as Block Kit with mrkdwn (``bot.words.layouts``);
each adapter renders it for its chat, as the console's ``render`` does. Mentions become Lark's
``<at>`` (``<@ou_…>`` -> ``<at id=ou_…></at>`` in a card, ``<at user_id="ou_…"></at>`` in a
text message), links ``[label](url)``, bold ``**…**``. A button's value carries its Slack
``action_id`` and value (``{"action_id": …, "value": …}``), and ``"dm"`` (the person's open_id)
on a card sent to a person directly, so that their click there is taken as personal (no channel
rule), as a Slack button in the bot's direct conversation is.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

CARD_LIMIT = 30_000  # bytes of a card's JSON Lark takes in one message (its 30 KB)
TEXT_LIMIT = 150_000  # bytes of a text message's content (its 150 KB)
_ENTITY = re.compile(r"<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_STRIKE = re.compile(r"(?<![\w~])~([^~\n]+)~(?![\w~])")
_STYLES = {"danger": "danger", "primary": "primary"}


def _entities(text: str, *, card: bool) -> str:
    def entity(match: re.Match[str]) -> str:
        sigil, target, label = match.group(1), match.group(2), match.group(3)
        if sigil == "@":
            return f"<at id={target}></at>" if card else f'<at user_id="{target}"></at>'
        if sigil == "#":
            return "#" + (label or target)
        if sigil == "!":  # <!here>, <!channel>, <!date^…|fallback>
            if target in {"here", "channel", "everyone"}:
                return "<at id=all></at>" if card else '<at user_id="all"></at>'
            return label or target
        return f"[{label or target}]({target})"

    return _ENTITY.sub(entity, text)


def markdown(text: str) -> str:
    """Slack mrkdwn as a card's ``lark_md``: bold, strike, links and mentions; the HTML
    entities Slack's text carries (``&lt;``) are kept, as lark_md reads them too."""
    text = _entities(text, card=True)
    return _STRIKE.sub(r"~~\1~~", _BOLD.sub(r"**\1**", text))


def plain_text(text: str) -> str:
    """Slack mrkdwn as a ``text`` message's content: mentions as ``<at>``, bold as ``<b>``,
    links as ``[label](url)``. An escaped ``<`` or ``>`` (text a person or a pod wrote, the
    grammar's ``<branch>``) stays inert, as the full-width less-than and greater-than signs,
    which a text message shows and never reads as a tag (``<at user_id="all">`` written in a
    note mentions nobody)."""
    text = _BOLD.sub(r"<b>\1</b>", _entities(text, card=False))
    return text.replace("&lt;", "\uff1c").replace("&gt;", "\uff1e").replace("&amp;", "&")


def _md(text: str) -> dict[str, Any]:
    return {"tag": "lark_md", "content": markdown(text)}


def _text_of(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, Mapping) else ""


def _button(element: Mapping[str, Any], *, direct: str | None) -> dict[str, Any]:
    value: dict[str, Any] = {
        "action_id": str(element.get("action_id", "")),
        "value": str(element.get("value", "")),
    }
    if direct is not None:
        value["dm"] = direct
    button: dict[str, Any] = {
        "tag": "button",
        "text": {"tag": "plain_text", "content": _text_of(element.get("text"))},
        "type": _STYLES.get(str(element.get("style")), "default"),
        "value": value,
    }
    confirm = element.get("confirm")
    if isinstance(confirm, Mapping):
        button["confirm"] = {
            "title": {"tag": "plain_text", "content": _text_of(confirm.get("title"))},
            "text": {"tag": "plain_text", "content": plain_text(_text_of(confirm.get("text")))},
        }
    return button


def _section(block: Mapping[str, Any], *, direct: str | None) -> list[dict[str, Any]]:
    """A section: its text (a ``markdown`` element when it holds a code block: a table or a
    log, which only that element shows as one), its fields two to a row, its button."""
    elements: list[dict[str, Any]] = []
    text = _text_of(block.get("text"))
    if "```" in text:
        elements.append({"tag": "markdown", "content": markdown(text)})
    elif text:
        elements.append({"tag": "div", "text": _md(text)})
    fields = block.get("fields") or ()
    if fields:
        shown = [{"is_short": True, "text": _md(_text_of(f))} for f in fields]
        elements.append({"tag": "div", "fields": shown})
    accessory = block.get("accessory")
    if isinstance(accessory, Mapping) and accessory.get("type") == "button":
        elements.append({"tag": "action", "actions": [_button(accessory, direct=direct)]})
    return elements


def card(
    text: str, blocks: Sequence[Mapping[str, Any]] | None, *, direct: str | None = None
) -> dict[str, Any]:
    """The interactive card showing ``blocks`` (or, without blocks, ``text``), shared and
    updatable by the bot for everyone in the chat (``update_multi``). ``direct``: the open_id
    of the person it is sent to directly (its buttons say so: a click by them there is theirs
    alone, as on Slack's App Home)."""
    elements: list[dict[str, Any]] = []
    header: dict[str, Any] | None = None
    for block in blocks or ({"type": "section", "text": {"type": "mrkdwn", "text": text}},):
        kind = block.get("type")
        if kind == "header" and header is None:
            header = {"title": {"tag": "plain_text", "content": _text_of(block.get("text"))}}
        elif kind in {"section", "header"}:
            elements.extend(_section(block, direct=direct))
        elif kind == "context":
            parts = [_md(_text_of(e)) for e in block.get("elements") or () if _text_of(e)]
            if parts:
                elements.append({"tag": "note", "elements": parts})
        elif kind == "actions":
            actions = [
                _button(e, direct=direct)
                for e in block.get("elements") or ()
                if e.get("type") == "button"
            ]
            if actions:
                elements.append({"tag": "action", "actions": actions})
        elif kind == "divider":
            elements.append({"tag": "hr"})
    shown: dict[str, Any] = {
        "config": {"wide_screen_mode": True, "update_multi": True},
        "elements": elements,
    }
    if header is not None:
        shown["header"] = header
    return shown


def content(
    text: str, blocks: Sequence[Mapping[str, Any]] | None, *, direct: str | None = None
) -> tuple[str, str]:
    """(``msg_type``, ``content``) of a message: an interactive card for blocks, else text."""
    if blocks:
        return "interactive", json.dumps(card(text, blocks, direct=direct), ensure_ascii=False)
    return "text", json.dumps({"text": plain_text(text)}, ensure_ascii=False)


def card_content(
    text: str, blocks: Sequence[Mapping[str, Any]] | None, *, direct: str | None = None
) -> str:
    """A card's content, for an update in place (Lark updates cards only)."""
    return json.dumps(card(text, blocks, direct=direct), ensure_ascii=False)
