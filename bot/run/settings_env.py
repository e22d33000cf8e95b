"""Reading the settings from the environment: one parser per field, every problem reported
at once (naming the variable, the value it got, what is accepted; secrets never echoed), typos
of variable names caught with a hint."""

from __future__ import annotations

import difflib
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.durations import format_duration, parse_duration
from bot.domain.naming import dns_label
from bot.domain.pool import MAX_POOL_SIZE
from bot.domain.port_blocks import PortRange
from bot.infra.kubernetes.templates import DEFAULT_TEMPLATES_DIR
from bot.run.settings import LARK_DOMAINS, PREFIX, TEST_PREFIX, ConfigError, Secret, Settings
from bot.words import catalogue

_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_LARK_OPEN_ID = re.compile(r"^ou_\w{3,64}$")
_LARK_CHAT_ID = re.compile(r"^oc_\w{3,64}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


# Each parser turns the raw text into the field's value or raises ValueError(reason).


def _parse_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"\s*\d+\s*", text):
            raise ValueError(f"expected a whole number from {low} to {high}")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value

    return parse


def _parse_database_url(text: str) -> str:
    url = text.strip()
    if not re.match(r"^(sqlite|mysql\+pymysql)://", url):
        raise ValueError("expected sqlite:///FILE or mysql+pymysql://USER:PASSWORD@HOST/DB")
    return url


def _parse_namespace(text: str) -> str:
    name = text.strip()
    if dns_label(name, fallback="") != name:
        raise ValueError(
            "expected a DNS-1123 label: lowercase letters, digits and '-', at most 63 characters"
        )
    return name


def _parse_admins(text: str) -> frozenset[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    bad = [i for i in ids if not (_SLACK_USER_ID.match(i) or _LARK_OPEN_ID.match(i))]
    if bad:
        raise ValueError(
            f"{', '.join(bad)} is not a Slack user id or a Lark open_id; expected ids like "
            "U0123ABCD or ou_7d8a6e6df7621556ce0d21922b676706, comma-separated (display "
            "names change, ids do not)"
        )
    return frozenset(ids)


_SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")


def _parse_channels(text: str) -> frozenset[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    bad = [i for i in ids if not (_SLACK_CHANNEL_ID.match(i) or _LARK_CHAT_ID.match(i))]
    if bad:
        raise ValueError(
            f"{', '.join(bad)} is not a Slack channel id or a Lark chat id; expected ids like "
            "C0123ABCD or oc_a0553eda9014c201e6969b478895c230, comma-separated (channel "
            "names change, ids do not)"
        )
    return frozenset(ids)


def _parse_address(text: str) -> str:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError("expected host:port, for example 0.0.0.0:3000 or 127.0.0.1:8080")
    return f"{host}:{int(port)}"


def _parse_slack_api_url(text: str) -> str:
    url = text.strip()
    if not re.match(r"^https?://[^\s/]+(/[^\s]*)?$", url):
        raise ValueError("expected an http(s) URL such as https://slack.com/api/")
    return url if url.endswith("/") else url + "/"


def _parse_lark_app_id(text: str) -> str:
    app_id = text.strip()
    if not re.fullmatch(r"cli_\w{8,64}", app_id):
        raise ValueError("expected the App ID from the Lark app's Credentials page (cli_...)")
    return app_id


def _parse_lark_secret(text: str) -> Secret:
    secret = text.strip()
    if len(secret) < 8 or any(c.isspace() for c in secret):
        raise ValueError("expected the value from the Lark app's console, without spaces")
    return Secret(secret)


def _parse_lark_domain(text: str) -> str:
    domain = text.strip().lower()
    if domain not in LARK_DOMAINS:
        raise ValueError("expected feishu (open.feishu.cn) or lark (open.larksuite.com)")
    return domain


def _parse_lark_api_url(text: str) -> str:
    """An origin (the SDK appends /open-apis/... itself); plain http only to this machine."""
    url = text.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path:
        raise ValueError("expected an origin such as https://open.feishu.cn (no path)")
    if (
        parts.scheme == "http"
        and parts.hostname not in {"localhost", "::1"}
        and not (parts.hostname.startswith("127."))
    ):
        raise ValueError("plain http is only for this machine (127.0.0.1); use https")
    return url


def _parse_timezone(text: str) -> str:
    name = text.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone name such as UTC or Europe/Paris") from None
    return name


def _parse_language(text: str) -> str:
    found = catalogue.match(text)  # as the demo's --lang: zh and zh_CN are zh-CN
    if found is None:
        raise ValueError(f"expected one of {', '.join(catalogue.languages())}")
    return found


def _parse_templates_dir(text: str) -> Path:
    path = Path(text.strip()).expanduser()
    if not (path / "island-pod.yaml").is_file():
        raise ValueError("expected a directory that contains island-pod.yaml and branches/")
    return path


def _parse_kubernetes_version(text: str) -> str:
    version = text.strip().removeprefix("v")
    if not re.fullmatch(r"1\.\d{1,2}", version):
        raise ValueError("expected a Kubernetes minor version such as 1.37")
    return version


def _parse_api_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+(/[\w.\-/]*)?", url):
        raise ValueError("expected an http:// or https:// URL, e.g. http://islandbot.islands:8080")
    return url


def _parse_kubeconfig(text: str) -> Path:
    path = Path(text.strip()).expanduser()
    if not path.is_file():
        raise ValueError("expected the path of an existing kubeconfig file")
    return path


def _parse_context(text: str) -> str:
    name = text.strip()
    if len(name) > 253 or any(ch.isspace() for ch in name):
        raise ValueError("expected a kubeconfig context name")
    return name


def _parse_log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in _LOG_LEVELS:
        raise ValueError(f"expected one of {', '.join(_LOG_LEVELS)}")
    return level


def _parse_log_format(text: str) -> str:
    value = text.strip().lower()
    if value not in {"text", "json"}:
        raise ValueError("expected text or json")
    return value


def _parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in {"true", "1", "yes", "on"}:
        return True
    if value in {"false", "0", "no", "off"}:
        return False
    raise ValueError("expected true or false")


def _parse_token(prefix: str) -> Callable[[str], Secret]:
    def parse(text: str) -> Secret:
        token = text.strip()
        if not token.startswith(prefix) or len(token) < len(prefix) + 8:
            raise ValueError(f"expected a token that starts with {prefix!r}")
        return Secret(token)

    return parse


def _parse_secret(text: str) -> Secret:
    if len(text.strip()) < 8:
        raise ValueError("expected the signing secret from the Slack app's Basic Information")
    return Secret(text.strip())


def _parse_api_token(text: str) -> Secret:
    token = text.strip()
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ValueError("expected at least 16 characters without spaces")
    return Secret(token)


def _parse_board_url(text: str) -> str:
    url = text.strip().rstrip("/")
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", url):
        raise ValueError(
            "expected http(s)://host[:port] without a path, e.g. https://islands.example.com"
        )
    return url


def _parse_board_secret(text: str) -> Secret:
    secret = text.strip()
    if len(secret) < 32:
        raise ValueError("expected at least 32 characters (for example `openssl rand -hex 32`)")
    return Secret(secret)


def _parse_link_ttl(text: str) -> timedelta:
    value = _parse_duration(text)
    if not timedelta(minutes=1) <= value <= timedelta(days=7):
        raise ValueError(f"{text!r} is not between 1m and 7d")
    return value


def _parse_interval(text: str) -> timedelta:
    value = _parse_duration(text)
    if value < timedelta(seconds=1):
        raise ValueError(f"{text!r} is too short; at least 1s")
    return value


def _parse_share(text: str) -> float:
    """``90%`` or ``0.9``: a share above 0 and at most all of it."""
    cleaned = text.strip()
    try:
        value = float(cleaned[:-1]) / 100 if cleaned.endswith("%") else float(cleaned)
    except ValueError:
        raise ValueError(f"{text!r} is not a share; use a percentage like 90%") from None
    if not 0 < value <= 1:
        raise ValueError(f"{text!r} is not between 0 and 100%")
    return value


def _parse_duration(text: str) -> timedelta:
    return parse_duration(text)


def _parse_pools(text: str) -> dict[str, int]:
    """``dev=3,weekly=1``: a warm pool size (0-100) per branch."""
    sizes: dict[str, int] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        branch, sep, size = part.partition("=")
        branch, size = branch.strip(), size.strip()
        if not sep or dns_label(branch, fallback="") != branch:
            raise ValueError(f"{part!r} is not BRANCH=SIZE; expected for example dev=3,weekly=1")
        if not size.isdigit() or not 0 <= int(size) <= MAX_POOL_SIZE:
            raise ValueError(f"{part!r}: a pool size is a whole number from 0 to {MAX_POOL_SIZE}")
        if branch in sizes:
            raise ValueError(f"{branch} is given more than once")
        sizes[branch] = int(size)
    return sizes


_PARSERS: dict[str, Callable[[str], Any]] = {
    "database_url": _parse_database_url,
    "db_pool_size": _parse_int(1, 100),
    "port_range": PortRange.parse,
    "default_ttl": _parse_duration,
    "max_ttl": _parse_duration,
    "max_islands_per_user": _parse_int(1, 1000),
    "namespace": _parse_namespace,
    "admins": _parse_admins,
    "allowed_channels": _parse_channels,
    "extend_step": _parse_duration,
    "timezone": _parse_timezone,
    "language": _parse_language,
    "clock_max_shift": _parse_duration,
    "clock_request_ttl": _parse_duration,
    "templates_dir": _parse_templates_dir,
    "kubernetes_version": _parse_kubernetes_version,
    "api_url": _parse_api_url,
    "kubeconfig": _parse_kubeconfig,
    "kube_context": _parse_context,
    "kube_timeout": _parse_duration,
    "reconcile_interval": _parse_duration,
    "ready_probe_interval": _parse_duration,
    "probe_failures": _parse_int(1, 100),
    "unschedulable_timeout": _parse_duration,
    "ready_timeout": _parse_duration,
    "expiry_warning": _parse_duration,
    "metrics_interval": _parse_interval,
    "memory_warning": _parse_share,
    "lease_ttl": _parse_duration,
    "log_level": _parse_log_level,
    "log_format": _parse_log_format,
    "require_registration": _parse_bool,
    "api_read_token": _parse_api_token,
    "api_ci_token": _parse_api_token,
    "pools": _parse_pools,
    "http_address": _parse_address,
    "board_url": _parse_board_url,
    "board_secret": _parse_board_secret,
    "board_link_ttl": _parse_link_ttl,
    "slack_workers": _parse_int(1, 64),
    "slack_api_url": _parse_slack_api_url,
    "slack_bot_token": _parse_token("xoxb-"),
    "slack_signing_secret": _parse_secret,
    "slack_app_token": _parse_token("xapp-"),
    "lark_app_id": _parse_lark_app_id,
    "lark_app_secret": _parse_lark_secret,
    "lark_verification_token": _parse_lark_secret,
    "lark_encrypt_key": _parse_lark_secret,
    "lark_domain": _parse_lark_domain,
    "lark_api_url": _parse_lark_api_url,
}

# Values that must not be echoed back in an error message.
_SECRET_FIELDS = frozenset(
    {
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "lark_app_secret",
        "lark_verification_token",
        "lark_encrypt_key",
        "api_read_token",
        "api_ci_token",
        "board_secret",
    }
)


def env_names() -> list[str]:
    """Every environment variable the settings read, in declaration order."""
    return [str(f.metadata["env"]) for f in fields(Settings)]


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``environ`` (default ``os.environ``); raise ``ConfigError``."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    problems: list[str] = []
    known = set(env_names())

    for f in fields(Settings):
        name = str(f.metadata["env"])
        raw = env.get(name)
        if raw is None or raw.strip() == "":
            continue
        try:
            values[f.name] = _PARSERS[f.name](raw)
        except ValueError as exc:
            shown = "<hidden>" if f.name in _SECRET_FIELDS else repr(raw)
            problems.append(f"{name}={shown}: {exc}")

    for name in sorted(env):
        if name.startswith(PREFIX) and not name.startswith(TEST_PREFIX) and name not in known:
            guess = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {guess[0]}?" if guess else ""
            problems.append(f"{name}: unknown setting{hint}")

    settings = Settings(**values) if not problems else None
    if settings is not None and settings.max_ttl < settings.default_ttl:
        problems.append(
            f"ISLANDBOT_MAX_TTL={format_duration(settings.max_ttl)}: must be at least "
            f"ISLANDBOT_DEFAULT_TTL ({format_duration(settings.default_ttl)})"
        )
    if problems or settings is None:
        raise ConfigError(problems)
    return settings


def describe_settings(settings: Settings) -> list[tuple[str, str]]:
    """(variable, value) pairs for display, secrets masked."""
    rows = []
    for f in fields(Settings):
        value = getattr(settings, f.name)
        if isinstance(value, timedelta):
            shown = format_duration(value)
        elif isinstance(value, frozenset):
            shown = ",".join(sorted(value)) or "(none)"
        elif isinstance(value, dict):
            shown = ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "(the profiles')"
        elif value is None:
            shown = "(unset)"
        elif isinstance(value, bool):
            shown = str(value).lower()
        elif f.name == "memory_warning":
            shown = f"{value * 100:g}%"
        else:
            shown = str(value)
        if f.name == "templates_dir" and value == DEFAULT_TEMPLATES_DIR:
            shown = "(the shipped k8s_templates/)"
        if f.name == "database_url":
            shown = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:****@", shown)
        rows.append((str(f.metadata["env"]), shown))
    return rows
