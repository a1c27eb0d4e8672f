"""What one call to the sampler recorded: the distribution after every stage."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from stepper.sampler import SamplerSettings


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


def _slot(cumulative: np.ndarray, rank: int | None) -> tuple[float | None, ...]:
    """The bounds [lo, hi) of slot `rank`, or (None, None) without a slot."""
    if rank is None:
        return None, None
    lo = 0.0 if rank == 0 else float(cumulative[rank - 1])
    return lo, float(cumulative[rank])
