"""The team board's routes: ``/board`` (the islands, nodes and clock requests), its live feed
``/board/events``, an island's page ``/board/islands/{id}``, ``/board/login`` (a person's
signed link, which sets the session cookie) and the static files it needs.

Read-only. Every page but the login needs the cookie a good link set, and stops working when
that link's time is over (401 page). Bad input gets a 4xx page that says what was wrong and
changes nothing: a query longer than ``MAX_QUERY``, a parameter or filter the board does not
know, an id that is not one. Blocking work (the database, the templates) runs in the server's
thread pool.

Each answer is in its reader's language: the browser's (``Accept-Language``) when the bot
speaks it, else the deployment's. The request is handled inside ``speaking(language)`` (error
pages included), the work sent to the thread pool runs in a copy of its context (a context
variable does not pass into a thread on its own), and the live feed sends each page the board
in the language that page was asked in.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import tzinfo
from importlib import resources
from typing import Any, TypeVar

from aiohttp import web

from bot.app.board_links import BoardLinks
from bot.app.board_view import BoardView
from bot.domain.board_pass import BadPass, BoardPass, ExpiredPass
from bot.domain.errors import DatabaseUnavailable, NotFound
from bot.http.board_feed import BoardFeed
from bot.http.board_pages import BoardPages, Filters, LiveParts
from bot.words import board_text
from bot.words.catalogue import _, current, deployment_language, negotiate, speaking

log = logging.getLogger(__name__)

COOKIE = "islandbot_board"
MAX_QUERY = 1024  # characters of query string; a longer one is refused (414)
MAX_ISLAND_ID = 2**31 - 1
STATIC = {
    "board.css": "text/css",
    "board.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",  # the login link carries the pass
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


def language_of(request: web.Request) -> str:
    """The language to answer ``request`` in: the browser's, else the deployment's."""
    return negotiate(request.headers.get("Accept-Language")) or deployment_language()


async def in_thread(work: Callable[..., T], *args: Any) -> T:
    """``work(*args)`` in the server's thread pool, in this context (the language spoken)."""
    context = contextvars.copy_context()
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(None, functools.partial(context.run, work, *args))


class BoardRoutes:
    def __init__(
        self,
        *,
        view: BoardView,
        links: BoardLinks,
        tz: tzinfo,
        feed_every_s: float = 1.0,
        max_viewers: int = 200,
    ) -> None:
        self.view = view
        self.links = links
        self.tz = tz
        self.pages = BoardPages(tz=tz)
        self.feed = BoardFeed(
            self._live,
            every_s=feed_every_s,
            max_viewers=max_viewers,
            clock=links.clock,
        )
        self._errors_seen: set[str] = set()  # unexpected errors, each logged in full once
        self.secure_cookie = links.base_url.startswith("https://")
        folder = resources.files("bot.http") / "board_static"
        self._static = {name: (folder / name).read_bytes() for name in STATIC}

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/board", self._guarded(self.board)),
            web.get("/board/login", self._guarded(self.login, signed_in=False)),
            web.get("/board/events", self._guarded(self.events)),
            web.get("/board/islands/{island_id}", self._guarded(self.island)),
            web.get("/board/static/{name}", self.static),
        ]

    def _live(self, languages: tuple[str, ...]) -> dict[str, LiveParts]:
        """The live feed's board: read once, worded in each language watched."""
        snapshot = self.view.snapshot()
        return {language: self.pages.live(snapshot, language) for language in languages}

    # ---- the guard: length, session, and what may go wrong anywhere --------------------------

    def _guarded(
        self,
        handler: Callable[[web.Request, BoardPass | None], Awaitable[web.StreamResponse]],
        *,
        signed_in: bool = True,
    ) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            with speaking(language_of(request)):
                return await answer(request)

        async def answer(request: web.Request) -> web.StreamResponse:
            if len(request.query_string) > MAX_QUERY:
                return self._error(414, _(board_text.TOO_LONG))
            viewer: BoardPass | None = None
            if signed_in:
                checked = self._viewer(request)
                if isinstance(checked, web.Response):
                    return checked
                viewer = checked
            try:
                return await handler(request, viewer)
            except DatabaseUnavailable as exc:
                log.debug("board: %s", exc)  # the database's health logs the outage once
                return self._error(503, _(board_text.DOWN), viewer=viewer, retry_after=30)
            except Exception as exc:  # a bug: its page, and its traceback once
                seen = f"{type(exc).__name__}: {exc}"[:300]
                if seen not in self._errors_seen and len(self._errors_seen) < 100:
                    self._errors_seen.add(seen)
                    log.exception("board: %s failed", request.path)
                else:
                    log.warning("board: %s failed again: %s", request.path, seen)
                return self._error(500, _(board_text.BROKEN), viewer=viewer)

        return guarded

    def _viewer(self, request: web.Request) -> BoardPass | web.Response:
        token = request.cookies.get(COOKIE)
        if not token:
            return self._error(401, _(board_text.NO_LINK), _(board_text.ASK_AGAIN))
        return self._read(token, clear=True)  # a session whose pass is bad is ended

    def _read(self, token: str, *, clear: bool = False) -> BoardPass | web.Response:
        try:
            return self.links.read(token)
        except ExpiredPass as exc:
            expired = board_text.expired_pass(exc.expires_at, self.tz)
            log.info("board: an expired pass (%s)", exc)
            return self._error(401, expired, _(board_text.ASK_AGAIN), clear=clear)
        except BadPass as exc:
            log.info("board: a pass refused (%s)", exc)
            return self._error(401, _(board_text.BAD_LINK), _(board_text.ASK_AGAIN), clear=clear)

    # ---- the routes ----------------------------------------------------------------------------

    async def login(self, request: web.Request, _viewer: BoardPass | None) -> web.StreamResponse:
        if set(request.query) != {"pass"}:
            return self._error(400, _(board_text.BAD_FILTER))
        token = request.query["pass"]
        viewer = self._read(token)
        if isinstance(viewer, web.Response):
            return viewer
        response = web.Response(status=303, headers={**HEADERS, "Location": "/board"})
        seconds = int((viewer.expires_at - self.links.clock()).total_seconds())
        response.set_cookie(
            COOKIE,
            token,
            max_age=max(seconds, 1),
            path="/board",
            httponly=True,
            # Lax: a link clicked in a chat opened in a browser tab is a navigation from
            # another site; a Strict cookie set on it would not come with the redirect
            samesite="Lax",
            secure=self.secure_cookie,
        )
        log.info("board: %s signed in", viewer.user_id)
        return response

    async def board(self, request: web.Request, viewer: BoardPass | None) -> web.StreamResponse:
        assert viewer is not None
        filters = self._filters(request.query, viewer)
        if isinstance(filters, web.Response):
            return filters
        html = await in_thread(
            lambda: self.pages.board(self.view.snapshot(), viewer, filters, current())
        )
        return self._html(html)

    def _filters(self, query: Mapping[str, str], viewer: BoardPass) -> Filters | web.Response:
        known = {"mine", "branch", "state"}
        if not set(query) <= known or len(query) > len(set(query)):  # unknown, or twice
            return self._error(400, _(board_text.BAD_FILTER), viewer=viewer)
        mine, branch, state = (query.get(k, "") for k in ("mine", "branch", "state"))
        if (
            mine not in ("", "1", "on")
            or (branch and branch not in self.view.actions.templates.branches)
            or (state and state not in board_text.STATE_FILTERS)
        ):
            return self._error(400, _(board_text.BAD_FILTER), viewer=viewer)
        return Filters(viewer.user_id if mine else None, branch, state)

    async def island(self, request: web.Request, viewer: BoardPass | None) -> web.StreamResponse:
        assert viewer is not None
        text = request.match_info["island_id"]
        if request.query or not text.isascii() or not text.isdigit() or len(text) > 10:
            return self._error(400, _(board_text.NOT_AN_ISLAND), viewer=viewer)
        island_id = int(text)
        if not 0 < island_id <= MAX_ISLAND_ID:
            return self._error(400, _(board_text.NOT_AN_ISLAND), viewer=viewer)
        try:
            page = await in_thread(self.view.island, island_id)  # its failures' words too
        except NotFound:
            return self._error(404, board_text.no_island(island_id), viewer=viewer)
        html = await in_thread(self.pages.island, page, viewer, current())
        return self._html(html)

    async def events(self, request: web.Request, viewer: BoardPass | None) -> web.StreamResponse:
        assert viewer is not None
        if request.query:
            return self._error(400, _(board_text.BAD_FILTER))
        reserved = self.feed.reserve()  # counted at once: no two requests take the last place
        response = web.StreamResponse(
            headers={
                **HEADERS,
                "Content-Type": "text/event-stream; charset=utf-8",
                "X-Accel-Buffering": "no",  # nginx: pass each event on at once
            }
        )
        if not reserved:
            await response.prepare(request)
            await self.feed.busy(response)
            return response
        try:
            await response.prepare(request)
        except BaseException:
            self.feed.release()
            raise
        await self.feed.serve(response, until=viewer.expires_at, language=current())
        return response

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in STATIC or request.query_string:
            with speaking(language_of(request)):
                return self._error(404, _(board_text.NOT_FOUND))
        return web.Response(
            body=self._static[name],
            content_type=STATIC[name],
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    # ---- answers ---------------------------------------------------------------------------------

    def _html(self, html: str, status: int = 200) -> web.Response:
        return web.Response(
            status=status,
            text=html,
            content_type="text/html",
            charset="utf-8",
            headers={**HEADERS, "Vary": "Accept-Language"},  # each reader's language
        )

    def _error(
        self,
        status: int,
        message: str,
        hint: str = "",
        *,
        viewer: BoardPass | None = None,
        clear: bool = False,
        retry_after: int | None = None,
    ) -> web.Response:
        response = self._html(self.pages.error(status, message, hint, viewer, current()), status)
        if clear:
            response.del_cookie(COOKIE, path="/board")
        if retry_after is not None:
            response.headers["Retry-After"] = str(retry_after)
        return response
