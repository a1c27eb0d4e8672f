"""The Tokens pane: the prompt and the continuation as chips, and BPE replayed."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text
from textual.reactive import reactive

from stepper.session import Stage
from stepper.tokenizer import Encoding
from widgets.draw.cells import plural
from widgets.draw.chips import ChipStyles, TokenChips
from widgets.draw.merges import MergeReplay
from widgets.panes.base import Pane, hint
from widgets.snapshot import Snapshot

CHIP_CELLS = 6  # a short chip with its id, separator included


def current_chip(snapshot: Snapshot) -> int | None:
    """The chip to highlight: the token just sampled, or the one being read."""
    if snapshot.stage == Stage.TOKENIZE:
        return None
    if snapshot.stage == Stage.SAMPLE:
        return len(snapshot.chips) - 1
    return snapshot.query


def summary(snapshot: Snapshot) -> Text:
    """How many tokens the prompt has and how many were generated."""
    made = len(snapshot.chips) - snapshot.n_prompt
    return Text(
        f"prompt {plural(snapshot.n_prompt, 'token')} · generated {made} · "
        "chips read text·id; ␣ space, ⏎ newline, <E6> a byte",
        style="dim",
    )


class TokensPane(Pane):
    """Token chips with ids; in the Tokenize stage, the BPE merges step by step."""

    COMPONENT_CLASSES = {"tokens--prompt", "tokens--generated", "tokens--current"}

    TITLE = "Tokens"
    KEY = "1"
    TAB = "Tokens"

    _encoding: Encoding | None = None  # the encoding the replay belongs to

    merges_done: reactive[int] = reactive(0, repaint=False)
    """How many merges the replay shows; it starts again at 0 for a new prompt."""

    def watch_snapshot(self) -> None:
        """Restart the merge replay when the prompt's encoding changes."""
        snapshot = self.snapshot
        encoding = None if snapshot is None else snapshot.encoding
        if encoding is not self._encoding:
            self._encoding = encoding
            self.set_reactive(TokensPane.merges_done, 0)
        self.redraw()

    def watch_merges_done(self) -> None:
        """Redraw the replay at its new step."""
        self.redraw()

    def draw(self, snapshot: Snapshot) -> RenderableType:
        """Chips (the latest ones, on a long context), and the merge replay."""
        current = current_chip(snapshot)
        first = max(0, len(snapshot.chips) - self._chip_budget())
        chips = TokenChips(
            snapshot.chips[first:],
            current=None if current is None else current - first,
            styles=self._chip_styles(),
        )
        head = summary(snapshot)
        if first:
            head.append(f" · showing the last {len(snapshot.chips) - first}", "dim")
        if snapshot.stage != Stage.TOKENIZE:
            return Group(head, chips)
        return Group(self._replay(snapshot), chips)

    def _chip_budget(self) -> int:
        """How many chips to draw: about twice what fits, so scrolling back works."""
        width, height = self.room
        return max(32, 2 * width * height // CHIP_CELLS)

    def _chip_styles(self) -> ChipStyles:
        """Chip styles from the theme, through this pane's component classes."""
        return ChipStyles(
            *(
                self.get_component_rich_style(f"tokens--{name}", partial=True)
                for name in ("prompt", "generated", "current")
            )
        )

    def _replay(self, snapshot: Snapshot) -> RenderableType:
        """The words after `merges_done` merges, or a note when there are none."""
        encoding = snapshot.encoding
        if not encoding.merges:
            return hint("no BPE merges: every piece is already a token")
        done = min(self.merges_done, len(encoding.merges))
        return MergeReplay(encoding.words, encoding.merges, done)

    def replay_step(self, delta: int) -> None:
        """Show one merge more (delta 1) or fewer (delta -1)."""
        snapshot = self.snapshot
        if snapshot is None:
            return
        total = len(snapshot.encoding.merges)
        self.merges_done = max(0, min(total, self.merges_done + delta))
