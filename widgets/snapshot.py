"""What the panes show: a frozen copy of the session's state after each action.

The engine thread builds a `Snapshot` after every action and posts it; panes read
only snapshots, never the live session, so the UI thread and the engine thread
never share mutable state. Arrays are the engine's own recorded arrays, shared
read-only, not copies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stepper.analysis import cosine_similarity
from stepper.breakpoints import Breakpoint
from stepper.sampler import (
    SamplerSettings,
    SampleTrace,
    StageRecord,
    check_logits,
    run_chain,
)
from stepper.session import Cursor, Session, Settings, Stage
from stepper.tokenizer import Encoding
from stepper.transformer import Capture, Transformer
from widgets.draw.chips import Chip

SIMILAR_TOKENS = 8  # the latest tokens whose embeddings are compared, at most


@dataclass(frozen=True)
class Generated:
    """One generated token as the timeline lists it."""

    text: str  # readable token text
    p: float  # probability after the whole sampler chain
    forced: bool


@dataclass(frozen=True)
class Snapshot:
    """The session's state after one action, for the panes to draw."""

    model_name: str
    n_layers: int  # L
    n_heads: int  # H
    cursor: Cursor
    settings: Settings
    encoding: Encoding
    chips: tuple[Chip, ...]  # prompt tokens, then generated ones up to the cursor
    n_prompt: int
    capture: Capture | None  # the cursor token's forward pass, once it ran
    attention: tuple[tuple[int, tuple[np.ndarray, ...]], ...]  # (start, L x [H,t,S])
    initial: StageRecord | None  # the model's own distribution, from Predict on
    trace: SampleTrace | None  # the sampler's record, at Sample only
    similarity: np.ndarray | None  # [W, W] cosine similarity of `similar`'s embeddings
    generated: tuple[Generated, ...]
    breakpoints: tuple[Breakpoint, ...]
    end_reason: str | None
    done: bool
    events: int  # length of the session's history
    note: str = ""  # the scenario's narration for this stage and token
    status: str = ""  # what the last action reported (a run's stop reason)
    error: str = ""  # why the last action failed; the session is as it was
    serial: int = 0  # counts the engine's snapshots, so a reader knows the newest
    running: bool = False  # a long run is still going
    transformer: Transformer | None = None  # for the logit lens, read-only
    recording: str = ""  # the file the session is recorded into; "" when it is not
    recorded: int = 0  # events written to that file so far
    sampler: SamplerSettings | None = None  # in force at the cursor's token
    seed: int = 0  # in force at the cursor's token
    similar: tuple[int, ...] = ()  # chip indices compared, ending at the cursor's

    @property
    def sampler_here(self) -> SamplerSettings:
        """The sampling settings in force at the cursor's token."""
        return self.sampler or self.settings.sampler

    def display(self, token_id: int) -> str:
        """A token's readable text (whitespace and bytes made visible)."""
        assert self.transformer is not None
        return self.transformer.model.tokenizer.display(token_id)

    @property
    def stage(self) -> Stage:
        """The cursor's stage."""
        return self.cursor.stage

    def reached(self, stage: Stage) -> bool:
        """Whether the cursor's token has reached `stage` (or a later one)."""
        order = list(Stage)
        return order.index(self.cursor.stage) >= order.index(stage)

    @property
    def query(self) -> int | None:
        """The chip index of the token whose attention row is current."""
        if self.capture is None:
            return None
        return self.capture.start + len(self.capture.ids) - 1


def take(
    session: Session,
    status: str = "",
    running: bool = False,
    note: str = "",
    error: str = "",
    serial: int = 0,
) -> Snapshot:
    """Copy what the panes need from `session` (run on the engine thread)."""
    step = session.current
    cursor = session.cursor
    capture = None if step is None or cursor.stage == Stage.TOKENIZE else step.capture
    trace = step.trace if step is not None and cursor.stage == Stage.SAMPLE else None
    cfg = session.model.config
    similar = _embedded(session)
    return Snapshot(
        model_name=session.model.name,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        cursor=cursor,
        settings=session.settings,
        encoding=session.encoding,
        chips=_chips(session),
        n_prompt=len(session.prompt_ids),
        capture=capture,
        attention=_attention(session) if capture is not None else (),
        initial=_initial(session, trace),
        trace=trace,
        similarity=None if similar is None else cosine_similarity(similar[1]),
        generated=_generated(session),
        breakpoints=tuple(session.breakpoints),
        end_reason=session.end_reason,
        done=session.done,
        events=len(session.history),
        note=note,
        status=status,
        error=error,
        serial=serial,
        running=running,
        transformer=session.transformer,
        sampler=session.settings.sampler if step is None else step.settings,
        seed=session.settings.seed if step is None else step.seed,
        similar=() if similar is None else similar[0],
    )


def _chips(session: Session) -> tuple[Chip, ...]:
    """Every token up to the cursor as a chip: the prompt's, then generated ones."""
    tok = session.model.tokenizer
    prompt = [Chip(i, tok.display(i)) for i in session.prompt_ids]
    made = [Chip(i, tok.display(i), generated=True) for i in session.generated_ids]
    return tuple(prompt + made)


def _attention(session: Session) -> tuple[tuple[int, tuple[np.ndarray, ...]], ...]:
    """Each forward pass's attention up to the cursor's token, oldest first.

    Rows the session dropped to bound memory stay empty, except the cursor's own,
    which the session recomputes.
    """
    last = session.cursor.token
    rows = []
    for step in session.steps[: last + 1]:
        layers = step.capture.attention
        if step.attention_dropped and step.index == last:
            layers = session.attention(last)
        # A long prompt keeps only its last query rows: they end at the last id.
        end = step.capture.start + len(step.capture.ids)
        rows.append((end - layers[0].shape[1] if layers else end, layers))
    return tuple(rows)


def _initial(session: Session, trace: SampleTrace | None) -> StageRecord | None:
    """The model's own distribution once the cursor reached Predict."""
    step = session.current
    if step is None or session.cursor.stage not in (Stage.PREDICT, Stage.SAMPLE):
        return None
    if trace is not None:
        return trace.initial
    context = session.prompt_ids + session.generated_ids
    initial, _ = run_chain(check_logits(step.capture.logits), step.settings, context)
    return initial


def _embedded(session: Session) -> tuple[tuple[int, ...], np.ndarray] | None:
    """The last `SIMILAR_TOKENS` tokens' chip indices and embeddings: [W, C].

    They end at the cursor's token, so the similarity grid follows generation.
    """
    if not session.steps or session.cursor.stage == Stage.TOKENIZE:
        return None
    chips: list[int] = []
    rows: list[np.ndarray] = []
    for step in reversed(session.steps[: session.cursor.token + 1]):
        capture = step.capture
        chips[:0] = range(capture.start, capture.start + len(capture.ids))
        rows[:0] = list(capture.token_embeddings)
        if len(chips) >= SIMILAR_TOKENS:
            break
    return tuple(chips[-SIMILAR_TOKENS:]), np.stack(rows[-SIMILAR_TOKENS:])


def _generated(session: Session) -> tuple[Generated, ...]:
    """The generated tokens up to the cursor, with their probabilities."""
    tok = session.model.tokenizer
    last = session.cursor.token + (session.cursor.stage == Stage.SAMPLE)
    out = []
    for step in session.steps[:last]:
        if step.trace is not None:
            text = tok.display(step.trace.token_id)
            out.append(Generated(text, step.trace.p, step.forced))
    return tuple(out)
