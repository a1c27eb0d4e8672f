"""Pilot tests of quitting: q and ctrl+c stop a long run instead of waiting for it."""

from __future__ import annotations

import asyncio
import time

import pytest
from test_app import WIDE, keys, main

from stepper.scenario import Scenario
from stepper.scenario_session import session_from_scenario
from widgets.app import StepperApp
from widgets.opening import Opened


def long_app() -> StepperApp:
    """The story on greedy sampling with room for 1900 new tokens."""
    scenario = Scenario().with_overrides(temperature=0.0, max_new_tokens=1900)
    return StepperApp(factory=lambda: Opened(session_from_scenario(scenario)))


@pytest.mark.parametrize("key", ["q", "ctrl+c"])
async def test_quitting_interrupts_a_long_run(key):
    """R then q (or ctrl+c): the run stops at once and the app exits."""
    app = long_app()
    async with app.run_test(size=WIDE) as pilot:
        await keys(pilot)
        screen = main(pilot)
        await pilot.press("R")
        while screen.snapshot is None or not screen.snapshot.running:
            await asyncio.sleep(0.01)
        start = time.monotonic()
        await pilot.press(key)
        while screen.engine.busy:
            await asyncio.sleep(0.01)
        assert time.monotonic() - start < 2
    assert screen.engine.session is not None
    assert len(screen.engine.session.generated_ids) < 1900
