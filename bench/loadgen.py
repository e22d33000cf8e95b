"""Concurrent allocators in several OS processes, for the concurrency tests and the benchmark.

Each process runs ``threads`` threads; each thread acts as its own user and loops: allocate,
claim the ports in a cross-process ledger (a double hand-out shows up there at once), and, when
``hold`` islands are held, stop and release the oldest. Releasing removes the claim *before*
the database frees the block, so the ledger never reports a false overlap.
"""

from __future__ import annotations

import multiprocessing as mp
import threading
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bot.domain.errors import PortsExhausted, QuotaExceeded
from bot.domain.pool import PoolUse
from bot.domain.port_blocks import BlockLayout, PortRange
from bot.domain.records import Audit, IslandChange, StartRequest
from bot.domain.states import IslandState
from bot.infra.storage.allocation import Allocator
from bot.infra.storage.database import create_database
from bot.infra.storage.islands import IslandStore


def stop(store: IslandStore, island_id: int, *, actor: str) -> None:
    """The island recorded as stopped, its pod gone, as the lifecycle tick records it."""
    change = IslandChange(
        {"state": IslandState.STOPPED.value, "stopped_at": store.clock()},
        audit=Audit(actor, f"state:{IslandState.STOPPED.value}", island_id=island_id),
    )
    store.change(island_id, lambda _island: (change, None), what="stop")


@dataclass
class LoadSpec:
    url: str
    first_port: int = 30000
    last_port: int = 39999
    block_size: int = 3
    threads_per_process: int = 8
    processes: int = 2
    seconds: float = 0.0  # run for this long (when > 0) ...
    allocations_per_thread: int = 0  # ... or until each thread made this many allocations
    hold: int = 2  # islands a thread holds before releasing the oldest
    max_live_per_user: int = 3
    churn: bool = True  # False: allocate only, never release
    pool: int = 0  # > 0: every start may take a warm dev island (a pool of this size)


@dataclass
class ProcessResult:
    island_ids: list[int] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    held_at_end: dict[int, int] = field(default_factory=dict)  # island id -> first port
    violations: list[str] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    releases: int = 0
    claimed: list[int] = field(default_factory=list)  # islands handed out from the pool
    misses: int = 0  # starts that found no warm island
    errors: list[str] = field(default_factory=list)


def _thread(
    spec: LoadSpec,
    allocator: Allocator,
    store: IslandStore,
    user: str,
    ledger: Any,
    ledger_lock: Any,
    out: ProcessResult,
    lock: threading.Lock,
    start_at: float,
) -> None:
    held: list[tuple[int, tuple[int, ...]]] = []
    deadline = start_at + spec.seconds if spec.seconds > 0 else float("inf")
    pool = PoolUse(spec.pool, True, timedelta(hours=24)) if spec.pool else None
    made = 0
    attempts = 0  # with ``made``: a fresh request key for every start

    def release_oldest() -> None:
        island_id, ports = held.pop(0)
        if ledger is not None:
            with ledger_lock:
                for port in ports:
                    ledger.pop(port, None)
        stop(store, island_id, actor=user)
        allocator.release(island_id, actor=user)
        with lock:
            out.releases += 1

    while time.monotonic() < deadline:
        if spec.allocations_per_thread and made >= spec.allocations_per_thread:
            break
        attempts += 1
        begin = time.perf_counter()
        try:
            # Without churn nobody releases: a thread then plays a new user whenever the
            # current one is at the quota, as many people starting islands would.
            owner = user if spec.churn else f"{user}N{made // spec.max_live_per_user}"
            got = allocator.allocate(
                StartRequest(
                    owner_id=owner,
                    owner_name=owner,
                    branch="dev",
                    ttl=timedelta(hours=1),
                    request_key=f"{user}-{made}-{attempts}",  # as a chat trigger id would be
                    pool=pool,
                )
            )
        except (PortsExhausted, QuotaExceeded) as refused:
            with lock:
                name = type(refused).__name__
                out.refusals[name] = out.refusals.get(name, 0) + 1
            if held and spec.churn:
                release_oldest()
            continue
        except Exception as exc:
            with lock:
                out.errors.append(f"{type(exc).__name__}: {exc}")
            return
        elapsed_ms = (time.perf_counter() - begin) * 1000
        made += 1
        if ledger is not None:
            with ledger_lock:
                for port in got.ports:
                    other = ledger.get(port)
                    if other is not None:
                        out.violations.append(
                            f"port {port} given to island {got.island_id} while island "
                            f"{other} held it"
                        )
                    ledger[port] = got.island_id
        held.append((got.island_id, got.ports))
        with lock:
            if got.claimed:
                out.claimed.append(got.island_id)
            elif got.miss is not None:
                out.misses += 1
            out.island_ids.append(got.island_id)
            out.latencies_ms.append(elapsed_ms)
        if spec.churn and len(held) > spec.hold:
            release_oldest()
    with lock:
        out.held_at_end.update({i: ports[0] for i, ports in held})


def run_process(
    spec: LoadSpec, index: int, ledger: Any, ledger_lock: Any, barrier: Any, results: Any
) -> None:
    """Body of one OS process: its own engine, allocator and threads."""
    db = create_database(spec.url, pool_size=spec.threads_per_process)
    allocator = Allocator(
        db,
        layout=BlockLayout(PortRange(spec.first_port, spec.last_port), spec.block_size),
        max_live_per_user=spec.max_live_per_user,
    )
    allocator.sync_layout()  # every replica does this at start; it must be safe to race
    store = IslandStore(db)
    out = ProcessResult()
    lock = threading.Lock()
    barrier.wait()  # every process starts allocating at the same moment
    start_at = time.monotonic()
    threads = [
        threading.Thread(
            target=_thread,
            args=(
                spec,
                allocator,
                store,
                f"U{index}X{t:03d}",
                ledger,
                ledger_lock,
                out,
                lock,
                start_at,
            ),
        )
        for t in range(spec.threads_per_process)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.retries = db.retries
    db.dispose()
    results.put(out)


def run_load(
    spec: LoadSpec, *, check: bool = True, timeout_s: float = 300
) -> tuple[list[ProcessResult], float]:
    """Run ``spec`` across ``spec.processes`` processes; returns their results and wall time."""
    ctx = mp.get_context("spawn")
    manager = ctx.Manager() if check else None
    ledger = manager.dict() if manager else None
    ledger_lock = manager.Lock() if manager else None
    barrier = ctx.Barrier(spec.processes + 1)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=run_process, args=(spec, i, ledger, ledger_lock, barrier, results))
        for i in range(spec.processes)
    ]
    try:
        for p in procs:
            p.start()
        barrier.wait(timeout=120)
        began = time.monotonic()
        collected = [results.get(timeout=timeout_s) for _ in procs]
        wall = time.monotonic() - began
        for p in procs:
            p.join(timeout=30)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        if manager:
            manager.shutdown()
    return collected, wall
