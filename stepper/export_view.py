"""What one stage of one token shows in an export, as plain data.

`build_view` reads a session at any cursor it has already reached (the data of
every earlier token is kept) and returns a `View`: the tokens so far, a few facts
and small tables. The Markdown, HTML, asciinema and SVG writers all draw the same
views, so they always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stepper.recording import describe_cursor
from stepper.sampler import SampleTrace, StageRecord, check_logits, run_chain
from stepper.session import Cursor, Session, Stage, TokenStep

CANDIDATES = 8  # rows in a candidates table
ATTENDED = 3  # most-attended positions shown per layer or head
CODE_COLUMNS = ("token", "text", "piece")  # columns that hold a token's spelling
SETTING_LABELS = {
    "repetition_penalty": "repetition penalty",
    "top_k": "top-k",
    "top_p": "top-p",
    "min_p": "min-p",
    "temperature": "temperature",
}
STAGE_HELP = {
    Stage.TOKENIZE: "The prompt is split into tokens from the model's vocabulary.",
    Stage.EMBED: "The input token becomes a vector: its row of the embedding table.",
    Stage.ATTEND: "Each layer's heads weigh the earlier positions and mix them in.",
    Stage.PREDICT: "The last position's vector is scored against every token.",
    Stage.SAMPLE: "The sampler chain narrows the candidates and one is drawn.",
}


class TokenText(str):
    """A token's readable text inside a fact, which writers draw as code."""

    __slots__ = ()


Fact = tuple[str, ...]  # one sentence in parts; TokenText parts are tokens


@dataclass(frozen=True)
class Table:
    """A small table of strings; `numeric` columns align right."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    chosen: int | None = None  # the row of the sampled token, to highlight


@dataclass(frozen=True)
class Chip:
    """One token of the context: its readable text, id and role."""

    text: str
    token_id: int
    role: str  # "prompt", "generated" or "current"


@dataclass(frozen=True)
class View:
    """Everything an export shows for one cursor position."""

    cursor: Cursor
    label: str  # "token 3, Attend layer 2"
    help: str  # what the stage does, in one sentence
    notes: tuple[str, ...]  # the scenario's narration for this stage and token
    chips: tuple[Chip, ...]
    text: str  # the prompt and the text generated up to the cursor
    facts: tuple[Fact, ...]
    tables: tuple[Table, ...]


def build_view(session: Session, cursor: Cursor) -> View:
    """The view of `session` at `cursor`, a position it has reached."""
    stage, index = cursor.stage, cursor.token
    notes = session.notes(stage, index)
    if stage == Stage.TOKENIZE:
        facts, tables = _tokenize(session)
    else:
        step = session.steps[index]
        facts, tables = _STAGES[stage](session, step, cursor)
    return View(
        cursor, describe_cursor(cursor), STAGE_HELP[stage], tuple(notes),
        _chips(session, cursor), _text(session, cursor), tuple(facts), tuple(tables),
    )  # fmt: skip


def _chips(session: Session, cursor: Cursor) -> tuple[Chip, ...]:
    """The context at `cursor`, the token being worked on marked current."""
    tok, steps = session.model.tokenizer, session.steps
    sampled = cursor.token + (cursor.stage == Stage.SAMPLE)
    ids = [(i, "prompt") for i in session.prompt_ids]
    ids += [(i, "generated") for i in _sampled_ids(steps[:sampled])]
    chips = [Chip(tok.display(i), i, role) for i, role in ids]
    if cursor.stage != Stage.TOKENIZE and chips:
        last = chips[-1]
        chips[-1] = Chip(last.text, last.token_id, "current")
    return tuple(chips)


def _sampled_ids(steps: list[TokenStep]) -> list[int]:
    """The token ids of steps whose Sample stage has run."""
    return [s.token_id for s in steps if s.token_id is not None]


def _text(session: Session, cursor: Cursor) -> str:
    sampled = cursor.token + (cursor.stage == Stage.SAMPLE)
    return session.settings.prompt + "".join(s.text for s in session.steps[:sampled])


def _tokenize(session: Session) -> tuple[list[Fact], list[Table]]:
    tok, encoding = session.model.tokenizer, session.encoding
    rows = tuple(
        (str(n), str(i), tok.display(i), repr(tok.piece(i)))
        for n, i in enumerate(encoding.ids)
    )
    facts: list[Fact] = [
        (
            f"The prompt {session.settings.prompt!r} is {len(encoding.ids)} tokens "
            f"after {len(encoding.merges)} BPE merges.",
        )
    ]
    table = Table(
        "Prompt tokens", ("#", "id", "token", "piece"), rows, (True, True, False, False)
    )
    return facts, [table]


def _embed(
    session: Session, step: TokenStep, cursor: Cursor
) -> tuple[list[Fact], list[Table]]:
    tok, cap = session.model.tokenizer, step.capture
    position = cap.start + len(cap.ids) - 1
    token_id = cap.ids[-1]
    shown = TokenText(tok.display(token_id))
    facts: list[Fact] = [
        ("Input ", shown, f" (id {token_id}) at position {position}."),
        (f"Token embedding norm {np.linalg.norm(cap.token_embeddings[-1]):.3f}.",),
    ]
    if cap.position_embeddings is not None:
        norm = np.linalg.norm(cap.position_embeddings[-1])
        facts.append((f"Position embedding norm {norm:.3f}.",))
    facts.append((f"Residual stream norm {cap.residual_norms[0, -1]:.3f}.",))
    return facts, []


def _attend(
    session: Session, step: TokenStep, cursor: Cursor
) -> tuple[list[Fact], list[Table]]:
    weights = session.attention(step.index)  # L x [H, T, S]
    context = session.prompt_ids + _sampled_ids(session.steps[: step.index])
    tok = session.model.tokenizer
    names = [f"{tok.display(i)}@{pos}" for pos, i in enumerate(context)]
    if cursor.layer is None:
        rows = [_attended(f"L{n}", w[:, -1, :].mean(axis=0), names) for n, w in
                enumerate(weights)]  # fmt: skip
        where = "per layer (mean over heads)"
        first = "layer"
    else:
        layer = weights[cursor.layer]
        rows = [_attended(f"H{h}", layer[h, -1, :], names) for h in range(len(layer))]
        where = f"in layer {cursor.layer}, per head"
        first = "head"
    title = f"Where the last position attends, {where}: token@position weight"
    columns = (first, "most attended", "2nd", "3rd", "entropy")
    table = Table(title, columns, tuple(rows), (False, False, False, False, True))
    norms = step.capture.residual_norms[:, -1]
    done = len(norms) - 1 if cursor.layer is None else cursor.layer + 1
    facts: list[Fact] = [
        (f"Residual stream norm after {_layers(done)}: {norms[done]:.3f}.",)
    ]
    return facts, [table]


def _layers(n: int) -> str:
    return "1 layer" if n == 1 else f"{n} layers"


def _attended(label: str, row: np.ndarray, names: list[str]) -> tuple[str, ...]:
    """A table row: the most attended positions of one weights row [S]."""
    order = np.argsort(-row, kind="stable")[:ATTENDED]
    cells = [f"{names[k]} {row[k]:.2f}" for k in order]
    cells += [""] * (ATTENDED - len(cells))
    nonzero = row[row > 0]
    entropy = float(-(nonzero * np.log2(nonzero)).sum())
    return (label, *cells, f"{entropy:.2f}")


def _predict(
    session: Session, step: TokenStep, cursor: Cursor
) -> tuple[list[Fact], list[Table]]:
    tok = session.model.tokenizer
    # The model's own distribution, the same as the sampler's first record.
    initial, _ = run_chain(check_logits(step.capture.logits), step.settings, ())
    rows = tuple(
        (str(r + 1), str(c.token_id), tok.display(c.token_id), f"{c.logit:.3f}",
         f"{c.prob:.4f}")
        for r, c in enumerate(initial.top(CANDIDATES))
    )  # fmt: skip
    probs = initial.probs[initial.probs > 0]
    entropy = float(-(probs * np.log2(probs)).sum())
    facts: list[Fact] = [
        (
            f"{initial.n_survivors} candidates; the most likely has p = "
            f"{initial.probs[0]:.4f}; entropy {entropy:.2f} bits.",
        )
    ]
    columns = ("rank", "id", "token", "logit", "p")
    table = Table("Top candidates at temperature 1", columns, rows,
                  (True, True, False, True, True))  # fmt: skip
    return facts, [table]


def _sample(
    session: Session, step: TokenStep, cursor: Cursor
) -> tuple[list[Fact], list[Table]]:
    trace = step.trace
    assert trace is not None
    return [_draw(session, trace)], [_chain(trace), _final(session, trace)]


def _draw(session: Session, trace: SampleTrace) -> Fact:
    """One sentence: which token was picked, and how."""
    token = TokenText(session.model.tokenizer.display(trace.token_id))
    chosen = f" (id {trace.token_id})"
    if trace.forced:
        return ("Forced ", token, f"{chosen}; nothing drawn; p = {trace.p:.4f}.")
    if trace.u is None:
        return ("Greedy (temperature 0): ", token, f"{chosen}, the most likely.")
    return (
        f"Drew u = {trace.u:.4f}; it fell in slot {_slot(trace)}, "
        f"[{trace.lo:.4f}, {trace.hi:.4f}), which is ",
        token,
        f"{chosen} with p = {trace.p:.4f}.",
    )


def _slot(trace: SampleTrace) -> str:
    """The drawn slot numbered from 1, as the app shows it."""
    return "?" if trace.rank is None else str(trace.rank + 1)


def _chain(trace: SampleTrace) -> Table:
    """One row per sampler stage: its setting, tokens kept, where it cut."""
    rows = []
    for record in trace.stages:
        value = getattr(trace.settings, record.name)
        setting = f"{value:g}" if record.active else f"{value:g} (off)"
        if record.name == "temperature" and value == 0:
            setting = "0 (greedy)"
        kept = f"{record.n_before} → {record.n_survivors}"
        rows.append((SETTING_LABELS[record.name], setting, kept, _cutoff(record)))
    columns = ("stage", "setting", "kept", "cut at")
    return Table("Sampler chain, in order", columns, tuple(rows),
                 (False, True, True, True))  # fmt: skip


def _cutoff(record: StageRecord) -> str:
    if record.cutoff is None:
        return ""
    forms = {"top_k": "logit {:.3f}", "top_p": "mass {:.4f}", "min_p": "p {:.4f}"}
    return forms.get(record.name, "{:.4g}").format(record.cutoff)


def _final(session: Session, trace: SampleTrace) -> Table:
    """The candidates the token was drawn from, with their slots."""
    tok, final = session.model.tokenizer, trace.final
    shown = max(CANDIDATES, (trace.rank or 0) + 1)
    rows = []
    for r, c in enumerate(final.top(shown)):
        lo = 0.0 if r == 0 else float(trace.cumulative[r - 1])
        slot = f"[{lo:.4f}, {float(trace.cumulative[r]):.4f})"
        rows.append((str(r + 1), str(c.token_id), tok.display(c.token_id),
                     f"{c.prob:.4f}", slot))  # fmt: skip
    columns = ("slot", "id", "token", "p", "range")
    n = final.n_survivors
    title = f"Drawn from {n} candidate{'s' * (n != 1)}"
    return Table(title, columns, tuple(rows), (True, True, False, True, False),
                 trace.rank)  # fmt: skip


_STAGES = {
    Stage.EMBED: _embed,
    Stage.ATTEND: _attend,
    Stage.PREDICT: _predict,
    Stage.SAMPLE: _sample,
}
