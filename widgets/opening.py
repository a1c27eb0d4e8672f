"""Turning a scenario (or a model and a prompt) into a session for the app.

Building a session from a scenario is the command line's job too; this module does
only what the app needs and should call the engine's own builder once it has one.
"""

from __future__ import annotations

from dataclasses import dataclass

from stepper.load import load_model
from stepper.scenario import DEFAULT_SCENARIO, Scenario, load_scenario
from stepper.session import Cursor, Session, Settings


@dataclass(frozen=True)
class Opened:
    """A new session, with the scenario it came from (for its narration)."""

    session: Session
    scenario: Scenario | None = None


def session_for(scenario: Scenario) -> Session:
    """Load the scenario's model and start a session with its settings."""
    settings = Settings(
        prompt=scenario.prompt,
        sampler=scenario.sampler,
        seed=scenario.seed,
        max_new_tokens=scenario.max_new_tokens,
        stop=scenario.stop,
    )
    session = Session(load_model(scenario.model), settings)
    for bp in scenario.breakpoints:
        session.add_breakpoint(bp.kind, bp.value)
    return session


def open_scenario(ref: str = DEFAULT_SCENARIO) -> Opened:
    """Open a scenario file or built-in scenario name."""
    scenario = load_scenario(ref)
    return Opened(session_for(scenario), scenario)


def open_model(model: str, prompt: str | None = None) -> Opened:
    """Open a model on the default scenario's settings, with `prompt` if given."""
    scenario = Scenario(model=model)
    if prompt is not None:
        scenario = Scenario(model=model, prompt=prompt)
    return Opened(session_for(scenario), scenario)


def narration(scenario: Scenario | None, cursor: Cursor) -> str:
    """The scenario's notes for the cursor's stage and token, joined."""
    if scenario is None:
        return ""
    return " ".join(scenario.notes_for(cursor.stage.value, cursor.token))
