"""The records the layers hand each other: who asks, what a start asks for and got, an island,
a clock change, what a look found. Frozen dataclasses, no behaviour beyond derived values."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from bot.domain.lifecycle_rules import IslandFacts, Notice
from bot.domain.pool import POOL_OWNER, Miss, PoolUse
from bot.domain.states import IslandState

SYSTEM_ACTOR = "system"  # the audit log's actor for what the bot does by itself


@dataclass(frozen=True)
class Caller:
    """Who asks, by the chat's immutable user id, and from which channel (None: a home page)."""

    user_id: str
    name: str
    channel: str | None = None


@dataclass(frozen=True)
class StartRequest:
    """What a start asks for, already parsed and validated."""

    owner_id: str
    owner_name: str
    branch: str
    ttl: timedelta
    request_key: str | None = None
    overrides: Mapping[str, str] = field(default_factory=dict)
    clock_offset_s: int = 0
    note: str | None = None
    chat_channel: str | None = None
    # where to tell the person who started it if its root message cannot go to chat_channel
    reply: Mapping[str, str | None] | None = None
    pool: PoolUse | None = None  # the branch's warm pool, when it has one in force


@dataclass(frozen=True)
class Allocation:
    island_id: int
    pod_name: str
    first_port: int
    port_count: int
    expires_at: datetime
    created: bool  # False when the request key named an island started earlier
    claimed: bool = False  # a warm island of the branch's pool, handed over ready
    miss: Miss | None = None  # the branch's pool could not serve it: why
    clock_request: int | None = None  # the claim's clock change, to apply before "ready"

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(range(self.first_port, self.first_port + self.port_count))


@dataclass(frozen=True)
class PortUsage:
    blocks: int
    held: int
    excluded: int
    free: int


@dataclass(frozen=True)
class ExclusionConflict:
    """A live island holds a block in which a port is now used by something else."""

    island_id: int
    first_port: int
    reason: str


@dataclass(frozen=True)
class IslandRecord:
    """One island as stored: the only shape of an island outside the database. The storage
    layer reads its columns from these fields; the lifecycle tick decides on ``facts``."""

    id: int
    pod_name: str
    owner_id: str
    owner_name: str
    branch: str
    state: IslandState
    first_port: int
    port_count: int
    created_at: datetime
    expires_at: datetime
    stopped_at: datetime | None = None
    ports_released_at: datetime | None = None
    failure_reason: str | None = None
    node: str | None = None
    host_ip: str | None = None
    clock_offset_s: int = 0
    overrides: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None
    chat_channel: str | None = None  # where its root message is (or will be)
    chat_thread: str | None = None  # the root message, once posted
    scheduled_at: datetime | None = None
    ready_at: datetime | None = None
    registered_at: datetime | None = None
    registration: Mapping[str, Any] | None = None
    # lifecycle bookkeeping: what was sent to the cluster and told to people
    pod_requested_at: datetime | None = None
    expiry_warned_at: datetime | None = None
    unschedulable_message: str | None = None
    probe_failures: int = 0
    restart_requested_at: datetime | None = None
    restarts: int = 0
    create_error: str | None = None  # why its last pod create failed
    creating_since: datetime | None = None  # when it went from requested to creating
    pod_created_at: datetime | None = None  # when the cluster answered its pod's create
    registration_token_hash: str | None = None  # what a registration's token must hash to
    chat_digest: bool = False  # chat_thread is a digest shared with islands started at once
    digest_of: int | None = None  # its digest's key is this island's (planned before posting)
    claimed_at: datetime | None = None  # handed to its owner from a warm pool then
    code_version: str | None = None  # the server code it booted (its registration's)

    @property
    def pooled(self) -> bool:
        """In its branch's warm pool: nobody's yet (``bot.domain.pool``)."""
        return self.owner_id == POOL_OWNER

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(range(self.first_port, self.first_port + self.port_count))

    @functools.cached_property
    def facts(self) -> IslandFacts:
        """What the lifecycle rules look at."""
        return IslandFacts(
            self.id,
            self.state,
            self.created_at,
            self.expires_at,
            self.pod_requested_at,
            self.expiry_warned_at is not None,
            self.unschedulable_message,
            self.probe_failures,
            self.restart_requested_at is not None,
            self.registered_at is not None,
            self.create_error,
            self.pod_created_at is not None or self.scheduled_at is not None,
            self.creating_since,
        )


@dataclass(frozen=True)
class WorkTicket:
    """One claim on an accepted request (``key``): the work done under it counts only while
    the claim is still this one (``claim``), and is recorded as done with the change it makes."""

    key: str
    claim: str


@dataclass(frozen=True)
class Accepted:
    """A request accepted into the durable intake and claimed for carrying out."""

    ticket: WorkTicket
    kind: str  # command, button, home
    payload: Mapping[str, Any]
    attempts: int  # 1 the first time; more after a crash or a lost claim


class Outcome(StrEnum):
    OK = "ok"
    REFUSED = "refused"
    ERROR = "error"


@dataclass(frozen=True)
class Audit:
    """One entry of the append-only audit log: who did what to which island, how it ended."""

    actor: str  # a chat user id, ``island:<id>`` or SYSTEM_ACTOR
    action: str
    outcome: Outcome = Outcome.OK
    island_id: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


NoticeSpec = tuple[Notice, Mapping[str, Any]]  # a notice to send, with what its text needs


@dataclass(frozen=True)
class IslandChange:
    """What one change of an island writes, all in one transaction: its new values, the
    notices it causes (delivered afterwards, in order) and its audit entry."""

    updates: Mapping[str, Any] = field(default_factory=dict)
    notices: tuple[NoticeSpec, ...] = ()
    audit: Audit | None = None


@dataclass(frozen=True)
class PendingNotice:
    """A notice not yet delivered, with what its delivery needs of its island."""

    id: int
    island_id: int
    kind: Notice
    detail: Mapping[str, Any]
    attempts: int
    owner_id: str
    branch: str
    first_port: int
    chat_channel: str | None
    chat_thread: str | None
    state: IslandState
    clock_offset_s: int
    created_at: datetime | None = None
    chat_digest: bool = False  # the island's root message is a digest
    # planned into the digest keyed by this island's id (an earlier attempt may have posted it)
    digest_of: int | None = None
    next_attempt_at: datetime | None = None  # not before (a failed attempt backs off)
    claim_until: datetime | None = None  # held by a delivery until then


@dataclass(frozen=True)
class Extended:
    island_id: int
    expires_at: datetime
    changed: bool  # False: a double click; the expiry had already moved past what was seen


@dataclass(frozen=True)
class LogTail:
    island_id: int
    text: str
    lines: int  # lines in ``text``
    previous: bool


@dataclass(frozen=True)
class BranchCapacity:
    branch: str
    live_islands: int
    nodes_ready: int
    memory_free: int  # bytes allocatable and not requested, on the ready schedulable nodes
    warm: int = 0  # warm pool islands ready to hand out (not counted in live_islands)
    warming: int = 0  # warm pool islands still starting


@dataclass(frozen=True)
class CapacityReport:
    ports: PortUsage
    live_islands: int
    branches: tuple[BranchCapacity, ...]
    cluster_error: str | None  # the nodes could not be read; ports are still known


@dataclass(frozen=True)
class ClockRecord:
    """One clock change asked for, and what became of it."""

    id: int
    island_id: int
    requested_by: str
    requested_at: datetime
    from_offset_s: int
    to_offset_s: int
    kind: str
    target_at: datetime | None
    state: str
    decided_by: str | None
    decided_at: datetime | None
    applied_at: datetime | None
    failure_reason: str | None
    expires_at: datetime
    chat_channel: str | None  # where the request's message is
    chat_ts: str | None


@dataclass(frozen=True)
class ClockAsk:
    """A clock change to record: what is asked, by whom, and whether it is applied at once
    (the owner's or an admin's) or waits for a decision."""

    requested_by: str
    from_offset_s: int
    to_offset_s: int
    kind: str  # now, relative, absolute
    target_at: datetime | None
    immediate: bool
    expires_at: datetime
    chat_channel: str | None


@dataclass(frozen=True)
class ClockView:
    island_id: int
    owner_id: str
    offset_s: int
    clock: datetime
    last: ClockRecord | None  # the last applied change (who set it, when)


@dataclass(frozen=True)
class ShiftOutcome:
    request: ClockRecord
    applied: bool  # False: a request waiting for the owner's decision
    backwards: bool  # the island's clock goes back: timers waiting on it stall
    superseded: tuple[ClockRecord, ...] = ()
