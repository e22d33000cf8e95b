"""Lark's (Feishu's) message cards, as its Open API takes them and shows them back.

``card_problem`` says why Lark would refuse a card (``None``: it takes it): a v1 card has an
``elements`` list (or ``i18n_elements``), an optional ``header`` whose ``title`` is a text object
``{"tag": "plain_text"|"lark_md", "content"}`` and an optional ``config`` object; a JSON 2.0 card
(``"schema": "2.0"``) has ``body.elements``; a template card ``data.template_id``. Every element
is an object with a known ``tag``; a ``div`` has a text or ``fields``, a ``markdown`` its
``content``, a ``button`` a text and, when it has a ``value``, a JSON object (what the
``card.action.trigger`` callback hands back); ``action``, ``note`` and columns hold lists of
elements. ``shared_card``: only a shared card (``config.update_multi``) can be updated.
``render_card``: Lark answers a card's content (create, reply, list) re-rendered, not as sent.
"""

from __future__ import annotations

from typing import Any

CARD_TAGS = frozenset(
    {
        "div",
        "markdown",
        "hr",
        "img",
        "note",
        "action",
        "button",
        "column_set",
        "column",
        "plain_text",
        "lark_md",
        "select_static",
        "overflow",
        "date_picker",
        "form",
        "input",
        "collapsible_panel",
        "person",
        "person_list",
        "table",
        "chart",
    }
)


def card_problem(card: dict[str, Any]) -> str | None:
    """Why Lark would refuse this card, or None."""
    if card.get("type") == "template":
        data = card.get("data")
        good = isinstance(data, dict) and isinstance(data.get("template_id"), str)
        return None if good else "a template card needs data.template_id"
    if card.get("schema") == "2.0":
        body = card.get("body")
        elements = body.get("elements") if isinstance(body, dict) else None
    else:
        elements = card.get("elements")
        i18n = card.get("i18n_elements")
        if elements is None and isinstance(i18n, dict):
            elements = [e for v in i18n.values() for e in (v if isinstance(v, list) else [0])]
    if not isinstance(elements, list):
        return "a card needs an elements list"
    header = card.get("header")
    if header is not None and not (isinstance(header, dict) and _text(header.get("title"))):
        return "header.title must be a text object {tag: plain_text|lark_md, content}"
    if not isinstance(card.get("config", {}), dict):
        return "config must be a JSON object"
    return _elements_problem(elements)


def _text(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and obj.get("tag") in ("plain_text", "lark_md")
        and isinstance(obj.get("content"), str)
    )


def _elements_problem(elements: list[Any]) -> str | None:
    for element in elements:
        if not isinstance(element, dict) or not isinstance(element.get("tag"), str):
            return "every element is a JSON object with a tag"
        tag = element["tag"]
        nested = element.get("actions", element.get("elements", element.get("columns")))
        if tag not in CARD_TAGS:
            return f"unknown element tag {tag!r}"
        if tag == "div" and not (_text(element.get("text")) or "fields" in element):
            return "a div needs a text object or fields"
        if tag in ("markdown", "plain_text", "lark_md") and not isinstance(
            element.get("content"), str
        ):
            return f"a {tag} needs its content, a string"
        if tag == "button" and not _text(element.get("text")):
            return "a button needs a text object"
        if tag == "button" and not isinstance(element.get("value", {}), dict):
            return "a button's value is a JSON object"
        if tag in ("action", "note", "column_set", "column") and not isinstance(nested, list):
            return f"an {tag} needs its list of elements"
        problem = _elements_problem(nested) if isinstance(nested, list) else None
        if problem is not None:
            return problem
    return None


def shared_card(card: dict[str, Any]) -> bool:
    """A shared card (``config.update_multi`` true; JSON 2.0 cards always are): only those can
    be updated, Lark's patch requires it of the card before and after."""
    config = card.get("config")
    return card.get("schema") == "2.0" or (
        isinstance(config, dict) and config.get("update_multi") is True
    )


def render_card(card: dict[str, Any]) -> dict[str, Any]:
    """A card as Lark's API answers it: re-rendered (title, rows of text and buttons), not the
    JSON that was sent."""
    header = card.get("header")
    title = header.get("title", {}).get("content", "") if isinstance(header, dict) else ""
    body = card.get("body")
    elements = body.get("elements", []) if isinstance(body, dict) else card.get("elements", [])
    return {"title": title, "elements": [row for e in elements if (row := _row(e))]}


def _row(element: Any) -> list[dict[str, str]]:
    if not isinstance(element, dict):
        return []
    if element.get("tag") == "button":
        text = element.get("text")
        return [
            {"tag": "button", "text": text.get("content", "") if isinstance(text, dict) else ""}
        ]
    text = element.get("text")
    said = text.get("content") if isinstance(text, dict) else element.get("content")
    row = [{"tag": "text", "text": said}] if isinstance(said, str) else []
    nested = element.get("actions", element.get("elements", element.get("columns", [])))
    for inner in nested if isinstance(nested, list) else []:
        row.extend(_row(inner))
    return row
