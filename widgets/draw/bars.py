"""Horizontal probability bars: token, id, logit, probability and a bar per row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style

from widgets.draw.cells import fit, fit_right, logit_number, runs
from widgets.draw.palette import Scale

EIGHTHS = " ▏▎▍▌▋▊▉█"
DROPPED_BAR = "░"
DIM = Style(dim=True)
CHOSEN = Style(bold=True, reverse=True)
CUT = Style(dim=True, italic=True)


@dataclass(frozen=True)
class Bar:
    """One candidate token as a stage of the sampler saw it."""

    token: str  # readable text of the token (whitespace made visible)
    token_id: int
    logit: float
    prob: float  # after this stage; for a removed token, what it had before
    kept: bool = True
    chosen: bool = False


def bar_text(fraction: float, width: int) -> str:
    """A bar `fraction` (0..1) of `width` cells long, in eighths of a cell."""
    eighths = round(max(0.0, min(1.0, fraction)) * width * 8)
    full, part = divmod(eighths, 8)
    text = "█" * full + (EIGHTHS[part] if part else "")
    return text.ljust(width)


@dataclass
class ProbabilityBars:
    """The top candidates as bars, with the stage's cut-off drawn as a rule.

    Rows are drawn in the order given; a rule naming `cutoff` separates the last
    kept row from the first removed one. Removed rows are dimmed and crossed (✗).
    """

    rows: Sequence[Bar]
    cutoff: str = ""  # what removed the rows below the rule, e.g. "top-k 3"
    chosen_label: str = "sampled"
    token_width: int = 12
    scale: Scale = field(default_factory=Scale)

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> RenderResult:
        """One line per row, with the cut-off rule where kept turns to removed."""
        width = options.max_width
        top = max((bar.prob for bar in self.rows), default=0.0) or 1.0
        was_kept = True
        for bar in self.rows:
            if was_kept and not bar.kept:
                yield from self._rule(width)
            was_kept = bar.kept
            yield from runs(self._cells(bar, top, width))
            yield Segment.line()

    def _rule(self, width: int) -> RenderResult:
        """The cut-off line: a dashed rule with what made the cut."""
        label = f" ✂ cut by {self.cutoff} " if self.cutoff else " ✂ cut "
        yield Segment(("╌╌" + label + "╌" * width)[:width], CUT)
        yield Segment.line()

    def _cells(
        self, bar: Bar, top: float, width: int
    ) -> list[tuple[str, Style | None]]:
        """Marker, token, id, logit, probability and bar of one row."""
        mark = "✗" if not bar.kept else "▶" if bar.chosen else " "
        head = (
            f"{mark} {fit(bar.token, self.token_width)} "
            f"{fit_right(str(bar.token_id), 6)} "
            f"{logit_number(bar.logit, 8)} {bar.prob:7.2%} "
        )
        tail = f" ◀ {self.chosen_label}" if bar.chosen else ""
        room = max(1, width - len(head) - len(tail))
        base = CHOSEN if bar.chosen else DIM if not bar.kept else None
        body = bar_text(bar.prob / top, room).rstrip() or "▏"
        pad = " " * (room - len(body))
        if not bar.kept:
            return [(head, base), (DROPPED_BAR * len(body) + pad, DIM)]
        return [(head, base), (body, self.scale.style(bar.prob)), (pad + tail, base)]
