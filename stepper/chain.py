"""The sampler's stages, each a function from one StageRecord to the next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from stepper.sample_trace import StageRecord

if TYPE_CHECKING:
    from stepper.sampler import SamplerSettings


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
