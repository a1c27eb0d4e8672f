"""The weight names and shapes the forward pass relies on, and the check against them.

Every loader hands the engine float32 arrays named with GGUF's tensor names and laid
out [out, in]. `check_weights` compares what a loader produced with what the config
implies, so a wrong or missing tensor is reported by name before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from stepper.config import ModelConfig
from stepper.errors import ModelFileError, UnsupportedModelError

Shape = tuple[int, ...]


def _gpt2_layer(c: int, f: int) -> dict[str, Shape]:
    """Shapes of one GPT-2 block, keyed by the name after `blk.{i}.`."""
    return {
        "attn_norm.weight": (c,),
        "attn_norm.bias": (c,),
        "attn_qkv.weight": (3 * c, c),
        "attn_qkv.bias": (3 * c,),
        "attn_output.weight": (c, c),
        "attn_output.bias": (c,),
        "ffn_norm.weight": (c,),
        "ffn_norm.bias": (c,),
        "ffn_up.weight": (f, c),
        "ffn_up.bias": (f,),
        "ffn_down.weight": (c, f),
        "ffn_down.bias": (c,),
    }


def _llama_layer(config: ModelConfig) -> dict[str, Shape]:
    """Shapes of one Llama block, keyed by the name after `blk.{i}.`."""
    c, f, d = config.n_embd, config.n_ff, config.head_dim
    q, kv = config.n_heads * d, config.n_kv_heads * d
    return {
        "attn_norm.weight": (c,),
        "attn_q.weight": (q, c),
        "attn_k.weight": (kv, c),
        "attn_v.weight": (kv, c),
        "attn_output.weight": (c, q),
        "ffn_norm.weight": (c,),
        "ffn_gate.weight": (f, c),
        "ffn_up.weight": (f, c),
        "ffn_down.weight": (c, f),
    }


def _optional_layer(config: ModelConfig) -> dict[str, Shape]:
    """Per-block tensors a model may or may not have (Qwen2's q/k/v biases)."""
    if config.arch != "llama":
        return {}
    q, kv = config.n_heads * config.head_dim, config.n_kv_heads * config.head_dim
    return {"attn_q.bias": (q,), "attn_k.bias": (kv,), "attn_v.bias": (kv,)}


def expected_shapes(config: ModelConfig) -> tuple[dict[str, Shape], dict[str, Shape]]:
    """The required and the optional tensors of a model, with their shapes."""
    c, v = config.n_embd, config.n_vocab
    required: dict[str, Shape] = {
        "token_embd.weight": (v, c),
        "output_norm.weight": (c,),
    }
    optional: dict[str, Shape] = {"output.weight": (v, c)}
    if config.arch == "gpt2":
        required["position_embd.weight"] = (config.n_ctx, c)
        required["output_norm.bias"] = (c,)
        layer = _gpt2_layer(c, config.n_ff)
    else:
        layer = _llama_layer(config)
    for i in range(config.n_layers):
        required.update({f"blk.{i}.{k}": s for k, s in layer.items()})
        optional.update({f"blk.{i}.{k}": s for k, s in _optional_layer(config).items()})
    return required, optional


def check_weights(
    weights: Mapping[str, np.ndarray],
    config: ModelConfig,
    source: str,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Raise a one-line error naming the first tensor that is missing or misshapen.

    `labels` maps a GGUF name to the key the file itself uses, for the message.
    """
    required, optional = expected_shapes(config)
    for name in required:
        if name not in weights:
            raise ModelFileError(
                f"{source}: tensor {name!r} is missing; the file is incomplete, "
                "convert or download it again"
            )
    known = required | optional
    for name, array in weights.items():
        label = (
            f"{labels[name]!r} ({name})" if labels and name in labels else repr(name)
        )
        _check_one(label, array, known.get(name), source)


def _check_one(label: str, array: np.ndarray, shape: Shape | None, source: str) -> None:
    """Check one tensor's name, shape, dtype and layout; `label` names it."""
    if shape is None:
        reason = _unknown_reason(label)
        raise UnsupportedModelError(f"{source}: tensor {label} {reason}")
    if tuple(array.shape) != shape:
        raise ModelFileError(
            f"{source}: tensor {label} has shape {list(array.shape)} but the "
            f"model's configuration implies {list(shape)}; the file and its "
            "configuration disagree, convert it again"
        )
    # The forward pass indexes raw memory with float32 strides; catch a loader slip.
    assert array.dtype == np.float32 and array.flags.c_contiguous, label


def _unknown_reason(name: str) -> str:
    """Why an unexpected tensor stops the load, and what to use instead."""
    if "rope_freqs" in name:
        return (
            "scales RoPE frequencies (Llama 3.1 style), which stepper does not "
            "implement; use a model without RoPE scaling"
        )
    return (
        "is not part of the Llama or GPT-2 architectures stepper runs; "
        "use a plain Llama, Mistral, Qwen2 or GPT-2 model"
    )
