"""The common shape of a pane: a bordered Line API view redrawn per snapshot.

A pane renders its drawing once per change into a list of strips and serves them
line by line, so a new snapshot costs one render and no layout of child widgets,
and scrolling only moves a window over strips already made.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import RenderableType
from rich.text import Text
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from widgets.snapshot import Snapshot


def hint(text: str) -> Text:
    """A dim line telling the reader what to press or wait for."""
    return Text(text, style="dim italic")


class Pane(ScrollView, can_focus=True):
    """A titled pane whose body is drawn from the latest `Snapshot`."""

    TITLE = ""
    KEY = ""  # the number key that shows this pane
    TAB = ""  # the short name on its tab when panes collapse into tabs
    # Every pane class defines how it draws a snapshot; the base only lays it out.
    draw: Callable[[Snapshot], RenderableType]

    snapshot: reactive[Snapshot | None] = reactive(
        None, repaint=False, always_update=True
    )
    """The session state this pane draws."""

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self._strips: list[Strip] = []
        self._blank = Strip([])  # until the first redraw knows width and style

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
        """Render a fresh drawing of the snapshot into strips."""
        if not self.is_mounted:
            return
        snapshot = self.snapshot
        drawing = self.draw(snapshot) if snapshot else hint("loading the session…")
        width, style = self.room[0], self.rich_style  # rich_style walks the DOM
        console = self.app.console
        options = console.options.update(width=width, height=None, highlight=False)
        lines = console.render_lines(drawing, options, style=style, pad=True)
        self._strips = [Strip(line, width) for line in lines]
        self._blank = Strip.blank(width, style)
        self.virtual_size = Size(width, len(self._strips))
        self.refresh()

    def render_line(self, y: int) -> Strip:
        """The strip at line `y` of the view, after scrolling."""
        scroll_x, scroll_y = self.scroll_offset
        index = y + scroll_y
        strip = self._strips[index] if index < len(self._strips) else self._blank
        if scroll_x:
            return strip.crop(scroll_x, scroll_x + self.size.width)
        return strip

    @property
    def room(self) -> tuple[int, int]:
        """Columns and rows available to the drawing."""
        size = self.scrollable_content_region.size
        return max(10, size.width), max(3, size.height)
