"""Pilot tests of the app's controls: sampling, the session, the view, terminals."""

from __future__ import annotations

import pytest
from test_app import NARROW, WIDE, answer, keys, main, status, story_app
from textual.widgets import OptionList, Tabs

from stepper.session import Stage
from widgets.app import StepperApp
from widgets.keys import ALL
from widgets.opening import open_scenario
from widgets.panes.attention import AttentionPane
from widgets.panes.base import Pane
from widgets.panes.predict import PredictPane
from widgets.panes.tokens import TokensPane
from widgets.screens.main import MainScreen

# -- sampling ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "name", "typed", "expected"),
    [
        ("t", "temperature", "1.5", 1.5),
        ("k", "top_k", "5", 5),
        ("p", "top_p", "0.5", 0.5),
        ("m", "min_p", "0.1", 0.1),
    ],
)
async def test_sampler_settings_from_their_keys(key, name, typed, expected):
    """t, k, p and m ask for a value and apply it from the cursor's token on."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "n", key)
        snapshot = await answer(pilot, typed)
        assert getattr(snapshot.settings.sampler, name) == expected
        assert snapshot.trace is not None
        assert getattr(snapshot.trace.settings, name) == expected


async def test_seed_from_its_key():
    """d asks for the seed."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "d")
        assert (await answer(pilot, "7")).settings.seed == 7


async def test_changing_the_temperature_changes_the_distribution():
    """+ raises the temperature; the final probabilities flatten."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "t")
        cold = await answer(pilot, "0.5")
        cold = await keys(pilot, "n")
        warm = await keys(pilot, "+", "+", "+", "+", "+")
        assert warm.settings.sampler.temperature == pytest.approx(1.0)
        assert cold.trace is not None and warm.trace is not None
        assert warm.trace.final.probs[0] < cold.trace.final.probs[0]
        lower = await keys(pilot, "-")
        assert lower.settings.sampler.temperature == pytest.approx(0.9)


async def test_a_bad_setting_is_an_error_line_and_keeps_the_session():
    """Typing a word for the temperature shows an error; nothing changes."""
    async with story_app().run_test(size=WIDE) as pilot:
        before = await keys(pilot, "n", "t")
        after = await answer(pilot, "warm")
        assert "is not a number" in status(pilot).error
        assert after is before
        await keys(pilot, "t")
        await answer(pilot, "-1")
        assert "temperature" in status(pilot).error
        assert main(pilot).snapshot.settings.sampler.temperature == 0


async def test_force_a_candidate_from_the_list():
    """f lists the candidates; Enter on the second forces it."""
    async with story_app().run_test(size=WIDE) as pilot:
        first = await keys(pilot, "n", "f")
        options = pilot.app.screen.query_one(OptionList)
        options.focus()
        options.highlighted = 1
        await pilot.press("enter")
        snapshot = await keys(pilot)
        assert snapshot.trace is not None and snapshot.trace.forced
        assert first.trace is not None
        assert snapshot.trace.token_id == int(first.trace.initial.ids[1])
        assert snapshot.generated[-1].forced


async def test_force_a_typed_token():
    """f then typing ␣cat forces that token; an unknown one is an error line."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "n", "f")
        snapshot = await answer(pilot, "#300")
        assert snapshot.trace is not None and snapshot.trace.token_id == 300
        await keys(pilot, "f")
        await answer(pilot, "no-such-token-here")
        assert "no token is spelt" in status(pilot).error


# -- session -----------------------------------------------------------------------


async def test_edit_the_prompt_restarts_at_tokenize():
    """e asks for a prompt; the session starts again at Tokenize."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "n", "e")
        snapshot = await answer(pilot, "The cat sat")
        assert snapshot.stage == Stage.TOKENIZE
        assert snapshot.settings.prompt == "The cat sat"


async def test_open_another_scenario():
    """ctrl+o opens a shipped scenario by name."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "ctrl+o")
        snapshot = await answer(pilot, "temperature")
        assert snapshot.status.startswith("opened Temperature from 0 to 2")


async def test_a_scenario_that_fails_keeps_the_current_session(tmp_path):
    """A broken scenario file shows its one-line error; the story stays open."""
    bad = tmp_path / "bad.toml"
    bad.write_text('prompt = "x"\ntemperature = "hot"\n')
    async with story_app().run_test(size=WIDE) as pilot:
        before = await keys(pilot, "n", "ctrl+o")
        await answer(pilot, str(bad))
        assert "bad.toml:2" in status(pilot).error
        assert main(pilot).snapshot.cursor == before.cursor


async def test_a_failed_first_load_leaves_a_usable_app():
    """A scenario that cannot load: keys say so, ctrl+o can still open one."""
    app = StepperApp(factory=lambda: open_scenario("no-such-scenario.toml"))
    async with app.run_test(size=WIDE) as pilot:
        await keys(pilot, "s")
        assert "no session is open" in status(pilot).error
        await keys(pilot, "ctrl+o")
        snapshot = await answer(pilot, "story")
        assert snapshot.stage == Stage.TOKENIZE


# -- view --------------------------------------------------------------------------


async def test_layer_and_head_keys_change_the_attention_pane_only():
    """] [ . , and a change what Attention shows without a new snapshot."""
    async with story_app().run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot, "n")
        pane = main(pilot).query_one(AttentionPane)
        await keys(pilot, "]", "]", ".", "full_stop", "comma")
        assert (pane.shown_layer, pane.shown_head) == (2, 1)
        await keys(pilot, "[", "a")
        assert (pane.shown_layer, pane.shown_head) == (1, None)
        assert main(pilot).snapshot is snapshot


async def test_values_merges_and_sampler_stage_keys():
    """v shows numbers; < > replay merges; ( ) choose the sampler stage."""
    async with story_app().run_test(size=WIDE) as pilot:
        tokens = main(pilot).query_one(TokensPane)
        await keys(pilot, "<")
        assert tokens.merges_done == 0
        await keys(pilot, ">", ">", ">", "<")
        assert tokens.merges_done == 2
        await keys(pilot, "n", "v", "(")
        assert main(pilot).query_one(AttentionPane).show_values
        assert main(pilot).query_one(PredictPane).stage_shown == 4


async def test_help_lists_every_key():
    """? opens the help with every binding; Esc closes it."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "question_mark")
        text = str(pilot.app.screen.query(".help-dialog Static").last().render())
        assert pilot.app.screen.__class__.__name__ == "HelpScreen"
        assert text
        await pilot.press("escape")
        assert isinstance(pilot.app.screen, MainScreen)


async def test_every_action_is_in_the_command_palette():
    """Each binding's description is a system command."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot)
        titles = {c.title for c in pilot.app.get_system_commands(pilot.app.screen)}
        assert {b.description for b in ALL} <= titles


async def test_number_keys_maximize_a_pane_when_wide():
    """3 maximizes Attention; 3 again (or Esc) restores the grid."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "n", "3")
        assert main(pilot).maximized is main(pilot).query_one(AttentionPane)
        await keys(pilot, "escape")
        assert main(pilot).maximized is None


# -- small and colourless terminals ------------------------------------------------


async def test_narrow_terminal_shows_one_pane_and_tabs():
    """At 80x24 one pane shows at a time; it follows the stage; number keys switch."""
    async with story_app().run_test(size=NARROW) as pilot:
        await keys(pilot, "s")
        shown = [p.id for p in main(pilot).query(Pane) if p.display]
        assert main(pilot).query_one(Tabs).display
        assert shown == ["embeddings"]
        await keys(pilot, "4")
        assert [p.id for p in main(pilot).query(Pane) if p.display] == ["predict"]


async def test_unicode_prompt_keeps_the_layout():
    """Emoji and Hebrew in the prompt render inside the Tokens pane."""
    async with story_app().run_test(size=NARROW) as pilot:
        await keys(pilot, "e")
        await answer(pilot, "שלום 😀 friends")
        await keys(pilot, "1")
        pane = main(pilot).query_one(TokensPane)
        assert pane.region.width <= NARROW[0]
        assert main(pilot).snapshot.stage == Stage.TOKENIZE


async def test_palette_lists_each_action_once_with_a_readable_key():
    """Each debugger action is one palette entry; its help names the key as shown."""
    app = story_app()
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause()
        commands = list(app.get_system_commands(main(pilot)))
        ours = [c for c in commands if c.help.startswith("key ") or " · key " in c.help]
        titles = [c.title for c in ours]
        assert len(titles) == len(set(titles)) == len(ALL)
        assert all("question_mark" not in c.help for c in ours)
        assert any(c.title == "Help" and c.help == "key ?" for c in ours)
