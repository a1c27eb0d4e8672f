"""What each `stepper` subcommand does, once its arguments are parsed."""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager, nullcontext
from inspect import signature
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape
from rich.table import Table

from stepper.cli import console
from stepper.errors import RecordingError
from stepper.load import describe, load_model
from stepper.tokenizer import replay

if TYPE_CHECKING:
    from stepper.recording import Recorder
    from stepper.replay import Replayer
    from stepper.session import Session


def inspect(options: argparse.Namespace) -> int:
    """Print a model's architecture, sizes, vocabulary and tensor types."""
    model = load_model(options.model)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in describe(model):
        table.add_row(label, escape(value))
    console().print(table)
    return 0


def tokenize(options: argparse.Namespace) -> int:
    """Print the tokens, ids, offsets and BPE merges of a text."""
    model = load_model(options.model)
    tok, out = model.tokenizer, console()
    encoding = tok.encode(options.text)
    table = Table("#", "id", "token", "piece", "text span")
    for n, (token_id, (a, b)) in enumerate(
        zip(encoding.ids, encoding.offsets, strict=True)
    ):
        span = repr(options.text[a:b]) if b > a else "-"
        table.add_row(
            str(n), str(token_id), escape(tok.display(token_id)),
            escape(repr(tok.piece(token_id))), escape(span),
        )  # fmt: skip
    out.print(table)
    out.print(f"ids {encoding.ids}")
    _print_merges(encoding, options.merges)
    return 0


def _print_merges(encoding, limit: int) -> None:  # type: ignore[no-untyped-def]
    """List the BPE merges in the order they were applied, with the word after each."""
    out, merges = console(), encoding.merges
    if limit <= 0 or not merges:
        return
    out.print(f"[bold]merges[/] ({len(merges)} applied, in order)")
    words = [list(w) for w in encoding.words]
    for n, merge in enumerate(merges[:limit], 1):
        words = replay(words, [merge])
        after = _around(words[merge.word], merge.position)
        out.print(
            f"{n:4d}. {escape(merge.left)!s} + {escape(merge.right)!s}"
            f"  →  {escape(after)}"
        )
    if len(merges) > limit:
        out.print(f"      … {len(merges) - limit} more (--merges N to see them)")


def _around(pieces: list[str], at: int, reach: int = 6) -> str:
    """The pieces near `at`, joined with |, so a long text's merges stay short."""
    lo, hi = max(0, at - reach), min(len(pieces), at + reach + 1)
    head = "…|" if lo > 0 else ""
    tail = "|…" if hi < len(pieces) else ""
    return head + "|".join(pieces[lo:hi]) + tail


def trace(options: argparse.Namespace) -> int:
    """Run the whole pipeline headless and print it."""
    from stepper.scenario_session import session_from_options
    from stepper.trace import print_text, write_jsonl

    session = session_from_options(options)
    with _recording(options, session):
        if options.format == "jsonl":
            write_jsonl(session, sys.stdout, options.top)
        else:
            print_text(session, console(), options.top)
    return 0


def open_app(options: argparse.Namespace) -> int:
    """Open the debugger in the terminal."""
    from stepper.scenario_session import session_from_options

    session = session_from_options(options)
    try:
        from widgets.app import run_app
    except ImportError as error:
        print(f"stepper: the terminal app could not start ({error})", file=sys.stderr)
        return 1
    if options.record and "recorder" not in signature(run_app).parameters:
        print(
            "stepper: the terminal app cannot record yet (widgets.app.run_app takes "
            "no recorder); record headless with stepper trace --record FILE",
            file=sys.stderr,
        )
        return 1
    with _recording(options, session) as recorder:
        if recorder is None:
            run_app(session)
        else:
            run_app(session, recorder=recorder)
    return 0


def _recording(
    options: argparse.Namespace, session: Session
) -> AbstractContextManager[Recorder | None]:
    """Record the session into `--record FILE` while the block runs, if given."""
    if not options.record:
        return nullcontext()
    from stepper.recording import Recorder

    return Recorder.open(options.record, session, overwrite=options.force)


def replay_recording(options: argparse.Namespace) -> int:
    """Replay a recording in the app, or check it headless (--check)."""
    from stepper.replay import Replayer

    replayer = Replayer.open(options.file, options.model)
    for note in replayer.recording.notes:
        print(f"stepper: note: {note}", file=sys.stderr)
    if options.check:
        return _check(replayer)
    try:
        from widgets.app import run_replay
    except ImportError as error:
        print(f"stepper: the replay app could not start ({error})", file=sys.stderr)
        return 1
    run_replay(replayer)
    return 0


def _check(replayer: Replayer) -> int:
    """Replay headless; 1 at the first difference from the recording."""
    for step in replayer:
        if step.difference is not None:
            print(f"stepper: {step.difference}", file=sys.stderr)
            return 1
    path = replayer.recording.path
    console().print(f"{escape(str(path))}: {len(replayer)} events replayed, all match")
    return 0


def export(options: argparse.Namespace) -> int:
    """Write a recording as a cast, Markdown, HTML or SVG screenshots."""
    from stepper.export import default_output
    from stepper.export import export as write
    from stepper.replay import Replayer

    replayer = Replayer.open(options.file, options.model)
    output = Path(options.output or default_output(Path(options.file), options.to))
    written = write(
        replayer, options.to, output, steps=_steps(options.steps),
        width=options.width, overwrite=options.force,
    )  # fmt: skip
    for path in written:
        print(path)
    return 0


def _steps(text: str | None) -> list[int] | None:
    """`--steps 3,7,12` as numbers."""
    if not text:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise RecordingError(
            f"--steps {text}: not a list of step numbers; write them like 3,7,12"
        ) from None
