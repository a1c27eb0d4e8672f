"""Choose the token to force: pick one of the candidates, or type one."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option


class ForceScreen(ModalScreen[str | None]):
    """A candidate list and an input; answers `#id` or the typed token text."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, candidates: list[tuple[int, str, float]]) -> None:
        super().__init__()
        self.candidates = candidates  # (token id, readable text, probability)

    def compose(self) -> ComposeResult:
        """Title, candidates, input and help."""
        with Vertical(classes="dialog"):
            yield Label("Force the next token", classes="question")
            yield OptionList(
                *(
                    Option(f"{text:<16} ·{token_id:<6} {p:7.2%}", id=str(token_id))
                    for token_id, text, p in self.candidates
                )
            )
            yield Input(placeholder="or type a token: ␣the, the, #123 for an id")
            yield Label(
                "Enter picks · Tab moves to the input · Esc cancels", classes="help"
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Answer with the picked candidate's id."""
        self.dismiss(f"#{event.option.id}")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Answer with the typed token, if any."""
        self.dismiss(event.value or None)

    def action_cancel(self) -> None:
        """Answer nothing."""
        self.dismiss(None)
