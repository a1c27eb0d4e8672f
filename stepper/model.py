"""A loaded model: its configuration, float32 weights, tokenizer and identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stepper.config import ModelConfig
from stepper.tokenizer import Tokenizer


@dataclass
class Model:
    """Everything the engine needs to run one model, whatever file it came from.

    Weights are float32, C-contiguous, laid out [out, in] and named with GGUF's
    tensor names (`token_embd.weight`, `blk.0.attn_q.weight`, ...), whichever format
    they were read from. `output.weight` is absent when the classifier is tied to
    the token embedding.
    """

    name: str
    source: Path | None  # the file or directory read; None for synthetic models
    sha256: str  # content hash of the weights file(s), for recordings
    config: ModelConfig
    weights: dict[str, np.ndarray]
    tokenizer: Tokenizer
    tensor_types: dict[str, str] = field(default_factory=dict)  # name -> F32, Q8_0...

    @property
    def n_params(self) -> int:
        """The number of weights, counting a tied classifier once."""
        return sum(w.size for w in self.weights.values())
