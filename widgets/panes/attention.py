"""The Attention pane: one layer's attention weights as a causal heatmap."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text
from textual.reactive import reactive

from stepper.sampler import entropy_bits
from stepper.session import Stage
from widgets.draw.cells import window
from widgets.draw.heatmap import Heatmap
from widgets.draw.palette import SHADES, Scale
from widgets.panes.base import Pane, hint
from widgets.snapshot import Snapshot

Attention = Sequence[tuple[int, tuple[np.ndarray, ...]]]
LABEL_WIDTH = 8
HEADER_LINES = 5  # title, three lines of key labels, and the keys hint
KEYS_HINT = "[ ] layer  , . head  a mean of heads  v numbers"


def attention_window(
    attention: Attention, layer: int, head: int | None, rows: range, cols: range
) -> np.ndarray:
    """Weights of `head` (None: mean over heads) for rows x cols: [R, K].

    Cells above the diagonal (keys after the query) and rows the session dropped
    are NaN, so the causal triangle shows as blank.
    """
    out = np.full((len(rows), len(cols)), np.nan)
    for start, layers in attention:
        if not layers:
            continue
        weights = layers[layer]  # [H, t, S]
        lo, hi = max(start, rows.start), min(start + weights.shape[1], rows.stop)
        if lo >= hi:
            continue
        stop = min(cols.stop, weights.shape[2])
        block = weights[:, lo - start : hi - start, cols.start : stop]  # [H, r, k]
        picked = block.mean(axis=0) if head is None else block[head]
        out[lo - rows.start : hi - rows.start, : stop - cols.start] = picked
    positions = np.arange(rows.start, rows.stop)[:, None]
    out[np.arange(cols.start, cols.stop)[None, :] > positions] = np.nan
    return out


def head_entropies(attention: Attention, layer: int, query: int) -> list[float]:
    """Entropy in bits of each head's attention from the query row: [H]."""
    for start, layers in attention:
        if layers and start <= query < start + layers[layer].shape[1]:
            rows = layers[layer][:, query - start, : query + 1]  # [H, S]
            return [entropy_bits(row) for row in rows]
    return []


def entropy_line(entropies: Sequence[float], head: int | None) -> Text:
    """Per-head entropy at a glance: number and shade per head, selected marked."""
    text = Text("entropy by head (bits): ", style="dim")
    top = max(entropies, default=1.0) or 1.0
    for h, value in enumerate(entropies):
        shade = SHADES[min(len(SHADES) - 1, int(value / top * len(SHADES)))]
        style = "bold reverse" if h == head else ""
        text.append(f"{h}:{value:.2f}{shade}", style=style)
        text.append(" ")
    return text


def lines(text: Text, width: int) -> int:
    """How many lines `text` takes when wrapped at `width` (close enough)."""
    return max(1, -(-len(text.plain) // max(1, width)))


def legend_line(scale: Scale | None = None, numbers: bool = False) -> Text:
    """What each shade (or, in numbers mode, each number) stands for."""
    if numbers:
        text = Text("numbers: attention weight in % of the query's row · ", "dim")
    else:
        text = Text("weight ", style="dim")
        for shade, label in (scale or Scale()).legend():
            text.append(f"{shade}{label} ", style="dim")
    return text.append("blank: a later key (masked)", style="dim")


class AttentionPane(Pane):
    """A window of one layer's attention that follows the current token."""

    TITLE = "Attention"
    KEY = "3"
    TAB = "Attention"

    shown_layer: reactive[int] = reactive(0, repaint=False)
    """The layer shown (the cursor's layer while stepping into Attend)."""
    shown_head: reactive[int | None] = reactive(0, repaint=False)
    """The head shown; None shows the mean over heads."""
    show_values: reactive[bool] = reactive(False, repaint=False)
    """Whether cells print their percentages instead of shade symbols."""

    def watch_snapshot(self) -> None:
        """Follow the cursor's layer while it steps through Attend, then redraw."""
        snapshot = self.snapshot
        if snapshot is not None and snapshot.cursor.layer is not None:
            self.set_reactive(AttentionPane.shown_layer, snapshot.cursor.layer)
        self.redraw()

    def watch_shown_layer(self) -> None:
        """Redraw at the new layer (no new computation)."""
        self.redraw()

    def watch_shown_head(self) -> None:
        """Redraw for the new head."""
        self.redraw()

    def watch_show_values(self) -> None:
        """Redraw with symbols or numbers."""
        self.redraw()

    def draw(self, snapshot: Snapshot) -> RenderableType:
        """Title, heatmap window, per-head entropy, legend and keys."""
        query = snapshot.query
        if not snapshot.reached(Stage.ATTEND) or query is None:
            return hint("attention appears at the Attend stage: press s to step")
        width, height = self.room
        entropies = head_entropies(snapshot.attention, self.shown_layer, query)
        entropy = entropy_line(entropies, self.shown_head)
        legend = lines(legend_line(Scale(0.0, 0.123)), width)  # widest labels
        chrome = HEADER_LINES + lines(entropy, width) + legend
        cell = 4 if self.show_values else 2
        rows = window(query + 1, query, max(1, height - chrome))
        cols = window(query + 1, query, max(1, (width - LABEL_WIDTH - 2) // cell))
        heatmap = self._heatmap(snapshot, rows, cols)
        return Group(
            self._title(snapshot, rows, cols),
            heatmap,
            entropy,
            legend_line(heatmap.scale, self.show_values),
            hint(KEYS_HINT),
        )

    def _heatmap(self, snapshot: Snapshot, rows: range, cols: range) -> Heatmap:
        """The window's weights as a heatmap, scaled to its largest weight."""
        values = attention_window(
            snapshot.attention, self.shown_layer, self.shown_head, rows, cols
        )
        finite = values[np.isfinite(values)]
        labels = [chip.text for chip in snapshot.chips]
        return Heatmap(
            values,
            Scale(0.0, float(finite.max()) if finite.size else 1.0),
            row_labels=[labels[r] for r in rows],
            col_labels=[labels[c] for c in cols],
            current_row=len(rows) - 1,
            current_col=len(cols) - 1,
            show_values=self.show_values,
            label_width=LABEL_WIDTH,
        )

    def _title(self, snapshot: Snapshot, rows: range, cols: range) -> Text:
        """Which layer and head, which query, which keys are in view."""
        head = "mean of heads" if self.shown_head is None else f"head {self.shown_head}"
        query = snapshot.chips[rows.stop - 1].text
        last_layer = snapshot.n_layers - 1
        return Text.assemble(
            (f"layer {self.shown_layer} (of 0–{last_layer}) · {head}", "bold"),
            f" · query ▶{query} at position {rows.stop - 1}",
            (f" · keys {cols.start}–{cols.stop - 1}", "dim"),
        )

    def change_layer(self, delta: int) -> None:
        """Show the next (1) or previous (-1) layer, wrapping around."""
        if self.snapshot is not None:
            self.shown_layer = (self.shown_layer + delta) % self.snapshot.n_layers

    def change_head(self, delta: int) -> None:
        """Show the next or previous head; from the mean, start at head 0."""
        if self.snapshot is not None:
            head = -delta if self.shown_head is None else self.shown_head
            self.shown_head = (head + delta) % self.snapshot.n_heads

    def toggle_mean(self) -> None:
        """Switch between the mean over heads and head 0."""
        self.shown_head = 0 if self.shown_head is None else None
