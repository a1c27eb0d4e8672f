"""The sampler chain: turn one step's logits into a token and record every stage.

Five stages, each named after the setting that drives it, run in `settings.order`:

- `repetition_penalty` divides the positive logits of tokens already in the context
  and multiplies the negative ones (the CTRL / llama.cpp rule), so both move down;
- `top_k` keeps the k highest logits;
- `top_p` keeps the smallest set of most likely tokens whose mass reaches p;
- `min_p` keeps tokens whose probability is at least min_p times the top one's;
- `temperature` divides the logits by T; T = 0 keeps only the most likely token.

Survivors are always kept sorted by logit, highest first, ties broken by the lowest
token id; that one order makes top-k ties, top-p and greedy choices deterministic. The
draw then lays the final survivors' probabilities end to end on [0, 1) in that order
and picks the slot that contains a uniform number `u` from the caller's generator.
There is no global random state anywhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from stepper.chain import run_chain
from stepper.errors import SamplingError
from stepper.sample_trace import Candidate, SampleTrace, StageRecord

# Re-exported: the trace types and the chain are part of the sampler's interface.
__all__ = ["Candidate", "SampleTrace", "StageRecord", "run_chain"]

STAGES = ("repetition_penalty", "top_k", "top_p", "min_p", "temperature")
# llama.cpp's order; SamplerSettings explains why it is the default.
DEFAULT_ORDER = STAGES


class UniformSource(Protocol):
    """Anything that draws a uniform number in [0, 1), as `numpy.random.Generator`."""

    def random(self) -> float:
        """One uniform draw in [0, 1)."""
        ...


# Each numeric setting: what it accepts in words, the test, and whether it is whole.
_RULES: dict[str, tuple[str, Callable[[float], bool], bool]] = {
    "temperature": ("a number >= 0 (0 means greedy)", lambda v: v >= 0, False),
    "top_k": ("a whole number >= 0 (0 turns top-k off)", lambda v: v >= 0, True),
    "top_p": ("a value in (0, 1] (1 turns top-p off)", lambda v: 0 < v <= 1, False),
    "min_p": ("a value in [0, 1) (0 turns min-p off)", lambda v: 0 <= v < 1, False),
    "repetition_penalty": ("a number > 0 (1 turns it off)", lambda v: v > 0, False),
}
_ORDER_HELP = "use each of " + ", ".join(STAGES) + " exactly once"


def setting_problem(name: str, value: object) -> str | None:
    """Why `value` is not acceptable for sampling setting `name`, or None if it is."""
    if name == "order":
        return _order_problem(value)
    allowed, ok, whole = _RULES[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"has the wrong type; use {allowed}"
    if whole and not isinstance(value, int):
        return f"has the wrong type; use {allowed}"
    if not math.isfinite(value):
        return f"is not a finite number; use {allowed}"
    if not ok(value):
        return f"is out of range; use {allowed}"
    return None


def _order_problem(value: object) -> str | None:
    """Why `value` is not a valid stage order, or None if it is."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        return f"has the wrong type; use a list of stage names: {_ORDER_HELP}"
    for name in value:
        if name not in STAGES:
            return f"names an unknown stage {name!r}; {_ORDER_HELP}"
    if len(set(value)) != len(value):
        return f"names a stage twice; {_ORDER_HELP}"
    if len(value) != len(STAGES):
        missing = ", ".join(s for s in STAGES if s not in value)
        return f"leaves out {missing}; {_ORDER_HELP}"
    return None


@dataclass(frozen=True)
class SamplerSettings:
    """How to turn logits into a token; the defaults are llama.cpp's command line's.

    The default order, repetition_penalty -> top_k -> top_p -> min_p -> temperature,
    is llama.cpp's. It penalizes first so every later stage sees the penalized logits,
    and it filters before the temperature, on the model's own distribution: which
    tokens stay in play never depends on T, and raising T only evens out the odds
    among them, so a high temperature cannot bring back the tail the filters cut.
    Put `temperature` first to get Hugging Face `transformers`' behaviour instead.
    `order` must name every stage once; a stage whose setting is off does nothing.
    """

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repetition_penalty: float = 1.0
    order: tuple[str, ...] = DEFAULT_ORDER

    def __post_init__(self) -> None:
        """Reject absurd values with a `SamplingError` naming setting and range."""
        for name in (*_RULES, "order"):
            value = getattr(self, name)
            problem = setting_problem(name, value)
            if problem:
                raise SamplingError(f"sampling setting {name} = {value!r} {problem}")
        object.__setattr__(self, "order", tuple(self.order))

    @property
    def greedy(self) -> bool:
        """Whether the temperature stage keeps only the most likely token."""
        return self.temperature == 0


def pick_slot(cumulative: np.ndarray, u: float) -> int:
    """The index of the first slot whose upper bound exceeds u."""
    # side="right" skips zero-width slots: a token with probability 0 is never hit.
    index = int(np.searchsorted(cumulative, u, side="right"))
    return min(index, len(cumulative) - 1)


def cumulative_bounds(probs: np.ndarray) -> np.ndarray:
    """Upper slot bounds of `probs` laid end to end, scaled so the last is 1."""
    cumulative = np.cumsum(probs)  # [n]
    return cumulative / cumulative[-1]  # x / x is exactly 1, so u < 1 always lands


def sample(
    logits: np.ndarray,
    settings: SamplerSettings,
    rng: UniformSource,
    context_ids: Sequence[int] = (),
    forced: int | None = None,
) -> SampleTrace:
    """Run the chain on `logits` [V] and pick a token, recording every stage.

    Greedy settings pick the final stage's most likely token and draw nothing. A
    `forced` token id is picked whatever the chain says, and nothing is drawn either,
    so forcing one token leaves every later draw from `rng` unchanged.
    """
    values = check_logits(logits)
    check_ids(context_ids, values.size, "context token id")
    if forced is not None:
        check_ids([forced], values.size, "forced token id")
    initial, stages = run_chain(values, settings, context_ids)
    final = stages[-1]
    cumulative = cumulative_bounds(final.probs)
    if forced is not None:
        token, rank, u = forced, final.index(forced), None
    else:
        u = None if settings.greedy else draw(rng)
        rank = 0 if u is None else pick_slot(cumulative, u)
        token = int(final.ids[rank])
    entropy = entropy_bits(initial.probs)
    forcing = forced is not None
    return SampleTrace(
        settings, initial, stages, cumulative, token, rank, u, forcing, entropy
    )


def draw(rng: UniformSource) -> float:
    """One uniform number from `rng`, checked to lie in [0, 1)."""
    u = float(rng.random())
    if not 0.0 <= u < 1.0:
        raise SamplingError(f"the random source gave u = {u}; it must give [0, 1)")
    return u


def entropy_bits(probs: np.ndarray) -> float:
    """The entropy of a distribution, in bits."""
    nonzero = probs[probs > 0]
    return float(-(nonzero * np.log2(nonzero)).sum())


def check_logits(logits: np.ndarray) -> np.ndarray:
    """The logits as float64 [V], or a `SamplingError` if they cannot be sampled."""
    values = np.asarray(logits, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise SamplingError(
            f"logits have shape {values.shape}; the sampler needs one row of V logits"
        )
    bad = np.flatnonzero(np.isnan(values) | (values == np.inf))
    if bad.size:
        i = int(bad[0])
        raise SamplingError(
            f"the logit of token id {i} is {values[i]}; the forward pass produced an "
            "invalid value (check the model's weights); only -inf may mask a token"
        )
    if np.all(values == -np.inf):
        raise SamplingError(
            "every logit is -inf, so no token can be sampled; leave one token unmasked"
        )
    return values


def check_ids(ids: Sequence[int], vocab: int, what: str) -> None:
    """Raise a `SamplingError` if any of `ids` is outside [0, vocab)."""
    array = np.asarray(ids, dtype=np.int64)
    bad = array[(array < 0) | (array >= vocab)]
    if bad.size:
        raise SamplingError(
            f"{what} {int(bad[0])} is outside the vocabulary of {vocab} tokens; "
            f"use an id in [0, {vocab})"
        )
