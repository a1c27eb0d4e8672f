"""Read a GGUF file (llama.cpp's format) into a `Model`.

`stepper.gguf_header` memory-maps the file and reads its metadata and tensor table;
each tensor is dequantized once, here, to float32 with the `gguf` package's own
`gguf.quants.dequantize`, so the forward pass only ever sees float32. F32 tensors
stay zero-copy, read-only views of the memory map. Architectures `llama` and `gpt2`
are read.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import gguf
import numpy as np

from stepper import tokenizer as tokenizers
from stepper.config import ModelConfig
from stepper.errors import ModelFileError, UnsupportedModelError
from stepper.gguf_header import GGUFFile, TensorInfo, read_gguf
from stepper.model import Model
from stepper.weight_names import check_weights

log = logging.getLogger(__name__)

Q = gguf.GGMLQuantizationType
SUPPORTED_TYPES = (Q.F32, Q.F16, Q.BF16, Q.Q8_0, Q.Q4_0, Q.Q4_K, Q.Q6_K)
_SUPPORTED_NAMES = ", ".join(t.name for t in SUPPORTED_TYPES)


def open_gguf(path: Path) -> GGUFFile:
    """Memory-map a GGUF file and read its header; a bad file gives a one-line error."""
    return read_gguf(path)


def read_metadata(file: GGUFFile, path: Path) -> dict[str, object]:
    """The file's key/value metadata as plain Python values.

    Strings, numbers and booleans stay scalars; arrays of strings or integers become
    lists, arrays of floats (token scores) become float32 numpy arrays.
    """
    return dict(file.metadata)


def _num(
    metadata: Mapping[str, object], key: str, path: Path, default: float | None = None
) -> float:
    """A numeric metadata value (or `default` when absent), else a one-line error."""
    value = metadata.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ModelFileError(
            f"{path}: metadata key {key!r} is missing or not a number; "
            "convert the model again with llama.cpp's convert_hf_to_gguf.py"
        )
    return value


def config_from_metadata(
    metadata: Mapping[str, object], n_vocab: int, path: Path
) -> ModelConfig:
    """Build the model's configuration from GGUF metadata (`llama` or `gpt2`)."""
    arch = metadata.get("general.architecture")
    if arch not in ("llama", "gpt2"):
        raise UnsupportedModelError(
            f"{path}: general.architecture is {arch!r}; stepper runs 'llama' and "
            "'gpt2' GGUF models, use one of those"
        )
    _refuse_llama_extras(metadata, path)

    def num(key: str, default: float | None = None) -> int:
        """An integer hyperparameter under this architecture's prefix."""
        return int(_num(metadata, f"{arch}.{key}", path, default))

    eps = "rms_epsilon" if arch == "llama" else "epsilon"
    return ModelConfig(
        arch="llama" if arch == "llama" else "gpt2",
        n_layers=num("block_count"),
        n_embd=num("embedding_length"),
        n_heads=num("attention.head_count"),
        n_kv_heads=num("attention.head_count_kv", num("attention.head_count")),
        n_ff=num("feed_forward_length"),
        n_vocab=n_vocab,
        n_ctx=num("context_length"),
        norm_eps=_num(metadata, f"{arch}.attention.layer_norm_{eps}", path),
        rope_theta=_num(metadata, f"{arch}.rope.freq_base", path, 10000.0),
        rope_dim=num("rope.dimension_count", 0),
        rope_pairs="adjacent",
    )


def _refuse_llama_extras(metadata: Mapping[str, object], path: Path) -> None:
    """Refuse Llama variants whose numbers stepper would silently get wrong."""
    scaling = metadata.get("llama.rope.scaling.type", "none")
    if scaling not in ("none", None):
        raise UnsupportedModelError(
            f"{path}: llama.rope.scaling.type is {scaling!r}; stepper implements "
            "plain RoPE only, use a model without RoPE scaling"
        )
    if _num(metadata, "llama.expert_count", path, 0) > 0:
        raise UnsupportedModelError(
            f"{path}: llama.expert_count is set (a mixture of experts); stepper "
            "runs dense models only"
        )
    _refuse_odd_head_width(metadata, path)


def _refuse_odd_head_width(metadata: Mapping[str, object], path: Path) -> None:
    """Refuse a head width other than C / H, which ModelConfig cannot express."""
    c = metadata.get("llama.embedding_length")
    h = metadata.get("llama.attention.head_count")
    if not (isinstance(c, int) and isinstance(h, int) and h > 0):
        return
    for key in ("llama.attention.key_length", "llama.attention.value_length"):
        width = metadata.get(key, c // h)
        if width != c // h:
            raise UnsupportedModelError(
                f"{path}: {key} is {width}, not embedding_length / head_count "
                f"= {c // h}; stepper needs head width C / H"
            )


def dequantize(file: GGUFFile, tensor: TensorInfo, path: Path) -> np.ndarray:
    """One tensor as a float32, C-contiguous array in numpy layout."""
    # shape: tensor.shape, e.g. [out, in] for a matrix
    if tensor.ggml_type not in SUPPORTED_TYPES:
        raise UnsupportedModelError(
            f"{path}: tensor {tensor.name!r} has type {tensor.ggml_type.name}; "
            f"stepper reads {_SUPPORTED_NAMES}, re-quantize with llama.cpp's "
            "llama-quantize to one of those"
        )
    # gguf.quants.dequantize takes uint8 bytes with each row's bytes on the last axis.
    values = gguf.quants.dequantize(file.tensor_bytes(tensor), tensor.ggml_type)
    return np.ascontiguousarray(values, dtype=np.float32).reshape(tensor.shape)


def read_weights(
    file: GGUFFile, path: Path
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Every tensor dequantized to float32, and each tensor's stored type."""
    if not file.tensors:
        raise ModelFileError(
            f"{path}: the file holds no tensors (a vocabulary-only GGUF); "
            "pass a GGUF that contains the model's weights"
        )
    weights: dict[str, np.ndarray] = {}
    types: dict[str, str] = {}
    for tensor in file.tensors:
        weights[tensor.name] = dequantize(file, tensor, path)
        types[tensor.name] = tensor.ggml_type.name
    return weights, types


def _drop_tied_copy(weights: dict[str, np.ndarray]) -> None:
    """Drop `output.weight` when it is an exact copy of the token embedding."""
    out, embd = weights.get("output.weight"), weights["token_embd.weight"]
    if out is not None and out.shape == embd.shape and np.array_equal(out, embd):
        del weights["output.weight"]


def load_gguf(path: Path, name: str | None = None) -> Model:
    """Load a `.gguf` file: config, float32 weights and the file's own tokenizer."""
    file = open_gguf(path)
    metadata = read_metadata(file, path)
    weights, types = read_weights(file, path)
    embd = weights.get("token_embd.weight")
    if embd is None or embd.ndim != 2:
        raise ModelFileError(
            f"{path}: tensor 'token_embd.weight' is missing or not a matrix; "
            "the file is incomplete, convert it again"
        )
    config = config_from_metadata(metadata, embd.shape[0], path)
    check_weights(weights, config, str(path))
    _drop_tied_copy(weights)
    tokenizer = tokenizers.tokenizer_from_gguf(metadata, path)
    log.info("loaded %s: %d tensors", path, len(weights))
    return Model(
        name=name or path.stem,
        source=path,
        config=config,
        weights=weights,
        tokenizer=tokenizer,
        tensor_types=types,
    )
