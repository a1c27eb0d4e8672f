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
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol

import numpy as np

from stepper.errors import SamplingError

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


class Candidate(NamedTuple):
    """One token in play at some stage, with its logit and probability there."""

    token_id: int
    logit: float
    prob: float


@dataclass(frozen=True, eq=False)
class StageRecord:
    """The distribution after one stage, over the tokens still in play.

    `logits` are kept unscaled and `temperature` is the T applied so far (1 before
    the temperature stage; greedy does not scale), so later stages never compute
    with overflowed numbers; `scaled_logits` gives what the stage shows. `cutoff` is
    where the stage cut: for top_k the k-th (smallest kept) scaled logit, for top_p
    the probability mass the kept tokens reach, for min_p the probability threshold
    min_p * p_max; None for the other stages and when the stage is off. After
    `SampleTrace.compact` the arrays may hold fewer than `n_survivors` entries.
    """

    name: str
    ids: np.ndarray  # [n] int32 survivors, most likely first, ties by lowest id
    logits: np.ndarray  # [n] float64 logits before any temperature
    probs: np.ndarray  # [n] float64 softmax over the survivors
    n_survivors: int
    n_before: int  # tokens in play before this stage
    cutoff: float | None = None
    active: bool = True  # False when the stage's setting turns it off
    temperature: float = 1.0

    def scaled_logits(self, n: int | None = None) -> np.ndarray:
        """The first n logits divided by the temperature applied so far."""
        with np.errstate(over="ignore"):  # T below ~1e-300 shows +-inf, harmlessly
            return self.logits[:n] / self.temperature  # [n]

    def top(self, n: int) -> list[Candidate]:
        """The n most likely survivors (fewer if fewer survived or were kept)."""
        rows = zip(self.ids[:n], self.scaled_logits(n), self.probs[:n], strict=True)
        return [Candidate(int(i), float(lg), float(p)) for i, lg, p in rows]

    def index(self, token_id: int) -> int | None:
        """Where `token_id` stands among the survivors, or None if it was cut."""
        where = np.flatnonzero(self.ids == token_id)
        return int(where[0]) if where.size else None

    def lookup(self, token_id: int) -> Candidate | None:
        """The token's logit and probability here, or None if it did not survive."""
        k = self.index(token_id)
        if k is None:
            return None
        return Candidate(token_id, *self.top(k + 1)[k][1:])

    def truncated(self, keep: int) -> StageRecord:
        """A copy that keeps only the `keep` most likely survivors' arrays."""
        ids, logits, probs = (
            a[:keep].copy() for a in (self.ids, self.logits, self.probs)
        )
        return replace(self, ids=ids, logits=logits, probs=probs)


@dataclass(frozen=True, eq=False)
class SampleTrace:
    """Everything one call to `sample` did, from raw logits to the chosen token.

    `initial` is the model's own distribution (softmax of the raw logits at
    temperature 1, tokens with a -inf logit left out); `stages` holds one record per
    entry of `settings.order`. The draw: the final survivors in order, `cumulative[i]`
    the upper bound of survivor i's slot, `u` the uniform number, and the chosen
    token's index `rank` with slot [lo, hi). Greedy and forced picks draw nothing
    (u is None). A forced token that did not survive has rank, lo and hi None, p 0.
    """

    settings: SamplerSettings
    initial: StageRecord
    stages: tuple[StageRecord, ...]
    cumulative: np.ndarray  # [n] float64 slot upper bounds, the last exactly 1
    token_id: int
    rank: int | None  # index of token_id among the final survivors
    u: float | None
    forced: bool
    entropy: float  # bits, of the initial distribution
    p: float = field(init=False)  # chosen token's probability after the chain
    lo: float | None = field(init=False)
    hi: float | None = field(init=False)
    top_prob: float = field(init=False)  # highest probability in `initial`

    def __post_init__(self) -> None:
        """Derive the chosen token's slot and probability, and the top probability."""
        lo, hi = _slot(self.cumulative, self.rank)
        p = 0.0 if self.rank is None else float(self.final.probs[self.rank])
        top_prob = float(self.initial.probs[0])
        for name, value in (("lo", lo), ("hi", hi), ("p", p), ("top_prob", top_prob)):
            object.__setattr__(self, name, value)

    @property
    def greedy(self) -> bool:
        """Whether the temperature was 0, so the most likely token was taken."""
        return self.settings.greedy

    @property
    def final(self) -> StageRecord:
        """The distribution the token was drawn from."""
        return self.stages[-1]

    def stage(self, name: str) -> StageRecord:
        """The record of the stage called `name` (or "logits" for `initial`)."""
        if name == "logits":
            return self.initial
        return self.stages[self.settings.order.index(name)]

    def top(self, n: int, stage: str | None = None) -> list[Candidate]:
        """The n most likely candidates after `stage` (the final one by default)."""
        return (self.stage(stage) if stage else self.final).top(n)

    def compact(self, keep: int) -> SampleTrace:
        """A copy with `keep` candidates per stage (more to reach the chosen slot)."""
        keep = max(keep, (self.rank or 0) + 1)
        return replace(
            self,
            initial=self.initial.truncated(keep),
            stages=tuple(s.truncated(keep) for s in self.stages),
            cumulative=self.cumulative[:keep].copy(),
        )


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


def _slot(cumulative: np.ndarray, rank: int | None) -> tuple[float | None, ...]:
    """The bounds [lo, hi) of slot `rank`, or (None, None) without a slot."""
    if rank is None:
        return None, None
    lo = 0.0 if rank == 0 else float(cumulative[rank - 1])
    return lo, float(cumulative[rank])


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


def run_chain(
    values: np.ndarray, settings: SamplerSettings, context_ids: Sequence[int]
) -> tuple[StageRecord, tuple[StageRecord, ...]]:
    """The initial distribution of `values` [V] and one record per stage, in order."""
    context = np.unique(np.asarray(context_ids, dtype=np.int64))
    record = initial = _initial(values)
    stages = []
    for name in settings.order:
        record = _STAGE_FUNCTIONS[name](record, settings, context)
        stages.append(record)
    return initial, tuple(stages)


def _initial(values: np.ndarray) -> StageRecord:
    """Every token with a finite logit, sorted, at temperature 1."""
    finite = np.flatnonzero(np.isfinite(values))
    if finite.size == values.size:
        order = np.argsort(-values, kind="stable")  # stable: ties keep id order
    else:
        order = finite[np.argsort(-values[finite], kind="stable")]
    logits = values[order]  # [n]
    n = order.size
    ids = order.astype(np.int32)
    return StageRecord("logits", ids, logits, _softmax(logits), n, values.size)


def _softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Probabilities of sorted `logits` [n] at `temperature` > 0."""
    # Shift by the maximum (logits[0]) before dividing: a tiny T then sends the
    # others to -inf and exp to 0, instead of overflowing to inf - inf = NaN.
    with np.errstate(over="ignore"):
        weights = np.exp((logits - logits[0]) / temperature)  # [n]
    return weights / weights.sum()


def _same(prev: StageRecord, name: str, active: bool) -> StageRecord:
    """A stage that changed nothing: `prev`'s arrays, shared, under `name`."""
    n = prev.n_survivors
    return replace(prev, name=name, n_before=n, cutoff=None, active=active)


def _after(
    prev: StageRecord, name: str, *arrays: np.ndarray, cutoff: float | None = None
) -> StageRecord:
    """The record of an active stage that left `ids, logits, probs` in play."""
    ids, logits, probs = arrays
    n, t = prev.n_survivors, prev.temperature
    return StageRecord(name, ids, logits, probs, len(ids), n, cutoff, True, t)


def _kept(prev: StageRecord, name: str, keep: int, cutoff: float | None) -> StageRecord:
    """The first `keep` survivors of `prev`, renormalized; arrays are views."""
    probs = prev.probs[:keep]
    if keep < prev.n_survivors:
        probs = probs / probs.sum()
    return _after(prev, name, prev.ids[:keep], prev.logits[:keep], probs, cutoff=cutoff)


def _penalize(prev: StageRecord, s: SamplerSettings, ctx: np.ndarray) -> StageRecord:
    """Push down the logits of tokens already in the context, then re-sort."""
    name, penalty = "repetition_penalty", s.repetition_penalty
    hit = np.isin(prev.ids, ctx)  # [n]
    if penalty == 1 or not hit.any():
        return _same(prev, name, active=penalty != 1)
    logits = prev.logits.copy()
    mine = logits[hit]
    # Unscaled logits suffice even after the temperature: (l / T) / r = (l / r) / T.
    logits[hit] = np.where(mine > 0, mine / penalty, mine * penalty)
    order = np.lexsort((prev.ids, -logits))  # by logit, then by lowest id
    ids, logits = prev.ids[order], logits[order]
    return _after(prev, name, ids, logits, _softmax(logits, prev.temperature))


def _top_k(prev: StageRecord, s: SamplerSettings, ctx: np.ndarray) -> StageRecord:
    """Keep the k highest logits; among equal logits the lowest ids win."""
    if s.top_k == 0:
        return _same(prev, "top_k", active=False)
    keep = min(s.top_k, prev.n_survivors)
    return _kept(prev, "top_k", keep, float(prev.scaled_logits(keep)[-1]))


def _top_p(prev: StageRecord, s: SamplerSettings, ctx: np.ndarray) -> StageRecord:
    """Keep the most likely tokens until their mass reaches p (at least one)."""
    if s.top_p == 1:
        return _same(prev, "top_p", active=False)
    mass = np.cumsum(prev.probs)  # [n]
    keep = min(int(np.searchsorted(mass, s.top_p)) + 1, prev.n_survivors)
    return _kept(prev, "top_p", keep, float(mass[keep - 1]))


def _min_p(prev: StageRecord, s: SamplerSettings, ctx: np.ndarray) -> StageRecord:
    """Keep tokens at least min_p times as likely as the most likely one."""
    if s.min_p == 0:
        return _same(prev, "min_p", active=False)
    threshold = s.min_p * float(prev.probs[0])
    keep = int(np.count_nonzero(prev.probs >= threshold))  # a prefix: probs sorted
    return _kept(prev, "min_p", keep, threshold)


def _temperature(prev: StageRecord, s: SamplerSettings, ctx: np.ndarray) -> StageRecord:
    """Divide the logits by T; T = 0 keeps only the most likely token (greedy)."""
    t = s.temperature
    if t == 1:
        return _same(prev, "temperature", active=False)
    if t == 0:
        return _kept(prev, "temperature", 1, None)
    probs, n = _softmax(prev.logits, t), prev.n_survivors
    return StageRecord("temperature", prev.ids, prev.logits, probs, n, n, None, True, t)


_STAGE_FUNCTIONS = {
    "repetition_penalty": _penalize,
    "top_k": _top_k,
    "top_p": _top_p,
    "min_p": _min_p,
    "temperature": _temperature,
}
