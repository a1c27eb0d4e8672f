"""The stepper app: a session, its debugger screen, and the command palette.

`run_app` is what the `stepper` command calls. The session is either given
(already built by the command line) or built on the engine thread from a
scenario, so the window opens at once even when a large model is loading.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.logging import TextualHandler
from textual.screen import Screen

from stepper.session import Session
from widgets.keys import ALL
from widgets.opening import Opened, open_scenario
from widgets.screens.main import MainScreen

Factory = Callable[[], Opened]


class StepperApp(App[None]):
    """Step through a language model's generation with the keyboard."""

    CSS_PATH = ["app.tcss", "panes.tcss"]
    TITLE = "stepper"
    BINDINGS = [Binding("q", "quit", "Quit")]

    def __init__(
        self,
        session: Session | None = None,
        *,
        factory: Factory | None = None,
        opener: Callable[[str], Opened] = open_scenario,
    ) -> None:
        super().__init__()
        if session is None and factory is None:
            factory = open_scenario
        self.session = session
        self.factory = factory
        self.opener = opener

    def get_default_screen(self) -> Screen[None]:
        """The debugger screen, loading the session first if it was not given."""
        factory = self.factory
        start = None if factory is None else (lambda _session: factory())
        return MainScreen(self.session, self.opener, start)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's own commands, then every debugger action by its description."""
        yield from super().get_system_commands(screen)
        if not isinstance(screen, MainScreen):
            return
        for binding in ALL:
            help_text = binding.tooltip or binding.description
            run = partial(screen.run_action, binding.action)
            yield SystemCommand(
                binding.description, f"{help_text} ({binding.key})", run
            )


def run_app(session: Session | None = None, *, factory: Factory | None = None) -> None:
    """Open the debugger on `session` (or on what `factory` opens) and wait.

    The engine's log records go to Textual's devtools console (`textual console`)
    while the app owns the terminal.
    """
    logging.getLogger("stepper").addHandler(TextualHandler())
    StepperApp(session, factory=factory).run()
