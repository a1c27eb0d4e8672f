"""Pilot tests of what the panes show as generation goes on."""

from __future__ import annotations

import numpy as np
from test_app import NARROW, WIDE, answer, keys, main, status, story_app

from stepper.analysis import cosine_similarity


async def test_cosine_grid_follows_the_current_token():
    """At token 15 the similarity grid ends at token 15, not in the prompt."""
    async with story_app().run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot, *["n"] * 15, "s")
        assert snapshot.cursor.token == 15
        assert snapshot.similar[-1] == snapshot.query
        assert snapshot.similar == tuple(range(snapshot.query - 7, snapshot.query + 1))
        session = main(pilot).engine.session
        assert session is not None
        rows = [session.steps[i].capture.token_embeddings[-1] for i in range(8, 16)]
        expected = cosine_similarity(np.stack(rows))
        assert np.array_equal(snapshot.similarity, expected)


async def test_a_long_error_wraps_instead_of_losing_its_fix(tmp_path):
    """At 80 columns a scenario error keeps its last words (the fix) in view."""
    bad = tmp_path / "missing.toml"
    bad.write_text('prompt = "x"\nmodel = "nothere.gguf"\n')
    async with story_app().run_test(size=NARROW) as pilot:
        await keys(pilot, "ctrl+o")
        await answer(pilot, str(bad))
        line = status(pilot)
        assert len(f"✗ {line.error}") > NARROW[0] - 2
        assert line.size.height > 1
        assert line.size.height <= 3
