"""Recordings: a session's events as JSON Lines, written as they happen.

A recording is UTF-8 JSON Lines, one object a line, each with a `type`:

- line 1, `header`: `format` ("stepper-recording"), `version` (FORMAT_VERSION),
  `stepper` (the version that wrote it), `model` (name, sha256 of its files,
  source path, and the `ref` to load it again), `scenario` (path, title,
  description, notes and the file's full text, or null), and the session's
  starting point: `prompt`, `sampler` (every setting and the stage order), `seed`,
  `max_new_tokens`, `stop`, `breakpoints`.
- `event`, one per user action: `n` (1, 2, ...), `kind` and `args` as the session
  emitted them, then what the action produced, to check a replay against:
  `cursor` and `tokens`, the tokens the action sampled, each with its index, id,
  piece, text, `forced`, the uniform draw `u`, the probability `p` after the
  sampler chain and `top`, the five highest raw logits as [id, logit]. Events that
  happened before recording started carry no `cursor` or `tokens`.
- `state`, after those earlier events: the cursor and every token sampled so far.
- `stop`, the last line when recording stopped cleanly.

Each line is flushed as it is written, so a killed process leaves every completed
line readable; `stepper.recording_read` reads a recording back, ignoring an
unfinished last line with a note, and `stepper.replay` replays and checks it.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from stepper import __version__
from stepper.breakpoints import Breakpoint
from stepper.errors import RecordingError, StepperError
from stepper.load import BUILTIN_MODELS
from stepper.model import Model
from stepper.sampler import SamplerSettings
from stepper.scenario import Note, Scenario
from stepper.session import Cursor, Event, Session, Settings, TokenStep

log = logging.getLogger(__name__)

FORMAT = "stepper-recording"
FORMAT_VERSION = 1
TOP_LOGITS = 5


class RecordingExistsError(RecordingError):
    """The file to record into exists and overwriting it was not allowed."""


def describe_cursor(cursor: Cursor) -> str:
    """A short label such as 'token 3, Attend layer 2'."""
    where = f"token {cursor.token}, {cursor.stage}"
    return where if cursor.layer is None else f"{where} layer {cursor.layer}"


@dataclass(frozen=True)
class ModelIdentity:
    """Which model a recording was made with, and how to load it again."""

    name: str
    sha256: str
    source: str | None
    ref: str  # a built-in name, or the absolute path of the file or folder

    @classmethod
    def of(cls, model: Model) -> ModelIdentity:
        """The identity of a loaded model (hashes its files on first use)."""
        source = None if model.source is None else str(model.source.resolve())
        ref = source or model.name
        builtin = BUILTIN_MODELS.get(model.name.lower())
        if model.source is not None and model.source.name == builtin:
            ref = model.name.lower()
        return cls(model.name, model.sha256, source, ref)


@dataclass(frozen=True)
class Origin:
    """Where a session started: the settings and breakpoints a replay begins with."""

    settings: Settings
    breakpoints: tuple[Breakpoint, ...] = ()

    @classmethod
    def of(cls, session: Session) -> Origin:
        """The settings and breakpoints the session was created with."""
        return cls(session.start_settings, tuple(session.start_breakpoints))


@dataclass(frozen=True)
class Header:
    """The first line of a recording: versions, model, scenario and origin."""

    stepper: str
    model: ModelIdentity
    scenario: dict[str, Any] | None
    origin: Origin
    version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        """The header as a JSON object."""
        s = self.origin.settings
        return {
            "type": "header", "format": FORMAT, "version": self.version,
            "stepper": self.stepper, "model": asdict(self.model),
            "scenario": self.scenario, "prompt": s.prompt,
            "sampler": asdict(s.sampler), "seed": s.seed,
            "max_new_tokens": s.max_new_tokens, "stop": list(s.stop),
            "breakpoints": [
                {"kind": b.kind, "value": b.value} for b in self.origin.breakpoints
            ],
        }  # fmt: skip


@dataclass(frozen=True)
class TokenRecord:
    """What a recording keeps of one sampled token, enough to check a replay."""

    index: int
    id: int
    token: str  # the vocabulary piece
    text: str  # the text it completed
    forced: bool
    u: float | None
    p: float
    top: tuple[tuple[int, float], ...]  # highest raw logits as (id, logit)

    @classmethod
    def of(cls, step: TokenStep, model: Model) -> TokenRecord:
        """The record of a token whose Sample stage has run."""
        trace = step.trace
        assert trace is not None
        tok = model.tokenizer
        top = top_logits(step.capture.logits, TOP_LOGITS)
        piece = tok.piece(trace.token_id)
        return cls(step.index, trace.token_id, piece, step.text, trace.forced,
                   trace.u, round(trace.p, 9), top)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The token as a JSON object."""
        data = asdict(self)
        data["top"] = [list(pair) for pair in self.top]
        return data


def top_logits(logits: np.ndarray, n: int) -> tuple[tuple[int, float], ...]:
    """The n highest finite logits as (id, logit rounded to 6 decimals)."""
    finite = np.flatnonzero(np.isfinite(logits))
    order = finite[np.argsort(-logits[finite], kind="stable")[:n]]
    return tuple((int(i), round(float(logits[i]), 6)) for i in order)


class Tracker:
    """Notices which tokens an action sampled, by the identity of their traces."""

    def __init__(self, session: Session) -> None:
        self._seen = [step.trace for step in session.steps]

    def fresh(self, session: Session) -> list[TokenStep]:
        """Steps whose trace is new since the last call, in token order."""
        seen, steps = self._seen, session.steps
        new = [
            step
            for i, step in enumerate(steps)
            if step.trace is not None and (i >= len(seen) or seen[i] is not step.trace)
        ]
        self._seen = [step.trace for step in steps]
        return new


def scenario_json(scenario: Scenario) -> dict[str, Any]:
    """What a recording keeps of a scenario: its path, text, titles and notes."""
    path = scenario.source
    text = None
    if path is not None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            log.warning("%s: not kept in the recording (%s)", path, error.strerror)
    return {
        "path": None if path is None else str(path), "text": text,
        "title": scenario.title, "description": scenario.description,
        "model": scenario.model, "notes": [asdict(note) for note in scenario.notes],
        # The scenario's own settings, which its notes were written for (the
        # session may have started from others, given on the command line).
        "prompt": scenario.prompt, "sampler": asdict(scenario.sampler),
        "seed": scenario.seed,
    }  # fmt: skip


def scenario_of(data: dict[str, Any] | None) -> Scenario | None:
    """The recorded scenario: titles, notes and the settings they were written for."""
    if data is None:
        return None
    try:
        notes = tuple(
            Note(n["stage"], n["text"], n.get("token")) for n in data["notes"]
        )
        return Scenario(
            title=data["title"],
            description=data["description"],
            notes=notes,
            prompt=data.get("prompt", ""),
            sampler=SamplerSettings(**data.get("sampler", {})),
            seed=data.get("seed", 0),
        )
    except (StepperError, TypeError, KeyError, AttributeError) as error:
        raise RecordingError(
            f"the recorded scenario is malformed ({error}); was the file edited?"
        ) from None


def cursor_json(cursor: Cursor) -> dict[str, Any]:
    """A cursor as a JSON object."""
    return {"token": cursor.token, "stage": str(cursor.stage), "layer": cursor.layer}


def sampled_tokens(session: Session) -> list[TokenStep]:
    """Every step of the session whose Sample stage has run."""
    return [step for step in session.steps if step.trace is not None]


class Recorder:
    """Writes a session's events to a file as they happen, one line each.

    Every line is flushed at once: a killed process loses at most the line being
    written. Lines are not fsync'd one by one, since the kernel keeps flushed data
    when a process dies and only a machine crash could lose it, while an fsync per
    key press would wait on the disk; `stop` fsyncs once. The app may stop from
    its UI thread while the engine thread writes, so both hold one lock.
    """

    def __init__(self, path: Path, stream: IO[str], session: Session) -> None:
        self.path = path
        self.session = session
        self.events = 0  # events written, including those from before the start
        self._stream: IO[str] | None = stream
        self._tracker = Tracker(session)
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        path: str | Path,
        session: Session,
        *,
        overwrite: bool = False,
    ) -> Recorder:
        """Start recording `session` into `path`; refuse an existing file unless told.

        The session's earlier events are written first, after the settings it was
        created with, so the file always holds the session's whole history.
        """
        origin = Origin.of(session)
        identity = ModelIdentity.of(session.model)
        scenario = None if session.scenario is None else scenario_json(session.scenario)
        header = Header(__version__, identity, scenario, origin)
        target = Path(path)
        recorder = cls(target, _create(target, overwrite), session)
        recorder._write(header.to_json())
        recorder._write_earlier(session.history)
        session.listeners.append(recorder._on_event)
        log.info("recording to %s", target)
        return recorder

    @property
    def active(self) -> bool:
        """Whether events are still being written (for the app's indicator)."""
        return self._stream is not None

    def stop(self) -> None:
        """Stop recording: detach, mark the end, write it to disk and close."""
        with self._lock:
            if self._stream is None:
                return
            if self._on_event in self.session.listeners:
                self.session.listeners.remove(self._on_event)
            self._write({"type": "stop", "events": self.events})
            stream, self._stream = self._stream, None
            os.fsync(stream.fileno())
            stream.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _write_earlier(self, history: list[Event]) -> None:
        """The events before recording started, then the state they led to."""
        for event in history:
            self.events += 1
            self._write(_event_json(self.events, event))
        if history:
            model = self.session.model
            tokens = [TokenRecord.of(s, model) for s in sampled_tokens(self.session)]
            self._write(_state_json(self.events, self.session.cursor, tokens))

    def _on_event(self, event: Event) -> None:
        """The session listener: write the event and what it produced."""
        with self._lock:
            if self._stream is None:  # stopped while this action ran
                return
            self.events += 1
            model = self.session.model
            fresh = self._tracker.fresh(self.session)
            data = _event_json(self.events, event)
            data["cursor"] = cursor_json(self.session.cursor)
            data["tokens"] = [TokenRecord.of(s, model).to_json() for s in fresh]
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        """Write one line and flush it; on failure stop recording and say why."""
        assert self._stream is not None
        try:
            line = json.dumps(data, ensure_ascii=False, allow_nan=False, default=_plain)
        except (TypeError, ValueError) as error:
            self._abandon()
            raise RecordingError(
                f"{self.path}: recording stopped at event {data.get('n')}: {error}; "
                "report this as a bug in stepper"
            ) from error
        line += "\n"
        try:
            self._stream.write(line)
            self._stream.flush()
        except OSError as error:
            self._abandon()
            raise RecordingError(
                f"{self.path}: recording stopped, the line could not be written "
                f"({error.strerror}); free disk space or record elsewhere"
            ) from error

    def _abandon(self) -> None:
        """Detach and close after a write failed; what was flushed stays."""
        if self._on_event in self.session.listeners:
            self.session.listeners.remove(self._on_event)
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError:
                log.warning("could not close %s after a failed write", self.path)


def _plain(value: object) -> object:
    """A numpy number in event arguments (an id taken from an array) as Python's."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} cannot be recorded: {value!r}")


def _event_json(n: int, event: Event) -> dict[str, Any]:
    line = {"type": "event", "n": n, "kind": event.kind, "args": event.args}
    return line | ({"outcome": event.outcome} if event.outcome else {})


def _state_json(n: int, cursor: Cursor, tokens: list[TokenRecord]) -> dict[str, Any]:
    return {"type": "state", "n": n, "cursor": cursor_json(cursor),
            "tokens": [t.to_json() for t in tokens]}  # fmt: skip


def _create(path: Path, overwrite: bool) -> IO[str]:
    """Open `path` for writing, refusing to replace a file unless `overwrite`."""
    mode = "w" if overwrite else "x"
    try:
        return path.open(mode, encoding="utf-8", newline="\n")
    except FileExistsError:
        raise RecordingExistsError(
            f"{path}: already exists; choose another file or allow overwriting it "
            "(--force)"
        ) from None
    except OSError as error:
        raise RecordingError(
            f"{path}: cannot be created ({error.strerror}); record into a folder "
            "you can write to"
        ) from None
