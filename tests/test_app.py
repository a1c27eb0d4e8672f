"""Pilot tests of the terminal app: helpers, opening, and every way of moving."""

from __future__ import annotations

import asyncio

from textual.pilot import Pilot
from textual.widgets import Input

from stepper.session import Stage
from widgets.app import StepperApp
from widgets.engine import Engine
from widgets.opening import open_model, open_scenario
from widgets.panes.lens import LensPane
from widgets.screens.main import MainScreen, StatusLine
from widgets.snapshot import Snapshot

WIDE, NARROW = (160, 50), (80, 24)


def story_app() -> StepperApp:
    """The app on the default scenario: stories260k, greedy, "Once upon a time"."""
    return StepperApp(factory=open_scenario)


async def settle(pilot: Pilot) -> None:
    """Wait until the engine thread is idle and its newest snapshot is drawn."""
    screen = main(pilot)
    for _ in range(2000):
        await pilot.pause()
        snapshot, engine = screen.snapshot, screen.engine
        drawn = snapshot is not None and snapshot.serial == engine.serial
        lens = screen.query_one(LensPane).pending
        if not engine.busy and not lens and (drawn or status(pilot).error):
            break
        await asyncio.sleep(0.005)
    await pilot.pause()


async def keys(pilot: Pilot, *pressed: str) -> Snapshot:
    """Press keys one by one, settling before and after each; the latest snapshot."""
    await settle(pilot)
    for key in pressed:
        await pilot.press(key)
        await settle(pilot)
    return main(pilot).snapshot  # type: ignore[return-value]


def main(pilot: Pilot) -> MainScreen:
    """The debugger screen (under any open dialog)."""
    screen = pilot.app.screen_stack[0]
    assert isinstance(screen, MainScreen)
    return screen


def status(pilot: Pilot) -> StatusLine:
    """The status line."""
    return main(pilot).query_one(StatusLine)


async def answer(pilot: Pilot, text: str) -> Snapshot:
    """Type `text` into the open dialog's input and press Enter."""
    field = pilot.app.screen.query_one(Input)
    field.focus()
    field.value = text
    await pilot.press("enter")
    await settle(pilot)
    return main(pilot).snapshot  # type: ignore[return-value]


# -- opening -----------------------------------------------------------------------


async def test_opens_at_tokenize_on_the_default_scenario():
    """With no arguments the story scenario opens at Tokenize with its note."""
    async with story_app().run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot)
        assert snapshot.stage == Stage.TOKENIZE
        assert [c.text for c in snapshot.chips][:2] == ["<s>", "␣Once"]
        assert "five tokens" in snapshot.note


async def test_a_given_session_opens_without_a_factory():
    """run_app(session) from the command line draws that session."""
    session = open_model("stories260k", "The dog").session
    async with StepperApp(session).run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot)
        assert snapshot.settings.prompt == "The dog"


# -- moving ------------------------------------------------------------------------


async def test_step_goes_through_every_stage_and_into_attend():
    """s: Tokenize → Embed → Attend layer 0 … 4 → Predict → Sample."""
    async with story_app().run_test(size=WIDE) as pilot:
        seen = []
        for _ in range(8):
            snapshot = await keys(pilot, "s")
            seen.append((snapshot.stage.value, snapshot.cursor.layer))
        assert seen[:3] == [("Embed", None), ("Attend", 0), ("Attend", 1)]
        assert seen[-2:] == [("Predict", None), ("Sample", None)]


async def test_step_over_takes_attend_as_a_whole():
    """o at Embed goes to Attend with no layer, then to Predict."""
    async with story_app().run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot, "o", "o")
        assert (snapshot.stage, snapshot.cursor.layer) == (Stage.ATTEND, None)
        assert (await keys(pilot, "o")).stage == Stage.PREDICT


async def test_back_returns_to_the_exact_earlier_state():
    """b after a step shows the same capture as before the step."""
    async with story_app().run_test(size=WIDE) as pilot:
        before = await keys(pilot, "n", "n")
        after = await keys(pilot, "b", "b", "b", "n")
        assert after.cursor == before.cursor
        assert after.trace is before.trace


async def test_next_token_and_back_token():
    """n goes to the next token's Sample; B to the previous one's."""
    async with story_app().run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot, "n", "n", "n")
        assert (snapshot.cursor.token, snapshot.stage) == (2, Stage.SAMPLE)
        assert len(snapshot.generated) == 3
        snapshot = await keys(pilot, "B")
        assert (snapshot.cursor.token, snapshot.stage) == (1, Stage.SAMPLE)


async def test_back_at_the_start_says_so():
    """b at Tokenize of the first token reports that nothing is earlier."""
    async with story_app().run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot, "b")
        assert snapshot.status == "already at the start"


async def test_run_stops_at_the_scenario_breakpoint():
    """r runs to the story's entropy breakpoint and says which one stopped it."""
    async with story_app().run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot, "r")
        assert snapshot.status.startswith("stopped at breakpoint: entropy >")
        assert snapshot.stage == Stage.PREDICT


async def test_run_to_end_ignores_breakpoints():
    """R runs to the end of generation."""
    async with story_app().run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot, "R")
        assert snapshot.done and snapshot.end_reason is not None
        assert snapshot.status.startswith("ran to the end")
        assert (await keys(pilot, "s")).status.startswith("generation has ended")


async def test_escape_interrupts_a_long_run(monkeypatch):
    """Esc stops a run between stages; progress is drawn while it runs."""
    check = Engine.should_stop

    def crawl(self: Engine) -> bool:
        self.stop.wait(0.05)  # a stage every 50 ms, unless stopped
        return check(self)

    monkeypatch.setattr(Engine, "should_stop", crawl)
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot)
        await pilot.press("R")  # run to the end: 40 tokens, ~10 s at this pace
        for _ in range(200):
            await pilot.pause(0.02)
            if main(pilot).snapshot.running:  # type: ignore[union-attr]
                break
        assert main(pilot).engine.busy
        await pilot.press("escape")
        await settle(pilot)
        snapshot = main(pilot).snapshot
        assert snapshot is not None and snapshot.status == "run stopped"
        assert not snapshot.done


async def test_toggle_and_add_breakpoints():
    """x sets then clears a breakpoint here; X adds one typed as KIND VALUE."""
    async with story_app().run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot, "x")
        assert [bp.describe() for bp in snapshot.breakpoints][-1] == "at token 0"
        snapshot = await keys(pilot, "x")
        assert "at token 0" not in [bp.describe() for bp in snapshot.breakpoints]
        await keys(pilot, "X")
        snapshot = await answer(pilot, "top_prob_below 0.4")
        assert snapshot.breakpoints[-1].describe() == "most likely p < 0.4"


async def test_a_malformed_breakpoint_is_an_error_line():
    """X with nonsense shows one line and changes nothing."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "X")
        await answer(pilot, "sometimes 3")
        assert "is not KIND VALUE" in status(pilot).error
