"""The board's pages, rendered from ``bot.http.board_templates`` (Jinja2, autoescaped: every
value from people or the cluster is inert HTML), their words from ``bot.words.board_text``.

The board page is also rendered in parts (its islands' rows, the room, the nodes, the clock
requests) for the live feed: one render for every viewer, the rows unfiltered (the page's
script hides those a viewer's filters leave out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import jinja2

from bot.app.board_view import BoardSnapshot, IslandPage
from bot.domain.board_pass import BoardPass
from bot.domain.records import IslandRecord
from bot.http.board_chart import memory_chart
from bot.infra.storage.memory import SAMPLES_KEPT
from bot.words import board_text, refusals

PARTS = ("room", "island_rows", "nodes", "clocks")  # what the live feed sends, by element id


@dataclass(frozen=True)
class Filters:
    """Which islands a viewer asked to see (``?mine=1&branch=dev&state=ready``)."""

    mine_of: str | None = None  # the viewer's user id, when only theirs
    branch: str = ""
    state: str = ""

    @property
    def mine(self) -> bool:
        return self.mine_of is not None

    def keeps(self, island: IslandRecord) -> bool:
        return (
            (self.mine_of is None or island.owner_id == self.mine_of)
            and (not self.branch or island.branch == self.branch)
            and (not self.state or state_group(island.state.value) == self.state)
        )


def state_group(state: str) -> str:
    """The board's colour and filter for a state."""
    return next((g for g, states in board_text.STATE_FILTERS.items() if state in states), state)


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
        )
        self.env.globals.update(w=board_text, tz=tz, state_group=state_group, bar_width=bar_width)

    def _render(self, name: str, **values: Any) -> str:
        return self.env.get_template(name).render(**values)

    def board(self, snapshot: BoardSnapshot, viewer: BoardPass, filters: Filters) -> str:
        return self._render(
            "board.html",
            title=board_text.TITLE,
            viewer=viewer,
            live=True,
            board=snapshot,
            filters=filters,
            shown=sum(1 for i in snapshot.islands if filters.keeps(i.record)),
            branch_names=[b.branch for b in snapshot.branches],
        )

    def parts(self, snapshot: BoardSnapshot) -> Mapping[str, str]:
        """The board's live parts, for every viewer (no filter)."""
        return {
            part: self._render(f"{part}.html", board=snapshot, filters=Filters()) for part in PARTS
        }

    def island(self, page: IslandPage, viewer: BoardPass) -> str:
        chart = memory_chart(page.memory, now=page.at, span=SAMPLES_KEPT, tz=self.tz)
        refused = refusals.text(page.logs_refused) if page.logs_refused else ""
        return self._render(
            "island.html",
            title=f"{board_text.TITLE}: #{page.island.record.id}",
            viewer=viewer,
            live=False,
            page=page,
            chart=chart,
            logs_refused=refused,
        )

    def error(
        self, status: int, message: str, hint: str = "", viewer: BoardPass | None = None
    ) -> str:
        return self._render(
            "error.html",
            title=board_text.TITLE,
            viewer=viewer,
            live=False,
            status=status,
            message=message,
            hint=hint,
        )
