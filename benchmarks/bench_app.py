"""App benchmark: a key press to the frame that shows its result, headless at 160x50.

    python benchmarks/bench_app.py [--tokens 30]

For the built-in stories260k and for a GPT-2-124M-shaped model with random
weights (GPT-2's real tokenizer), one run prints:

1. engine step: the median time of `Session.next_token()` alone, no app;
2. key `n` to the first frame showing the next token: median, p95, the median's
   overhead over the engine step (target: at most 20 ms) and p95 / median
   (target: at most 2);
3. keys `]` (next layer) and `.` (next head), which compute nothing: key to the
   next frame, median (target: at most 20 ms).

Headless frames are composed in full and only not written to a terminal; a frame's
time is when Textual hands it to the (absent) terminal. That hand-over is the
private `App._display`, wrapped here because Textual has no public per-frame hook.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from dataclasses import dataclass, field

import numpy as np
from bench_engine import build_model, gpt2_tokenizer  # the same model, one place
from textual.pilot import Pilot

from stepper.load import load_model
from stepper.model import Model
from stepper.sampler import SamplerSettings
from stepper.session import Session, Settings
from widgets.app import StepperApp
from widgets.panes.attention import AttentionPane
from widgets.screens.main import MainScreen

SIZE = (160, 50)
PROMPT = "Once upon a time"
Times = list[float]  # seconds, one per measured key press
BUDGET = 0.020  # seconds the app may add to an engine step, or spend on a view key


def gpt2_shaped() -> Model:
    """GPT-2 124M's shapes with N(0, 0.02) weights and the real tokenizer."""
    return build_model(gpt2_tokenizer(), seed=0)


def session_of(model: Model, tokens: int) -> Session:
    """A sampled session on the benchmark prompt, long enough for `tokens` steps."""
    settings = Settings(PROMPT, SamplerSettings(), seed=0, max_new_tokens=tokens + 4)
    return Session(model, settings)


def engine_steps(model: Model, tokens: int) -> list[float]:
    """Seconds per `next_token()` on a session of its own, first two left out."""
    session = session_of(model, tokens)
    times = []
    for _ in range(tokens + 2):
        start = time.perf_counter()
        session.next_token()
        times.append(time.perf_counter() - start)
    return times[2:]


@dataclass
class Frames:
    """Each frame's time, with the snapshot and attention redraw it was drawn from."""

    screen: MainScreen
    frames: list[tuple[float, int, int]] = field(default_factory=list)
    redraws: int = 0
    engine: list[float] = field(default_factory=list)  # seconds per engine action

    def watch(self, app: StepperApp, pane: AttentionPane) -> None:
        """Timestamp every frame of `app`, noting what it shows; count redraws."""
        display, redraw = app._display, pane.redraw
        engine = self.screen.engine
        perform = engine.perform

        def timed_perform(action):  # type: ignore[no-untyped-def]
            start = time.perf_counter()
            perform(action)
            self.engine.append(time.perf_counter() - start)

        def timed_display(screen, renderable):  # type: ignore[no-untyped-def]
            display(screen, renderable)
            if renderable is not None:
                snapshot = self.screen.snapshot
                serial = 0 if snapshot is None else snapshot.serial
                self.frames.append((time.perf_counter(), serial, self.redraws))

        def counted_redraw() -> None:
            redraw()
            self.redraws += 1

        app._display = timed_display  # type: ignore[method-assign]
        pane.redraw = counted_redraw  # type: ignore[method-assign]
        engine.perform = timed_perform  # type: ignore[method-assign]

    async def showing(self, serial: int = 0, redraws: int = 0) -> float:
        """The time of the first frame drawn from that snapshot and redraw count."""
        while True:
            for moment, shown, drawn in self.frames:
                if shown >= serial and drawn >= redraws:
                    return moment
            await asyncio.sleep(0.0005)


async def next_token(pilot: Pilot, frames: Frames) -> tuple[float, float]:
    """Seconds from pressing `n` to the frame that shows the new token, and the
    seconds the engine thread spent on that step (snapshot included)."""
    target = frames.screen.engine.serial + 1
    start = time.perf_counter()
    await pilot.press("n")
    shown = await frames.showing(serial=target) - start
    return shown, frames.engine[-1]


async def view_key(pilot: Pilot, key: str, frames: Frames) -> float:
    """Seconds from pressing a view key to the frame after the pane redrew."""
    target = frames.redraws + 1
    start = time.perf_counter()
    await pilot.press(key)
    return await frames.showing(redraws=target) - start


@dataclass
class Figures:
    """What one model's run measured, in seconds."""

    engine_alone: list[float]  # next_token() with no app
    engine_in_app: list[float]  # the same step on the app's engine thread
    key_to_frame: list[float]  # key n to the frame showing the next token
    view_keys: list[float]  # ] and . to the frame showing the new layer or head


async def app_times(model: Model, tokens: int) -> tuple[Times, Times, Times]:
    """Key-to-frame and engine seconds per next token, and per layer/head key."""
    app = StepperApp(session_of(model, tokens))
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        assert isinstance(screen, MainScreen)
        frames = Frames(screen)
        frames.watch(app, screen.query_one(AttentionPane))
        await pilot.pause(0.5)
        steps = [await next_token(pilot, frames) for _ in range(tokens + 2)][2:]
        await pilot.pause(0.2)
        views = []
        for _ in range(tokens):
            for key in ("]", "."):
                views.append(await view_key(pilot, key, frames))
                await pilot.pause(0.01)
    return [s for s, _ in steps], [e for _, e in steps], views


def p95(values: list[float]) -> float:
    """The 95th percentile."""
    return float(np.percentile(values, 95))


def report(name: str, figures: Figures) -> None:
    """Print one model's figures and their ratios to the targets."""
    ms, f = 1000.0, figures
    alone = statistics.median(f.engine_alone)
    in_app = statistics.median(f.engine_in_app)
    shown = statistics.median(f.key_to_frame)
    overhead = statistics.median(
        s - e for s, e in zip(f.key_to_frame, f.engine_in_app, strict=True)
    )
    tail = p95(f.key_to_frame)
    view = statistics.median(f.view_keys)
    print(f"\n{name}: {len(f.key_to_frame)} tokens, {len(f.view_keys)} view keys")
    print(f"  engine step alone (no app)        median {alone * ms:7.1f} ms")
    print(f"  engine step in the app's thread   median {in_app * ms:7.1f} ms")
    print(f"  key n -> frame with next token    median {shown * ms:7.1f} ms")
    print(f"                                    p95    {tail * ms:7.1f} ms")
    print(
        f"  app overhead (frame - engine, paired) median {overhead * ms:5.1f} ms"
        f"   / 20 ms = {overhead / BUDGET:4.2f}  (pass <= 1)"
    )
    print(f"  p95 / median                      {tail / shown:11.2f}   (pass <= 2)")
    print(
        f"  layer/head key -> frame           median {view * ms:7.1f} ms"
        f"   / 20 ms = {view / BUDGET:4.2f}  (pass <= 1)"
    )


def main() -> None:
    """Run both models and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=30, help="tokens per model")
    tokens = parser.parse_args().tokens
    print(f"stepper app benchmark, headless at {SIZE[0]}x{SIZE[1]}")
    models = (
        ("stories260k", lambda: load_model("stories260k")),
        ("GPT-2-124M-shaped, random weights", gpt2_shaped),
    )
    for name, build in models:
        model = build()
        alone = engine_steps(model, tokens)
        shown, in_app, views = asyncio.run(app_times(model, tokens))
        report(name, Figures(alone, in_app, shown, views))


if __name__ == "__main__":
    main()
