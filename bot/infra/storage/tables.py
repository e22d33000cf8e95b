"""The database schema as SQLAlchemy 2.x typed ORM models.

Conventions: times are stored as naive UTC and come back timezone-aware (``UTCDateTime``);
JSON is stored as text (``JSONText``) so that SQLite and MariaDB agree on the column type.
Rows of ``islands`` are never deleted (ids are never reused); ``audit_log`` is append-only;
``outbox`` rows are deleted a week after they were sent, but their ids are never reused either.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    false,
    literal_column,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bot.domain.states import IslandState

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# a chat's id of a person, conversation or message: Slack's (U0…, C0…, a ts) or Lark's
# (ou_…, oc_…, om_…: 35 characters), with room
CHAT_ID = 64


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, naive UTC stored (microseconds kept on MySQL), aware UTC out."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "mysql":
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use timezone-aware UTC datetimes")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class JSONText(TypeDecorator[Any]):
    """A JSON document stored as text, identical on every backend."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


def _state_check() -> CheckConstraint:
    allowed = ", ".join(f"'{s.value}'" for s in IslandState)
    return CheckConstraint(f"state IN ({allowed})", name="state")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class User(Base):
    """A chat user. Its row is also the lock that serialises that user's starts (quota)."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(CHAT_ID), primary_key=True)  # the chat's user id
    display_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Island(Base):
    __tablename__ = "islands"
    __table_args__ = (
        _state_check(),
        Index("ix_islands_owner_id_state", "owner_id", "state"),
        Index("ix_islands_state", "state"),
        Index("ix_islands_branch_id", "branch", "id"),  # a branch's latest (a pool's miss)
        {"sqlite_autoincrement": True},  # SQLite: never reuse an id, even the highest
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pod_name: Mapped[str] = mapped_column(String(63))
    owner_id: Mapped[str] = mapped_column(String(CHAT_ID), ForeignKey("users.id"))
    owner_name: Mapped[str] = mapped_column(String(200))
    branch: Mapped[str] = mapped_column(String(63))
    state: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    node: Mapped[str | None] = mapped_column(String(253))
    host_ip: Mapped[str | None] = mapped_column(String(45))
    first_port: Mapped[int] = mapped_column(Integer)
    port_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ports_released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    chat_channel: Mapped[str | None] = mapped_column(String(CHAT_ID))
    chat_thread: Mapped[str | None] = mapped_column(String(CHAT_ID))
    # chat_thread is a digest shared with the islands started at once in the channel
    chat_digest: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # the island whose digest key (``digest-<id>``) its announcement is posted under, written
    # before that digest is posted: an attempt tried again looks for that one (migration 0012)
    digest_of: Mapped[int | None] = mapped_column(Integer)
    clock_offset_s: Mapped[int] = mapped_column(BigInteger, default=0)
    overrides: Mapped[dict[str, str]] = mapped_column(JSONText(), default=dict)
    note: Mapped[str | None] = mapped_column(String(500))
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    registration_token_hash: Mapped[str | None] = mapped_column(String(64))
    registration: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
    request_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # lifecycle bookkeeping (what was sent to the cluster and told to people)
    pod_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expiry_warned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unschedulable_message: Mapped[str | None] = mapped_column(Text)
    probe_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    restart_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    restarts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    create_error: Mapped[str | None] = mapped_column(Text)  # the last failed pod create
    creating_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    pod_created_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # create answered
    # warm pools (``bot.domain.pool``): when a pool island was handed to a person, and the
    # version of the server code the island booted (its registration's ``code``)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    code_version: Mapped[str | None] = mapped_column(String(100))
    # Bumped by every UPDATE (SQLAlchemy applies ``onupdate`` to each Core update that does not
    # set it): the tick reads (id, version) of the live islands and the full row only when the
    # version moved.
    version: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", onupdate=literal_column("version + 1")
    )


class PortBlock(Base):
    """One block of consecutive host ports. Held while ``island_id`` is set.

    The rows are pre-created from the configured layout, so handing out a block is locking the
    lowest free row (``FOR UPDATE SKIP LOCKED`` on MySQL) rather than searching for a gap.
    """

    __tablename__ = "port_blocks"
    __table_args__ = (Index("ix_port_blocks_island_id_first_port", "island_id", "first_port"),)

    first_port: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(Integer)
    island_id: Mapped[int | None] = mapped_column(Integer, ForeignKey("islands.id"), unique=True)
    held_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set while any port of the block is used by something else (a NodePort Service...).
    excluded_reason: Mapped[str | None] = mapped_column(String(200))
    # Left over from an earlier layout: still held, deleted instead of freed on release.
    retired: Mapped[bool] = mapped_column(Boolean, default=False)


class ClockRequest(Base):
    """A request to move an island's clock, visible to the team until decided."""

    __tablename__ = "clock_requests"
    __table_args__ = (Index("ix_clock_requests_island_id_state", "island_id", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    island_id: Mapped[int] = mapped_column(Integer, ForeignKey("islands.id"))
    requested_by: Mapped[str] = mapped_column(String(CHAT_ID))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    from_offset_s: Mapped[int] = mapped_column(BigInteger)
    to_offset_s: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16), server_default="relative")  # or now, absolute
    target_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # absolute: the time asked
    # pending, applying, rejected, expired, superseded, applied, failed
    state: Mapped[str] = mapped_column(String(16))
    decided_by: Mapped[str | None] = mapped_column(String(CHAT_ID))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failure_reason: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    chat_channel: Mapped[str | None] = mapped_column(String(CHAT_ID))
    chat_ts: Mapped[str | None] = mapped_column(String(CHAT_ID))


class AuditEntry(Base):
    """Append-only: who did what, when, to which island, and how it ended."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_island_id_at", "island_id", "at"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(CHAT_ID))  # a chat user id, island:<id>, or "system"
    action: Mapped[str] = mapped_column(String(32))
    island_id: Mapped[int | None] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(16))  # ok, refused, error
    detail: Mapped[dict[str, Any]] = mapped_column(JSONText(), default=dict)


class PortLayoutRow(Base):
    """The single row (id 1) recording the layout the blocks were last synced to.

    Locking it (``FOR UPDATE``) serialises layout and exclusion changes between processes.
    The migration creates the row, so it always exists.
    """

    __tablename__ = "port_layout"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    range_first: Mapped[int | None] = mapped_column(Integer)
    range_last: Mapped[int | None] = mapped_column(Integer)
    block_size: Mapped[int | None] = mapped_column(Integer)
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ExcludedPort(Base):
    """A host port used by something other than islands (e.g. a NodePort Service)."""

    __tablename__ = "excluded_ports"

    port: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reason: Mapped[str] = mapped_column(String(200))
    since: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxMessage(Base):
    """A notice decided in the same transaction as the state change it announces, delivered
    afterwards; ``sent_at`` makes delivery happen once, also across restarts. A failed attempt
    sets ``next_attempt_at`` (exponential backoff); a notice older than a day is given up
    (``given_up_at``), never silently dropped, and so at once is one that can never be
    delivered (``delivered_as`` refused or failed). ``claimed_by``/``claim_until``: the delivery
    that holds it (taken only when free, expired, or its process, ``worker``, died)."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_sent_at_id", "sent_at", "id"),
        Index("ix_outbox_island_id_id", "island_id", "id"),
        # SQLite: never reuse an id, also after housekeeping deleted the highest (a notice's
        # key is ``outbox-{id}``: a repeated id would match an old message in the chat)
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    island_id: Mapped[int] = mapped_column(Integer, ForeignKey("islands.id"))
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONText(), default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(160))
    claim_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the claiming process's heartbeat (``leases.name``): the claim dies with the process
    worker: Mapped[str | None] = mapped_column(String(64))
    given_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # posted, shown, superseded; or, given up at once: refused (by the chat, for good), failed
    delivered_as: Mapped[str | None] = mapped_column(String(16))


class Lease(Base):
    """Leader election: the replica whose lease has not expired runs the scheduled jobs."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Raised each time the lease changes hands: a fencing token. Work done for a leader is
    # accepted only while the lease still carries the epoch that leader took it with.
    epoch: Mapped[int] = mapped_column(BigInteger, default=1, server_default="1")


class Delivery(Base):
    """A chat request or event, recorded before it is acknowledged (the durable intake): a
    retry or a duplicate finds its key here and is not acted on again, and work that was
    accepted but not done (``state`` pending, or working under a claim that expired or whose
    process died) is picked up again by any replica. ``payload`` holds what carrying it out
    needs."""

    __tablename__ = "deliveries"
    __table_args__ = (
        Index("ix_deliveries_seen_at", "seen_at"),
        Index("ix_deliveries_state_claim_until", "state", "claim_until"),
    )

    key: Mapped[str] = mapped_column(String(191), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str | None] = mapped_column(String(16))  # command, button, home
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONText())
    state: Mapped[str] = mapped_column(String(16), default="done", server_default="done")
    claimed_by: Mapped[str | None] = mapped_column(String(160))
    claim_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # the claiming process's heartbeat (``leases.name``): the claim dies with the process
    worker: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IslandMemory(Base):
    """An island's last memory reading (its working set against its container's limit, from
    the cluster's metrics API) and what is kept between readings to warn its owner once
    before the kernel OOMKills it (``bot.domain.memory_watch``)."""

    __tablename__ = "island_memory"

    island_id: Mapped[int] = mapped_column(Integer, ForeignKey("islands.id"), primary_key=True)
    used_bytes: Mapped[int] = mapped_column(BigInteger)
    limit_bytes: Mapped[int | None] = mapped_column(BigInteger)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the metrics' sample time
    high_in_a_row: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    warned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class MemorySample(Base):
    """An island's memory readings of the last hour (its working set and its container's
    limit), for the board's chart; older ones are deleted as new ones come."""

    __tablename__ = "memory_samples"
    __table_args__ = (
        Index("ix_memory_samples_island_id_read_at", "island_id", "read_at"),
        Index("ix_memory_samples_read_at", "read_at"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    island_id: Mapped[int] = mapped_column(Integer)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime())  # the metrics' sample time
    used_bytes: Mapped[int] = mapped_column(BigInteger)
    limit_bytes: Mapped[int | None] = mapped_column(BigInteger)


class ServerSecret(Base):
    """A secret the bot makes for itself once, shared by its replicas (the board's signing
    key, when no setting gives one)."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Pool(Base):
    """A branch's warm pool, as chat and CI steer it: the size an admin set (None: the
    deployment's, ``ISLANDBOT_POOLS`` or the branch profile), when the branch's code was last
    said to have changed, the newest code version its islands registered with, and whether its
    pool islands keep failing."""

    __tablename__ = "pools"

    branch: Mapped[str] = mapped_column(String(63), primary_key=True)
    size: Mapped[int | None] = mapped_column(Integer)
    size_set_by: Mapped[str | None] = mapped_column(String(CHAT_ID))
    size_set_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    code_version: Mapped[str | None] = mapped_column(String(100))
    code_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # its pool islands failing in a row (``bot.domain.pool.Streak``)
    failures: Mapped[int] = mapped_column(Integer, server_default="0", default=0)
    failed_last_id: Mapped[int | None] = mapped_column(Integer)
    held_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    streak_from_id: Mapped[int | None] = mapped_column(Integer)  # earlier ones not counted


class CodeVersion(Base):
    """When a branch first saw a version of its server code registered (the newest is the one
    first seen last: a late registration of old code never takes the branch back to it)."""

    __tablename__ = "code_versions"

    branch: Mapped[str] = mapped_column(String(63), primary_key=True)
    version: Mapped[str] = mapped_column(String(100), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PoolDay(Base):
    """Claims and misses of a branch's pool on one UTC day (``YYYY-MM-DD``), summed over its
    shards: each start adds to one picked at random, so that concurrent claims do not queue
    on one row's lock."""

    __tablename__ = "pool_days"

    branch: Mapped[str] = mapped_column(String(63), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    shard: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    claims: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    misses: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
