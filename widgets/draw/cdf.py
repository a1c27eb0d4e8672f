"""The cumulative distribution as a strip of slots, with the random draw marked."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from widgets.draw.cells import fit, runs
from widgets.draw.palette import colour_at

GLYPHS = ("█", "▒")  # neighbouring slots read apart without colour
PICKED_GLYPH = "▓"
PICKED = Style(bold=True, reverse=True)
DIM = Style(dim=True)
BOLD = Style(bold=True)


@dataclass
class CdfStrip:
    """Slots as wide as their probabilities, left to right, with the draw `u` above.

    `u` lands in exactly one slot: the token it picks. With `u` None the choice was
    greedy or forced, and `how` says which.
    """

    bounds: Sequence[float]  # [N] upper bound of each slot; the last is 1
    labels: Sequence[str]  # [N] readable tokens
    chosen: int | None = None  # slot of the picked token
    u: float | None = None
    how: str = "greedy: the most likely token is taken"
    slots: int | None = None  # how many survivors in all, when `bounds` keeps fewer

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        """Draw marker, strip, slot labels, axis and what was picked."""
        width = max(12, options.max_width)
        spans = list(self.spans(width))
        yield from self._draw_line(width)
        yield Segment.line()
        yield from runs(
            self._strip_cell(slot) for slot, _, n in spans for _ in range(n)
        )
        yield Segment.line()
        yield from runs(self._label(slot, n) for slot, _, n in spans)
        yield Segment.line()
        yield Segment(self._axis(width), DIM)
        yield Segment.line()
        yield from self._picked(width)

    def spans(self, width: int) -> Iterator[tuple[int, int, int]]:
        """(slot, first column, columns) for each slot wide enough to own a column."""
        edges = list(self.bounds)
        total = edges[-1] if edges else 1.0
        owners, slot = [], 0
        for col in range(width):
            middle = (col + 0.5) / width * total
            while slot < len(edges) - 1 and middle > edges[slot]:
                slot += 1
            owners.append(slot)
        col = 0
        for slot, group in itertools.groupby(owners):
            n = len(list(group))
            yield slot, col, n
            col += n

    def _draw_line(self, width: int) -> RenderResult:
        """The marker above the column where `u` fell, or why there was no draw."""
        if self.u is None:
            yield Segment(fit(f"no random draw: {self.how}", width), DIM)
            return
        col = min(width - 1, int(self.u * width))
        note = f"▼ u = {self.u:.4f}"
        if col + len(note) <= width:
            text = " " * col + note
        else:
            text = " " * (col + 1 - len(note)) + f"u = {self.u:.4f} ▼"
        yield Segment(fit(text, width), BOLD)

    def _strip_cell(self, slot: int) -> tuple[str, Style]:
        """The glyph and style of one column of `slot`."""
        if slot == self.chosen:
            return PICKED_GLYPH, PICKED
        colour = colour_at("viridis", 10 if slot % 2 else 24)
        return GLYPHS[slot % 2], Style(color=colour)

    def _label(self, slot: int, n: int) -> tuple[str, Style | None]:
        """A slot's token cut to its `n` columns (blank when under two columns)."""
        text = fit(self.labels[slot], n) if n >= 2 and slot < len(self.labels) else ""
        return text.ljust(n), PICKED if slot == self.chosen else None

    def _axis(self, width: int) -> str:
        """Ticks at 0, ¼, ½, ¾ and 1."""
        chars = [" "] * width
        for tick, text in ((0.0, "0"), (0.25, ".25"), (0.5, ".5"), (0.75, ".75")):
            start = int(tick * width)
            chars[start : start + len(text)] = text
        chars[-1] = "1"
        return "".join(chars[:width])

    def _picked(self, width: int) -> RenderResult:
        """A line naming the picked slot and its interval on the 0..1 line."""
        if self.chosen is None or self.chosen >= len(self.bounds):
            return
        end = self.bounds[self.chosen]
        start = self.bounds[self.chosen - 1] if self.chosen else 0.0
        text = (
            f"▲ slot {self.chosen + 1} of {self.slots or len(self.bounds)}: "
            f"{self.labels[self.chosen]}  [{start:.4f}, {end:.4f})"
        )
        yield Segment(fit(text, width), BOLD)
        yield Segment.line()
