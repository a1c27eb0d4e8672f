"""A one-line question: a value to type, with what is allowed said underneath."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label


class AskScreen(ModalScreen[str | None]):
    """Ask for one line of text; dismiss with it on Enter, or None on Escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, value: str = "", help_text: str = "") -> None:
        super().__init__()
        self.question = question
        self.value = value
        self.help_text = help_text

    def compose(self) -> ComposeResult:
        """The question, the input and the help line."""
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            yield Input(value=self.value, select_on_focus=True)
            yield Label(self.help_text, classes="help")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Answer with what was typed."""
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        """Answer nothing."""
        self.dismiss(None)
