"""The island server's TCP line protocol, shared by the in-process and the process servers.

Standard library only: ``kubesim.gameserver`` imports it in a process run under libfaketime.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]


def reply(command: str, clock: Callable[[], float], info: Callable[[], dict[str, Any]]) -> str:
    """The answer to one command line (without its newline)."""
    if command == "TIME":
        now = clock()
        return f"TIME {now:.3f} {datetime.fromtimestamp(now, UTC):%Y-%m-%dT%H:%M:%S}Z"
    if command == "PING":
        return "PONG"
    if command == "INFO":
        return json.dumps({**info(), "clock": clock()})
    return f"ERR unknown command {command[:40]!r}"


def server_handler(clock: Callable[[], float], info: Callable[[], dict[str, Any]]) -> Handler:
    """The server port: answers one line per command until the client hangs up."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                command = line.decode(errors="replace").strip().upper()
                writer.write((reply(command, clock, info) + "\n").encode())
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    return handle


def greeter(name: str) -> Handler:
    """Any other port: says which port it is and keeps the connection open."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(f"ISLAND {name}\n".encode())
            await writer.drain()
            while await reader.read(4096):
                pass
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    return greet
