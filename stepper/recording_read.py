"""Reading a recording back: its header and lines, each checked for shape.

The format is described in `stepper.recording`. A last line without its newline
was cut off mid-write (the process was killed) and is ignored with a note; any
other line that is not what the format says is a `RecordingError` naming it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stepper import __version__
from stepper.breakpoints import Breakpoint
from stepper.errors import RecordingError, StepperError
from stepper.recording import (
    FORMAT,
    FORMAT_VERSION,
    Header,
    ModelIdentity,
    Origin,
    TokenRecord,
)
from stepper.sampler import SamplerSettings
from stepper.session import Cursor, Event, Settings, Stage

_EDITED = "the file was edited or damaged; record it again"


@dataclass(frozen=True)
class Line:
    """One line after the header: an event, a state or the stop mark."""

    number: int  # line number in the file, the header being 1
    type: str  # "event", "state" or "stop"
    n: int  # the event's number; for a state or stop, the events before it
    event: Event | None = None
    cursor: Cursor | None = None  # None: not recorded (before recording started)
    tokens: tuple[TokenRecord, ...] = ()

    @property
    def checked(self) -> bool:
        """Whether the line records a result a replay can be checked against."""
        return self.cursor is not None


@dataclass(frozen=True)
class Recording:
    """A recording read back: its header, its lines, and what the reader noticed."""

    path: Path
    header: Header
    lines: tuple[Line, ...]
    notes: tuple[str, ...]  # e.g. a torn last line that was ignored

    @property
    def events(self) -> tuple[Line, ...]:
        """The event lines, in order."""
        return tuple(line for line in self.lines if line.type == "event")

    @property
    def stopped(self) -> bool:
        """Whether recording was stopped cleanly (not killed mid-session)."""
        return bool(self.lines) and self.lines[-1].type == "stop"

    def where(self, line: int) -> str:
        """A `file:line` prefix for messages."""
        return f"{self.path}:{line}"


def read_recording(path: str | Path) -> Recording:
    """Read a recording, ignoring (with a note) a last line cut off mid-write."""
    path = Path(path)
    chunks = _read(path).split(b"\n")
    notes = []
    tail = chunks.pop()  # what follows the last newline: empty unless cut off
    if tail:
        notes.append(
            f"{path}:{len(chunks) + 1}: the last line was cut off while being "
            "written and is ignored"
        )
    numbered = [(n, c) for n, c in enumerate(chunks, 1) if c.strip()]
    if not numbered:
        raise RecordingError(
            f"{path}: holds no complete line, not even the header; record again"
        )
    first, header_bytes = numbered[0]
    header = _header(f"{path}:{first}", _json(path, first, header_bytes))
    lines = [_line(f"{path}:{n}", n, _json(path, n, c)) for n, c in numbered[1:]]
    _check_order(path, lines)
    if not lines or lines[-1].type != "stop":
        events = sum(line.type == "event" for line in lines)
        notes.append(
            f"{path}: recording was not stopped cleanly (the program ended during "
            f"it); it holds {events} events"
        )
    return Recording(path, header, tuple(lines), tuple(notes))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise RecordingError(
            f"{path}: cannot be read ({error.strerror}); check the path"
        ) from None


def _json(path: Path, number: int, chunk: bytes) -> dict[str, Any]:
    """One line decoded as a JSON object."""
    try:
        data = json.loads(chunk.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RecordingError(
            f"{path}:{number}: not a line of JSON ({error}); {_EDITED}"
        ) from None
    if not isinstance(data, dict):
        raise RecordingError(f"{path}:{number}: not a JSON object; {_EDITED}")
    return data


def _get(data: dict[str, Any], key: str, kind: Any, where: str) -> Any:
    """`data[key]`, checked to be of `kind` (bool never passes for a number)."""
    value = data.get(key)
    wrong_bool = isinstance(value, bool) and kind is not bool
    if key not in data or wrong_bool or not isinstance(value, kind):
        raise RecordingError(f"{where}: `{key}` is missing or malformed; {_EDITED}")
    return value


def _header(where: str, data: dict[str, Any]) -> Header:
    """The header line, after checking the format and its version."""
    if data.get("type") != "header" or data.get("format") != FORMAT:
        raise RecordingError(
            f"{where}: not a stepper recording (no {FORMAT} header); pass a file "
            "written with --record"
        )
    _check_version(where, data)
    model = _get(data, "model", dict, where)
    identity = ModelIdentity(
        _get(model, "name", str, where),
        _get(model, "sha256", str, where),
        _get(model, "source", (str, type(None)), where),
        _get(model, "ref", str, where),
    )
    scenario = _get(data, "scenario", (dict, type(None)), where)
    if scenario is not None:
        _check_scenario(where, scenario)
    stepper = _get(data, "stepper", str, where)
    return Header(stepper, identity, scenario, _origin(where, data))


def _check_scenario(where: str, data: dict[str, Any]) -> None:
    """The recorded scenario has the titles and notes a replay shows."""
    _get(data, "title", str, where)
    _get(data, "description", str, where)
    for note in _get(data, "notes", list, where):
        if not isinstance(note, dict):
            raise RecordingError(f"{where}: a scenario note is malformed; {_EDITED}")
        _get(note, "stage", str, where)
        _get(note, "text", str, where)
        _get(note, "token", (int, type(None)), where)


def _check_version(where: str, data: dict[str, Any]) -> None:
    version = _get(data, "version", int, where)
    if version == FORMAT_VERSION:
        return
    fix = "upgrade stepper" if version > FORMAT_VERSION else "record it again"
    raise RecordingError(
        f"{where}: recording format {version} (written by stepper "
        f"{data.get('stepper')}), but stepper {__version__} reads format "
        f"{FORMAT_VERSION}; {fix}"
    )


def _origin(where: str, data: dict[str, Any]) -> Origin:
    """The settings and breakpoints the recorded session started from."""
    try:
        sampler = SamplerSettings(**_get(data, "sampler", dict, where))
        breakpoints = tuple(
            Breakpoint(_get(b, "kind", str, where), _get(b, "value", object, where))
            for b in _get(data, "breakpoints", list, where)
        )
    except (StepperError, TypeError) as error:
        raise RecordingError(f"{where}: {error}; {_EDITED}") from None
    settings = Settings(
        _get(data, "prompt", str, where),
        sampler,
        _get(data, "seed", int, where),
        _get(data, "max_new_tokens", int, where),
        tuple(_get(data, "stop", list, where)),
    )
    return Origin(settings, breakpoints)


def _line(where: str, number: int, data: dict[str, Any]) -> Line:
    """One event, state or stop line."""
    kind = data.get("type")
    if kind == "stop":
        return Line(number, "stop", _get(data, "events", int, where))
    n = _get(data, "n", int, where)
    cursor = _cursor(where, data["cursor"]) if "cursor" in data else None
    tokens = tuple(_token(where, t) for t in data.get("tokens", []))
    if kind == "state":
        if cursor is None:
            raise RecordingError(f"{where}: a state without `cursor`; {_EDITED}")
        return Line(number, "state", n, None, cursor, tokens)
    if kind != "event":
        raise RecordingError(f"{where}: unknown line type {kind!r}; {_EDITED}")
    event = Event(
        _get(data, "kind", str, where),
        _get(data, "args", dict, where),
        _get(data, "outcome", dict, where) if "outcome" in data else {},
    )
    return Line(number, "event", n, event, cursor, tokens)


def _cursor(where: str, data: Any) -> Cursor:
    if not isinstance(data, dict):
        raise RecordingError(f"{where}: `cursor` is malformed; {_EDITED}")
    try:
        stage = Stage(_get(data, "stage", str, where))
    except ValueError:
        raise RecordingError(f"{where}: unknown stage in `cursor`; {_EDITED}") from None
    layer = _get(data, "layer", (int, type(None)), where)
    return Cursor(_get(data, "token", int, where), stage, layer)


def _token(where: str, data: Any) -> TokenRecord:
    if not isinstance(data, dict):
        raise RecordingError(f"{where}: a token record is malformed; {_EDITED}")
    number = (int, float)
    top = _get(data, "top", list, where)
    if not all(isinstance(pair, list) and len(pair) == 2 for pair in top):
        raise RecordingError(f"{where}: `top` is malformed; {_EDITED}")
    return TokenRecord(
        _get(data, "index", int, where),
        _get(data, "id", int, where),
        _get(data, "token", str, where),
        _get(data, "text", str, where),
        _get(data, "forced", bool, where),
        _get(data, "u", (*number, type(None)), where),
        float(_get(data, "p", number, where)),
        tuple((int(i), float(logit)) for i, logit in top),
    )


def _check_order(path: Path, lines: list[Line]) -> None:
    """Events numbered 1, 2, ... with none missing, and nothing after `stop`."""
    events = 0
    for k, line in enumerate(lines):
        where = f"{path}:{line.number}"
        if line.type == "stop" and k != len(lines) - 1:
            raise RecordingError(f"{where}: lines follow the stop mark; {_EDITED}")
        expected = events + 1 if line.type == "event" else events
        if line.n != expected:
            raise RecordingError(
                f"{where}: numbered {line.n} where {expected} belongs, so lines "
                f"are missing or out of order; {_EDITED}"
            )
        events += line.type == "event"
