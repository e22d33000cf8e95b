"""What the team board shows, read in as few queries as it takes: the live islands (with
ports, clock and last memory reading), each branch's nodes and the room left on them, the
clock requests waiting for a decision; and one island's page (its history, log tail and
memory over the last hour).

The nodes come from the cluster (two LISTs), so they are read again only when an island was
placed or left a node since they were last read (at most once every ``nodes_soonest``), or
when they are ``nodes_every`` old, by one reader while the others show what was last read
(never waiting on the cluster); a cluster that cannot be read is asked again only every
``nodes_every``, leaves the rest of the board as it is, and its error is said once in the log
and shown on the page. At most ``readers`` of the board read the database at once, so a crowd
of viewers cannot take the connections the chat and the lifecycle need.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.app.island_actions import IslandActions
from bot.domain.errors import UserError
from bot.domain.lifecycle_rules import Failure, FailureKind
from bot.domain.permissions import Action
from bot.domain.podspec import IslandParams
from bot.domain.pool import POOL_OWNER
from bot.domain.port_blocks import named_ports
from bot.domain.records import ClockRecord, IslandRecord, LogTail
from bot.domain.states import IslandState
from bot.infra.kubernetes.client import pod_memory_request
from bot.infra.kubernetes.errors import KubeError
from bot.infra.kubernetes.views import NodeView
from bot.infra.storage.board_reads import BoardReads, HistoryEntry, IslandLine
from bot.infra.storage.memory import SAMPLES_KEPT, MemoryStore
from bot.words import notices

log = logging.getLogger(__name__)

LOG_LINES = 40  # the log tail on an island's page


@dataclass(frozen=True, slots=True)
class BoardIsland:
    record: IslandLine | IslandRecord  # a line on the board, the whole record on its page
    port_names: tuple[str, ...]
    memory: tuple[int, int | None] | None  # last reading: working set, limit
    clock_at: datetime | None  # its clock now, when shifted

    @property
    def ports(self) -> Mapping[str, int]:
        return named_ports(self.port_names, self.record.first_port)


@dataclass(frozen=True)
class BoardNode:
    name: str
    address: str | None
    allocatable: int
    requested: int  # by every pod on it, islands and others
    islands: int  # live islands placed on it
    ready: bool
    cordoned: bool

    @property
    def usable(self) -> bool:
        return self.ready and not self.cordoned


@dataclass(frozen=True)
class BoardBranch:
    branch: str
    per_island: int  # the memory one island of the branch asks of its node
    nodes: tuple[BoardNode, ...]
    unplaced: int = 0  # live islands of the branch not yet on a node (they will take room)
    warm: int = 0  # its warm pool's ready islands: handed out at once (their room is taken)
    warming: int = 0  # its warm pool's islands still starting

    @property
    def room(self) -> int | None:
        """How many more islands of the branch fit on its usable nodes, node by node, less
        those on their way to a node; None when an island asks no memory (room unknown)."""
        if self.per_island <= 0:
            return None
        fit = sum(
            max(n.allocatable - n.requested, 0) // self.per_island for n in self.nodes if n.usable
        )
        return max(fit - self.unplaced, 0)


@dataclass(frozen=True)
class PendingClock:
    request: ClockRecord
    deciders: tuple[str, ...]  # who may approve or reject: the owner, then the admins


@dataclass(frozen=True)
class BoardSnapshot:
    at: datetime
    islands: tuple[BoardIsland, ...]
    branches: tuple[BoardBranch, ...]
    cluster_error: str | None  # the nodes could not be read
    clocks: tuple[PendingClock, ...]
    names: Mapping[str, str]  # user id -> display name, for everyone shown

    def name(self, user_id: str | None) -> str:
        return self.names.get(user_id or "", user_id or "")


@dataclass(frozen=True)
class IslandPage:
    at: datetime
    island: BoardIsland
    history: tuple[tuple[HistoryEntry, str | None], ...]  # each with its failure's words
    logs: LogTail | None
    logs_refused: UserError | None  # why there is no log tail
    memory: tuple[tuple[datetime, int, int | None], ...]  # the last hour's readings
    names: Mapping[str, str]

    def name(self, user_id: str | None) -> str:
        return self.names.get(user_id or "", user_id or "")


class BoardView:
    def __init__(
        self,
        actions: IslandActions,
        *,
        nodes_every: timedelta = timedelta(seconds=15),
        nodes_soonest: timedelta = timedelta(seconds=5),
        readers: int = 4,
    ) -> None:
        self.actions = actions
        self.reads = BoardReads(actions.db)
        self.memory = MemoryStore(actions.db)
        self._nodes_every = nodes_every.total_seconds()
        self._nodes_soonest = nodes_soonest.total_seconds()
        self._lock = threading.Lock()  # one reader of the cluster at a time
        self._readers = threading.BoundedSemaphore(readers)
        # when read, what was read, the error, and the islands' placement then
        self._nodes: tuple[float, list[NodeView], str | None, frozenset[tuple[int, str]]] | None
        self._nodes = None
        self._per_island: dict[str, int] = {}
        self._cluster_failing = False

    # ---- the board ---------------------------------------------------------------------------

    def snapshot(self) -> BoardSnapshot:
        actions = self.actions
        with self._readers:
            read = self.reads.board(people=self.actions.policy.admins)
        records = read.islands
        now = actions.clock()
        people = [r for r in records if r.owner_id != POOL_OWNER]  # warm ones: apart
        islands = tuple(self._island(r, read.memory.get(r.id), now) for r in people)
        clocks = self._clocks(records, read.clocks)
        nodes, error = self._node_views(frozenset((r.id, r.node) for r in records if r.node))
        return BoardSnapshot(
            at=now,
            islands=islands,
            branches=self._branches(nodes, records),
            cluster_error=error,
            clocks=clocks,
            names={**read.names, **{r.owner_id: r.owner_name for r in records}},
        )

    def _island(
        self,
        record: IslandLine | IslandRecord,
        memory: tuple[int, int | None] | None,
        now: datetime,
    ) -> BoardIsland:
        offset = record.clock_offset_s
        return BoardIsland(
            record,
            self.actions.templates.ports,
            memory,
            now + timedelta(seconds=offset) if offset else None,
        )

    def _clocks(
        self, records: Sequence[IslandLine], pending: Sequence[ClockRecord]
    ) -> tuple[PendingClock, ...]:
        owners = {r.id: r.owner_id for r in records}
        policy = self.actions.policy
        out = []
        for request in pending:
            owner = owners.get(request.island_id)
            deciders = tuple(policy.who_may(Action.EXTEND, owner)) if owner else ()
            out.append(PendingClock(request, deciders))
        return tuple(out)

    def _node_views(self, placed: frozenset[tuple[int, str]]) -> tuple[list[NodeView], str | None]:
        """The cluster's nodes: read again when islands moved since (``placed``: which island
        is on which node) or what was read is old; while one reader reads them, the others
        take what was last read."""
        kept = self._nodes
        if kept is not None:
            age = time.monotonic() - kept[0]
            moved = kept[3] != placed and not self._cluster_failing
            if age < self._nodes_soonest or (age < self._nodes_every and not moved):
                return kept[1], kept[2]
            if not self._lock.acquire(blocking=False):
                return kept[1], kept[2]
        else:
            self._lock.acquire()  # the first read: nothing to show meanwhile
        try:
            try:
                nodes, error = self.actions.kube.nodes(), None
                if self._cluster_failing:
                    log.info("board: the cluster's nodes can be read again")
                self._cluster_failing = False
            except KubeError as exc:
                nodes, error = (kept[1] if kept else []), str(exc)
                if not self._cluster_failing:
                    log.warning("board: the cluster's nodes cannot be read: %s", exc)
                self._cluster_failing = True
            self._nodes = (time.monotonic(), nodes, error, placed)
            return nodes, error
        finally:
            self._lock.release()

    def _branches(
        self, nodes: Sequence[NodeView], records: Sequence[IslandLine]
    ) -> tuple[BoardBranch, ...]:
        templates = self.actions.templates
        on_node: dict[str, int] = {}
        unplaced: dict[str, int] = {}
        warm: dict[str, int] = {}
        warming: dict[str, int] = {}
        for r in records:
            if r.owner_id == POOL_OWNER:
                if r.state == IslandState.READY:
                    warm[r.branch] = warm.get(r.branch, 0) + 1
                elif r.state not in (IslandState.FAILED, IslandState.STOPPING):
                    warming[r.branch] = warming.get(r.branch, 0) + 1
            if r.node:
                on_node[r.node] = on_node.get(r.node, 0) + 1
            elif r.state in _ON_THEIR_WAY:
                unplaced[r.branch] = unplaced.get(r.branch, 0) + 1
        out = []
        for branch in templates.branches:
            selector = templates.node_selector(branch)
            mine = [n for n in nodes if all(n.labels.get(k) == v for k, v in selector.items())]
            out.append(
                BoardBranch(
                    branch,
                    self._island_memory(branch),
                    tuple(
                        BoardNode(
                            n.name,
                            n.address,
                            n.allocatable_memory,
                            n.requested_memory,
                            on_node.get(n.name, 0),
                            n.ready,
                            n.unschedulable,
                        )
                        for n in sorted(mine, key=lambda n: n.name)
                    ),
                    unplaced.get(branch, 0),
                    warm.get(branch, 0),
                    warming.get(branch, 0),
                )
            )
        return tuple(out)

    def _island_memory(self, branch: str) -> int:
        """What one island of ``branch`` asks of its node, by its profile's defaults (from a
        pod rendered once)."""
        if branch not in self._per_island:
            params = IslandParams(
                island_id=1,
                owner_id="board",
                owner_name="board",
                branch=branch,
                first_port=30000,
                initial_clock="2000-01-01 00:00:00",
            )
            self._per_island[branch] = pod_memory_request(self.actions.templates.render(params, {}))
        return self._per_island[branch]

    # ---- an island's page --------------------------------------------------------------------

    def island(self, island_id: int) -> IslandPage:
        """The island's page (``NotFound`` for an id never given)."""
        actions = self.actions
        with self._readers:
            record = actions.status(island_id)
            island = self._island(record, actions.memory(island_id), actions.clock())
            entries = self.reads.history(island_id)
            now = actions.clock()
            memory = tuple(self.memory.samples(island_id, since=now - SAMPLES_KEPT))
            names = {
                **self.reads.names(h.actor for h in entries),
                record.owner_id: record.owner_name,
            }
        history = tuple((h, _failure_words(h, record)) for h in entries)
        logs, refused = None, None
        try:
            logs = actions.logs(island_id, lines=LOG_LINES)
        except UserError as exc:
            refused = exc
        return IslandPage(now, island, history, logs, refused, memory, names)


_ON_THEIR_WAY = frozenset({IslandState.REQUESTED, IslandState.CREATING})


def _failure_words(entry: HistoryEntry, island: IslandRecord) -> str | None:
    """A move to failed, worded from what its audit entry kept (the failure of that run, not
    the island's last one)."""
    if entry.action != "state:failed":
        return None
    about = entry.detail.get("about")
    try:
        kind = FailureKind(str(entry.detail.get("failure")))
    except ValueError:  # not kept as data (an older entry)
        return None
    failure = Failure(kind, about if isinstance(about, dict) else {})
    try:
        return notices.failure_text(failure, island_id=island.id, branch=island.branch)
    except (KeyError, TypeError):  # its details are not what its words need
        return None
