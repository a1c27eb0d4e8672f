"""A recorded walkthrough as Markdown (GitHub-flavoured: tables, code spans).

Tokens are written as code spans, so `<s>` or `*` in a token never turns into
markup; every other text from the model or the scenario is escaped.
"""

from __future__ import annotations

import re

from stepper.export import Section, Walkthrough
from stepper.export_view import CODE_COLUMNS, Chip, Fact, Table, TokenText, View

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")


def markdown(walk: Walkthrough) -> str:
    """The whole walkthrough as one Markdown document."""
    parts = [f"# {escape(walk.title)}", ""]
    if walk.description:
        parts += [escape(walk.description), ""]
    parts += _summary(walk.summary)
    for note in walk.notes:
        parts += [f"> {escape(note)}", ""]
    stage = None
    for section in walk.sections:
        # The stage's one-line explanation is repeated only when the stage changes.
        parts += _section(section, section.view.cursor.stage != stage)
        stage = section.view.cursor.stage
    return "\n".join(parts).rstrip("\n") + "\n"


def escape(text: str) -> str:
    """Plain text made inert in Markdown (newlines kept as visible marks)."""
    return _SPECIAL.sub(r"\\\1", text).replace("\n", "⏎ ")


def code(text: str, in_table: bool = False) -> str:
    """`text` as a code span, fenced with more backticks than it holds."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text[:1] in ("`", " ") or text[-1:] in ("`", " ") else ""
    if in_table:
        # GitHub splits table cells at | even inside code spans.
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def _summary(rows: tuple[tuple[str, str], ...]) -> list[str]:
    lines = ["| | |", "|:--|:--|"]
    lines += [f"| {label} | {escape(value)} |" for label, value in rows]
    return [*lines, ""]


def _section(section: Section, explain: bool) -> list[str]:
    view = section.view
    lines = [f"## {section.number}. {escape(section.action)} → {view.label}", ""]
    if explain:
        lines += [f"*{escape(view.help)}*", ""]
    for note in view.notes if section.new_notes else ():
        lines += [f"> **Note.** {escape(note)}", ""]
    if section.generated is not None:
        lines += _table(section.generated)
    lines += _view(view)
    return lines


def _view(view: View) -> list[str]:
    lines = [f"**Tokens** ({len(view.chips)}): {_chips(view.chips)}", ""]
    lines += [f"**Text:** {escape(view.text)}", ""]
    lines += [f"- {fact_text(fact)}" for fact in view.facts]
    if view.facts:
        lines.append("")
    for table in view.tables:
        lines += _table(table)
    return lines


def fact_text(fact: Fact) -> str:
    """A fact's parts joined, its tokens as code spans."""
    return "".join(code(p) if isinstance(p, TokenText) else escape(p) for p in fact)


def _chips(chips: tuple[Chip, ...]) -> str:
    """The context as code spans; the token being worked on in bold."""
    shown = []
    for chip in chips:
        span = code(chip.text)
        shown.append(f"**{span}**" if chip.role == "current" else span)
    return " ".join(shown)


def _table(table: Table) -> list[str]:
    """A titled GitHub table; the token column as code, the chosen row marked."""
    head = "| " + " | ".join(table.columns) + " |"
    rule = "|" + "|".join("--:" if n else ":--" for n in table.numeric) + "|"
    lines = [f"**{escape(table.title)}**", "", head, rule]
    tokens = {k for k, name in enumerate(table.columns) if name in CODE_COLUMNS}
    for r, row in enumerate(table.rows):
        cells = [
            code(cell, in_table=True) if k in tokens else escape(cell)
            for k, cell in enumerate(row)
        ]
        if r == table.chosen:
            cells = [f"**{cell}**" if cell else cell for cell in cells]
            cells[0] = "▶ " + cells[0]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]
