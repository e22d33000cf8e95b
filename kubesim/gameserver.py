"""The island game server as a real process (``server_mode="process"``).

Run under the real libfaketime by the simulated kubelet, it speaks the same line protocol as
the in-process server (see ``runtime.IslandServer``), but its clock is whatever libfaketime
makes ``time.time()`` return. It uses asyncio only: ``time.sleep`` can fail under libfaketime.

    python -m kubesim.gameserver --address 127.0.0.2 --server-port 30809 \
        --port app-common-port=30807 --port remote-msg-port=30808 --port server-port=30809
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime

from kubesim.islandproto import greeter, server_handler


async def serve(address: str, ports: dict[str, int], server_port: int) -> None:
    def info() -> dict[str, object]:
        return {"ports": ports, "mode": "process"}

    servers = []
    for name, port in ports.items():
        handler = server_handler(time.time, info) if port == server_port else greeter(name)
        servers.append(await asyncio.start_server(handler, address, port, reuse_address=True))
        print(f"server: listening on {address}:{port} ({name})", flush=True)
    print(
        f"server: started, clock {datetime.fromtimestamp(time.time(), UTC):%Y-%m-%d %H:%M:%S}",
        flush=True,
    )
    await asyncio.Event().wait()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--server-port", type=int, required=True)
    parser.add_argument("--port", action="append", default=[], help="NAME=PORT")
    args = parser.parse_args()
    ports = {}
    for item in args.port:
        name, _, port = item.partition("=")
        ports[name] = int(port)
    try:
        asyncio.run(serve(args.address, ports, args.server_port))
    except OSError as exc:
        print(f"server: cannot listen: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
