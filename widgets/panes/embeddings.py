"""The Embeddings pane: the current token's vector and how alike the latest ones are."""

from __future__ import annotations

import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text
from textual.reactive import reactive

from stepper.session import Stage
from widgets.draw.cells import Beside, window
from widgets.draw.heatmap import Heatmap
from widgets.draw.palette import Scale
from widgets.panes.base import Pane, hint
from widgets.snapshot import SIMILAR_TOKENS, Snapshot

LABEL_WIDTH = 8
SIGNED_CELL = 3  # sign, shade and a gap


def fold(vector: np.ndarray, width: int) -> np.ndarray:
    """A vector [C] laid out in rows of `width`, padded with NaN: [ceil(C/w), w]."""
    rows = -(-vector.size // width)
    out = np.full(rows * width, np.nan)
    out[: vector.size] = vector
    return out.reshape(rows, width)


def signed_scale(values: np.ndarray) -> Scale:
    """A symmetric diverging scale reaching the largest magnitude in `values`."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(finite.max()) if finite.size else 1.0
    return Scale(-top, top, "purple-orange")


def signed(value: float) -> str:
    """A signed value in two decimals without the leading zero (`+.42`)."""
    return f"{value:+.2f}".replace("0.", ".")


class EmbeddingsPane(Pane):
    """The current token's embedding as a folded heatmap, and prompt similarity."""

    TITLE = "Embeddings"
    KEY = "2"
    TAB = "Embed"

    show_values: reactive[bool] = reactive(False, repaint=False)
    """Whether cells print their numbers instead of symbols."""

    def watch_show_values(self) -> None:
        """Redraw with symbols or numbers."""
        self.redraw()

    def draw(self, snapshot: Snapshot) -> RenderableType:
        """The vector (and position vector) beside the prompt's similarity."""
        capture = snapshot.capture
        if capture is None or not snapshot.reached(Stage.EMBED):
            return hint("embeddings appear at the Embed stage: press s to step")
        width, _ = self.room
        tokens = snapshot.similarity.shape[0] if snapshot.similarity is not None else 0
        cell = 6 if self.show_values else SIGNED_CELL
        shown = max(1, min(SIMILAR_TOKENS, tokens))
        right = LABEL_WIDTH + 2 + shown * cell
        left = width - right - 2
        if left < 24:  # too narrow for two columns: one under the other
            return Group(
                self._vectors(snapshot, width), self._similarity(snapshot, width)
            )
        columns = Beside(
            self._vectors(snapshot, left), self._similarity(snapshot, right), left
        )
        return Group(self._title(snapshot), columns)

    def _title(self, snapshot: Snapshot) -> Text:
        """Which token, how wide its vector, and the residual norm per layer."""
        capture = snapshot.capture
        assert capture is not None and snapshot.query is not None
        chip = snapshot.chips[snapshot.query]
        norms = " ".join(f"{n:.1f}" for n in capture.residual_norms[:, -1])  # [L+1]
        return Text.assemble(
            (f"▶{chip.text}·{chip.token_id}", "bold"),
            f" · C = {capture.token_embeddings.shape[1]}",
            (f" · residual norm by layer: {norms}", "dim"),
        )

    def _vectors(self, snapshot: Snapshot, width: int) -> RenderableType:
        """The token embedding, and the position embedding if the model learns one.

        Each vector gets as many rows as the pane shows (split between the two),
        and says which dimensions are in view when it does not fit; maximizing
        the pane (key 2) shows more.
        """
        capture = snapshot.capture
        assert capture is not None
        vectors = [("token embedding", capture.token_embeddings[-1])]
        if capture.position_embeddings is not None:
            vectors.append(("position embedding", capture.position_embeddings[-1]))
        per_row = max(4, (width - 1) // (6 if self.show_values else SIGNED_CELL))
        rows = max(2, (self.room[1] - 2) // len(vectors) - 1)
        parts: list[RenderableType] = []
        for name, vector in vectors:
            shown = min(vector.size, rows * per_row)
            note = (
                ""
                if shown == vector.size
                else f" (dims 0–{shown - 1} of {vector.size})"
            )
            parts.append(Text.assemble((name, "bold"), (note, "dim")))
            parts.append(self._vector_of(vector, shown, per_row))
        return Group(*parts)

    def _vector_of(self, vector: np.ndarray, shown: int, per_row: int) -> Heatmap:
        """The first `shown` values folded into rows, on the whole vector's scale."""
        values = vector.astype(np.float64)
        folded = fold(values[:shown], per_row)
        scale = signed_scale(values)
        return Heatmap(folded, scale, show_values=self.show_values, number=signed)

    def _similarity(self, snapshot: Snapshot, width: int) -> RenderableType:
        """Cosine similarity of the latest tokens' embeddings, the cursor's last."""
        matrix = snapshot.similarity
        if matrix is None:
            return hint("no prompt embeddings yet")
        cell = 6 if self.show_values else SIGNED_CELL
        size = max(1, min(SIMILAR_TOKENS, (width - LABEL_WIDTH - 2) // cell))
        keep = window(matrix.shape[0], matrix.shape[0] - 1, size)
        labels = [snapshot.chips[snapshot.similar[i]].text for i in keep]
        heatmap = Heatmap(
            matrix[np.ix_(keep, keep)],
            Scale(-1.0, 1.0, "purple-orange"),
            row_labels=labels,
            col_labels=labels,
            show_values=self.show_values,
            number=signed,
            label_width=LABEL_WIDTH,
        )
        title = Text("cosine similarity", "bold")
        return Group(title, heatmap)
