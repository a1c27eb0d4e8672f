"""Scenario files: a model, a prompt and sampling settings, with breakpoints and notes.

A scenario is a TOML file read with the standard library. Every key is optional; a
missing one takes the default below, so an empty file runs the default story:

    title        the file's name      description     ""
    model        "stories260k"        prompt          "Once upon a time"
    temperature  0.8                  top_k           40
    top_p        0.95                 min_p           0.05
    seed         0                    repetition_penalty  1.0
    stop         []                   max_new_tokens  48
    sampler_order  ["repetition_penalty", "top_k", "top_p", "min_p", "temperature"]

The sampling defaults are `SamplerSettings`' (llama.cpp's command line's). `model` is
a built-in name (a word with no dot or slash, such as `stories260k`), a `.gguf` file
or a Hugging Face folder; paths are resolved against the scenario file's folder.

`breakpoints` is an array of tables with one key each: `at_token = N` (stop when
generation reaches token N, 0 being the first new token), `on_token = "text"` (or
an id; stop when that token is sampled), `top_prob_below = 0.3` or
`entropy_above = 2.5` (bits); the last two look at the model's own distribution, at
temperature 1. `notes` is an array of tables with `stage` (Tokenize, Embed, Attend,
Predict or Sample), `text`, and optionally `token = N`: a note with a token belongs
to that token's stage only, one without to that stage of every token.

Every mistake is a one-line `ScenarioError`: `file:line: key = value problem; fix`.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from stepper.breakpoints import KINDS, Breakpoint
from stepper.errors import ScenarioError
from stepper.load import BUILTIN_MODELS
from stepper.sampler import SamplerSettings, setting_problem
from stepper.toml_lines import KeyLines

DEFAULT_SCENARIO = "story"
DEFAULT_MODEL = "stories260k"
STAGE_NAMES = ("Tokenize", "Embed", "Attend", "Predict", "Sample")
# Scenario key -> SamplerSettings field.
SAMPLING_KEYS = {
    "temperature": "temperature",
    "top_k": "top_k",
    "top_p": "top_p",
    "min_p": "min_p",
    "repetition_penalty": "repetition_penalty",
    "sampler_order": "order",
}


def _is_int(value: object) -> bool:
    """A TOML integer (a bool is not one, though Python says so)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    """A finite TOML integer or float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def _is_str(value: object) -> bool:
    """A TOML string."""
    return isinstance(value, str)


def _is_list_of(test: Callable[[object], bool]) -> Callable[[object], bool]:
    """A test for a TOML array whose every item passes `test`."""
    return lambda value: isinstance(value, list) and all(map(test, value))


_is_tables = _is_list_of(lambda value: isinstance(value, dict))


class _Rule(NamedTuple):
    """What one key accepts: in words, as a type test, and as a range test."""

    allowed: str
    type_ok: Callable[[Any], bool]
    range_ok: Callable[[Any], bool] | None = None
    failure: str = "is out of range"


_MODEL = "a built-in name such as stories260k, a .gguf path or a model folder"
_RULES = {
    "title": _Rule("a string", _is_str),
    "description": _Rule("a string", _is_str),
    "prompt": _Rule("a string", _is_str),
    "model": _Rule(_MODEL, _is_str, bool, "is empty"),
    "seed": _Rule("a whole number >= 0", _is_int, lambda v: v >= 0),
    "max_new_tokens": _Rule("a whole number >= 1", _is_int, lambda v: v >= 1),
    "stop": _Rule("a list of non-empty strings", _is_list_of(_is_str), all, "has ''"),
    "breakpoints": _Rule("an array of tables", _is_tables),
    "notes": _Rule("an array of tables", _is_tables),
}
_KEYS = (*_RULES, *SAMPLING_KEYS)
_BREAKPOINT_RULES = {
    "at_token": _Rule("a token index >= 0", _is_int, lambda v: v >= 0),
    "on_token": _Rule(
        "a token's text or a token id >= 0",
        lambda v: _is_str(v) or _is_int(v),
        lambda v: v != "" and (_is_str(v) or v >= 0),
    ),
    "top_prob_below": _Rule("a value in (0, 1]", _is_number, lambda v: 0 < v <= 1),
    "entropy_above": _Rule("a number of bits >= 0", _is_number, lambda v: v >= 0),
}
_NOTE_RULES = {
    "stage": _Rule(
        "one of " + ", ".join(STAGE_NAMES),
        _is_str,
        STAGE_NAMES.__contains__,
        "is not a stage",
    ),
    "text": _Rule("a non-empty string", _is_str, bool, "is empty"),
    "token": _Rule("a token index >= 0", _is_int, lambda v: v >= 0),
}


def _check(value: object, rule: _Rule) -> str | None:
    """Why `value` breaks `rule`, or None if it does not."""
    if not rule.type_ok(value):
        return f"has the wrong type; use {rule.allowed}"
    if rule.range_ok is not None and not rule.range_ok(value):
        return f"{rule.failure}; use {rule.allowed}"
    return None


def key_problem(key: str, value: object) -> str | None:
    """Why `value` is not acceptable for top-level scenario key `key`, or None."""
    if key in SAMPLING_KEYS:
        return setting_problem(SAMPLING_KEYS[key], value)
    return _check(value, _RULES[key])


@dataclass(frozen=True)
class Note:
    """Narration for one stage, of one token (`token`) or of every token (None)."""

    stage: str
    text: str
    token: int | None = None


@dataclass(frozen=True)
class Scenario:
    """What to run and how, what to stop at, and what to tell the reader."""

    title: str = "default"
    description: str = ""
    model: str = DEFAULT_MODEL  # a built-in name or an absolute path
    prompt: str = "Once upon a time"
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    seed: int = 0
    max_new_tokens: int = 48
    stop: tuple[str, ...] = ()
    breakpoints: tuple[Breakpoint, ...] = ()
    notes: tuple[Note, ...] = ()
    source: Path | None = None  # the file it was read from

    def notes_for(self, stage: str, token: int) -> list[str]:
        """The texts of the notes to show at `stage` of generated token `token`."""
        return [
            n.text for n in self.notes if n.stage == stage and n.token in (None, token)
        ]

    def with_overrides(self, **flags: object) -> Scenario:
        """A copy with command-line values applied; None means "not given"."""
        scenario = self
        for key, value in flags.items():
            if value is None:
                continue
            if key not in _KEYS or key in ("breakpoints", "notes"):
                raise TypeError(f"no command-line override for {key!r}")
            problem = key_problem(key, value)
            if problem:
                flag = "--" + key.replace("_", "-")
                raise ScenarioError(f"command line: {flag} {_show(value)} {problem}")
            scenario = _apply(scenario, key, value, Path.cwd())
        return scenario


def _apply(scenario: Scenario, key: str, value: Any, folder: Path) -> Scenario:
    """`scenario` with one checked top-level value set."""
    if key in SAMPLING_KEYS:
        sampler = replace(scenario.sampler, **{SAMPLING_KEYS[key]: value})
        return replace(scenario, sampler=sampler)
    if key == "model":
        value = resolve_model(value, folder)
    elif key == "stop":
        value = tuple(value)
    return replace(scenario, **{key: value})


def resolve_model(ref: str, folder: Path) -> str:
    """A built-in name (lower-cased) as is, or a path made absolute from `folder`."""
    if "/" not in ref and "\\" not in ref and "." not in ref:
        return ref.lower()
    return os.path.abspath(folder / Path(ref).expanduser())


def builtin_scenarios() -> dict[str, Path]:
    """The scenarios shipped in the `scenarios` package, by name."""
    folder = resources.files("scenarios")
    files = (Path(str(e)) for e in folder.iterdir() if e.name.endswith(".toml"))
    return {path.stem: path for path in sorted(files)}


def load_scenario(ref: str | Path) -> Scenario:
    """Read a scenario from a built-in name (like "story") or a TOML file."""
    path = _scenario_path(ref)
    text = _read(path)
    where = KeyLines(path, text)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise _syntax_error(path, text, str(error)) from None
    return _build(data, where)


def _scenario_path(ref: str | Path) -> Path:
    """The file `ref` names: a built-in scenario first, else a path."""
    builtins = builtin_scenarios()
    names = ", ".join(builtins)
    if isinstance(ref, str) and ref in builtins:
        return builtins[ref]
    if isinstance(ref, str) and not ref.strip():
        raise ScenarioError(
            "no scenario given; type a .toml scenario file or a built-in name "
            f"({names})"
        )
    path = Path(ref).expanduser()
    if not path.is_file():
        what = "is a folder, not a scenario file" if path.is_dir() else "not found"
        raise ScenarioError(
            f"{path}: {what}; pass a .toml scenario or a built-in name ({names})"
        )
    return path


def _read(path: Path) -> str:
    """The file's text, or a one-line error if it cannot be read as UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ScenarioError(f"{path}: cannot be read ({reason})") from None
    if data.startswith(b"GGUF") or path.suffix.lower() in (".gguf", ".safetensors"):
        raise ScenarioError(
            f"{path}: is a model file, not a scenario; open it with "
            f"`stepper --model {path}`"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise ScenarioError(
            f"{path}:{line}: not UTF-8 text; save the scenario as UTF-8"
        ) from None


def _syntax_error(path: Path, text: str, message: str) -> ScenarioError:
    """tomllib's complaint as `file:line: ...`, its column kept."""
    found = re.search(r" \(at line (\d+), column (\d+)\)$", message)
    if found:
        what = message[: found.start()]
        return ScenarioError(
            f"{path}:{found[1]}: not valid TOML: {what} (column {found[2]})"
        )
    what = message.removesuffix(" (at end of document)")
    last = text.rstrip().count("\n") + 1
    return ScenarioError(f"{path}:{last}: not valid TOML: {what} (at the end)")


def _build(data: dict[str, Any], where: KeyLines) -> Scenario:
    """Check every top-level key and value, then assemble the scenario."""
    for key, value in data.items():
        if key not in _KEYS:
            raise where.error((key,), _unknown(key, _KEYS, "scenario key"))
        problem = key_problem(key, value)
        if problem:
            raise where.error((key,), f"{key} = {_show(value)} {problem}")
    scenario = Scenario(title=where.path.stem, source=where.path)
    for key, value in data.items():
        if key == "breakpoints":
            value = tuple(_breakpoint(t, i, where) for i, t in enumerate(value))
        elif key == "notes":
            value = tuple(_note(t, i, where) for i, t in enumerate(value))
        scenario = _apply(scenario, key, value, where.path.parent)
    _check_model(scenario.model, data.get("model"), where)
    return scenario


def _check_model(model: str, given: str | None, where: KeyLines) -> None:
    """Refuse an unknown built-in name or a path to nothing, at `model`'s line."""
    if os.path.isabs(model):
        if not os.path.exists(model):
            raise where.error(
                ("model",),
                f"model = {_show(given)} names {model}, which does not "
                f"exist; use {_MODEL}",
            )
    elif model not in BUILTIN_MODELS:
        known = ", ".join(sorted(BUILTIN_MODELS))
        raise where.error(
            ("model",),
            f"model = {_show(given)} is not a built-in model ({known}); "
            "write a path with a slash or a dot to mean a file or folder",
        )


def _breakpoint(table: dict[str, Any], i: int, where: KeyLines) -> Breakpoint:
    """One `[[breakpoints]]` table, which must hold exactly one condition."""
    label, place = f"breakpoint {i + 1}", ("breakpoints", i)
    _check_table(table, _BREAKPOINT_RULES, label, place, where)
    if len(table) != 1:
        raise where.error(
            place,
            f"{label} has {len(table)} conditions; give it exactly one of "
            + ", ".join(KINDS),
        )
    kind = next(k for k in KINDS if k in table)
    return Breakpoint(kind, table[kind])


def _note(table: dict[str, Any], i: int, where: KeyLines) -> Note:
    """One `[[notes]]` table, which must hold a stage and a text."""
    label, place = f"note {i + 1}", ("notes", i)
    _check_table(table, _NOTE_RULES, label, place, where)
    for required in ("stage", "text"):
        if required not in table:
            raise where.error(place, f"{label} has no {required}; add {required} = ...")
    return Note(table["stage"], table["text"], table.get("token"))


def _check_table(
    table: dict[str, Any],
    rules: dict[str, _Rule],
    label: str,
    place: tuple[str | int, ...],
    where: KeyLines,
) -> None:
    """Refuse an unknown key or a bad value in one table of an array."""
    for key, value in table.items():
        if key not in rules:
            raise where.error((*place, key), f"{label}: {_unknown(key, rules, 'key')}")
        problem = _check(value, rules[key])
        if problem:
            raise where.error(
                (*place, key), f"{label}: {key} = {_show(value)} {problem}"
            )


def _unknown(key: str, known: Iterable[str], what: str) -> str:
    """The complaint about an unknown key, with the closest known one if any."""
    known = list(known)
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown {what} {key!r}{hint}; use one of {', '.join(known)}"


def _show(value: object, width: int = 60) -> str:
    """A value about as TOML writes it, shortened to `width` characters."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= width else text[: width - 1] + "…"
