"""Logging set-up: text or JSON records (``ISLANDBOT_LOG_FORMAT``), and a filter that masks
anything shaped like a token or secret before any handler sees it, whatever logged it (our code,
bolt, slack_sdk, the kubernetes client)."""

from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
_SLACK_TOKEN = re.compile(r"\b(xox[abposr]|xapp)-[A-Za-z0-9-]+")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}")
_KEY_VALUE = re.compile(r"""(?i)((?:token|secret|password)["']?\s*[:=]\s*["']?)[^\s"',}]{4,}""")
_URL_PASSWORD = re.compile(r"(://[^/\s:@]+:)[^@\s/]+@")


def mask(text: str) -> str:
    """``text`` with every token-like part replaced by ``****``."""
    text = _SLACK_TOKEN.sub(lambda m: f"{m.group(1)}-****", text)
    text = _BEARER.sub(r"\1****", text)
    text = _KEY_VALUE.sub(r"\1****", text)
    return _URL_PASSWORD.sub(r"\1****@", text)


class SecretFilter(logging.Filter):
    """Masks secrets in the message and its arguments (the record is rewritten in place)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string: leave it to the handler
            return True
        masked = mask(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            # formatters print exc_text when there is no exc_info: give them the masked one
            text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_text, record.exc_info = mask(text), None
        return True


def configure(level: str, fmt: str = "text") -> None:
    """Root logging to stderr in ``fmt`` (``text`` or ``json``) at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
