"""`stepper trace`, `inspect` and `tokenize` as a script or a person runs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from stepper.cli import main

TOKEN_KEYS = {"type", "index", "id", "token", "text", "top", "p", "u"}
TOP_KEYS = {"id", "token", "logit", "prob"}


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def jsonl(capsys, *argv: str) -> list[dict]:
    status, out, err = run(capsys, "trace", "--format", "jsonl", *argv)
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def test_jsonl_follows_the_documented_schema(capsys):
    lines = jsonl(capsys, "--prompt", "Once upon a time", "--max-new-tokens", "5")
    first, tokens, last = lines[0], lines[1:-1], lines[-1]
    assert set(first) == {"type", "model", "prompt", "ids", "tokens"}
    assert first["type"] == "prompt" and first["ids"][0] == 1, "BOS is in ids"
    assert len(first["ids"]) == len(first["tokens"])
    assert [t["index"] for t in tokens] == list(range(5))
    for t in tokens:
        assert set(t) == TOKEN_KEYS and t["type"] == "token"
        assert len(t["top"]) == 5 and all(set(c) == TOP_KEYS for c in t["top"])
        logits = [c["logit"] for c in t["top"]]
        assert logits == sorted(logits, reverse=True)
        assert 0 < t["p"] <= 1 and (t["u"] is None or 0 <= t["u"] < 1)
    assert last == {
        "type": "end",
        "reason": "max_new_tokens",
        "text": "".join(t["text"] for t in tokens),
    }


def test_greedy_has_no_draw_and_top_is_the_pick(capsys):
    lines = jsonl(capsys, "--prompt", "Once", "--temperature", "0", "--top", "3")
    for t in lines[1:-1]:
        assert t["u"] is None and t["id"] == t["top"][0]["id"]


def test_empty_prompt_starts_from_bos(capsys):
    lines = jsonl(capsys, "--prompt", "", "--max-new-tokens", "3")
    assert lines[0]["ids"] == [1] and lines[0]["tokens"] == ["<s>"]


def test_two_runs_with_one_seed_are_byte_identical():
    argv = [sys.executable, "-m", "stepper", "trace", "--format", "jsonl"]
    argv += ["--prompt", "The dog", "--seed", "5", "--max-new-tokens", "20"]
    a = subprocess.run(argv, capture_output=True, check=True).stdout
    b = subprocess.run(argv, capture_output=True, check=True).stdout
    assert a == b and len(a.splitlines()) == 22


def test_text_trace_shows_every_stage(capsys):
    status, out, _ = run(capsys, "trace", "--prompt", "Once", "--max-new-tokens", "2")
    assert status == 0
    for stage in ("Tokenize", "Embed", "Attend", "Predict", "Sample", "chain"):
        assert stage in out
    assert "end: max_new_tokens" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["trace", "--model", "nope.gguf"], "nope.gguf: no such file"),
        (["trace", "--model", "weights.bin"], "pickled checkpoints"),
        (["trace", "--prompt", "x", "--top-p", "1.5"], "--top-p 1.5"),
        (["trace", "--prompt", "x", "--temperature", "-1"], "--temperature -1"),
        (["trace", "missing.toml"], "missing.toml"),
        (["inspect", "/nonexistent/model.gguf"], "no such file"),
    ],
)
def test_mistakes_are_one_line_errors(capsys, argv, message):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_inspect_and_tokenize(capsys):
    status, out, _ = run(capsys, "inspect", "stories260k")
    assert status == 0 and "llama" in out and "512" in out and "F32" in out
    status, out, _ = run(capsys, "tokenize", "--model", "stories260k", "Once upon")
    assert status == 0 and "▁Once" in out and "merges" in out and "403" in out


def shipped_scenarios() -> list[str]:
    from stepper.scenario import builtin_scenarios

    return sorted(builtin_scenarios())


def test_at_least_five_scenarios_ship():
    assert len(shipped_scenarios()) >= 5


@pytest.mark.parametrize("name", shipped_scenarios())
def test_each_shipped_scenario_runs_headless(capsys, name):
    lines = jsonl(capsys, name)
    assert lines[0]["type"] == "prompt" and lines[-1]["type"] == "end"
    assert len(lines) > 2, "the scenario generates at least one token"
    status, out, _ = run(capsys, "trace", name)
    assert status == 0 and "end:" in out


def test_control_characters_are_not_sent_to_the_terminal(capsys):
    status, out, _ = run(
        capsys, "trace", "--prompt", "Hi\x1b[31mRED", "--max-new-tokens", "1"
    )
    assert status == 0 and "\x1b[31m" not in out and "\\x1b[31m" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["trace", "--top", "-3"],
        ["trace", "--max-new-tokens", "0"],
        ["tokenize", "--merges", "-1", "x"],
        ["trace", "--seed", "-1"],
    ],
)
def test_absurd_flags_are_one_line_errors(capsys, argv):
    try:
        status = main(argv)
    except SystemExit as stop:  # argparse's own checks exit from inside main
        status = stop.code
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1, err
