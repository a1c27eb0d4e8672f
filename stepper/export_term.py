"""A recorded walkthrough drawn as a terminal would show it: asciinema cast, SVG.

Each view is drawn with Rich at a fixed width into a recording console that
ignores the environment (no NO_COLOR, COLUMNS or TERM), so frames are the same on
every machine. The cast shows one frame per stage passed, each with a marker
such as "token 3, Attend", on a fixed pace: time in the cast is not the time the
recording took, which would make exports differ run to run.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

from rich import box
from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table as RichTable
from rich.text import Text

from stepper.errors import RecordingError
from stepper.export import Section, Walkthrough
from stepper.export_view import Chip, Fact, Table, TokenText, View

HEIGHT = 40  # rows of the cast's terminal; longer frames are cropped
MAX_CHIPS = 48  # the most recent tokens shown in a frame
STEP_MS = 1200  # how long the view an event ends on is shown
PASS_MS = 500  # how long a stage a run passes through is shown
READ_MS_PER_CHAR = 40  # extra time to read a narration note
MAX_READ_MS = 8000
CHIP_STYLES = {
    "prompt": "on grey23",
    "generated": "on dark_blue",
    "current": "bold black on yellow",
}

# Rich's SVG asks a CDN for its font; an exported file must not reach the network
# when opened, so only the locally installed font (then any monospace) is named.
_REMOTE_FONT = re.compile(r',?\s*url\("https?://[^"]*"\) format\("[^"]*"\)')


def render(view: View, heading: str) -> RenderableType:
    """One view as a Rich renderable: heading, notes, tokens, facts, tables."""
    parts: list[RenderableType] = [
        Text(heading, style="bold"),
        Text(view.help, style="italic"),
    ]
    for note in view.notes:
        parts.append(Panel(Text(note), title="Note", title_align="left",
                           border_style="green", box=box.ROUNDED))  # fmt: skip
    parts += [_chips(view.chips), Text("")]
    parts += [_fact(fact) for fact in view.facts]
    for table in view.tables:
        # The title as its own line: a table's title wraps at the table's width.
        parts += [Text(""), Text(table.title, style="bold"), _table(table)]
    return Group(*parts)


def _fact(fact: Fact) -> Text:
    """A fact as a bullet line, its tokens highlighted."""
    text = Text("• ")
    for part in fact:
        text.append(part, style="bold cyan" if isinstance(part, TokenText) else None)
    return text


def _chips(chips: tuple[Chip, ...]) -> Text:
    """The most recent tokens as chips, each followed by its id."""
    text = Text()
    if len(chips) > MAX_CHIPS:
        text.append(f"… {len(chips) - MAX_CHIPS} earlier  ", style="dim")
    for chip in chips[-MAX_CHIPS:]:
        text.append(chip.text, style=CHIP_STYLES[chip.role])
        text.append(f" {chip.token_id}  ", style="dim")
    return text


def _table(table: Table) -> RichTable:
    rich = RichTable(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for name, numeric in zip(table.columns, table.numeric, strict=True):
        rich.add_column(name, justify="right" if numeric else "left", no_wrap=True)
    for r, row in enumerate(table.rows):
        style = "bold black on yellow" if r == table.chosen else None
        rich.add_row(*row, style=style)
    return rich


def _console(width: int, height: int = HEIGHT) -> Console:
    """A recording console whose output depends on nothing but its arguments."""
    return Console(
        file=io.StringIO(), record=True, width=width, height=height,
        force_terminal=True, color_system="256", no_color=False, highlight=False,
        emoji=False, markup=False, legacy_windows=False, _environ={},
    )  # fmt: skip


def heading(section: Section, view: View) -> str:
    """The line above a view: step number, action and where it is."""
    if view is section.view:
        return f"Step {section.number}. {section.action} → {view.label}"
    return f"Step {section.number}. {section.action} … passing {view.label}"


def frame(view: View, title: str, width: int) -> str:
    """One view drawn as ANSI text, exactly HEIGHT lines or fewer."""
    console = _console(width)
    console.print(render(view, title))
    lines = console.export_text(styles=True).rstrip("\n").split("\n")
    if len(lines) > HEIGHT:
        lines = lines[: HEIGHT - 1] + ["… (cropped)"]
    return "\x1b[2J\x1b[H" + "\r\n".join(lines)


def cast(walk: Walkthrough, width: int) -> str:
    """An asciinema v2 recording: a header line, then output and marker events."""
    header = {
        "version": 2, "width": width, "height": HEIGHT, "timestamp": 0,
        "title": walk.title, "env": {"TERM": "xterm-256color"},
    }  # fmt: skip
    lines = [json.dumps(header, ensure_ascii=False)]
    ms = 0
    for section in walk.sections:
        for view in section.frames:
            label = view.label
            if len(section.frames) == 1 and section.action not in _MOVES:
                label = f"{label} ({section.action})"
            lines.append(_event(ms, "m", label))
            lines.append(_event(ms, "o", frame(view, heading(section, view), width)))
            ms += _hold(view, view is section.view)
    lines.append(_event(ms, "o", "\r\n"))
    return "\n".join(lines) + "\n"


_MOVES = (
    "Start",
    "Step",
    "Step over",
    "Back one stage",
    "Next token",
    "Back one token",
)


def _hold(view: View, final: bool) -> int:
    """Milliseconds a frame stays on screen: longer with a note to read."""
    reading = sum(len(note) for note in view.notes) * READ_MS_PER_CHAR
    return (STEP_MS if final else PASS_MS) + min(reading, MAX_READ_MS)


def _event(ms: int, code: str, data: str) -> str:
    return json.dumps([round(ms / 1000, 3), code, data], ensure_ascii=False)


def default_steps(walk: Walkthrough) -> list[int]:
    """The steps worth a screenshot: those with narration, and the last one."""
    chosen = [s.number for s in walk.sections if s.view.notes and s.new_notes]
    last = walk.sections[-1].number if walk.sections else None
    return chosen + ([last] if last is not None and last not in chosen else [])


def svgs(
    walk: Walkthrough, output: Path, steps: list[int] | None, width: int
) -> dict[Path, str]:
    """One SVG screenshot per chosen step, named by step unless there is one.

    A single step is written to `output` itself; several to `output` with the
    step number added (walk-007.svg).
    """
    steps = steps or default_steps(walk)
    by_number = {s.number: s for s in walk.sections}
    for n in steps:
        if n not in by_number:
            raise RecordingError(
                f"--steps {n}: the recording has steps 1 to {len(by_number)}; "
                "choose among those"
            )
    files = {}
    for n in steps:
        path = output
        if len(steps) > 1:
            path = output.with_name(f"{output.stem}-{n:03d}{output.suffix}")
        files[path] = _svg(by_number[n], walk.title, width)
    return files


def _svg(section: Section, title: str, width: int) -> str:
    console = _console(width, height=200)
    console.print(render(section.view, heading(section, section.view)))
    svg = console.export_svg(title=f"{title}: step {section.number}")
    return _REMOTE_FONT.sub("", svg)
