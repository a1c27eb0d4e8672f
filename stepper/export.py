"""Exports of a recording: a walkthrough in Markdown or HTML, an asciinema cast, SVGs.

An export replays the recording with today's engine, refusing at the first step
that differs from what was recorded (the output would show something else), and
draws the views of `stepper.export_view`: one section per recorded event in
Markdown and HTML, one frame per stage passed in the cast, one screenshot per
chosen event in SVG. Nothing in the output depends on the clock, the machine or
the folder the recording was read from, so one recording always gives
byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from stepper.breakpoints import Breakpoint
from stepper.errors import RecordingError
from stepper.export_view import SETTING_LABELS, Table, View, build_view
from stepper.recording_read import Recording
from stepper.replay import Replayer, ReplayStep
from stepper.session import Cursor, Event, Session, Stage

FORMATS = ("cast", "md", "html", "svg")
RUN_STOPS = {
    "end": "ran to the end",
    "breakpoint": "stopped at a breakpoint",
    "interrupted": "was interrupted",
}


@dataclass(frozen=True)
class Section:
    """One recorded event: what it did and what it showed."""

    number: int  # 1-based, as in the recording; 0 is where the session started
    action: str  # "Next token", "Set temperature = 1.2", ...
    view: View  # where the event left the session
    generated: Table | None  # the tokens it sampled, when it sampled several
    frames: tuple[View, ...]  # every stage it passed, ending with `view`
    new_notes: bool = True  # False when the previous section showed the same notes


@dataclass(frozen=True)
class Walkthrough:
    """A replayed recording, ready to be written in any format."""

    title: str
    description: str
    summary: tuple[tuple[str, str], ...]  # label and value rows
    notes: tuple[str, ...]  # about the recording itself (cut off, ...)
    sections: tuple[Section, ...]


def walkthrough(replayer: Replayer, frames: bool = False) -> Walkthrough:
    """Replay everything into sections; with `frames`, every stage passed too."""
    recording = replayer.recording
    replayer.restart()
    start = build_view(replayer.session, replayer.session.cursor)
    sections = [Section(0, "Start", start, None, (start,))]
    for step in replayer:
        if step.difference is not None:
            raise RecordingError(
                f"{step.difference}; the export would not show what was recorded "
                "(stepper replay --check tells more)"
            )
        section = _section(replayer.session, step, frames)
        if _same_notes(sections[-1].view, section.view):
            section = replace(section, new_notes=False)
        sections.append(section)
    scenario = replayer.session.scenario
    title = f"Recording {recording.path.stem}"
    if scenario is not None:
        title = scenario.title
    description = "" if scenario is None else scenario.description
    return Walkthrough(
        title, description, _summary(recording), _notes(recording), tuple(sections)
    )


def _same_notes(before: View, after: View) -> bool:
    """Whether two views show the same narration for the same stage and token."""
    same_place = before.cursor.token == after.cursor.token and (
        before.cursor.stage == after.cursor.stage
    )
    return same_place and before.notes == after.notes


def _section(session: Session, step: ReplayStep, frames: bool) -> Section:
    event = step.line.event
    assert event is not None
    view = build_view(session, step.cursor)
    passed = _passed(step, event)[:-1] if frames else []
    shown = (*(build_view(session, c) for c in passed), view)
    generated = _generated(session, step) if len(step.sampled) > 1 else None
    return Section(step.number, action_label(session, event), view, generated, shown)


def _passed(step: ReplayStep, event: Event) -> list[Cursor]:
    """The cursors a run or next-token went through, its last one included."""
    before, after = step.before, step.cursor
    if event.kind not in ("run", "next_token") or _key(after) <= _key(before):
        return [after]
    path, cursor = [], before
    while _key(cursor) < _key(after):
        cursor = _next_stage(cursor)
        path.append(cursor)
    if path[-1] != after:
        path.append(after)
    return path


def _key(cursor: Cursor) -> tuple[int, int, int]:
    """Order of cursors through generation (Attend as a whole after its layers)."""
    layer = -1 if cursor.layer is None else cursor.layer
    return (cursor.token, list(Stage).index(cursor.stage), layer)


def _next_stage(cursor: Cursor) -> Cursor:
    """The next stage, taking Attend as a whole, as a run moves."""
    order = list(Stage)
    if cursor.stage == Stage.SAMPLE:
        return Cursor(cursor.token + 1, Stage.EMBED)
    return Cursor(cursor.token, order[order.index(cursor.stage) + 1])


def _generated(session: Session, step: ReplayStep) -> Table:
    """The tokens one event sampled, one row each."""
    tok, rows = session.model.tokenizer, []
    for s in step.sampled:
        trace = s.trace
        assert trace is not None
        how = (
            "forced"
            if trace.forced
            else "greedy"
            if trace.u is None
            else (f"u = {trace.u:.4f}")
        )
        rows.append((str(s.index), str(trace.token_id), tok.display(trace.token_id),
                     f"{trace.p:.4f}", how))  # fmt: skip
    columns = ("#", "id", "token", "p", "draw")
    return Table(f"Tokens sampled ({len(rows)})", columns, tuple(rows),
                 (True, True, False, True, False))  # fmt: skip


def action_label(session: Session, event: Event) -> str:
    """What an event did, in words."""
    args = event.args
    simple = {
        "step": "Step", "step_over": "Step over", "back": "Back one stage",
        "next_token": "Next token", "back_token": "Back one token",
    }  # fmt: skip
    if event.kind in simple:
        return simple[event.kind]
    if event.kind == "run":
        goal = "the next breakpoint" if args.get("to_breakpoint") else "the end"
        stopped = RUN_STOPS.get(str(args.get("stopped")), "stopped")
        return f"Run to {goal}: {stopped}"
    if event.kind == "force":
        token_id = args["token_id"]
        return f"Force {session.model.tokenizer.display(token_id)} (id {token_id})"
    if event.kind == "set_sampler":
        changes = (f"{SETTING_LABELS.get(k, k)} = {v}" for k, v in args.items())
        return "Set " + ", ".join(changes)
    if event.kind == "set_seed":
        return f"Set seed = {args['seed']}"
    if event.kind == "set_prompt":
        return f"Set prompt {args['prompt']!r}"
    if event.kind in ("add_breakpoint", "remove_breakpoint"):
        verb = "Add" if event.kind == "add_breakpoint" else "Remove"
        return f"{verb} breakpoint {Breakpoint(args['kind'], args['value']).describe()}"
    return event.kind


def _summary(recording: Recording) -> tuple[tuple[str, str], ...]:
    header = recording.header
    s, model = header.origin.settings, header.model
    sampler = s.sampler
    sampling = (
        f"temperature {sampler.temperature:g}, top-k {sampler.top_k}, top-p "
        f"{sampler.top_p:g}, min-p {sampler.min_p:g}, repetition penalty "
        f"{sampler.repetition_penalty:g}; seed {s.seed}; up to "
        f"{s.max_new_tokens} new tokens"
    )
    rows = [
        ("model", f"{model.name} (sha256 {model.sha256[:12]})"),
        ("prompt", repr(s.prompt)),
        ("sampling", sampling),
    ]
    if s.stop:
        rows.append(("stop at", ", ".join(repr(x) for x in s.stop)))
    if header.origin.breakpoints:
        described = ", ".join(b.describe() for b in header.origin.breakpoints)
        rows.append(("breakpoints", described))
    scenario = header.scenario
    if scenario is not None and scenario.get("path"):
        rows.append(("scenario", Path(scenario["path"]).name))
    events = len(recording.events)
    rows.append(("recording", f"{events} events, stepper {header.stepper}"))
    return tuple(rows)


def _notes(recording: Recording) -> tuple[str, ...]:
    """What a reader should know about the recording itself."""
    notes = []
    if not recording.stopped:
        notes.append(
            "The recording ends without its stop mark: the program ended while "
            "recording, and every step it wrote is shown."
        )
    if any("cut off" in note for note in recording.notes):
        notes.append("Its last line was cut off mid-write and is left out.")
    return tuple(notes)


def default_output(recording: Path, to: str) -> Path:
    """The file an export writes when no -o is given: the recording's, renamed."""
    return recording.with_suffix("." + to)


def export(
    replayer: Replayer,
    to: str,
    output: Path,
    *,
    steps: list[int] | None = None,
    width: int = 100,
    overwrite: bool = False,
) -> list[Path]:
    """Write the recording as `to` into `output`; return the files written."""
    from stepper.export_html import html
    from stepper.export_markdown import markdown
    from stepper.export_term import cast, svgs

    writers: dict[str, Callable[[Walkthrough], str]] = {"md": markdown, "html": html}
    walk = walkthrough(replayer, frames=to == "cast")
    if to in writers:
        files = {output: writers[to](walk)}
    elif to == "cast":
        files = {output: cast(walk, width)}
    else:
        files = svgs(walk, output, steps, width)
    for path in files:
        _refuse_existing(path, overwrite)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8", newline="\n")
    return list(files)


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise RecordingError(
            f"{path}: already exists; choose another file with -o or pass --force "
            "to overwrite it"
        )
