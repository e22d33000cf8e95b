"""Logging: JSON records when asked, and no token or secret in any record, whatever logged it."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from bot.infra.log_setup import mask


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("token xoxb-1234-5678-abcdef here", "token xoxb-**** here"),
        ("xapp-1-A0B1-123-abc connected", "xapp-**** connected"),
        ("Authorization: Bearer abcdefghijkl12", "Authorization: Bearer ****"),
        ('{"token": "s3cr3tvalue", "id": 7}', '{"token": "****", "id": 7}'),
        ("ISLANDBOT_REGISTER_TOKEN=abcdef123 set", "ISLANDBOT_REGISTER_TOKEN=**** set"),
        ("mysql+pymysql://bot:hunter2@db:3306/x", "mysql+pymysql://bot:****@db:3306/x"),
        ("signing_secret: 8f7e6d5c", "signing_secret: ****"),
        ("island 12 is ready on 127.0.0.2:30002", "island 12 is ready on 127.0.0.2:30002"),
    ],
)
def test_secrets_are_masked(text: str, masked: str) -> None:
    assert mask(text) == masked


SCRIPT = """
import logging
from bot.infra import log_setup
log_setup.configure("INFO", "{fmt}")
log = logging.getLogger("slack_sdk.web")
log.info("calling chat.postMessage with token %s", "xoxb-1111-2222-secretsecret")
try:
    raise RuntimeError("Authorization: Bearer abcdefghijklmnop")
except RuntimeError:
    log.exception("request failed for %s", "mysql+pymysql://u:pw1234@h/db")
"""


def run(fmt: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(fmt=fmt)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stderr


def test_json_records_and_nothing_secret_in_them() -> None:
    out = run("json")
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["level"] for r in records] == ["INFO", "ERROR"]
    assert records[0]["logger"] == "slack_sdk.web"
    assert records[0]["message"] == "calling chat.postMessage with token xoxb-****"
    assert "time" in records[0]
    assert "exc_info" in records[1] and "Bearer ****" in records[1]["exc_info"]
    for secret in ("secretsecret", "abcdefghijklmnop", "pw1234"):
        assert secret not in out


def test_text_records_are_masked_too() -> None:
    out = run("text")
    assert "INFO slack_sdk.web: calling chat.postMessage with token xoxb-****" in out
    for secret in ("secretsecret", "abcdefghijklmnop", "pw1234"):
        assert secret not in out


def test_the_filter_leaves_ordinary_records_alone() -> None:
    from bot.infra.log_setup import SecretFilter  # noqa: PLC0415

    record = logging.LogRecord("x", logging.INFO, __file__, 1, "island %d ready", (12,), None)
    assert SecretFilter().filter(record)
    assert record.getMessage() == "island 12 ready"
