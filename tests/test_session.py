"""The stepping session: stages, stepping back to exact states, changes, breakpoints."""

from __future__ import annotations

import numpy as np
import pytest

from stepper.load import load_model
from stepper.sampler import SamplerSettings
from stepper.session import ATTENTION_BUDGET, Cursor, Session, Settings, Stage
from stepper.transformer import Transformer

PROMPT = "Once upon a time"


@pytest.fixture(scope="module")
def model():
    return load_model("stories260k")


def make(model, temperature=1.0, seed=7, n=30, **kw) -> Session:
    sampler = SamplerSettings(temperature=temperature, top_k=0, top_p=1.0, min_p=0.0)
    return Session(model, Settings(PROMPT, sampler, seed=seed, max_new_tokens=n, **kw))


def greedy_after(model, ids: list[int], n: int) -> list[int]:
    """Greedy continuation of `ids` computed directly with the transformer."""
    t = Transformer(model)
    logits = t.forward(ids).logits
    out = []
    for _ in range(n):
        out.append(int(np.argmax(logits)))
        logits = t.forward([out[-1]]).logits
    return out


def test_first_token_walks_every_stage_and_layer(model):
    s = make(model)
    seen = [s.cursor]
    while s.cursor.stage != Stage.SAMPLE:
        s.step()
        seen.append(s.cursor)
    layers = [Cursor(0, Stage.ATTEND, i) for i in range(model.config.n_layers)]
    assert seen == [
        Cursor(0, Stage.TOKENIZE),
        Cursor(0, Stage.EMBED),
        *layers,
        Cursor(0, Stage.PREDICT),
        Cursor(0, Stage.SAMPLE),
    ]
    s.step()
    assert s.cursor == Cursor(1, Stage.EMBED), "later tokens start at Embed"


def test_step_over_takes_attend_whole(model):
    s = make(model)
    s.step_over()
    s.step_over()
    assert s.cursor == Cursor(0, Stage.ATTEND, None)
    s.step_over()
    assert s.cursor.stage == Stage.PREDICT


def test_greedy_session_matches_transformer(model):
    s = make(model, temperature=0.0, n=40)
    assert s.run() == "end"
    assert s.generated_ids == greedy_after(model, s.prompt_ids, 40)
    assert s.end_reason == "max_new_tokens"
    assert s.text.startswith(", there was a little girl named Lily.")


def test_back_and_forth_across_twenty_tokens_is_exact(model):
    s = make(model, n=30)
    s.run()
    ids, text = s.generated_ids, s.text
    saved = {st.index: (st.capture.logits, st.trace.u) for st in s.steps}
    while s.cursor.token > 5:
        s.back()
    assert s.cursor == Cursor(5, Stage.SAMPLE)
    assert s.generated_ids == ids[:6]
    for _ in range(3):
        s.back_token()
    for step in s.steps:
        logits, u = saved[step.index]
        assert step.capture.logits is logits and step.trace.u == u
    s.run()
    assert s.generated_ids == ids and s.text == text


def test_same_seed_same_tokens_different_seed_differs(model):
    a, b, c = make(model, seed=3), make(model, seed=3), make(model, seed=4)
    for s in (a, b, c):
        s.run()
    assert a.generated_ids == b.generated_ids
    assert a.generated_ids != c.generated_ids


def test_change_temperature_mid_run_applies_from_cursor(model):
    s = make(model, n=30)
    s.run()
    before = s.generated_ids
    s.back_token()
    while s.cursor.token > 10:
        s.back_token()
    k = s.cursor.token
    s.set_sampler(temperature=0.0)
    s.run()
    assert s.generated_ids[:k] == before[:k]
    expected = greedy_after(model, s.prompt_ids + before[:k], 30 - k)
    assert s.generated_ids[k:] == expected
    assert s.history[-2].kind == "set_sampler"


def test_force_token_changes_the_future_only(model):
    s = make(model, temperature=0.0, n=12)
    s.run()
    original = s.generated_ids
    while s.cursor.token > 3:
        s.back_token()
    forced = model.tokenizer.find("▁dog") or model.tokenizer.encode(" dog").ids[-1]
    s.force(forced)
    assert s.current.forced and s.current.token_id == forced
    s.run()
    ids = s.generated_ids
    assert ids[:3] == original[:3] and ids[3] == forced
    assert ids[4:] == greedy_after(model, s.prompt_ids + ids[:4], 12 - 4)


def test_forcing_does_not_shift_later_draws(model):
    a, b = make(model, seed=11, n=10), make(model, seed=11, n=10)
    a.run()
    b.next_token()
    b.force(a.generated_ids[0])
    b.run()
    assert b.generated_ids == a.generated_ids


def test_prompt_edit_restarts_from_tokenize(model):
    s = make(model, n=5)
    s.run()
    s.set_prompt("The dog")
    assert s.cursor == Cursor(0, Stage.TOKENIZE) and s.steps == []
    assert s.prompt_ids == model.tokenizer.encode("The dog").ids


def test_empty_prompt_starts_from_bos(model):
    s = make(model, temperature=0.0, n=8)
    s.set_prompt("")
    assert s.prompt_ids == [model.tokenizer.bos_id]
    s.run()
    assert s.text.strip().startswith("Once upon a time")


def test_stop_string_ends_generation(model):
    s = make(model, temperature=0.0, n=60, stop=("Lily",))
    s.run()
    assert s.end_reason == "stop" and s.text.endswith("Lily")


@pytest.mark.parametrize(
    ("kind", "value", "stage"),
    [
        ("at_token", 4, Stage.EMBED),
        ("on_token", "▁Lily", Stage.SAMPLE),
        ("top_prob_below", 0.5, Stage.PREDICT),
        ("entropy_above", 1.0, Stage.PREDICT),
    ],
)
def test_each_breakpoint_kind_stops_the_run(model, kind, value, stage):
    s = make(model, temperature=0.0, n=30)
    s.add_breakpoint(kind, value)
    assert s.run() == "breakpoint"
    assert s.cursor.stage == stage
    assert s.hit_breakpoint() is not None
    step = s.current
    if kind == "at_token":
        assert s.cursor.token == 4
    elif kind == "on_token":
        assert model.tokenizer.piece(step.token_id) == "▁Lily"
    elif kind == "top_prob_below":
        z = np.exp(step.capture.logits - step.capture.logits.max())
        assert (z / z.sum()).max() < 0.5
    resumed = s.cursor
    s.run()
    assert s.cursor != resumed, "run resumes past the breakpoint it stopped at"


def test_run_can_be_interrupted(model):
    s = make(model, n=30)
    calls = []
    assert s.run(should_stop=lambda: len(calls.append(1) or calls) > 5) == (
        "interrupted"
    )
    assert s.cursor.token < 29


def test_attention_memory_is_bounded_and_recomputed_exactly(model, monkeypatch):
    monkeypatch.setattr("stepper.session.ATTENTION_BUDGET", 2000)
    s = make(model, n=40)
    s.run()
    kept = sum(a.size for st in s.steps for a in st.capture.attention)
    assert kept <= 2000 + sum(a.size for a in s.steps[-1].capture.attention)
    dropped = [st for st in s.steps if st.attention_dropped]
    assert dropped, "old attention rows were dropped"
    full = make(model, n=40)
    full.run()
    i = dropped[0].index
    for mine, ref in zip(s.attention(i), full.attention(i), strict=True):
        np.testing.assert_array_equal(mine, ref)
    assert ATTENTION_BUDGET > 1_000_000


def test_absurd_settings_are_one_line_errors(model):
    from stepper.errors import StepperError

    s = make(model, n=3)
    with pytest.raises(StepperError, match="outside the vocabulary"):
        s.force(10**6)
    with pytest.raises(StepperError, match="top_p"):
        s.set_sampler(top_p=1.5)


def test_a_refused_prompt_leaves_the_session_as_it_was(model):
    from stepper.errors import StepperError

    s = make(model, n=5)
    s.run()
    before = (s.settings, s.prompt_ids, s.generated_ids, s.cursor)
    with pytest.raises(StepperError, match="shorten the prompt"):
        s.set_prompt("a " * 3000)
    assert (s.settings, s.prompt_ids, s.generated_ids, s.cursor) == before


def test_scenario_notes_show_only_while_they_describe_the_session(model):
    from stepper.scenario import load_scenario
    from stepper.scenario_session import session_from_scenario

    s = session_from_scenario(load_scenario("story"))
    assert s.notes(Stage.TOKENIZE, 0), "the story narrates its first stage"
    s.set_sampler(temperature=0.5)
    assert s.notes(Stage.TOKENIZE, 0) == [], "settings changed: notes would mislead"
    s = session_from_scenario(load_scenario("story"))
    s.set_prompt("The cat")
    assert s.notes(Stage.TOKENIZE, 0) == []


def test_running_out_of_context_ends_with_its_own_reason(model):
    sampler = SamplerSettings(temperature=0.0)
    per_word = len(model.tokenizer.encode("dog " * 100).ids) / 100  # BOS aside
    words = int((model.config.n_ctx - 8) / per_word)
    while len(model.tokenizer.encode("dog " * words).ids) < model.config.n_ctx - 6:
        words += 1
    s = Session(model, Settings("dog " * words, sampler, max_new_tokens=100))
    s.run()
    assert s.end_reason == "context"
    last = s.steps[-1].capture
    assert last.start + len(last.ids) == model.config.n_ctx


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("at_token", -1),
        ("entropy_above", float("nan")),
        ("entropy_above", -5),
        ("top_prob_below", 2),
        ("top_prob_below", 0),
        ("on_token", ""),
    ],
)
def test_absurd_breakpoints_are_refused(model, kind, value):
    from stepper.errors import StepperError

    with pytest.raises(StepperError, match="breakpoint"):
        make(model).add_breakpoint(kind, value)


def test_negative_seed_is_refused(model):
    from stepper.errors import StepperError

    s = make(model)
    with pytest.raises(StepperError, match="seed = -1"):
        s.set_seed(-1)
    assert s.settings.seed == 7
