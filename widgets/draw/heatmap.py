"""A heatmap drawn as plain text: one line of merged segments per matrix row."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style

from widgets.draw.cells import fit, runs
from widgets.draw.palette import MASKED, Scale

CURRENT = Style(bold=True, reverse=True)
MARK = "▶"


def percent(value: float) -> str:
    """A probability as a whole percentage, `<1` for tiny non-zero ones."""
    if 0 < value < 0.005:
        return "<1"
    return f"{value * 100:.0f}"


@dataclass
class Heatmap:
    """A matrix shown one line per row, each cell a shade symbol in its colour.

    NaN cells are masked (drawn blank), which makes a causal triangle visible. With
    `show_values` each cell shows its number on a filled background instead.
    """

    values: np.ndarray  # [R, K]
    scale: Scale = field(default_factory=Scale)
    row_labels: Sequence[str] = ()
    col_labels: Sequence[str] = ()
    current_row: int | None = None
    current_col: int | None = None
    show_values: bool = False
    number: Callable[[float], str] = percent
    label_width: int = 8
    header_lines: int = 3

    @property
    def cell_width(self) -> int:
        """Columns per cell: room for the symbol (or the widest number) and a gap."""
        if not self.show_values:
            return 3 if self.scale.signed else 2
        finite = self.values[np.isfinite(self.values)]
        widest = max((len(self.number(float(v))) for v in finite.flat), default=1)
        return widest + 1

    def __rich_measure__(
        self, console: Console, options: ConsoleOptions
    ) -> Measurement:
        """The width of labels plus every cell."""
        width = 1 + self._label_width() + self.values.shape[1] * self.cell_width
        return Measurement(width, width)

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        """The column header, then one line per row."""
        yield from self._header()
        codes = None if self.show_values else self.scale.codes(self.values)
        for row in range(self.values.shape[0]):
            yield from self._row(row, codes)
            yield Segment.line()

    def _label_width(self) -> int:
        """Cells reserved for row labels (none when there are no labels)."""
        return self.label_width + 1 if self.row_labels else 0

    def _header(self) -> RenderResult:
        """Column labels written downwards, one character per line."""
        if not self.col_labels:
            return
        pad = " " * (1 + self._label_width())
        width = self.cell_width
        for line in range(self.header_lines):
            cells = []
            for col, label in enumerate(self.col_labels):
                char = label[line] if line < len(label) else " "
                style = CURRENT if col == self.current_col else None
                cells.append((fit(char, 1), style))
                cells.append((" " * (width - 1), None))
            yield Segment(pad)
            yield from runs(cells)
            yield Segment.line()

    def _row(self, row: int, codes: np.ndarray | None) -> RenderResult:
        """One matrix row: current-row marker, label, then the cells."""
        is_current = row == self.current_row
        yield Segment(MARK if is_current else " ")
        if self.row_labels:
            label = fit(self.row_labels[row], self.label_width) + " "
            yield Segment(label, CURRENT if is_current else None)
        if codes is None:
            yield from runs(self._cell(float(v)) for v in self.values[row])
        else:
            yield from self._coded_row(codes[row])

    def _coded_row(self, codes: np.ndarray) -> RenderResult:
        """A row of symbols, one segment per run of cells with the same code."""
        width = self.cell_width
        edges = np.flatnonzero(np.diff(codes)) + 1
        starts = [0, *edges.tolist()]
        stops = [*edges.tolist(), len(codes)]
        for start, stop in zip(starts, stops, strict=True):
            code = int(codes[start])
            if code < 0:
                yield Segment(MASKED * width * (stop - start))
                continue
            symbol, style = self.scale.piece(code)
            yield Segment(symbol.ljust(width) * (stop - start), style)

    def _cell(self, value: float) -> tuple[str, Style | None]:
        """The text and style of one cell."""
        width = self.cell_width
        if math.isnan(value):
            return MASKED * width, None
        if self.show_values:
            text = self.number(value).rjust(width - 1) + " "
            return text, self.scale.style(value, filled=True)
        return self.scale.symbol(value).ljust(width), self.scale.style(value)
