"""Session actions the keys trigger, and the parsing of what the user typed.

Each builder returns an `Action` for the engine thread: a function of the session
that changes it and returns a status line (or a new session). Parsing errors are
`StepperError`s with one-line messages, shown in the app like the engine's own.
"""

from __future__ import annotations

from collections.abc import Callable

from stepper.breakpoints import KINDS, Breakpoint
from stepper.errors import StepperError
from stepper.session import Session
from widgets.draw.cells import plural
from widgets.engine import Action

SETTINGS = {
    "temperature": float,
    "top_k": int,
    "top_p": float,
    "min_p": float,
    "seed": int,
}


def move(method: str) -> Action:
    """Call a moving method of the session (step, back, ...); say if it could not."""

    def action(session: Session) -> str:
        if getattr(session, method)():
            return ""
        if session.end_reason is not None and session.done:
            return f"generation has ended ({session.end_reason}); b goes back"
        return "already at the start"

    return action


def run(to_breakpoint: bool, should_stop: Callable[[], bool]) -> Action:
    """Run to the next breakpoint (or the end), checking `should_stop` per stage."""

    def action(session: Session) -> str:
        reason = session.run(to_breakpoint, should_stop)
        if reason == "breakpoint":
            hit = session.hit_breakpoint()
            return f"stopped at breakpoint: {hit.describe() if hit else '?'}"
        if reason == "interrupted":
            return "run stopped"
        return f"ran to the end ({session.end_reason})"

    return action


def parse_setting(name: str, text: str) -> int | float:
    """The number typed for setting `name`, or a one-line error."""
    kind = SETTINGS[name]
    try:
        return kind(text.strip())
    except ValueError:
        noun = "a whole number" if kind is int else "a number"
        raise StepperError(f"{name} = {text!r} is not {noun}; type {noun}") from None


def set_setting(name: str, value: int | float) -> Action:
    """Change one sampling setting (or the seed) from the cursor's token on."""

    def action(session: Session) -> str:
        if name == "seed":
            session.set_seed(int(value))
        else:
            session.set_sampler(**{name: value})
        return f"{name} = {value:g} from token {session.cursor.token} on"

    return action


def nudge_temperature(delta: float) -> Action:
    """Raise or lower the temperature by `delta`, never below 0."""

    def action(session: Session) -> str:
        step = session.current  # the settings in force where the cursor is
        current = (
            session.settings.sampler if step is None else step.settings
        ).temperature
        value = round(max(0.0, current + delta), 2)
        return set_setting("temperature", value)(session)  # type: ignore[return-value]

    return action


def force(text: str) -> Action:
    """Force the token typed: `#123` for an id, else its text as shown or decoded."""

    def action(session: Session) -> str:
        token_id = resolve_token(session, text)
        session.force(token_id)
        return f"forced {session.model.tokenizer.display(token_id)}·{token_id}"

    return action


def resolve_token(session: Session, text: str) -> int:
    """The token id the user means by `text`, or a one-line error."""
    if text.startswith("#") and text[1:].isdigit():
        return int(text[1:])
    token_id = session.model.tokenizer.find(text)
    if token_id is None:
        raise StepperError(
            f"no token is spelt {text!r} in {session.model.name}'s vocabulary; "
            "type it as shown (␣ for a space) or give an id as #123"
        )
    return token_id


def toggle_breakpoint(session: Session) -> str:
    """Break when generation reaches the cursor's token, or stop doing so."""
    index = session.cursor.token
    if Breakpoint("at_token", index) in session.breakpoints:
        session.remove_breakpoint("at_token", index)
        return f"breakpoint at token {index} removed"
    session.add_breakpoint("at_token", index)
    return f"breakpoint at token {index} set"


def clear_breakpoints(session: Session) -> str:
    """Remove every breakpoint, of any kind."""
    removed = list(session.breakpoints)
    for bp in removed:
        session.remove_breakpoint(bp.kind, bp.value)
    if not removed:
        return "there were no breakpoints to remove"
    return f"removed {plural(len(removed), 'breakpoint')}"


def parse_breakpoint(text: str) -> tuple[str, int | float | str]:
    """`KIND VALUE` as typed (e.g. `top_prob_below 0.3`), or a one-line error."""
    kind, _, raw = text.strip().partition(" ")
    if kind not in KINDS or not raw.strip():
        raise StepperError(
            f"breakpoint {text!r} is not KIND VALUE; KIND is one of {', '.join(KINDS)}"
        )
    value: int | float | str = raw.strip()
    noun = "a whole number" if kind == "at_token" else "a number"
    try:
        value = int(raw) if kind == "at_token" else value
        value = float(raw) if kind in ("top_prob_below", "entropy_above") else value
    except ValueError:
        raise StepperError(f"breakpoint {kind} needs {noun}, not {raw!r}") from None
    return kind, value


def add_breakpoint(text: str) -> Action:
    """Add the breakpoint typed as `KIND VALUE`."""
    kind, value = parse_breakpoint(text)

    def action(session: Session) -> str:
        added = session.add_breakpoint(kind, value)
        return f"breakpoint {added.describe()} set"

    return action


def set_prompt(text: str) -> Action:
    """Start again from Tokenize with a new prompt, keeping the old one on error."""

    def action(session: Session) -> str:
        settings = session.settings
        try:
            session.set_prompt(text)
        except StepperError:
            # Session._start stores the new settings before it validates them.
            session.settings = settings
            raise
        return "new prompt: back at Tokenize"

    return action
