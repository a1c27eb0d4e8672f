"""Pilot tests of the settings shown at the cursor's token, not the latest ones."""

from __future__ import annotations

from test_app import WIDE, answer, keys, main, story_app
from textual.widgets import Input

from widgets.panes.timeline import TimelinePane, settings_line


async def test_timeline_shows_the_settings_of_the_cursors_token():
    """Temperature 1 from token 2 on; back at token 0 the timeline says 0."""
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "n", "n", "n", "t")
        later = await answer(pilot, "1")
        assert "temperature 1 ·" in settings_line(later).plain
        earlier = await keys(pilot, "B", "B")
        assert earlier.cursor.token == 0
        assert earlier.trace is not None and earlier.trace.settings.temperature == 0
        assert "temperature 0 ·" in settings_line(earlier).plain
        assert main(pilot).query_one(TimelinePane).snapshot is earlier
        await keys(pilot, "t")
        assert pilot.app.screen.query_one(Input).value == "0"  # the cursor's too


async def test_notes_go_once_the_prompt_or_a_setting_differs():
    """The story's notes show on its own prompt only, and at its own settings."""
    async with story_app().run_test(size=WIDE) as pilot:
        assert "five tokens" in (await keys(pilot)).note
        await keys(pilot, "e")
        assert (await answer(pilot, "The cat sat")).note == ""
        await keys(pilot, "e")
        assert "five tokens" in (await answer(pilot, "Once upon a time")).note
        await keys(pilot, "t")
        assert (await answer(pilot, "1.5")).note == ""
