"""Recordings: written as they happen, read back after a kill, replayed and checked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stepper.cli import main
from stepper.errors import RecordingError
from stepper.load import load_model
from stepper.recording import (
    FORMAT_VERSION,
    Origin,
    Recorder,
    RecordingExistsError,
)
from stepper.recording_read import read_recording
from stepper.replay import Replayer
from stepper.sampler import SamplerSettings
from stepper.scenario import builtin_scenarios, load_scenario
from stepper.scenario_session import session_from_scenario
from stepper.session import Session, Settings

ROOT = Path(__file__).resolve().parent.parent
HF_COPY = ROOT / "tests" / "fixtures" / "hf-llama-stories260k"


@pytest.fixture(scope="module")
def model():
    return load_model("stories260k")


def make(model, temperature=0.8, seed=5, n=24) -> Session:
    sampler = SamplerSettings(temperature=temperature)
    return Session(model, Settings("Once upon a time", sampler, seed, n))


def walk(session: Session) -> None:
    """Every kind of event: steps, back-steps, changes, breakpoints and runs."""
    session.step()
    session.step()
    session.step()
    session.back()
    session.next_token()
    session.next_token()
    session.set_sampler(temperature=1.3, top_k=20)
    session.next_token()
    session.force(model_token(session, "▁Lily"))
    session.set_seed(9)
    session.add_breakpoint("at_token", 9)
    session.run()
    session.back_token()
    session.back_token()
    session.remove_breakpoint("at_token", 9)
    session.step_over()
    session.run()
    session.set_prompt("The dog")
    session.next_token()


def model_token(session: Session, piece: str) -> int:
    found = session.model.tokenizer.find(piece)
    assert found is not None
    return found


def record(session: Session, path: Path, actions=walk) -> Path:
    with Recorder.open(path, session):
        actions(session)
    return path


def lines_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def rewrite(path: Path, number: int, change) -> None:
    """Edit line `number` (1-based) of a recording as a person would."""
    lines = path.read_text("utf-8").splitlines()
    data = json.loads(lines[number - 1])
    change(data)
    lines[number - 1] = json.dumps(data, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", "utf-8")


def check_error(path: Path) -> str:
    with pytest.raises(RecordingError) as caught:
        Replayer(read_recording(path)).check()
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_every_kind_of_event_replays_and_checks(model, tmp_path):
    session = make(model)
    path = record(session, tmp_path / "rec.jsonl")
    recording = read_recording(path)
    assert recording.stopped and recording.notes == ()
    assert [e.event for e in recording.events] == session.history
    replayer = Replayer(recording)
    assert replayer.check() == len(session.history)
    assert replayer.session.generated_ids == session.generated_ids
    assert replayer.session.cursor == session.cursor


def test_header_names_model_versions_and_starting_point(model, tmp_path):
    path = record(make(model, seed=5), tmp_path / "rec.jsonl")
    header = lines_of(path)[0]
    assert header["format"] == "stepper-recording"
    assert header["version"] == FORMAT_VERSION
    assert header["model"]["sha256"] == model.sha256
    assert header["model"]["ref"] == "stories260k"
    assert header["prompt"] == "Once upon a time" and header["seed"] == 5
    assert header["sampler"]["temperature"] == 0.8


def test_sampled_tokens_carry_what_a_check_needs(model, tmp_path):
    path = record(make(model), tmp_path / "rec.jsonl")
    tokens = [t for line in lines_of(path)[1:] for t in line.get("tokens", [])]
    assert tokens, "sampled tokens are recorded"
    for token in tokens:
        assert set(token) >= {"index", "id", "token", "u", "p", "top", "forced"}
        assert len(token["top"]) == 5


def test_recording_started_mid_session_holds_the_whole_history(model, tmp_path):
    session = make(model)
    for _ in range(4):
        session.next_token()
    session.back()
    path = tmp_path / "late.jsonl"
    with Recorder.open(path, session):
        session.run()
    recording = read_recording(path)
    assert [line.type for line in recording.lines[:7]] == ["event"] * 5 + [
        "state",
        "event",
    ]
    assert not recording.lines[0].checked and recording.lines[6].checked
    assert Replayer(recording).check() == 6


def test_settings_changed_before_recording_replay_from_the_start(model, tmp_path):
    session = make(model)
    start = session.settings
    session.set_sampler(temperature=0.0)
    session.add_breakpoint("at_token", 3)
    with Recorder.open(tmp_path / "b.jsonl", session):
        session.run()
    recording = read_recording(tmp_path / "b.jsonl")
    assert recording.header.origin == Origin(start, ())
    assert Replayer(recording).check() == 3


def test_interrupted_run_stops_at_the_same_place(model, tmp_path):
    session = make(model, n=40)
    calls = []
    path = tmp_path / "rec.jsonl"
    with Recorder.open(path, session):
        session.run(should_stop=lambda: len(calls.append(1) or calls) > 17)
        session.next_token()
    replayer = Replayer(read_recording(path))
    assert replayer.check() == 2
    assert replayer.session.cursor == session.cursor


def test_a_token_id_taken_from_an_array_is_recorded(model, tmp_path):
    session = make(model)
    path = tmp_path / "rec.jsonl"
    with Recorder.open(path, session):
        session.next_token()
        session.force(np.int32(model_token(session, "▁Lily")))
    assert lines_of(path)[2]["args"] == {"token_id": model_token(session, "▁Lily")}
    assert Replayer(read_recording(path)).check() == 2


def test_existing_file_is_never_overwritten_without_force(model, tmp_path):
    path = tmp_path / "rec.jsonl"
    path.write_text("precious\n")
    with pytest.raises(RecordingExistsError, match="already exists"):
        Recorder.open(path, make(model))
    assert path.read_text() == "precious\n"
    Recorder.open(path, make(model), overwrite=True).stop()
    assert lines_of(path)[0]["type"] == "header"


def test_cli_refuses_to_overwrite_in_one_line(tmp_path, capsys):
    path = tmp_path / "rec.jsonl"
    path.write_text("precious\n")
    argv = ["trace", "--max-new-tokens", "3", "--record", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err and "--force" in err
    assert path.read_text() == "precious\n"
    assert main([*argv, "--force"]) == 0
    assert main(["replay", str(path), "--check"]) == 0


def test_sigkill_leaves_every_completed_step_readable(tmp_path):
    path = tmp_path / "killed.jsonl"
    command = [sys.executable, "-m", "stepper", "trace", "--format", "jsonl",
               "--max-new-tokens", "1500", "--temperature", "0.9",
               "--record", str(path)]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _lines(path) < 40:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert child.returncode == -signal.SIGKILL
    written = _lines(path)
    assert written >= 40, "the child wrote lines before it was killed"
    recording = read_recording(path)
    assert not recording.stopped
    assert any("not stopped cleanly" in note for note in recording.notes)
    assert len(recording.events) >= written - 1
    assert Replayer(recording).check() == len(recording.events)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_a_torn_last_line_is_ignored_with_a_note(model, tmp_path):
    path = record(make(model), tmp_path / "rec.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    last_event = lines[-2]
    path.write_bytes(b"".join(lines[:-2]) + last_event[: len(last_event) // 2])
    recording = read_recording(path)
    assert any(f"{path}:{len(lines) - 1}: the last line was cut off" in note
               for note in recording.notes)  # fmt: skip
    assert len(recording.events) == len(lines) - 3
    assert Replayer(recording).check() == len(recording.events)


def test_a_hand_edited_token_fails_the_check_naming_the_line(model, tmp_path):
    session = make(model, temperature=0.0)
    path = record(session, tmp_path / "rec.jsonl", lambda s: s.run())
    line = 2  # the run: every token it sampled
    original = lines_of(path)[line - 1]["tokens"][3]
    lily = model_token(session, "▁Lily")

    def change(data):
        data["tokens"][3].update(id=lily, token="▁Lily")

    rewrite(path, line, change)
    message = check_error(path)
    assert message.startswith(f"{path}:{line}: token 3 differs")
    assert f'recorded id {lily} ("▁Lily")' in message
    assert f'today {original["id"]} ("{original["token"]}")' in message


def test_cli_check_exits_1_and_names_the_step(model, tmp_path, capsys):
    path = record(make(model), tmp_path / "rec.jsonl")

    def change(data):
        data["tokens"][0]["u"] = 0.5

    line = next(n for n, d in enumerate(lines_of(path), 1) if d.get("tokens"))
    rewrite(path, line, change)
    assert main(["replay", str(path), "--check"]) == 1
    err = capsys.readouterr().err
    assert f"{path}:{line}: token" in err and "the draw differs" in err


def test_a_different_model_file_is_refused(model, tmp_path):
    path = record(make(model), tmp_path / "rec.jsonl")

    def other_model(data):
        data["model"]["ref"] = str(HF_COPY)

    rewrite(path, 1, other_model)
    with pytest.raises(RecordingError, match="is a different file"):
        Replayer(read_recording(path))
    assert main(["replay", str(path), "--check"]) == 2
    assert main(["replay", str(path), "--check", "--model", "stories260k"]) == 0


def test_a_newer_format_says_so(model, tmp_path):
    path = record(make(model), tmp_path / "rec.jsonl")
    rewrite(path, 1, lambda data: data.update(version=FORMAT_VERSION + 1))
    with pytest.raises(RecordingError, match="upgrade stepper"):
        read_recording(path)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no complete line"),
        ('{"type": "trace"}\n', "not a stepper recording"),
        ("not json\n", "not a line of JSON"),
    ],
)
def test_files_that_are_not_recordings(tmp_path, text, problem):
    path = tmp_path / "x.jsonl"
    path.write_text(text)
    with pytest.raises(RecordingError, match=problem):
        read_recording(path)


def test_a_missing_line_is_named(model, tmp_path):
    path = record(make(model), tmp_path / "rec.jsonl")
    lines = path.read_text("utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:3] + lines[4:]), "utf-8")
    with pytest.raises(RecordingError, match=f"{path}:4: numbered 4 where 3"):
        read_recording(path)


@pytest.mark.parametrize("name", sorted(builtin_scenarios()))
def test_every_shipped_scenario_replays_and_checks(name, tmp_path):
    session = session_from_scenario(load_scenario(name))
    path = tmp_path / f"{name}.jsonl"

    def tour(s: Session) -> None:
        for _ in range(7):
            s.step()
        s.next_token()
        while not s.done and s.run() == "breakpoint":
            s.step()
        s.back_token()
        s.run()

    record(session, path, tour)
    recording = read_recording(path)
    assert recording.header.scenario is not None
    assert recording.header.scenario["notes"], "the scenario's narration is kept"
    assert Replayer(recording).check() == len(session.history)
