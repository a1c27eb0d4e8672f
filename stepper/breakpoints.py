"""Breakpoints: conditions that stop a run at a chosen place in generation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from stepper.errors import StepperError

if TYPE_CHECKING:
    from stepper.steps import Cursor, TokenStep
    from stepper.tokenizer import Tokenizer

Kind = Literal["at_token", "on_token", "top_prob_below", "entropy_above"]
KINDS: tuple[Kind, ...] = ("at_token", "on_token", "top_prob_below", "entropy_above")


@dataclass(frozen=True)
class Breakpoint:
    """One stopping condition.

    - `at_token`: stop when generation reaches token index `value` (0 is the first
      new token), at its first stage.
    - `on_token`: stop at the Sample stage when the sampled token's text or piece
      equals `value` (a string), or its id equals `value` (an int).
    - `top_prob_below`: stop at the Predict stage when the most likely token's
      probability (softmax at temperature 1) is below `value`.
    - `entropy_above`: stop at the Predict stage when the entropy of that
      distribution, in bits, is above `value`.
    """

    kind: Kind
    value: int | float | str

    def __post_init__(self) -> None:
        """Refuse a kind or value that could never mean what the user wants."""
        if self.kind not in KINDS:
            raise StepperError(
                f"unknown breakpoint kind {self.kind!r}; use one of {', '.join(KINDS)}"
            )
        problem = _value_problem(self.kind, self.value)
        if problem:
            raise StepperError(f"breakpoint {self.kind} = {self.value!r} {problem}")

    def describe(self) -> str:
        """A short human label, e.g. 'most likely p < 0.3'."""
        labels = {
            "at_token": f"at token {self.value}",
            "on_token": f"on token {self.value!r}",
            "top_prob_below": f"most likely p < {self.value}",
            "entropy_above": f"entropy > {self.value} bits",
        }
        return labels[self.kind]


def _value_problem(kind: Kind, value: object) -> str | None:
    """Why `value` is not a sensible value for a breakpoint of `kind`, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return "has the wrong type"
    if kind == "at_token":
        ok = isinstance(value, int) and 0 <= value < 2**31
        return None if ok else "is out of range; use a token index >= 0"
    if kind == "on_token":
        ok = value != "" and (isinstance(value, str) or value >= 0)
        return None if ok else "is not a token; use its text or its id"
    if isinstance(value, str) or not math.isfinite(value):
        return "is not a finite number"
    if kind == "top_prob_below" and not 0 < value <= 1:
        return "is out of range; use a probability in (0, 1]"
    if kind == "entropy_above" and value < 0:
        return "is out of range; use a number of bits >= 0"
    return None


def distribution_stats(logits: np.ndarray) -> tuple[float, float]:
    """The top probability and the entropy in bits of softmax(logits)."""
    z = logits.astype(np.float64) - np.max(logits)
    p = np.exp(z)
    p /= p.sum()
    nz = p[p > 0]
    return float(p.max()), float(-(nz * np.log2(nz)).sum())


def holds(
    bp: Breakpoint, cursor: Cursor, step: TokenStep | None, tok: Tokenizer
) -> bool:
    """Whether `bp`'s condition holds at `cursor`, given the cursor's token record."""
    first = "Tokenize" if cursor.token == 0 else "Embed"
    if bp.kind == "at_token":
        return cursor.token == bp.value and cursor.stage == first
    if step is None:
        return False
    if bp.kind == "on_token":
        return cursor.stage == "Sample" and _matches(step, bp.value, tok)
    if cursor.stage != "Predict":
        return False
    top, entropy = distribution_stats(step.capture.logits)
    if bp.kind == "top_prob_below":
        return top < float(bp.value)
    return entropy > float(bp.value)


def _matches(step: TokenStep, value: int | float | str, tok: Tokenizer) -> bool:
    """Whether the token sampled at `step` is the one `value` names."""
    token_id = step.token_id
    if token_id is None:
        return False
    if isinstance(value, int):
        return token_id == value
    return value in (tok.piece(token_id), tok.decode([token_id]), step.text)
