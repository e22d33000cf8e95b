"""``pods/log`` and ``pods/exec``.

Exec is emulated by running the command as a real host process: with the container's
environment, in the container's own directory, and with the container paths under
``runtime.MAPPED_PREFIXES`` (``/tmp``, ``/home``...) rewritten into that directory, both in the
arguments and in path-valued variables such as ``FAKETIME_TIMESTAMP_FILE``. When the container
preloads libfaketime and the host has it (Debian package ``libfaketime``), the host's copy is
preloaded instead, so ``date +%s`` run through exec shows the island's faked clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from aiohttp import WSMsgType, web

from kubesim import status
from kubesim.cluster import Cluster
from kubesim.runtime import (
    ContainerRuntime,
    emulated_date,
    exec_environment,
    map_text,
    rfc3339nano,
)
from kubesim.store import Store

EXEC_PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
EXEC_TIMEOUT_S = 60


class PodIO:
    def __init__(self, store: Store, cluster: Cluster) -> None:
        self.store = store
        self.cluster = cluster

    def routes(self) -> list[web.RouteDef]:
        base = "/api/v1/namespaces/{namespace}/pods/{name}"
        return [
            web.get(base + "/log", self.logs),
            web.get(base + "/exec", self.exec),
            web.post(base + "/exec", self.exec),
        ]

    def _container(self, request: web.Request) -> ContainerRuntime | web.Response:
        ns, name = request.match_info["namespace"], request.match_info["name"]
        pod = self.store.get("pods", ns, name)
        if pod is None:
            return status.not_found("pods", name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        wanted = request.query.get("container")
        if not wanted:
            if len(names) > 1:
                return status.bad_request(
                    f"a container name must be specified for pod {name}, "
                    f"choose one of: [{' '.join(names)}]"
                )
            wanted = names[0]
        if wanted not in names:
            return status.bad_request(f"container {wanted} is not valid for pod {name}")
        runtime = self.cluster.runtimes.get((ns, name))
        c = runtime.containers.get(wanted) if runtime else None
        if c is None or (c.state == "waiting"):
            reason = c.reason if c else "ContainerCreating"
            return status.bad_request(
                f'container "{wanted}" in pod "{name}" is waiting to start: {reason}'
            )
        return c

    async def logs(self, request: web.Request) -> web.StreamResponse:
        found = self._container(request)
        if isinstance(found, web.Response):
            return found
        c = found
        q = request.query
        if q.get("previous") == "true":
            return status.bad_request(
                f'previous terminated container "{c.name}" in pod '
                f'"{request.match_info["name"]}" not found'
            )
        stamps = q.get("timestamps") == "true"
        lines = list(c.logs)
        if q.get("sinceSeconds", "").isdigit():
            cutoff = time.time() - int(q["sinceSeconds"])
            lines = [entry for entry in lines if entry[0] >= cutoff]
        if q.get("tailLines", "").isdigit():
            lines = lines[-int(q["tailLines"]) :] if int(q["tailLines"]) else []

        def fmt(entry: tuple[float, str]) -> bytes:
            prefix = rfc3339nano(entry[0]) + " " if stamps else ""
            return (prefix + entry[1] + "\n").encode()

        if q.get("follow") != "true":
            body = b"".join(fmt(e) for e in lines)
            if q.get("limitBytes", "").isdigit():
                body = body[: int(q["limitBytes"])]
            return web.Response(body=body, content_type="text/plain")
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        sent = len(c.logs)
        for entry in lines:
            await response.write(fmt(entry))
        with contextlib.suppress(ConnectionResetError):
            while c.state == "running":
                changed = c.changed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), 1.0)
                for entry in c.logs[sent:]:
                    await response.write(fmt(entry))
                sent = len(c.logs)
        return response

    async def exec(self, request: web.Request) -> web.StreamResponse:
        found = self._container(request)
        if isinstance(found, web.Response):
            return found
        c = found
        if c.state != "running":
            return status.bad_request(f"cannot exec in a stopped container: {c.name} is {c.state}")
        command = request.query.getall("command", [])
        if not command:
            return status.bad_request("you must specify at least 1 command")
        ws = web.WebSocketResponse(protocols=EXEC_PROTOCOLS, autoping=True, heartbeat=None)
        if not ws.can_prepare(request).ok:
            return status.error(
                400,
                "BadRequest",
                "Upgrade request required; kubesim "
                "supports websocket exec (v4/v5.channel.k8s.io) only",
            )
        await ws.prepare(request)
        binary = True  # kubectl needs binary frames; the Python client reads either
        want_stdin = request.query.get("stdin") in ("true", "1")
        argv = [map_text(c.root, arg) for arg in command]
        argv = emulated_date(c, argv) or argv  # libfaketime missing here: emulate `date`

        async def send(channel: int, data: bytes) -> None:
            frame = bytes([channel]) + data
            await (ws.send_bytes(frame) if binary else ws.send_str(frame.decode()))

        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                cwd=c.root,
                env=exec_environment(c),
                stdin=asyncio.subprocess.PIPE if want_stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            await send(
                3,
                json.dumps(
                    {
                        "metadata": {},
                        "status": "Failure",
                        "reason": "InternalError",
                        "message": f"failed to exec in container: {exc}",
                    }
                ).encode(),
            )
            await ws.close()
            return ws

        async def pump(stream: asyncio.StreamReader, channel: int) -> None:
            while chunk := await stream.read(65536):
                await send(channel, chunk)

        async def feed() -> None:
            assert proc.stdin is not None
            async for msg in ws:
                if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    continue
                data = msg.data if isinstance(msg.data, bytes) else msg.data.encode()
                if data[:1] == b"\x00":
                    proc.stdin.write(data[1:])
                    await proc.stdin.drain()
                elif data[:1] == b"\xff" and data[1:2] == b"\x00":  # v5: close stdin
                    proc.stdin.close()

        assert proc.stdout is not None and proc.stderr is not None
        feeder = asyncio.create_task(feed()) if want_stdin else None
        try:
            await asyncio.wait_for(
                asyncio.gather(pump(proc.stdout, 1), pump(proc.stderr, 2), proc.wait()),
                EXEC_TIMEOUT_S,
            )
            code = proc.returncode
        except TimeoutError:
            proc.kill()
            code = 137
        finally:
            if feeder:
                feeder.cancel()
        if code == 0:
            result = {"metadata": {}, "status": "Success"}
        else:
            result = {
                "metadata": {},
                "status": "Failure",
                "message": f"command terminated with non-zero exit code: exit status {code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
            }
        with contextlib.suppress(ConnectionResetError):
            await send(3, json.dumps(result).encode())
            await ws.close()
        return ws
