"""The `stepper` command: the debugger in the terminal, and headless subcommands.

    stepper [SCENARIO] [--model REF] [--prompt TEXT]     open the debugger
    stepper inspect MODEL                                what a model file holds
    stepper tokenize --model REF TEXT                    tokens, ids and merges
    stepper trace [SCENARIO] [flags]                     the whole pipeline, headless
    stepper replay FILE [--check]                        replay a recording
    stepper export FILE --to cast|md|html|svg            share a recording

A mistake in the user's input prints one line on stderr and exits with status 2;
`replay --check` exits with status 1 when today's engine differs from the recording.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from rich.console import Console

from stepper import __version__
from stepper.errors import StepperError

log = logging.getLogger("stepper")

SUBCOMMANDS = ("inspect", "tokenize", "trace", "replay", "export")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args and args[0] in SUBCOMMANDS else "open"
    if command != "open":
        args = args[1:]
    parser = _parser(command)
    options = parser.parse_args(args)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        return int(_commands()[command](options) or 0)
    except StepperError as error:
        print(f"stepper: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _commands() -> dict[str, Callable[[argparse.Namespace], int | None]]:
    from stepper import commands

    return {
        "open": commands.open_app,
        "inspect": commands.inspect,
        "tokenize": commands.tokenize,
        "trace": commands.trace,
        "replay": commands.replay_recording,
        "export": commands.export,
    }


def _parser(command: str) -> argparse.ArgumentParser:
    """The argument parser of one subcommand (or of the debugger itself)."""
    prog = "stepper" if command == "open" else f"stepper {command}"
    parser = _Parser(prog=prog, description=_DESCRIPTIONS[command])
    parser.add_argument("--version", action="version", version=__version__)
    _ARGUMENTS[command](parser)
    return parser


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake reported in one line like every other error."""

    def error(self, message: str) -> NoReturn:
        """Print `prog: message; see prog -h` on stderr and exit with status 2."""
        self.exit(2, f"{self.prog}: {message}; see {self.prog} -h\n")


def _whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number from {low} to {high}"
            )
        return value

    return parse


def _open_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", help="scenario file or built-in name")
    _model_and_prompt(p)
    _record_arguments(p)
    p.epilog = "subcommands: " + ", ".join(SUBCOMMANDS) + " (stepper SUBCOMMAND -h)"


def _inspect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="built-in name, .gguf file or Hugging Face folder")


def _tokenize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("text", help="the text to tokenize")
    p.add_argument("--model", default="stories260k", help="model whose tokenizer")
    p.add_argument(
        "--merges", type=_whole(0, 10**6), default=40, help="merges to list (0: none)"
    )


def _trace_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", nargs="?", help="scenario file or built-in name")
    _model_and_prompt(p)
    p.add_argument("--max-new-tokens", type=int, metavar="N")
    p.add_argument("--temperature", type=float, metavar="T")
    p.add_argument("--top-k", type=int, metavar="K")
    p.add_argument("--top-p", type=float, metavar="P")
    p.add_argument("--min-p", type=float, metavar="M")
    p.add_argument("--seed", type=int, metavar="S")
    p.add_argument(
        "--top", type=_whole(0, 1000), default=5, metavar="N", help="candidates shown"
    )
    p.add_argument("--format", choices=("text", "jsonl"), default="text")
    _record_arguments(p)


def _record_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--record", metavar="FILE", help="record the session into FILE")
    p.add_argument("--force", action="store_true", help="overwrite FILE if it exists")


def _replay_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="a recording written with --record")
    p.add_argument(
        "--check", action="store_true",
        help="replay headless; exit 1 naming the first step that differs",
    )  # fmt: skip
    p.add_argument("--model", metavar="REF", help="the recorded model, if moved")


def _export_arguments(p: argparse.ArgumentParser) -> None:
    from stepper.export import FORMATS

    p.add_argument("file", help="a recording written with --record")
    p.add_argument("--to", choices=FORMATS, required=True, help="the output format")
    p.add_argument(
        "-o", "--output", metavar="OUT",
        help="file to write (default: FILE with the format's suffix); svg with "
        "several steps writes OUT-007.svg and so on",
    )  # fmt: skip
    p.add_argument(
        "--steps", metavar="N,M", help="svg: steps to draw (default: narrated, last)"
    )
    p.add_argument(
        "--width", type=_whole(40, 400), default=100, help="cast and svg columns"
    )
    p.add_argument("--model", metavar="REF", help="the recorded model, if moved")
    p.add_argument("--force", action="store_true", help="overwrite existing files")


def _model_and_prompt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="REF", help="built-in name, .gguf or HF folder")
    p.add_argument("--prompt", metavar="TEXT", help="the prompt to start from")


_ARGUMENTS: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "open": _open_arguments,
    "inspect": _inspect_arguments,
    "tokenize": _tokenize_arguments,
    "trace": _trace_arguments,
    "replay": _replay_arguments,
    "export": _export_arguments,
}

_DESCRIPTIONS = {
    "open": "Step through a language model's generation in the terminal.",
    "inspect": "Show a model's architecture, sizes, vocabulary and tensor types.",
    "tokenize": "Show how a model's tokenizer splits text: tokens, ids and merges.",
    "trace": "Run the whole pipeline headless and print it stage by stage.",
    "replay": "Replay a recording in the terminal app, or check it headless.",
    "export": "Write a recording as an asciinema cast, Markdown, HTML or SVG.",
}


def console() -> Console:
    """The console commands print to (colour only when stdout is a terminal)."""
    return Console(highlight=False, soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
