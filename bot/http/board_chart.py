"""The memory chart on an island's page: the last hour's readings as SVG coordinates (the
template draws them; no script, no image library)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from bot.words import board_text

WIDTH, HEIGHT, MARGIN = 600, 160, 16


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    points: str  # the polyline's "x,y x,y ..."
    last: tuple[float, float]  # the latest reading, marked (one reading alone is a point)
    limit_y: float | None  # where the limit's line is drawn
    limit_text: str
    start_text: str
    end_text: str
    label: str


def memory_chart(
    samples: Sequence[tuple[datetime, int, int | None]],
    *,
    now: datetime,
    span: timedelta,
    tz: tzinfo,
) -> Chart | None:
    """The chart of ``samples`` (time, working set, limit) over ``span`` up to ``now``, scaled
    to the limit (or to the highest reading without one); None without samples. Its words are
    in the language spoken where it is made (the page's)."""
    if not samples:
        return None
    limit = next((s[2] for s in reversed(samples) if s[2]), None)
    peak = max(s[1] for s in samples)
    top = max(limit or 0, peak, 1)
    start = now - span
    plot_h = HEIGHT - 2 * MARGIN

    def x(at: datetime) -> float:
        share = (at - start).total_seconds() / span.total_seconds()
        return round(min(max(share, 0.0), 1.0) * WIDTH, 1)

    def y(value: int) -> float:
        return round(MARGIN + plot_h * (1 - value / top), 1)

    points = " ".join(f"{x(at)},{y(used)}" for at, used, _ in samples)
    last_at, last_used, _ = samples[-1]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        points=points,
        last=(x(last_at), y(last_used)),
        limit_y=y(limit) if limit else None,
        limit_text=board_text.chart_limit(limit) if limit else "",
        start_text=start.astimezone(tz).strftime("%H:%M"),
        end_text=now.astimezone(tz).strftime("%H:%M"),
        label=board_text.memory_chart(len(samples), peak, limit),
    )
