"""The common shape of a pane: a bordered, scrollable body redrawn per snapshot."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widgets import Static

from widgets.snapshot import Snapshot


def hint(text: str) -> Text:
    """A dim line telling the reader what to press or wait for."""
    return Text(text, style="dim italic")


class Pane(VerticalScroll):
    """A titled pane whose body is redrawn from the latest `Snapshot`."""

    ALLOW_MAXIMIZE = True
    TITLE = ""
    KEY = ""  # the number key that shows this pane
    TAB = ""  # the short name on its tab when panes collapse into tabs

    snapshot: reactive[Snapshot | None] = reactive(
        None, repaint=False, always_update=True
    )
    """The session state this pane draws."""

    def compose(self):  # type: ignore[no-untyped-def]
        """One static body holding the drawing."""
        yield Static(classes="body")

    def on_mount(self) -> None:
        """Show the pane's title (with its key) on the border."""
        self.border_title = f"{self.KEY} {self.TITLE}".strip()

    def watch_snapshot(self) -> None:
        """Redraw when a new snapshot arrives."""
        self.redraw()

    def on_resize(self) -> None:
        """Redraw for the new size (windows and wrapping depend on it)."""
        self.redraw()

    def redraw(self) -> None:
        """Replace the body with a fresh drawing of the snapshot."""
        if not self.is_mounted:
            return
        body = self.query_one(".body", Static)
        snapshot = self.snapshot
        body.update(self.draw(snapshot) if snapshot else hint("loading the session…"))

    @property
    def room(self) -> tuple[int, int]:
        """Columns and rows available to the drawing."""
        size = self.scrollable_content_region.size
        return max(10, size.width), max(3, size.height)

    def draw(self, snapshot: Snapshot) -> RenderableType:
        """The pane's drawing of `snapshot`."""
        raise NotImplementedError
