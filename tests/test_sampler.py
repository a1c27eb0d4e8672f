"""The sampler chain: every stage recorded, the edge cases users hit, the draw."""

import warnings

import numpy as np
import pytest

from stepper.errors import SamplingError
from stepper.sampler import (
    DEFAULT_ORDER,
    STAGES,
    SamplerSettings,
    SampleTrace,
    cumulative_bounds,
    entropy_bits,
    pick_slot,
    sample,
    setting_problem,
)

OFF = {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0}


class StubUniform:
    """A stand-in generator that returns chosen numbers and counts the draws."""

    def __init__(self, *values: float) -> None:
        self.values = list(values)
        self.calls = 0

    def random(self) -> float:
        """The next chosen number."""
        self.calls += 1
        return self.values.pop(0)


def settings(**changes: object) -> SamplerSettings:
    """Every stage off unless `changes` turns it on."""
    return SamplerSettings(**{**OFF, **changes})  # type: ignore[arg-type]


def random_logits(seed: int, vocab: int = 512, scale: float = 3.0) -> np.ndarray:
    """Logits shaped like a small model's: a few likely tokens, a long tail."""
    return np.random.default_rng(seed).normal(size=vocab) * scale  # [V]


def records(trace: SampleTrace) -> list:
    """The initial distribution and every stage's record."""
    return [trace.initial, *trace.stages]


def trace_nbytes(trace: SampleTrace) -> int:
    """Bytes held by a trace's arrays, counting a buffer shared by views once."""
    owners = {}
    for record in records(trace):
        for array in (record.ids, record.logits, record.probs):
            owner = array if array.base is None else array.base
            owners[id(owner)] = owner
    owners[id(trace.cumulative)] = trace.cumulative
    return sum(a.nbytes for a in owners.values())


# -- settings ---------------------------------------------------------------------


def test_default_order_is_llama_cpp_and_every_stage_once():
    """The default runs penalties, the three filters, then the temperature."""
    assert SamplerSettings().order == DEFAULT_ORDER
    assert sorted(DEFAULT_ORDER) == sorted(STAGES)
    assert DEFAULT_ORDER[0] == "repetition_penalty"
    assert DEFAULT_ORDER[-1] == "temperature"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("temperature", -0.1, "out of range; use a number >= 0"),
        ("temperature", float("nan"), "not a finite number"),
        ("temperature", True, "wrong type"),
        ("top_k", -1, "out of range; use a whole number >= 0"),
        ("top_k", 2.5, "wrong type; use a whole number"),
        ("top_p", 0.0, "out of range; use a value in (0, 1]"),
        ("top_p", 1.5, "out of range; use a value in (0, 1]"),
        ("min_p", 1.0, "out of range; use a value in [0, 1)"),
        ("min_p", -0.01, "out of range; use a value in [0, 1)"),
        ("repetition_penalty", 0.0, "out of range; use a number > 0"),
        ("repetition_penalty", "1.1", "wrong type"),
        ("order", ("top_k", "top_k"), "names a stage twice"),
        ("order", ("top_k", "typical_p"), "unknown stage 'typical_p'"),
        ("order", ("top_k", "top_p"), "leaves out repetition_penalty, min_p"),
        ("order", "top_k", "wrong type"),
    ],
)
def test_absurd_settings_are_refused_naming_setting_and_range(name, value, words):
    """Each bad value raises one line that names the setting and what it accepts."""
    with pytest.raises(SamplingError) as caught:
        SamplerSettings(**{name: value})
    message = str(caught.value)
    assert message.startswith(f"sampling setting {name} = ")
    assert words in message
    assert "\n" not in message


def test_setting_problem_accepts_the_edges_of_each_range():
    """The bounds that are allowed pass: 0 greedy, top_p 1, min_p 0, ints as floats."""
    for name, value in [("temperature", 0), ("top_p", 1), ("min_p", 0), ("top_k", 0)]:
        assert setting_problem(name, value) is None
    assert setting_problem("order", list(reversed(STAGES))) is None


# -- the stages -------------------------------------------------------------------


def test_top_k_zero_means_off():
    """top_k = 0 keeps every token and says the stage was off."""
    trace = sample(random_logits(0), settings(top_k=0), StubUniform(0.5))
    top_k = trace.stage("top_k")
    assert not top_k.active
    assert top_k.n_survivors == 512
    assert top_k.cutoff is None


@pytest.mark.parametrize("vocab", [20, 50_000])
def test_ties_at_the_kth_logit_keep_exactly_k_lowest_ids_first(vocab):
    """Many tokens share the 3rd-highest logit; top_k = 3 keeps the lowest two ids."""
    logits = np.zeros(vocab)
    logits[7] = 5.0
    logits[2::2] = 3.0
    trace = sample(logits, settings(top_k=3), StubUniform(0.5))
    top_k = trace.stage("top_k")
    assert top_k.ids.tolist() == [7, 2, 4]
    assert top_k.cutoff == 3.0
    logits[7] = 3.0
    greedy = sample(logits, settings(temperature=0), StubUniform())
    assert greedy.token_id == 2


def test_top_k_cutoff_is_the_kth_logit():
    """The recorded cut-off is the smallest logit kept."""
    logits = random_logits(1)
    trace = sample(logits, settings(top_k=10), StubUniform(0.5))
    assert trace.stage("top_k").cutoff == np.sort(logits)[-10]


def test_top_p_too_small_to_keep_anything_keeps_the_most_likely_token():
    """Even a top_p below the top probability keeps one token: the argmax."""
    logits = random_logits(2)
    trace = sample(logits, settings(top_p=1e-9), StubUniform(0.99))
    top_p = trace.stage("top_p")
    assert top_p.ids.tolist() == [int(np.argmax(logits))]
    assert trace.token_id == int(np.argmax(logits))


def test_top_p_keeps_the_smallest_set_reaching_p():
    """Without the last survivor the mass is below p; with it, at least p."""
    trace = sample(random_logits(3), settings(top_p=0.8), StubUniform(0.5))
    before = trace.initial.probs
    kept = trace.stage("top_p").n_survivors
    assert before[: kept - 1].sum() < 0.8 <= before[:kept].sum() + 1e-12
    assert trace.stage("top_p").cutoff == pytest.approx(before[:kept].sum())


@pytest.mark.parametrize("seed", range(20))
def test_top_k_then_top_p_never_masks_everything(seed):
    """Any k and any p leave at least one token to draw."""
    rng = np.random.default_rng(seed)
    chosen = settings(top_k=int(rng.integers(1, 5)), top_p=float(rng.uniform(1e-6, 1)))
    trace = sample(random_logits(seed, scale=10.0), chosen, rng)
    assert all(r.n_survivors >= 1 for r in records(trace))
    assert trace.rank is not None


def test_min_p_keeps_tokens_at_least_min_p_times_the_top():
    """The survivors are exactly the tokens with p >= min_p * p_max."""
    logits = random_logits(4)
    trace = sample(logits, settings(min_p=0.1), StubUniform(0.5))
    probs = np.exp(logits - logits.max())
    probs /= probs.sum()
    expected = np.flatnonzero(probs >= 0.1 * probs.max())
    min_p = trace.stage("min_p")
    assert sorted(min_p.ids.tolist()) == expected.tolist()
    assert min_p.cutoff == pytest.approx(0.1 * probs.max())


def test_repetition_penalty_changes_exactly_the_context_tokens_logits():
    """Context logits move toward -inf (positive / 1.3, negative * 1.3); no others."""
    logits = random_logits(5)
    context = [3, 17, 17, 200, 401]
    trace = sample(logits, settings(repetition_penalty=1.3), StubUniform(0.5), context)
    penalized = trace.stage("repetition_penalty")
    after = np.empty_like(logits)
    after[penalized.ids] = penalized.scaled_logits()
    changed = np.flatnonzero(after != logits)
    assert changed.tolist() == [3, 17, 200, 401]
    for i in changed:
        expected = logits[i] / 1.3 if logits[i] > 0 else logits[i] * 1.3
        assert after[i] == pytest.approx(expected)


def test_repetition_penalty_re_sorts_the_survivors():
    """A penalized top token drops below the one it used to beat."""
    logits = np.array([0.0, 2.0, 1.9, -1.0])
    trace = sample(logits, settings(repetition_penalty=2.0), StubUniform(0.5), [1])
    assert trace.stage("repetition_penalty").ids.tolist() == [2, 1, 0, 3]


def test_temperature_reshapes_without_changing_who_survives():
    """T = 2 flattens the distribution over the same tokens as T = 1."""
    logits = random_logits(6)
    hot = sample(logits, settings(temperature=2.0), StubUniform(0.5)).final
    cold = sample(logits, settings(), StubUniform(0.5)).final
    assert hot.ids.tolist() == cold.ids.tolist()
    assert hot.probs[0] < cold.probs[0]
    assert hot.scaled_logits() == pytest.approx(cold.logits / 2.0)
    assert hot.top(1)[0].logit == pytest.approx(cold.top(1)[0].logit / 2.0)


def test_order_is_honoured_temperature_first_widens_top_p():
    """Heating before top_p (Hugging Face's order) lets more tokens through."""
    logits = random_logits(7)
    hf_order = ("temperature", "repetition_penalty", "top_k", "top_p", "min_p")
    last = sample(logits, settings(temperature=2.0, top_p=0.5), StubUniform(0.5))
    first = sample(
        logits, settings(temperature=2.0, top_p=0.5, order=hf_order), StubUniform(0.5)
    )
    assert [r.name for r in first.stages] == list(hf_order)
    assert first.stage("top_p").n_survivors > last.stage("top_p").n_survivors


@pytest.mark.parametrize(
    "chosen",
    [
        SamplerSettings(),
        SamplerSettings(temperature=0),
        SamplerSettings(temperature=1e-8, top_k=0, top_p=1.0, min_p=0.0),
        SamplerSettings(temperature=1.7, repetition_penalty=1.5, min_p=0.0),
        SamplerSettings(order=tuple(reversed(STAGES)), repetition_penalty=0.7),
    ],
)
def test_probabilities_sum_to_one_after_every_stage(chosen):
    """Each stage's distribution over its survivors sums to 1 within 1e-6."""
    trace = sample(random_logits(8), chosen, np.random.default_rng(0), [1, 2, 3])
    for record in records(trace):
        worst = abs(record.probs.sum() - 1.0)
        assert worst <= 1e-6, f"{record.name}: off by {worst:.3g}"
        assert len(record.probs) == len(record.ids) == record.n_survivors
        assert np.all(np.diff(record.probs) <= 0), f"{record.name} is not sorted"


# -- greedy and near-greedy -------------------------------------------------------


def test_greedy_takes_the_argmax_lowest_id_on_ties_and_draws_nothing():
    """T = 0 picks the lowest id among the tied maxima, with u None and no draw."""
    logits = np.array([1.0, 4.0, 2.0, 4.0])
    stub = StubUniform()
    trace = sample(logits, settings(temperature=0.0), stub)
    assert (trace.token_id, trace.u, trace.greedy, stub.calls) == (1, None, True, 0)
    assert (trace.rank, trace.lo, trace.hi, trace.p) == (0, 0.0, 1.0, 1.0)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("temperature", [1e-8, 1e-300, 5e-324])
@pytest.mark.parametrize("order", [DEFAULT_ORDER, tuple(reversed(STAGES))])
def test_temperature_near_zero_acts_greedy_without_overflow(seed, temperature, order):
    """A tiny T puts all the mass on the argmax, with no warning, inf or NaN."""
    logits = random_logits(seed, scale=30.0)
    chosen = settings(temperature=temperature, repetition_penalty=1.2, order=order)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Underflow to 0 is the point; inf - inf or 0 / 0 would be bugs.
        with np.errstate(invalid="raise", divide="raise"):
            trace = sample(logits, chosen, np.random.default_rng(1), [7])
    assert trace.token_id == int(np.argmax(logits))
    for record in records(trace):
        assert np.all(np.isfinite(record.probs)), record.name
        assert not np.any(np.isnan(record.scaled_logits())), record.name
    assert trace.final.probs[0] == 1.0


# -- bad logits -------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "shown"), [(np.nan, "nan"), (np.inf, "inf")])
def test_nan_or_plus_inf_logits_stop_with_a_clear_error(bad, shown):
    """The message names the token id and the value, and says what to check."""
    logits = random_logits(9)
    logits[42] = bad
    with pytest.raises(SamplingError, match=rf"token id 42 is {shown}; .*model"):
        sample(logits, SamplerSettings(), np.random.default_rng(0))


def test_minus_inf_masks_a_token_but_all_minus_inf_is_refused():
    """-inf leaves a token out of play; a row of only -inf cannot be sampled."""
    logits = np.array([5.0, -np.inf, 4.0, -np.inf])
    trace = sample(logits, settings(), np.random.default_rng(0))
    assert sorted(trace.initial.ids.tolist()) == [0, 2]
    assert trace.initial.n_before == 4
    with pytest.raises(SamplingError, match="every logit is -inf"):
        sample(np.full(4, -np.inf), settings(), np.random.default_rng(0))


@pytest.mark.parametrize("shape", [(0,), (2, 3)])
def test_logits_must_be_one_nonempty_row(shape):
    """An empty or two-dimensional array is refused with its shape."""
    with pytest.raises(SamplingError, match=r"logits have shape"):
        sample(np.zeros(shape), settings(), np.random.default_rng(0))


def test_ids_outside_the_vocabulary_are_refused():
    """A context id or a forced id past V names the id and the valid range."""
    with pytest.raises(SamplingError, match=r"context token id 9 .* \[0, 8\)"):
        sample(np.zeros(8), settings(), np.random.default_rng(0), [1, 9])
    with pytest.raises(SamplingError, match=r"forced token id -1 "):
        sample(np.zeros(8), settings(), np.random.default_rng(0), forced=-1)


# -- the draw ---------------------------------------------------------------------


@pytest.mark.parametrize("u", [0.0, 0.1, 0.35, 0.5, 0.77, 0.999999])
def test_the_chosen_token_is_the_slot_that_contains_u(u):
    """With a given u the chosen token's slot [lo, hi) contains u."""
    trace = sample(random_logits(10), SamplerSettings(), StubUniform(u))
    assert trace.u == u
    assert trace.lo <= u < trace.hi
    assert trace.token_id == int(trace.final.ids[trace.rank])
    assert trace.hi == trace.cumulative[trace.rank]
    assert trace.p == pytest.approx(trace.hi - trace.lo)


def test_slots_follow_the_cumulative_distribution_exactly():
    """Probabilities .5, .3, .2: u on a boundary belongs to the slot it starts."""
    bounds = cumulative_bounds(np.array([0.5, 0.3, 0.2]))
    assert bounds[-1] == 1.0
    picks = [pick_slot(bounds, u) for u in (0.0, 0.49, 0.5, 0.79, 0.8, 0.9999)]
    assert picks == [0, 0, 1, 1, 2, 2]


def test_a_zero_probability_slot_is_never_hit():
    """A slot of width 0 is skipped even by the u that sits on its edge."""
    bounds = cumulative_bounds(np.array([0.5, 0.0, 0.5, 0.0]))
    assert [pick_slot(bounds, u) for u in (0.5, 0.9999999)] == [2, 2]


def test_the_same_seed_gives_the_same_draws():
    """Two generators seeded alike produce identical tokens and u's."""
    logits = random_logits(11)

    def run(seed: int) -> list[tuple[int, float | None]]:
        rng = np.random.default_rng(seed)
        traces = [sample(logits, SamplerSettings(), rng) for _ in range(30)]
        return [(t.token_id, t.u) for t in traces]

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_the_sampler_leaves_numpy_global_random_state_alone():
    """Sampling touches only the generator passed in."""
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    sample(random_logits(12), SamplerSettings(), np.random.default_rng(0))
    assert np.array_equal(np.random.get_state()[1], before)


def test_a_random_source_outside_zero_one_is_refused():
    """A broken generator is caught rather than silently picking the last token."""
    with pytest.raises(SamplingError, match=r"u = 1.0"):
        sample(random_logits(13), SamplerSettings(), StubUniform(1.0))


# -- forcing ----------------------------------------------------------------------


def test_forcing_a_token_draws_nothing_so_later_draws_are_unchanged():
    """Forcing token 3 at step 2 leaves steps 3.. identical to the unforced run."""
    logits = random_logits(14)

    def run(force_at: int | None) -> list[tuple[int, float | None]]:
        rng = np.random.default_rng(7)
        steps = []
        for step in range(6):
            forced = 3 if step == force_at else None
            t = sample(logits, SamplerSettings(), rng, forced=forced)
            steps.append((t.token_id, t.u))
        return steps

    free, forced = run(None), run(2)
    assert forced[2] == (3, None)
    assert forced[:2] == free[:2]
    assert forced[3:] == free[2:5]


def test_a_forced_token_keeps_the_whole_chain_and_its_standing():
    """The chain is still recorded; a survivor gets its slot, a cut token p = 0."""
    logits = random_logits(15)
    best = int(np.argmax(logits))
    trace = sample(logits, SamplerSettings(), StubUniform(), forced=best)
    assert trace.forced and trace.u is None and trace.rank == 0
    assert len(trace.stages) == len(STAGES)
    loser = int(np.argmin(logits))
    cut = sample(logits, SamplerSettings(), StubUniform(), forced=loser)
    assert (cut.token_id, cut.rank, cut.lo, cut.hi) == (loser, None, None, None)
    assert cut.p == 0.0
    assert cut.initial.lookup(loser) is not None
    assert cut.final.lookup(loser) is None


# -- size and the view for the UI ---------------------------------------------------


def test_a_trace_over_50k_tokens_stays_small_and_compacts():
    """Stages share the sorted ids; `compact` keeps the top and the chosen slot."""
    vocab = 50_000
    logits = random_logits(16, vocab=vocab).astype(np.float32)
    trace = sample(logits, SamplerSettings(), np.random.default_rng(0), range(300))
    full_rows = vocab * (4 + 8 + 8)  # ids, logits, probs of the initial stage
    assert trace_nbytes(trace) <= 2 * full_rows, trace_nbytes(trace)
    small = trace.compact(16)
    assert trace_nbytes(small) < 5_000
    kept = (small.p, small.lo, small.hi, small.top_prob, small.entropy)
    assert kept == (trace.p, trace.lo, trace.hi, trace.top_prob, trace.entropy)
    assert small.top(5, "logits") == trace.top(5, "logits")
    assert small.stage("top_k").n_survivors == 40


def test_top_lists_candidates_at_any_stage():
    """`top(n, stage)` gives id, logit and probability, most likely first."""
    logits = np.array([0.0, 3.0, 1.0, 2.0])
    trace = sample(logits, settings(top_k=2), StubUniform(0.5))
    assert [c.token_id for c in trace.top(3, "logits")] == [1, 3, 2]
    assert [c.token_id for c in trace.top(3)] == [1, 3]
    assert trace.top(1, "top_k")[0].prob == pytest.approx(1 / (1 + np.exp(-1)))


def test_entropy_and_top_prob_describe_the_model_distribution():
    """Eight equal logits: 3 bits of entropy and a top probability of 1/8."""
    trace = sample(np.zeros(8), SamplerSettings(), np.random.default_rng(0))
    assert trace.entropy == pytest.approx(3.0)
    assert trace.top_prob == pytest.approx(0.125)
    assert entropy_bits(np.array([1.0, 0.0])) == 0.0
