"""A loaded model: its configuration, float32 weights, tokenizer and identity."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from stepper.config import ModelConfig
from stepper.tokenizer import Tokenizer


@dataclass
class Model:
    """Everything the engine needs to run one model, whatever file it came from.

    Weights are float32 with shape [out, in] (a `Transformer` stores matrices
    column-major, so that `W.T` is contiguous) and are named with GGUF's tensor
    names (`token_embd.weight`, `blk.0.attn_q.weight`, ...), whichever format they
    were read from. `output.weight` is absent when the classifier is tied to
    the token embedding.
    """

    name: str
    source: Path | None  # the file or directory read; None for synthetic models
    config: ModelConfig
    weights: dict[str, np.ndarray]
    tokenizer: Tokenizer
    tensor_types: dict[str, str] = field(default_factory=dict)  # name -> F32, Q8_0...

    @cached_property
    def sha256(self) -> str:
        """Content hash of the model's files, computed on first use (large files).

        For a single file this equals `sha256sum` of it; a directory hashes each of
        its `model_files` with its name; a model built in code hashes its weights.
        """
        digest = hashlib.sha256()
        if self.source is None:
            _hash_weights(digest, self.weights)
        elif self.source.is_file():
            _hash_file(digest, self.source)
        else:
            for path in model_files(self.source):
                digest.update(path.name.encode() + b"\0")
                _hash_file(digest, path)
        return digest.hexdigest()

    @property
    def n_params(self) -> int:
        """The number of weights, counting a tied classifier once."""
        return sum(w.size for w in self.weights.values())


def model_files(source: Path) -> list[Path]:
    """The files that define a model directory: JSON and safetensors, by name."""
    patterns = ("*.json", "*.safetensors")
    return sorted(
        p for pattern in patterns for p in source.glob(pattern) if p.is_file()
    )


def _hash_file(digest: hashlib._Hash, path: Path) -> None:
    """Feed a file to `digest` in chunks, so a multi-GB file never sits in memory."""
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)


def _hash_weights(digest: hashlib._Hash, weights: dict[str, np.ndarray]) -> None:
    """Feed in-memory weights to `digest` by name order (models built in code)."""
    for name in sorted(weights):
        digest.update(name.encode() + b"\0")
        digest.update(np.ascontiguousarray(weights[name]).tobytes())
