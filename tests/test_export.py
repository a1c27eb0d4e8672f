"""Exports: the cast follows asciinema v2, walkthroughs read well and never vary."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from stepper.cli import main
from stepper.errors import RecordingError
from stepper.export import export, walkthrough
from stepper.export_term import HEIGHT
from stepper.recording import Recorder
from stepper.replay import Replayer
from stepper.scenario import load_scenario
from stepper.scenario_session import session_from_scenario
from stepper.session import Session, Stage


def tour(session: Session) -> None:
    """Every stage of token 0 layer by layer, a step over, a run, a change."""
    while session.cursor.stage != Stage.SAMPLE:
        session.step()
    session.step()
    session.step_over()
    session.run()
    session.back_token()
    session.set_sampler(temperature=1.0)
    session.run(to_breakpoint=False)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> Path:
    """A recording of the default story scenario, made once for these tests."""
    path = tmp_path_factory.mktemp("rec") / "story.jsonl"
    session = session_from_scenario(load_scenario("story"))
    with Recorder.open(path, session):
        tour(session)
    return path


def exported(recording: Path, to: str, out: Path, *extra: str) -> str:
    assert main(["export", str(recording), "--to", to, "-o", str(out), *extra]) == 0
    return out.read_text("utf-8")


def test_cast_is_asciinema_v2_with_a_marker_per_stage(recorded, tmp_path):
    lines = exported(recorded, "cast", tmp_path / "a.cast").splitlines()
    header = json.loads(lines[0])
    assert header["version"] == 2
    assert header["width"] == 100 and header["height"] == HEIGHT
    assert isinstance(header["timestamp"], int) and header["title"] == (
        "Once upon a time"
    )
    events = [json.loads(line) for line in lines[1:]]
    times = [e[0] for e in events]
    for event in events:
        assert isinstance(event, list) and len(event) == 3
        assert isinstance(event[0], int | float) and event[1] in ("o", "m")
        assert isinstance(event[2], str)
    assert times == sorted(times) and times[0] == 0
    for event in events:
        if event[1] == "o" and event[2] != "\r\n":
            assert event[2].count("\r\n") < HEIGHT, "a frame fits the terminal"
    markers = [e[2] for e in events if e[1] == "m"]
    assert markers[:3] == ["token 0, Tokenize", "token 0, Embed",
                           "token 0, Attend layer 0"]  # fmt: skip
    replayer = Replayer.open(str(recorded))
    replayer.check()
    last = replayer.session.cursor.token
    for token in range(1, last + 1):
        for stage in ("Embed", "Attend", "Predict", "Sample"):
            assert any(m.startswith(f"token {token}, {stage}") for m in markers)


def test_markdown_is_a_readable_walkthrough(recorded, tmp_path):
    text = exported(recorded, "md", tmp_path / "a.md")
    scenario = load_scenario("story")
    assert text.startswith("# Once upon a time\n")
    for note in scenario.notes:
        if note.token == 0:
            assert _md_plain(note.text[:40]) in text, "the narration is there"
    assert "## 0. Start → token 0, Tokenize" in text
    assert "## 1. Step → token 0, Embed" in text
    assert "**Top candidates at temperature 1**" in text
    assert "**Sampler chain, in order**" in text
    assert "Greedy (temperature 0): `,` (id" in text
    assert "| `<s>` |" in text, "tokens are code, so <s> stays visible"
    assert "<s>" not in text.replace("`<s>`", "").replace("'<s>'", "")


def _md_plain(text: str) -> str:
    return text.replace("<", "\\<").replace(">", "\\>").replace("\n", "⏎ ")


def test_html_is_self_contained_and_escaped(recorded, tmp_path):
    text = exported(recorded, "html", tmp_path / "a.html")
    assert text.startswith("<!DOCTYPE html>")
    assert "<script" not in text and "http" not in text.replace("https://", "")
    assert "&lt;s&gt;" in text and "<s>" not in text
    assert 'class="note"' in text and "Five layers of eight heads" in text
    assert '<tr class="chosen">' in text
    assert unclosed_tags(text) == []


class _Tags(HTMLParser):
    """Tracks open elements to find tags left unclosed or closed out of order."""

    VOID = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.bad: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open.pop() != tag:
            self.bad.append(tag)


def unclosed_tags(text: str) -> list[str]:
    parser = _Tags()
    parser.feed(text)
    return parser.open + parser.bad


@pytest.mark.parametrize("to", ["md", "html", "cast"])
def test_exports_are_byte_identical(recorded, tmp_path, to):
    copy = tmp_path / "elsewhere" / "copy.jsonl"
    copy.parent.mkdir()
    shutil.copy(recorded, copy)
    first = exported(recorded, to, tmp_path / f"1.{to}")
    second = exported(copy, to, tmp_path / f"2.{to}")
    assert first == second


def test_svg_screenshots_of_chosen_steps(recorded, tmp_path):
    out = tmp_path / "shot.svg"
    assert main(["export", str(recorded), "--to", "svg", "-o", str(out),
                 "--steps", "1,8"]) == 0  # fmt: skip
    files = sorted(tmp_path.glob("shot-*.svg"))
    assert [f.name for f in files] == ["shot-001.svg", "shot-008.svg"]
    for f in files:
        ET.parse(f)  # well-formed XML
    again = tmp_path / "again.svg"
    assert main(["export", str(recorded), "--to", "svg", "-o", str(again),
                 "--steps", "8"]) == 0  # fmt: skip
    assert again.read_bytes() == files[1].read_bytes()


def test_svg_refuses_a_step_that_is_not_there(recorded, tmp_path, capsys):
    argv = ["export", str(recorded), "--to", "svg", "-o", str(tmp_path / "s.svg")]
    assert main([*argv, "--steps", "999"]) == 2
    assert "--steps 999" in capsys.readouterr().err


def test_export_never_overwrites_without_force(recorded, tmp_path, capsys):
    out = tmp_path / "a.md"
    out.write_text("mine")
    argv = ["export", str(recorded), "--to", "md", "-o", str(out)]
    assert main(argv) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == "mine"
    assert main([*argv, "--force"]) == 0 and out.read_text() != "mine"


def test_export_refuses_a_recording_today_disagrees_with(recorded, tmp_path):
    lines = recorded.read_text("utf-8").splitlines()
    data = [json.loads(line) for line in lines]
    n = next(k for k, d in enumerate(data) if d.get("tokens"))
    data[n]["tokens"][0]["id"] += 1
    edited = tmp_path / "edited.jsonl"
    edited.write_text("\n".join(json.dumps(d) for d in data) + "\n", "utf-8")
    with pytest.raises(RecordingError, match="export would not show"):
        export(Replayer.open(str(edited)), "md", tmp_path / "x.md")


def test_a_run_lists_the_tokens_it_sampled(recorded):
    walk = walkthrough(Replayer.open(str(recorded)))
    runs = [s for s in walk.sections if s.action.startswith("Run")]
    assert runs and runs[-1].generated is not None
    assert len(runs[-1].generated.rows) > 1


def test_repeated_narration_is_shown_once(recorded):
    walk = walkthrough(Replayer.open(str(recorded)))
    layers = [s for s in walk.sections if s.view.cursor.stage == Stage.ATTEND]
    assert layers[0].new_notes and layers[0].view.notes
    assert not any(s.new_notes for s in layers[1:5])


def test_svg_names_no_remote_font(recorded, tmp_path):
    svg = exported(recorded, "svg", tmp_path / "a.svg", "--steps", "2")
    assert 'url("http' not in svg and "local(" in svg
