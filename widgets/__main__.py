"""`python -m widgets [SCENARIO] [--model REF] [--prompt TEXT]`: open the debugger.

The `stepper` command does the same; this entry point needs only the app.
"""

from __future__ import annotations

import argparse
from functools import partial

from widgets.app import run_app
from widgets.opening import open_model, open_scenario


def main() -> None:
    """Parse the arguments and run the app."""
    parser = argparse.ArgumentParser(prog="python -m widgets")
    parser.add_argument("scenario", nargs="?", default="story")
    parser.add_argument("--model", metavar="REF")
    parser.add_argument("--prompt", metavar="TEXT")
    options = parser.parse_args()
    if options.model or options.prompt:
        factory = partial(open_model, options.model or "stories260k", options.prompt)
    else:
        factory = partial(open_scenario, options.scenario)
    run_app(factory=factory)


if __name__ == "__main__":
    main()
