"""Port ranges and the block layout the allocator hands out (pure)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MIN_PORT = 1024
MAX_PORT = 65535


@dataclass(frozen=True, order=True)
class PortRange:
    """An inclusive range of TCP ports, ``first``..``last``."""

    first: int
    last: int

    def __post_init__(self) -> None:
        if not MIN_PORT <= self.first <= self.last <= MAX_PORT:
            raise ValueError(
                f"port range {self.first}-{self.last} must satisfy "
                f"{MIN_PORT} <= FIRST <= LAST <= {MAX_PORT}"
            )

    @classmethod
    def parse(cls, text: str) -> PortRange:
        """Parse ``"30000-39999"``; raise ``ValueError`` with a readable reason."""
        first_s, sep, last_s = text.strip().partition("-")
        if not sep or not first_s.strip().isdigit() or not last_s.strip().isdigit():
            raise ValueError(f"expected FIRST-LAST, for example 30000-39999, got {text!r}")
        return cls(int(first_s), int(last_s))

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and self.first <= port <= self.last

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __str__(self) -> str:
        return f"{self.first}-{self.last}"


@dataclass(frozen=True)
class BlockLayout:
    """How a port range is cut into equal, aligned blocks of ``size`` consecutive ports.

    Blocks start at ``range.first`` and step by ``size``; a tail shorter than ``size`` is
    unused. Because every block of one layout is aligned, two blocks of a layout never overlap.
    """

    range: PortRange
    size: int

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"block size must be at least 1, got {self.size}")
        if self.size > len(self.range):
            raise ValueError(f"block size {self.size} does not fit in port range {self.range}")

    @property
    def block_count(self) -> int:
        return len(self.range) // self.size

    def first_ports(self) -> Iterator[int]:
        """The first port of every block, lowest first."""
        return iter(
            range(self.range.first, self.range.first + self.block_count * self.size, self.size)
        )

    def contains_block(self, first_port: int, size: int) -> bool:
        """True when ``first_port``/``size`` is exactly one of this layout's blocks."""
        offset = first_port - self.range.first
        return (
            size == self.size
            and offset >= 0
            and offset % self.size == 0
            and offset // self.size < self.block_count
        )


def block_ports(first_port: int, size: int) -> range:
    """The ports of the block that starts at ``first_port``."""
    return range(first_port, first_port + size)


def overlaps(first_a: int, size_a: int, first_b: int, size_b: int) -> bool:
    """True when two blocks share at least one port."""
    return first_a < first_b + size_b and first_b < first_a + size_a


def excluded_ports_in(first_port: int, size: int, excluded: Iterable[int]) -> list[int]:
    """The excluded ports that fall inside a block, sorted."""
    return sorted(p for p in set(excluded) if first_port <= p < first_port + size)


@dataclass(frozen=True)
class BlockRow:
    """What the planner needs to know of one stored block."""

    first_port: int
    size: int
    held: bool
    retired: bool = False


@dataclass(frozen=True)
class LayoutPlan:
    """What to change so that the stored blocks match a layout."""

    create: tuple[int, ...] = ()  # first ports of new blocks of the layout
    delete: tuple[int, ...] = ()  # free blocks that are not part of the layout
    retire: tuple[int, ...] = ()  # held blocks not part of the layout: delete on release
    unretire: tuple[int, ...] = ()  # retired blocks that are part of the layout again
    waiting: tuple[int, ...] = ()  # layout blocks not creatable yet: they overlap a held block

    @property
    def is_empty(self) -> bool:
        return not (self.create or self.delete or self.retire or self.unretire)


def plan_layout(existing: Iterable[BlockRow], layout: BlockLayout) -> LayoutPlan:
    """Compare stored blocks with ``layout``. Never plans two overlapping blocks.

    Held blocks are never deleted: those outside the layout are retired and their ports come
    back when they are released (the next plan then creates the layout blocks over them).
    """
    rows = sorted(existing, key=lambda r: r.first_port)
    in_layout = {r.first_port: r for r in rows if layout.contains_block(r.first_port, r.size)}
    off_layout = [r for r in rows if r.first_port not in in_layout]
    kept_off = [r for r in off_layout if r.held]

    create: list[int] = []
    waiting: list[int] = []
    for first in layout.first_ports():
        if first in in_layout:
            continue
        if any(overlaps(first, layout.size, r.first_port, r.size) for r in kept_off):
            waiting.append(first)
        else:
            create.append(first)
    return LayoutPlan(
        create=tuple(create),
        delete=tuple(r.first_port for r in off_layout if not r.held),
        retire=tuple(r.first_port for r in kept_off if not r.retired),
        unretire=tuple(r.first_port for r in in_layout.values() if r.retired),
        waiting=tuple(waiting),
    )


def exclusion_reasons(
    blocks: Iterable[tuple[int, int]], excluded: dict[int, str]
) -> dict[int, str | None]:
    """For each (first_port, size) block, why it may not be handed out, or ``None``.

    ``excluded`` maps a port to what uses it, e.g. ``{30080: "NodePort of default/web"}``.
    """
    ports = sorted(excluded)
    result: dict[int, str | None] = {}
    for first, size in blocks:
        inside = [p for p in ports if first <= p < first + size]
        result[first] = "; ".join(f"{p}: {excluded[p]}" for p in inside)[:200] or None
    return result


def named_ports(names: Iterable[str], first_port: int) -> dict[str, int]:
    """An island's ports by name, in block order: ``{"server-port": 30809, ...}``."""
    return {name: first_port + i for i, name in enumerate(names)}
