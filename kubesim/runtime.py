"""Simulated containers: state, logs, a private root directory, and island servers that open
real TCP listeners on the node's address."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubesim.faketime import FakeClock, FaketimeError

# Container paths that are mapped into the container's own directory on the host.
MAPPED_PREFIXES = (
    "/tmp",  # noqa: S108 - a container path, not a host path
    "/home",
    "/var/log",
    "/data",
    "/opt/island",
)


def rfc3339nano(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def map_path(root: Path, path: str) -> Path | None:
    """The host path of a container path under one of ``MAPPED_PREFIXES``, else None."""
    for prefix in MAPPED_PREFIXES:
        if path == prefix or path.startswith(prefix + "/"):
            return root / path.lstrip("/")
    return None


@dataclass
class ContainerRuntime:
    name: str
    image: str
    env: dict[str, str]
    root: Path
    command: list[str]
    ports: dict[str, int] = field(default_factory=dict)  # port name (or number) -> host port
    state: str = "waiting"  # waiting, running, terminated
    reason: str = "ContainerCreating"
    message: str = ""
    exit_code: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    logs: list[tuple[float, str]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    server: IslandServer | None = None

    def log(self, line: str) -> None:
        self.logs.append((time.time(), line))
        self.changed.set()
        self.changed = asyncio.Event()

    def status(self, ready: bool) -> dict[str, Any]:
        if self.state == "running":
            state: dict[str, Any] = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {
                "terminated": {
                    "exitCode": self.exit_code,
                    "reason": self.reason,
                    "message": self.message or None,
                    "startedAt": self.started_at,
                    "finishedAt": self.finished_at,
                }
            }
            state["terminated"] = {k: v for k, v in state["terminated"].items() if v is not None}
        else:
            state = {
                "waiting": {
                    "reason": self.reason,
                    **({"message": self.message} if self.message else {}),
                }
            }
        return {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": self.state == "running",
            "state": state,
            "lastState": {},
        }

    @property
    def is_server(self) -> bool:
        return bool(self.ports)

    def host_path(self, path: str) -> Path | None:
        return map_path(self.root, path)


class IslandServer:
    """The simulated game server: listeners on every host port; its server port answers

    ``TIME``  -> ``TIME <epoch seconds> <UTC ISO time>`` (the island's faked clock)
    ``PING``  -> ``PONG``
    ``INFO``  -> one JSON line: island id, ports, clock
    (one command per line; other ports greet with ``ISLAND <port name>`` and stay open).
    """

    def __init__(
        self,
        container: ContainerRuntime,
        address: str,
        server_port: int | None,
        island_id: str | None,
    ) -> None:
        self.container = container
        self.address = address
        self.server_port = server_port
        self.island_id = island_id
        self._servers: list[asyncio.base_events.Server] = []
        self._conns: set[asyncio.StreamWriter] = set()
        env = container.env
        clock_file = env.get("FAKETIME_TIMESTAMP_FILE")
        self._clock_path = container.host_path(clock_file) if clock_file else None
        self.clock = FakeClock(
            read_file=self._read_clock_file,
            process_start=time.time(),
            dont_reset=env.get("FAKETIME_DONT_RESET") == "1",
            cache_duration=float(env.get("FAKETIME_CACHE_DURATION", "10") or 10),
        )
        self.listening = False

    def _read_clock_file(self) -> str | None:
        if "FAKETIME" in self.container.env:  # the variable wins over the file
            return self.container.env["FAKETIME"]
        if self._clock_path is None or not self._clock_path.exists():
            return None
        return self._clock_path.read_text()

    def now(self) -> float:
        return self.clock.now(time.time())

    async def start(self) -> None:
        for name, port in self.container.ports.items():
            handler = self._serve if port == self.server_port else self._greet(name)
            server = await asyncio.start_server(handler, self.address, port, reuse_address=True)
            self._servers.append(server)
            self.container.log(f"server: listening on {self.address}:{port} ({name})")
        self.listening = True

    def _greet(self, name: str):  # type: ignore[no-untyped-def]
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._conns.add(writer)
            try:
                writer.write(f"ISLAND {name}\n".encode())
                await writer.drain()
                while await reader.read(4096):
                    pass
            except (ConnectionError, OSError):
                pass
            finally:
                self._conns.discard(writer)
                writer.close()

        return handler

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            while line := await reader.readline():
                command = line.decode(errors="replace").strip().upper()
                if command == "TIME":
                    now = self.now()
                    reply = f"TIME {now:.3f} {rfc3339nano(now)[:19]}Z"
                elif command == "PING":
                    reply = "PONG"
                elif command == "INFO":
                    reply = json.dumps(
                        {
                            "island": self.island_id,
                            "ports": self.container.ports,
                            "clock": self.now(),
                        }
                    )
                else:
                    reply = f"ERR unknown command {command[:40]!r}"
                writer.write((reply + "\n").encode())
                await writer.drain()
        except FaketimeError as exc:
            self.container.log(f"libfaketime: {exc}")
            raise
        except (ConnectionError, OSError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()

    async def stop(self) -> None:
        self.listening = False
        for server in self._servers:
            server.close()
        for writer in list(self._conns):
            with contextlib.suppress(Exception):
                writer.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
        self._servers.clear()
