"""Slack's Block Kit limits, as its reference gives them, for the fake Slack to refuse what
Slack refuses (``invalid_blocks``) and for the words' tests to check every layout in every
language. Lengths are in characters (a Chinese character is one)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

MESSAGE_BLOCKS = 50  # blocks in a message (a Home view or modal: 100)
VIEW_BLOCKS = 100
TEXT = 3000  # a text object; a section's text
FIELD = 2000  # a section field's text
FIELDS = 10  # fields in a section
HEADER = 150  # a header's plain text
BUTTON = 75  # a button's label
VALUE = 2000  # a button's value
ACTION_ID = 255
BLOCK_ID = 255
ELEMENTS_IN_ACTIONS = 25
ELEMENTS_IN_CONTEXT = 10
MESSAGE_TEXT = 40000  # a message's top-level text (longer: msg_too_long)


def _text(obj: Any, limit: int, where: str, problems: list[str]) -> None:
    if not isinstance(obj, Mapping) or obj.get("type") not in ("plain_text", "mrkdwn"):
        problems.append(f"{where}: not a text object")
        return
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}: empty text")
    elif len(text) > limit:
        problems.append(f"{where}: {len(text)} characters, more than {limit}")


def _element(element: Any, where: str, problems: list[str]) -> None:
    if not isinstance(element, Mapping):
        problems.append(f"{where}: not an object")
        return
    if element.get("type") == "button":
        label = element.get("text")
        if not isinstance(label, Mapping) or label.get("type") != "plain_text":
            problems.append(f"{where}: a button's text must be plain_text")
        _text(label, BUTTON, f"{where}.text", problems)
        if len(str(element.get("value", ""))) > VALUE:
            problems.append(f"{where}: value longer than {VALUE}")
        if len(str(element.get("action_id", ""))) > ACTION_ID:
            problems.append(f"{where}: action_id longer than {ACTION_ID}")


def problems(blocks: Sequence[Any] | None, *, view: bool = False) -> list[str]:
    """What Slack would refuse in ``blocks`` (empty: nothing)."""
    found: list[str] = []
    if not blocks:
        return found
    most = VIEW_BLOCKS if view else MESSAGE_BLOCKS
    if len(blocks) > most:
        found.append(f"{len(blocks)} blocks, more than {most}")
    for n, block in enumerate(blocks):
        where = f"blocks[{n}]"
        if not isinstance(block, Mapping):
            found.append(f"{where}: not an object")
            continue
        if len(str(block.get("block_id", ""))) > BLOCK_ID:
            found.append(f"{where}: block_id longer than {BLOCK_ID}")
        kind = block.get("type")
        if kind == "header":
            _text(block.get("text"), HEADER, f"{where}.text", found)
        elif kind == "section":
            if block.get("text") is None and not block.get("fields"):
                found.append(f"{where}: a section needs text or fields")
            if block.get("text") is not None:
                _text(block["text"], TEXT, f"{where}.text", found)
            fields = block.get("fields") or []
            if len(fields) > FIELDS:
                found.append(f"{where}: {len(fields)} fields, more than {FIELDS}")
            for i, field in enumerate(fields):
                _text(field, FIELD, f"{where}.fields[{i}]", found)
            if block.get("accessory") is not None:
                _element(block["accessory"], f"{where}.accessory", found)
        elif kind == "context":
            elements = block.get("elements") or []
            if not elements or len(elements) > ELEMENTS_IN_CONTEXT:
                found.append(f"{where}: {len(elements)} context elements")
            for i, element in enumerate(elements):
                if isinstance(element, Mapping) and element.get("type") in ("plain_text", "mrkdwn"):
                    _text(element, TEXT, f"{where}.elements[{i}]", found)
        elif kind == "actions":
            elements = block.get("elements") or []
            if not elements or len(elements) > ELEMENTS_IN_ACTIONS:
                found.append(f"{where}: {len(elements)} action elements")
            for i, element in enumerate(elements):
                _element(element, f"{where}.elements[{i}]", found)
        elif kind not in ("divider", "image", "rich_text", "file", "input", "video"):
            found.append(f"{where}: unknown block type {kind!r}")
    return found
