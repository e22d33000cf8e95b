"""Settings: one frozen, typed object loaded once from the environment (``settings_env``) and
passed explicitly. Each field's metadata names its variable and says what it means (the table in
docs/configuration.md is checked against it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from bot.domain.port_blocks import PortRange
from bot.infra.kubernetes.templates import DEFAULT_TEMPLATES_DIR

PREFIX: Final = "ISLANDBOT_"
# Variables under this prefix belong to the test suite and benchmarks, not to the bot.
TEST_PREFIX: Final = "ISLANDBOT_TEST_"
# ISLANDBOT_LARK_DOMAIN's values: where each Lark brand's Open API is
LARK_DOMAINS: Final = {"feishu": "https://open.feishu.cn", "lark": "https://open.larksuite.com"}


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
            "help": "Slack user ids (`U0123ABCD`) and Lark open_ids (`ou_...`), "
            "comma-separated, who may act on any island. None by default.",
        },
    )
    allowed_channels: frozenset[str] = field(
        default=frozenset(),
        metadata={
            "env": "ISLANDBOT_ALLOWED_CHANNELS",
            "help": "Slack channel ids (`C0123ABCD`) and Lark chat ids (`oc_...`), "
            "comma-separated, where `/island` may be used. Every channel when unset.",
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
    language: str = field(
        default="en",
        metadata={
            "env": "ISLANDBOT_LANGUAGE",
            "help": "The language of channel posts, the board and the API when the reader's is "
            "not known: `en` or `zh-CN` (one per catalogue in `bot/words/locale/`). Answers "
            "meant for one person use the language their chat reports, when it does.",
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
    metrics_interval: timedelta = field(
        default=timedelta(seconds=30),
        metadata={
            "env": "ISLANDBOT_METRICS_INTERVAL",
            "help": "How often the islands' memory is read from the cluster's metrics API "
            "(one request for all of them; metrics-server itself resolves 15-60 s). 1s at the "
            "least. Without a metrics API (no metrics-server) the readings are off.",
        },
    )
    memory_warning: float = field(
        default=0.9,
        metadata={
            "env": "ISLANDBOT_MEMORY_WARNING",
            "help": "An island's owner is warned once when its working set stays at this share "
            "of its memory limit or more for two readings in a row: `90%` or `0.9`.",
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
    api_ci_token: Secret | None = field(
        default=None,
        metadata={
            "env": "ISLANDBOT_API_CI_TOKEN",
            "help": "The bearer token CI sends with `POST /api/v1/pools/{branch}/refresh` "
            '("the code of this branch changed": its warm islands are renewed), at least 16 '
            "characters; unset, that route answers 403.",
        },
    )
    pools: dict[str, int] = field(
        default_factory=dict,
        metadata={
            "env": "ISLANDBOT_POOLS",
            "help": "Warm pool sizes by branch, over the branch profiles' `pool.size`: "
            "`dev=3,weekly=1`; `0` switches a branch's pool off. Admins may set a size from "
            "chat (`/island pool dev size=5`), which wins until set back to `default`.",
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
    board_url: str | None = field(
        default=None,
        metadata={
            "env": "ISLANDBOT_BOARD_URL",
            "help": "Where people reach the team board, as its links name it (`https://host` "
            "or `http://host:port`, no path); unset, `http://` and `ISLANDBOT_HTTP_ADDRESS`, "
            "and no board when that listens on every interface (0.0.0.0).",
        },
    )
    board_secret: Secret | None = field(
        default=None,
        metadata={
            "env": "ISLANDBOT_BOARD_SECRET",
            "help": "Key that signs the board's links (at least 32 characters); unset, the bot "
            "makes one once and keeps it in its database, shared by its replicas.",
        },
    )
    board_link_ttl: timedelta = field(
        default=timedelta(hours=12),
        metadata={
            "env": "ISLANDBOT_BOARD_LINK_TTL",
            "help": "How long a board link (and the session it opens) works (1m-7d).",
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
    lark_app_id: str | None = field(
        default=None,
        metadata={
            "env": "LARK_APP_ID",
            "help": "The Lark / Feishu app's App ID (`cli_...`). With its secret, the bot "
            "serves Lark too (beside Slack when Slack is set).",
        },
    )
    lark_app_secret: Secret | None = field(
        default=None,
        metadata={"env": "LARK_APP_SECRET", "help": "The Lark app's App Secret."},
    )
    lark_verification_token: Secret | None = field(
        default=None,
        metadata={
            "env": "LARK_VERIFICATION_TOKEN",
            "help": "The Verification Token of the app's event subscription. When set, Lark's "
            "events come over HTTP (`POST /lark/events`); else over the long connection.",
        },
    )
    lark_encrypt_key: Secret | None = field(
        default=None,
        metadata={
            "env": "LARK_ENCRYPT_KEY",
            "help": "The Encrypt Key of the app's event subscription, when one is set there: "
            "HTTP events are then decrypted and their signatures checked.",
        },
    )
    lark_domain: str = field(
        default="feishu",
        metadata={
            "env": "ISLANDBOT_LARK_DOMAIN",
            "help": "`feishu` (open.feishu.cn, China) or `lark` (open.larksuite.com).",
        },
    )
    lark_api_url: str | None = field(
        default=None,
        metadata={
            "env": "ISLANDBOT_LARK_API_URL",
            "help": "Base URL of the Lark Open API in place of the domain's (a private "
            "deployment, a test double): an origin such as `https://open.example.com`.",
        },
    )

    @property
    def lark_origin(self) -> str:
        """Where the Lark Open API is: ``ISLANDBOT_LARK_API_URL``, else the domain's."""
        return self.lark_api_url or LARK_DOMAINS[self.lark_domain]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
