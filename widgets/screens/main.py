"""The debugger screen: six panes over one session, and every key that drives it.

The screen owns the `Engine`. Keys become actions queued on the engine thread;
each finished action posts a `Snapshot`, which the screen hands to every pane (the
panes never talk to each other). At 80x24 the panes collapse into tabs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Grid
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Footer, Static, Tab, Tabs

from stepper.errors import StepperError
from stepper.recording import Recorder
from stepper.session import Session, Stage
from widgets import actions
from widgets.engine import Action, Engine
from widgets.keys import BINDINGS as KEYS
from widgets.opening import Opened
from widgets.panes.attention import AttentionPane
from widgets.panes.base import Pane
from widgets.panes.embeddings import EmbeddingsPane
from widgets.panes.lens import LensPane
from widgets.panes.predict import PredictPane
from widgets.panes.timeline import TimelinePane
from widgets.panes.tokens import TokensPane
from widgets.screens.ask import AskScreen
from widgets.screens.force import ForceScreen
from widgets.screens.help import HelpScreen
from widgets.screens.recording import RecordingScreen
from widgets.snapshot import Snapshot

PANES: dict[str, type[Pane]] = {
    "tokens": TokensPane,
    "attention": AttentionPane,
    "predict": PredictPane,
    "embeddings": EmbeddingsPane,
    "lens": LensPane,
    "timeline": TimelinePane,
}
BY_KEY = {cls.KEY: name for name, cls in PANES.items()}
STAGE_PANE = {
    Stage.TOKENIZE: "tokens",
    Stage.EMBED: "embeddings",
    Stage.ATTEND: "attention",
    Stage.PREDICT: "predict",
    Stage.SAMPLE: "predict",
}
SETTING_HELP = {
    "temperature": "a number >= 0; 0 is greedy (always the most likely token)",
    "top_k": "a whole number >= 0; 0 turns top-k off",
    "top_p": "a value in (0, 1]; 1 turns top-p off",
    "min_p": "a value in [0, 1); 0 turns min-p off",
    "seed": "a whole number; each token draws from (seed, token index)",
}
Opener = Callable[[str], Opened]


def where(snapshot: Snapshot) -> str:
    """The cursor in a few words: token index, stage and layer."""
    cursor = snapshot.cursor
    layer = "" if cursor.layer is None else f" layer {cursor.layer}"
    return f"token {cursor.token} · {cursor.stage.value}{layer}"


class StatusLine(Static):
    """One line under the panes: the position, the last status, or an error."""

    error: reactive[str] = reactive("")
    """The last error, shown until the next action succeeds."""
    status: reactive[str] = reactive("")
    """What the last action reported."""

    def render(self) -> str:
        """The error if any, else the status."""
        return f"✗ {self.error}" if self.error else self.status

    def watch_error(self) -> None:
        """Colour the line as an error while there is one."""
        self.set_class(bool(self.error), "-error")


class MainScreen(RecordingScreen):
    """Tokens, Embeddings, Attention, Predict/Sample, Logit lens and Timeline."""

    BINDINGS = KEYS
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (34, "-tall")]

    shown: reactive[str] = reactive("tokens")
    """The pane shown when the panes collapse into tabs."""

    @dataclass
    class Updated(Message):
        """The engine finished an action (or made progress in a run)."""

        snapshot: Snapshot

        def can_replace(self, message: Message) -> bool:
            """A newer snapshot makes an older, undelivered one pointless."""
            return isinstance(message, MainScreen.Updated)

    @dataclass
    class Failed(Message):
        """An action failed with a one-line error; the session is unchanged."""

        error: str

    def __init__(
        self,
        session: Session | None,
        opener: Opener,
        start: Action | None,
        recorder: Recorder | None = None,
    ) -> None:
        super().__init__()
        self.engine = Engine(session, self._publish, self._fail, self.notice)
        self.engine.recorder = recorder  # recording since the command line
        self.opener = opener
        self.start = start
        self.snapshot: Snapshot | None = None

    def compose(self) -> ComposeResult:
        """Tabs (narrow terminals only), the pane grid, status and footer."""
        by_key = sorted(PANES.items(), key=lambda item: item[1].KEY)
        yield Tabs(*(Tab(f"{c.KEY} {c.TAB}", id=f"tab-{n}") for n, c in by_key))
        with Grid(id="panes"):
            for name, cls in PANES.items():
                if cls is LensPane:
                    yield LensPane(id=name, busy=lambda: self.engine.busy)
                else:
                    yield cls(id=name)
        yield StatusLine(id="status")
        yield Footer()

    def on_mount(self) -> None:
        """Load the session (if a factory was given) or draw the one given."""
        self.submit(self.start or (lambda session: ""), opens=True)
        self.watch_shown()

    # -- engine -----------------------------------------------------------------

    def submit(self, action: Action, opens: bool = False) -> None:
        """Queue an action for the engine thread, starting it if idle.

        Only an action that `opens` a session may run while none is open (the
        first one failed to load).
        """
        if self.engine.session is None and not opens:
            self.query_one(
                StatusLine
            ).error = (
                "no session is open; ctrl+o opens a scenario (story, temperature, ...)"
            )
            return
        if self.engine.submit(action):
            self.run_worker(
                self.engine.drain, thread=True, group="engine", description="engine"
            )

    def _publish(self, snapshot: Snapshot) -> None:
        """Engine thread: hand a snapshot to the UI."""
        self.post_message(self.Updated(snapshot))

    def _fail(self, error: str) -> None:
        """Engine thread: report an error to the UI."""
        self.post_message(self.Failed(error))

    def on_main_screen_updated(self, message: Updated) -> None:
        """Relay the snapshot to every pane and follow the stage in tab mode."""
        snapshot = message.snapshot
        previous, self.snapshot = self.snapshot, snapshot
        for pane in self.query(Pane):
            pane.snapshot = snapshot
        status = self.query_one(StatusLine)
        status.status = f"{where(snapshot)} │ {snapshot.status or self._hint(snapshot)}"
        status.error = snapshot.error
        if previous is None or previous.stage != snapshot.stage:
            self.shown = STAGE_PANE[snapshot.stage]

    def on_main_screen_failed(self, message: Failed) -> None:
        """Show the error; the session stays as it was."""
        self.query_one(StatusLine).error = message.error

    def _hint(self, snapshot: Snapshot) -> str:
        """The default status: what the next key does."""
        if snapshot.done:
            return f"generation ended ({snapshot.end_reason}) · b/B back · e new prompt"
        return "s step · o over · n next token · r run · f force · ? help"

    # -- tabs -------------------------------------------------------------------

    def watch_shown(self) -> None:
        """Mark the pane shown in tab mode, and its tab."""
        for pane in self.query(Pane):
            pane.set_class(pane.id == self.shown, "-shown")
        tabs = self.query_one(Tabs)
        if tabs.active != f"tab-{self.shown}":
            tabs.active = f"tab-{self.shown}"

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        """Show the pane whose tab was chosen."""
        if event.tab.id:
            self.shown = event.tab.id.removeprefix("tab-")

    # -- moving -----------------------------------------------------------------

    def action_step(self) -> None:
        """Next stage, into Attend layer by layer."""
        self.submit(actions.move("step"))

    def action_step_over(self) -> None:
        """Next stage, taking Attend as a whole."""
        self.submit(actions.move("step_over"))

    def action_back(self) -> None:
        """Back one stage (one layer inside Attend)."""
        self.submit(actions.move("back"))

    def action_next_token(self) -> None:
        """To the Sample stage of the next token."""
        self.submit(actions.move("next_token"))

    def action_back_token(self) -> None:
        """To the Sample stage of the previous token."""
        self.submit(actions.move("back_token"))

    def action_run(self) -> None:
        """Run to the next breakpoint or the end; Esc stops it."""
        self.submit(actions.run(True, self.engine.should_stop))

    def action_run_to_end(self) -> None:
        """Run to the end, ignoring breakpoints; Esc stops it."""
        self.submit(actions.run(False, self.engine.should_stop))

    def action_interrupt(self) -> None:
        """Stop a run, or leave a maximized pane."""
        if self.engine.busy:
            self.engine.interrupt()
        elif self.maximized is not None:
            self.minimize()

    def action_toggle_breakpoint(self) -> None:
        """Break at the cursor's token, or stop breaking there."""
        self.submit(actions.toggle_breakpoint)

    def action_add_breakpoint(self) -> None:
        """Ask for a breakpoint of any kind; say which are set and how to clear them."""
        kinds = "at_token 5 · on_token ␣cat · top_prob_below 0.3 · entropy_above 3"
        now = self.snapshot.breakpoints if self.snapshot else ()
        if now:
            listed = ", ".join(bp.describe() for bp in now)
            kinds += f"\nset now: {listed} (c clears them)"
        self._ask("Add a breakpoint (KIND VALUE)", "", kinds, actions.add_breakpoint)

    def action_clear_breakpoints(self) -> None:
        """Remove every breakpoint."""
        self.submit(actions.clear_breakpoints)

    # -- sampling ---------------------------------------------------------------

    def action_ask_setting(self, name: str) -> None:
        """Ask for a new value of a sampling setting or the seed."""
        current = self._current_setting(name)
        self._ask(
            f"{name.replace('_', '-')} (now {current})",
            current,
            SETTING_HELP[name],
            lambda text: actions.set_setting(name, actions.parse_setting(name, text)),
        )

    def _current_setting(self, name: str) -> str:
        """The setting's value as text, from the latest snapshot."""
        if self.snapshot is None:
            return ""
        if name == "seed":
            return str(self.snapshot.seed)
        return f"{getattr(self.snapshot.sampler_here, name):g}"

    def action_nudge_temperature(self, delta: float) -> None:
        """Raise or lower the temperature by a step."""
        self.submit(actions.nudge_temperature(delta))

    def action_force(self) -> None:
        """Pick or type the token to force at this position."""
        self.app.push_screen(ForceScreen(self._candidates()), self._forced)

    def _candidates(self) -> list[tuple[int, str, float]]:
        """The most likely tokens at the cursor, for the force dialog."""
        snapshot = self.snapshot
        if snapshot is None or snapshot.initial is None:
            return []
        record = snapshot.initial  # the model's own ranking: any token may be forced
        return [
            (c.token_id, snapshot.display(c.token_id), c.prob) for c in record.top(12)
        ]

    def _forced(self, answer: str | None) -> None:
        """Force the answered token."""
        if answer:
            self.submit(actions.force(answer))

    # -- session ----------------------------------------------------------------

    def action_edit_prompt(self) -> None:
        """Ask for a new prompt; the session restarts at Tokenize."""
        prompt = self.snapshot.settings.prompt if self.snapshot else ""
        self._ask("Prompt", prompt, "Enter restarts at Tokenize", actions.set_prompt)

    def action_open_scenario(self) -> None:
        """Ask for a scenario file (or built-in name) to open."""
        self._ask(
            "Open a scenario",
            "",
            "a .toml file or a built-in scenario name; the current session stays "
            "if it fails",
            lambda ref: lambda _session: self.opener(ref),
            opens=True,
        )

    def _ask(
        self,
        question: str,
        value: str,
        help_text: str,
        make: Callable[[str], Action],
        opens: bool = False,
    ) -> None:
        """Ask a question, then queue the action made from the answer."""

        def answered(answer: str | None) -> None:
            if answer is None:
                return
            try:
                self.submit(make(answer), opens)
            except StepperError as error:
                self.query_one(StatusLine).error = str(error)

        self.app.push_screen(AskScreen(question, value, help_text), answered)

    # -- view -------------------------------------------------------------------

    def action_layer(self, delta: int) -> None:
        """Show another layer's attention."""
        self.query_one(AttentionPane).change_layer(delta)

    def action_head(self, delta: int) -> None:
        """Show another head's attention."""
        self.query_one(AttentionPane).change_head(delta)

    def action_mean_heads(self) -> None:
        """Switch between one head and the mean over heads."""
        self.query_one(AttentionPane).toggle_mean()

    def action_values(self) -> None:
        """Print numbers in the heatmaps instead of shade symbols, or back."""
        for pane in (self.query_one(AttentionPane), self.query_one(EmbeddingsPane)):
            pane.show_values = not pane.show_values

    def action_merge(self, delta: int) -> None:
        """Replay one BPE merge more or fewer."""
        self.query_one(TokensPane).replay_step(delta)

    def action_sampler_stage(self, delta: int) -> None:
        """Show the bars of another sampler stage."""
        self.query_one(PredictPane).change_stage(delta)

    def action_pane(self, number: int) -> None:
        """Show a pane: its tab when narrow, maximized (or back) when wide."""
        name = BY_KEY[str(number)]
        pane = self.query_one(f"#{name}", Pane)
        if self.has_class("-narrow") or self.has_class("-short"):
            self.shown = name
        elif self.maximized is pane:
            self.minimize()
        else:
            self.maximize(pane, container=False)

    def action_help(self) -> None:
        """Show every key."""
        self.app.push_screen(HelpScreen())
