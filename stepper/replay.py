"""Replaying a recording: its events performed again on a new session, and checked.

A `Replayer` builds a session from the recording's header and performs the events
one at a time, comparing what today's engine produces with what was recorded: the
event as the session reports it, the cursor, and each sampled token's id, draw,
probability and highest logits. `check` runs the whole recording headless and
raises at the first difference; the app's replay steps through it with `advance`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from stepper.errors import RecordingError, StepperError
from stepper.load import load_model
from stepper.model import Model
from stepper.recording import (
    TokenRecord,
    Tracker,
    describe_cursor,
    sampled_tokens,
    scenario_of,
)
from stepper.recording_read import Line, Recording, read_recording
from stepper.session import Cursor, Session, TokenStep

__all__ = [
    "Recording",
    "ReplayStep",
    "Replayer",
    "load_recorded_model",
    "read_recording",
]

# Logits from another machine's BLAS may differ in the last float32 bits; anything
# a reader could see (three decimals) is far above this.
LOGIT_TOLERANCE = 1e-3
PROBABILITY_TOLERANCE = 1e-4


def load_recorded_model(recording: Recording, ref: str | None = None) -> Model:
    """The model a recording was made with, refused if its content differs."""
    identity, where = recording.header.model, recording.where(1)
    ref = ref or identity.ref
    try:
        model = load_model(ref)
    except StepperError as error:
        raise RecordingError(
            f"{where}: the recorded model cannot be loaded ({error}); pass --model "
            "with a copy of the file it was recorded with"
        ) from None
    if model.sha256 != identity.sha256:
        raise RecordingError(
            f"{where}: recorded with {identity.name} (sha256 "
            f"{identity.sha256[:12]}), but {ref} is a different file (sha256 "
            f"{model.sha256[:12]}); pass --model with the file it was recorded with"
        )
    return model


@dataclass(frozen=True)
class ReplayStep:
    """One event performed again, and how today's result compares."""

    line: Line  # the recorded event
    number: int  # 1-based position among the recording's events
    before: Cursor
    cursor: Cursor
    sampled: tuple[TokenStep, ...]  # tokens this event sampled today
    difference: str | None  # "file:line: what differs", None when all agree


class Replayer:
    """Performs a recording's events on a fresh session, one at a time."""

    def __init__(self, recording: Recording, model: Model | None = None) -> None:
        self.recording = recording
        self.model = model or load_recorded_model(recording)
        self.events = recording.events
        # state lines, by the number of events before them
        self._states = {ln.n: ln for ln in recording.lines if ln.type == "state"}
        self.restart()

    @classmethod
    def open(cls, path: str, model_ref: str | None = None) -> Replayer:
        """Read a recording and load (and verify) its model."""
        recording = read_recording(path)
        return cls(recording, load_recorded_model(recording, model_ref))

    def restart(self) -> None:
        """Go back to the recorded session's starting point."""
        origin = self.recording.header.origin
        scenario = scenario_of(self.recording.header.scenario)
        self.session = Session(self.model, origin.settings, scenario=scenario)
        self.session.breakpoints = list(origin.breakpoints)
        self.position = 0  # events performed so far
        self._tracker = Tracker(self.session)

    def __len__(self) -> int:
        return len(self.events)

    @property
    def done(self) -> bool:
        """Whether every event has been performed."""
        return self.position >= len(self.events)

    def advance(self) -> ReplayStep | None:
        """Perform the next event and compare; None when there are none left."""
        if self.done:
            return None
        line = self.events[self.position]
        self.position += 1
        before = self.session.cursor
        problem = self._perform(line)
        sampled = tuple(self._tracker.fresh(self.session))
        problem = problem or self._compare(line, sampled) or self._compare_state()
        where = self.recording.where(line.number)
        difference = None if problem is None else f"{where}: {problem}"
        return ReplayStep(
            line, self.position, before, self.session.cursor, sampled, difference
        )

    def seek(self, position: int) -> None:
        """Replay from the start up to `position` events (to step backward)."""
        self.restart()
        while self.position < position and self.advance() is not None:
            pass

    def __iter__(self) -> Iterator[ReplayStep]:
        while (step := self.advance()) is not None:
            yield step

    def check(self) -> int:
        """Replay everything; raise at the first difference; return the events."""
        for step in self:
            if step.difference is not None:
                raise RecordingError(step.difference)
        return len(self.events)

    def _perform(self, line: Line) -> str | None:
        """Perform the event; a failure today is a difference."""
        event, session = line.event, self.session
        assert event is not None
        history = len(session.history)
        try:
            if event.kind == "run":
                self._run(line)
            else:
                session.apply(event)
        except StepperError as error:
            return f"{event.kind} failed today: {error}"
        except TypeError:
            return f"{event.kind} {_args(event.args)} cannot be performed today"
        today = session.history[history:]
        if [(e.kind, e.args) for e in today] != [(event.kind, event.args)]:
            shown = ", ".join(f"{e.kind} {_args(e.args)}" for e in today)
            return f"recorded {event.kind} {_args(event.args)}, today {shown}"
        return None

    def _run(self, line: Line) -> None:
        """A run, stopped where the recording's run was interrupted, if it was."""
        event, session = line.event, self.session
        assert event is not None
        until = line.cursor if event.outcome.get("stopped") == "interrupted" else None
        if event.outcome.get("stopped") == "interrupted" and until is None:
            raise RecordingError(
                "an interrupted run from before recording started cannot be "
                "replayed (where it stopped was not recorded)"
            )
        session.run(
            to_breakpoint=bool(event.args.get("to_breakpoint", True)),
            should_stop=None if until is None else lambda: session.cursor == until,
        )

    def _compare(self, line: Line, sampled: tuple[TokenStep, ...]) -> str | None:
        """The first difference between the recorded and today's event results."""
        if not line.checked:
            return None
        assert line.cursor is not None
        problem = self._compare_tokens(line.tokens, sampled)
        if problem is None and line.cursor != self.session.cursor:
            problem = (
                f"the cursor differs: recorded {describe_cursor(line.cursor)}, "
                f"today {describe_cursor(self.session.cursor)}"
            )
        return problem

    def _compare_tokens(
        self, recorded: tuple[TokenRecord, ...], today: tuple[TokenStep, ...]
    ) -> str | None:
        for mine, step in zip(recorded, today, strict=False):
            if mine.index != step.index:
                break
            problem = compare_token(mine, step, self.model)
            if problem:
                return problem
        else:
            if len(recorded) == len(today):
                return None
        said = ", ".join(str(t.index) for t in recorded) or "none"
        done = ", ".join(str(s.index) for s in today) or "none"
        return f"tokens sampled differ: recorded {said}, today {done}"

    def _compare_state(self) -> str | None:
        """Compare with the `state` line recorded at this point, if there is one."""
        state = self._states.get(self.position)
        if state is None:
            return None
        problem = self._compare_tokens(
            state.tokens, tuple(sampled_tokens(self.session))
        )
        if problem is None and state.cursor != self.session.cursor:
            assert state.cursor is not None
            problem = (
                f"the cursor differs: recorded {describe_cursor(state.cursor)}, "
                f"today {describe_cursor(self.session.cursor)}"
            )
        return None if problem is None else f"(state, line {state.number}) {problem}"


def compare_token(mine: TokenRecord, step: TokenStep, model: Model) -> str | None:
    """How today's token `step` differs from its record, or None if it agrees."""
    trace, tok, i = step.trace, model.tokenizer, mine.index
    assert trace is not None
    if trace.token_id != mine.id:
        today = trace.token_id
        return (
            f"token {i} differs: recorded id {mine.id} ({_quote(mine.token)}), "
            f"today {today} ({_quote(tok.piece(today))})"
        )
    if trace.forced != mine.forced:
        how = ("forced", "sampled") if mine.forced else ("sampled", "forced")
        return f"token {i} was {how[0]} in the recording, {how[1]} today"
    if trace.u != mine.u:
        return f"token {i}: the draw differs: recorded u={mine.u}, today u={trace.u}"
    logits = step.capture.logits
    for token_id, logit in mine.top:
        now = float(logits[token_id])
        if abs(now - logit) > LOGIT_TOLERANCE:
            return (
                f"token {i}: the logit of id {token_id} "
                f"({_quote(tok.piece(token_id))}) differs: recorded {logit:.6f}, "
                f"today {now:.6f} (tolerance {LOGIT_TOLERANCE})"
            )
    if abs(trace.p - mine.p) > PROBABILITY_TOLERANCE:
        return f"token {i}: p differs: recorded {mine.p:.6f}, today {trace.p:.6f}"
    return None


def _quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _args(args: dict[str, object]) -> str:
    return json.dumps(args, ensure_ascii=False, sort_keys=True)
