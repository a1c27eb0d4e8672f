"""Scenario files: the shipped ones load, mistakes name file, key and line."""

import os
import tomllib
from pathlib import Path

import numpy as np
import pytest

from stepper.breakpoints import Breakpoint
from stepper.errors import ScenarioError
from stepper.load import load_model
from stepper.sampler import DEFAULT_ORDER, SamplerSettings, sample
from stepper.scenario import (
    DEFAULT_SCENARIO,
    STAGE_NAMES,
    Note,
    Scenario,
    builtin_scenarios,
    load_scenario,
)
from stepper.session import Stage
from stepper.transformer import Transformer

ROOT = Path(__file__).resolve().parent.parent


def write(folder: Path, text: str, name: str = "x.toml") -> Path:
    """A scenario file with `text` in `folder`."""
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    """The one-line message loading `path` fails with."""
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    message = str(caught.value)
    assert "\n" not in message
    return message


# -- the shipped scenarios --------------------------------------------------------


def test_at_least_five_scenarios_ship_and_the_default_is_one():
    """The lessons the issue asks for are all there, under their names."""
    names = set(builtin_scenarios())
    assert {"story", "tokens", "temperature", "top_p", "attention"} <= names
    assert DEFAULT_SCENARIO in names


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_every_shipped_scenario_loads_with_narration(name):
    """Each loads by name, runs the built-in model and narrates real stages."""
    scenario = load_scenario(name)
    assert scenario.model == "stories260k"
    assert scenario.title and scenario.description and scenario.prompt
    assert scenario.notes, f"{name} has no notes"
    assert {note.stage for note in scenario.notes} <= set(STAGE_NAMES)
    assert scenario.source == builtin_scenarios()[name]


def test_stage_names_are_the_sessions():
    """Notes name stages exactly as the session's cursor does."""
    assert tuple(stage.value for stage in Stage) == STAGE_NAMES


def test_scenarios_ship_as_package_data():
    """The folder is a package with a docstring and the wheel includes it."""
    package = ROOT / "scenarios" / "__init__.py"
    assert package.read_text(encoding="utf-8").startswith('"""')
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert "scenarios" in wheel["packages"]
    assert all(p.parent == package.parent for p in builtin_scenarios().values())


def test_a_built_in_name_or_a_path_loads_the_same_scenario():
    """`story` and the path of story.toml give equal scenarios."""
    assert load_scenario("story") == load_scenario(builtin_scenarios()["story"])


# -- defaults, notes and overrides ------------------------------------------------


def test_an_empty_file_is_the_default_story(tmp_path):
    """Every key has a default; the title falls back to the file's name."""
    scenario = load_scenario(write(tmp_path, "", "mine.toml"))
    expected = Scenario(title="mine", source=tmp_path / "mine.toml")
    assert scenario == expected
    assert scenario.prompt == "Once upon a time"
    assert scenario.model == "stories260k"
    assert scenario.sampler == SamplerSettings()
    assert scenario.sampler.order == DEFAULT_ORDER


def test_every_key_is_read(tmp_path):
    """A file that sets everything gets exactly what it set."""
    text = """
title = "T"
description = "D"
model = "stories260k"
prompt = "P"
temperature = 1
top_k = 5
top_p = 0.5
min_p = 0.1
repetition_penalty = 1.3
sampler_order = ["temperature", "top_k", "top_p", "min_p", "repetition_penalty"]
seed = 9
max_new_tokens = 3
stop = [".", "!"]
breakpoints = [
  { at_token = 2 }, { on_token = "Lily" }, { on_token = 7 },
  { top_prob_below = 0.3 },
  { entropy_above = 2 },
]

[[notes]]
stage = "Predict"
token = 2
text = "two"
"""
    scenario = load_scenario(write(tmp_path, text))
    order = ("temperature", "top_k", "top_p", "min_p", "repetition_penalty")
    assert scenario.sampler == SamplerSettings(1, 5, 0.5, 0.1, 1.3, order)
    assert (scenario.title, scenario.description, scenario.prompt) == ("T", "D", "P")
    assert (scenario.seed, scenario.max_new_tokens) == (9, 3)
    assert scenario.stop == (".", "!")
    assert scenario.breakpoints == (
        Breakpoint("at_token", 2),
        Breakpoint("on_token", "Lily"),
        Breakpoint("on_token", 7),
        Breakpoint("top_prob_below", 0.3),
        Breakpoint("entropy_above", 2),
    )
    assert scenario.notes == (Note("Predict", "two", 2),)


def test_notes_for_a_token_and_for_every_token():
    """A note with a token shows at that token only; one without, at every token."""
    scenario = Scenario(
        notes=(Note("Sample", "first", 0), Note("Sample", "always"), Note("Embed", "e"))
    )
    assert scenario.notes_for("Sample", 0) == ["first", "always"]
    assert scenario.notes_for("Sample", 5) == ["always"]
    assert scenario.notes_for("Attend", 0) == []


def test_overrides_replace_what_is_given_and_ignore_none():
    """Command-line flags win; a flag left out (None) keeps the scenario's value."""
    story = load_scenario("story")
    changed = story.with_overrides(
        temperature=1.5, top_k=None, prompt="Lily", seed=4, max_new_tokens=2
    )
    assert changed.sampler.temperature == 1.5
    assert changed.sampler.top_k == story.sampler.top_k
    assert (changed.prompt, changed.seed, changed.max_new_tokens) == ("Lily", 4, 2)
    assert changed.notes == story.notes
    assert story.with_overrides() == story


def test_a_bad_override_is_one_line_naming_the_flag():
    """An out-of-range flag says which flag and what it accepts."""
    with pytest.raises(ScenarioError, match=r"^command line: --top-p 1.5 is out"):
        Scenario().with_overrides(top_p=1.5)
    with pytest.raises(TypeError):
        Scenario().with_overrides(notes=[])


def test_a_model_override_is_resolved_against_the_working_directory(
    tmp_path, monkeypatch
):
    """--model with a relative path means a path from where the command ran."""
    monkeypatch.chdir(tmp_path)
    changed = Scenario().with_overrides(model="models/m.gguf")
    assert changed.model == str(tmp_path / "models" / "m.gguf")
    assert Scenario().with_overrides(model="Stories260K").model == "stories260k"


# -- model references --------------------------------------------------------------


def test_relative_model_paths_resolve_against_the_scenario_folder(tmp_path):
    """A .gguf or a folder next to (or above) the scenario is found from there."""
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.gguf").write_bytes(b"GGUF")
    (tmp_path / "lessons" / "hf").mkdir(parents=True)
    lessons = tmp_path / "lessons"
    gguf = load_scenario(write(lessons, 'model = "../models/m.gguf"'))
    assert gguf.model == str(tmp_path / "models" / "m.gguf")
    folder = load_scenario(write(lessons, 'model = "./hf"'))
    assert folder.model == str(lessons / "hf")
    absolute = load_scenario(write(lessons, f'model = "{lessons / "hf"}"'))
    assert absolute.model == str(lessons / "hf")


def test_a_missing_model_path_or_unknown_name_is_refused_at_its_line(tmp_path):
    """The error shows where the path points, or lists the built-in names."""
    message = error_of(write(tmp_path, 'seed = 1\nmodel = "gone/m.gguf"\n'))
    expected = os.path.join(tmp_path, "gone", "m.gguf")
    assert message.startswith(f'{tmp_path / "x.toml"}:2: model = "gone/m.gguf"')
    assert f"names {expected}, which does not exist" in message
    message = error_of(write(tmp_path, 'model = "stories15m"\n'))
    assert message.startswith(f'{tmp_path / "x.toml"}:1: model = "stories15m"')
    assert "not a built-in model (stories260k)" in message


# -- mistakes: file, key and line --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            'prompt = "a"\ntop_p = 1.5\n',
            2,
            "top_p = 1.5 is out of range; use a value in (0, 1]",
        ),
        ('prompt = "a"\n\ntop_k = "40"\n', 3, 'top_k = "40" has the wrong type'),
        ("seed = true\n", 1, "seed = true has the wrong type; use a whole number"),
        ("max_new_tokens = -1\n", 1, "max_new_tokens = -1 is out of range"),
        ("temperature = -0.5\n", 1, "temperature = -0.5 is out of range"),
        ('stop = ["a", ""]\n', 1, 'stop = ["a", ""] has \'\''),
        ('sampler_order = ["top_k"]\n', 1, 'sampler_order = ["top_k"] leaves out'),
        (
            "# top_p = 3\n\ntopp = 0.5\n",
            3,
            "unknown scenario key 'topp' (did you mean 'top_p'?)",
        ),
        ('model = ""\n', 1, 'model = "" is empty'),
        ("notes = 3\n", 1, "notes = 3 has the wrong type; use an array of tables"),
        ('prompt = """\nseed = 1\n"""\nseed = -1\n', 4, "seed = -1 is out of range"),
        ("prompt = '''\n[x]\n'''  # [[notes]]\nseed = 1.5\n", 4, "seed = 1.5 has"),
    ],
)
def test_top_level_mistakes_name_file_key_and_line(tmp_path, text, line, words):
    """Each message starts with file:line and names the key and the fix."""
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}:{line}: {error_of(path).split(': ', 1)[1]}"
    assert error_of(path).startswith(f"{path}:{line}: ")
    assert words in error_of(path)


MULTI = '''\
prompt = """
top_p = 7
"""
[[breakpoints]]
at_token = 1

[[notes]]
stage = "Embed"
text = "fine"

[[breakpoints]]
on_token = "Lily"

[[notes]]
stage = "Embedding"
text = 'top_p = 9'

[[breakpoints]]
entropy_above = 2.5
top_prob_below = 0.2

[[notes]]
stage = "Predict"

[[breakpoints]]
top_prob_below = 1.5
'''


def test_mistakes_in_array_tables_point_at_the_right_occurrence(tmp_path):
    """The second [[notes]] and third [[breakpoints]] are told apart by order."""
    path = write(tmp_path, MULTI)
    assert error_of(path) == (
        f"{path}:18: breakpoint 3 has 2 conditions; give it exactly one of "
        "at_token, on_token, top_prob_below, entropy_above"
    )
    fixed = MULTI.replace("top_prob_below = 0.2", "# (one condition now)")
    assert error_of(write(tmp_path, fixed)).startswith(
        f"{path}:26: breakpoint 4: top_prob_below = 1.5 is out of range"
    )
    fixed = fixed.replace("top_prob_below = 1.5", "top_prob_below = 0.5")
    assert error_of(write(tmp_path, fixed)) == (
        f'{path}:15: note 2: stage = "Embedding" is not a stage; use one of '
        "Tokenize, Embed, Attend, Predict, Sample"
    )
    fixed = fixed.replace('"Embedding"', '"Embed"')
    assert error_of(write(tmp_path, fixed)) == (
        f"{path}:22: note 3 has no text; add text = ..."
    )
    fixed = fixed.replace('stage = "Predict"\n', 'stage = "Predict"\ntext = "x"\n')
    assert len(load_scenario(write(tmp_path, fixed)).notes) == 3


def test_mistakes_in_inline_tables_point_at_their_line(tmp_path):
    """Inline tables in a multi-line array are found on their own lines."""
    text = "breakpoints = [\n  { at_token = 1 },\n  { at_tokn = 2 },\n]\n"
    path = write(tmp_path, text)
    message = error_of(path)
    assert message.startswith(f"{path}:3: breakpoint 2: unknown key 'at_tokn'")
    assert "(did you mean 'at_token'?)" in message
    text = (
        'notes = [{ stage = "Sample", text = "a" }, { stage = "Sample", token = -1 }]'
    )
    message = error_of(write(tmp_path, text))
    assert message.startswith(f"{path}:1: note 2: token = -1 is out of range")


def test_a_toml_syntax_error_is_one_line_with_the_line_from_tomllib(tmp_path):
    """tomllib's message is kept, with its line up front and its column."""
    path = write(tmp_path, 'title = "ok"\ntop_p = = 0.5\n')
    message = error_of(path)
    assert message.startswith(f"{path}:2: not valid TOML: Invalid value")
    assert message.endswith("(column 9)")
    path = write(tmp_path, 'title = "ok"\nseed = 1\nseed = 2\n')
    assert error_of(path).startswith(f"{path}:3: not valid TOML: Cannot overwrite")


def test_missing_unreadable_and_non_utf8_files_name_the_path(tmp_path):
    """The path is named, with the built-in names offered as an alternative."""
    missing = tmp_path / "nope.toml"
    message = error_of(missing)
    assert message.startswith(f"{missing}: not found; pass a .toml scenario")
    assert "story" in message
    assert error_of(tmp_path).startswith(f"{tmp_path}: is a folder")
    binary = tmp_path / "latin1.toml"
    binary.write_bytes(b'title = "ok"\nprompt = "caf\xe9"\n')
    assert error_of(binary) == f"{binary}:2: not UTF-8 text; save the scenario as UTF-8"


# -- the notes tell the truth about the model ---------------------------------------
# Each number a shipped note quotes, checked against the engine, so a note cannot
# drift from what the model does. Notes say "about", hence the 0.01 tolerance.


@pytest.fixture(scope="module")
def model():
    """The built-in model the scenarios run."""
    return load_model("stories260k")


def run_prompt(model, name: str, steps: int, settings=None):
    """The scenario's prompt ids and, per token, its forward capture and trace."""
    scenario = load_scenario(name)
    settings = settings or SamplerSettings(temperature=0, top_k=0, top_p=1, min_p=0)
    ids = model.tokenizer.encode(scenario.prompt).ids
    transformer, rows, fed = Transformer(model), [], ids
    for _ in range(steps):
        capture = transformer.forward(fed)
        trace = sample(capture.logits, settings, np.random.default_rng(0), ids)
        rows.append((capture, trace))
        fed = [trace.token_id]
    return ids, rows


def piece_probs(model, trace, n: int = 2) -> list[tuple[str, float]]:
    """The n most likely pieces at temperature 1, with rounded probabilities."""
    return [
        (model.tokenizer.piece(c.token_id), round(c.prob, 2))
        for c in trace.top(n, "logits")
    ]


def test_story_notes(model):
    """The pieces, probabilities and the entropy stop the story notes quote."""
    ids, rows = run_prompt(model, "story", 10)
    pieces = [model.tokenizer.piece(i) for i in ids]
    assert pieces == ["<s>", "▁Once", "▁upon", "▁a", "▁time"]
    assert piece_probs(model, rows[0][1], 1) == [(",", 0.97)]
    assert [t.entropy > 2.5 for _, t in rows[:5]] == [False] * 4 + [True]
    assert piece_probs(model, rows[4][1], 3) == [
        ("▁little", 0.61),
        ("▁big", 0.07),
        ("▁b", 0.07),
    ]
    assert [model.tokenizer.piece(t.token_id) for _, t in rows[5:8]] == [
        "▁g",
        "ir",
        "l",
    ]
    assert piece_probs(model, rows[5][1]) == [("▁g", 0.64), ("▁b", 0.28)]
    assert piece_probs(model, rows[9][1], 1) == [("▁Lily", 0.93)]


def test_tokens_notes(model):
    """36 characters, 41 tokens, and the byte pieces the notes list."""
    prompt = load_scenario("tokens").prompt
    ids, rows = run_prompt(model, "tokens", 1)
    pieces = [model.tokenizer.piece(i) for i in ids]
    assert (len(prompt), len(ids)) == (36, 41)
    assert pieces[1:6] == ["▁", "Z", "o", "<0xC3>", "<0xAB>"]
    assert pieces[10 : 11 + 1] == ["1", "2"] and "é" in pieces
    assert pieces[14:16] == ["<0xC3>", "<0xAA>"]
    assert pieces[-4:] == ["<0xF0>", "<0x9F>", "<0x99>", "<0x82>"]
    assert piece_probs(model, rows[0][1], 1) == [(".", 0.37)]
    assert rows[0][1].entropy > 4


def test_temperature_notes(model):
    """▁little's share at temperatures 0.5, 1, 1.5 and 2."""
    logits = run_prompt(model, "temperature", 1)[1][0][0].logits
    shares = []
    for t in (0.5, 1.0, 1.5, 2.0):
        chosen = SamplerSettings(temperature=t, top_k=0, top_p=1, min_p=0)
        shares.append(
            round(sample(logits, chosen, np.random.default_rng(0)).final.probs[0], 2)
        )
    assert shares == [0.97, 0.61, 0.31, 0.17]


def test_top_p_notes(model):
    """Top-p 0.9 keeps 12 tokens with 0.90 of the mass; ▁little becomes 0.68."""
    scenario = load_scenario("top_p")
    _, rows = run_prompt(model, "top_p", 1, scenario.sampler)
    top_p = rows[0][1].stage("top_p")
    assert (top_p.n_survivors, round(top_p.cutoff, 2)) == (12, 0.90)
    assert round(top_p.probs[0], 2) == 0.68
    narrow = SamplerSettings(temperature=1, top_k=0, top_p=0.5, min_p=0)
    assert (
        run_prompt(model, "top_p", 1, narrow)[1][0][1].stage("top_p").n_survivors == 1
    )


def test_attention_notes(model):
    """▁She follows; two heads look back at ▁Lily; one at the l of girl."""
    ids, rows = run_prompt(model, "attention", 2)
    pieces = [model.tokenizer.piece(i) for i in ids]
    assert (len(ids), pieces[14]) == (16, "▁Lily")
    assert piece_probs(model, rows[0][1], 1) == [("▁She", 0.90)]
    attention = rows[1][0].attention  # L x [H, 1, S], the query is ▁She at 16
    assert round(attention[0][7, 0, 14], 1) == 0.3
    assert round(attention[2][6, 0, 14], 1) == 0.5
    assert pieces[int(attention[2][2, 0].argmax())] == "l"
    assert piece_probs(model, rows[1][1], 1) == [("▁lo", 0.79)]


def test_a_model_file_opened_as_a_scenario_says_what_to_do():
    from stepper.scenario import load_scenario

    model = Path(__file__).parents[1] / "stepper/models/stories260K.gguf"
    with pytest.raises(ScenarioError, match="is a model file.*stepper --model"):
        load_scenario(model)


def test_an_empty_name_asks_for_a_scenario():
    from stepper.scenario import load_scenario

    with pytest.raises(ScenarioError, match="no scenario given; type a .toml"):
        load_scenario("  ")
