"""Open a session from a scenario and the command line's flags."""

from __future__ import annotations

import argparse

from stepper.load import load_model
from stepper.scenario import DEFAULT_SCENARIO, Scenario, load_scenario
from stepper.session import Session, Settings

# Flags that override the scenario key of the same name, where the command has them.
OVERRIDES = (
    "model",
    "prompt",
    "max_new_tokens",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "seed",
)


def scenario_from_options(options: argparse.Namespace) -> Scenario:
    """The scenario named on the command line, with its flags applied.

    With no scenario, the default one runs; but a --model or --prompt without a
    scenario starts from plain defaults, since the default scenario's notes are
    written for its own model and prompt.
    """
    flags = {key: getattr(options, key, None) for key in OVERRIDES}
    if options.scenario:
        scenario = load_scenario(options.scenario)
    elif flags["model"] is not None or flags["prompt"] is not None:
        scenario = Scenario()
    else:
        scenario = load_scenario(DEFAULT_SCENARIO)
    return scenario.with_overrides(**flags)


def session_from_scenario(scenario: Scenario) -> Session:
    """Load the scenario's model and open a session at its first stage."""
    model = load_model(scenario.model)
    settings = Settings(
        prompt=scenario.prompt,
        sampler=scenario.sampler,
        seed=scenario.seed,
        max_new_tokens=scenario.max_new_tokens,
        stop=scenario.stop,
    )
    return Session(model, settings, scenario, scenario.breakpoints)


def session_from_options(options: argparse.Namespace) -> Session:
    """The session a command line asks for."""
    return session_from_scenario(scenario_from_options(options))
