"""The registration API against what networks and strangers do (issue 15, defects 3 and 10): a
body that arrives in pieces, a chunked body, wrong tokens while the island's row is locked, and
a client that keeps guessing (limited per island, so that islands behind one address do not
lock each other out: issue 21, defect 9)."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa

from bot.run.demo import Demo
from tests.demoworld import demo_on, start, until
from tests.http.test_api import REGISTRATION, call, token_of


def raw_post(demo: Demo, path: str, head: dict[str, str], pieces: list[bytes]) -> tuple[int, str]:
    """POST over a raw socket, the body sent as ``pieces`` with a pause between them (what a
    slow network or a client writing as it goes does); returns (status, body)."""
    host, port = demo.server.url.removeprefix("http://").split(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in head.items()]
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for piece in pieces:
            time.sleep(0.3)
            conn.sendall(piece)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode(errors="replace")


def test_a_body_split_in_pieces_or_chunked_registers(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, sim):
        n = start(demo)
        token = token_of(sim, demo.islands.get(n).pod_name)
        body = json.dumps(REGISTRATION).encode()
        head = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        path = f"/api/v1/islands/{n}/register"
        status, text = raw_post(
            demo, path, {**head, "Content-Length": str(len(body))}, [body[:10], body[10:]]
        )
        assert status == 200, text
        chunks = [b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:7], body[7:])] + [b"0\r\n\r\n"]
        status, text = raw_post(demo, path, {**head, "Transfer-Encoding": "chunked"}, chunks)
        assert status == 200, text
        too_big = b"{" + b" " * 20000 + b"}"
        pieces = [
            b"%x\r\n%s\r\n" % (len(too_big[i : i + 4096]), too_big[i : i + 4096])
            for i in range(0, len(too_big), 4096)
        ] + [b"0\r\n\r\n"]
        status, _ = raw_post(demo, path, {**head, "Transfer-Encoding": "chunked"}, pieces)
        assert status == 413  # capped however it arrives
        registration = demo.islands.get(n).registration
        assert registration is not None and registration["version"] == REGISTRATION["version"]


@contextlib.contextmanager
def row_locked(db_url: str, island_id: int) -> Iterator[None]:
    """The island's row locked for writing by someone else (a command in a long transaction)."""
    url = sa.make_url(db_url)
    if url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(str(url.database), timeout=1, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(
                sa.text("SELECT id FROM islands WHERE id = :id FOR UPDATE"), {"id": island_id}
            )
            yield
    finally:
        engine.dispose()


def test_a_wrong_token_is_refused_without_waiting_for_the_row_lock(
    db_url: str, tmp_path: Path
) -> None:
    with demo_on(db_url, tmp_path) as (demo, sim):
        n = start(demo)
        token_of(sim, demo.islands.get(n).pod_name)  # its pod exists: the token is recorded
        path = f"/api/v1/islands/{n}/register"
        with row_locked(db_url, n):
            # answered while the lock is held: the refusal took no lock and waited for none
            assert call(demo, "POST", path, REGISTRATION, "a-guess")[0] == 401


def test_a_client_that_keeps_guessing_is_slowed_down(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, sim):
        n = start(demo)
        token = token_of(sim, demo.islands.get(n).pod_name)
        path = f"/api/v1/islands/{n}/register"
        statuses = [call(demo, "POST", path, REGISTRATION, f"guess-{i}")[0] for i in range(20)]
        assert statuses == [401] * 20
        status, body, headers = call(demo, "POST", path, REGISTRATION, "guess-20")
        assert status == 429 and "Retry-After" in body["error"]
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert call(demo, "POST", path, REGISTRATION, token)[0] == 429  # the same island
        until(lambda: demo.islands.get(n).state == "ready")
        assert demo.islands.get(n).registered_at is None  # nothing was written for them


def test_one_islands_wrong_tokens_do_not_lock_out_its_neighbours(
    db_url: str, tmp_path: Path
) -> None:
    """Behind the NodePort Service every island on a node comes from the node's address: the
    limit is the presented island's, so one island's wrong tokens slow down only that island."""
    with demo_on(db_url, tmp_path) as (demo, sim):
        a, b = start(demo, "alice"), start(demo, "bob")
        token_a = token_of(sim, demo.islands.get(a).pod_name)
        token_b = token_of(sim, demo.islands.get(b).pod_name)
        path_a, path_b = f"/api/v1/islands/{a}/register", f"/api/v1/islands/{b}/register"
        statuses = [call(demo, "POST", path_a, REGISTRATION, f"guess-{i}")[0] for i in range(20)]
        assert statuses == [401] * 20
        # island B, from the same address, registers at once
        assert call(demo, "POST", path_b, REGISTRATION, token_b)[0] == 200
        assert demo.islands.get(b).registered_at is not None
        status, body, headers = call(demo, "POST", path_a, REGISTRATION, token_a)
        assert status == 429 and "this island" in body["error"]  # island A itself is limited
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert demo.islands.get(a).registered_at is None


def test_ids_of_no_island_keep_the_limit_per_address(db_url: str, tmp_path: Path) -> None:
    with demo_on(db_url, tmp_path) as (demo, sim):
        n = start(demo)
        token = token_of(sim, demo.islands.get(n).pod_name)
        unknown = n + 1_000_000
        statuses = [
            call(demo, "POST", f"/api/v1/islands/{unknown + i}/register", REGISTRATION, "x")[0]
            for i in range(20)
        ]
        assert statuses == [404] * 20
        status, body, headers = call(
            demo, "POST", f"/api/v1/islands/{unknown + 20}/register", REGISTRATION, "x"
        )
        assert status == 429 and "address" in body["error"]
        assert 1 <= int(headers["Retry-After"]) <= 60
        # an island that exists is not held up by someone else's guesses at ids
        assert call(demo, "POST", f"/api/v1/islands/{n}/register", REGISTRATION, token)[0] == 200


def test_guesses_from_elsewhere_do_not_lock_out_an_islands_own_seed(
    db_url: str, tmp_path: Path
) -> None:
    """Anyone who reaches the API could otherwise hold a chosen island's seed up (and, with
    ISLANDBOT_REQUIRE_REGISTRATION, fail its start) by sending it wrong tokens: the island's
    limit is kept per address presenting them."""
    with demo_on(db_url, tmp_path) as (demo, sim):
        n = start(demo)
        token = token_of(sim, demo.islands.get(n).pod_name)
        path = f"/api/v1/islands/{n}/register"
        host, port = demo.server.url.removeprefix("http://").rsplit(":", 1)
        guesses = []
        for i in range(21):
            conn = http.client.HTTPConnection(host, int(port), source_address=("127.0.0.9", 0))
            conn.request(
                "POST",
                path,
                body=json.dumps(REGISTRATION),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer g{i}"},
            )
            guesses.append(conn.getresponse().status)
            conn.close()
        assert guesses == [401] * 20 + [429]  # the guesser is held up
        assert call(demo, "POST", path, REGISTRATION, token)[0] == 200  # the seed is not
