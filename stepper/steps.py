"""The session's vocabulary: stages, the cursor, events and per-token records."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from stepper.sampler import SamplerSettings, SampleTrace
from stepper.transformer import Capture


class Stage(StrEnum):
    """The pipeline stages, in order."""

    TOKENIZE = "Tokenize"
    EMBED = "Embed"
    ATTEND = "Attend"
    PREDICT = "Predict"
    SAMPLE = "Sample"


@dataclass(frozen=True)
class Cursor:
    """Where the session is: which token, which stage, and which layer in Attend.

    `layer` is None outside Attend, and also in Attend when it was stepped over (the
    stage is shown as a whole).
    """

    token: int
    stage: Stage
    layer: int | None = None


@dataclass(frozen=True)
class Event:
    """One user action on the session, as recorded and replayed.

    `args` are what `Session.apply` passes back to the method named `kind`;
    `outcome` is what the action ended in, for a replay to compare (only `run`
    has one: why it stopped).
    """

    kind: str
    args: dict[str, Any] = field(default_factory=dict)
    outcome: dict[str, Any] = field(default_factory=dict)


@dataclass
class TokenStep:
    """Everything the engine produced for one generated token."""

    index: int
    capture: Capture  # the forward pass whose logits this token is sampled from
    settings: SamplerSettings
    seed: int  # with `index`, seeds the generator this token's draw comes from
    trace: SampleTrace | None = None
    forced: bool = False
    text: str = ""  # the text this token completes (bytes may wait for the next)
    attention_dropped: bool = False

    @property
    def token_id(self) -> int | None:
        """The sampled (or forced) token id, once the Sample stage has run."""
        return None if self.trace is None else self.trace.token_id


@dataclass(frozen=True)
class Settings:
    """What a session generates with, besides the model."""

    prompt: str
    sampler: SamplerSettings
    seed: int = 0
    max_new_tokens: int = 64
    stop: tuple[str, ...] = ()
