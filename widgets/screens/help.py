"""The help screen: every key, grouped, with what it does."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from widgets.keys import GROUPS

ABOUT = (
    "stepper steps through a language model's generation. Each token goes through "
    "Tokenize (first token only), Embed, Attend, Predict and Sample. Every command "
    "is also in the command palette (ctrl+p)."
)


def key_table(groups: dict[str, list[Binding]] = GROUPS) -> Table:
    """A table of every binding: group, key and description."""
    table = Table(box=None, show_header=False, pad_edge=False, expand=True)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_column()
    for group, bindings in groups.items():
        for index, binding in enumerate(bindings):
            text = binding.tooltip or binding.description
            table.add_row(group if index == 0 else "", _key(binding), text)
        table.add_row("", "", "")
    table.add_row("App", "ctrl+p", "Command palette: every action by name")
    table.add_row("", "q, ctrl+c", "Quit (a run stops first)")
    return table


def _key(binding: Binding) -> str:
    """How a binding's key reads on screen."""
    names = {"question_mark": "?", "escape": "Esc"}
    return binding.key_display or names.get(binding.key, binding.key)


class HelpScreen(ModalScreen[None]):
    """A scrollable list of every key; any of Esc, q or ? closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark", "dismiss_help", "Close"),
    ]

    def __init__(self, groups: dict[str, list[Binding]] = GROUPS) -> None:
        super().__init__()
        self.groups = groups  # the keys of the screen asking for help

    def compose(self) -> ComposeResult:
        """The introduction and the key table."""
        with VerticalScroll(classes="dialog help-dialog"):
            yield Static(ABOUT, classes="about")
            yield Static(key_table(self.groups))

    def action_dismiss_help(self) -> None:
        """Close the help."""
        self.dismiss(None)
