"""The Predict / Sample pane: candidates before and after each sampler stage."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.text import Text
from textual.reactive import reactive

from stepper.sampler import Candidate, SampleTrace, StageRecord, entropy_bits
from widgets.draw.bars import Bar, ProbabilityBars
from widgets.draw.cdf import CdfStrip
from widgets.draw.cells import logit_number, setting_number
from widgets.panes.base import Pane, hint
from widgets.snapshot import Snapshot

Display = Callable[[int], str]
ROWS = 8  # candidates per stage when the pane's height does not say
CDF_LINES = 6  # the cumulative strip and the hint under it
LABELS = {
    "logits": "logits",
    "repetition_penalty": "repetition penalty",
    "top_k": "top-k",
    "top_p": "top-p",
    "min_p": "min-p",
    "temperature": "temperature",
}


def setting_text(trace: SampleTrace, name: str) -> str:
    """The setting that drives stage `name`, as the user would type it."""
    if name == "logits":
        return "T = 1"
    value = getattr(trace.settings, name)
    if name == "temperature" and value == 0:
        return "0 (greedy)"
    return setting_number(value)


def cutoff_text(record: StageRecord) -> str:
    """Where the stage cut, in the stage's own terms."""
    if record.cutoff is None:
        return ""
    if record.name == "top_k":
        return f"logit ≥ {logit_number(record.cutoff)}"
    forms = {"top_p": "mass {:.3f}", "min_p": "p ≥ {:.4f}"}
    return forms.get(record.name, "{:.3g}").format(record.cutoff)


def stage_bars(
    before: StageRecord,
    record: StageRecord,
    display: Display,
    chosen: int | None,
    n: int = ROWS,
) -> list[Bar]:
    """Bars for the top `n` candidates going into a stage, kept or cut by it."""
    if record.n_survivors == record.n_before:
        return [_bar(c, display, True, chosen) for c in record.top(n)]
    cut = record.n_survivors
    rows = before.top(n)
    if n <= cut < len(before.ids):
        rows.append(before.top(cut + 1)[-1])  # the first one cut, to show where
    bars = []
    for candidate in rows:
        kept = record.lookup(candidate.token_id)
        bars.append(_bar(kept or candidate, display, kept is not None, chosen))
    return bars


def _bar(candidate: Candidate, display: Display, kept: bool, chosen: int | None) -> Bar:
    """One candidate as a bar."""
    token_id = candidate.token_id
    return Bar(
        display(token_id),
        token_id,
        candidate.logit,
        candidate.prob,
        kept=kept,
        chosen=kept and token_id == chosen,
    )


def stage_table(trace: SampleTrace, selected: int) -> Text:
    """One line per active stage: setting, tokens kept, cut-off; selected marked ▶.

    Stages whose setting turns them off share one line at the end.
    """
    records = (trace.initial, *trace.stages)
    text = Text(f"  {'stage':<20}{'setting':<12}{'tokens kept':<14}cut-off", "dim")
    for index, record in enumerate(records):
        if not record.active:
            continue
        kept = f"{record.n_survivors}"
        if record.n_survivors != record.n_before:
            kept = f"{record.n_before} → {record.n_survivors}"
        setting = setting_text(trace, record.name)
        mark = "▶ " if index == selected else "  "
        line = f"{mark}{LABELS[record.name]:<20}{setting:<12}{kept:<14}"
        style = "bold reverse" if index == selected else ""
        text.append("\n" + line + cutoff_text(record), style=style)
    off = [LABELS[r.name] for r in records if not r.active]
    if off:
        text.append("\n  off: " + ", ".join(off), style="dim")
    return text


def draw_line(trace: SampleTrace, display: Display) -> CdfStrip:
    """The final survivors end to end on [0, 1), and where the draw fell."""
    bounds = [float(b) for b in trace.cumulative]
    ids = [int(i) for i in trace.final.ids[: len(bounds)]]
    labels = [display(i) for i in ids]
    if bounds and bounds[-1] < 1.0 - 1e-9:  # the trace keeps only the top slots
        bounds.append(1.0)
        labels.append("…")
    how = "temperature 0 is greedy, the most likely token is taken"
    if trace.forced:
        how = f"forced: you chose {display(trace.token_id)}"
    slots = trace.final.n_survivors
    return CdfStrip(bounds, labels, trace.rank, trace.u, how, slots)


class PredictPane(Pane):
    """The model's distribution, each sampler stage's cut, and the draw."""

    TITLE = "Predict / Sample"
    KEY = "4"
    TAB = "Predict"

    stage_shown: reactive[int | None] = reactive(None, repaint=False)
    """The sampler stage whose bars are shown (0 = logits); None: the last one."""

    def watch_stage_shown(self) -> None:
        """Redraw the bars of the newly selected stage."""
        self.redraw()

    def draw(self, snapshot: Snapshot) -> RenderableType:
        """Raw candidates at Predict; the whole chain and the draw at Sample."""
        initial = snapshot.initial
        if initial is None:
            return hint("predictions appear at the Predict stage: press s to step")
        if snapshot.trace is None:
            return self._predicted(initial, snapshot.display)
        return self._sampled(snapshot.trace, snapshot.display)

    def _predicted(self, initial: StageRecord, display: Display) -> RenderableType:
        """The model's own distribution, before any sampler stage."""
        entropy = entropy_bits(initial.probs)
        title = Text.assemble(
            ("model's next-token distribution", "bold"),
            f" · entropy {entropy:.2f} bits · most likely {initial.probs[0]:.2%}",
        )
        n = max(3, self.room[1] - 2)
        bars = stage_bars(initial, initial, display, None, n)
        return Group(title, ProbabilityBars(bars), self._next_hint())

    def _sampled(self, trace: SampleTrace, display: Display) -> RenderableType:
        """The stage table, the selected stage's bars and the cumulative strip."""
        records = (trace.initial, *trace.stages)
        index = self.stage_index(trace)
        record, before = records[index], records[max(0, index - 1)]
        label = f"{LABELS[record.name]} {setting_text(trace, record.name)}"
        table = stage_table(trace, index)
        n = max(3, self.room[1] - len(table.plain.splitlines()) - CDF_LINES - 3)
        bars = ProbabilityBars(
            stage_bars(before, record, display, trace.token_id, n),
            cutoff=label,
            chosen_label="forced" if trace.forced else "picked",
        )
        title = Text(f"after {label}: candidates, logit, probability", "bold")
        return Group(
            table,
            title,
            bars,
            draw_line(trace, display),
            hint("( ) choose the stage shown · + - temperature · f force a token"),
        )

    def _next_hint(self) -> Text:
        """What happens next at Predict."""
        return hint("the sampler chain runs at the Sample stage: press s")

    def change_stage(self, delta: int) -> None:
        """Show the bars of the next (1) or previous (-1) sampler stage."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.trace is None:
            return
        count = len(snapshot.trace.stages) + 1
        self.stage_shown = (self.stage_index(snapshot.trace) + delta) % count

    def stage_index(self, trace: SampleTrace) -> int:
        """The record shown: the one chosen, else the last stage that is on."""
        records = (trace.initial, *trace.stages)
        if self.stage_shown is not None:
            return min(self.stage_shown, len(records) - 1)
        return max(i for i, r in enumerate(records) if r.active or i == 0)
