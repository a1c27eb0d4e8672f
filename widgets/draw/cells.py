"""Small text helpers shared by the renderables: fitting text into terminal cells."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style


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
