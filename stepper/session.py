"""The stepping session: a debugger's view of generation, one stage at a time.

A session walks a cursor through the pipeline. The first new token goes through
Tokenize, Embed, Attend (layer by layer, or over it), Predict and Sample; every later
token starts at Embed, with the token sampled before it as input. The forward pass
runs when the cursor enters Embed and sampling when it enters Sample; what they
produce is kept per token, so stepping backward shows exactly the earlier state
(the same logits, attention and random state) and stepping forward again replays
it. A change (forcing a token, new sampling settings, a new prompt) discards the
future after the cursor and generation continues from there.

Every user action is appended to `history` as an `Event` and passed to each
listener, which is how recordings are written.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from stepper.breakpoints import Breakpoint, holds
from stepper.errors import StepperError
from stepper.model import Model
from stepper.sampler import sample
from stepper.steps import Cursor, Event, Settings, Stage, TokenStep
from stepper.tokenizer import Encoding
from stepper.transformer import Transformer

if TYPE_CHECKING:
    from stepper.scenario import Scenario

log = logging.getLogger(__name__)

# Attention rows are kept for recent tokens up to this many floats (128 MiB); older
# ones are dropped and recomputed on demand, so memory does not grow as L*H*T^2.
ATTENTION_BUDGET = 32 * 1024 * 1024
# Candidates kept per sampler stage and token: enough for any pane, and a 50k
# vocabulary's full arrays are not kept for every token.
TRACE_CANDIDATES = 256


class Session:
    """A model, a prompt and sampling settings, stepped through like a program."""

    def __init__(
        self,
        model: Model,
        settings: Settings,
        scenario: Scenario | None = None,
        breakpoints: tuple[Breakpoint, ...] = (),
    ) -> None:
        self.model = model
        self.scenario = scenario  # where the settings came from, with its notes
        self.transformer = Transformer(model)
        self.breakpoints: list[Breakpoint] = list(breakpoints)
        # Where the session began, so a recording started later can replay from it.
        self.start_settings, self.start_breakpoints = settings, breakpoints
        self.history: list[Event] = []
        self.listeners: list[Callable[[Event], None]] = []
        self._start(settings)

    # -- state ------------------------------------------------------------------

    def _start(self, settings: Settings) -> None:
        """Begin again at Tokenize with these settings; refuse them unchanged."""
        tok = self.model.tokenizer
        encoding = tok.encode(settings.prompt)
        if not encoding.ids and tok.bos_id is not None:
            # An empty prompt starts from BOS, even where prompts get none added.
            encoding = Encoding([tok.bos_id], [(0, 0)])
        if not encoding.ids:
            raise StepperError(
                f"{self.model.name}: the prompt is empty and the model has no BOS "
                "token to start from; give a prompt"
            )
        room = self.model.config.n_ctx - len(encoding.ids)
        if room < 1:
            raise StepperError(
                f"the prompt is {len(encoding.ids)} tokens but {self.model.name} "
                f"holds {self.model.config.n_ctx}; shorten the prompt"
            )
        # Nothing is changed until the new settings are known to work.
        self.settings, self.encoding = settings, encoding
        self.transformer.truncate(0)
        self.steps: list[TokenStep] = []
        self.cursor = Cursor(0, Stage.TOKENIZE)
        self.end_reason: str | None = None

    @property
    def max_new_tokens(self) -> int:
        """The most tokens this session will generate."""
        return self.settings.max_new_tokens

    @property
    def prompt_ids(self) -> list[int]:
        """The prompt's token ids, BOS included when the model adds it."""
        return self.encoding.ids

    @property
    def generated_ids(self) -> list[int]:
        """Ids sampled so far, up to and including the cursor's token if sampled."""
        last = self.cursor.token + (self.cursor.stage == Stage.SAMPLE)
        return [s.token_id for s in self.steps[:last] if s.token_id is not None]

    @property
    def text(self) -> str:
        """The generated text up to the cursor."""
        last = self.cursor.token + (self.cursor.stage == Stage.SAMPLE)
        return "".join(s.text for s in self.steps[:last])

    @property
    def current(self) -> TokenStep | None:
        """The record of the cursor's token, once its forward pass has run."""
        i = self.cursor.token
        return self.steps[i] if i < len(self.steps) else None

    @property
    def done(self) -> bool:
        """True when the cursor is on the last token generation will produce."""
        return self.end_reason is not None and self._at_last_sample()

    def _at_last_sample(self) -> bool:
        return (
            self.cursor.stage == Stage.SAMPLE
            and self.cursor.token == len(self.steps) - 1
        )

    def attention(self, index: int) -> tuple[np.ndarray, ...]:
        """Token `index`'s attention weights, recomputed if they were dropped."""
        step = self.steps[index]
        if not step.attention_dropped:
            return step.capture.attention
        log.info("recomputing attention for token %d", index)
        scratch = Transformer(self.model)
        capture = scratch.forward(self.prompt_ids)
        for token_id in self._sampled(index):
            capture = scratch.forward([token_id])
        return capture.attention

    # -- events -----------------------------------------------------------------

    def _emit(
        self, name: str, outcome: dict[str, Any] | None = None, **args: Any
    ) -> None:
        event = Event(name, args, outcome or {})
        self.history.append(event)
        for listener in self.listeners:
            listener(event)

    def apply(self, event: Event) -> None:
        """Perform a recorded event again (used by replay)."""
        action = getattr(self, event.kind, None)
        if event.kind.startswith("_") or not callable(action):
            raise StepperError(f"unknown session event {event.kind!r}")
        action(**event.args)

    # -- moving -----------------------------------------------------------------

    def step(self) -> bool:
        """Go to the next stage, into Attend layer by layer; False at the end."""
        moved = self._advance(into=True)
        self._emit("step")
        return moved

    def step_over(self) -> bool:
        """Go to the next stage, taking Attend as a whole; False at the end."""
        moved = self._advance(into=False)
        self._emit("step_over")
        return moved

    def back(self) -> bool:
        """Go back one stage (one layer inside Attend); False at the very start."""
        moved = self._retreat()
        self._emit("back")
        return moved

    def next_token(self) -> bool:
        """Go to the Sample stage of this token, or of the next one if already there."""
        start = self.cursor
        target = start.token + (start.stage == Stage.SAMPLE)
        while self.cursor.token < target or self.cursor.stage != Stage.SAMPLE:
            if not self._advance(into=False):
                break
        self._emit("next_token")
        return self.cursor != start

    def back_token(self) -> bool:
        """Go back to the Sample stage of the previous token (or to Tokenize)."""
        start = self.cursor
        if start.token == 0:
            self.cursor = Cursor(0, Stage.TOKENIZE)
        else:
            self.cursor = Cursor(start.token - 1, Stage.SAMPLE)
        self._emit("back_token")
        return self.cursor != start

    def run(
        self,
        to_breakpoint: bool = True,
        should_stop: Callable[[], bool] | None = None,
    ) -> str:
        """Step until the end, a breakpoint, or `should_stop()`; say which."""
        reason = "end"
        while self._advance(into=False):
            if to_breakpoint and self.hit_breakpoint() is not None:
                reason = "breakpoint"
                break
            if should_stop is not None and should_stop():
                reason = "interrupted"
                break
        self._emit("run", {"stopped": reason}, to_breakpoint=to_breakpoint)
        return reason

    def _advance(self, into: bool) -> bool:
        """Move the cursor one stage on, computing what the new stage needs."""
        nxt = self._next_cursor(self.cursor, into)
        if nxt is None:
            return False
        if nxt.stage == Stage.EMBED and nxt.token >= len(self.steps):
            self._forward(nxt.token)
        self.cursor = nxt
        if nxt.stage == Stage.SAMPLE:
            self._sample(self.steps[nxt.token])
        return True

    def _next_cursor(self, c: Cursor, into: bool) -> Cursor | None:
        """The stage after `c`, or None when generation has ended there."""
        n_layers = self.model.config.n_layers
        if c.stage == Stage.TOKENIZE:
            return Cursor(c.token, Stage.EMBED)
        if c.stage == Stage.EMBED:
            return Cursor(c.token, Stage.ATTEND, 0 if into else None)
        if c.stage == Stage.ATTEND:
            if into and c.layer is not None and c.layer + 1 < n_layers:
                return Cursor(c.token, Stage.ATTEND, c.layer + 1)
            return Cursor(c.token, Stage.PREDICT)
        if c.stage == Stage.PREDICT:
            return Cursor(c.token, Stage.SAMPLE)
        if self.end_reason is not None and c.token == len(self.steps) - 1:
            return None
        return Cursor(c.token + 1, Stage.EMBED)

    def _retreat(self) -> bool:
        """Move the cursor one stage back; nothing is recomputed."""
        c = self.cursor
        last_layer = self.model.config.n_layers - 1
        order = list(Stage)
        if c.stage == Stage.ATTEND and c.layer:
            self.cursor = Cursor(c.token, Stage.ATTEND, c.layer - 1)
        elif c.stage == Stage.PREDICT:
            self.cursor = Cursor(c.token, Stage.ATTEND, last_layer)
        elif c.stage == Stage.EMBED and c.token > 0:
            self.cursor = Cursor(c.token - 1, Stage.SAMPLE)
        elif c.stage != Stage.TOKENIZE:
            self.cursor = Cursor(c.token, order[order.index(c.stage) - 1])
        else:
            return False
        return True

    # -- computing --------------------------------------------------------------

    def _forward(self, index: int) -> None:
        """Run the forward pass that produces token `index`'s logits."""
        if index == 0:
            self.transformer.truncate(0)
            capture = self.transformer.forward(self.prompt_ids)
        else:
            prev = self.steps[index - 1]
            assert prev.token_id is not None
            capture = self.transformer.forward([prev.token_id])
        step = TokenStep(index, capture, self.settings.sampler, self.settings.seed)
        self.steps.append(step)
        self._bound_attention()

    def _sample(self, step: TokenStep, forced: int | None = None) -> None:
        """Run the sampler chain for `step`, drawing from that token's generator.

        Each token draws from its own generator, seeded by (seed, token index): a
        greedy, forced or resampled token never shifts the draws of later tokens.
        """
        if step.trace is not None and forced is None:
            return
        rng = np.random.default_rng([step.seed, step.index])
        context = self.prompt_ids + self._sampled(step.index)
        trace = sample(step.capture.logits, step.settings, rng, context, forced=forced)
        step.trace = trace.compact(TRACE_CANDIDATES)
        step.forced = forced is not None
        step.text = self._text_of(step.index)
        self._check_end(step)

    def _text_of(self, index: int) -> str:
        """The text completed by token `index`, holding back unfinished bytes."""
        ids = self._sampled(index + 1)
        tok = self.model.tokenizer
        before = _complete_utf8(b"".join(tok.token_bytes(i) for i in ids[:-1]))
        after = _complete_utf8(b"".join(tok.token_bytes(i) for i in ids))
        return after[len(before) :]

    def _sampled(self, count: int) -> list[int]:
        """The ids of the first `count` tokens, every one of them already sampled."""
        ids = []
        for step in self.steps[:count]:
            assert step.token_id is not None, "tokens before the cursor are sampled"
            ids.append(step.token_id)
        return ids

    def _check_end(self, step: TokenStep) -> None:
        """Decide whether generation ends with this token, and why."""
        self.end_reason = None
        text = "".join(s.text for s in self.steps[: step.index + 1])
        if step.token_id == self.model.tokenizer.eos_id:
            self.end_reason = "eos"
        elif any(s and s in text for s in self.settings.stop):
            self.end_reason = "stop"
        elif step.index + 1 >= self.max_new_tokens:
            self.end_reason = "max_new_tokens"
        elif step.capture.start + len(step.capture.ids) >= self.model.config.n_ctx:
            # The next token would need a position the model does not have.
            self.end_reason = "context"

    def _bound_attention(self) -> None:
        """Drop the oldest tokens' attention rows once they pass the budget."""
        kept = 0
        for step in reversed(self.steps):
            if step.attention_dropped:
                break
            kept += sum(a.size for a in step.capture.attention)
            if kept > ATTENTION_BUDGET and step.index != self.cursor.token:
                step.capture = replace(step.capture, attention=())
                step.attention_dropped = True

    def _discard_after(self, index: int) -> None:
        """Forget every token after `index`; the next forward pass rebuilds them."""
        del self.steps[index + 1 :]
        step = self.steps[index]
        self.transformer.truncate(step.capture.start + len(step.capture.ids))
        self.end_reason = None

    # -- changing ---------------------------------------------------------------

    def force(self, token_id: int) -> None:
        """Make the cursor's token `token_id` instead of what the sampler picks."""
        if not 0 <= token_id < self.model.config.n_vocab:
            raise StepperError(
                f"token id {token_id} is outside the vocabulary "
                f"(0..{self.model.config.n_vocab - 1})"
            )
        self._reach_predict()
        index = self.cursor.token
        self._discard_after(index)
        self.cursor = Cursor(index, Stage.SAMPLE)
        self._sample(self.steps[index], forced=token_id)
        self._emit("force", token_id=token_id)

    def set_sampler(self, **changes: Any) -> None:
        """Change sampling settings from the cursor's token on."""
        sampler = replace(self.settings.sampler, **changes)
        self.settings = replace(self.settings, sampler=sampler)
        self._resample(lambda step: setattr(step, "settings", sampler))
        self._emit("set_sampler", **changes)

    def set_seed(self, seed: int) -> None:
        """Reseed the random draws from the cursor's token on."""
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise StepperError(
                f"seed = {seed!r} is out of range; use a whole number >= 0"
            )
        self.settings = replace(self.settings, seed=seed)
        self._resample(lambda step: setattr(step, "seed", seed))
        self._emit("set_seed", seed=seed)

    def _resample(self, change: Callable[[TokenStep], None]) -> None:
        """Apply `change` to the cursor's token, forget the future, sample again."""
        step = self.current
        if step is None:
            return
        self._discard_after(step.index)
        change(step)
        if step.trace is not None:
            step.trace = None
            if self.cursor.stage == Stage.SAMPLE:
                self._sample(step)

    def set_prompt(self, prompt: str) -> None:
        """Start again from Tokenize with a new prompt."""
        self._start(replace(self.settings, prompt=prompt))
        self._emit("set_prompt", prompt=prompt)

    def add_breakpoint(self, kind: str, value: int | float | str) -> Breakpoint:
        """Stop `run` when this condition holds; return the breakpoint."""
        bp = Breakpoint(kind, value)  # type: ignore[arg-type]
        if bp not in self.breakpoints:
            self.breakpoints.append(bp)
        self._emit("add_breakpoint", kind=kind, value=value)
        return bp

    def remove_breakpoint(self, kind: str, value: int | float | str) -> None:
        """Stop checking this condition."""
        bp = Breakpoint(kind, value)  # type: ignore[arg-type]
        if bp in self.breakpoints:
            self.breakpoints.remove(bp)
        self._emit("remove_breakpoint", kind=kind, value=value)

    def _reach_predict(self) -> None:
        """Advance to the Predict stage of the cursor's token if not past it."""
        while self.cursor.stage in (Stage.TOKENIZE, Stage.EMBED, Stage.ATTEND):
            self._advance(into=False)

    def notes(self, stage: Stage, token: int) -> list[str]:
        """The scenario's narration for `stage` of token `token`, while it applies.

        Notes are written for the scenario's own prompt, settings and tokens: once
        the prompt, the sampling settings or seed at that token, or an earlier
        token (forced) differ, they would describe something else, so none show.
        """
        sc = self.scenario
        if sc is None or self.settings.prompt != sc.prompt:
            return []
        steps = self.steps[: token + 1]
        used = [(s.settings, s.seed) for s in steps]
        if len(steps) <= token:  # not computed yet: today's settings will apply
            used.append((self.settings.sampler, self.settings.seed))
        if any(used_here != (sc.sampler, sc.seed) for used_here in used):
            return []
        if any(s.forced for s in steps[:token]):
            return []
        return sc.notes_for(str(stage), token)

    # -- breakpoints ------------------------------------------------------------

    def hit_breakpoint(self) -> Breakpoint | None:
        """The first breakpoint whose condition holds at the cursor, if any."""
        step, tok = self.current, self.model.tokenizer
        for bp in self.breakpoints:
            if holds(bp, self.cursor, step, tok):
                return bp
        return None


def _complete_utf8(data: bytes) -> str:
    """Decode `data` up to its last whole character; invalid bytes become U+FFFD."""
    return codecs.getincrementaldecoder("utf-8")("replace").decode(data, final=False)
