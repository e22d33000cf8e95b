"""What the Chinese words' tests assert of a text: Chinese, no English sentence left (three
English words in a row, once code, mentions and quoted values are left out), no placeholder
left unfilled."""

from __future__ import annotations

import re

CJK = re.compile(r"[\u4e00-\u9fff]")
ENGLISH = re.compile(r"\b[A-Za-z]+ [a-z]+ [a-z]+\b")


def prose(text: str, *, double_quoted: bool = False) -> str:
    """``text`` without code, mentions and 'quoted' values (and "double-quoted" ones, the way
    clock times are typed, when ``double_quoted``)."""
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"<[^>]*>", "", text)
    if double_quoted:
        text = re.sub(r"\"[^\"]*\"", "", text)
    return re.sub(r"'[^']*'", "", text)


def assert_chinese(text: str, *, double_quoted: bool = False) -> None:
    assert CJK.search(text), text
    assert not ENGLISH.search(prose(text, double_quoted=double_quoted)), text
    assert "{" not in text and "}" not in text, text
