"""The board's pages, rendered from ``bot.http.board_templates`` (Jinja2, autoescaped: every
value from people or the cluster is inert HTML), their words from ``bot.words.board_text``.

The board page is also rendered in parts (its islands' rows, the room, the nodes, the clock
requests) for the live feed: one render for every viewer, the rows unfiltered (the page's
script hides those a viewer's filters leave out).

An island's row is rendered again only when what it shows changed (its words are worked out
first; the row's HTML is kept under them): with a thousand islands, a board where a few moved
costs a few rows, not a thousand. Expiry and shifted clocks are shown to the minute, so a row
changes at most once a minute on its own.

Every page is worded in one language (``language``; None: the one spoken where it is called,
``bot.words.catalogue``): it is rendered inside ``speaking(language)``, so the templates' words
(``w``, ``board_text.WORDS``) and the sentences they call are that language's, and so is
``<html lang>``. The rows kept are kept per language: a row rendered for one reader is never
shown to a reader of another language.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import jinja2
from markupsafe import Markup

from bot.app.board_view import BoardIsland, BoardSnapshot, IslandPage
from bot.domain.board_pass import BoardPass
from bot.domain.records import IslandRecord
from bot.http.board_chart import memory_chart
from bot.infra.storage.board_reads import IslandLine
from bot.infra.storage.memory import SAMPLES_KEPT
from bot.words import board_text, refusals
from bot.words.catalogue import _, current, speaking

PARTS = ("room", "nodes", "clocks")  # what the live feed sends whole, by element id


@dataclass(frozen=True)
class LiveParts:
    """The board as the live feed sends it: its parts by element id, and each island's row
    (id, HTML) in the table's order."""

    parts: Mapping[str, str]
    rows: list[tuple[int, str]]


@dataclass(frozen=True)
class Filters:
    """Which islands a viewer asked to see (``?mine=1&branch=dev&state=ready``)."""

    mine_of: str | None = None  # the viewer's user id, when only theirs
    branch: str = ""
    state: str = ""

    @property
    def mine(self) -> bool:
        return self.mine_of is not None

    def keeps(self, island: IslandLine | IslandRecord) -> bool:
        return (
            (self.mine_of is None or island.owner_id == self.mine_of)
            and (not self.branch or island.branch == self.branch)
            and (not self.state or state_group(island.state.value) == self.state)
        )


@dataclass(frozen=True)
class RowView:
    """An island's row as words: what its HTML is rendered from, and kept under."""

    id: int
    owner_id: str
    owner: str
    branch: str
    group: str  # the state's colour and filter
    state: str
    node: str
    host: str
    ports: tuple[tuple[str, int], ...]
    clock: str
    expires: str
    note: str
    memory: str
    why: str  # a failed island's failure
    hidden: bool


_GROUPS = {s: g for g, states in board_text.STATE_FILTERS.items() for s in states}


def state_group(state: str) -> str:
    """The board's colour and filter for a state."""
    return _GROUPS.get(state, state)


def bar_width(requested: int, allocatable: int) -> int:
    return 100 if allocatable <= 0 else min(requested * 100 // allocatable, 100)


class BoardPages:
    def __init__(self, *, tz: tzinfo) -> None:
        self.tz = tz
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("bot.http", "board_templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # shipped templates: no stat per render
        )
        self.env.globals.update(
            w=board_text.WORDS,
            language=current,  # <html lang>: the language the page is rendered in
            tz=tz,
            state_group=state_group,
            bar_width=bar_width,
        )
        self._row = self.env.get_template("island_row.html")
        # language -> (island id, hidden) -> what the row was rendered from, and its HTML
        self._rows: dict[str, dict[tuple[int, bool], tuple[tuple[object, ...], Markup]]] = {}
        self._rows_lock = threading.Lock()

    def _render(self, name: str, **values: Any) -> str:
        return self.env.get_template(name).render(**values)

    @staticmethod
    @contextmanager
    def _in(language: str | None) -> Iterator[None]:
        """Speak ``language`` (None: the one spoken here already)."""
        with speaking(language or current()):
            yield

    def _row_view(self, island: BoardIsland, snapshot: BoardSnapshot, hidden: bool) -> RowView:
        r = island.record
        used = island.memory
        return RowView(
            id=r.id,
            owner_id=r.owner_id,
            owner=r.owner_name,
            branch=r.branch,
            group=state_group(r.state.value),
            state=board_text.state(r.state.value),
            node=r.node or "",
            host=r.host_ip or _(board_text.NOT_PLACED),
            ports=tuple(island.ports.items()),
            clock=board_text.clock_minute(r.clock_offset_s, island.clock_at, self.tz),
            expires=board_text.expires(r.expires_at, snapshot.at),
            note=r.note or "",
            memory=board_text.memory_row(used[0], used[1]) if used else "",
            why=r.failure_reason or "",
            hidden=hidden,
        )

    def rows(
        self, snapshot: BoardSnapshot, filters: Filters, language: str | None = None
    ) -> tuple[list[tuple[int, Markup]], int]:
        """Every island's row (those ``filters`` leave out hidden) and how many are shown;
        a row is rendered only when what it is rendered from changed: the island's line and
        the words of its memory, its expiry and its clock (in ``language``: the rows kept are
        that language's)."""
        with self._in(language):
            return self._rows_of(snapshot, filters, current())

    def _rows_of(
        self, snapshot: BoardSnapshot, filters: Filters, language: str
    ) -> tuple[list[tuple[int, Markup]], int]:
        with self._rows_lock:
            kept = self._rows.get(language, {})
        fresh: dict[tuple[int, bool], tuple[tuple[object, ...], Markup]] = {}
        out, shown = [], 0
        for island in snapshot.islands:
            hidden = not filters.keeps(island.record)
            shown += not hidden
            expires = board_text.expires(island.record.expires_at, snapshot.at)
            clock = int(island.clock_at.timestamp()) // 60 if island.clock_at else None
            used = island.memory
            memory = board_text.memory_row(used[0], used[1]) if used else ""
            source = (island.record, memory, expires, clock)
            key = (island.record.id, hidden)
            last = kept.get(key)
            if last is None or last[0] != source:
                view = self._row_view(island, snapshot, hidden)
                # autoescaped template: its output is markup
                last = (source, Markup(self._row.render(v=view)))  # noqa: S704
            fresh[key] = last  # the very objects kept: a row unchanged leaves no new survivor
            out.append((island.record.id, last[1]))
        with self._rows_lock:
            # both a filtered and the unfiltered board keep their rows; islands gone are
            # dropped once the rows kept are many more than the board has
            before = self._rows.get(language, {})
            self._rows[language] = {**before, **fresh} if len(before) < 3 * len(fresh) else fresh
        return out, shown

    def board(
        self,
        snapshot: BoardSnapshot,
        viewer: BoardPass,
        filters: Filters,
        language: str | None = None,
    ) -> str:
        with self._in(language):
            rows, shown = self.rows(snapshot, filters)
            html = Markup("").join(row for _id, row in rows)
            return self._render(
                "board.html",
                title=_(board_text.TITLE),
                viewer=viewer,
                live=True,
                board=snapshot,
                filters=filters,
                rows=html or Markup(self._render("island_rows_empty.html")),  # noqa: S704
                shown=shown,
                branch_names=[b.branch for b in snapshot.branches],
            )

    def live(self, snapshot: BoardSnapshot, language: str | None = None) -> LiveParts:
        """The board's live parts and rows, for every viewer of ``language`` (no filter)."""
        with self._in(language):
            rows, _shown = self.rows(snapshot, Filters())
            parts = {part: self._render(f"{part}.html", board=snapshot) for part in PARTS}
        return LiveParts(parts, [(i, str(html)) for i, html in rows])

    def island(self, page: IslandPage, viewer: BoardPass, language: str | None = None) -> str:
        with self._in(language):
            chart = memory_chart(page.memory, now=page.at, span=SAMPLES_KEPT, tz=self.tz)
            refused = refusals.text(page.logs_refused) if page.logs_refused else ""
            return self._render(
                "island.html",
                title=f"{_(board_text.TITLE)}: #{page.island.record.id}",
                viewer=viewer,
                live=False,
                page=page,
                chart=chart,
                logs_refused=refused,
            )

    def error(
        self,
        status: int,
        message: str,
        hint: str = "",
        viewer: BoardPass | None = None,
        language: str | None = None,
    ) -> str:
        """An error page; ``message`` and ``hint`` already worded (in ``language``)."""
        with self._in(language):
            return self._render(
                "error.html",
                title=_(board_text.TITLE),
                viewer=viewer,
                live=False,
                status=status,
                message=message,
                hint=hint,
            )
