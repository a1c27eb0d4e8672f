"""The Timeline pane: where the session is, what it made, and what to stop at."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from stepper.session import Stage
from widgets.draw.cells import plural, setting_number
from widgets.panes.base import Pane
from widgets.snapshot import Snapshot

RECORDING_OFF = "○ not recording"
SHOWN_TOKENS = 60  # generated tokens listed, the latest ones


def position_line(snapshot: Snapshot) -> Text:
    """Token index, stage and layer, how generation ended, and recording state."""
    c = snapshot.cursor
    limit = snapshot.settings.max_new_tokens
    text = Text(f"token {c.token} of ≤{limit}", style="bold")
    text.append(f" · {c.stage.value}")
    if c.layer is not None:
        text.append(f" · layer {c.layer} (of 0–{snapshot.n_layers - 1})")
    if snapshot.done:
        text.append(f" · ended: {snapshot.end_reason}", style="bold")
    text.append(f" · {snapshot.model_name} · {plural(snapshot.events, 'event')}  ")
    return text.append(recording_mark(snapshot))


def recording_mark(snapshot: Snapshot) -> Text:
    """`● recording FILE (N events)` while the session is recorded."""
    if not snapshot.recording:
        return Text(RECORDING_OFF, style="dim")
    events = plural(snapshot.recorded, "event")
    return Text(f"● recording {snapshot.recording} ({events})", style="bold red")


def pipeline_line(snapshot: Snapshot) -> Text:
    """The five stages with the current one reversed (and its layer)."""
    text = Text()
    for index, stage in enumerate(Stage):
        if index:
            text.append(" ▸ ", style="dim")
        label = stage.value
        if (
            stage == snapshot.stage == Stage.ATTEND
            and snapshot.cursor.layer is not None
        ):
            label += f" {snapshot.cursor.layer}"
        current = stage == snapshot.stage
        text.append(
            f"[{label}]" if current else label, "bold reverse" if current else ""
        )
    return text


def settings_line(snapshot: Snapshot) -> Text:
    """The sampling settings and seed in force for the current token."""
    s = snapshot.sampler_here
    return Text(
        f"temperature {setting_number(s.temperature)} · top-k {s.top_k} · "
        f"top-p {setting_number(s.top_p)} · min-p {setting_number(s.min_p)} · "
        f"repetition {setting_number(s.repetition_penalty)} · "
        f"seed {snapshot.seed}",
        style="dim",
    )


def breakpoints_line(snapshot: Snapshot) -> Text:
    """The breakpoints set, or how to set one."""
    if not snapshot.breakpoints:
        return Text("○ no breakpoints (x: break at this token, X: add one)", "dim")
    labels = ", ".join(bp.describe() for bp in snapshot.breakpoints)
    return Text(f"● breakpoints: {labels}")


def text_line(snapshot: Snapshot) -> Text:
    """The generated tokens so far, each with its probability (⚑ when forced)."""
    text = Text("generated: ", style="dim")
    if not snapshot.generated:
        return text.append("nothing yet", style="dim")
    hidden = max(0, len(snapshot.generated) - SHOWN_TOKENS)
    if hidden:
        text.append(f"… {hidden} earlier, then ", style="dim")
    for token in snapshot.generated[hidden:]:
        mark = "⚑" if token.forced else ""
        text.append(f"{mark}{token.text}")
        text.append(f" {token.p:.0%}  ", style="dim")
    return text


class TimelinePane(Pane):
    """Position, pipeline, settings, breakpoints, generated text and narration."""

    TITLE = "Timeline"
    KEY = "6"
    TAB = "Timeline"

    def draw(self, snapshot: Snapshot) -> RenderableType:
        """Every line of the timeline."""
        lines: list[RenderableType] = [position_line(snapshot), pipeline_line(snapshot)]
        if snapshot.note:
            lines.append(Text(f"✎ {snapshot.note}", style="italic"))
        lines += [
            text_line(snapshot),
            breakpoints_line(snapshot),
            settings_line(snapshot),
        ]
        return Group(*lines)
