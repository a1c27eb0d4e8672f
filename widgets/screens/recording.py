"""Recording from the debugger screen: ask for a file, start, stop, say where it went.

The recorder opens on the engine thread, in order with the session's actions (it
reads the session's history and hashes the model, which takes a while for a large
file). A file that exists is replaced only after a yes to "Overwrite FILE?".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.message import Message
from textual.screen import Screen

from stepper.recording import RecordingExistsError
from stepper.session import Session
from widgets.engine import Action, Engine
from widgets.screens.ask import AskScreen
from widgets.screens.confirm import ConfirmScreen


def default_name(session: Session | None) -> str:
    """`stepper-<scenario>.jsonl` in the current folder (the model's name if none)."""
    if session is None:
        return "stepper-session.jsonl"
    scenario = session.scenario
    if scenario is not None and scenario.source is not None:
        return f"stepper-{scenario.source.stem}.jsonl"
    return f"stepper-{session.model.name.lower()}.jsonl"


def start(
    engine: Engine, path: str, overwrite: bool, exists: Callable[[str], None]
) -> Action:
    """An action that starts recording into `path`, or calls `exists` if it must ask."""

    def action(_session: Session) -> str:
        try:
            return engine.start_recording(path, overwrite)
        except RecordingExistsError:
            exists(path)
            return f"{path} exists"

    return action


class RecordingScreen(Screen[None]):
    """The part of the debugger screen that records its session (the `w` key)."""

    engine: Engine
    # The debugger screen provides the queue to its engine thread.
    submit: Callable[..., None]

    @dataclass
    class Exists(Message):
        """The file to record into exists: ask before replacing it."""

        path: str

    @dataclass
    class Noticed(Message):
        """The engine thread has something to tell (a recording stopped)."""

        text: str

    def notice(self, text: str) -> None:
        """Engine thread: tell the user something, as a notification."""
        self.post_message(self.Noticed(text))

    def on_recording_screen_noticed(self, message: Noticed) -> None:
        """Show the notice."""
        self.notify(message.text)

    def on_unmount(self) -> None:
        """Stop recording when the app closes: the file ends with its stop mark."""
        self.engine.stop_recording()

    def action_record(self) -> None:
        """Start recording into a file (asked for), or stop and say where it went."""
        stopped = self.engine.stop_recording()
        if stopped:
            self.notify(stopped)
            self.submit(lambda _session: stopped)  # redraws the indicator
            return
        self.app.push_screen(
            AskScreen(
                "Record the session into",
                default_name(self.engine.session),
                "a new .jsonl file; the session so far is written first · Esc cancels",
            ),
            self._record_into,
        )

    def _record_into(self, path: str | None, overwrite: bool = False) -> None:
        """Start recording into the file answered, unless none was."""
        if path and path.strip():
            self.submit(start(self.engine, path.strip(), overwrite, self._exists))

    def _exists(self, path: str) -> None:
        """Engine thread: the file exists; ask on the UI thread."""
        self.post_message(self.Exists(path))

    def on_recording_screen_exists(self, message: Exists) -> None:
        """Ask whether to replace the file; record into it only on a yes."""
        path = message.path

        def answered(yes: bool | None) -> None:
            if yes:
                self._record_into(path, overwrite=True)
            else:
                self.notify(f"{path} kept as it was; not recording")

        question = ConfirmScreen(
            f"Overwrite {path}?", "y replaces the file · n or Esc keeps it"
        )
        self.app.push_screen(question, answered)
