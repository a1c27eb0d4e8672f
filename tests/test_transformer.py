"""The forward pass on the real stories260K model: golden output, cache, captures."""

from __future__ import annotations

import numpy as np
import pytest

from stepper.load import load_model
from stepper.transformer import Transformer

# The first 200 characters of the greedy continuation from BOS that stories260K's
# authors publish with the model (llama2.c, doc/stories260K.md).
GOLDEN = (
    "Once upon a time, there was a little girl named Lily. She loved to play outside "
    "in the park. One day, she saw a big, red ball. She wanted to play with it, but "
    "it was too high.\nLily's mom said, \"Lily, let's go to the park.\""
)


@pytest.fixture(scope="module")
def model():
    return load_model("stories260k")


def greedy(model, ids: list[int], n: int) -> list[int]:
    t = Transformer(model)
    logits = t.forward(ids).logits
    out: list[int] = []
    for _ in range(n):
        out.append(int(np.argmax(logits)))
        logits = t.forward([out[-1]]).logits
    return out


def test_greedy_from_bos_reproduces_the_published_story(model):
    tok = model.tokenizer
    ids = greedy(model, [tok.bos_id], 100)
    text = tok.decode(ids)
    assert text.startswith(GOLDEN), text


def test_cached_and_uncached_runs_agree_over_64_positions(model):
    rng = np.random.default_rng(0)
    ids = [1, *rng.integers(3, model.config.n_vocab, size=70).tolist()]
    t = Transformer(model)
    cached = np.stack([t.forward([i]).logits for i in ids])  # [T, V]
    worst = 0.0
    for n in range(1, len(ids) + 1):
        uncached = Transformer(model).forward(ids[:n]).logits
        worst = max(worst, float(np.abs(uncached - cached[n - 1]).max()))
    scale = float(np.abs(cached).max())
    print(f"largest cached/uncached difference {worst:.3g}, max |logit| {scale:.3g}")
    # Batched and one-row matrix products sum in different orders in float32:
    # 1e-5 relative to the largest logit is a few units in the last place.
    assert worst <= 1e-5 * scale


def test_prefill_then_decode_equals_decode_only(model):
    ids = model.tokenizer.encode("Once upon a time, there was a dog").ids
    a = Transformer(model)
    a.forward(ids[:4])
    for i in ids[4:]:
        last = a.forward([i]).logits
    b = Transformer(model)
    for i in ids:
        ref = b.forward([i]).logits
    np.testing.assert_allclose(last, ref, rtol=0, atol=1e-5 * np.abs(ref).max())


def test_attention_is_causal_and_rows_sum_to_one(model):
    ids = model.tokenizer.encode("The cat sat on the mat and the dog").ids
    cap = Transformer(model).forward(ids)
    cfg = model.config
    assert len(cap.attention) == cfg.n_layers
    for weights in cap.attention:
        assert weights.shape == (cfg.n_heads, len(ids), len(ids))
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
        upper = np.triu(np.ones((len(ids), len(ids)), bool), k=1)
        assert np.all(weights[:, upper] == 0.0), "no weight on future tokens"


def test_captures_have_documented_shapes(model):
    cfg = model.config
    t = Transformer(model)
    first = t.forward([1, 403, 407])
    cap = t.forward([261])
    assert cap.start == 3 and cap.ids == (261,)
    assert cap.token_embeddings.shape == (1, cfg.n_embd)
    assert cap.position_embeddings is None, "RoPE models have no position vectors"
    assert cap.attention[0].shape == (cfg.n_heads, 1, 4)
    assert cap.residual_norms.shape == (cfg.n_layers + 1, 1)
    assert cap.residuals.shape == (cfg.n_layers + 1, cfg.n_embd)
    assert cap.logits.shape == (cfg.n_vocab,)
    assert first.attention[0].shape == (cfg.n_heads, 3, 3)


def test_logit_lens_last_layer_is_the_models_prediction(model):
    t = Transformer(model)
    cap = t.forward(model.tokenizer.encode("Once upon a").ids)
    ids, probs = t.logit_lens(cap, k=5)
    assert ids.shape == probs.shape == (model.config.n_layers + 1, 5)
    assert ids[-1, 0] == int(np.argmax(cap.logits))
    assert np.all(np.diff(probs, axis=-1) <= 0), "each row is sorted"


def test_cache_grows_past_its_first_allocation(model):
    t = Transformer(model, capacity=8)
    ids = [1, *range(10, 40)]
    for i in ids:
        logits = t.forward([i]).logits
    ref = Transformer(model).forward(ids).logits
    np.testing.assert_allclose(logits, ref, atol=1e-5 * np.abs(ref).max())
    assert t.cache.capacity >= len(ids)


def test_truncate_then_continue_is_exact(model):
    t = Transformer(model)
    t.forward([1, 403, 407, 261])
    t.forward([378])
    t.truncate(4)
    again = t.forward([378]).logits
    ref = Transformer(model)
    ref.forward([1, 403, 407, 261])
    np.testing.assert_array_equal(again, ref.forward([378]).logits)


def test_context_overflow_is_a_clear_error(model):
    from stepper.errors import StepperError

    t = Transformer(model)
    with pytest.raises(StepperError, match="holds at most 2048"):
        t.forward([1] * 2049)
    with pytest.raises(StepperError, match="outside the vocabulary"):
        t.forward([9999])


def test_second_real_model_decodes_its_known_story():
    """BabyLlama (dim 128, GQA 8/4, 105-token vocabulary) from its GGUF copy."""
    from pathlib import Path

    baby = load_model(Path(__file__).parent / "data/babyllama/babyllama-tok105.gguf")
    tok = baby.tokenizer
    text = tok.decode(greedy(baby, [tok.bos_id], 120))
    expected = "Once upon a time, there was a little girl named Lily. She loved to play"
    assert text.startswith(expected), text


def test_long_prompt_keeps_only_its_last_attention_rows(model):
    from stepper.transformer import CAPTURED_ROWS

    ids = [1, *range(10, 10 + CAPTURED_ROWS + 40)]
    cap = Transformer(model).forward(ids)
    assert cap.attention[0].shape[1] == CAPTURED_ROWS
    assert cap.first_query == len(ids) - CAPTURED_ROWS
    t = Transformer(model)
    t.forward(ids[:-1])
    last = t.forward(ids[-1:])
    np.testing.assert_allclose(
        cap.attention[2][:, -1], last.attention[2][:, 0], atol=1e-6
    )
