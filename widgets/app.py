"""The stepper app: a session, its debugger screen, and the command palette.

`run_app` is what the `stepper` command calls. The session is either given
(already built by the command line) or built on the engine thread from a
scenario, so the window opens at once even when a large model is loading.
`run_replay` is what `stepper replay FILE` calls: the same panes following a
recording.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import partial

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.logging import TextualHandler
from textual.screen import Screen

from stepper.recording import Recorder
from stepper.replay import Replayer
from stepper.session import Session
from widgets.keys import ALL, REPLAY_ALL
from widgets.opening import Opened, open_scenario
from widgets.screens.main import MainScreen
from widgets.screens.replay import ReplayScreen

Factory = Callable[[], Opened]


class StepperApp(App[None]):
    """Step through a language model's generation with the keyboard."""

    CSS_PATH = ["app.tcss", "panes.tcss", "recording.tcss"]
    TITLE = "stepper"
    BINDINGS = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        session: Session | None = None,
        *,
        factory: Factory | None = None,
        opener: Callable[[str], Opened] = open_scenario,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__()
        if session is None and factory is None:
            factory = open_scenario
        self.session = session
        self.factory = factory
        self.opener = opener
        self.recorder = recorder

    def get_default_screen(self) -> Screen[None]:
        """The debugger screen, loading the session first if it was not given."""
        factory = self.factory
        start = None if factory is None else (lambda _session: factory())
        return MainScreen(self.session, self.opener, start, self.recorder)

    async def action_quit(self) -> None:
        """Quit at once: a run on the engine thread stops at its next stage."""
        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.engine.interrupt()
        self.exit()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's own commands, then every debugger action by its description."""
        yield from super().get_system_commands(screen)
        if not isinstance(screen, MainScreen):
            return
        for binding in REPLAY_ALL if isinstance(screen, ReplayScreen) else ALL:
            # The title already says what it does; the help line adds the key.
            key = f"key {self.get_key_display(binding)}"
            help_text = f"{binding.tooltip} · {key}" if binding.tooltip else key
            run = partial(screen.run_action, binding.action)
            yield SystemCommand(binding.description, help_text, run)


class ReplayApp(StepperApp):
    """Replay a recording with the debugger's panes."""

    TITLE = "stepper replay"

    def __init__(self, replayer: Replayer) -> None:
        super().__init__(replayer.session)
        self.replayer = replayer

    def get_default_screen(self) -> Screen[None]:
        """The replay screen, at the recording's first event."""
        return ReplayScreen(self.replayer)


def run_app(
    session: Session | None = None,
    *,
    factory: Factory | None = None,
    recorder: Recorder | None = None,
) -> None:
    """Open the debugger on `session` (or on what `factory` opens) and wait.

    With a `recorder` (`stepper --record FILE`) the timeline shows it recording;
    it stops when the app closes, or when another session is opened. The engine's
    log records go to Textual's devtools console (`textual console`) while the app
    owns the terminal.
    """
    logging.getLogger("stepper").addHandler(TextualHandler())
    try:
        StepperApp(session, factory=factory, recorder=recorder).run()
    finally:
        if recorder is not None:
            recorder.stop()


def run_replay(replayer: Replayer) -> None:
    """Replay a recording in the app (`stepper replay FILE`) and wait."""
    logging.getLogger("stepper").addHandler(TextualHandler())
    ReplayApp(replayer).run()
