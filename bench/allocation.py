"""Allocation throughput and latency: K concurrent allocators (threads across 2 processes).

    python -m bench.allocation [--allocations N] [--workers 1,4,16,32] [--backends mysql,sqlite]

MySQL URL: ISLANDBOT_BENCH_MYSQL_URL, else ISLANDBOT_TEST_MYSQL_URL, else
mysql+pymysql://root@127.0.0.1:3306/test; each run uses a scratch database next to it.
Each run starts from an empty, migrated database and makes N allocations in all (no releases),
then counts duplicates: repeated ids, and ports that two islands were given.
Progress goes to stderr; the last line on stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.loadgen import LoadSpec, run_load
from bot.infra.storage.tables import Island
from tests import dbutil

DEFAULT_MYSQL = "mysql+pymysql://root@127.0.0.1:3306/test"


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            url = dbutil.sqlite_url(Path(tmp))
            dbutil.migrated(url).dispose()
            yield url
        return
    base = os.environ.get("ISLANDBOT_BENCH_MYSQL_URL") or dbutil.mysql_url() or DEFAULT_MYSQL
    with dbutil.scratch_mysql_database(base) as url:
        dbutil.migrated(url).dispose()
        yield url


def count_duplicates(url: str, returned_ids: list[int]) -> int:
    db = dbutil.migrated(url)
    with db.engine.connect() as conn:
        rows = conn.execute(select(Island.id, Island.first_port, Island.port_count)).all()
    db.dispose()
    repeated_ids = len(returned_ids) - len(set(returned_ids))
    ports = [p for r in rows for p in range(r.first_port, r.first_port + r.port_count)]
    return repeated_ids + (len(ports) - len(set(ports)))


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_one(backend: str, workers: int, allocations: int) -> dict[str, Any]:
    processes = 1 if workers == 1 else 2
    threads = workers // processes
    per_thread = max(1, allocations // workers)
    with fresh_database(backend) as url:
        spec = LoadSpec(
            url=url,
            processes=processes,
            threads_per_process=threads,
            allocations_per_thread=per_thread,
            churn=False,
            max_live_per_user=3,
        )
        results, wall = run_load(spec, check=False)
        ids = [i for r in results for i in r.island_ids]
        latencies = [ms for r in results for ms in r.latencies_ms]
        errors = [e for r in results for e in r.errors]
        duplicates = count_duplicates(url, ids)
    return {
        "backend": backend,
        "workers": workers,
        "processes": processes,
        "allocations": len(ids),
        "allocations_per_s": round(len(ids) / wall, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "duplicates": duplicates,
        "retries": sum(r.retries for r in results),
        "errors": len(errors),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--allocations", type=int, default=2000)
    parser.add_argument("--workers", default="1,4,16,32")
    parser.add_argument("--backends", default="mysql,sqlite")
    args = parser.parse_args()
    results = []
    for backend in args.backends.split(","):
        for workers in (int(w) for w in args.workers.split(",")):
            row = run_one(backend, workers, args.allocations)
            print(json.dumps(row), file=sys.stderr, flush=True)
            results.append(row)
    print(json.dumps({"bench": "allocation", "results": results}))
    return 0 if all(r["duplicates"] == 0 and r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
