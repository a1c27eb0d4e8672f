"""Every key of the debugger and of its replay, grouped as the help lists them."""

from __future__ import annotations

from textual.binding import Binding, BindingType

GROUPS: dict[str, list[Binding]] = {
    "Move": [
        Binding("s", "step", "Step", tooltip="Next stage; into Attend layer by layer"),
        Binding("o", "step_over", "Over", tooltip="Next stage; Attend as a whole"),
        Binding("b", "back", "Back", tooltip="Back one stage (one layer in Attend)"),
        Binding("n", "next_token", "Next token", tooltip="To the next Sample stage"),
        Binding("B", "back_token", "Back token", show=False),
        Binding("r", "run", "Run", tooltip="Run to the next breakpoint or the end"),
        Binding("R", "run_to_end", "Run to end", show=False),
        Binding("escape", "interrupt", "Stop run", show=False),
        Binding("x", "toggle_breakpoint", "Breakpoint here", show=False),
        Binding("X", "add_breakpoint", "Add breakpoint…", show=False),
        Binding(
            "c",
            "clear_breakpoints",
            "Clear breakpoints",
            show=False,
            tooltip="Remove every breakpoint (x removes the one at the cursor)",
        ),
    ],
    "Sample": [
        Binding("t", "ask_setting('temperature')", "Temp…"),
        Binding("+", "nudge_temperature(0.1)", "Temperature +0.1", show=False),
        Binding("-", "nudge_temperature(-0.1)", "Temperature −0.1", show=False),
        Binding("k", "ask_setting('top_k')", "Top-k…", show=False),
        Binding("p", "ask_setting('top_p')", "Top-p…", show=False),
        Binding("m", "ask_setting('min_p')", "Min-p…", show=False),
        Binding("d", "ask_setting('seed')", "Seed…", show=False),
        Binding("f", "force", "Force…"),
    ],
    "Session": [
        Binding("e", "edit_prompt", "Prompt…"),
        Binding("ctrl+o", "open_scenario", "Open…", show=False),
        Binding(
            "w",
            "record",
            "Start/stop recording",
            show=False,
            tooltip="Record the session into a file, or stop recording",
        ),
    ],
    "View": [
        Binding("]", "layer(1)", "Next layer", show=False),
        Binding("[", "layer(-1)", "Previous layer", show=False),
        Binding(".", "head(1)", "Next head", show=False),
        Binding("comma", "head(-1)", "Previous head", show=False, key_display=","),
        Binding("a", "mean_heads", "Mean of heads", show=False),
        Binding("v", "values", "Numbers in heatmaps", show=False),
        Binding(">", "merge(1)", "Next merge", show=False),
        Binding("<", "merge(-1)", "Previous merge", show=False),
        Binding(")", "sampler_stage(1)", "Next sampler stage", show=False),
        Binding("(", "sampler_stage(-1)", "Previous sampler stage", show=False),
        *(
            Binding(str(n), f"pane({n})", f"Show pane {n}", show=False)
            for n in range(1, 7)
        ),
        Binding("question_mark", "help", "Help"),
    ],
}

ALL: list[Binding] = [binding for group in GROUPS.values() for binding in group]
BINDINGS: list[BindingType] = list(ALL)  # as Textual's BINDINGS are typed

# The replay screen: its own moving keys (arrows, so n and b keep their debugger
# meaning), and the debugger's view keys. Arrows and Home take priority over the
# focused pane's scrolling.
REPLAY_GROUPS: dict[str, list[Binding]] = {
    "Replay": [
        Binding("space", "toggle_play", "Play/pause", key_display="Space"),
        Binding(
            "left",
            "backward",
            "Back",
            priority=True,
            key_display="←",
            tooltip="Back one recorded event",
        ),
        Binding(
            "right",
            "forward",
            "Forward",
            priority=True,
            key_display="→",
            tooltip="Forward one recorded event",
        ),
        Binding(
            "-",
            "speed(-1)",
            "Slower",
            key_display="−",
            tooltip="Play slower (down to 0.25 events a second)",
        ),
        Binding(
            "+", "speed(1)", "Faster", tooltip="Play faster (up to 8 events a second)"
        ),
        Binding(
            "home",
            "restart",
            "Restart",
            priority=True,
            key_display="Home",
            tooltip="Back to the recording's first event",
        ),
    ],
    "View": GROUPS["View"],
}

REPLAY_ALL: list[Binding] = [b for group in REPLAY_GROUPS.values() for b in group]
REPLAY_BINDINGS: list[BindingType] = list(REPLAY_ALL)
