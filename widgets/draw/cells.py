"""Small text helpers shared by the renderables: fitting text into terminal cells."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from rich.cells import cell_len, set_cell_size
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.segment import Segment
from rich.style import Style


def plural(count: int, noun: str) -> str:
    """`count` and `noun`, the noun with an s unless the count is one."""
    return f"{count} {noun}{'s' * (count != 1)}"


def setting_number(value: float) -> str:
    """A sampler setting in a few characters: integers whole, others to 3 digits."""
    return str(value) if isinstance(value, int) else f"{value:.3g}"


def logit_number(value: float, width: int = 0) -> str:
    """A logit to 2 decimals, or in exponent form past 1e6 so it stays narrow."""
    form = ".2f" if abs(value) < 1e6 else ".1e"
    return f"{value:>{width}{form}}"


def fit(text: str, width: int) -> str:
    """`text` cut or padded to exactly `width` cells, with … when cut."""
    if width <= 0:
        return ""
    if cell_len(text) <= width:
        return set_cell_size(text, width)
    return set_cell_size(text, width - 1) + "…"


def fit_right(text: str, width: int) -> str:
    """`text` right-aligned in `width` cells, cut from the left when too long."""
    size = cell_len(text)
    if size >= width:
        return fit(text, width)
    return " " * (width - size) + text


def runs(cells: Iterable[tuple[str, Style | None]]) -> Iterator[Segment]:
    """Segments for (text, style) cells, merging neighbours of the same style."""
    text, style = "", None
    for piece, piece_style in cells:
        if piece_style is style or piece_style == style:
            text += piece
            continue
        if text:
            yield Segment(text, style)
        text, style = piece, piece_style
    if text:
        yield Segment(text, style)


def window(count: int, current: int, size: int) -> range:
    """The `size` indices of 0..count-1 to show so that `current` stays in view.

    The window ends at the current index (the present is at the right or bottom)
    unless that would leave room unused at the start.
    """
    if count <= size:
        return range(count)
    stop = min(count, max(current + 1, size))
    return range(stop - size, stop)


@dataclass
class Beside:
    """Two renderables side by side, the left one in a fixed width, top-aligned.

    A plain join of rendered lines: cheaper than a table for two columns that are
    redrawn on every step.
    """

    left: RenderableType
    right: RenderableType
    left_width: int
    gap: int = 2

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        """Each line of the left column, the gap, the same line of the right one."""
        widths = (
            self.left_width,
            max(1, options.max_width - self.left_width - self.gap),
        )
        columns = [
            console.render_lines(part, options.update_width(width), pad=True)
            for part, width in zip((self.left, self.right), widths, strict=True)
        ]
        gap = Segment(" " * self.gap)
        for index in range(max(len(column) for column in columns)):
            for side, (column, width) in enumerate(zip(columns, widths, strict=True)):
                if side:
                    yield gap
                yield from (
                    column[index] if index < len(column) else [Segment(" " * width)]
                )
            yield Segment.line()
