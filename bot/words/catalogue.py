"""The message catalogue: which language the words speak, and the sentences in each.

Every sentence is written once, in English, where it is used (``_("Island {island} is
ready.", island=...)``): the English text is its id. The other languages' texts are gettext
catalogues, ``bot/words/locale/<language>/LC_MESSAGES/islandbot.po`` (read with Babel, plural
forms from each file's ``Plural-Forms``), and ``locale/islandbot.pot`` lists every id
(``make catalogue`` extracts it from the code and updates each ``.po``). Placeholders are
named (``{island}``) and filled after translation, so a translation may move them.

Which language: the deployment's (``ISLANDBOT_LANGUAGE``, set once by the composition root
with ``set_deployment_language``) unless a ``speaking(language)`` block says otherwise, for
an answer meant for one person whose chat told us their language. Adding a language is adding
its ``.po`` file: ``languages()`` lists the directories found.
"""

from __future__ import annotations

import contextlib
import functools
import gettext
import io
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

SOURCE = "en"  # the language the ids are written in
DOMAIN = "islandbot"
LOCALE_DIR = Path(__file__).with_name("locale")

_deployment = SOURCE
_speaking: ContextVar[str | None] = ContextVar("islandbot_language", default=None)


def _folder(language: str) -> str:
    return language.replace("-", "_")


def _tag(folder: str) -> str:
    return folder.replace("_", "-")


@functools.cache
def languages() -> tuple[str, ...]:
    """The languages the bot speaks: English, then one per catalogue (``zh-CN``)."""
    found = sorted(
        _tag(p.parent.parent.name) for p in LOCALE_DIR.glob(f"*/LC_MESSAGES/{DOMAIN}.po")
    )
    return (SOURCE, *found)


def match(tag: str | None) -> str | None:
    """The language the bot speaks that best fits a chat's or a browser's tag (``zh-CN``,
    ``zh_cn``, ``en-US``, ``zh``): the same language and region, else the same language;
    None when none fits."""
    if not tag:
        return None
    wanted = tag.strip().replace("_", "-").lower()
    known = languages()
    for language in known:
        if language.lower() == wanted:
            return language
    primary = wanted.split("-", 1)[0]
    for language in known:
        if language.lower().split("-", 1)[0] == primary:
            return language
    return None


def negotiate(accept_language: str | None) -> str | None:
    """The best language for an HTTP ``Accept-Language`` header (by its ``q`` weights), or
    None when it names none the bot speaks."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for order, part in enumerate(accept_language.split(",")):
        tag, _sep, params = part.strip().partition(";")
        weight = 1.0
        for param in params.split(";"):
            name, _eq, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
                if not 0.0 <= weight <= 1.0:  # out of range (or nan): not a weight HTTP allows
                    weight = 0.0
        if tag and tag != "*" and weight > 0:
            ranked.append((-weight, order, tag))
    for _weight, _order, tag in sorted(ranked):
        found = match(tag)
        if found:
            return found
    return None


def set_deployment_language(language: str) -> None:
    """The language of everything not meant for one person (channel posts, the API, logs
    shown to people), for this process. Raises ``ValueError`` for a language with no
    catalogue."""
    global _deployment  # noqa: PLW0603 - one deployment per process, set at start
    if language not in languages():
        raise ValueError(f"{language!r} is not one of {', '.join(languages())}")
    _deployment = language


def deployment_language() -> str:
    return _deployment


def current() -> str:
    """The language the words speak here and now."""
    return _speaking.get() or _deployment


@contextlib.contextmanager
def speaking(language: str | None) -> Iterator[None]:
    """Speak ``language`` inside the block (None: the deployment's)."""
    token = _speaking.set(language if language in languages() else None)
    try:
        yield
    finally:
        _speaking.reset(token)


@functools.cache
def _translations(language: str) -> gettext.NullTranslations:
    if language == SOURCE:
        return gettext.NullTranslations()
    path = LOCALE_DIR / _folder(language) / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=_folder(language), domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries are left out, as msgfmt does
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def _fill(text: str, values: dict[str, Any]) -> str:
    return text.format(**values) if values else text


def _(message: str, /, **values: Any) -> str:
    """``message`` (its English text, the id) in the current language, placeholders filled."""
    return _fill(_translations(current()).gettext(message), values)


def n_(singular: str, plural: str, count: int, /, **values: Any) -> str:
    """The form for ``count`` (``{count}`` is filled too) in the current language."""
    return _fill(
        _translations(current()).ngettext(singular, plural, count), {"count": count, **values}
    )


def p_(context: str, message: str, /, **values: Any) -> str:
    """``message`` in ``context`` (the same English words meaning different things)."""
    return _fill(_translations(current()).pgettext(context, message), values)


def N_(message: str, /) -> str:  # gettext's name for "mark, translate later"
    """Mark ``message`` for the catalogue where it is defined (a table of texts); it is
    translated where it is used, with ``_``."""
    return message
