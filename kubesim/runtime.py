"""Simulated containers: state, logs, a private root directory, and island servers that open
real TCP listeners on the node's address."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubesim.faketime import FakeClock, FaketimeError
from kubesim.islandproto import Handler, greeter, server_handler
from kubesim.store import now_rfc3339
from kubesim.usage import Climb

# Container paths that are mapped into the container's own directory on the host.
MAPPED_PREFIXES = (
    "/tmp",  # noqa: S108 - a container path, not a host path
    "/home",
    "/var/log",
    "/data",
    "/opt/island",
)


_PATH_RE = re.compile(
    r"(?<![\w./-])(" + "|".join(re.escape(p) for p in MAPPED_PREFIXES) + r")(?=/|\b)"
)


def host_libfaketime() -> str | None:
    for pattern in (
        "/usr/lib/*/faketime/libfaketime.so.1",
        "/usr/lib64/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
        "/usr/local/lib/faketime/libfaketime.so.1",
    ):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def map_text(root: Path, text: str) -> str:
    return _PATH_RE.sub(lambda m: str(root) + m.group(1), text)


def exec_environment(c: ContainerRuntime) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(c.root / "root"),
        "HOSTNAME": c.name,
    }
    for key, value in c.env.items():
        env[key] = map_text(c.root, value)
    preload = c.env.get("LD_PRELOAD", "")
    if preload:
        if "faketime" in preload and (lib := host_libfaketime()):
            env["LD_PRELOAD"] = lib
        else:
            env.pop("LD_PRELOAD", None)  # the image's library does not exist on this host
    return env


def emulated_date(c: ContainerRuntime, argv: list[str]) -> list[str] | None:
    """``date`` exec'd in a container that preloads libfaketime, on a host without the
    library: the command that prints what the faked ``date`` would (GNU ``date -d @T``, or
    the library's parse error and exit 1); None when no emulation is needed."""
    if "faketime" not in c.env.get("LD_PRELOAD", "") or host_libfaketime() is not None:
        return None
    if (
        not argv
        or Path(argv[0]).name != "date"
        or any(a.startswith(("-d", "-s", "--")) for a in argv)
    ):
        return None
    clock_file = c.env.get("FAKETIME_TIMESTAMP_FILE")
    path = c.host_path(clock_file) if clock_file else None

    def read() -> str | None:
        if "FAKETIME" in c.env:
            return c.env["FAKETIME"]
        return path.read_text() if path is not None and path.exists() else None

    now = time.time()
    clock = FakeClock(
        read_file=read, process_start=now, dont_reset=c.env.get("FAKETIME_DONT_RESET") == "1"
    )
    try:
        faked = clock.now(now)
    except FaketimeError as exc:
        return ["sh", "-c", 'echo "libfaketime: $1" >&2; exit 1', "sh", str(exc)]
    return [argv[0], "-d", f"@{int(faked)}", *argv[1:]]


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
    server: IslandServer | ProcessServer | None = None
    readiness_failing: bool = False  # a fault: its readiness probe fails whatever it listens
    running_since: float | None = None  # monotonic time this run started (its usage follows)
    climb: Climb | None = None  # a fault: its working set rising to its memory limit

    def run(self) -> None:
        """The container starts running: a new run, whose usage starts steady."""
        self.state, self.reason, self.started_at = "running", "", now_rfc3339()
        self.running_since, self.climb = time.monotonic(), None

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


class _Server:
    """What both server kinds know: their container, address, server port and island."""

    def __init__(
        self,
        container: ContainerRuntime,
        address: str,
        server_port: int | None,
        island_id: str | None,
    ) -> None:
        self.container = container
        self.address = address
        self.server_port = server_port or next(iter(container.ports.values()))
        self.island_id = island_id
        self.listening = False


class IslandServer(_Server):
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
        super().__init__(container, address, server_port, island_id)
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

    def _read_clock_file(self) -> str | None:
        if "FAKETIME" in self.container.env:  # the variable wins over the file
            return self.container.env["FAKETIME"]
        if self._clock_path is None or not self._clock_path.exists():
            return None
        return self._clock_path.read_text()

    def now(self) -> float:
        return self.clock.now(time.time())

    def failure(self) -> tuple[int, str] | None:
        """(exit code, reason) when the server has died, like a faked process would on a
        timestamp file it cannot parse."""
        try:
            self.now()
        except FaketimeError as exc:
            self.container.log(f"libfaketime: {exc}; exiting")
            return 1, str(exc)
        return None

    async def probe(self) -> None:
        """In-process listeners are known to be open; nothing to check."""

    def _clock_or_real(self) -> float:
        try:
            return self.now()
        except FaketimeError as exc:  # the probe loop notices and terminates the container
            self.container.log(f"libfaketime: {exc}")
            raise ConnectionError("the server is dying") from exc

    def _info(self) -> dict[str, Any]:
        return {"island": self.island_id, "ports": self.container.ports}

    async def start(self) -> None:
        for name, port in self.container.ports.items():
            handler = (
                server_handler(self._clock_or_real, self._info)
                if port == self.server_port
                else greeter(name)
            )
            server = await asyncio.start_server(
                self._tracked(handler), self.address, port, reuse_address=True
            )
            self._servers.append(server)
            self.container.log(f"server: listening on {self.address}:{port} ({name})")
        self.listening = True

    def _tracked(self, handler: Handler) -> Handler:
        """Remember open connections, so that stopping the server also cuts them."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._conns.add(writer)
            try:
                await handler(reader, writer)
            finally:
                self._conns.discard(writer)

        return handle

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


class ProcessServer(_Server):
    """The island server as a real process (``kubesim.gameserver``) under the host's real
    libfaketime, with the container's libfaketime settings and mapped clock file. Readiness is a
    real TCP connect to the server port."""

    def __init__(
        self,
        container: ContainerRuntime,
        address: str,
        server_port: int | None,
        island_id: str | None,
    ) -> None:
        super().__init__(container, address, server_port, island_id)
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        env = exec_environment(self.container)
        env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"  # asyncio's timers need the real monotonic
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        if "LD_PRELOAD" not in env and (lib := host_libfaketime()):
            env["LD_PRELOAD"] = lib
        args = [
            sys.executable,
            "-m",
            "kubesim.gameserver",
            "--address",
            self.address,
            "--server-port",
            str(self.server_port),
        ]
        for name, port in self.container.ports.items():
            args += ["--port", f"{name}={port}"]
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=self.container.root,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read_output())

    async def _read_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            self.container.log(line.decode(errors="replace").rstrip("\n"))

    def failure(self) -> tuple[int, str] | None:
        if self._proc is not None and self._proc.returncode is not None:
            return self._proc.returncode, "server process exited"
        return None

    async def probe(self) -> None:
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self.address, self.server_port), 1.0
            )
        except (OSError, TimeoutError):
            self.listening = False
            return
        writer.close()
        self.listening = True

    def now(self) -> float:
        return time.time()

    async def stop(self) -> None:
        self.listening = False
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 3)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 1)
