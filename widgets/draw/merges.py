"""The BPE merges of a text replayed one at a time, as pieces per word."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from stepper.tokenizer import Merge, replay
from widgets.draw.cells import fit, plural

PIECE = Style(underline=True)
JUST_MERGED = Style(bold=True, reverse=True)
DIM = Style(dim=True)


def visible_piece(piece: str) -> str:
    """A vocabulary piece with its whitespace markers shown as ␣ and ⏎."""
    for marker, shown in (("▁", "␣"), ("Ġ", "␣"), (" ", "␣"), ("Ċ", "⏎"), ("\n", "⏎")):
        piece = piece.replace(marker, shown)
    return piece


@dataclass
class MergeReplay:
    """The words of a text after the first `done` merges, the last one highlighted.

    Pieces are separated by `│`; the piece the latest merge made is reversed.
    """

    words: Sequence[Sequence[str]]  # first pieces of each word, as encoded
    merges: Sequence[Merge]
    done: int  # how many merges to apply, 0..len(merges)
    show: Callable[[str], str] = visible_piece

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        """A heading naming the merge, then the pieces, wrapped to the width."""
        width = options.max_width
        yield Segment(fit(self._heading(), width), Style(bold=True))
        yield Segment.line()
        state = replay([list(w) for w in self.words], list(self.merges[: self.done]))
        used = 0
        for index, pieces in enumerate(state):
            for position, piece in enumerate(pieces):
                text = self.show(piece)
                size = cell_len(text) + 1
                if used and used + size > width:
                    yield Segment.line()
                    used = 0
                yield Segment(text, self._style(index, position))
                yield Segment("│", DIM)
                used += size
        yield Segment.line()

    def _heading(self) -> str:
        """Which merge this is, and what it joined."""
        total = len(self.merges)
        if self.done == 0:
            to_go = plural(total, "merge")
            return f"BPE before any merge: characters · {to_go} to go (press >)"
        last = self.merges[self.done - 1]
        left, right = self.show(last.left), self.show(last.right)
        return f"merge {self.done} of {total} (< >): {left} + {right} → {left}{right}"

    def _style(self, word: int, position: int) -> Style:
        """Reverse the piece made by the latest merge; underline the others."""
        if self.done:
            last = self.merges[self.done - 1]
            if (last.word, last.position) == (word, position):
                return JUST_MERGED
        return PIECE
