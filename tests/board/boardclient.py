"""A plain HTTP client for the board's tests: real requests over loopback, the session cookie
kept the way a browser keeps it (no redirects followed, so the login's answer can be read)."""

from __future__ import annotations

import http.client
import socket
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlsplit


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: str


@dataclass
class BoardClient:
    base: str  # http://host:port
    cookie: str | None = None
    language: str | None = None  # the browser's Accept-Language, sent with every request
    set_cookies: list[SimpleCookie] = field(default_factory=list)

    def get(self, path: str, *, timeout: float = 10) -> Answer:
        parts = urlsplit(self.base)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        try:
            headers = {"Cookie": f"islandbot_board={self.cookie}"} if self.cookie else {}
            if self.language:
                headers["Accept-Language"] = self.language
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read().decode()
        finally:
            conn.close()
        for raw in response.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(raw)
            self.set_cookies.append(jar)
            morsel = jar.get("islandbot_board")
            if morsel is not None:
                self.cookie = morsel.value or None
        return Answer(response.status, response.headers, body)

    def login(self, link: str) -> Answer:
        parts = urlsplit(link)
        return self.get(f"{parts.path}?{parts.query}")

    def stream(self, path: str = "/board/events", *, timeout: float = 10) -> EventStream:
        return EventStream(self, path, timeout)


class EventStream:
    """Server-Sent Events read off a raw socket, one event at a time."""

    def __init__(self, client: BoardClient, path: str, timeout: float) -> None:
        parts = urlsplit(client.base)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        cookie = f"Cookie: islandbot_board={client.cookie}\r\n" if client.cookie else ""
        if client.language:
            cookie += f"Accept-Language: {client.language}\r\n"
        self.sock.sendall(
            f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n"
            f"{cookie}\r\n".encode()
        )
        self.buffer = b""
        self.retry: int | None = None  # the last ``retry`` the server asked for
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])
        self.head = head.decode()

    def _until(self, mark: bytes) -> bytes:
        while mark not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the stream ended")
            self.buffer += chunk
        found, _, self.buffer = self.buffer.partition(mark)
        return found

    def event(self) -> tuple[str, str]:
        """The next event's (name, data); comments and ``retry`` skipped (HTTP/1.0: the body
        is not chunked, it streams until the server closes it)."""
        name, data = "message", []
        while True:
            line = self._until(b"\n").rstrip(b"\r").decode()
            if line == "":
                if data:
                    return name, "\n".join(data)
                name = "message"
                continue
            if line.startswith("retry:"):
                self.retry = int(line.partition(":")[2])
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(": ")
            if key == "event":
                name = value
            elif key == "data":
                data.append(value)

    def close(self) -> None:
        self.sock.close()
