"""The team board's wiring: its signing key (a setting, else made once and kept in the
database for every replica), the links' base URL, and its routes on the bot's HTTP server."""

from __future__ import annotations

import logging

from bot.app.board_links import BoardLinks
from bot.app.board_view import BoardView
from bot.app.island_actions import IslandActions
from bot.domain.time_source import Clock
from bot.http.board_routes import BoardRoutes
from bot.http.server import WebServer
from bot.infra.storage.database import Database
from bot.infra.storage.secrets import ServerSecrets
from bot.run.settings import Settings

log = logging.getLogger(__name__)

SECRET_NAME = "board"  # noqa: S105 (the secret's name, not a secret)


def board_url(settings: Settings, server: WebServer) -> str | None:
    """Where people reach the board: the setting, else the server's own address when it
    names one; None when it listens on every interface (no name people could use is known)."""
    if settings.board_url:
        return settings.board_url
    host = server.address.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 (what the server listens on, not a bind)
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.bind().port}"


def board_links(
    settings: Settings, db: Database, server: WebServer, clock: Clock
) -> BoardLinks | None:
    """The links to the board, or None when it is not served (said once, in the log)."""
    url = board_url(settings, server)
    if url is None:
        log.info(
            "the team board is off: set ISLANDBOT_BOARD_URL to where people reach the bot's "
            "HTTP server (it listens on %s)",
            server.address,
        )
        return None
    if settings.board_secret is not None:
        secret = settings.board_secret.reveal().encode()
    else:
        secret = ServerSecrets(db).get_or_make(SECRET_NAME)
    return BoardLinks(
        secret=secret,
        base_url=url,
        ttl=settings.board_link_ttl,
        clock=clock,
    )


def serve_board(
    server: WebServer, actions: IslandActions, links: BoardLinks, settings: Settings
) -> BoardRoutes:
    board = BoardRoutes(view=BoardView(actions), links=links, tz=settings.tz)
    server.add_routes(board.routes())
    server.on_shutdown(board.feed.close)
    return board
