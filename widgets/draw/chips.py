"""Token chips: each token's readable text and id, wrapped to the width."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from widgets.draw.cells import fit

ID = Style(dim=True)


@dataclass(frozen=True)
class ChipStyles:
    """How prompt, generated and current chips look (the app takes its theme's)."""

    prompt: Style = Style(bgcolor="grey23")
    generated: Style = Style(bgcolor="grey30", italic=True)
    current: Style = Style(bold=True, reverse=True)


MARK = "▶"


@dataclass(frozen=True)
class Chip:
    """One token: readable text (whitespace and bytes made visible) and id."""

    token_id: int
    text: str
    generated: bool = False


@dataclass
class TokenChips:
    """Tokens as chips `text·id`, wrapped at the width, the current one marked.

    The current chip is reversed and preceded by ▶; generated chips are italic,
    so the prompt and the continuation read apart without colour too.
    """

    chips: Sequence[Chip]
    current: int | None = None
    show_ids: bool = True
    styles: ChipStyles = ChipStyles()

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        """Chips separated by spaces, moving to a new line when one would not fit."""
        width, used = options.max_width, 0
        for index, chip in enumerate(self.chips):
            parts = list(self._parts(index, chip, width))
            size = sum(cell_len(text) for text, _ in parts)
            if used and used + 1 + size > width:
                yield Segment.line()
                used = 0
            if used:
                yield Segment(" ")
                used += 1
            yield from (Segment(text, style) for text, style in parts)
            used += size
        yield Segment.line()

    def _parts(self, index: int, chip: Chip, width: int) -> Iterator[tuple[str, Style]]:
        """The marker, text and id of one chip, cut to fit `width` if need be."""
        style = self._style(index, chip)
        ident = f"·{chip.token_id}" if self.show_ids else ""
        mark = MARK if index == self.current else ""
        room = max(1, width - cell_len(mark + ident))
        text = chip.text if cell_len(chip.text) <= room else fit(chip.text, room)
        if mark:
            yield mark, self.styles.current
        yield text, style
        if ident:
            yield ident, style + ID

    def _style(self, index: int, chip: Chip) -> Style:
        """Reversed for the current chip, italic for generated ones."""
        if index == self.current:
            return self.styles.current
        return self.styles.generated if chip.generated else self.styles.prompt
