"""Message layouts in Block Kit, the bot's neutral format (every chat adapter shows it: Slack
as it is, the console rendered as text): the island's root message, tables, the home page, clock
requests. Pure: data in, dicts out.

Sentences come from the other modules of ``bot.words``; this one only arranges them. What the
buttons do and carry is ``bot.domain.buttons``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import Any

from bot.domain.buttons import ButtonAction, island_button_value
from bot.domain.records import CapacityReport, ClockRecord, IslandRecord, LogTail
from bot.domain.states import IslandState
from bot.words import clock_text, island_text
from bot.words.catalogue import _
from bot.words.formatting import format_duration

Block = dict[str, Any]
MAX_HOME_BLOCKS = 100
MAX_TEXT = 2900  # a section's text may hold 3,000 characters
MAX_CONTEXT = 2000  # a context element's text
MAX_BUTTON = 75  # a button's text
MAX_HEADER = 150  # a header's text
MAX_CONFIRM_TITLE = 100  # a confirmation dialog's title
MAX_CONFIRM_TEXT = 300  # its text
MAX_CONFIRM_BUTTON = 30  # its two buttons' texts
LIVE_WITH_BUTTONS = frozenset(IslandState) - {IslandState.STOPPED, IslandState.STOPPING}


def _text(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:MAX_TEXT]}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:MAX_CONTEXT]}]}


def _plain(text: str, limit: int) -> Block:
    """A plain text object within Slack's limit for where it is shown (a translation may be
    longer than the English)."""
    return {"type": "plain_text", "text": text[:limit]}


def _header(text: str) -> Block:
    return {"type": "header", "text": _plain(text, MAX_HEADER)}


def buttons(island: IslandRecord, extend_step: timedelta) -> Block:
    value = island_button_value(island.id, island.expires_at)
    step = format_duration(extend_step)
    stop = _(island_text.BUTTON_STOP)
    return {
        "type": "actions",
        "block_id": f"island-{island.id}",
        "elements": [
            {
                "type": "button",
                "action_id": ButtonAction.STOP.value,
                "text": _plain(stop, MAX_BUTTON),
                "style": "danger",
                "value": value,
                "confirm": {
                    "title": _plain(stop, MAX_CONFIRM_TITLE),
                    "text": {
                        "type": "mrkdwn",
                        "text": island_text.confirm_stop(island.id)[:MAX_CONFIRM_TEXT],
                    },
                    "confirm": _plain(stop, MAX_CONFIRM_BUTTON),
                    "deny": _plain(_(island_text.BUTTON_KEEP), MAX_CONFIRM_BUTTON),
                },
            },
            {
                "type": "button",
                "action_id": ButtonAction.EXTEND.value,
                "text": _plain(island_text.button_extend(step), MAX_BUTTON),
                "value": value,
            },
            {
                "type": "button",
                "action_id": ButtonAction.LOGS.value,
                "text": _plain(_(island_text.BUTTON_LOGS), MAX_BUTTON),
                "value": value,
            },
        ],
    }


def root_message(
    island: IslandRecord,
    *,
    ports: Mapping[str, int],
    clock: datetime | None,
    extend_step: timedelta,
    now: datetime,
    tz: tzinfo,
    memory: tuple[int, int | None] | None = None,
) -> tuple[str, list[Block]]:
    """The island's message in the channel, kept current: (fallback text, blocks); its clock
    in the team's zone ``tz``; ``memory``: its last reading (working set, limit)."""
    headline = island_text.root_headline(island)
    fields = island_text.root_fields(
        island, ports=ports, clock=clock, now=now, tz=tz, memory=memory
    )
    blocks: list[Block] = [
        _text(headline),
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": f[:1900]} for f in fields[:10]],
        },
    ]
    if island.note:
        blocks.append(_context(island_text.note_line(island.note)))
    if island.state in LIVE_WITH_BUTTONS:
        blocks.append(buttons(island, extend_step))
    return headline, blocks


def digest_message(islands: Sequence[IslandRecord]) -> tuple[str, list[Block]]:
    """The one root message of islands started at once in a channel, kept current: (fallback
    text, blocks): a headline, the islands ten to a section, where the owners look."""
    headline = island_text.digest_headline(islands)
    blocks: list[Block] = [_text(headline)]
    lines = [island_text.digest_line(i) for i in islands]
    for first in range(0, len(lines), 10):
        blocks.append(_text("\n".join(lines[first : first + 10])[:MAX_TEXT]))
    blocks.append(_context(_(island_text.DIGEST_FOOTER)))
    return headline.replace("*", ""), blocks


def owner_notice(text: str, card: Sequence[Block]) -> tuple[str, list[Block]]:
    """A notice told to an island's owner directly: the notice, then the island's card (its
    root message's fields and buttons, without the headline)."""
    return text, [_text(text[:MAX_TEXT]), *card[1:]]


def islands_table(
    title: str, islands: Sequence[IslandRecord], *, ports: Mapping[int, int], now: datetime
) -> tuple[str, list[Block]]:
    """A compact fixed-width table (``ports`` maps island id to its server port)."""
    if not islands:
        return title, [_text(f"*{title}*\n{_(island_text.NO_ISLANDS)}")]
    rows = [island_text.table_row(i, server_port=ports.get(i.id), now=now) for i in islands]
    header = island_text.table_header()
    blocks = [_text(f"*{title}*")]
    chunk: list[str] = []
    for row in rows:  # split into sections that each fit Slack's limit, never mid-row
        if sum(len(r) + 1 for r in chunk) + len(row) + len(header) + 10 > MAX_TEXT:
            blocks.append(_text("```" + "\n".join([header, *chunk]) + "```"))
            chunk = []
        chunk.append(row)
    blocks.append(_text("```" + "\n".join([header, *chunk]) + "```"))
    if len(blocks) > 40:
        blocks = [*blocks[:39], _context(island_text.table_cut(len(islands)))]
    return _("{title}: {count}", title=title, count=len(islands)), blocks


def status_blocks(
    island: IslandRecord,
    *,
    ports: Mapping[str, int],
    clock: datetime | None,
    extend_step: timedelta,
    now: datetime,
    tz: tzinfo,
    memory: tuple[int, int | None] | None = None,
) -> tuple[str, list[Block]]:
    text, blocks = root_message(
        island, ports=ports, clock=clock, extend_step=extend_step, now=now, tz=tz, memory=memory
    )
    if island.failure_reason:
        blocks.insert(2, _context(island_text.failure_line(island.failure_reason)))
    return text, blocks


def capacity_blocks(report: CapacityReport) -> tuple[str, list[Block]]:
    lines = island_text.capacity_lines(report)
    return lines[0], [_text("\n".join(lines))]


def logs_text(tail: LogTail) -> str:
    return island_text.logs_message(tail)


def home_view(
    *,
    mine: Sequence[IslandRecord],
    team: Sequence[IslandRecord],
    ports: Mapping[int, Mapping[str, int]],
    extend_step: timedelta,
    now: datetime,
    memory: Mapping[int, tuple[int, int | None]] | None = None,
    board: str | None = None,
) -> dict[str, Any]:
    """The App Home tab: the user's islands with their buttons, then the team's, within
    Slack's 100-block limit (saying how many were left out); ``memory``: the islands' last
    readings (working set, limit); ``board``: the line with the viewer's board link."""
    read = memory or {}
    blocks: list[Block] = [_context(board)] if board else []
    blocks.append(_header(_(island_text.HOME_MINE)))
    if not mine:
        blocks.append(_text(_(island_text.NO_ISLANDS_OF_YOURS)))
    for island in mine[:20]:
        blocks.append(
            _text(
                island_text.home_line(
                    island, ports.get(island.id, {}), now=now, memory=read.get(island.id)
                )
            )
        )
        if island.state in LIVE_WITH_BUTTONS:
            blocks.append(buttons(island, extend_step))
    blocks.append({"type": "divider"})
    blocks.append(_header(_(island_text.HOME_TEAM)))
    others = [i for i in team if i not in mine]
    room = MAX_HOME_BLOCKS - len(blocks) - 1
    if not others:
        blocks.append(_text(_(island_text.NO_ISLANDS)))
    for island in others[:room]:
        blocks.append(
            _text(
                island_text.home_line(
                    island, ports.get(island.id, {}), now=now, memory=read.get(island.id)
                )
            )
        )
    if len(others) > room:
        blocks.append(_context(island_text.table_cut(len(others))))
    return {"type": "home", "blocks": blocks[:MAX_HOME_BLOCKS]}


def clock_request_message(
    request: ClockRecord, *, owner_id: str, tz: tzinfo, now: datetime
) -> tuple[str, list[Block]]:
    """A clock request in the channel: Approve / Reject while it is pending."""
    text = clock_text.clock_request(request, owner_id, tz, now)
    blocks: list[Block] = [_text(text)]
    if request.state == "pending":
        blocks.append(
            {
                "type": "actions",
                "block_id": f"clock-{request.id}",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ButtonAction.CLOCK_APPROVE.value,
                        "style": "primary",
                        "text": _plain(_(clock_text.BUTTON_APPROVE), MAX_BUTTON),
                        "value": str(request.id),
                    },
                    {
                        "type": "button",
                        "action_id": ButtonAction.CLOCK_REJECT.value,
                        "text": _plain(_(clock_text.BUTTON_REJECT), MAX_BUTTON),
                        "value": str(request.id),
                    },
                ],
            }
        )
    return text, blocks
