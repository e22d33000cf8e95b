"""The message catalogue: every id the code uses is in the template and translated in every
language, placeholders kept, the glossary's terms used; a new language is one more file."""

from __future__ import annotations

import ast
import re
import string
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.pofile import read_po, write_po

from bot.words import catalogue
from bot.words.catalogue import _, n_, speaking

ROOT = Path(__file__).resolve().parents[2]
POT = catalogue.LOCALE_DIR / "islandbot.pot"
KEYWORDS = ["--no-default-keywords", "-k", "_", "-k", "n_:1,2", "-k", "p_:1c,2", "-k", "N_"]


def _key(m: Message) -> tuple[str | None, str]:
    return m.context, m.id[0] if isinstance(m.id, tuple) else m.id


def _messages(path: Path) -> dict[tuple[str | None, str], Message]:
    with path.open("rb") as f:
        return {_key(m): m for m in read_po(f) if m.id}


def _translated() -> list[str]:
    return [language for language in catalogue.languages() if language != catalogue.SOURCE]


def _po(language: str) -> Path:
    return catalogue.LOCALE_DIR / language.replace("-", "_") / "LC_MESSAGES" / "islandbot.po"


def _fields(text: str) -> set[str]:
    return {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name}


def _strings(m: Message) -> list[str]:
    return list(m.string) if isinstance(m.string, tuple) else [m.string]


def _ids(m: Message) -> list[str]:
    return list(m.id) if isinstance(m.id, tuple) else [m.id]


def test_the_makefile_extracts_with_the_keywords_the_code_uses() -> None:
    assert " ".join(KEYWORDS) in (ROOT / "Makefile").read_text()


@pytest.mark.slow
def test_the_template_lists_exactly_the_ids_the_code_uses(tmp_path: Path) -> None:
    """``make catalogue`` was run after the last change of an English text."""
    fresh = tmp_path / "fresh.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "-q",
            "extract",
            "-F",
            "babel.cfg",
            *KEYWORDS,
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    in_code, in_template = set(_messages(fresh)), set(_messages(POT))
    assert in_code - in_template == set(), "new ids: run `make catalogue` and translate them"
    assert in_template - in_code == set(), "ids no longer used: run `make catalogue`"
    assert len(in_code) > 300  # the words really are in the catalogue


def test_zh_cn_is_spoken() -> None:
    assert "zh-CN" in catalogue.languages()


@pytest.mark.parametrize("language", _translated())
def test_every_id_has_its_translation(language: str) -> None:
    template, po = _messages(POT), _messages(_po(language))
    assert set(po) == set(template), "run `make catalogue`"
    untranslated = [k for k, m in po.items() if not all(_strings(m)) or m.fuzzy]
    assert untranslated == []


@pytest.mark.parametrize("language", _translated())
def test_translations_keep_every_placeholder(language: str) -> None:
    wrong = []
    for key, m in _messages(_po(language)).items():
        wanted = set().union(*(_fields(i) for i in _ids(m)))
        for text in _strings(m):
            got = _fields(text)
            # a plural's one-form language says the plural's words; ``count`` may go unsaid
            if got != wanted and got != wanted - {"count"}:
                wrong.append((key, sorted(wanted), sorted(got)))
            text.format(**{name: "x" for name in got})  # no stray brace
    assert wrong == []


def _prose(text: str) -> str:
    """What a reader reads as words: without code, commands, mentions, links and names."""
    text = re.sub(
        r"`[^`]*`|<[^>]*>|\{[a-z_]+\}|/island\b[^\s，。]*|islandbot|https?://\S+", "", text
    )
    return re.sub(r"\*|_", "", text)


def test_chinese_keeps_to_the_glossary() -> None:
    with _po("zh-CN").open("rb") as f:
        catalog = read_po(f)
    header = catalog.header_comment
    for term in ("岛", "起岛", "关岛", "改时间", "刮风"):
        assert term in header
    leftovers = []
    for key, m in _messages(_po("zh-CN")).items():
        for text in _strings(m):
            prose = _prose(text)
            if re.search(r"\b[Ii]slands?\b", prose):
                leftovers.append((key, text))
            if "刮风" in text and "改时间" not in text:  # a reading, named beside the term
                leftovers.append((key, text))
    assert leftovers == []


def test_plurals_follow_each_languages_rule() -> None:
    """English has two forms (the library picks by the count), Chinese one."""
    plurals = [m for m in _messages(_po("zh-CN")).values() if isinstance(m.id, tuple)]
    assert plurals, "the words say counts with n_"
    for m in plurals:
        singular, plural = m.id
        values = {name: "x" for name in _fields(singular) | _fields(plural) if name != "count"}
        assert n_(singular, plural, 1, **values) == singular.format(count=1, **values)
        assert n_(singular, plural, 2, **values) == plural.format(count=2, **values)
        with speaking("zh-CN"):
            one, many = n_(singular, plural, 1, **values), n_(singular, plural, 2, **values)
        zh = _strings(m)[0]
        assert one == zh.format(count=1, **values)
        assert many == zh.format(count=2, **values)


@pytest.fixture
def third_language(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A French catalogue beside the shipped ones, as a translator would add it."""
    for language in catalogue.languages()[1:]:
        folder = tmp_path / language.replace("-", "_") / "LC_MESSAGES"
        folder.mkdir(parents=True)
        (folder / "islandbot.po").write_bytes(_po(language).read_bytes())
    fr = Catalog(locale="fr", domain="islandbot")
    fr.add("real time", "temps réel")
    fr.add("memory {used}", "mémoire {used}")
    folder = tmp_path / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with (folder / "islandbot.po").open("wb") as f:
        write_po(f, fr)
    monkeypatch.setattr(catalogue, "LOCALE_DIR", tmp_path)
    catalogue.languages.cache_clear()
    catalogue._translations.cache_clear()
    yield "fr"
    catalogue.languages.cache_clear()
    catalogue._translations.cache_clear()


def test_a_third_language_is_one_more_catalogue_file(third_language: str) -> None:
    assert third_language in catalogue.languages()
    assert catalogue.match("fr-FR") == "fr"
    with speaking("fr"):
        assert _("real time") == "temps réel"
        assert _("memory {used}", used="2Gi") == "mémoire 2Gi"
        assert _("ready") == "ready"  # not translated yet: English, never an empty text


@pytest.mark.parametrize(
    ("tag", "language"),
    [
        ("zh-CN", "zh-CN"),
        ("zh_cn", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("zh", "zh-CN"),
        ("en-US", "en"),
        ("en-GB", "en"),
        ("ja-JP", None),
        ("", None),
        (None, None),
    ],
)
def test_a_chats_tag_is_matched_to_a_language_the_bot_speaks(
    tag: str | None, language: str | None
) -> None:
    assert catalogue.match(tag) == language


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("fr-FR, zh;q=0.5", "zh-CN"),
        ("de, *;q=0.1", None),
        ("zh-CN;q=0", None),
        ("zh;q=abc", None),
        ("en;q=2, zh-CN", "zh-CN"),  # a weight over 1 is no weight HTTP allows
        ("zh-CN;q=nan, en;q=0.5", "en"),
        ("", None),
    ],
)
def test_a_browsers_accept_language_is_negotiated(header: str, language: str | None) -> None:
    assert catalogue.negotiate(header) == language


def test_the_deployment_language_is_one_the_bot_speaks() -> None:
    with pytest.raises(ValueError, match="zh-CN"):
        catalogue.set_deployment_language("fr")
    catalogue.set_deployment_language("zh-CN")
    assert _("real time") == "真实时间"
    with speaking("en"):
        assert _("real time") == "real time"
    with speaking(None):
        assert _("real time") == "真实时间"


def _calls() -> Iterator[tuple[str, int, str, ast.Call]]:
    for path in sorted((ROOT / "bot").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id in ("_", "n_", "p_", "N_"):
                yield str(path.relative_to(ROOT)), node.lineno, node.func.id, node


def _literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def test_every_message_the_code_says_is_in_the_template() -> None:
    """A call the extractor cannot see (inside an f-string, say) or whose words are not a
    literal would be said in English in every language."""
    template = set(_messages(POT))
    wrong = []
    for where, line, name, call in _calls():
        args = call.args
        if name == "p_":
            context, text = (
                (_literal(args[0]), _literal(args[1])) if len(args) > 1 else (None, None)
            )
            key = (context, text) if context and text else None
        elif name == "_" and _literal(args[0]) is None:
            continue  # a text marked with N_ where it is defined, translated here
        else:
            text = _literal(args[0]) if args else None
            key = (None, text) if text else None
        if key is None or key not in template:
            wrong.append(f"{where}:{line}: {ast.unparse(call)[:80]}")
    assert wrong == []


def test_every_placeholder_of_a_message_is_given_where_it_is_said() -> None:
    """A placeholder left unfilled would show as ``{island}`` to people."""
    wrong = []
    for where, line, name, call in _calls():
        if name == "N_" or any(k.arg is None for k in call.keywords):
            continue  # marked only, or given as **values (checked where they are built)
        texts = [_literal(a) for a in call.args[: 3 if name == "n_" else 2]]
        texts = [t for t in (texts[1:] if name == "p_" else texts) if t]
        wanted = set().union(*(_fields(t) for t in texts)) - ({"count"} if name == "n_" else set())
        given = {k.arg for k in call.keywords}
        if wanted - given:
            wrong.append(f"{where}:{line}: {sorted(wanted - given)} not given")
    assert wrong == []


def test_the_words_never_say_a_duration_in_english_only() -> None:
    """``bot.domain.durations.format_duration`` is English; the words use the language-aware
    one of ``bot.words.formatting``."""
    wrong = []
    for path in sorted((ROOT / "bot" / "words").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "bot.domain.durations":
                names = {a.name for a in node.names}
                if "format_duration" in names:
                    wrong.append(path.name)
    assert wrong == []
