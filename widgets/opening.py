"""Opening sessions from the app: a scenario, or a model with a prompt.

The engine's `stepper.scenario_session` builds the session; this module only
names what the app opens and finds the scenario's narration for a cursor.
"""

from __future__ import annotations

from dataclasses import dataclass

from stepper.scenario import DEFAULT_SCENARIO, Scenario, load_scenario
from stepper.scenario_session import session_from_scenario
from stepper.session import Session


@dataclass(frozen=True)
class Opened:
    """A session just opened, to replace the app's current one."""

    session: Session


def open_scenario(ref: str = DEFAULT_SCENARIO) -> Opened:
    """Open a scenario file or a built-in scenario name."""
    return Opened(session_from_scenario(load_scenario(ref)))


def open_model(model: str, prompt: str | None = None) -> Opened:
    """Open a model on plain default settings, with `prompt` if given."""
    scenario = Scenario().with_overrides(model=model, prompt=prompt)
    return Opened(session_from_scenario(scenario))


def narration(session: Session) -> str:
    """The scenario's notes for the cursor, joined, while they still apply.

    `Session.notes` drops them once the prompt, a setting, the seed or an earlier
    token differs from the scenario's, as they would describe something else.
    """
    cursor = session.cursor
    return " ".join(session.notes(cursor.stage, cursor.token))


def title(session: Session) -> str:
    """What is open: the scenario's title (if from a file) and the model."""
    scenario = session.scenario
    if scenario is None or scenario.source is None:
        return session.model.name
    return f"{scenario.title} on {session.model.name}"
