"""The headless trace: a whole generation printed stage by stage, as text or JSONL.

The JSONL form is a contract for scripts (documented in the README): a `prompt` line,
one `token` line per generated token, and an `end` line. Lines are flushed as they are
written, so output already printed stays valid if a later step fails.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterator
from typing import IO, Any

import numpy as np
from rich.console import Console
from rich.markup import escape

from stepper.sampler import SampleTrace
from stepper.session import Session, Stage, TokenStep
from stepper.tokenizer import Tokenizer


def generate(session: Session) -> Iterator[TokenStep]:
    """Step the session token by token to the end, yielding each sampled token."""
    while session.next_token():
        step = session.current
        assert step is not None and step.trace is not None
        yield step
        if session.done:
            return


def top_candidates(tok: Tokenizer, logits: np.ndarray, n: int) -> list[dict[str, Any]]:
    """The n highest raw logits with their softmax probability at temperature 1."""
    z = logits.astype(np.float64) - float(np.max(logits))
    probs = np.exp(z) / np.exp(z).sum()  # [V]
    order = np.argsort(-logits, kind="stable")[:n]
    return [
        {
            "id": int(i),
            "token": tok.piece(int(i)),
            "logit": round(float(logits[i]), 6),
            "prob": round(float(probs[i]), 6),
        }
        for i in order
    ]


def write_jsonl(session: Session, out: IO[str], top: int) -> None:
    """Print the JSONL trace of a whole generation to `out`."""
    tok = session.model.tokenizer
    emit = _line_writer(out)
    emit(
        {
            "type": "prompt",
            "model": session.model.name,
            "prompt": session.settings.prompt,
            "ids": session.prompt_ids,
            "tokens": [tok.piece(i) for i in session.prompt_ids],
        }
    )
    for step in generate(session):
        emit(_token_line(session, step, top))
    emit({"type": "end", "reason": session.end_reason, "text": session.text})


def _token_line(session: Session, step: TokenStep, top: int) -> dict[str, Any]:
    """The JSONL record of one generated token."""
    tok, trace = session.model.tokenizer, step.trace
    assert trace is not None
    return {
        "type": "token",
        "index": step.index,
        "id": trace.token_id,
        "token": tok.piece(trace.token_id),
        "text": step.text,
        "top": top_candidates(tok, step.capture.logits, top),
        "p": round(trace.p, 6),
        "u": None if trace.u is None else round(trace.u, 6),
    }


def _line_writer(out: IO[str]) -> Callable[[dict[str, Any]], None]:
    def emit(record: dict[str, Any]) -> None:
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        out.flush()

    return emit


def print_text(session: Session, console: Console, top: int) -> None:
    """Print a readable, coloured trace of a whole generation, stage by stage."""
    tok = session.model.tokenizer
    chips = " ".join(f"[cyan]{escape(tok.display(i))}[/]" for i in session.prompt_ids)
    console.print(
        f"[bold]{Stage.TOKENIZE}[/]  {len(session.prompt_ids)} tokens: {chips}"
    )
    console.print(f"          ids {session.prompt_ids}")
    for step in generate(session):
        _print_step(session, step, console, top)
    console.rule(f"end: {session.end_reason}")
    console.print(escape(printable(session.settings.prompt + session.text)))


def _print_step(session: Session, step: TokenStep, console: Console, top: int) -> None:
    """The Embed, Attend, Predict and Sample stages of one token."""
    tok, cap, trace = session.model.tokenizer, step.capture, step.trace
    assert trace is not None
    console.rule(f"token {step.index}")
    inputs = " ".join(escape(tok.display(i)) for i in cap.ids[-8:])
    norm = float(np.linalg.norm(cap.token_embeddings[-1]))
    console.print(
        f"[bold]{Stage.EMBED}[/]     input {inputs} at position "
        f"{cap.start + len(cap.ids) - 1}, |embedding| {norm:.3f}"
    )
    console.print(f"[bold]{Stage.ATTEND}[/]    {_attention_summary(session, step)}")
    cands = top_candidates(tok, cap.logits, top)
    shown = ", ".join(f"{escape(tok.display(c['id']))} {c['prob']:.3f}" for c in cands)
    console.print(f"[bold]{Stage.PREDICT}[/]   {shown}")
    console.print(f"          chain  {escape(chain_summary(trace))}")
    how = "forced" if trace.forced else "greedy" if trace.greedy else f"u={trace.u:.4f}"
    console.print(
        f"[bold]{Stage.SAMPLE}[/]    [green]{escape(tok.display(trace.token_id))}[/] "
        f"id {trace.token_id}, p={trace.p:.3f} ({how})"
    )


def chain_summary(trace: SampleTrace) -> str:
    """Each active sampler stage with how many tokens it kept, in order."""
    parts = []
    for record in trace.stages:
        if record.active:
            # Stage names are the names of the settings that drive them.
            setting = getattr(trace.settings, record.name)
            parts.append(f"{record.name}={setting:g}: {record.n_survivors} kept")
    return " → ".join(parts) or "no stage active"


def _attention_summary(session: Session, step: TokenStep) -> str:
    """Which earlier token each layer's heads attend to most, on average."""
    tok = session.model.tokenizer
    context = session.prompt_ids + session.generated_ids[: step.index]
    parts = []
    for layer, weights in enumerate(session.attention(step.index)):
        row = weights[:, -1, :].mean(axis=0)  # [S]
        pos = int(np.argmax(row))
        parts.append(f"L{layer}→{tok.display(context[pos])}@{pos} {row[pos]:.2f}")
    return escape(" ".join(parts))


def printable(text: str) -> str:
    """`text` with its control characters shown as `\\xNN`, not sent to the terminal.

    An escape sequence in a prompt or in the model's output would otherwise
    recolour or retitle the user's terminal.
    """
    return "".join(
        c if c in "\n\t" or unicodedata.category(c) != "Cc" else f"\\x{ord(c):02x}"
        for c in text
    )
