"""What each `stepper` subcommand does, once its arguments are parsed."""

from __future__ import annotations

import argparse
import sys

from rich.markup import escape
from rich.table import Table

from stepper.cli import console
from stepper.load import describe, load_model
from stepper.tokenizer import replay


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
        after = "|".join(words[merge.word])
        out.print(
            f"{n:4d}. {escape(merge.left)!s} + {escape(merge.right)!s}"
            f"  →  {escape(after)}"
        )
    if len(merges) > limit:
        out.print(f"      … {len(merges) - limit} more (--merges N to see them)")


def trace(options: argparse.Namespace) -> int:
    """Run the whole pipeline headless and print it."""
    from stepper.scenario_session import session_from_options
    from stepper.trace import print_text, write_jsonl

    session = session_from_options(options)
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
    run_app(session)
    return 0
