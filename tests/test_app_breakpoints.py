"""Pilot tests of the dialogs that take breakpoints and the seed: errors, removal."""

from __future__ import annotations

import pytest
from test_app import WIDE, answer, keys, main, status, story_app


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("at_token -1", "use a token index >= 0"),
        ("entropy_above nan", "is not a finite number"),
        ("entropy_above -1", "use a number of bits >= 0"),
        ("top_prob_below 0", "use a probability in (0, 1]"),
        ("top_prob_below 1.5", "use a probability in (0, 1]"),
        ("on_token  ", "is not KIND VALUE"),
        ("at_token 2.5", "needs a whole number"),
    ],
)
async def test_a_bad_breakpoint_is_an_error_line(typed, expected):
    """X with a value the engine refuses: the error shows, the session stays."""
    async with story_app().run_test(size=WIDE) as pilot:
        before = await keys(pilot, "n", "X")
        await answer(pilot, typed)
        assert expected in status(pilot).error
        after = main(pilot).snapshot
        assert after.cursor == before.cursor
        assert after.breakpoints == before.breakpoints


async def test_a_bad_seed_is_an_error_line():
    """d with a seed the engine refuses: the error shows, the seed stays."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "n", "d")
        after = await answer(pilot, "-1")
        assert "seed" in status(pilot).error
        assert after.settings.seed == 0


async def test_clear_breakpoints_removes_condition_breakpoints():
    """X lists the breakpoints set; c removes them all, conditions included."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "X")
        await answer(pilot, "entropy_above 3")
        await keys(pilot, "x", "X")
        help_line = str(pilot.app.screen.query(".help").last().render())
        assert "entropy > 3.0 bits" in help_line and "c clears" in help_line
        await pilot.press("escape")
        snapshot = await keys(pilot, "c")
        assert snapshot.breakpoints == ()
        assert snapshot.status == "removed 3 breakpoints"  # the story sets one
        titles = {c.title for c in pilot.app.get_system_commands(pilot.app.screen)}
        assert "Clear breakpoints" in titles
