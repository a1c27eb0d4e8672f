"""The replay screen: the debugger's panes following a recording, event by event.

It is the debugger screen with another key map: play and pause on a timer, step
one event either way, change the speed, restart. The view keys (layers, heads,
panes) work as in the debugger; the keys that would change the session do not.
Each event is performed on the engine thread, so the UI never waits for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from stepper.replay import Replayer
from widgets.keys import REPLAY_BINDINGS, REPLAY_GROUPS
from widgets.opening import open_scenario
from widgets.playback import Playback, Progress
from widgets.screens.help import HelpScreen
from widgets.screens.main import MainScreen, StatusLine, where
from widgets.snapshot import Snapshot

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # events a second


def progress_line(progress: Progress, playing: bool, speed: float) -> str:
    """`event 12 of 40 (step) · playing 2× · matches`, for the status line."""
    kind = f" ({progress.kind})" if progress.kind else ""
    text = f"event {progress.position} of {progress.total}{kind}"
    if playing:
        text += f" · playing {speed:g}×"
    elif progress.ended:
        text += " · ended"
    else:
        text += f" · paused at {speed:g}×"
    if progress.difference is not None:
        return text + f" · differs from event {progress.difference.number}"
    return text + " · matches"


def difference_line(progress: Progress) -> str:
    """The warning shown while a replayed event differs from its recording."""
    found = progress.difference
    if found is None:
        return ""
    return (
        f"⚠ Today's engine differs from the recording at event {found.number} "
        f"({found.kind}): {found.text}"
    )


class ReplayScreen(MainScreen, inherit_bindings=False):
    """Tokens, Attention, Predict/Sample, ... as a recording is played back."""

    BINDINGS = [*Screen.BINDINGS, *REPLAY_BINDINGS]

    playing: reactive[bool] = reactive(False, init=False)
    """Whether events advance on a timer."""
    speed: reactive[float] = reactive(1.0, init=False)
    """Events a second while playing."""

    @dataclass
    class Progressed(Message):
        """The engine thread performed replay events; where the replay is now."""

        progress: Progress

    def __init__(self, replayer: Replayer) -> None:
        super().__init__(replayer.session, open_scenario, None)
        self.playback = Playback(replayer, self.engine, self._report)
        self.progress = Progress(0, len(replayer))
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        """The debugger's widgets, with a warning line above the status line."""
        for widget in super().compose():
            if isinstance(widget, StatusLine):
                yield Static(id="difference")
            yield widget

    def on_mount(self) -> None:
        """Start the (paused) play timer; say what the reader noticed in the file."""
        self._timer = self.set_interval(1 / self.speed, self._tick, pause=True)
        for note in self.playback.replayer.recording.notes:
            self.notify(note, timeout=10)

    # -- progress ---------------------------------------------------------------

    def _report(self, progress: Progress) -> None:
        """Engine thread: hand the replay's progress to the UI."""
        self.post_message(self.Progressed(progress))

    def on_replay_screen_progressed(self, message: Progressed) -> None:
        """Show where the replay is; pause and warn at the first difference."""
        first = self.progress.difference is None
        self.progress = message.progress
        difference = self.progress.difference
        if difference is not None and first:
            self.playing = False
            self.notify(difference_line(self.progress), severity="warning")
        warning = self.query_one("#difference", Static)
        warning.update(difference_line(self.progress))
        warning.set_class(difference is not None, "-shown")
        self._show_status()

    def _hint(self, snapshot: Snapshot) -> str:
        """The status line's replay part (the debugger screen calls it)."""
        return progress_line(self.progress, self.playing, self.speed)

    def _show_status(self) -> None:
        """Redraw the status line without waiting for a snapshot."""
        if self.snapshot is not None:
            line = f"{where(self.snapshot)} │ {self._hint(self.snapshot)}"
            self.query_one(StatusLine).status = line

    # -- playing ----------------------------------------------------------------

    def _tick(self) -> None:
        """Timer: perform the next event once the last one is done and shown."""
        replayer = self.playback.replayer  # read only while the engine is idle
        if self.engine.busy or replayer.position != self.progress.position:
            return  # a difference it found may be about to pause the replay
        if replayer.done:
            self.playing = False
            return
        self.submit(self.playback.forward())

    def watch_playing(self, playing: bool) -> None:
        """Start or stop the timer."""
        if self._timer is not None and playing:
            self._timer.resume()
        elif self._timer is not None:
            self._timer.pause()
        self._show_status()

    def watch_speed(self) -> None:
        """Run the timer at the new speed."""
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_interval(
            1 / self.speed, self._tick, pause=not self.playing
        )
        self._show_status()

    # -- keys -------------------------------------------------------------------

    def action_toggle_play(self) -> None:
        """Play or pause; at the end, play again from the start."""
        if not self.playing and self.progress.ended:
            self.submit(self.playback.restart())
        self.playing = not self.playing

    def action_forward(self) -> None:
        """Pause, and perform the next event."""
        self.playing = False
        self.submit(self.playback.forward())

    def action_backward(self) -> None:
        """Pause, and go back one event."""
        self.playing = False
        self.submit(self.playback.back())

    def action_speed(self, change: int) -> None:
        """One speed faster or slower."""
        index = SPEEDS.index(self.speed) + change
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, index))]

    def action_restart(self) -> None:
        """Pause, and go back to the recording's start."""
        self.playing = False
        self.submit(self.playback.restart())

    def action_help(self) -> None:
        """Show the replay's keys."""
        self.app.push_screen(HelpScreen(REPLAY_GROUPS))
