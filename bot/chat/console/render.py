"""Block Kit messages as plain terminal text (pure): what the console chat shows.

Slack's mrkdwn entities become readable text (``<@U1>`` -> ``@U1``, ``<url|label>`` ->
``label``, ``&lt;`` -> ``<``); sections, headers and context lines become lines; the buttons of
``actions`` blocks (and section accessories) are returned apart, for the console to number.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.words import demo_text

_ENTITY = re.compile(r"<([@#!]?)([^<>|]*)(?:\|([^<>]*))?>")
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")


@dataclass(frozen=True)
class Button:
    action_id: str
    value: str
    label: str
    row: int = 0  # how many of the message's lines come before it


def plain(text: str, names: Mapping[str, str] | None = None) -> str:
    """Slack mrkdwn to plain text; ``names`` maps user/channel ids to names."""
    names = names or {}

    def entity(match: re.Match[str]) -> str:
        sigil, target, label = match.group(1), match.group(2), match.group(3)
        if sigil in {"@", "#"}:
            return sigil + (label or names.get(target, target))
        if sigil == "!":  # <!here>, <!date^...|fallback>
            return label or "@" + target
        return label or target

    text = _BOLD.sub(r"\1", _ENTITY.sub(entity, text)).replace("```", "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _field(text: str) -> str:
    """A section field, ``*Label*\nvalue``, as one line ``Label: value``."""
    label, _, value = text.partition("\n")
    return demo_text.console_field(label, value) if value and "\n" not in value else text


def _text_of(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return str(obj.get("text", ""))
    return ""


def render(
    text: str,
    blocks: Sequence[Mapping[str, Any]] | None,
    names: Mapping[str, str] | None = None,
) -> tuple[list[str], list[Button]]:
    """The lines to show and the buttons offered. Without blocks, the text is the message."""
    if not blocks:
        return plain(text, names).splitlines() or [""], []
    lines: list[str] = []
    buttons: list[Button] = []

    def add_button(element: Mapping[str, Any]) -> None:
        if element.get("type") == "button":
            buttons.append(
                Button(
                    str(element.get("action_id", "")),
                    str(element.get("value", "")),
                    plain(_text_of(element.get("text"))),
                    len(lines),
                )
            )

    for block in blocks:
        kind = block.get("type")
        if kind in {"section", "header"}:
            if block.get("text"):
                lines.extend(plain(_text_of(block["text"]), names).splitlines())
            for field in block.get("fields") or ():
                lines.extend(_field(plain(_text_of(field), names)).splitlines())
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping):
                add_button(accessory)
        elif kind == "context":
            parts = [plain(_text_of(e), names) for e in block.get("elements") or ()]
            lines.extend(" ".join(p for p in parts if p).splitlines())
        elif kind == "actions":
            for element in block.get("elements") or ():
                add_button(element)
        elif kind == "divider":
            lines.append("-" * 8)
    return lines or plain(text, names).splitlines() or [""], buttons


def with_buttons(lines: Sequence[str], rows: Sequence[tuple[int, str]]) -> list[str]:
    """``lines`` with each (row, shown button) put on a line of buttons after ``row`` lines."""
    out: list[str] = []
    for i in range(len(lines) + 1):
        here = [shown for row, shown in rows if row == i]
        if here:
            out.append("  ".join(here))
        if i < len(lines):
            out.append(lines[i])
    return out
