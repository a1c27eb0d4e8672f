"""Snapshot tests: each pane pinned in a meaningful state, at a fixed size.

Every test drives the app with its keys (commented) and lets the engine thread
finish before the screenshot, so runs are deterministic: the shipped model, greedy
or seeded sampling, nothing timed on screen. After a deliberate change, look at
the new SVGs and update with `pytest tests/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from test_app import answer, keys
from textual.pilot import Pilot

from stepper.scenario import Scenario
from stepper.scenario_session import session_from_scenario
from widgets.app import StepperApp
from widgets.opening import Opened, open_scenario

WIDE, NARROW = (160, 50), (80, 24)


def story() -> StepperApp:
    """The default scenario: greedy story on stories260k."""
    return StepperApp(factory=open_scenario)


def sampling() -> StepperApp:
    """A seeded, sampled session with every filter on, to show each cut."""
    scenario = Scenario().with_overrides(
        temperature=1.0, top_k=12, top_p=0.9, min_p=0.02, seed=3
    )
    return StepperApp(factory=lambda: Opened(session_from_scenario(scenario)))


def pressing(*pressed: str) -> Callable[[Pilot], Awaitable[None]]:
    """A run_before that presses keys, letting the engine finish after each."""

    async def run(pilot: Pilot) -> None:
        await keys(pilot, *pressed)

    return run


def typing(key: str, text: str) -> Callable[[Pilot], Awaitable[None]]:
    """A run_before that opens a dialog with `key` and answers `text`."""

    async def run(pilot: Pilot) -> None:
        await keys(pilot, key)
        await answer(pilot, text)

    return run


# -- tokens and embeddings ---------------------------------------------------------


def test_tokens_merge_replay(snap_compare):
    """Tokenize: the BPE replay after three merges, chips underneath."""
    # > > >: three merges forward
    assert snap_compare(story(), terminal_size=WIDE, run_before=pressing(*">>>"))


def test_embed_stage(snap_compare):
    """Embed: the current token's vector beside the prompt's cosine similarity."""
    # s: Tokenize -> Embed
    assert snap_compare(story(), terminal_size=WIDE, run_before=pressing("s"))


# -- attention ---------------------------------------------------------------------


def test_attention_layer_by_layer(snap_compare):
    """Attend, stepped into: layer 2's heatmap, head 0, entropy per head."""
    # s s s s: Embed, Attend layer 0, 1, 2
    assert snap_compare(story(), terminal_size=WIDE, run_before=pressing(*"ssss"))


def test_attention_numbers_and_mean_of_heads(snap_compare):
    """A later token: the window follows it; mean of heads with numbers."""
    # n n n n n n: six tokens; ] ]: layer 2; a: mean of heads; v: numbers
    run = pressing(*"nnnnnn", "]", "]", "a", "v")
    assert snap_compare(story(), terminal_size=WIDE, run_before=run)


# -- predict and sample ------------------------------------------------------------


def test_predict_stage(snap_compare):
    """Predict: the model's own top candidates, entropy and top probability."""
    # o o o: Embed, Attend (over), Predict
    assert snap_compare(sampling(), terminal_size=WIDE, run_before=pressing(*"ooo"))


def test_sample_with_every_cut(snap_compare):
    """Sample: top-k, top-p and min-p cut; the draw u lands in its slot."""
    # n x6: to token 5's Sample; ( : from min-p back to the top-p stage's bars
    run = pressing(*"nnnnnn", "(")
    assert snap_compare(sampling(), terminal_size=WIDE, run_before=run)


def test_sample_after_forcing(snap_compare):
    """A forced token: no draw, the strip says so, the timeline marks it ⚑."""

    # n: to Sample; f, #300, Enter: force token 300
    async def run(pilot: Pilot) -> None:
        await keys(pilot, "n", "f")
        await answer(pilot, "#300")

    assert snap_compare(sampling(), terminal_size=WIDE, run_before=run)


# -- logit lens and timeline -------------------------------------------------------


def test_lens_and_timeline_after_a_run(snap_compare):
    """After r: stopped at the story's breakpoint, text with probabilities."""
    # r: run to the entropy breakpoint
    assert snap_compare(story(), terminal_size=WIDE, run_before=pressing("r"))


def test_error_line_keeps_the_session(snap_compare):
    """A bad temperature shows one error line; the session is unchanged."""

    # n: to Sample; t, "warm", Enter: not a number
    async def run(pilot: Pilot) -> None:
        await keys(pilot, "n", "t")
        await answer(pilot, "warm")

    assert snap_compare(story(), terminal_size=WIDE, run_before=run)


# -- small terminals, no colour, help ----------------------------------------------


def test_narrow_attention_tab(snap_compare):
    """80x24: panes collapse into tabs; Attend shows the Attention tab."""
    # s s: Embed, Attend layer 0
    assert snap_compare(story(), terminal_size=NARROW, run_before=pressing(*"ss"))


def test_narrow_sample_tab(snap_compare):
    """80x24: the Predict tab at Sample, bars and strip within 24 lines."""
    # n: to Sample
    assert snap_compare(sampling(), terminal_size=NARROW, run_before=pressing("n"))


def test_no_colour(snap_compare, monkeypatch):
    """NO_COLOR: symbols and numbers carry every value without colour."""
    # n n: two tokens
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(story(), terminal_size=WIDE, run_before=pressing(*"nn"))


def test_help_screen(snap_compare):
    """?: every key, grouped."""
    # ?: help
    run = pressing("question_mark")
    assert snap_compare(story(), terminal_size=WIDE, run_before=run)


def test_unicode_prompt(snap_compare):
    """Emoji, Hebrew and CJK in the prompt: byte tokens shown as <F0>, layout kept."""

    # e, a mixed-script prompt, Enter; s: Embed
    async def run(pilot: Pilot) -> None:
        await keys(pilot, "e")
        await answer(pilot, "Hi 😀 שלום 日本 tab\there")
        await keys(pilot, "s")

    assert snap_compare(story(), terminal_size=WIDE, run_before=run)
