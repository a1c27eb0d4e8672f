"""Recording from the app, and replaying a recording in it (issue 5).

Recording: the `w` key asks for a file, starts, shows the indicator, stops and
says where the file went; an existing file is replaced only after a yes. Replay:
play, pause, step, speed, restart, narration, and the warning when today's engine
differs. Last, the app killed with SIGKILL mid-session under a pseudo-terminal.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_app import answer, keys, main, settle, status, story_app
from textual.pilot import Pilot
from textual.widgets import Input, Static

from stepper.load import load_model
from stepper.recording import Recorder
from stepper.recording_read import read_recording
from stepper.replay import Replayer
from stepper.scenario import load_scenario
from stepper.scenario_session import session_from_scenario
from stepper.session import Session, Stage
from widgets.app import ReplayApp, StepperApp
from widgets.panes.timeline import TimelinePane
from widgets.screens.confirm import ConfirmScreen
from widgets.screens.replay import ReplayScreen

WIDE = (160, 50)
ROOT = Path(__file__).resolve().parent.parent


def indicator(pilot: Pilot) -> str:
    """The Timeline's first line as drawn: position, events and recording state."""
    return main(pilot).query_one(TimelinePane).render_line(0).text


def notices(app: StepperApp) -> list[str]:
    """Collect the app's notifications (they are shown as toasts otherwise)."""
    said: list[str] = []

    def notify(message: str, **_: object) -> None:
        said.append(message)

    app.notify = notify  # type: ignore[method-assign]
    return said


async def record_into(pilot: Pilot, path: Path) -> None:
    """w, then answer the file name."""
    await keys(pilot, "w")
    await answer(pilot, str(path))


# -- recording ---------------------------------------------------------------------


async def test_record_key_starts_and_stops_a_readable_recording(tmp_path):
    """w asks for a file; the indicator counts events; w again stops and says where."""
    path = tmp_path / "walk.jsonl"
    app = story_app()
    said = notices(app)
    async with app.run_test(size=WIDE) as pilot:
        await keys(pilot, "n")
        assert "○ not recording" in indicator(pilot)
        await record_into(pilot, path)
        assert f"● recording {path} (1 event)" in indicator(pilot)
        await keys(pilot, "n", "s")
        assert f"● recording {path} (3 events)" in indicator(pilot)
        snapshot = await keys(pilot, "w")
        assert "○ not recording" in indicator(pilot)
        assert said == [f"recording stopped: 3 events written to {path}"]
        history = main(pilot).engine.session.history  # type: ignore[union-attr]
    recording = read_recording(path)
    assert recording.stopped and recording.notes == ()
    assert [line.event for line in recording.events] == history
    replayer = Replayer(recording)
    assert replayer.check() == 3
    assert replayer.session.cursor == snapshot.cursor


async def test_the_file_name_defaults_to_the_scenario_in_this_folder(
    tmp_path, monkeypatch
):
    """The dialog offers stepper-story.jsonl in the current folder."""
    monkeypatch.chdir(tmp_path)
    async with story_app().run_test(size=WIDE) as pilot:
        await keys(pilot, "w")
        assert pilot.app.screen.query_one(Input).value == "stepper-story.jsonl"
        await pilot.press("enter")
        await settle(pilot)
        assert "● recording stepper-story.jsonl (0 events)" in indicator(pilot)
    assert read_recording(tmp_path / "stepper-story.jsonl").stopped  # closed on quit


@pytest.mark.parametrize("yes", [False, True])
async def test_an_existing_file_is_replaced_only_after_a_yes(tmp_path, yes):
    """Overwrite FILE? n (or Esc) keeps the file untouched; y records over it."""
    path = tmp_path / "precious.jsonl"
    path.write_text("precious\n")
    app = story_app()
    said = notices(app)
    async with app.run_test(size=WIDE) as pilot:
        await record_into(pilot, path)
        question = pilot.app.screen
        assert isinstance(question, ConfirmScreen)
        assert question.question == f"Overwrite {path}?"
        await pilot.press("y" if yes else "n")
        await keys(pilot, "n")
        recording = "● recording" in indicator(pilot)
    assert recording is yes
    if yes:
        assert len(read_recording(path).events) == 1
    else:
        assert path.read_text() == "precious\n"
        assert said == [f"{path} kept as it was; not recording"]


async def test_an_unwritable_folder_is_one_line_and_the_session_goes_on(tmp_path):
    """A file in a missing folder: an error line; the next key still steps."""
    async with story_app().run_test(size=WIDE) as pilot:
        await record_into(pilot, tmp_path / "missing" / "walk.jsonl")
        assert "cannot be created" in status(pilot).error
        assert "○ not recording" in indicator(pilot)
        assert (await keys(pilot, "n")).stage == Stage.SAMPLE


async def test_opening_another_scenario_stops_the_recording(tmp_path):
    """ctrl+o switches session: the recording stops, with a notice saying where."""
    path = tmp_path / "walk.jsonl"
    app = story_app()
    said = notices(app)
    async with app.run_test(size=WIDE) as pilot:
        await record_into(pilot, path)
        await keys(pilot, "n", "ctrl+o")
        await answer(pilot, "temperature")
        assert "○ not recording" in indicator(pilot)
        assert said == [
            f"recording stopped: 1 event written to {path} (another session was opened)"
        ]
    assert read_recording(path).stopped


async def test_a_recorder_from_the_command_line_shows_and_stops_on_quit(tmp_path):
    """run_app(session, recorder=...): the indicator from the start; quit stops it."""
    path = tmp_path / "cli.jsonl"
    session = session_from_scenario(load_scenario("story"))
    recorder = Recorder.open(path, session)
    async with StepperApp(session, recorder=recorder).run_test(size=WIDE) as pilot:
        await keys(pilot, "n", "n")
        assert f"● recording {path} (2 events)" in indicator(pilot)
        titles = {c.title for c in pilot.app.get_system_commands(pilot.app.screen)}
        assert "Start/stop recording" in titles
    assert not recorder.active
    assert read_recording(path).stopped


# -- replay ------------------------------------------------------------------------


def walk(session: Session) -> None:
    """Eight events: into Attend layer by layer, over, then two tokens."""
    for _ in range(4):
        session.step()
    session.step_over()
    session.step()
    session.next_token()
    session.next_token()


@pytest.fixture(scope="module")
def story_walk(tmp_path_factory) -> Path:
    """A recording of `walk` on the story scenario."""
    path = tmp_path_factory.mktemp("replay") / "story.jsonl"
    session = session_from_scenario(load_scenario("story"))
    with Recorder.open(path, session):
        walk(session)
    return path


def replay_app(path: Path) -> ReplayApp:
    """The replay of a recording, on the built-in model it names."""
    recording = read_recording(path)
    return ReplayApp(Replayer(recording, load_model("stories260k")))


def replay(pilot: Pilot) -> ReplayScreen:
    """The replay screen."""
    screen = main(pilot)
    assert isinstance(screen, ReplayScreen)
    return screen


async def wait_for(pilot: Pilot, done: Callable[[], bool], seconds: float = 20) -> None:
    """Let the app run until `done()` holds (or fail after `seconds`)."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)
    await settle(pilot)


async def test_replay_opens_at_the_start_with_the_scenario_note(story_walk):
    """Event 0 of 8, paused, at Tokenize with the story's note in the timeline."""
    async with replay_app(story_walk).run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot)
        assert snapshot.stage == Stage.TOKENIZE
        assert "five tokens" in snapshot.note
        line = status(pilot).status
        assert line.endswith("event 0 of 8 · paused at 1× · matches")


async def test_step_forward_and_back_one_event(story_walk):
    """→ performs the next event; ← goes back to where the one before left it."""
    events = read_recording(story_walk).events
    async with replay_app(story_walk).run_test(size=WIDE) as pilot:
        snapshot = await keys(pilot, "right", "right", "right")
        assert snapshot.cursor == events[2].cursor
        assert replay(pilot).progress.position == 3
        assert "event 3 of 8 (step)" in status(pilot).status
        snapshot = await keys(pilot, "left")
        assert snapshot.cursor == events[1].cursor
        assert replay(pilot).progress.position == 2
        snapshot = await keys(pilot, "home")
        assert replay(pilot).progress.position == 0
        assert snapshot.stage == Stage.TOKENIZE


async def test_play_advances_and_pause_stops(story_walk):
    """Space plays on a timer (here 2 a second); Space again pauses it."""
    async with replay_app(story_walk).run_test(size=WIDE) as pilot:
        await keys(pilot, "+", "space")
        screen = replay(pilot)
        assert "playing 2×" in status(pilot).status
        await wait_for(pilot, lambda: screen.progress.position >= 2)
        await keys(pilot, "space")
        paused = screen.progress.position
        await asyncio.sleep(1)
        await settle(pilot)
        assert screen.progress.position == paused < 8
        assert "paused at 2×" in status(pilot).status


async def test_play_stops_at_the_end(story_walk):
    """Played through, the replay ends with the recorded session's state."""
    events = read_recording(story_walk).events
    async with replay_app(story_walk).run_test(size=WIDE) as pilot:
        await keys(pilot, "+", "+", "+", "space")
        screen = replay(pilot)
        await wait_for(pilot, lambda: screen.progress.ended and not screen.playing)
        assert screen.snapshot is not None
        assert screen.snapshot.cursor == events[-1].cursor
        assert "event 8 of 8 (next_token) · ended" in status(pilot).status


async def test_speed_keys_change_the_speed_within_bounds(story_walk):
    """+ doubles up to 8×, − halves down to 0.25×; the status line says so."""
    async with replay_app(story_walk).run_test(size=WIDE) as pilot:
        await keys(pilot, "+")
        assert replay(pilot).speed == 2
        await keys(pilot, *"-----")
        assert replay(pilot).speed == 0.25
        assert "paused at 0.25×" in status(pilot).status
        await keys(pilot, *"++++++++")
        assert replay(pilot).speed == 8


async def test_replay_keys_are_in_the_footer_help_and_palette(story_walk):
    """Footer and help list the replay's keys; the debugger's editing keys are gone."""
    async with replay_app(story_walk).run_test(size=WIDE) as pilot:
        await keys(pilot)
        shown = {b.binding.description for b in pilot.app.active_bindings.values()}
        assert {"Play/pause", "Back", "Forward", "Faster", "Restart"} <= shown
        assert "Step" not in shown and "Force…" not in shown
        titles = {c.title for c in pilot.app.get_system_commands(pilot.app.screen)}
        assert "Play/pause" in titles and "Step" not in titles
        await keys(pilot, "s")  # the debugger's step: nothing happens
        assert replay(pilot).progress.position == 0


def edit_token(path: Path, target: Path, event: int) -> None:
    """Copy a recording, changing the first token sampled by `event` by hand."""
    lines = path.read_text("utf-8").splitlines()
    data = json.loads(lines[event])  # line 1 is the header: event n is line n + 1
    data["tokens"][0]["id"] += 1
    lines[event] = json.dumps(data, ensure_ascii=False)
    target.write_text("\n".join(lines) + "\n", "utf-8")


async def test_a_hand_edited_recording_shows_where_today_differs(story_walk, tmp_path):
    """The edited event pauses play, warns, and the status names the event."""
    edited = tmp_path / "edited.jsonl"
    edit_token(story_walk, edited, 7)
    async with replay_app(edited).run_test(size=WIDE) as pilot:
        await keys(pilot, "+", "+", "+", "space")
        screen = replay(pilot)
        await wait_for(pilot, lambda: screen.progress.difference is not None)
        assert not screen.playing and screen.progress.position == 7
        warning = screen.query_one("#difference", Static)
        assert warning.display
        text = str(warning.render())
        assert text.startswith("⚠ Today's engine differs from the recording at event 7")
        assert f"{edited}:8: token 1 differs" in text
        assert "differs from event 7" in status(pilot).status
        await keys(pilot, "left")
        assert not warning.display and status(pilot).status.endswith("matches")


def test_replay_mid_way_with_a_note(snap_compare, story_walk):
    """The replay screen after three events: Attend layer 1 with its note."""
    # → → →: step, step, step (Embed, Attend layer 0, Attend layer 1)

    async def run_before(pilot: Pilot) -> None:
        await keys(pilot, "right", "right", "right")

    app = replay_app(story_walk)  # the file's path is not drawn
    assert snap_compare(app, terminal_size=WIDE, run_before=run_before)


# -- killed mid-session ------------------------------------------------------------


class Terminal:
    """A child process on a pseudo-terminal, its output drained in a thread."""

    def __init__(self, command: list[str], cwd: Path, size=(50, 160)) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
        env = dict(os.environ, TERM="xterm-256color", COLORTERM="truecolor")
        self.child = subprocess.Popen(
            command, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env,
            start_new_session=True,
        )  # fmt: skip
        os.close(slave)
        self.master, self.output = master, bytearray()
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            ready, _, _ = select.select([self.master], [], [], 0.1)
            try:
                chunk = os.read(self.master, 65536) if ready else b""
            except OSError:
                return
            if ready and not chunk:
                return
            self.output += chunk

    def wait_for(self, done: Callable[[], bool], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while not done():
            assert self.child.poll() is None, bytes(self.output[-2000:])
            assert time.monotonic() < deadline, bytes(self.output[-2000:])
            time.sleep(0.02)

    def press(self, key: bytes) -> None:
        os.write(self.master, key)

    def kill(self) -> int:
        os.kill(self.child.pid, signal.SIGKILL)
        code = self.child.wait()
        os.close(self.master)
        self.reader.join(5)
        return code


def events_in(path: Path) -> int:
    """Complete event lines in a recording being written."""
    if not path.exists():
        return 0
    return sum(b'"type": "event"' in line for line in path.read_bytes().splitlines())


async def test_the_app_killed_mid_session_replays_every_step(tmp_path):
    """stepper --record FILE on a terminal, five keys, SIGKILL: all five replay."""
    path = tmp_path / "killed.jsonl"
    command = [sys.executable, "-m", "stepper", "--record", str(path)]
    terminal = Terminal(command, tmp_path)
    try:
        terminal.wait_for(lambda: b"Timeline" in terminal.output)
        for n, key in enumerate([b"n", b"n", b"s", b"n", b"b"], 1):
            terminal.press(key)
            terminal.wait_for(lambda n=n: events_in(path) == n)
    finally:
        code = terminal.kill()
    assert code == -signal.SIGKILL
    recording = read_recording(path)
    assert not recording.stopped
    kinds = [line.event.kind for line in recording.events if line.event]
    assert kinds == ["next_token", "next_token", "step", "next_token", "back"]
    assert Replayer(recording).check() == 5
    app = replay_app(path)
    said = notices(app)
    async with app.run_test(size=WIDE) as pilot:
        await keys(pilot, *["right"] * 6)
        assert replay(pilot).progress.position == 5
        assert main(pilot).snapshot.cursor == recording.events[-1].cursor
    assert said == [f"{path}: recording was not stopped cleanly (the program ended "
                    "during it); it holds 5 events"]  # fmt: skip
