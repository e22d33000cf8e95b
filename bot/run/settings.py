"""Settings: one frozen, typed object loaded once from the environment and passed explicitly.

Every value is validated at start-up. A bad value stops the bot with a message that names the
variable, the value it got and what is accepted; all problems are reported at once.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.domain.durations import format_duration, parse_duration
from bot.domain.naming import dns_label
from bot.domain.port_blocks import PortRange
from bot.infra.kubernetes.templates import DEFAULT_TEMPLATES_DIR

PREFIX: Final = "ISLANDBOT_"
# Variables under this prefix belong to the test suite and benchmarks, not to the bot.
TEST_PREFIX: Final = "ISLANDBOT_TEST_"

_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,20}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """One or more settings are invalid; ``problems`` holds one readable line per variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


class Secret:
    """A string that never shows itself in ``repr``/``str`` (and so never in a log line)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    """Everything islandbot can be configured with. Field metadata names the variable."""

    database_url: str = field(
        default="sqlite:///islandbot.db",
        metadata={
            "env": "ISLANDBOT_DATABASE_URL",
            "help": "SQLAlchemy URL. `sqlite:///FILE` (embedded) or "
            "`mysql+pymysql://USER:PASSWORD@HOST:3306/DB`.",
        },
    )
    db_pool_size: int = field(
        default=10,
        metadata={
            "env": "ISLANDBOT_DB_POOL_SIZE",
            "help": "MySQL connections kept open per bot process (1-100); as many again "
            "may be opened under load.",
        },
    )
    port_range: PortRange = field(
        default=PortRange(30000, 39999),
        metadata={
            "env": "ISLANDBOT_PORT_RANGE",
            "help": "Host ports islands get, `FIRST-LAST` inclusive; cut into blocks of "
            "as many ports as the island template declares.",
        },
    )
    default_ttl: timedelta = field(
        default=timedelta(hours=8),
        metadata={
            "env": "ISLANDBOT_DEFAULT_TTL",
            "help": "How long an island lives unless extended (`90m`, `8h`, `2d`).",
        },
    )
    max_ttl: timedelta = field(
        default=timedelta(days=7),
        metadata={
            "env": "ISLANDBOT_MAX_TTL",
            "help": "Longest lifetime one start or extension may ask for; at least "
            "the default TTL.",
        },
    )
    max_islands_per_user: int = field(
        default=3,
        metadata={
            "env": "ISLANDBOT_MAX_ISLANDS_PER_USER",
            "help": "Live islands one user may hold at once (1-1000).",
        },
    )
    namespace: str = field(
        default="islands",
        metadata={
            "env": "ISLANDBOT_NAMESPACE",
            "help": "Kubernetes namespace the island pods live in (a DNS-1123 label).",
        },
    )
    admins: frozenset[str] = field(
        default=frozenset(),
        metadata={
            "env": "ISLANDBOT_ADMINS",
            "help": "Slack user ids (`U0123ABCD`, comma-separated) who may act on any "
            "island. None by default.",
        },
    )
    allowed_channels: frozenset[str] = field(
        default=frozenset(),
        metadata={
            "env": "ISLANDBOT_ALLOWED_CHANNELS",
            "help": "Slack channel ids (`C0123ABCD`, comma-separated) where `/island` may be "
            "used. Every channel when unset.",
        },
    )
    extend_step: timedelta = field(
        default=timedelta(hours=4),
        metadata={
            "env": "ISLANDBOT_EXTEND_STEP",
            "help": "How much the Extend button adds to an island's life.",
        },
    )
    timezone: str = field(
        default="UTC",
        metadata={
            "env": "ISLANDBOT_TIMEZONE",
            "help": "The team's time zone (IANA name such as `Europe/Paris`) for clock times "
            "people type and read.",
        },
    )
    clock_max_shift: timedelta = field(
        default=timedelta(days=3650),
        metadata={
            "env": "ISLANDBOT_CLOCK_MAX_SHIFT",
            "help": "How far from real time an island's clock may be set, either way.",
        },
    )
    clock_request_ttl: timedelta = field(
        default=timedelta(hours=1),
        metadata={
            "env": "ISLANDBOT_CLOCK_REQUEST_TTL",
            "help": "How long a clock change asked for by someone else waits for the owner's "
            "decision before it expires.",
        },
    )
    templates_dir: Path = field(
        default=DEFAULT_TEMPLATES_DIR,
        metadata={
            "env": "ISLANDBOT_TEMPLATES_DIR",
            "help": "Directory with `island-pod.yaml` and `branches/*.yaml` (default: the "
            "`k8s_templates/` shipped with islandbot).",
        },
    )
    kubernetes_version: str = field(
        default="1.37",
        metadata={
            "env": "ISLANDBOT_KUBERNETES_VERSION",
            "help": "Kubernetes minor version (`1.37`) whose schema validates every pod.",
        },
    )
    api_url: str = field(
        default="http://127.0.0.1:8080",
        metadata={
            "env": "ISLANDBOT_API_URL",
            "help": "Base URL at which island pods reach islandbot's HTTP API (they "
            "register there).",
        },
    )
    kubeconfig: Path | None = field(
        default=None,
        metadata={
            "env": "ISLANDBOT_KUBECONFIG",
            "help": "Kubeconfig file to use outside a cluster (default: `KUBECONFIG`, "
            "then `~/.kube/config`); inside a pod the service account is used.",
        },
    )
    kube_context: str | None = field(
        default=None,
        metadata={
            "env": "ISLANDBOT_KUBE_CONTEXT",
            "help": "Context of the kubeconfig to use (default: its current context).",
        },
    )
    kube_timeout: timedelta = field(
        default=timedelta(seconds=10),
        metadata={
            "env": "ISLANDBOT_KUBE_TIMEOUT",
            "help": "Timeout of one Kubernetes API request (`10s`).",
        },
    )
    reconcile_interval: timedelta = field(
        default=timedelta(seconds=1),
        metadata={
            "env": "ISLANDBOT_RECONCILE_INTERVAL",
            "help": "How often the lifecycle loop compares islands with their pods.",
        },
    )
    ready_probe_interval: timedelta = field(
        default=timedelta(seconds=5),
        metadata={
            "env": "ISLANDBOT_READY_PROBE_INTERVAL",
            "help": "How often ready islands' server ports are probed (islands on their "
            "way to ready are probed on every tick).",
        },
    )
    probe_failures: int = field(
        default=3,
        metadata={
            "env": "ISLANDBOT_PROBE_FAILURES",
            "help": "Failed probes in a row after which a ready island has failed (1-100).",
        },
    )
    unschedulable_timeout: timedelta = field(
        default=timedelta(minutes=10),
        metadata={
            "env": "ISLANDBOT_UNSCHEDULABLE_TIMEOUT",
            "help": "How long an island may wait for room in the cluster before it fails "
            "and its ports are freed.",
        },
    )
    ready_timeout: timedelta = field(
        default=timedelta(minutes=10),
        metadata={
            "env": "ISLANDBOT_READY_TIMEOUT",
            "help": "How long a scheduled island may take to answer on its server port.",
        },
    )
    expiry_warning: timedelta = field(
        default=timedelta(minutes=30),
        metadata={
            "env": "ISLANDBOT_EXPIRY_WARNING",
            "help": "How long before expiry the owner is warned.",
        },
    )
    lease_ttl: timedelta = field(
        default=timedelta(seconds=10),
        metadata={
            "env": "ISLANDBOT_LEASE_TTL",
            "help": "Leader lease of the replica that runs the loop; another replica takes "
            "over within about this long after the leader dies.",
        },
    )
    log_level: str = field(
        default="INFO",
        metadata={"env": "ISLANDBOT_LOG_LEVEL", "help": "DEBUG, INFO, WARNING or ERROR."},
    )
    log_format: str = field(
        default="text",
        metadata={
            "env": "ISLANDBOT_LOG_FORMAT",
            "help": "`text` (one line per record) or `json` (one JSON object per record, for "
            "log collectors). Tokens and secrets are never logged in either.",
        },
    )
    api_read_token: Secret | None = field(
        default=None,
        metadata={
            "env": "ISLANDBOT_API_READ_TOKEN",
            "help": "When set, `GET /api/v1/islands` and `/api/v1/islands/{id}` need "
            "`Authorization: Bearer <this token>` (at least 16 characters); unset, the registry "
            "is readable by anyone who reaches the API.",
        },
    )
    require_registration: bool = field(
        default=False,
        metadata={
            "env": "ISLANDBOT_REQUIRE_REGISTRATION",
            "help": "`true`: an island is ready only once its seed script has registered "
            "(`POST /api/v1/islands/{id}/register`), besides its server port answering.",
        },
    )
    http_address: str = field(
        default="0.0.0.0:3000",
        metadata={
            "env": "ISLANDBOT_HTTP_ADDRESS",
            "help": "`host:port` the bot's HTTP server listens on (`POST /slack/events` in "
            "HTTP mode, the API, `/healthz`, `/readyz`, `/metrics`).",
        },
    )
    slack_workers: int = field(
        default=8,
        metadata={
            "env": "ISLANDBOT_SLACK_WORKERS",
            "help": "Threads doing the work of Slack requests after they are acknowledged "
            "(1-64); 500 more requests may wait for them before new ones are turned away.",
        },
    )
    slack_api_url: str = field(
        default="https://slack.com/api/",
        metadata={
            "env": "ISLANDBOT_SLACK_API_URL",
            "help": "Base URL of Slack's Web API (changed only to talk to a test double).",
        },
    )
    slack_bot_token: Secret | None = field(
        default=None,
        metadata={
            "env": "SLACK_BOT_TOKEN",
            "help": "Bot token (`xoxb-...`). Needed to talk to Slack.",
        },
    )
    slack_signing_secret: Secret | None = field(
        default=None,
        metadata={
            "env": "SLACK_SIGNING_SECRET",
            "help": "Signing secret that verifies Slack's HTTP requests.",
        },
    )
    slack_app_token: Secret | None = field(
        default=None,
        metadata={
            "env": "SLACK_APP_TOKEN",
            "help": "App-level token (`xapp-...`); when set, the bot uses Socket Mode.",
        },
    )

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


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
    bad = [i for i in ids if not _SLACK_USER_ID.match(i)]
    if bad:
        raise ValueError(
            f"{', '.join(bad)} is not a Slack user id; expected ids like U0123ABCD, "
            "comma-separated (display names change, ids do not)"
        )
    return frozenset(ids)


_SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,20}$")


def _parse_channels(text: str) -> frozenset[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    bad = [i for i in ids if not _SLACK_CHANNEL_ID.match(i)]
    if bad:
        raise ValueError(
            f"{', '.join(bad)} is not a Slack channel id; expected ids like C0123ABCD, "
            "comma-separated (channel names change, ids do not)"
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


def _parse_timezone(text: str) -> str:
    name = text.strip()
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError("expected an IANA time zone name such as UTC or Europe/Paris") from None
    return name


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


def _parse_duration(text: str) -> timedelta:
    return parse_duration(text)


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
    "lease_ttl": _parse_duration,
    "log_level": _parse_log_level,
    "log_format": _parse_log_format,
    "require_registration": _parse_bool,
    "api_read_token": _parse_api_token,
    "http_address": _parse_address,
    "slack_workers": _parse_int(1, 64),
    "slack_api_url": _parse_slack_api_url,
    "slack_bot_token": _parse_token("xoxb-"),
    "slack_signing_secret": _parse_secret,
    "slack_app_token": _parse_token("xapp-"),
}

# Values that must not be echoed back in an error message.
_SECRET_FIELDS = frozenset(
    {"slack_bot_token", "slack_signing_secret", "slack_app_token", "api_read_token"}
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
        elif value is None:
            shown = "(unset)"
        elif isinstance(value, bool):
            shown = str(value).lower()
        else:
            shown = str(value)
        if f.name == "templates_dir" and value == DEFAULT_TEMPLATES_DIR:
            shown = "(the shipped k8s_templates/)"
        if f.name == "database_url":
            shown = re.sub(r"://([^:/@]+):[^@]*@", r"://\1:****@", shown)
        rows.append((str(f.metadata["env"]), shown))
    return rows
