"""A yes/no question, such as whether to replace a file; No is the default."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class ConfirmScreen(ModalScreen[bool]):
    """Ask a question; answer True for y or Yes, False for n, Esc or No."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    AUTO_FOCUS = "#no"

    def __init__(self, question: str, help_text: str = "") -> None:
        super().__init__()
        self.question = question
        self.help_text = help_text

    def compose(self) -> ComposeResult:
        """The question, Yes and No, and the help line."""
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question")
            with Horizontal(classes="answers"):
                yield Button("Yes", id="yes", variant="warning")
                yield Button("No", id="no", variant="primary")
            yield Label(self.help_text, classes="help")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        """Answer with the button pressed."""
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        """Answer by key."""
        self.dismiss(yes)
