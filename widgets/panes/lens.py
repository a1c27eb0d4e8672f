"""The Logit lens pane: what each layer's residual stream would predict next."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from rich.console import Group, RenderableType
from rich.text import Text
from textual.message import Message

from stepper.session import Stage
from stepper.transformer import Capture, Transformer
from widgets.draw.bars import bar_text
from widgets.draw.cells import fit
from widgets.draw.palette import Scale
from widgets.panes.base import Pane, hint
from widgets.snapshot import Snapshot

TOP = 3  # predictions per layer
# The lens waits this long after a step before computing, so stepping quickly
# (or a run) does not queue a (L+1) x V matrix product per token.
SETTLE_SECONDS = 0.15
Row = tuple[tuple[str, float], ...]  # (token text, probability), best first
Busy = Callable[[], bool]  # whether the engine thread is working


def lens_rows(transformer: Transformer, capture: Capture) -> tuple[Row, ...]:
    """The logit lens of a capture as readable rows, one per residual: [L+1]."""
    ids, probs = transformer.logit_lens(capture, TOP)  # [L+1, k] each
    show = transformer.model.tokenizer.display
    return tuple(
        tuple((show(int(i)), float(p)) for i, p in zip(r_ids, r_probs, strict=True))
        for r_ids, r_probs in zip(ids, probs, strict=True)
    )


def visible_rows(snapshot: Snapshot) -> int:
    """How many lens rows the cursor has reached (embedding, then each layer)."""
    layer = snapshot.cursor.layer
    if snapshot.stage == Stage.EMBED:
        return 1
    if snapshot.stage == Stage.ATTEND and layer is not None:
        return layer + 2
    return snapshot.n_layers + 1


def lens_table(rows: tuple[Row, ...], shown: int, width: int) -> Text:
    """One line per residual: its name, then the top predictions with bars."""
    scale, text = Scale(), Text()
    cell = max(12, (width - 8) // TOP)
    for index, row in enumerate(rows[:shown]):
        name = "embed" if index == 0 else f"layer {index - 1}"
        text.append(f"{name:<8}", style="bold" if index == shown - 1 else "dim")
        for token, p in row:
            text.append(fit(f"{token} {p:.0%}", cell - 5))
            text.append(bar_text(p, 4), style=scale.style(p))
            text.append(" ")
        text.append("\n")
    return text


class LensPane(Pane):
    """The top predictions of the residual stream after the embedding and each layer."""

    TITLE = "Logit lens"
    KEY = "5"
    TAB = "Lens"

    @dataclass
    class Ready(Message):
        """The logit lens of one forward pass has been computed."""

        capture: Capture
        rows: tuple[Row, ...]

    def __init__(
        self,
        *,
        id: str | None = None,  # noqa: A002  (Textual's own name for it)
        busy: Busy = lambda: False,
    ) -> None:
        super().__init__(id=id)
        self.busy = busy
        self._capture: Capture | None = None
        self._pending: Capture | None = None
        self._rows: tuple[Row, ...] = ()

    @property
    def pending(self) -> bool:
        """Whether the lens of the shown capture is still to be computed."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.capture is None:
            return False
        return snapshot.capture is not self._capture and snapshot.reached(Stage.EMBED)

    def draw(self, snapshot: Snapshot) -> RenderableType:
        """The lens table, computing it in a thread worker once stepping pauses."""
        capture = snapshot.capture
        if capture is None or not snapshot.reached(Stage.EMBED):
            return hint("the logit lens appears once the token is embedded")
        if capture is not self._capture:
            if capture is not self._pending:
                self._pending = capture
                self.set_timer(SETTLE_SECONDS, partial(self._start, capture))
            return hint("computing the logit lens…")
        width, _ = self.room
        title = Text(
            "what each layer would predict for the next token (final norm and "
            "classifier applied to its residual stream)",
            "bold",
        )
        return Group(title, lens_table(self._rows, visible_rows(snapshot), width))

    def _start(self, capture: Capture) -> None:
        """Compute the lens of `capture` off the UI thread, if still current."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.capture is not capture:
            return
        transformer = snapshot.transformer
        if transformer is None:
            return
        if self.busy():  # the engine is stepping on: look again later
            self.set_timer(SETTLE_SECONDS, partial(self._start, capture))
            return
        work = partial(self._compute, transformer, capture)
        # A description keeps Textual from repr()-ing the capture's arrays.
        self.run_worker(
            work, thread=True, exclusive=True, group="lens", description="logit lens"
        )

    def _compute(self, transformer: Transformer, capture: Capture) -> None:
        """Runs in a thread: compute and post the rows."""
        self.post_message(self.Ready(capture, lens_rows(transformer, capture)))

    def on_lens_pane_ready(self, message: Ready) -> None:
        """Keep the rows and redraw."""
        self._capture, self._rows = message.capture, message.rows
        self.redraw()
