"""The replay's actions for the engine thread: the next event, back one, restart.

A `Replayer` performs a recording's events on a session of its own; going back
replays from the start (the replayer's `restart` builds a new session, which the
engine then follows). After each action the playback reports a `Progress`, so the
replay screen can say where it is and whether today's engine still agrees.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stepper.replay import Replayer, ReplayStep
from stepper.session import Session
from widgets.engine import Action, Engine


@dataclass(frozen=True)
class Difference:
    """The first event whose result today differs from the recording."""

    number: int  # the event's 1-based position in the recording
    kind: str  # the event, as the session names it (step, run, force, ...)
    text: str  # "file:line: what differs"


@dataclass(frozen=True)
class Progress:
    """Where a replay is, after one of its actions."""

    position: int  # events performed so far
    total: int  # events in the recording
    kind: str = ""  # the last event performed; "" at the start
    difference: Difference | None = None  # among the events performed so far

    @property
    def ended(self) -> bool:
        """Whether every event has been performed."""
        return self.position >= self.total


class Playback:
    """Performs a recording's events on the engine thread, reporting each time."""

    def __init__(
        self, replayer: Replayer, engine: Engine, report: Callable[[Progress], None]
    ) -> None:
        self.replayer = replayer
        self.engine = engine
        self.report = report
        self.kind = ""
        self.difference: Difference | None = None

    @property
    def progress(self) -> Progress:
        """Where the replay is now (read on the engine thread)."""
        replayer = self.replayer
        return Progress(replayer.position, len(replayer), self.kind, self.difference)

    def forward(self) -> Action:
        """Perform the next recorded event."""

        def action(_session: Session) -> str:
            step = self.replayer.advance()
            if step is not None:
                self._performed(step)
            self.report(self.progress)
            return "" if step is not None else "the recording has ended"

        return action

    def back(self) -> Action:
        """Go back one event: replay from the start up to the one before."""

        def action(_session: Session) -> str:
            if self.replayer.position == 0:
                return "already at the recording's start"
            self._seek(self.replayer.position - 1)
            return ""

        return action

    def restart(self) -> Action:
        """Go back to the recording's start."""

        def action(_session: Session) -> str:
            self._seek(0)
            return ""

        return action

    def _seek(self, position: int) -> None:
        """Replay from the start up to `position` events; the engine follows."""
        self.replayer.restart()
        self.kind, self.difference = "", None
        while self.replayer.position < position:
            step = self.replayer.advance()
            if step is None:
                break
            self._performed(step)
        self.engine.session = self.replayer.session
        self.report(self.progress)

    def _performed(self, step: ReplayStep) -> None:
        """Note the event's kind, and its difference if it is the first."""
        assert step.line.event is not None
        self.kind = step.line.event.kind
        if step.difference is not None and self.difference is None:
            self.difference = Difference(step.number, self.kind, step.difference)
