"""A recorded walkthrough as one self-contained HTML page (no scripts, no fetches).

The page carries its own stylesheet, light and dark, and every piece of text from
the model or the scenario is escaped.
"""

from __future__ import annotations

from html import escape

from stepper.export import Section, Walkthrough
from stepper.export_view import CODE_COLUMNS, Chip, Fact, Table, TokenText, View

STYLE = """
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --muted: #57606a;
  --line: #d0d7de; --chip: #eef1f4; --now: #ffe08a; --new: #dbeafe;
  --note: #f1f8e9; --noteline: #7cb342; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117;
  --muted: #9198a1; --line: #3d444d; --chip: #21262d; --now: #6b5200;
  --new: #12304f; --note: #1b2a14; --noteline: #7cb342; } }
body { font: 16px/1.5 system-ui, sans-serif; color: var(--fg);
  background: var(--bg); max-width: 58rem; margin: 2rem auto; padding: 0 1rem; }
h1 { margin-bottom: .25rem; }
h2 { font-size: 1.15rem; border-top: 1px solid var(--line); padding-top: 1rem;
  margin-top: 2rem; }
h2 .where { color: var(--muted); font-weight: normal; }
.help { color: var(--muted); font-style: italic; margin: .25rem 0 .75rem; }
.note { background: var(--note); border-left: 4px solid var(--noteline);
  padding: .5rem .75rem; margin: .75rem 0; }
.chips { display: flex; flex-wrap: wrap; gap: .25rem; margin: .5rem 0; }
.chip { font: 13px/1.4 ui-monospace, monospace; background: var(--chip);
  border: 1px solid var(--line); border-radius: 4px; padding: 0 .3rem;
  white-space: pre; }
.chip.generated { background: var(--new); }
.chip.current { background: var(--now); font-weight: bold; }
.chip sub { color: var(--muted); font-size: 10px; margin-left: .2rem; }
.text { white-space: pre-wrap; border-left: 3px solid var(--line);
  padding-left: .75rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: 14px; }
caption { text-align: left; font-weight: 600; padding-bottom: .25rem; }
th, td { border-bottom: 1px solid var(--line); padding: .15rem .6rem;
  text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td code { white-space: pre; }
tr.chosen td { background: var(--now); font-weight: bold; }
dl.summary { display: grid; grid-template-columns: max-content 1fr;
  gap: .1rem 1rem; }
dl.summary dt { color: var(--muted); }
dl.summary dd { margin: 0; }
""".strip()


def html(walk: Walkthrough) -> str:
    """The whole walkthrough as one HTML document."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(walk.title)}</title>",
        f"<style>\n{STYLE}\n</style></head>",
        "<body>",
        f"<h1>{escape(walk.title)}</h1>",
    ]
    if walk.description:
        parts.append(f"<p>{escape(walk.description)}</p>")
    parts.append(_summary(walk.summary))
    parts += [f'<p class="note">{escape(note)}</p>' for note in walk.notes]
    stage = None
    for section in walk.sections:
        # The stage's one-line explanation is repeated only when the stage changes.
        parts += _section(section, section.view.cursor.stage != stage)
        stage = section.view.cursor.stage
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def _summary(rows: tuple[tuple[str, str], ...]) -> str:
    items = "".join(
        f"<dt>{escape(label)}</dt><dd>{escape(value)}</dd>" for label, value in rows
    )
    return f'<dl class="summary">{items}</dl>'


def _section(section: Section, explain: bool) -> list[str]:
    view = section.view
    parts = [
        f'<section id="step-{section.number}">',
        f"<h2>{section.number}. {escape(section.action)} "
        f'<span class="where">→ {escape(view.label)}</span></h2>',
    ]
    if explain:
        parts.append(f'<p class="help">{escape(view.help)}</p>')
    parts += [
        f'<p class="note"><strong>Note.</strong> {escape(n)}</p>'
        for n in (view.notes if section.new_notes else ())
    ]
    if section.generated is not None:
        parts.append(_table(section.generated))
    parts += _view(view)
    parts.append("</section>")
    return parts


def _view(view: View) -> list[str]:
    parts = [_chips(view.chips), f'<p class="text">{escape(view.text)}</p>']
    if view.facts:
        items = "".join(f"<li>{_fact(fact)}</li>" for fact in view.facts)
        parts.append(f"<ul>{items}</ul>")
    parts += [_table(table) for table in view.tables]
    return parts


def _fact(fact: Fact) -> str:
    """A fact's parts joined, its tokens as code."""
    return "".join(_cell(p, isinstance(p, TokenText)) for p in fact)


def _chips(chips: tuple[Chip, ...]) -> str:
    """The context as chips, each with its id; the current token highlighted."""
    spans = "".join(
        f'<span class="chip {chip.role}">{escape(chip.text)}'
        f"<sub>{chip.token_id}</sub></span>"
        for chip in chips
    )
    return f'<div class="chips" aria-label="tokens">{spans}</div>'


def _table(table: Table) -> str:
    def cls(k: int) -> str:
        return ' class="num"' if table.numeric[k] else ""

    code = {k for k, name in enumerate(table.columns) if name in CODE_COLUMNS}
    head = "".join(f"<th{cls(k)}>{escape(c)}</th>" for k, c in enumerate(table.columns))
    rows = []
    for r, row in enumerate(table.rows):
        cells = "".join(
            f"<td{cls(k)}>{_cell(cell, k in code)}</td>" for k, cell in enumerate(row)
        )
        chosen = ' class="chosen"' if r == table.chosen else ""
        rows.append(f"<tr{chosen}>{cells}</tr>")
    return (
        f"<table><caption>{escape(table.title)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _cell(text: str, as_code: bool) -> str:
    return f"<code>{escape(text)}</code>" if as_code else escape(text)
